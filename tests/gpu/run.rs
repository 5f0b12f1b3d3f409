//! The training shell (src/train/run.rs) driven by a fake model that lives entirely on the host: run
//! directory contents, --max-steps, exact resume, Ctrl-C, NaN handling and refused output directories.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use gputrain::runtime::Gpu;
use gputrain::train::checkpoint::{self, Checkpoint, TensorData};
use gputrain::train::model::{Evaluation, ImageBatch, TrainableModel};
use gputrain::train::run::{self, RunOptions, StopReason};

const SPE: usize = 7;
const BATCH: usize = 4;
const PARAMS: usize = 6;

/// A model whose "training" is a deterministic host computation that depends on the step, the epoch's
/// shuffle and its own state, so a resume that skipped or repeated a step, shuffled an epoch differently
/// or lost optimiser state would end in different bits.
#[derive(Default)]
struct Fake {
    w: Vec<f32>,
    m: Vec<f32>,
    step: u64,
    perm: Vec<usize>,
    acc: (Vec<f64>, u64),
    reports: Vec<(u64, Vec<f32>)>,
    /// The loss of this step (1-based) and every later one is NaN.
    nan_loss_at: Option<u64>,
    /// The weights become NaN at this step (while the loss stays finite).
    nan_weights_at: Option<u64>,
    /// Sets the flag after this step, as Ctrl-C would during it.
    stop_at: Option<(u64, Arc<AtomicBool>)>,
    /// Records, at each step, the step of this checkpoint (0 while there is none).
    watch: Option<(PathBuf, Vec<i64>)>,
}

impl Fake {
    fn new() -> Fake {
        Fake { w: (0..PARAMS).map(|i| i as f32 * 0.5 - 1.0).collect(), m: vec![0.0; PARAMS], ..Default::default() }
    }

    fn images(&self, n: usize) -> ImageBatch {
        let data = (0..n * 64).map(|k| (self.w[k % PARAMS] * (k % 13) as f32 * 0.1).sin()).collect();
        ImageBatch { data, nchw: [n, 1, 8, 8], range: (-1.0, 1.0) }
    }
}

