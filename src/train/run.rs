//! The training run shared by every model: run directory, config.json, CSV logs, progress display,
//! per-epoch evaluation, images and checkpoints, `--max-steps`, `--resume`, Ctrl-C and NaN handling.
//! It knows models only through [`TrainableModel`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::checkpoint::{self, Checkpoint, TensorData};
use super::images::save_grid;
use super::metrics::Logs;
use super::model::{Evaluation, ImageBatch, TrainableModel};
pub use super::options::RunOptions;
use super::progress::{epoch_of, fmt_duration, fmt_loss, Progress};
use super::rundir::{
    check_kind, check_resumed_step, checkpoint_meta, choose_run_dir, create_run_dir, open_for_resume, run_dir_of,
    write_config,
};
use crate::runtime::Gpu;

/// Image grids are this many images wide (8×8 samples; recon rows of 8 originals over 8 reconstructions).
pub const GRID_COLS: usize = 8;
/// Steps timed after the warm-up step for the software adapter's duration estimate.
const TIMED_STEPS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs done.
    Finished,
    /// `max_steps` reached first.
    MaxSteps,
    /// The stop flag (Ctrl-C) was set.
    Interrupted,
}

#[derive(Debug)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub global_step: u64,
    pub stop: StopReason,
    /// The last test-set evaluation of this invocation, if any.
    pub last_eval: Option<Evaluation>,
    /// The checkpoint holding the final state (`checkpoints/last.safetensors`).
    pub checkpoint: Option<PathBuf>,
}

/// Installs a Ctrl-C handler that sets `flag`; a second Ctrl-C exits at once with status 130.
pub fn install_interrupt_handler(flag: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again quits at once)");
    })
    .context("installing the Ctrl-C handler")
}

/// Trains `model` as `opts` says; see the module comment. Bad options, a bad `--out` or a checkpoint of
/// the wrong kind are refused before anything is written.
pub fn train(gpu: &Gpu, model: &mut dyn TrainableModel, opts: &RunOptions) -> Result<RunSummary> {
    if opts.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if opts.max_steps == Some(0) {
        bail!("--max-steps must be at least 1");
    }
    if opts.log_every == 0 {
        bail!("the loss logging interval must be at least 1 step");
    }
    let kind = model.kind();
    let spe = model.steps_per_epoch() as u64;
    if spe == 0 {
        bail!("the {kind} model has no training steps per epoch (is the batch larger than the training set?)");
    }
    let resume = opts.resume.as_deref().map(|p| open_for_resume(p, kind, spe)).transpose()?;
    let source_run = resume.as_ref().and_then(|c| run_dir_of(c.path()));
    let run_dir = choose_run_dir(opts.out.as_deref(), kind, source_run.as_deref())?;
    let start = match &resume {
        Some(ckpt) => {
            model.load(gpu, ckpt)?;
            check_resumed_step(ckpt, model.global_step())?;
            model.global_step()
        }
        None => 0,
    };
    let target = (opts.epochs * spe).min(opts.max_steps.unwrap_or(u64::MAX));
    if start >= target {
        bail!(
            "{}: the checkpoint is at step {start}, already at or past this run's end (step {target}); raise \
             --epochs or --max-steps to train further",
            resume.as_ref().map(|c| c.path().display().to_string()).unwrap_or_default()
        );
    }
    create_run_dir(&run_dir)?;
    write_config(&run_dir, gpu, model, opts, resume.as_ref(), start)?;
    let logs = Logs::open(&run_dir, source_run.as_deref(), &model.loss_names(), model.loss_unit(), spe, start)?;
    let mut run = Run {
        progress: Progress::new(opts.quiet, start, target, opts.epochs, spe),
        gpu,
        loss_names: model.loss_names(),
        model,
        opts,
        dir: run_dir,
        spe,
        step: start,
        target,
        logs,
        reported: start,
        last_arrival: Instant::now(),
        last_saved: Instant::now(),
        last_good: resume.as_ref().map(|c| (c.path().to_path_buf(), start)),
        last_eval: None,
    };
    let result = run.train();
    run.progress.finish();
    result
}

