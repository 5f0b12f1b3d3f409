//! What every `train` subcommand shares: the run's flags ([`TrainArgs`]), the settings a checkpoint
//! carries, and the driver that turns a model into a run directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use gputrain::data::{Dataset, LoadOptions};
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::checkpoint;
use gputrain::train::model::TrainableModel;
use gputrain::train::options::RunOptions;
use gputrain::train::run::{self, StopReason};

/// Hyper-parameters left out when resuming are taken from the checkpoint, so that
/// `train vae --resume F` alone continues the run it came from.
#[derive(Args)]
pub struct TrainArgs {
    /// Total epochs [default: vae 10, gan 5, classifier 3].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// Images per step [default: 128].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: gan 2e-4, otherwise 1e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Latent dimensions [default: vae 32, gan 100].
    #[arg(long)]
    pub latent: Option<usize>,
    /// Seed of initialisation, shuffling and noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Directory with (Fashion-)MNIST IDX files, CIFAR-10 binary batches, or image files (searched
    /// recursively) [default: /usr/share/datasets/fashion-mnist, else the embedded subset].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Side a folder's images are cropped and resized to; for `train gan` also the DCGAN's size (32 or
    /// 64) [default: gan 64 for a folder, 32 otherwise; the VAEs use their own size].
    #[arg(long, value_name = "N")]
    pub image_size: Option<usize>,
    /// Channels of a folder's images, 1 or 3 [default: 3 unless every image is greyscale].
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: Option<u8>,
    /// Share of a folder's images held out for testing, chosen by --seed [default: 0.05].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Run directory [default: runs/<model>-<timestamp>, or the resumed checkpoint's run].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop once the global step reaches N (for smoke tests).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_steps: Option<u64>,
    /// Continue from a checkpoint (exactly: same batches, same random numbers).
    #[arg(long, value_name = "CHECKPOINT")]
    pub resume: Option<PathBuf>,
    /// Read the losses back every N steps.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Also write checkpoints/last.safetensors every M minutes within an epoch; 0: at epoch ends only.
    #[arg(long, value_name = "M", default_value_t = 10.0)]
    pub checkpoint_minutes: f64,
}

impl TrainArgs {
    /// `--checkpoint-minutes` as an interval (None: at epoch ends only).
    fn checkpoint_every(&self) -> Result<Option<Duration>> {
        let m = self.checkpoint_minutes;
        if !(m.is_finite() && m >= 0.0) {
            bail!("--checkpoint-minutes must be a number of minutes ≥ 0, got {m}");
        }
        Ok((m > 0.0).then(|| Duration::from_secs_f64(m * 60.0)))
    }

    /// The settings of the checkpoint `--resume` names, or null for a fresh run.
    pub fn resumed_settings(&self) -> Result<Value> {
        match &self.resume {
            Some(p) => checkpoint_settings(p).context("--resume"),
            None => Ok(Value::Null),
        }
    }
}

/// The settings (model hyper-parameters and run flags) a checkpoint was trained with.
pub fn checkpoint_settings(path: &Path) -> Result<Value> {
    run::checkpoint_settings(&checkpoint::load(path)?)
}

/// A model's config from a checkpoint's settings: the defaults for anything missing (null: all defaults).
pub fn config_from_settings<C: DeserializeOwned + Default>(settings: &Value) -> Result<C> {
    if settings.is_null() {
        return Ok(C::default());
    }
    serde_json::from_value(settings.clone()).context("the checkpoint's settings")
}

/// A model's config as settings: its fields and `"model": model`.
pub fn settings_of(model: &str, config: &impl Serialize) -> Result<Value> {
    let mut settings = serde_json::to_value(config)?;
    if let Value::Object(s) = &mut settings {
        s.insert("model".into(), model.into());
    }
    Ok(settings)
}

/// The loader options a run used, from its settings (defaults for what they lack).
fn load_options(settings: &Value, image_size: Option<usize>) -> LoadOptions {
    let d = LoadOptions::default();
    LoadOptions {
        image_size,
        channels: settings.get("channels").and_then(Value::as_u64).map(|c| c as usize),
        test_fraction: settings.get("test_fraction").and_then(Value::as_f64).unwrap_or(d.test_fraction),
        seed: settings.get("seed").and_then(Value::as_u64).unwrap_or(d.seed),
    }
}

