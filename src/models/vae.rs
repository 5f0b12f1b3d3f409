//! The VAEs on images in [0, 1]: the convolutional VAE (z = 32 by default) on 32×32 images, and the
//! fully connected VAE of PyTorch's `examples/vae` (784-400-20) on unpadded 28×28 images.
//!
//! Four graphs share one parameter store: the training step (batch statistics, backward, Adam), the
//! test-set evaluation (running statistics), an encoder for chosen test images and a decoder for
//! given latents. Each compiles to its own frozen dispatch list.

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::codec::{Decoder, Encoder, TestPass};
use super::core::Core;
use super::Upsampling;
use crate::data::{Dataset, Split};
use crate::graph::{compile, Executor, Graph, Mode, ParamStore, StepStats, TensorId};
use crate::nn::{self, Conv, WeightInit};
use crate::ops::adam::AdamConfig;
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;
use crate::ops::gather::{pack_u8, GatherShape};
use crate::ops::random::{Distribution, RngKey};
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{Checkpoint, TensorData};
use crate::train::model::{Evaluation, ImageBatch, TrainableModel};

/// Counter slots: 0 is the training step; 1 indexes evaluation batches.
const EVAL_SLOT: usize = 1;
use super::SIDE;
/// Side of the fully connected VAE's images (`examples/vae`'s unpadded 28×28).
pub const MLP_SIDE: usize = 28;
/// Grid sizes for samples and reconstructions written each epoch.
const SAMPLES: usize = 64;
const RECONS: usize = 8;
/// Most test images `encode_test` takes at once.
const ENCODE: usize = 8;

/// Which VAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaeArch {
    /// Three stride-2 convolutions with batchnorm down to 128×4×4, transposed convolutions back, 32×32.
    Conv,
    /// PyTorch `examples/vae`: fully connected, ReLU hidden layers (`hidden`), 28×28 unpadded.
    Mlp,
}

impl VaeArch {
    pub fn parse(s: &str) -> Result<VaeArch> {
        match s {
            "conv" => Ok(VaeArch::Conv),
            "mlp" => Ok(VaeArch::Mlp),
            _ => bail!("--arch {s}: expected conv or mlp"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            VaeArch::Conv => "conv",
            VaeArch::Mlp => "mlp",
        }
    }
    /// Side of the images this VAE reads and writes.
    pub fn side(self) -> usize {
        match self {
            VaeArch::Conv => SIDE,
            VaeArch::Mlp => MLP_SIDE,
        }
    }
    /// `--latent` when none is given: 32 for the conv VAE, `examples/vae`'s 20 for the MLP.
    pub fn default_latent(self) -> usize {
        match self {
            VaeArch::Conv => 32,
            VaeArch::Mlp => 20,
        }
    }
}

/// The VAE's hyper-parameters: what `train vae` takes, config.json records and `--resume` reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    pub arch: VaeArch,
    pub batch_size: usize,
    /// Adam's learning rate, kept as given (f64) so that config.json prints it so; Adam runs in f32.
    pub lr: f64,
    pub latent: usize,
    pub seed: u64,
    /// The MLP VAE's hidden widths, from the image inwards (the decoder mirrors them).
    pub hidden: Vec<usize>,
    /// How the conv VAE's decoder upsamples.
    pub upsample: Upsampling,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            arch: VaeArch::Conv,
            batch_size: 128,
            lr: 1e-3,
            latent: 32,
            seed: 0,
            hidden: vec![400],
            upsample: Upsampling::Transposed,
        }
    }
}

impl VaeConfig {
    /// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if self.latent == 0 {
            bail!("--latent must be at least 1");
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            bail!("--hidden {:?}: need one or more widths of at least 1, e.g. 400 or 128,64", self.hidden);
        }
        if self.arch == VaeArch::Conv && self.hidden != VaeConfig::default().hidden {
            bail!("--hidden sets the MLP VAE's layers; add --arch mlp");
        }
        if self.arch == VaeArch::Mlp && self.upsample != Upsampling::Transposed {
            bail!("--upsample applies to the conv VAE's decoder; the MLP VAE has no convolutions");
        }
        super::check_lr(self.lr)
    }
}

/// The batch input of a graph: a gather from a GPU-resident split.
struct Input {
    shape: GatherShape,
    slot: usize,
}