impl TrainableModel for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn batch_size(&self) -> usize {
        BATCH
    }
    fn steps_per_epoch(&self) -> usize {
        SPE
    }
    fn loss_names(&self) -> Vec<String> {
        vec!["loss".into(), "aux".into()]
    }
    fn start_epoch(&mut self, _gpu: &Gpu, epoch: usize) -> Result<()> {
        // A seeded Fisher–Yates shuffle, as the real models' per-epoch sample order.
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ epoch as u64;
        self.perm = (0..SPE).collect();
        for i in (1..SPE).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.perm.swap(i, (state >> 33) as usize % (i + 1));
        }
        Ok(())
    }
    fn step(&mut self, _gpu: &Gpu, log: bool) -> Result<()> {
        if self.perm.len() != SPE {
            bail!("step before start_epoch");
        }
        if let Some((path, seen)) = &mut self.watch {
            seen.push(if path.exists() { tensors(path).2 } else { 0 });
        }
        let x = (self.perm[self.step as usize % SPE] + 1) as f32 / SPE as f32;
        for i in 0..PARAMS {
            let g = self.w[i] - x * (i + 1) as f32 * 0.1;
            self.m[i] = 0.9 * self.m[i] + g;
            self.w[i] -= 0.05 * self.m[i];
        }
        self.step += 1;
        if self.nan_weights_at == Some(self.step) {
            self.w[2] = f32::NAN;
        }
        // Non-finite weights are left out so that the checkpoint guard, not the loss check, meets them.
        let mut loss =
            100.0 / self.step as f64 + self.w.iter().filter(|v| v.is_finite()).map(|&v| v.abs() as f64).sum::<f64>();
        if self.nan_loss_at.is_some_and(|s| self.step >= s) {
            loss = f64::NAN;
        }
        if self.acc.0.is_empty() {
            self.acc.0 = vec![0.0; 2];
        }
        self.acc.0[0] += loss;
        self.acc.0[1] += x as f64;
        self.acc.1 += 1;
        if log {
            let n = self.acc.1;
            self.reports.push((n, self.acc.0.iter().map(|v| (v / n as f64) as f32).collect()));
            self.acc = (Vec::new(), 0);
        }
        if let Some((s, flag)) = &self.stop_at {
            if *s == self.step {
                flag.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
    fn poll_losses(&mut self, _gpu: &Gpu, _wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        Ok(std::mem::take(&mut self.reports))
    }
    fn global_step(&self) -> u64 {
        self.step
    }
    fn evaluate(&mut self, _gpu: &Gpu) -> Result<Evaluation> {
        let recon: f64 = self.w.iter().map(|&v| (v as f64).powi(2)).sum();
        let kl = self.m.iter().map(|&v| (v as f64).abs()).sum::<f64>();
        Ok(Evaluation { figures: vec![("recon".into(), recon), ("kl".into(), kl), ("neg_elbo".into(), recon + kl)] })
    }
    fn samples(&mut self, _gpu: &Gpu) -> Result<ImageBatch> {
        Ok(self.images(64))
    }
    fn reconstructions(&mut self, _gpu: &Gpu) -> Result<Option<ImageBatch>> {
        Ok(Some(self.images(16)))
    }
    fn state(&self, _gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        Ok(vec![
            ("w".into(), TensorData::F32 { shape: vec![2, 3], data: self.w.clone() }),
            ("optim.m".into(), TensorData::F32 { shape: vec![2, 3], data: self.m.clone() }),
            ("optim.step".into(), TensorData::I64 { shape: vec![], data: vec![self.step as i64] }),
        ])
    }
    fn load(&mut self, _gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.w = ckpt.get_f32("w", &[2, 3])?.to_vec();
        self.m = ckpt.get_f32("optim.m", &[2, 3])?.to_vec();
        self.step = ckpt.get_i64("optim.step", &[])?[0] as u64;
        Ok(())
    }
    fn step_dispatches(&self) -> Vec<&gputrain::runtime::launch::Prepared> {
        Vec::new()
    }
    fn step_stats(&self) -> gputrain::graph::StepStats {
        gputrain::graph::StepStats { dispatches: 0, submits: 1, bytes_uploaded: 0, bytes_read_back: 0 }
    }
}

fn opts(out: &Path, epochs: u64) -> RunOptions {
    RunOptions {
        epochs,
        out: Some(out.to_path_buf()),
        quiet: true,
        log_every: 3,
        settings: serde_json::json!({"lr": 0.05, "seed": 0, "data": null}),
        ..Default::default()
    }
}

fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn steps(rows: &[Vec<String>], col: usize) -> Vec<u64> {
    rows.iter().map(|r| r[col].parse().unwrap()).collect()
}

fn tensors(path: &Path) -> (Vec<f32>, Vec<f32>, i64, HashMap<String, String>) {
    let c = checkpoint::load(path).unwrap();
    let w = c.get_f32("w", &[2, 3]).unwrap().to_vec();
    let m = c.get_f32("optim.m", &[2, 3]).unwrap().to_vec();
    let s = c.get_i64("optim.step", &[]).unwrap()[0];
    (w, m, s, c.metadata().clone())
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn a_full_run_leaves_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut model = Fake::new();
    let s = run::train(common::gpu(), &mut model, &opts(&out, 2)).unwrap();
    assert_eq!((s.stop, s.global_step, s.run_dir.clone()), (StopReason::Finished, 14, out.clone()));
    assert_eq!(s.checkpoint, Some(out.join("checkpoints/last.safetensors")));

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["lr"], 0.05);
    assert_eq!(config["kind"], "fake");
    assert_eq!(config["steps_per_epoch"], 7);
    assert_eq!(config["adapter"], common::gpu().describe());

    // Logged every 3 steps and at each epoch's last step.
    let (header, rows) = csv(&out.join("metrics.csv"));
    assert_eq!(header, ["step", "epoch", "loss", "aux", "images_per_s"]);
    assert_eq!(steps(&rows, 0), [3, 6, 7, 9, 12, 14]);
    assert_eq!(steps(&rows, 1), [1, 1, 1, 2, 2, 2]);
    for r in &rows {
        let v: Vec<f64> = r[2..].iter().map(|x| x.parse().unwrap()).collect();
        assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0), "{r:?}");
    }
    let (header, rows) = csv(&out.join("epochs.csv"));
    assert_eq!(header, ["epoch", "step", "train_loss", "recon", "kl", "neg_elbo", "seconds"]);
    assert_eq!(steps(&rows, 0), [1, 2]);
    assert_eq!(steps(&rows, 1), [7, 14]);
    let last_eval = s.last_eval.unwrap();
    assert_eq!(rows[1][5].parse::<f64>().unwrap(), last_eval.get("neg_elbo").unwrap());
    // The logged loss falls (its 100/step term dominates), and train_loss is the step-weighted mean.
    let train: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(train[1] < train[0], "{train:?}");

    // 8×8 grids of 8-px images with 2-px gaps: 8·10 + 2 = 82; recon is 16 images, 2 rows.
    for e in ["epoch_001.png", "epoch_002.png"] {
        assert_eq!(png_size(&out.join("samples").join(e)), (82, 82));
        assert_eq!(png_size(&out.join("recon").join(e)), (82, 22));
    }
    assert!(png_size(&out.join("loss.png")).0 > 100);

    let (w, m, step, meta) = tensors(&out.join("checkpoints/last.safetensors"));
    assert_eq!((bits(&w), bits(&m), step), (bits(&model.w), bits(&model.m), 14));
    assert_eq!(meta["kind"], "fake");
    assert_eq!(meta["global_step"], "14");
    let settings: serde_json::Value = serde_json::from_str(&meta["settings"]).unwrap();
    assert_eq!(settings["seed"], 0);
    assert_eq!(tensors(&out.join("checkpoints/epoch_001.safetensors")).2, 7);
    assert_eq!(tensors(&out.join("checkpoints/epoch_002.safetensors")).2, 14);
    // No temporaries left behind.
    assert!(listing(&out.join("checkpoints")).iter().all(|p| p.extension().unwrap() == "safetensors"));

    // The eval/sample helpers reproduce the run's last evaluation from the checkpoint.
    let last = out.join("checkpoints/last.safetensors");
    let again = run::evaluate_checkpoint(common::gpu(), &mut Fake::new(), &last).unwrap();
    assert_eq!(again.figures, last_eval.figures);
    let png = tmp.path().join("s.png");
    run::sample_checkpoint(common::gpu(), &mut Fake::new(), &last, &png).unwrap();
    assert_eq!(png_size(&png), (82, 82));
    assert_eq!(run::checkpoint_settings(&checkpoint::load(&last).unwrap()).unwrap()["lr"], 0.05);
}

