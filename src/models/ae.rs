//! The plain convolutional autoencoder on unpadded 28×28 images in [0, 1]: two Conv + ReLU + MaxPool
//! stages down to 64×7×7, a linear code (z = 64 by default), and back through nearest-neighbour
//! upsampling and convolutions to a sigmoid; trained on the squared error summed per image.
//!
//! Graphs over one parameter store: the training step, the test-set evaluation (loss, per-pixel MSE),
//! and the shared codec's encoder (test images → codes) and decoder (codes → images).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::codec::{interpolate, Decoder, Encoder, TestPass};
use super::core::Core;
use crate::data::{Dataset, Split};
use crate::graph::{compile, Executor, Graph, Mode, ParamStore, StepStats, TensorId};
use crate::nn::{self, Conv, WeightInit};
use crate::ops::adam::AdamConfig;
use crate::ops::elementwise::Activation;
use crate::ops::gather::{pack_u8, GatherShape};
use crate::ops::mse::MseReduction;
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{Checkpoint, TensorData};
use crate::train::model::{Evaluation, ImageBatch, TrainableModel};

/// Side of the autoencoder's images; two 2× poolings take it to 7×7.
pub const SIDE: usize = 28;
const WIDTH: usize = 64;
const CODE_SIDE: usize = SIDE / 4;
/// Counter slot 1 indexes evaluation batches.
const EVAL_SLOT: usize = 1;
/// Codes decoded per call ([`Autoencoder::decode`]), and the per-epoch grid: 8 walks of 8 frames between pairs of test images.
pub const DECODE: usize = 64;
const WALKS: usize = 8;
/// Test images encoded per call (two per walk).
const ENCODE: usize = 2 * WALKS;
const RECONS: usize = 8;

/// The autoencoder's hyper-parameters: what `train ae` takes, config.json records and `--resume` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AeConfig {
    pub batch_size: usize,
    /// Adam's learning rate (f64 as given; Adam runs in f32).
    pub lr: f64,
    /// Size of the code.
    pub latent: usize,
    pub seed: u64,
}

impl Default for AeConfig {
    fn default() -> Self {
        AeConfig { batch_size: 128, lr: 1e-3, latent: 64, seed: 0 }
    }
}

impl AeConfig {
    /// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if self.latent == 0 {
            bail!("--latent must be at least 1");
        }
        super::check_lr(self.lr)
    }
}

fn conv3(g: &mut Graph, name: &str, x: TensorId, out: usize) -> Result<TensorId> {
    nn::conv2d(g, name, x, Conv { out, k: 3, stride: 1, pad: 1, bias: true }, WeightInit::Default)
}

/// Images → codes, the README's `encoder` Sequential (indices 0, 3 and 7 hold weights).
fn encoder(g: &mut Graph, x: TensorId, latent: usize) -> Result<TensorId> {
    let b = g.shape(x)[0];
    let mut h = x;
    for i in [0, 3] {
        h = conv3(g, &format!("encoder.{i}"), h, WIDTH)?;
        h = nn::act(g, h, Activation::Relu);
        h = nn::maxpool2d(g, h)?;
    }
    let flat = g.view(h, &[b, WIDTH * CODE_SIDE * CODE_SIDE])?;
    nn::linear(g, "encoder.7", flat, latent, WeightInit::Default)
}

/// Codes → image probabilities, the README's `decoder` Sequential (indices 0, 3 and 6 hold weights).
fn decoder(g: &mut Graph, z: TensorId, channels: usize) -> Result<TensorId> {
    let b = g.shape(z)[0];
    let h = nn::linear(g, "decoder.0", z, WIDTH * CODE_SIDE * CODE_SIDE, WeightInit::Default)?;
    let h = g.view(h, &[b, WIDTH, CODE_SIDE, CODE_SIDE])?;
    let h = nn::upsample_nearest2x(g, h)?;
    let h = conv3(g, "decoder.3", h, WIDTH)?;
    let h = nn::act(g, h, Activation::Relu);
    let h = nn::upsample_nearest2x(g, h)?;
    let h = conv3(g, "decoder.6", h, channels)?;
    Ok(nn::act(g, h, Activation::Sigmoid))
}

/// Gather → encoder → decoder with the training loss ("loss": squared error summed per image, mean
/// over the batch) and the per-pixel MSE as a metric; returns (x, reconstruction).
fn full(g: &mut Graph, shape: &GatherShape, slot: usize, latent: usize) -> Result<(TensorId, TensorId)> {
    let x = nn::gather(g, "images", shape, slot)?;
    let code = encoder(g, x, latent)?;
    let recon = decoder(g, code, shape.channels)?;
    let loss = nn::mse_loss(g, recon, x, MseReduction::SumPerItemMeanOverBatch)?;
    let per_pixel = nn::mse_loss(g, recon, x, MseReduction::Mean)?;
    g.add_loss("loss", loss);
    g.add_metric("mse", per_pixel);
    Ok((x, recon))
}

fn gather_shape(split: &Split, batch: usize, steps: usize) -> GatherShape {
    super::batch_shape(split, batch, steps, 0, (0.0, 1.0))
}

pub struct Autoencoder {
    cfg: AeConfig,
    core: Core,
    train: Executor,
    eval: TestPass,
    decoder: Decoder,
    encoder: Encoder,
    n_test: usize,
    _buffers: Vec<GpuBuffer>,
}