/// For `eval` and `sample`: `--data` if given, else the directory the checkpoint's run used (if it still
/// exists), else the usual lookup; a folder is loaded as the run loaded it.
pub fn load_data(flag: Option<&Path>, settings: &Value, image_size: Option<usize>) -> Result<Dataset> {
    let trained_on = settings.get("data").and_then(Value::as_str).map(PathBuf::from).filter(|d| d.is_dir());
    let data = Dataset::load(flag.or(trained_on.as_deref()), &load_options(settings, image_size))?;
    println!("data: {}", data.source);
    Ok(data)
}

/// A training run's dataset, before its model is built (the GAN's default size depends on it).
pub struct TrainData {
    pub data: Dataset,
    dir: Option<PathBuf>,
    options: LoadOptions,
}

impl TrainArgs {
    /// Loads `--data` (else the resumed run's directory, else the usual lookup) with the folder options
    /// of the flags, else the resumed run's; `image_size` is the model's side where it has one.
    /// The run's own flags are checked first, so a bad one is reported before any data is read.
    pub fn load_data(&self, from: &Value, image_size: Option<usize>, seed: u64) -> Result<TrainData> {
        self.checkpoint_every()?;
        if let Some(f) = self.test_fraction {
            if !(f > 0.0 && f < 1.0) {
                bail!("--test-fraction {f}: must be between 0 and 1, e.g. 0.05");
            }
        }
        let resumed = load_options(from, image_size);
        let options = LoadOptions {
            image_size,
            channels: self.channels.map(usize::from).or(resumed.channels),
            test_fraction: self.test_fraction.unwrap_or(resumed.test_fraction),
            seed,
        };
        if let Some(c) = options.channels.filter(|c| *c == 2) {
            bail!("--channels {c}: must be 1 (greyscale) or 3 (RGB)");
        }
        let dir = self.data.clone().or(from.get("data").and_then(Value::as_str).map(PathBuf::from));
        let data = Dataset::load(dir.as_deref(), &options)?;
        Ok(TrainData { data, dir, options })
    }
}

/// The run shared by every model: settings record, run directory, Ctrl-C, summary. `settings` holds
/// the model's hyper-parameters; the run's own flags are added here.
#[allow(clippy::too_many_arguments)]
pub fn train_model(
    a: TrainArgs,
    from: &Value,
    mut settings: Value,
    default_epochs: u64,
    backend: BackendChoice,
    gpu: impl Fn() -> Result<Gpu>,
    data: TrainData,
    build: impl FnOnce(&Gpu, &Dataset) -> Result<Box<dyn TrainableModel>>,
) -> Result<()> {
    let checkpoint_every = a.checkpoint_every()?;
    let epochs = a.epochs.or(from.get("epochs").and_then(Value::as_u64)).unwrap_or(default_epochs);
    let TrainData { data, dir: data_dir, options } = data;
    let extra = json!({
        "epochs": epochs,
        "data": data_dir.as_ref().map(|d| d.display().to_string()),
        "dataset": data.source,
        "channels": options.channels,
        "test_fraction": options.test_fraction,
        "max_steps": a.max_steps,
        "log_every": a.log_every,
        "backend": backend.to_string(),
    });
    if let (Some(s), Value::Object(e)) = (settings.as_object_mut(), extra) {
        s.extend(e);
    }
    let gpu = gpu()?;
    println!("data: {}", data.source);
    let mut model = build(&gpu, &data)?;
    let stop = Arc::new(AtomicBool::new(false));
    run::install_interrupt_handler(stop.clone())?;
    let opts = RunOptions {
        epochs,
        checkpoint_every,
        max_steps: a.max_steps,
        out: a.out,
        quiet: a.quiet,
        log_every: a.log_every,
        resume: a.resume,
        settings,
        stop,
    };
    let summary = run::train(&gpu, model.as_mut(), &opts)?;
    let what = match summary.stop {
        StopReason::Finished => "finished",
        StopReason::MaxSteps => "stopped at --max-steps",
        StopReason::Interrupted => "interrupted",
    };
    println!("{what} at step {}; run directory {}", summary.global_step, summary.run_dir.display());
    Ok(())
}