#[test]
fn max_steps_stops_mid_epoch_with_eval_images_and_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = RunOptions { max_steps: Some(10), ..opts(&out, 3) };
    let s = run::train(common::gpu(), &mut Fake::new(), &o).unwrap();
    assert_eq!((s.stop, s.global_step), (StopReason::MaxSteps, 10));
    assert_eq!(steps(&csv(&out.join("metrics.csv")).1, 0), [3, 6, 7, 9, 10]);
    let (_, rows) = csv(&out.join("epochs.csv"));
    assert_eq!(steps(&rows, 1), [7, 10]);
    assert!(out.join("samples/epoch_002.png").exists() && out.join("recon/epoch_002.png").exists());
    assert!(out.join("checkpoints/epoch_001.safetensors").exists());
    // A partial epoch gets no epoch checkpoint: epoch_002 will mean the whole epoch.
    assert!(!out.join("checkpoints/epoch_002.safetensors").exists());
    assert_eq!(tensors(&out.join("checkpoints/last.safetensors")).2, 10);
}

#[test]
fn checkpoints_are_written_within_an_epoch_when_due() {
    let tmp = tempfile::tempdir().unwrap();
    let last = |out: &Path| out.join("checkpoints/last.safetensors");
    // Due after every step: each step finds the previous one saved.
    let out = tmp.path().join("every");
    let mut f = Fake { watch: Some((last(&out), Vec::new())), ..Fake::new() };
    let o = RunOptions { checkpoint_every: Some(Duration::ZERO), max_steps: Some(10), ..opts(&out, 3) };
    run::train(common::gpu(), &mut f, &o).unwrap();
    assert_eq!(f.watch.unwrap().1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(tensors(&last(&out)).2, 10);
    // Never due: only epoch ends (step 7) and the stop write one.
    let out = tmp.path().join("epochs");
    let mut f = Fake { watch: Some((last(&out), Vec::new())), ..Fake::new() };
    let o = RunOptions { checkpoint_every: None, max_steps: Some(10), ..opts(&out, 3) };
    run::train(common::gpu(), &mut f, &o).unwrap();
    assert_eq!(f.watch.unwrap().1, [0, 0, 0, 0, 0, 0, 0, 7, 7, 7]);
}

#[test]
fn resume_continues_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let mut a = Fake::new();
    run::train(common::gpu(), &mut a, &opts(&whole, 3)).unwrap();

    // 10 steps (mid-epoch 2), then a fresh model resumed from the checkpoint, to the same end.
    let split = tmp.path().join("split");
    run::train(common::gpu(), &mut Fake::new(), &RunOptions { max_steps: Some(10), ..opts(&split, 3) }).unwrap();
    let last = split.join("checkpoints/last.safetensors");
    let mut b = Fake::new();
    let o = RunOptions { resume: Some(last.clone()), out: None, ..opts(&split, 3) };
    let s = run::train(common::gpu(), &mut b, &o).unwrap();
    assert_eq!((s.stop, s.global_step, s.run_dir), (StopReason::Finished, 21, split.clone()));
    assert_eq!((bits(&b.w), bits(&b.m)), (bits(&a.w), bits(&a.m)));
    let (wa, ma, _, _) = tensors(&whole.join("checkpoints/last.safetensors"));
    let (wb, mb, step, _) = tensors(&last);
    assert_eq!((bits(&wb), bits(&mb), step), (bits(&wa), bits(&ma), 21));

    // The logs continue without repeating a step; the partial epoch 2 row stays, as what it was.
    let m = steps(&csv(&split.join("metrics.csv")).1, 0);
    assert_eq!(m, [3, 6, 7, 9, 10, 12, 14, 15, 18, 21]);
    let (_, rows) = csv(&split.join("epochs.csv"));
    assert_eq!(steps(&rows, 0), [1, 2, 2, 3]);
    assert_eq!(steps(&rows, 1), [7, 10, 14, 21]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(split.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["resumed_from"]["step"], 10);
    // Epoch 3's evaluation matches the uninterrupted run's.
    assert_eq!(csv(&split.join("epochs.csv")).1[3][3..6], csv(&whole.join("epochs.csv")).1[2][3..6]);
}

#[test]
fn resume_from_an_earlier_checkpoint_drops_later_log_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run::train(common::gpu(), &mut Fake::new(), &opts(&out, 3)).unwrap();
    let o =
        RunOptions { resume: Some(out.join("checkpoints/epoch_001.safetensors")), max_steps: Some(9), ..opts(&out, 3) };
    let s = run::train(common::gpu(), &mut Fake::new(), &o).unwrap();
    assert_eq!(s.global_step, 9);
    assert_eq!(steps(&csv(&out.join("metrics.csv")).1, 0), [3, 6, 7, 9]);
    assert_eq!(steps(&csv(&out.join("epochs.csv")).1, 1), [7, 9]);

    // Resuming into a new directory copies the history up to the checkpoint.
    let other = tmp.path().join("other");
    let o = RunOptions { resume: Some(out.join("checkpoints/epoch_001.safetensors")), ..opts(&other, 1) };
    let err = run::train(common::gpu(), &mut Fake::new(), &o).unwrap_err().to_string();
    assert!(err.contains("already at or past this run's end (step 7)"), "{err}");
    assert!(!other.exists());
    let o = RunOptions { resume: Some(out.join("checkpoints/epoch_001.safetensors")), ..opts(&other, 2) };
    run::train(common::gpu(), &mut Fake::new(), &o).unwrap();
    assert_eq!(steps(&csv(&other.join("metrics.csv")).1, 0), [3, 6, 7, 9, 12, 14]);
    assert_eq!(steps(&csv(&other.join("epochs.csv")).1, 1), [7, 14]);
}

