//! Where a run writes and what it continues from: choosing and creating the run directory, config.json,
//! checkpoint metadata, and the checks on a checkpoint before it is resumed or loaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::checkpoint::{self, Checkpoint};
use super::model::TrainableModel;
use super::options::RunOptions;
use super::progress::epoch_of;
use super::write_atomic;
use crate::runtime::Gpu;

/// The run directory a checkpoint lives in (`<run>/checkpoints/<file>`), if it is one.
pub(super) fn run_dir_of(ckpt: &Path) -> Option<PathBuf> {
    let dir = ckpt.parent()?;
    (dir.file_name()? == "checkpoints").then(|| dir.parent().map(Path::to_path_buf)).flatten()
}

pub(super) fn open_for_resume(path: &Path, kind: &str, spe: u64) -> Result<Checkpoint> {
    let ckpt = checkpoint::load(path).context("--resume")?;
    check_kind(&ckpt, kind)?;
    if let Some(s) = ckpt.metadata().get("steps_per_epoch") {
        if s.parse::<u64>().ok() != Some(spe) {
            bail!(
                "--resume {}: the checkpoint's run had {s} steps per epoch, this one has {spe} (a different batch \
                 size or dataset); resuming would not continue the same epochs",
                path.display()
            );
        }
    }
    Ok(ckpt)
}

pub(super) fn check_kind(ckpt: &Checkpoint, kind: &str) -> Result<()> {
    match ckpt.metadata().get("kind") {
        Some(k) if k == kind => Ok(()),
        Some(k) => bail!("{}: a {k} checkpoint, not a {kind} one", ckpt.path().display()),
        None => bail!(
            "{}: no 'kind' in its metadata (not written by gputrain); expected a {kind} checkpoint",
            ckpt.path().display()
        ),
    }
}

pub(super) fn check_resumed_step(ckpt: &Checkpoint, step: u64) -> Result<()> {
    match ckpt.metadata().get("global_step").map(|s| s.parse::<u64>()) {
        Some(Ok(s)) if s != step => {
            bail!("{}: metadata says global step {s} but the model restored step {step}", ckpt.path().display())
        }
        _ => Ok(()),
    }
}

/// Picks the run directory without creating it: `out`, else the resumed checkpoint's run, else a new
/// timestamped one. An existing non-empty directory is accepted only as the resumed checkpoint's run.
pub(super) fn choose_run_dir(out: Option<&Path>, kind: &str, source_run: Option<&Path>) -> Result<PathBuf> {
    let Some(dir) = out.or(source_run) else {
        let stem = format!("runs/{kind}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
        // Two runs started in the same second get distinct directories.
        let mut dir = PathBuf::from(&stem);
        for k in 2.. {
            if !dir.exists() {
                break;
            }
            dir = PathBuf::from(format!("{stem}-{k}"));
        }
        return Ok(dir);
    };
    if dir.exists() {
        if !dir.is_dir() {
            bail!("--out {}: exists and is not a directory", dir.display());
        }
        let empty = std::fs::read_dir(dir).with_context(|| format!("--out {}", dir.display()))?.next().is_none();
        let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
        if !empty && !source_run.is_some_and(|s| same(s, dir)) {
            bail!(
                "--out {}: directory exists and is not empty; choose a new one (or --resume a checkpoint of that \
                 run to continue it)",
                dir.display()
            );
        }
    }
    Ok(dir.to_path_buf())
}

/// Creates the run directory and checks that files can be written in it; a directory this created for
/// a failed check is removed again.
pub(super) fn create_run_dir(dir: &Path) -> Result<()> {
    let existed = dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the run directory {}", dir.display()))?;
    let probe = dir.join(".write-test");
    if let Err(e) = std::fs::write(&probe, b"") {
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        bail!("the run directory {} is not writable: {e}", dir.display());
    }
    let _ = std::fs::remove_file(&probe);
    for sub in ["checkpoints", "samples"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// Writes config.json: every setting, the adapter, and what the run resumed from.
pub(super) fn write_config(
    dir: &Path,
    gpu: &Gpu,
    model: &dyn TrainableModel,
    opts: &RunOptions,
    resume: Option<&Checkpoint>,
    start: u64,
) -> Result<()> {
    let config = json!({
        "kind": model.kind(),
        "adapter": gpu.describe(),
        "software_adapter": gpu.is_software(),
        "kernels": crate::ops::gemm::kernel_set_json(gpu.kernel_set),
        "autotune": gpu.tuner.chosen(),
        "settings": opts.settings,
        "epochs": opts.epochs,
        "max_steps": opts.max_steps,
        "log_every": opts.log_every,
        "batch_size": model.batch_size(),
        "steps_per_epoch": model.steps_per_epoch(),
        "loss_names": model.loss_names(),
        "started": chrono::Local::now().to_rfc3339(),
        "resumed_from": resume.map(|c| json!({"checkpoint": c.path().display().to_string(), "step": start})),
    });
    let text = serde_json::to_string_pretty(&config)? + "\n";
    write_atomic(&dir.join("config.json"), text.as_bytes())
}

/// A checkpoint's metadata: what a resume checks, and the settings that rebuild the model for eval/sample.
pub(super) fn checkpoint_meta(
    gpu: &Gpu,
    model: &dyn TrainableModel,
    opts: &RunOptions,
    step: u64,
) -> HashMap<String, String> {
    let spe = model.steps_per_epoch() as u64;
    [
        ("format", "gputrain-1".to_string()),
        ("kind", model.kind().to_string()),
        ("global_step", step.to_string()),
        ("epoch", epoch_of(step, spe).to_string()),
        ("steps_per_epoch", spe.to_string()),
        ("batch_size", model.batch_size().to_string()),
        ("adapter", gpu.describe()),
        ("settings", opts.settings.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