/// Loads `path`, refuses a checkpoint of another model kind, and restores `model` from it.
pub fn load_checkpoint(gpu: &Gpu, model: &mut dyn TrainableModel, path: &Path) -> Result<Checkpoint> {
    let ckpt = checkpoint::load(path)?;
    check_kind(&ckpt, model.kind())?;
    model.load(gpu, &ckpt)?;
    Ok(ckpt)
}

/// The settings a checkpoint was trained with (its `settings` metadata), to rebuild the model before
/// loading it; `Null` for a checkpoint without them.
pub fn checkpoint_settings(ckpt: &Checkpoint) -> Result<serde_json::Value> {
    match ckpt.metadata().get("settings") {
        Some(s) => serde_json::from_str(s).with_context(|| format!("{}: bad settings metadata", ckpt.path().display())),
        None => Ok(serde_json::Value::Null),
    }
}

/// Test-set evaluation of the checkpoint at `path`.
pub fn evaluate_checkpoint(gpu: &Gpu, model: &mut dyn TrainableModel, path: &Path) -> Result<Evaluation> {
    load_checkpoint(gpu, model, path)?;
    model.evaluate(gpu)
}

/// Writes the model's sample grid for the checkpoint at `path` to the PNG `out`.
pub fn sample_checkpoint(gpu: &Gpu, model: &mut dyn TrainableModel, path: &Path, out: &Path) -> Result<()> {
    load_checkpoint(gpu, model, path)?;
    save_batch(out, &model.samples(gpu)?)
}

/// Saves an image batch as a grid [`GRID_COLS`] wide.
pub fn save_batch(path: &Path, b: &ImageBatch) -> Result<()> {
    save_grid(path, &b.data, b.nchw, GRID_COLS, b.range)
}

/// The state of one invocation of [`train`].
struct Run<'a> {
    gpu: &'a Gpu,
    model: &'a mut dyn TrainableModel,
    opts: &'a RunOptions,
    dir: PathBuf,
    spe: u64,
    step: u64,
    target: u64,
    progress: Progress,
    logs: Logs,
    loss_names: Vec<String>,
    /// The last step covered by a loss report so far.
    reported: u64,
    /// Time of the last poll that brought reports, for images/s.
    last_arrival: Instant,
    /// When the last checkpoint was written (or the run started), for `checkpoint_every`.
    last_saved: Instant,
    last_good: Option<(PathBuf, u64)>,
    last_eval: Option<Evaluation>,
}