#[test]
fn interrupt_writes_a_checkpoint_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = opts(&out, 2);
    let mut model = Fake { stop_at: Some((5, o.stop.clone())), ..Fake::new() };
    let s = run::train(common::gpu(), &mut model, &o).unwrap();
    assert_eq!((s.stop, s.global_step), (StopReason::Interrupted, 5));
    assert_eq!(tensors(&out.join("checkpoints/last.safetensors")).2, 5);
    // Steps 4 and 5 were not logged (Ctrl-C is seen only after the step); the checkpoint's weight check
    // covers them instead.
    assert_eq!(steps(&csv(&out.join("metrics.csv")).1, 0), [3]);
    assert!(!out.join("checkpoints/epoch_001.safetensors").exists());

    let mut b = Fake::new();
    let o = RunOptions { resume: Some(out.join("checkpoints/last.safetensors")), ..opts(&out, 2) };
    run::train(common::gpu(), &mut b, &o).unwrap();
    let mut a = Fake::new();
    run::train(common::gpu(), &mut a, &opts(&tmp.path().join("whole"), 2)).unwrap();
    assert_eq!((bits(&b.w), bits(&b.m), b.step), (bits(&a.w), bits(&a.m), 14));
}

#[test]
fn nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut model = Fake { nan_loss_at: Some(10), ..Fake::new() };
    let err = run::train(common::gpu(), &mut model, &opts(&out, 3)).unwrap_err().to_string();
    assert!(err.contains("step 12 (epoch 2): loss 'loss' is NaN, the mean of steps 10-12"), "{err}");
    let last = out.join("checkpoints/last.safetensors");
    assert!(err.contains(&format!("last good checkpoint is {} (step 7)", last.display())), "{err}");
    assert_eq!(tensors(&last).2, 7);
    // The bad row is logged, so the CSV shows where it went wrong.
    let (_, rows) = csv(&out.join("metrics.csv"));
    assert_eq!(rows.last().unwrap()[..3], ["12", "2", "nan"]);
}

