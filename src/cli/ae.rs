//! `train ae`, `eval ae` and `sample ae`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use gputrain::models::ae::{psnr, AeConfig, Autoencoder, DECODE, SIDE};
use gputrain::models::codec::interpolate;
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::images::{in_chunks, save_samples, SampleFormat, MAX_SAMPLES};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use super::train::{checkpoint_settings, config_from_settings, load_data, settings_of, train_model, TrainArgs};

#[derive(Args)]
pub struct EvalAe {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Dataset directory (default: the one the checkpoint was trained on, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleAe {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Walk the code from test image --from to test image --to (the autoencoder has no prior to sample
    /// from, so this is its only mode).
    #[arg(long)]
    interpolate: bool,
    #[arg(long, default_value_t = 0)]
    from: usize,
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Frames of the walk, 2 to 50 000 [default: 16].
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// png (a grid ⌈√N⌉ wide) or npy (float32 N×C×H×W in [0, 1]).
    #[arg(long, default_value = "png")]
    format: SampleFormat,
    /// Output file [default: interpolation.png or .npy].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Dataset of the test images (default: the checkpoint's, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

pub fn train(a: TrainArgs, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let from = a.resumed_settings()?;
    let mut c: AeConfig = config_from_settings(&from)?;
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.lr = a.lr.unwrap_or(c.lr);
    c.latent = a.latent.unwrap_or(c.latent);
    c.seed = a.seed.unwrap_or(c.seed);
    c.validate()?;
    if let Some(s) = a.image_size.filter(|s| *s != SIDE) {
        bail!("--image-size {s}: the autoencoder works on {SIDE}×{SIDE} images");
    }
    let data = a.load_data(&from, Some(SIDE), c.seed)?;
    let settings = settings_of("ae", &c)?;
    train_model(a, &from, settings, 5, backend, gpu, data, |gpu, data| {
        Ok(Box::new(Autoencoder::new(gpu, &c, data)?) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalAe, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings, Some(SIDE))?;
    let gpu = gpu()?;
    let mut model = Autoencoder::new(&gpu, &config_from_settings(&settings)?, &data)?;
    let e = run::evaluate_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let (mse, loss) = (e.get("mse").unwrap_or(f64::NAN), e.get("loss").unwrap_or(f64::NAN));
    println!("test set: MSE {mse:.6} per pixel  PSNR {:.2} dB  squared error {loss:.3} per image", psnr(mse));
    Ok(())
}

pub fn sample(a: SampleAe, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if !a.interpolate {
        bail!("the autoencoder has no prior to sample from: use --interpolate [--from I --to J]");
    }
    if !(2..=MAX_SAMPLES).contains(&a.n) {
        bail!("--n {}: must be between 2 and {MAX_SAMPLES}", a.n);
    }
    let out = a.out.unwrap_or_else(|| a.format.file("interpolation"));
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings, Some(SIDE))?;
    for (flag, i) in [("--from", a.from), ("--to", a.to)] {
        if i >= data.test.n {
            bail!("{flag} {i}: the test set has {} images", data.test.n);
        }
    }
    let gpu = gpu()?;
    let mut model = Autoencoder::new(&gpu, &config_from_settings(&settings)?, &data)?;
    run::load_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let codes = model.encode_test(&gpu, &[a.from, a.to])?;
    let (za, zb) = codes.split_at(model.latent());
    let z = interpolate(za, zb, a.n);
    let latent = model.latent();
    let images = in_chunks(&z, latent, DECODE, |z| model.decode(&gpu, z))?;
    save_samples(&out, a.format, &images)?;
    println!("wrote {} ({} frames from test image {} to {})", out.display(), a.n, a.from, a.to);
    Ok(())
}