impl Run<'_> {
    fn train(&mut self) -> Result<RunSummary> {
        let (gpu, start) = (self.gpu, self.step);
        let kind = self.model.kind();
        self.progress.println(&format!("adapter: {}", gpu.describe()));
        match self.last_good.clone() {
            Some((p, s)) => self.progress.println(&format!(
                "training {kind}: resuming from {} at step {s} (epoch {}) towards step {}, in {}",
                p.display(),
                epoch_of(s + 1, self.spe),
                self.target,
                self.dir.display()
            )),
            None => self.progress.println(&format!(
                "training {kind}: {} steps ({} per epoch, batch {}), in {}",
                self.target,
                self.spe,
                self.model.batch_size(),
                self.dir.display()
            )),
        }
        if gpu.is_software() {
            self.progress.println(&format!(
                "warning: {} is a software adapter (the CPU runs the shaders), so training is slow; timing the \
                 first steps for an estimate",
                gpu.info.name
            ));
        }
        let mut timer: Option<(u64, Instant)> = None;
        let mut interrupted = false;
        while self.step < self.target && !interrupted {
            let epoch_index = self.step / self.spe;
            let epoch_end = ((epoch_index + 1) * self.spe).min(self.target);
            let epoch_started = Instant::now();
            self.model.start_epoch(gpu, epoch_index as usize)?;
            // images/s measures training only, not the evaluation and images written between epochs.
            self.last_arrival = Instant::now();
            while self.step < epoch_end {
                let log = (self.step + 1).is_multiple_of(self.opts.log_every) || self.step + 1 == epoch_end;
                self.model.step(gpu, log)?;
                for w in self.model.take_warnings() {
                    self.progress.println(&format!("warning: {w}"));
                }
                self.step += 1;
                self.progress.stepped(self.step);
                self.collect(false)?;
                if self.step == start + 1 {
                    // The first step compiles pipelines and fills caches: time from after it.
                    self.progress.reset_eta();
                    if gpu.is_software() {
                        sync(gpu)?;
                        timer = Some((self.step, Instant::now()));
                    }
                }
                if let Some((s0, t0)) = timer.filter(|(s0, _)| self.step == s0 + TIMED_STEPS) {
                    sync(gpu)?;
                    let per_step = t0.elapsed().as_secs_f64() / (self.step - s0) as f64;
                    let left = self.target - self.step;
                    self.progress.println(&format!(
                        "estimate: {per_step:.2} s/step, so the remaining {left} steps take about {} (plus a \
                         test-set evaluation per epoch)",
                        fmt_duration(per_step * left as f64)
                    ));
                    timer = None;
                }
                if self.opts.stop.load(Ordering::SeqCst) {
                    interrupted = true;
                    break;
                }
                if self.opts.checkpoint_every.is_some_and(|every| self.last_saved.elapsed() >= every)
                    && self.step < epoch_end
                {
                    // metrics.csv catches up first, so the run directory agrees with the checkpoint.
                    self.collect(true)?;
                    self.save_checkpoint(None)?;
                }
            }
            self.collect(true)?;
            if interrupted {
                let path = self.save_checkpoint(None)?;
                self.progress.println(&format!(
                    "interrupted at step {}: checkpoint written to {} (continue with --resume {})",
                    self.step,
                    path.display(),
                    path.display()
                ));
            } else {
                self.end_of_epoch(epoch_index + 1, epoch_started)?;
                // Ctrl-C during the evaluation: its checkpoint was just written, so stop here.
                if self.step < self.target && self.opts.stop.load(Ordering::SeqCst) {
                    interrupted = true;
                    self.progress.println(&format!(
                        "interrupted after step {}: continue with --resume {}",
                        self.step,
                        self.dir.join("checkpoints/last.safetensors").display()
                    ));
                }
            }
        }
        let stop = if interrupted {
            StopReason::Interrupted
        } else if self.step < self.opts.epochs * self.spe {
            self.progress.println(&format!("stopped at --max-steps {}", self.step));
            StopReason::MaxSteps
        } else {
            StopReason::Finished
        };
        Ok(RunSummary {
            run_dir: self.dir.clone(),
            global_step: self.step,
            stop,
            last_eval: self.last_eval.clone(),
            checkpoint: self.last_good.as_ref().map(|(p, _)| p.clone()).filter(|p| p.starts_with(&self.dir)),
        })
    }

    /// Takes the loss reports that have arrived (all outstanding ones with `wait`): metrics.csv rows,
    /// the progress display, and the NaN/Inf check.
    fn collect(&mut self, wait: bool) -> Result<()> {
        let reports = self.model.poll_losses(self.gpu, wait)?;
        if reports.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let steps: u64 = reports.iter().map(|r| r.0).sum();
        // Reports arrive in bursts when the loop runs ahead of the GPU; one rate for the whole burst.
        let rate = (steps * self.model.batch_size() as u64) as f64 / (now - self.last_arrival).as_secs_f64().max(1e-9);
        self.last_arrival = now;
        for (covered, values) in reports {
            self.reported += covered;
            let step = self.reported;
            let epoch = epoch_of(step, self.spe);
            self.logs.losses(step, covered, &values, rate)?;
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                let all: Vec<String> =
                    self.loss_names.iter().zip(&values).map(|(n, v)| format!("{n} {}", fmt_loss(*v))).collect();
                let window = if covered > 1 {
                    format!(", the mean of steps {}-{step}", step + 1 - covered)
                } else {
                    String::new()
                };
                bail!(
                    "step {step} (epoch {epoch}): loss '{}' is {}{window}; stopping ({}). {}",
                    self.loss_names.get(bad).map(String::as_str).unwrap_or("?"),
                    values[bad],
                    all.join(", "),
                    self.last_good_note()
                );
            }
            self.progress.losses(step, &self.loss_names, &values, rate);
        }
        Ok(())
    }

    fn last_good_note(&self) -> String {
        match &self.last_good {
            Some((p, s)) => format!("The last good checkpoint is {} (step {s})", p.display()),
            None => "No checkpoint was written before this".into(),
        }
    }

    /// Evaluation, epochs.csv, images, loss plot and checkpoints at the end of epoch `epoch` (1-based),
    /// which is partial when `--max-steps` cut it short.
    fn end_of_epoch(&mut self, epoch: u64, started: Instant) -> Result<()> {
        let gpu = self.gpu;
        let eval = self.model.evaluate(gpu)?;
        let seconds = started.elapsed().as_secs_f64();
        let train_loss = self.logs.epoch(epoch, self.step, &eval, seconds)?;
        let done_in_epoch = self.step - (epoch - 1) * self.spe;
        let partial = done_in_epoch < self.spe;
        let figures: Vec<String> = eval.figures.iter().map(|(n, v)| format!("{n} {}", fmt_loss(*v as f32))).collect();
        self.progress.println(&format!(
            "epoch {epoch}/{}{} step {}: train loss {} | test {} | {}",
            self.opts.epochs,
            if partial { format!(" (partial: {done_in_epoch}/{} steps)", self.spe) } else { String::new() },
            self.step,
            fmt_loss(train_loss as f32),
            figures.join(" "),
            fmt_duration(seconds)
        ));
        self.last_eval = Some(eval);

        let file = format!("epoch_{epoch:03}.png");
        save_batch(&self.dir.join("samples").join(&file), &self.model.samples(gpu)?)?;
        if let Some(recon) = self.model.reconstructions(gpu)? {
            let dir = self.dir.join("recon");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Originals fill the top half, so a short batch (fewer than 8 pairs) gets one row of each.
            let cols = (recon.nchw[0] / 2).clamp(1, GRID_COLS);
            save_grid(&dir.join(&file), &recon.data, recon.nchw, cols, recon.range)?;
        }
        self.logs.plot()?;
        self.save_checkpoint((!partial).then_some(epoch))?;
        Ok(())
    }

    /// Writes `checkpoints/last.safetensors` (and `epoch_NNN.safetensors` for a finished epoch) after
    /// checking every weight is finite, so a diverged model never replaces the last good checkpoint.
    fn save_checkpoint(&mut self, epoch: Option<u64>) -> Result<PathBuf> {
        if self.model.global_step() != self.step {
            bail!("the model reports global step {} after {} steps", self.model.global_step(), self.step);
        }
        let tensors = self.model.state(self.gpu)?;
        for (name, t) in &tensors {
            if let TensorData::F32 { data, .. } = t {
                if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                    bail!(
                        "step {}: tensor {name} holds {} at index {i}; not writing a checkpoint. {}",
                        self.step,
                        data[i],
                        self.last_good_note()
                    );
                }
            }
        }
        let meta = checkpoint_meta(self.gpu, &*self.model, self.opts, self.step);
        let dir = self.dir.join("checkpoints");
        if let Some(e) = epoch {
            checkpoint::save(&dir.join(format!("epoch_{e:03}.safetensors")), &tensors, &meta)?;
        }
        let last = dir.join("last.safetensors");
        checkpoint::save(&last, &tensors, &meta)?;
        self.last_good = Some((last.clone(), self.step));
        self.last_saved = Instant::now();
        Ok(last)
    }
}

/// Waits until the GPU has finished everything submitted.
fn sync(gpu: &Gpu) -> Result<()> {
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow::anyhow!("waiting for the GPU: {e}"))?;
    Ok(())
}
