//! The seeds' DCGAN on 1×32×32 images in [−1, 1] (z = 100, BCE, Adam 2e-4 with β = (0.5, 0.999)).
//!
//! One training iteration is two graphs replayed in one submit: the discriminator step (a real and a
//! generated batch, G frozen) and the generator step (the same noise through G and a frozen D, with
//! the non-saturating loss). Both draw the same noise from the step counter, so G's output is the same
//! batch in both; the G step normalises it without counting it again in G's running statistics, as
//! PyTorch's loop (one G forward per iteration, three D forwards) would.

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::gan_scores::GanScorer;
use crate::data::{Dataset, Split};
use crate::graph::{compile, Executor, Graph, LossReport, Mode, ParamStore, StepStats, TensorId};
use crate::nn::{self, BnMode, WeightInit};
use crate::ops::adam::AdamConfig;
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;
use crate::ops::gather::{pack_u8, GatherShape};
use crate::ops::loss::BceReduction;
use crate::ops::random::{Distribution, RngKey};
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer, KernelSet};
use crate::train::checkpoint::{Checkpoint, TensorData};
use crate::train::model::{Evaluation, ImageBatch, TrainableModel};

/// The fixed noise vectors of the per-epoch sample grid.
const SAMPLES: usize = 64;
/// Batchnorm layers of D normalise three batches per iteration (real, fake, fake in the G step).
const D_BATCHES_PER_STEP: u64 = 3;
/// Below this ratio of generated to real batch diversity the run warns of mode collapse.
pub const COLLAPSE_RATIO: f64 = 0.1;
/// An untrained generator's images are all alike without having collapsed: no warning before this step.
const COLLAPSE_WARMUP_STEPS: u64 = 200;
/// The DCGAN discriminator's (and the MLP generator's) LeakyReLU slope.
const LRELU_SLOPE: f32 = 0.2;

/// Which of the seeds' GANs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Transposed-conv generator and conv discriminator on 32×32 (28×28 padded by 2).
    Dcgan,
    /// Fully connected generator (Linear+LeakyReLU+BatchNorm1d ×2, Linear+Tanh) and a conv + max-pool
    /// discriminator, on unpadded 28×28 images.
    Mlp,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "dcgan" => Ok(Arch::Dcgan),
            "mlp" => Ok(Arch::Mlp),
            _ => bail!("--arch {s}: expected dcgan or mlp"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::Dcgan => "dcgan",
            Arch::Mlp => "mlp",
        }
    }
    /// Side of the generated images.
    pub fn side(self) -> usize {
        match self {
            Arch::Dcgan => super::SIDE,
            Arch::Mlp => 28,
        }
    }
}

/// The GAN's hyper-parameters: what `train gan` takes, config.json records and `--resume` reads back.
/// Numbers are kept as given (f64) so that config.json prints them so; the GPU works in f32.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GanConfig {
    pub arch: Arch,
    pub batch_size: usize,
    pub lr: f64,
    pub latent: usize,
    pub seed: u64,
    /// Target for real images in the D loss (1 = none; 0.9 is one-sided smoothing).
    pub real_label: f64,
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig { arch: Arch::Dcgan, batch_size: 128, lr: 2e-4, latent: 100, seed: 0, real_label: 1.0 }
    }
}

impl GanConfig {
    /// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            bail!("--batch-size {}: the GAN needs at least 2 (batchnorm normalises over the batch)", self.batch_size);
        }
        if self.latent == 0 {
            bail!("--latent must be at least 1");
        }
        super::check_lr(self.lr)?;
        if !(self.real_label > 0.0 && self.real_label <= 1.0) {
            bail!("--label-smoothing {}: the real label must be in (0, 1], e.g. 0.9", self.real_label);
        }
        Ok(())
    }
}

fn generator(g: &mut Graph, z: TensorId, bn: BnMode, arch: Arch, channels: usize) -> Result<TensorId> {
    match arch {
        Arch::Dcgan => dcgan_generator(g, z, bn, channels),
        Arch::Mlp => mlp_generator(g, z, bn),
    }
}

