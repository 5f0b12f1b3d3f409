//! A device lost in the middle of a run ends it with an error naming the GPU, not a panic, and the
//! last checkpoint written before the loss stays loadable.
//!
//! Its own binary, not a module of tests/gpu/: it destroys a device on purpose. It cannot use the
//! shared `common::gpu()` (every later test would then fail on a lost device), so it opens a second
//! adapter and device of its own, which is what the one-device harness exists to avoid; and whether a
//! loss stays confined to that one device while other tests are submitting to theirs is up to the
//! driver (a real GPU's reset can take every context of the process down with it). In a process of
//! its own, what it loses is only its own.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use gputrain::data::Dataset;
use gputrain::graph::StepStats;
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::runtime::launch::Prepared;
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::checkpoint::{self, Checkpoint, TensorData};
use gputrain::train::model::{Evaluation, ImageBatch, TrainableModel};
use gputrain::train::run::{self, RunOptions};

/// The VAE, with the device destroyed when the global step reaches `lose_at`.
struct Doomed<'a> {
    vae: Vae,
    gpu: &'a Gpu,
    lose_at: u64,
}

impl TrainableModel for Doomed<'_> {
    fn kind(&self) -> &'static str {
        self.vae.kind()
    }
    fn batch_size(&self) -> usize {
        self.vae.batch_size()
    }
    fn steps_per_epoch(&self) -> usize {
        self.vae.steps_per_epoch()
    }
    fn loss_names(&self) -> Vec<String> {
        self.vae.loss_names()
    }
    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()> {
        self.vae.start_epoch(gpu, epoch)
    }
    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        if self.vae.global_step() == self.lose_at {
            self.gpu.device.destroy();
        }
        self.vae.step(gpu, log)
    }
    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        self.vae.poll_losses(gpu, wait)
    }
    fn global_step(&self) -> u64 {
        self.vae.global_step()
    }
    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        self.vae.evaluate(gpu)
    }
    fn samples(&mut self, gpu: &Gpu) -> Result<ImageBatch> {
        self.vae.samples(gpu)
    }
    fn reconstructions(&mut self, gpu: &Gpu) -> Result<Option<ImageBatch>> {
        self.vae.reconstructions(gpu)
    }
    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        self.vae.state(gpu)
    }
    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.vae.load(gpu, ckpt)
    }
    fn step_dispatches(&self) -> Vec<&Prepared> {
        self.vae.step_dispatches()
    }
    fn step_stats(&self) -> StepStats {
        self.vae.step_stats()
    }
}

#[test]
fn a_lost_device_ends_the_run_with_a_message_and_a_usable_checkpoint() {
    let gpu = Gpu::new(BackendChoice::resolve(None).unwrap()).unwrap();
    let d = Dataset::embedded().unwrap();
    let data = Dataset { train: common::head(&d.train, 32), test: common::head(&d.test, 8), source: "slice".into() };
    let vae = Vae::new(&gpu, &VaeConfig { batch_size: 8, lr: 1e-3, latent: 4, seed: 0, ..Default::default() }, &data)
        .unwrap();
    // 4 steps per epoch: epochs 1 and 2 complete with checkpoints, the device goes during epoch 3.
    let mut model = Doomed { vae, gpu: &gpu, lose_at: 9 };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let opts = RunOptions {
        epochs: 5,
        out: Some(out.clone()),
        quiet: true,
        log_every: 1,
        settings: serde_json::json!({"model": "vae"}),
        stop: Arc::new(AtomicBool::new(false)),
        ..Default::default()
    };
    let Err(err) = run::train(&gpu, &mut model, &opts) else { panic!("the run must fail once the device is gone") };
    let msg = format!("{err:#}");
    println!("run ended with: {msg}");
    assert!(msg.contains("GPU") || msg.contains("device"), "{msg}");
    let c = checkpoint::load(&out.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!(c.get_i64("optim.step", &[]).unwrap(), [8], "the last checkpoint is the one before the loss");
}
