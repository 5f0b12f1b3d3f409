//! `train vae`, `eval vae` and `sample vae`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use gputrain::models::codec::interpolate;
use gputrain::models::vae::{Vae, VaeArch, VaeConfig};
use gputrain::models::Upsampling;
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::images::{in_chunks, save_samples, SampleFormat, MAX_SAMPLES};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use super::train::{checkpoint_settings, config_from_settings, load_data, settings_of, train_model, TrainArgs};

/// Latent vectors `Vae::decode` takes at once.
const DECODE_BATCH: usize = 64;

#[derive(Args)]
pub struct TrainVae {
    #[command(flatten)]
    common: TrainArgs,
    /// conv (strided convolutions with batchnorm, 32×32) or mlp (PyTorch `examples/vae`: fully
    /// connected, 28×28) [default: conv, or the resumed checkpoint's].
    #[arg(long)]
    arch: Option<String>,
    /// The MLP VAE's hidden widths, e.g. 400 or 128,64 [default: 400].
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// How the conv VAE's decoder upsamples: transposed or nearest (nearest-neighbour ×2 then a 3×3
    /// convolution) [default: transposed].
    #[arg(long, value_name = "HOW")]
    upsample: Option<String>,
}

#[derive(Args)]
pub struct EvalVae {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Dataset directory (default: the one the checkpoint was trained on, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleVae {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Images to draw, 1 to 50 000 [default: 64, or 16 frames with --interpolate].
    #[arg(long)]
    n: Option<usize>,
    /// png (a grid ⌈√N⌉ wide) or npy (float32 N×C×H×W in [0, 1], for other tools).
    #[arg(long, default_value = "png")]
    format: SampleFormat,
    /// Output file [default: samples.png or .npy, or interpolation.png or .npy].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Walk the latent space from test image --from to test image --to instead of sampling.
    #[arg(long)]
    interpolate: bool,
    #[arg(long, default_value_t = 0)]
    from: usize,
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Dataset for --interpolate's test images (default: the checkpoint's, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

pub fn train(a: TrainVae, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let TrainVae { common: a, arch, hidden, upsample } = a;
    let from = a.resumed_settings()?;
    let mut c: VaeConfig = config_from_settings(&from)?;
    if let Some(arch) = arch {
        c.arch = VaeArch::parse(&arch)?;
    }
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.lr = a.lr.unwrap_or(c.lr);
    let latent = if from.is_null() { c.arch.default_latent() } else { c.latent };
    c.latent = a.latent.unwrap_or(latent);
    c.seed = a.seed.unwrap_or(c.seed);
    c.hidden = hidden.unwrap_or(c.hidden);
    if let Some(u) = upsample {
        c.upsample = Upsampling::parse(&u)?;
    }
    c.validate()?;
    let side = c.arch.side();
    if let Some(s) = a.image_size.filter(|s| *s != side) {
        bail!("--image-size {s}: the {} VAE works on {side}×{side} images", c.arch.name());
    }
    let data = a.load_data(&from, Some(side), c.seed)?;
    let settings = settings_of("vae", &c)?;
    train_model(a, &from, settings, 10, backend, gpu, data, |gpu, data| {
        Ok(Box::new(Vae::new(gpu, &c, data)?) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalVae, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let c: VaeConfig = config_from_settings(&settings)?;
    let data = load_data(a.data.as_deref(), &settings, Some(c.arch.side()))?;
    let gpu = gpu()?;
    let mut model = Vae::new(&gpu, &c, &data)?;
    let eval = run::evaluate_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let f = |k: &str| eval.get(k).map(|v| format!("{v:.3}")).unwrap_or_else(|| "?".into());
    println!("test set: recon {}  KL {}  negative ELBO {} nats/image", f("recon"), f("kl"), f("neg_elbo"));
    Ok(())
}

pub fn sample(a: SampleVae, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let n = a.n.unwrap_or(if a.interpolate { 16 } else { 64 });
    let least = if a.interpolate { 2 } else { 1 };
    if !(least..=MAX_SAMPLES).contains(&n) {
        bail!("--n {n}: must be between {least} and {MAX_SAMPLES}");
    }
    let out = a.out.unwrap_or_else(|| a.format.file(if a.interpolate { "interpolation" } else { "samples" }));
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let c: VaeConfig = config_from_settings(&settings)?;
    let data = load_data(a.data.as_deref(), &settings, Some(c.arch.side()))?;
    if a.interpolate {
        for (flag, i) in [("--from", a.from), ("--to", a.to)] {
            if i >= data.test.n {
                bail!("{flag} {i}: the test set has {} images", data.test.n);
            }
        }
    }
    let gpu = gpu()?;
    let mut model = Vae::new(&gpu, &c, &data)?;
    run::load_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let latent = model.latent();
    let z: Vec<f32> = if a.interpolate {
        let mu = model.encode_test(&gpu, &[a.from, a.to])?;
        let (za, zb) = mu.split_at(latent);
        interpolate(za, zb, n)
    } else {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        (0..n * latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect()
    };
    let images = in_chunks(&z, latent, DECODE_BATCH, |z| model.decode(&gpu, z))?;
    save_samples(&out, a.format, &images)?;
    println!("wrote {} ({n} images)", out.display());
    Ok(())
}
