//! How to run one training session: the options the run driver (run.rs) and the run directory
//! (rundir.rs) both read.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// How to run one training session (the model carries its own hyper-parameters).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Total epochs of the run (a resume continues towards the same total).
    pub epochs: u64,
    /// Stop once the global step reaches this (a total, not a count for this invocation).
    pub max_steps: Option<u64>,
    /// Run directory; default `runs/<kind>-<YYYYmmdd-HHMMSS>`, or the checkpoint's run when resuming.
    pub out: Option<PathBuf>,
    /// Plain log lines instead of a progress bar.
    pub quiet: bool,
    /// Read the losses back every this many steps.
    pub log_every: u64,
    pub resume: Option<PathBuf>,
    /// Every CLI setting, stored in config.json and in each checkpoint's metadata.
    pub settings: serde_json::Value,
    /// Set (by the Ctrl-C handler) to stop after the current step with a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// Also write `last.safetensors` when this much time has passed since the last checkpoint, so a
    /// crash in an hour-long epoch (a GAN on the software adapter) loses minutes, not the epoch.
    /// None: at epoch ends only.
    pub checkpoint_every: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            epochs: 10,
            max_steps: None,
            out: None,
            quiet: false,
            log_every: 10,
            resume: None,
            settings: serde_json::Value::Null,
            stop: Arc::new(AtomicBool::new(false)),
            checkpoint_every: Some(Duration::from_secs(600)),
        }
    }
}