#[test]
fn non_finite_weights_are_never_checkpointed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut model = Fake { nan_weights_at: Some(13), ..Fake::new() };
    let err = run::train(common::gpu(), &mut model, &opts(&out, 2)).unwrap_err().to_string();
    assert!(err.contains("step 14: tensor w holds NaN at index 2; not writing a checkpoint"), "{err}");
    assert_eq!(tensors(&out.join("checkpoints/last.safetensors")).2, 7);
    assert!(!out.join("checkpoints/epoch_002.safetensors").exists());
}

#[test]
fn bad_output_directories_and_checkpoints_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let gpu = common::gpu();

    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("notes.txt"), "mine").unwrap();
    let err = run::train(gpu, &mut Fake::new(), &opts(&full, 1)).unwrap_err().to_string();
    assert!(err.contains(&format!("--out {}: directory exists and is not empty", full.display())), "{err}");
    assert_eq!(listing(&full), [full.join("notes.txt")]);

    // Not writable: a path below a regular file (permission bits do not stop root).
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = format!("{:#}", run::train(gpu, &mut Fake::new(), &opts(&file.join("run"), 1)).unwrap_err());
    assert!(err.contains(&format!("cannot create the run directory {}", file.join("run").display())), "{err}");
    let err = run::train(gpu, &mut Fake::new(), &opts(&file, 1)).unwrap_err().to_string();
    assert!(err.contains("exists and is not a directory"), "{err}");

    // A checkpoint of another model kind names both kinds.
    let gan = tmp.path().join("gan.safetensors");
    let meta = HashMap::from([("kind".to_string(), "gan".to_string())]);
    checkpoint::save(&gan, &Fake::new().state(gpu).unwrap(), &meta).unwrap();
    let out = tmp.path().join("new");
    let o = RunOptions { resume: Some(gan.clone()), ..opts(&out, 1) };
    let err = run::train(gpu, &mut Fake::new(), &o).unwrap_err().to_string();
    assert!(err.contains(&format!("{}: a gan checkpoint, not a fake one", gan.display())), "{err}");
    let err = run::evaluate_checkpoint(gpu, &mut Fake::new(), &gan).unwrap_err().to_string();
    assert!(err.contains("a gan checkpoint, not a fake one"), "{err}");

    // A truncated checkpoint, and options out of range.
    let bad = tmp.path().join("bad.safetensors");
    std::fs::write(&bad, b"\x10\0\0\0\0\0\0\0{").unwrap();
    let err = format!(
        "{:#}",
        run::train(gpu, &mut Fake::new(), &RunOptions { resume: Some(bad), ..opts(&out, 1) }).unwrap_err()
    );
    assert!(err.contains("--resume") && err.contains("bad.safetensors"), "{err}");
    let err = run::train(gpu, &mut Fake::new(), &opts(&out, 0)).unwrap_err().to_string();
    assert!(err.contains("--epochs"), "{err}");
    let err = run::train(gpu, &mut Fake::new(), &RunOptions { max_steps: Some(0), ..opts(&out, 1) }).unwrap_err();
    assert!(err.to_string().contains("--max-steps"), "{err}");
    assert!(!out.exists());
}