fn discriminator(g: &mut Graph, x: TensorId, bn: BnMode, arch: Arch) -> Result<TensorId> {
    match arch {
        Arch::Dcgan => dcgan_discriminator(g, x, bn),
        Arch::Mlp => mlp_discriminator(g, x),
    }
}

/// G: z [B, latent] → Linear 256 → Linear 512 → Linear 784 + Tanh, viewed as [B, 1, 28, 28].
fn mlp_generator(g: &mut Graph, z: TensorId, bn: BnMode) -> Result<TensorId> {
    let b = g.shape(z)[0];
    let mut h = z;
    for (i, out) in [(0, 256), (3, 512)] {
        h = nn::linear(g, &format!("generator.{i}"), h, out, WeightInit::Default)?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
        h = nn::batchnorm(g, &format!("generator.{}", i + 2), h, bn, WeightInit::Default)?;
    }
    let h = nn::linear(g, "generator.6", h, 28 * 28, WeightInit::Default)?;
    let h = nn::act(g, h, Activation::Tanh);
    g.view(h, &[b, 1, 28, 28])
}

/// D: 3 × (Conv k3 p1 + LeakyReLU + MaxPool 2) → flatten (64·3·3) → Linear 1 + Sigmoid.
fn mlp_discriminator(g: &mut Graph, x: TensorId) -> Result<TensorId> {
    let b = g.shape(x)[0];
    let mut h = x;
    for (i, cout) in [(0, 16), (3, 32), (6, 64)] {
        h = nn::conv2d(g, &format!("discriminator.{i}"), h, cout, 3, 1, 1, true, WeightInit::Default)?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
        h = nn::maxpool2d(g, h)?;
    }
    let flat = g.len(h) / b;
    let h = g.view(h, &[b, flat])?;
    let h = nn::linear(g, "discriminator.10", h, 1, WeightInit::Default)?;
    let p = nn::act(g, h, Activation::Sigmoid);
    g.view(p, &[b, 1, 1, 1])
}

/// G: z [B, latent, 1, 1] → images [B, 1, 32, 32] in [−1, 1].
fn dcgan_generator(g: &mut Graph, z: TensorId, bn: BnMode, channels: usize) -> Result<TensorId> {
    let mut h = z;
    for (i, cout, stride, pad) in [(0, 256, 1, 0), (3, 128, 2, 1), (6, 64, 2, 1)] {
        h = nn::conv_transpose2d(g, &format!("generator.{i}"), h, cout, 4, stride, pad, false, WeightInit::Dcgan)?;
        h = nn::batchnorm_act(g, &format!("generator.{}", i + 1), h, bn, WeightInit::Dcgan, BnAct::Relu)?;
    }
    let h = nn::conv_transpose2d(g, "generator.9", h, channels, 4, 2, 1, false, WeightInit::Dcgan)?;
    Ok(nn::act(g, h, Activation::Tanh))
}

/// D: images → probability of "real", [B, 1, 1, 1].
fn dcgan_discriminator(g: &mut Graph, x: TensorId, bn: BnMode) -> Result<TensorId> {
    let lrelu = Activation::LeakyRelu(LRELU_SLOPE);
    let h = nn::conv2d(g, "discriminator.0", x, 64, 4, 2, 1, false, WeightInit::Dcgan)?;
    let mut h = nn::act(g, h, lrelu);
    for (i, cout) in [(2, 128), (5, 256)] {
        h = nn::conv2d(g, &format!("discriminator.{i}"), h, cout, 4, 2, 1, false, WeightInit::Dcgan)?;
        let prefix = format!("discriminator.{}", i + 1);
        h = nn::batchnorm_act(g, &prefix, h, bn, WeightInit::Dcgan, BnAct::LeakyRelu(LRELU_SLOPE))?;
    }
    let h = nn::conv2d(g, "discriminator.8", h, 1, 4, 1, 0, false, WeightInit::Dcgan)?;
    Ok(nn::act(g, h, Activation::Sigmoid))
}

