//! The DCGAN on 1×32×32 images in [−1, 1] (z = 100, BCE, Adam 2e-4 with β = (0.5, 0.999)).
//!
//! One training iteration is two graphs replayed in one submit: the discriminator step (a real and a
//! generated batch, G frozen) and the generator step (the same noise through G and a frozen D, with
//! the non-saturating loss). Both draw the same noise from the step counter, so G's output is the same
//! batch in both; the G step normalises it without counting it again in G's running statistics, as
//! PyTorch's loop (one G forward per iteration, three D forwards) would.

mod arch;
mod config;
pub mod diversity;
mod steps;

pub use config::{Arch, GanConfig, DCGAN_SIDES};
pub use diversity::{diversity, COLLAPSE_RATIO};

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use std::collections::VecDeque;

use super::core::Core;
use crate::data::Dataset;
use crate::graph::{compile, Executor, Graph, LossReport, Mode, ParamStore, StepStats, TensorId};
use crate::nn::BnMode;
use crate::ops::adam::AdamConfig;
use crate::ops::gather::pack_u8;
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{Checkpoint, TensorData};
use crate::train::model::{Evaluation, ImageBatch, ImageScorer, TrainableModel};
use arch::generator;
use diversity::COLLAPSE_WARMUP_STEPS;
use steps::{d_step, g_step, gather_shape, noise_shape};

/// The fixed noise vectors of the per-epoch sample grid.
const SAMPLES: usize = 64;
/// Batchnorm layers of D normalise three batches per iteration (real, fake, fake in the G step).
const D_BATCHES_PER_STEP: u64 = 3;

pub struct Gan {
    cfg: GanConfig,
    core: Core,
    d: Executor,
    g: Executor,
    real_out: TensorId,
    fake_out: TensorId,
    sample: Executor,
    sample_z: GpuBuffer,
    sample_out: TensorId,
    fixed_z: Vec<f32>,
    /// Diversity ratios of logging steps whose losses have not arrived yet.
    pending_diversity: VecDeque<f32>,
    d_reports: VecDeque<LossReport>,
    g_reports: VecDeque<LossReport>,
    /// Bytes of the batches read for the diversity indicator on the last step.
    diversity_bytes: u64,
    collapsed: bool,
    /// Raised by `step`, printed by the run.
    warnings: Vec<String>,
    scorer: Option<(Box<dyn ImageScorer>, usize)>,
    channels: usize,
    _buffers: Vec<GpuBuffer>,
}

impl Gan {
    pub fn new(gpu: &Gpu, cfg: &GanConfig, data: &Dataset) -> Result<Gan> {
        cfg.validate()?;
        let b = cfg.batch_size;
        let fitted = crate::models::fit_images(data, "GAN", cfg.side())?;
        let (s, channels, pad) = (&fitted.data.train, fitted.channels, fitted.pad);
        if cfg.arch != Arch::Dcgan && channels != 1 {
            bail!("the {} GAN makes 1-channel images; {} has {channels} channels", cfg.arch.name(), data.source);
        }
        if b < 2 || b > s.n {
            bail!(
                "--batch-size {b} must be between 2 (batchnorm needs a batch) and the training set size {} of {}",
                s.n,
                data.source
            );
        }
        let adam = AdamConfig { lr: cfg.lr as f32, beta1: 0.5, beta2: 0.999, ..Default::default() };
        adam.validate().context("--lr")?;
        // One optimiser per network, as PyTorch's loop has: only D's carries the L2 penalty.
        let adam_d = AdamConfig { weight_decay: cfg.weight_decay as f32, ..adam };
        let steps_per_epoch = s.n / b;
        let shape = gather_shape(s, b, steps_per_epoch, pad);
        let (mut dg, real_out, fake_out) = d_step(gpu.kernels(), cfg, &shape)?;
        let mut gg = g_step(gpu.kernels(), cfg, channels)?;
        // G's trainable parameters first, then D's, so each optimiser updates one contiguous span;
        // G's running statistics are recorded only by the D step graph.
        let mut specs: Vec<_> = gg.params.iter().collect();
        specs.extend(dg.params.iter().filter(|p| !gg.params.iter().any(|q| q.name == p.name)));
        let store = ParamStore::new(gpu, &specs, cfg.seed)?;
        let d_steps = compile(&mut dg, &store, Mode::Train { adam: &adam_d, end_of_step: false })?;
        let g_steps = compile(&mut gg, &store, Mode::Train { adam: &adam, end_of_step: true })?;

        let mut sg = Graph::new(gpu.kernels());
        let z = sg.external("z", &noise_shape(cfg.arch, SAMPLES, cfg.latent));
        let sample_out = generator(&mut sg, z, BnMode::Eval, cfg, channels)?;
        sg.mark_output(sample_out);
        let sample_steps = compile(&mut sg, &store, Mode::Forward)?;

        let images = gpu.upload("train-images", &pack_u8(&s.images))?;
        let core = Core::new(gpu, store, (s.n, steps_per_epoch, b), cfg.seed)?;
        let real_label = gpu.upload_f32("real-label", &vec![cfg.real_label as f32; b])?;
        let fake_label = gpu.zeros("fake-label", b as u64 * 4)?;
        let g_label = gpu.upload_f32("g-label", &vec![1.0; b])?;
        let sample_z = gpu.zeros("sample-z", (SAMPLES * cfg.latent) as u64 * 4)?;
        let d = Executor::new(
            gpu,
            &dg,
            &d_steps,
            &core.store,
            &[
                ("images", images.whole()),
                ("order", core.train_order.whole()),
                ("real_label", real_label.whole()),
                ("fake_label", fake_label.whole()),
            ],
        )?;
        let g = Executor::new(gpu, &gg, &g_steps, &core.store, &[("g_label", g_label.whole())])?;
        let sample = Executor::new(gpu, &sg, &sample_steps, &core.store, &[("z", sample_z.whole())])?;

        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x6a6a_6a6a);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        let fixed_z = (0..SAMPLES * cfg.latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
        Ok(Gan {
            cfg: cfg.clone(),
            core,
            d,
            g,
            real_out,
            fake_out,
            sample,
            sample_z,
            sample_out,
            fixed_z,
            pending_diversity: VecDeque::new(),
            d_reports: VecDeque::new(),
            g_reports: VecDeque::new(),
            diversity_bytes: 0,
            collapsed: false,
            warnings: Vec::new(),
            scorer: None,
            channels,
            _buffers: vec![images, real_label, fake_label, g_label],
        })
    }