impl Autoencoder {
    pub fn new(gpu: &Gpu, cfg: &AeConfig, data: &Dataset) -> Result<Autoencoder> {
        cfg.validate()?;
        let fitted = super::fit_images(data, "autoencoder", SIDE)?;
        let (data, channels) = (fitted.data.as_ref(), fitted.channels);
        let b = cfg.batch_size;
        if b > data.train.n || b > data.test.n {
            bail!(
                "--batch-size {b} must be at most the smaller of the training ({}) and test ({}) set sizes of {}",
                data.train.n,
                data.test.n,
                data.source
            );
        }
        let adam = AdamConfig { lr: cfg.lr as f32, ..Default::default() };
        adam.validate().context("--lr")?;
        let (steps_per_epoch, eval_steps) = (data.train.n / b, data.test.n / b);

        let mut tg = Graph::new(gpu.kernels());
        full(&mut tg, &gather_shape(&data.train, b, steps_per_epoch), 0, cfg.latent)?;
        let specs: Vec<_> = tg.params.iter().collect();
        let store = ParamStore::new(gpu, &specs, cfg.seed)?;
        let train_steps = compile(&mut tg, &store, Mode::Train { adam: &adam, end_of_step: true })?;

        let mut eg = Graph::new(gpu.kernels());
        let (ex, erecon) = full(&mut eg, &gather_shape(&data.test, b, eval_steps), EVAL_SLOT, cfg.latent)?;
        eg.mark_output(ex);
        eg.mark_output(erecon);
        let mut eval_list = compile(&mut eg, &store, Mode::Forward)?;
        crate::graph::autodiff::increment_slot(&mut eg, &mut eval_list, EVAL_SLOT);

        let train_images = gpu.upload("train-images", &pack_u8(&data.train.images))?;
        let test_images = gpu.upload("test-images", &pack_u8(&data.test.images))?;
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
            (&eg, &eval_list),
            &core.store,
            test_images.whole(),
            (eval_steps, b, EVAL_SLOT),
            (ex, erecon),
        )?;
        let decoder = Decoder::new(gpu, &core.store, (DECODE, cfg.latent), (0.0, 1.0), |g, z| decoder(g, z, channels))?;
        let enc_shape = gather_shape(&data.test, ENCODE.min(data.test.n), 1);
        let encoder = Encoder::new(gpu, &core.store, (&enc_shape, EVAL_SLOT), test_images.whole(), |g, x| {
            encoder(g, x, cfg.latent)
        })?;
        Ok(Autoencoder {
            cfg: cfg.clone(),
            core,
            train,
            eval,
            decoder,
            encoder,
            n_test: data.test.n,
            _buffers: vec![train_images, test_images],
        })
    }

    /// The codes of the given test images (1 to 16 of them), `latent` floats each.
    pub fn encode_test(&mut self, gpu: &Gpu, indices: &[usize]) -> Result<Vec<f32>> {
        self.encoder.encode(gpu, indices)
    }

    /// Decodes up to 64 codes of `latent` floats each.
    pub fn decode(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch> {
        self.decoder.decode(gpu, z)
    }

    pub fn latent(&self) -> usize {
        self.cfg.latent
    }

    pub fn n_test(&self) -> usize {
        self.n_test
    }
}

impl TrainableModel for Autoencoder {
    fn kind(&self) -> &'static str {
        "ae"
    }
    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }
    fn steps_per_epoch(&self) -> usize {
        self.core.steps_per_epoch
    }
    fn loss_names(&self) -> Vec<String> {
        vec!["loss".into(), "mse".into()]
    }
    fn loss_unit(&self) -> &'static str {
        "squared error"
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
            out.push((r.steps, vec![self.train.reported(&r, "loss")?, self.train.reported(&r, "mse")?]));
        }
        Ok(out)
    }

    fn global_step(&self) -> u64 {
        self.core.global_step
    }

    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        let f = self.eval.figures(gpu, &self.core.store, &["loss", "mse"])?;
        Ok(Evaluation { figures: vec![("loss".into(), f[0]), ("mse".into(), f[1]), ("psnr".into(), psnr(f[1]))] })
    }

    /// Eight walks through code space between pairs of test images, one per row.
    fn samples(&mut self, gpu: &Gpu) -> Result<ImageBatch> {
        let pairs = WALKS.min(self.n_test / 2);
        let ends: Vec<usize> = (0..2 * pairs).collect();
        let codes = self.encoder.encode(gpu, &ends)?;
        let l = self.cfg.latent;
        let z: Vec<f32> = (0..pairs)
            .flat_map(|p| interpolate(&codes[2 * p * l..][..l], &codes[(2 * p + 1) * l..][..l], DECODE / WALKS))
            .collect();
        self.decoder.decode(gpu, &z)
    }

    fn reconstructions(&mut self, gpu: &Gpu) -> Result<Option<ImageBatch>> {
        Ok(Some(self.eval.reconstructions(gpu, &self.core.store, RECONS)?))
    }

    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        self.core.state(gpu, &|_| 0)
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

/// Peak signal-to-noise ratio in dB of a mean squared error on [0, 1] images.
pub fn psnr(mse: f64) -> f64 {
    10.0 * (1.0 / mse).log10()
}