fn noise_shape(arch: Arch, batch: usize, latent: usize) -> Vec<usize> {
    match arch {
        Arch::Dcgan => vec![batch, latent, 1, 1],
        Arch::Mlp => vec![batch, latent],
    }
}

fn noise(g: &mut Graph, cfg: &GanConfig) -> TensorId {
    let counters = g.external("counters", &[crate::graph::params::COUNTER_SLOTS]);
    let key = RngKey { seed: cfg.seed, slot: 0, stream: 1 };
    let normal = Distribution::Normal { mean: 0.0, std: 1.0 };
    nn::random(g, counters, &noise_shape(cfg.arch, cfg.batch_size, cfg.latent), normal, key)
}

/// Pixel bytes → [−1, 1], padded (DCGAN: 28 → 32) with the background value −1.
fn gather_shape(split: &Split, batch: usize, steps: usize, pad: usize) -> GatherShape {
    super::batch_shape(split, batch, steps, pad, (-1.0, 1.0))
}

/// D step: BCE(D(x), real_label) + BCE(D(G(z)), 0), G frozen. Returns (graph, real batch, fake batch).
fn d_step(kernels: KernelSet, cfg: &GanConfig, shape: &GatherShape) -> Result<(Graph, TensorId, TensorId)> {
    let mut g = Graph::new(kernels);
    let b = cfg.batch_size;
    let x = nn::gather(&mut g, "images", shape, 0)?;
    let real = g.external("real_label", &[b, 1, 1, 1]);
    let zeros = g.external("fake_label", &[b, 1, 1, 1]);
    let p_real = discriminator(&mut g, x, BnMode::Train, cfg.arch)?;
    let l_real = nn::bce(&mut g, p_real, real, BceReduction::Mean)?;
    let z = noise(&mut g, cfg);
    let fake = generator(&mut g, z, BnMode::Train, cfg.arch, shape.channels)?;
    let p_fake = discriminator(&mut g, fake, BnMode::Train, cfg.arch)?;
    let l_fake = nn::bce(&mut g, p_fake, zeros, BceReduction::Mean)?;
    g.freeze("generator.");
    g.add_loss("d_real", l_real);
    g.add_loss("d_fake", l_fake);
    let (m_real, m_fake) = (nn::mean(&mut g, p_real), nn::mean(&mut g, p_fake));
    g.add_metric("D(x)", m_real);
    g.add_metric("D(G(z))", m_fake);
    g.mark_output(x);
    g.mark_output(fake);
    Ok((g, x, fake))
}

/// G step: BCE(D(G(z)), 1) through a frozen D (non-saturating loss).
fn g_step(kernels: KernelSet, cfg: &GanConfig, channels: usize) -> Result<Graph> {
    let mut g = Graph::new(kernels);
    let ones = g.external("g_label", &[cfg.batch_size, 1, 1, 1]);
    let z = noise(&mut g, cfg);
    let fake = generator(&mut g, z, BnMode::TrainNoStats, cfg.arch, channels)?;
    let p = discriminator(&mut g, fake, BnMode::Train, cfg.arch)?;
    let l = nn::bce(&mut g, p, ones, BceReduction::Mean)?;
    g.freeze("discriminator.");
    g.add_loss("g", l);
    Ok(g)
}

/// Mean squared distance between two images of a batch (NCHW, `per` values each): 2n/(n−1)·Σ var.
pub fn diversity(x: &[f32], per: usize) -> f64 {
    let n = x.len() / per;
    if n < 2 {
        return 0.0;
    }
    let mut total = 0.0;
    for p in 0..per {
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let v = x[i * per + p] as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        total += (s2 / n as f64 - mean * mean).max(0.0);
    }
    2.0 * n as f64 / (n - 1) as f64 * total
}

