//! `train classifier` and `eval classifier`: the Fashion-MNIST classifier behind the GAN's IS and FID.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use gputrain::models::classifier::{Classifier, ClassifierConfig};
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use super::train::{checkpoint_settings, config_from_settings, load_data, settings_of, train_model, TrainArgs};

#[derive(Args)]
pub struct EvalClassifier {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Dataset directory (default: the checkpoint's, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Also write the model weights alone (no optimiser state) here, e.g. assets/classifier.safetensors.
    #[arg(long, value_name = "FILE")]
    export_weights: Option<PathBuf>,
}

pub fn train(a: TrainArgs, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if a.latent.is_some() {
        bail!("--latent: the classifier has no latent space");
    }
    let from = a.resumed_settings()?;
    let mut c: ClassifierConfig = config_from_settings(&from)?;
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.lr = a.lr.unwrap_or(c.lr);
    c.seed = a.seed.unwrap_or(c.seed);
    c.validate()?;
    let data = a.load_data(&from, Some(28), c.seed)?;
    let settings = settings_of("classifier", &c)?;
    train_model(a, &from, settings, 3, backend, gpu, data, |gpu, data| {
        Ok(Box::new(Classifier::new(gpu, &c, data)?) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalClassifier, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings, Some(28))?;
    let gpu = gpu()?;
    let mut model = Classifier::new(&gpu, &config_from_settings(&settings)?, &data)?;
    let e = run::evaluate_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let f = |k: &str| e.get(k).unwrap_or(f64::NAN);
    println!("test set: accuracy {:.2}%  cross-entropy {:.4}", 100.0 * f("accuracy"), f("xent"));
    if let Some(out) = a.export_weights {
        model.export_weights(&gpu, &out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