/// Runs this build's `gputrain`.
fn cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    common::cli(env!("CARGO_BIN_EXE_gputrain"), args, cwd)
}

#[test]
fn cli_refuses_bad_input_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (code, _, err) = cli(&["train", "gan", "--label-smoothing", "1.5"], dir);
    assert_eq!(code, 1);
    assert!(common::error_line(&err).contains("--label-smoothing 1.5: the real label must be in (0, 1]"), "{err}");

    for (args, want) in [
        (&["train", "vae", "--data", "nowhere"][..], "error: loading --data nowhere: nowhere: not a directory"),
        (&["train", "vae", "--lr", "0"], "error: --lr 0: must be a positive number"),
        (&["train", "vae", "--batch-size", "0"], "error: --batch-size must be at least 1"),
        (
            &["eval", "vae", "--checkpoint", "missing.safetensors"],
            "error: --checkpoint: reading checkpoint missing.safetensors",
        ),
        (&["sample", "vae", "--checkpoint", "x", "--n", "50001"], "error: --n 50001: must be between 1 and 50000"),
        (&["train", "vae", "--resume", "gone.safetensors"], "error: --resume: reading checkpoint gone.safetensors"),
        // Refused before the dataset is looked at: the data directory does not exist either.
        (
            &["train", "gan", "--checkpoint-minutes=-1", "--data", "nowhere"],
            "error: --checkpoint-minutes must be a number of minutes ≥ 0, got -1",
        ),
        (
            &["train", "vae", "--checkpoint-minutes", "NaN"],
            "error: --checkpoint-minutes must be a number of minutes ≥ 0",
        ),
    ] {
        let (code, _, err) = cli(args, dir);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(common::error_line(&err).starts_with(want), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
    // clap's own errors (bad numbers, zero epochs) exit 2 naming the flag.
    for (args, flag) in
        [(&["train", "vae", "--epochs", "0"][..], "--epochs"), (&["train", "vae", "--max-steps", "x"], "--max-steps")]
    {
        let (code, _, err) = cli(args, dir);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(common::error_line(&err).contains(flag), "{args:?}: {err}");
    }
    // Nothing was written anywhere.
    assert!(listing(dir).is_empty(), "{:?}", listing(dir));
}
