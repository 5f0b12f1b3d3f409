//! `train classifier` and `eval classifier`: the Fashion-MNIST classifier behind the GAN's IS and FID.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use gputrain::models::classifier::{Classifier, ClassifierConfig};
use gputrain::runtime::{BackendChoice, Gpu};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

use crate::{checkpoint_settings, load_data, train_model, TrainVae};

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

fn config_from_json(s: &Value) -> ClassifierConfig {
    let u = |k: &str, d: u64| s.get(k).and_then(Value::as_u64).unwrap_or(d);
    ClassifierConfig {
        batch_size: u("batch_size", 128) as usize,
        lr: s.get("lr").and_then(Value::as_f64).unwrap_or(1e-3) as f32,
        seed: u("seed", 0),
    }
}

pub fn train(a: TrainVae, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if a.latent.is_some() {
        bail!("--latent: the classifier has no latent space");
    }
    let from = match &a.resume {
        Some(p) => checkpoint_settings(p).context("--resume")?,
        None => Value::Null,
    };
    let d = config_from_json(&from);
    let c = ClassifierConfig {
        batch_size: a.batch_size.unwrap_or(d.batch_size),
        lr: a.lr.unwrap_or(d.lr),
        seed: a.seed.unwrap_or(d.seed),
    };
    if c.batch_size < 2 {
        bail!("--batch-size {}: the classifier needs at least 2 (batchnorm)", c.batch_size);
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        bail!("--lr {}: must be a positive number", c.lr);
    }
    let settings = json!({"model": "classifier", "batch_size": c.batch_size, "lr": c.lr, "seed": c.seed});
    train_model(a, &from, settings, 3, backend, gpu, |gpu, data| {
        Ok(Box::new(Classifier::new(gpu, &c, data)?) as Box<dyn TrainableModel>)
    })
}

pub fn eval(a: EvalClassifier, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings)?;
    let gpu = gpu()?;
    let mut model = Classifier::new(&gpu, &config_from_json(&settings), &data)?;
    let e = run::evaluate_checkpoint(&gpu, &mut model, &a.checkpoint)?;
    let f = |k: &str| e.get(k).unwrap_or(f64::NAN);
    println!("test set: accuracy {:.2}%  cross-entropy {:.4}", 100.0 * f("accuracy"), f("xent"));
    if let Some(out) = a.export_weights {
        model.export_weights(&gpu, &out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