/// Encoder → (μ, log σ²). Layer names follow the PyTorch modules of the README.
fn encoder(g: &mut Graph, x: TensorId, cfg: &VaeConfig, training: bool) -> Result<(TensorId, TensorId)> {
    match cfg.arch {
        VaeArch::Conv => conv_encoder(g, x, cfg.latent, training),
        VaeArch::Mlp => mlp_encoder(g, x, cfg),
    }
}

/// Decoder z → image probabilities.
fn decoder(g: &mut Graph, z: TensorId, cfg: &VaeConfig, training: bool, channels: usize) -> Result<TensorId> {
    match cfg.arch {
        VaeArch::Conv => conv_decoder(g, z, cfg, training, channels),
        VaeArch::Mlp => mlp_decoder(g, z, cfg, channels),
    }
}

/// The MLP VAE's layer names: `examples/vae`'s fc1, fc21, fc22, fc3, fc4 with one hidden layer; with
/// more, `encoder.N` and `decoder.N` Sequentials (Linear, ReLU, …) around fc_mu and fc_logvar.
struct MlpNames {
    deep: bool,
}

impl MlpNames {
    fn encoder(&self, i: usize) -> String {
        if self.deep {
            format!("encoder.{}", 2 * i)
        } else {
            "fc1".into()
        }
    }
    fn mu(&self) -> &'static str {
        if self.deep {
            "fc_mu"
        } else {
            "fc21"
        }
    }
    fn logvar(&self) -> &'static str {
        if self.deep {
            "fc_logvar"
        } else {
            "fc22"
        }
    }
    fn decoder(&self, i: usize) -> String {
        match (self.deep, i) {
            (true, _) => format!("decoder.{}", 2 * i),
            (false, 0) => "fc3".into(),
            (false, _) => "fc4".into(),
        }
    }
}

fn mlp_names(cfg: &VaeConfig) -> MlpNames {
    MlpNames { deep: cfg.hidden.len() > 1 }
}

fn mlp_encoder(g: &mut Graph, x: TensorId, cfg: &VaeConfig) -> Result<(TensorId, TensorId)> {
    let names = mlp_names(cfg);
    let b = g.shape(x)[0];
    let mut h = g.view(x, &[b, g.len(x) / b])?;
    for (i, &width) in cfg.hidden.iter().enumerate() {
        h = nn::linear(g, &names.encoder(i), h, width, WeightInit::Default)?;
        h = nn::act(g, h, Activation::Relu);
    }
    let mu = nn::linear(g, names.mu(), h, cfg.latent, WeightInit::Default)?;
    let logvar = nn::linear(g, names.logvar(), h, cfg.latent, WeightInit::Default)?;
    Ok((mu, logvar))
}

fn mlp_decoder(g: &mut Graph, z: TensorId, cfg: &VaeConfig, channels: usize) -> Result<TensorId> {
    let names = mlp_names(cfg);
    let b = g.shape(z)[0];
    let mut h = z;
    for (i, &width) in cfg.hidden.iter().rev().enumerate() {
        h = nn::linear(g, &names.decoder(i), h, width, WeightInit::Default)?;
        h = nn::act(g, h, Activation::Relu);
    }
    let pixels = channels * MLP_SIDE * MLP_SIDE;
    let h = nn::linear(g, &names.decoder(cfg.hidden.len()), h, pixels, WeightInit::Default)?;
    let p = nn::act(g, h, Activation::Sigmoid);
    g.view(p, &[b, channels, MLP_SIDE, MLP_SIDE])
}

fn conv_encoder(g: &mut Graph, x: TensorId, latent: usize, training: bool) -> Result<(TensorId, TensorId)> {
    let mut h = x;
    for (i, cout) in [(0, 32), (3, 64), (6, 128)] {
        h = nn::conv2d(
            g,
            &format!("encoder.{i}"),
            h,
            Conv { out: cout, k: 4, stride: 2, pad: 1, bias: true },
            WeightInit::Default,
        )?;
        h = nn::batchnorm_act(g, &format!("encoder.{}", i + 1), h, training, WeightInit::Default, BnAct::Relu)?;
    }
    let b = g.shape(x)[0];
    let flat = g.view(h, &[b, 128 * 4 * 4])?;
    let mu = nn::linear(g, "fc_mu", flat, latent, WeightInit::Default)?;
    let logvar = nn::linear(g, "fc_logvar", flat, latent, WeightInit::Default)?;
    Ok((mu, logvar))
}

