//! `train gan` and `sample gan`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use gputrain::models::classifier::FeatureNet;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::models::gan_scores::{real_images, GanScorer};
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use crate::{checkpoint_settings, load_data, train_model, TrainVae};

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
    /// Images to draw (at most 64).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Output PNG.
    #[arg(long, value_name = "FILE", default_value = "samples.png")]
    out: PathBuf,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The GAN's hyper-parameters from a checkpoint's settings, defaults for anything missing.
pub fn config_from_json(s: &Value) -> GanConfig {
    let d = GanConfig::default();
    let u = |k: &str, d: u64| s.get(k).and_then(Value::as_u64).unwrap_or(d);
    let f = |k: &str, d: f32| s.get(k).and_then(Value::as_f64).map(|v| v as f32).unwrap_or(d);
    let arch = s.get("arch").and_then(Value::as_str).map(Arch::parse).transpose();
    GanConfig {
        arch: arch.ok().flatten().unwrap_or(d.arch),
        batch_size: u("batch_size", d.batch_size as u64) as usize,
        lr: f("lr", d.lr),
        latent: u("latent", d.latent as u64) as usize,
        seed: u("seed", d.seed),
        real_label: f("real_label", d.real_label),
    }
}

fn check(c: &GanConfig) -> Result<()> {
    if c.batch_size < 2 {
        bail!("--batch-size {}: the GAN needs at least 2 (batchnorm normalises over the batch)", c.batch_size);
    }
    if c.latent == 0 {
        bail!("--latent must be at least 1");
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        bail!("--lr {}: must be a positive number", c.lr);
    }
    if !(c.real_label > 0.0 && c.real_label <= 1.0) {
        bail!("--label-smoothing {}: the real label must be in (0, 1], e.g. 0.9", c.real_label);
    }
    Ok(())
}

pub fn train(
    a: TrainVae,
    arch: Option<String>,
    label_smoothing: Option<f32>,
    score_samples: usize,
    backend: BackendChoice,
    gpu: impl Fn() -> Result<Gpu>,
) -> Result<()> {
    let from = match &a.resume {
        Some(p) => checkpoint_settings(p).context("--resume")?,
        None => Value::Null,
    };
    let d = config_from_json(&from);
    let c = GanConfig {
        arch: match arch {
            Some(a) => Arch::parse(&a)?,
            None => d.arch,
        },
        batch_size: a.batch_size.unwrap_or(d.batch_size),
        lr: a.lr.unwrap_or(d.lr),
        latent: a.latent.unwrap_or(d.latent),
        seed: a.seed.unwrap_or(d.seed),
        real_label: label_smoothing.unwrap_or(d.real_label),
    };
    check(&c)?;
    let settings = json!({
        "model": "gan",
        "arch": c.arch.name(),
        "batch_size": c.batch_size,
        "lr": c.lr,
        "latent": c.latent,
        "seed": c.seed,
        "real_label": c.real_label,
    });
    train_model(a, &from, settings, 5, backend, gpu, |gpu, data| {
        let mut gan = Gan::new(gpu, &c, data)?;
        if score_samples > 0 && data.test.h == 28 && data.test.w == 28 {
            let real = real_images(&data.test, score_samples);
            let n = real.len() / (32 * 32);
            gan.attach_scorer(GanScorer::new(gpu, FeatureNet::embedded(gpu)?, &real)?, n);
        }
        Ok(Box::new(gan) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalGan, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if a.samples < 2 {
        bail!("--samples {}: need at least 2 images for a covariance", a.samples);
    }
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings)?;
    let gpu = gpu()?;
    let mut gan = Gan::new(&gpu, &config_from_json(&settings), &data)?;
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
    let mut scorer = GanScorer::new(&gpu, FeatureNet::embedded(&gpu)?, &real)?;
    let s = scorer.score_gan(&gpu, &mut gan, n, 0)?;
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
    if !(1..=64).contains(&a.n) {
        bail!("--n {}: must be between 1 and 64", a.n);
    }
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(None, &settings)?;
    let gpu = gpu()?;
    let mut model = Gan::new(&gpu, &config_from_json(&settings), &data)?;
    run::load_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
    let z: Vec<f32> = (0..a.n * model.latent()).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect();
    let images = model.generate(&gpu, &z)?;
    run::save_batch(&a.out, &images)?;
    println!("wrote {} ({} images)", a.out.display(), a.n);
    Ok(())
}