    pub fn latent(&self) -> usize {
        self.cfg.latent
    }

    /// Generates up to 64 images from the given noise (`latent` floats each), eval-mode batchnorm.
    pub fn generate(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch> {
        let n = z.len() / self.cfg.latent;
        if n == 0 || n > SAMPLES || !z.len().is_multiple_of(self.cfg.latent) {
            bail!("generate: need 1 to {SAMPLES} noise vectors of {} floats, got {} floats", self.cfg.latent, z.len());
        }
        let mut padded = z.to_vec();
        padded.resize(SAMPLES * self.cfg.latent, 0.0);
        gpu.write(&self.sample_z, &padded);
        self.sample.step(gpu, false)?;
        let mut data = self.sample.read(gpu, self.sample_out)?;
        let (side, c) = (self.cfg.side(), self.channels);
        data.truncate(n * c * side * side);
        Ok(ImageBatch { data, nchw: [n, c, side, side], range: (-1.0, 1.0) })
    }

    pub fn arch(&self) -> Arch {
        self.cfg.arch
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Side of the generated images.
    pub fn side(&self) -> usize {
        self.cfg.side()
    }

    /// Values per generated image.
    fn image_len(&self) -> usize {
        self.channels * self.cfg.side().pow(2)
    }

    /// `n` images from noise drawn with `seed`, generated 64 at a time (NCHW values in [−1, 1]).
    pub fn generate_many(&mut self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        let per = self.image_len();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        let mut out = Vec::with_capacity(n * per);
        while out.len() < n * per {
            let k = (n - out.len() / per).min(SAMPLES);
            let z: Vec<f32> =
                (0..k * self.cfg.latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
            out.extend(self.generate(gpu, &z)?.data);
        }
        Ok(out)
    }

    /// Adds `scorer`'s figures (IS and FID) of `samples` generated images to each epoch's evaluation
    /// (the rest of evaluation works without it).
    pub fn attach_scorer(&mut self, scorer: Box<dyn ImageScorer>, samples: usize) {
        self.scorer = Some((scorer, samples));
    }

    /// `n` images from noise drawn with `seed` as one batch (see [`Gan::generate_many`]).
    pub fn generated(&mut self, gpu: &Gpu, n: usize, seed: u64) -> Result<ImageBatch> {
        let data = self.generate_many(gpu, n, seed)?;
        let side = self.cfg.side();
        Ok(ImageBatch { data, nchw: [n, self.channels, side, side], range: (-1.0, 1.0) })
    }

    /// Only the discriminator update of an iteration (its losses are logged), for tests of gradient routing.
    pub fn step_discriminator(&mut self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.d.step(gpu, true)?;
        Ok(self.d.poll_losses(gpu, true)?.pop().context("no discriminator losses")?.values)
    }

    /// Only the generator update of an iteration (which also advances the step counter).
    pub fn step_generator(&mut self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.g.step(gpu, true)?;
        Ok(self.g.poll_losses(gpu, true)?.pop().context("no generator losses")?.values)
    }

    /// Generated-batch diversity over real-batch diversity for the last step's batches.
    fn diversity_ratio(&self, gpu: &Gpu) -> Result<f64> {
        let per = self.image_len();
        let real = diversity(&self.d.read(gpu, self.real_out)?, per);
        let fake = diversity(&self.d.read(gpu, self.fake_out)?, per);
        Ok(if real > 0.0 { fake / real } else { 0.0 })
    }
}

impl TrainableModel for Gan {
    fn kind(&self) -> &'static str {
        "gan"
    }
    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }
    fn steps_per_epoch(&self) -> usize {
        self.core.steps_per_epoch
    }
    fn loss_names(&self) -> Vec<String> {
        ["d_loss", "g_loss", "d_x", "d_g_z", "diversity"].map(String::from).to_vec()
    }

    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()> {
        self.core.start_epoch(gpu, epoch)
    }

    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        Executor::step_chain(gpu, &mut [&mut self.d, &mut self.g], log)?;
        self.core.global_step += 1;
        self.diversity_bytes = 0;
        if log {
            self.diversity_bytes = 2 * (self.cfg.batch_size * self.image_len() * 4) as u64;
            // The only per-step read beyond the losses: one real and one generated batch on logging
            // steps, for the mode-collapse indicator.
            let r = self.diversity_ratio(gpu)?;
            let collapsed = r < COLLAPSE_RATIO && self.core.global_step > COLLAPSE_WARMUP_STEPS;
            if collapsed && !self.collapsed {
                self.warnings.push(format!(
                    "step {}: generated images are {:.0}% as diverse as real ones (mode collapse?)",
                    self.core.global_step,
                    r * 100.0
                ));
            }
            self.collapsed = collapsed;
            self.pending_diversity.push_back(r as f32);
        }
        Ok(())
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        // Both executors log in the same submit, so their reports arrive in pairs.
        self.d_reports.extend(self.d.poll_losses(gpu, wait)?);
        self.g_reports.extend(self.g.poll_losses(gpu, wait)?);
        let mut out = Vec::new();
        while !self.d_reports.is_empty() && !self.g_reports.is_empty() {
            let (d, g) = (self.d_reports.pop_front().unwrap(), self.g_reports.pop_front().unwrap());
            let div = self.pending_diversity.pop_front().unwrap_or(f32::NAN);
            let by_name = |name: &str| self.d.reported(&d, name);
            let d_loss = by_name("d_real")? + by_name("d_fake")?;
            let g_loss = self.g.reported(&g, "g")?;
            out.push((d.steps, vec![d_loss, g_loss, by_name("D(x)")?, by_name("D(G(z))")?, div]));
        }
        Ok(out)
    }