fn conv_decoder(g: &mut Graph, z: TensorId, cfg: &VaeConfig, training: bool, channels: usize) -> Result<TensorId> {
    let b = g.shape(z)[0];
    let h = nn::linear(g, "decoder_fc", z, 128 * 4 * 4, WeightInit::Default)?;
    let h = nn::act(g, h, Activation::Relu);
    let mut h = g.view(h, &[b, 128, 4, 4])?;
    let mut idx = 0;
    for cout in [64, 32] {
        h = cfg.upsample.layer(g, ("decoder", &mut idx), h, (cout, true), WeightInit::Default)?;
        h = nn::batchnorm_act(g, &format!("decoder.{idx}"), h, training, WeightInit::Default, BnAct::Relu)?;
        idx += 2;
    }
    let h = cfg.upsample.layer(g, ("decoder", &mut idx), h, (channels, true), WeightInit::Default)?;
    Ok(nn::act(g, h, Activation::Sigmoid))
}

/// The full VAE with its two losses; returns (x, recon, mu).
fn full(g: &mut Graph, input: &Input, cfg: &VaeConfig, training: bool) -> Result<(TensorId, TensorId, TensorId)> {
    let s = &input.shape;
    let x = nn::gather(g, "images", s, input.slot)?;
    let counters = g.external("counters", &[crate::graph::params::COUNTER_SLOTS]);
    let (mu, logvar) = encoder(g, x, cfg, training)?;
    let key = RngKey { seed: cfg.seed, slot: input.slot, stream: 1 };
    let eps = nn::random(g, counters, &[s.batch, cfg.latent], Distribution::Normal { mean: 0.0, std: 1.0 }, key);
    let z = nn::reparameterize(g, mu, logvar, eps)?;
    let recon = decoder(g, z, cfg, training, s.channels)?;
    let bce = nn::bce_sum_per_image(g, recon, x)?;
    let kl = nn::kl_divergence(g, mu, logvar)?;
    g.add_loss("recon", bce);
    g.add_loss("kl", kl);
    Ok((x, recon, mu))
}

/// A training split on the GPU: pixels packed four to a word.
fn upload_split(gpu: &Gpu, split: &Split, label: &str) -> Result<GpuBuffer> {
    gpu.upload(label, &pack_u8(&split.images))
}

pub struct Vae {
    cfg: VaeConfig,
    core: Core,
    train: Executor,
    eval: TestPass,
    decoder: Decoder,
    encoder: Encoder,
    sample_z: Vec<f32>,
    _buffers: Vec<GpuBuffer>,
}

/// Pixels in [0, 1], padded with 0.
fn gather_shape(split: &Split, batch: usize, steps: usize, pad: usize) -> GatherShape {
    super::batch_shape(split, batch, steps, pad, (0.0, 1.0))
}

