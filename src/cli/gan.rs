//! `train gan`, `eval gan` and `sample gan`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use gputrain::models::gan::{Arch, Gan, GanConfig, DCGAN_SIDES};
use gputrain::models::Upsampling;
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::scores::{real_images, FeatureNet, Scorer};
use gputrain::train::images::{in_chunks, save_samples, SampleFormat, MAX_SAMPLES};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use super::train::{checkpoint_settings, config_from_settings, load_data, settings_of, train_model, TrainArgs};

#[derive(Args)]
pub struct TrainGan {
    #[command(flatten)]
    common: TrainArgs,
    /// dcgan (PyTorch `examples/dcgan`, 32×32 or 64×64 by --image-size), mlp (fully connected G, conv +
    /// max-pool D, 28×28) or fc (fully connected G and D, D's logit trained with BCE-with-logits, 28×28)
    /// [default: dcgan, or the resumed checkpoint's].
    #[arg(long)]
    arch: Option<String>,
    /// Width of the DCGAN generator's last hidden layer; earlier layers double it [default: 64].
    #[arg(long, value_name = "N")]
    ngf: Option<usize>,
    /// Width of the DCGAN discriminator's first layer; later layers double it [default: 64].
    #[arg(long, value_name = "N")]
    ndf: Option<usize>,
    /// How the DCGAN generator upsamples: transposed (4×4 stride-2 transposed convolutions) or nearest
    /// (nearest-neighbour ×2 then a 3×3 convolution, against checkerboard artefacts) [default: transposed].
    #[arg(long, value_name = "HOW")]
    upsample: Option<String>,
    /// L2 penalty on the discriminator's parameters (Adam's weight_decay) [default: 1e-4 for --arch fc, else 0].
    #[arg(long, value_name = "L2")]
    weight_decay: Option<f64>,
    /// One-sided label smoothing: the discriminator's target for real images (e.g. 0.9) [default: 1].
    #[arg(long, value_name = "REAL_LABEL")]
    label_smoothing: Option<f64>,
    /// Generated images scored (IS, FID) at each epoch's evaluation; 0 skips the scores.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    score_samples: usize,
}

/// Noise vectors `Gan::generate` takes at once.
const GENERATE_BATCH: usize = 64;

#[derive(Args)]
pub struct EvalGan {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Generated images to score (and real test images to compare them with).
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Dataset directory (default: the checkpoint's, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleGan {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Images to draw, 1 to 50 000.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// png (a grid ⌈√N⌉ wide) or npy (float32 N×C×H×W in [−1, 1], for other tools).
    #[arg(long, default_value = "png")]
    format: SampleFormat,
    /// Output file [default: samples.png or samples.npy].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn train(a: TrainGan, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let TrainGan { common: a, arch, ngf, ndf, upsample, weight_decay, label_smoothing, score_samples } = a;
    let from = a.resumed_settings()?;
    let mut c: GanConfig = config_from_settings(&from)?;
    if let Some(arch) = arch {
        c.arch = Arch::parse(&arch)?;
    }
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.lr = a.lr.unwrap_or(c.lr);
    c.latent = a.latent.unwrap_or(c.latent);
    c.seed = a.seed.unwrap_or(c.seed);
    c.real_label = label_smoothing.unwrap_or(c.real_label);
    if let Some(u) = upsample {
        c.upsample = Upsampling::parse(&u)?;
    }
    let decay = if from.is_null() { c.arch.default_weight_decay() } else { c.weight_decay };
    c.weight_decay = weight_decay.unwrap_or(decay);
    c.ngf = ngf.unwrap_or(c.ngf);
    c.ndf = ndf.unwrap_or(c.ndf);
    // The DCGAN's size: the flag, else the resumed run's, else what the data has (64 for a folder),
    // with 28×28 IDX data padded to 32 as always.
    let size = match c.arch {
        Arch::Dcgan => a.image_size.or((!from.is_null()).then_some(c.image_size)),
        Arch::Mlp | Arch::Fc => Some(c.side()),
    };
    let data = a.load_data(&from, size, c.seed)?;
    let found = data.data.train.h;
    c.image_size = size.unwrap_or(if DCGAN_SIDES.contains(&found) { found } else { GanConfig::default().image_size });
    c.validate()?;
    let settings = settings_of("gan", &c)?;
    train_model(a, &from, settings, 5, backend, gpu, data, |gpu, data| {
        let mut gan = Gan::new(gpu, &c, data)?;
        if score_samples > 0 && data.test.h == 28 && data.test.w == 28 {
            let real = real_images(&data.test, score_samples);
            let n = real.len() / (32 * 32);
            gan.attach_scorer(Box::new(Scorer::new(gpu, FeatureNet::embedded(gpu)?, &real)?), n);
        }
        Ok(Box::new(gan) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalGan, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if a.samples < 2 {
        bail!("--samples {}: need at least 2 images for a covariance", a.samples);
    }
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let c: GanConfig = config_from_settings(&settings)?;
    let data = load_data(a.data.as_deref(), &settings, Some(c.side()))?;
    let gpu = gpu()?;
    let mut gan = Gan::new(&gpu, &c, &data)?;
    if gan.channels() != 1 || data.test.h != 28 {
        bail!(
            "{}: IS and FID use a Fashion-MNIST classifier, so they need 1×28×28 data; for this {}-channel model \
             use the sample grids and the losses in metrics.csv",
            a.checkpoint.display(),
            gan.channels()
        );
    }
    run::load_checkpoint(&gpu, &mut gan, &a.checkpoint)?;
    let real = real_images(&data.test, a.samples);
    let n = real.len() / (32 * 32);
    if n < a.samples {
        println!("note: the test set has {n} images, so {n} generated images are scored against them");
    }
    let mut scorer = Scorer::new(&gpu, FeatureNet::embedded(&gpu)?, &real)?;
    let s = scorer.score_generated(&gpu, &gan.generate_many(&gpu, n, 0)?, gan.side())?;
    // The ceiling: real training images scored exactly as the generated ones are.
    let ceiling = scorer.score(&gpu, &real_images(&data.train, n))?;
    println!("generated ({n} images): IS {:.3}  FID {:.3}", s.inception_score, s.fid);
    println!("real training images ({n}): IS {:.3}  FID {:.3}  (the ceiling)", ceiling.inception_score, ceiling.fid);
    println!("real test images: IS {:.3}", scorer.real_is);
    println!(
        "IS is {:.1}% of the real-data IS (classifier: assets/classifier.safetensors, a stand-in for Inception)",
        100.0 * s.inception_score / ceiling.inception_score
    );
    Ok(())
}

pub fn sample(a: SampleGan, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if !(1..=MAX_SAMPLES).contains(&a.n) {
        bail!("--n {}: must be between 1 and {MAX_SAMPLES}", a.n);
    }
    let out = a.out.unwrap_or_else(|| a.format.file("samples"));
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let c: GanConfig = config_from_settings(&settings)?;
    let data = load_data(None, &settings, Some(c.side()))?;
    let gpu = gpu()?;
    let mut model = Gan::new(&gpu, &c, &data)?;
    run::load_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
    let latent = model.latent();
    let z: Vec<f32> = (0..a.n * latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
    let images = in_chunks(&z, latent, GENERATE_BATCH, |z| model.generate(&gpu, z))?;
    save_samples(&out, a.format, &images)?;
    println!("wrote {} ({} images)", out.display(), a.n);
    Ok(())
}