    fn global_step(&self) -> u64 {
        self.core.global_step
    }

    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        let z = self.fixed_z.clone();
        let fake = self.generate(gpu, &z)?;
        let mut figures = vec![("sample_diversity".into(), diversity(&fake.data, self.image_len()))];
        if let Some((mut scorer, n)) = self.scorer.take() {
            // Fixed noise (seed 0) every epoch, so the figures move only because G does.
            let s = self.generated(gpu, n, 0).and_then(|images| scorer.figures(gpu, &images));
            self.scorer = Some((scorer, n));
            figures.extend(s?);
        }
        Ok(Evaluation { figures })
    }

    fn samples(&mut self, gpu: &Gpu) -> Result<ImageBatch> {
        let z = self.fixed_z.clone();
        self.generate(gpu, &z)
    }

    fn reconstructions(&mut self, _gpu: &Gpu) -> Result<Option<ImageBatch>> {
        Ok(None)
    }

    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        let step = self.core.global_step;
        let batches = |layer: &str| if layer.starts_with("discriminator.") { D_BATCHES_PER_STEP * step } else { step };
        self.core.state(gpu, &batches)
    }

    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.core.load(gpu, ckpt)
    }

    fn step_dispatches(&self) -> Vec<&Prepared> {
        self.d.prepared.iter().chain(&self.g.prepared).collect()
    }

    fn step_stats(&self) -> StepStats {
        let (d, g) = (&self.d.last_stats, &self.g.last_stats);
        StepStats {
            dispatches: d.dispatches + g.dispatches,
            submits: 1,
            bytes_uploaded: 0,
            bytes_read_back: d.bytes_read_back + g.bytes_read_back + self.diversity_bytes,
        }
    }
}