impl Vae {
    pub fn new(gpu: &Gpu, cfg: &VaeConfig, data: &Dataset) -> Result<Vae> {
        cfg.validate()?;
        let b = cfg.batch_size;
        let fitted = super::fit_images(data, "VAE", cfg.arch.side())?;
        let (data, channels, pad) = (fitted.data.as_ref(), fitted.channels, fitted.pad);
        if b == 0 || b > data.train.n || b > data.test.n {
            bail!(
                "--batch-size {b} must be between 1 and the smaller of the training ({}) and test ({}) set sizes of {}",
                data.train.n,
                data.test.n,
                data.source
            );
        }
        let adam = AdamConfig { lr: cfg.lr as f32, ..Default::default() };
        adam.validate().context("--lr")?;
        let steps_per_epoch = data.train.n / b;
        let eval_steps = data.test.n / b;

        let mut tg = Graph::new(gpu.kernels());
        let train_in = Input { shape: gather_shape(&data.train, b, steps_per_epoch, pad), slot: 0 };
        full(&mut tg, &train_in, cfg, true)?;
        let specs: Vec<_> = tg.params.iter().collect();
        let store = ParamStore::new(gpu, &specs, cfg.seed)?;
        let train_steps = compile(&mut tg, &store, Mode::Train { adam: &adam, end_of_step: true })?;

        let mut eg = Graph::new(gpu.kernels());
        let eval_in = Input { shape: gather_shape(&data.test, b, eval_steps, pad), slot: EVAL_SLOT };
        let (ex, erecon, _) = full(&mut eg, &eval_in, cfg, false)?;
        eg.mark_output(ex);
        eg.mark_output(erecon);
        let mut eval_steps_list = compile(&mut eg, &store, Mode::Forward)?;
        crate::graph::autodiff::increment_slot(&mut eg, &mut eval_steps_list, EVAL_SLOT);

        let train_images = upload_split(gpu, &data.train, "train-images")?;
        let test_images = upload_split(gpu, &data.test, "test-images")?;
        let core = Core::new(gpu, store, (data.train.n, steps_per_epoch, b), cfg.seed)?;

        let train = Executor::new(
            gpu,
            &tg,
            &train_steps,
            &core.store,
            &[("images", train_images.whole()), ("order", core.train_order.whole())],
        )?;
        let eval = TestPass::new(
            gpu,
            (&eg, &eval_steps_list),
            &core.store,
            test_images.whole(),
            (eval_steps, b, EVAL_SLOT),
            (ex, erecon),
        )?;
        let decoder = Decoder::new(gpu, &core.store, (SAMPLES, cfg.latent), (0.0, 1.0), |g, z| {
            decoder(g, z, cfg, false, channels)
        })?;
        let enc_shape = gather_shape(&data.test, ENCODE.min(data.test.n), 1, pad);
        let encoder = Encoder::new(gpu, &core.store, (&enc_shape, EVAL_SLOT), test_images.whole(), |g, x| {
            Ok(encoder(g, x, cfg, false)?.0)
        })?;

        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x5a5a_5a5a);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        let sample_z = (0..SAMPLES * cfg.latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
        Ok(Vae {
            cfg: cfg.clone(),
            core,
            train,
            eval,
            decoder,
            encoder,
            sample_z,
            _buffers: vec![train_images, test_images],
        })
    }

    /// Decodes up to 64 latent vectors (`latent` floats each) with eval-mode batchnorm.
    pub fn decode(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch> {
        self.decoder.decode(gpu, z)
    }

    /// μ of the given test images (eval-mode batchnorm), `latent` floats each.
    pub fn encode_test(&mut self, gpu: &Gpu, indices: &[usize]) -> Result<Vec<f32>> {
        self.encoder.encode(gpu, indices)
    }

    pub fn latent(&self) -> usize {
        self.cfg.latent
    }
}

impl TrainableModel for Vae {
    fn kind(&self) -> &'static str {
        "vae"
    }
    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }
    fn steps_per_epoch(&self) -> usize {
        self.core.steps_per_epoch
    }
    fn loss_names(&self) -> Vec<String> {
        vec!["loss".into(), "recon".into(), "kl".into()]
    }
    fn loss_unit(&self) -> &'static str {
        "nats per image"
    }

    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()> {
        self.core.start_epoch(gpu, epoch)
    }

    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        self.train.step(gpu, log)?;
        self.core.global_step += 1;
        Ok(())
    }

    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        let mut out = Vec::new();
        for r in self.train.poll_losses(gpu, wait)? {
            let (recon, kl) = (self.train.reported(&r, "recon")?, self.train.reported(&r, "kl")?);
            out.push((r.steps, vec![recon + kl, recon, kl]));
        }
        Ok(out)
    }

    fn global_step(&self) -> u64 {
        self.core.global_step
    }

    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        let f = self.eval.figures(gpu, &self.core.store, &["recon", "kl"])?;
        Ok(Evaluation { figures: vec![("neg_elbo".into(), f[0] + f[1]), ("recon".into(), f[0]), ("kl".into(), f[1])] })
    }

    fn samples(&mut self, gpu: &Gpu) -> Result<ImageBatch> {
        let z = self.sample_z.clone();
        self.decode(gpu, &z)
    }

    fn reconstructions(&mut self, gpu: &Gpu) -> Result<Option<ImageBatch>> {
        Ok(Some(self.eval.reconstructions(gpu, &self.core.store, RECONS)?))
    }

    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        // Every batchnorm layer normalises one batch per training step.
        let step = self.core.global_step;
        self.core.state(gpu, &|_| step)
    }

    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.core.load(gpu, ckpt)
    }

    fn step_dispatches(&self) -> Vec<&Prepared> {
        self.train.prepared.iter().collect()
    }

    fn step_stats(&self) -> StepStats {
        self.train.last_stats.clone()
    }
}
