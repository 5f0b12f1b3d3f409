//! What the training loop needs from a model. The VAE (and later the GAN) implement this; the loop,
//! run directory, progress display, checkpoints and CLI are written against it alone.

use anyhow::Result;

use super::checkpoint::{Checkpoint, TensorData};
use crate::graph::StepStats;
use crate::runtime::launch::Prepared;
use crate::runtime::Gpu;

/// Test-set evaluation: named figures (e.g. "recon", "kl", "neg_elbo"), in a stable order.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub figures: Vec<(String, f64)>,
}

impl Evaluation {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Images for a PNG grid: NCHW values in `range`.
pub struct ImageBatch {
    pub data: Vec<f32>,
    pub nchw: [usize; 4],
    pub range: (f32, f32),
}

/// Figures computed from a model's generated images at each evaluation (the GAN's IS and FID): the
/// scorer takes images, so the model needs no knowledge of how they are scored.
pub trait ImageScorer {
    /// Named figures of `images`, in a stable order.
    fn figures(&mut self, gpu: &Gpu, images: &ImageBatch) -> Result<Vec<(String, f64)>>;
}

pub trait TrainableModel {
    /// "vae" or "gan": stored in checkpoints so a resume of the other model is refused.
    fn kind(&self) -> &'static str;
    fn batch_size(&self) -> usize;
    fn steps_per_epoch(&self) -> usize;
    /// Names of the values `poll_losses` reports, in order (e.g. ["loss", "recon", "kl"]).
    fn loss_names(&self) -> Vec<String>;
    /// What the losses measure, for the y axis of loss.png (the VAE's are "nats per image").
    fn loss_unit(&self) -> &'static str {
        "loss"
    }
    /// Shuffles and uploads the epoch's sample order (the only per-epoch upload).
    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()>;
    /// One training step: one submit. With `log`, losses since the last log are read back asynchronously.
    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()>;
    /// Warnings raised since the last call (e.g. the GAN's mode-collapse indicator), for the run to
    /// print through its progress display.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Loss averages that have arrived, oldest first: (steps covered, values in `loss_names` order).
    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>>;
    /// Optimiser steps completed so far (restored by `load`).
    fn global_step(&self) -> u64;
    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation>;
    /// A grid of samples from fixed noise (the same noise every call, so epochs are comparable).
    fn samples(&mut self, gpu: &Gpu) -> Result<ImageBatch>;
    /// Originals above their reconstructions (VAE) — `None` for models without one.
    fn reconstructions(&mut self, gpu: &Gpu) -> Result<Option<ImageBatch>>;
    /// Model weights under PyTorch state_dict names, plus optimiser state and step under `optim.`.
    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>>;
    /// Restores what `state` saved; errors name the checkpoint and the tensor that is wrong.
    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()>;
    /// The dispatches of one training step, in order (for per-kernel timing).
    fn step_dispatches(&self) -> Vec<&Prepared>;
    /// GPU work and host traffic of the last training step.
    fn step_stats(&self) -> StepStats;
}