pub struct Gan {
    cfg: GanConfig,
    store: ParamStore,
    d: Executor,
    g: Executor,
    real_out: TensorId,
    fake_out: TensorId,
    sample: Executor,
    sample_z: GpuBuffer,
    sample_out: TensorId,
    fixed_z: Vec<f32>,
    train_order: GpuBuffer,
    n_train: usize,
    steps_per_epoch: usize,
    global_step: u64,
    /// Diversity ratios of logging steps whose losses have not arrived yet.
    pending_diversity: VecDeque<f32>,
    d_reports: VecDeque<LossReport>,
    g_reports: VecDeque<LossReport>,
    /// Bytes of the batches read for the diversity indicator on the last step.
    diversity_bytes: u64,
    collapsed: bool,
    scorer: Option<(GanScorer, usize)>,
    channels: usize,
    _buffers: Vec<GpuBuffer>,
}

impl Gan {
    pub fn new(gpu: &Gpu, cfg: &GanConfig, data: &Dataset) -> Result<Gan> {
        cfg.validate()?;
        let b = cfg.batch_size;
        let s = &data.train;
        let (channels, pad) = match cfg.arch {
            Arch::Dcgan => super::image_geometry(data, "DCGAN")?,
            Arch::Mlp if (s.channels, s.h, s.w) == (1, 28, 28) => (1, 0),
            Arch::Mlp => bail!(
                "the MLP GAN needs 1×28×28 images; the training set of {} has {}×{}×{}",
                data.source,
                s.channels,
                s.h,
                s.w
            ),
        };
        if b < 2 || b > s.n {
            bail!("--batch-size {b} must be between 2 (batchnorm needs a batch) and the training set size {}", s.n);
        }
        let adam = AdamConfig { lr: cfg.lr as f32, beta1: 0.5, beta2: 0.999, ..Default::default() };
        adam.validate().context("--lr")?;
        let steps_per_epoch = s.n / b;
        let shape = gather_shape(s, b, steps_per_epoch, pad);
        let (mut dg, real_out, fake_out) = d_step(gpu.kernel_set, cfg, &shape)?;
        let mut gg = g_step(gpu.kernel_set, cfg, channels)?;
        // G's trainable parameters first, then D's, so each optimiser updates one contiguous span;
        // G's running statistics are recorded only by the D step graph.
        let mut specs: Vec<_> = gg.params.iter().collect();
        specs.extend(dg.params.iter().filter(|p| !gg.params.iter().any(|q| q.name == p.name)));
        let store = ParamStore::new(gpu, &specs, cfg.seed)?;
        let d_steps = compile(&mut dg, &store, Mode::Train { adam: &adam, end_of_step: false })?;
        let g_steps = compile(&mut gg, &store, Mode::Train { adam: &adam, end_of_step: true })?;

        let mut sg = Graph::new(gpu.kernel_set);
        let z = sg.external("z", &noise_shape(cfg.arch, SAMPLES, cfg.latent));
        let sample_out = generator(&mut sg, z, BnMode::Eval, cfg.arch, channels)?;
        sg.mark_output(sample_out);
        let sample_steps = compile(&mut sg, &store, Mode::Forward)?;

        let images = gpu.upload("train-images", &pack_u8(&s.images))?;
        let train_order = gpu.zeros("train-order", (steps_per_epoch * b) as u64 * 4)?;
        let real_label = gpu.upload_f32("real-label", &vec![cfg.real_label as f32; b])?;
        let fake_label = gpu.zeros("fake-label", b as u64 * 4)?;
        let g_label = gpu.upload_f32("g-label", &vec![1.0; b])?;
        let sample_z = gpu.zeros("sample-z", (SAMPLES * cfg.latent) as u64 * 4)?;
        let d = Executor::new(
            gpu,
            &dg,
            &d_steps,
            &store,
            &[
                ("images", images.whole()),
                ("order", train_order.whole()),
                ("real_label", real_label.whole()),
                ("fake_label", fake_label.whole()),
            ],
        )?;
        let g = Executor::new(gpu, &gg, &g_steps, &store, &[("g_label", g_label.whole())])?;
        let sample = Executor::new(gpu, &sg, &sample_steps, &store, &[("z", sample_z.whole())])?;

        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x6a6a_6a6a);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        let fixed_z = (0..SAMPLES * cfg.latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
        Ok(Gan {
            cfg: cfg.clone(),
            store,
            d,
            g,
            real_out,
            fake_out,
            sample,
            sample_z,
            sample_out,
            fixed_z,
            train_order,
            n_train: s.n,
            steps_per_epoch,
            global_step: 0,
            pending_diversity: VecDeque::new(),
            d_reports: VecDeque::new(),
            g_reports: VecDeque::new(),
            diversity_bytes: 0,
            collapsed: false,
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
        let (side, c) = (self.cfg.arch.side(), self.channels);
        data.truncate(n * c * side * side);
        Ok(ImageBatch { data, nchw: [n, c, side, side], range: (-1.0, 1.0) })
    }

    pub fn arch(&self) -> Arch {
        self.cfg.arch
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Values per generated image.
    fn image_len(&self) -> usize {
        self.channels * self.cfg.arch.side().pow(2)
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

    /// Scores each epoch's evaluation with IS and FID on `samples` generated images against as many
    /// real test images (the rest of evaluation works without it).
    pub fn attach_scorer(&mut self, scorer: GanScorer, samples: usize) {
        self.scorer = Some((scorer, samples));
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
        self.steps_per_epoch
    }
    fn loss_names(&self) -> Vec<String> {
        ["d_loss", "g_loss", "d_x", "d_g_z", "diversity"].map(String::from).to_vec()
    }

    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()> {
        let count = self.steps_per_epoch * self.cfg.batch_size;
        gpu.write(&self.train_order, &super::epoch_order(self.cfg.seed, epoch, self.n_train, count));
        Ok(())
    }

    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        Executor::step_chain(gpu, &mut [&mut self.d, &mut self.g], log)?;
        self.global_step += 1;
        self.diversity_bytes = 0;
        if log {
            self.diversity_bytes = 2 * (self.cfg.batch_size * self.image_len() * 4) as u64;
            // The only per-step read beyond the losses: one real and one generated batch on logging
            // steps, for the mode-collapse indicator.
            let r = self.diversity_ratio(gpu)?;
            let collapsed = r < COLLAPSE_RATIO && self.global_step > COLLAPSE_WARMUP_STEPS;
            if collapsed && !self.collapsed {
                eprintln!(
                    "warning: step {}: generated images are {:.0}% as diverse as real ones (mode collapse?)",
                    self.global_step,
                    r * 100.0
                );
            }
            self.collapsed = collapsed;
            self.pending_diversity.push_back(r as f32);
        }
        Ok(())
    }

    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        // Both executors log in the same submit, so their reports arrive in pairs.
        self.d_reports.extend(self.d.poll_losses(gpu, wait)?);
        self.g_reports.extend(self.g.poll_losses(gpu, wait)?);
        let mut out = Vec::new();
        while !self.d_reports.is_empty() && !self.g_reports.is_empty() {
            let (d, g) = (self.d_reports.pop_front().unwrap(), self.g_reports.pop_front().unwrap());
            let div = self.pending_diversity.pop_front().unwrap_or(f32::NAN);
            let v = &d.values;
            out.push((d.steps, vec![v[0] + v[1], g.values[0], v[2], v[3], div]));
        }
        Ok(out)
    }

    fn global_step(&self) -> u64 {
        self.global_step
    }

    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        let z = self.fixed_z.clone();
        let fake = self.generate(gpu, &z)?;
        let mut figures = vec![("sample_diversity".into(), diversity(&fake.data, self.image_len()))];
        if let Some((mut scorer, n)) = self.scorer.take() {
            // Fixed noise (seed 0) every epoch, so the figures move only because G does.
            let s = scorer.score_gan(gpu, self, n, 0);
            self.scorer = Some((scorer, n));
            let s = s?;
            // The sample count is part of the name, so epochs.csv's header states it.
            figures.push((format!("is_{n}"), s.inception_score));
            figures.push((format!("fid_{n}"), s.fid));
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
        let step = self.global_step;
        let batches = |layer: &str| if layer.starts_with("discriminator.") { D_BATCHES_PER_STEP * step } else { step };
        crate::models::state::save(gpu, &self.store, step, &batches)
    }

    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.global_step = crate::models::state::load(gpu, &self.store, ckpt)?;
        Ok(())
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
