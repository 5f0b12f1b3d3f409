//! The trained Fashion-MNIST classifier as a fixed feature extractor (eval-mode batchnorm): its softmax
//! gives the Inception Score, its 128-d penultimate features the FID.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::graph::{compile, Executor, Graph, Mode, ParamStore, TensorId};
use crate::models::classifier::{net, CLASSES, FEATURES, SIDE};
use crate::nn::BnMode;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{self, Checkpoint};

/// Images per call of the feature extractor.
pub const FEATURE_BATCH: usize = 64;

/// The weights `train classifier` produced, shipped so `eval gan` works anywhere (see the README).
const EMBEDDED: &[u8] = include_bytes!("../../assets/classifier.safetensors");

/// The trained classifier as a fixed feature extractor for IS and FID (eval-mode batchnorm).
pub struct FeatureNet {
    _store: ParamStore,
    exec: Executor,
    x: GpuBuffer,
    logits: TensorId,
    features: TensorId,
}

impl FeatureNet {
    /// With the shipped weights.
    pub fn embedded(gpu: &Gpu) -> Result<FeatureNet> {
        FeatureNet::from_checkpoint(gpu, &checkpoint::parse(EMBEDDED, Path::new("assets/classifier.safetensors"))?)
    }

    pub fn from_checkpoint(gpu: &Gpu, ckpt: &Checkpoint) -> Result<FeatureNet> {
        let mut g = Graph::new(gpu.kernels());
        let x = g.external("x", &[FEATURE_BATCH, 1, SIDE, SIDE]);
        let (logits, features) = net(&mut g, x, BnMode::Eval)?;
        g.mark_output(logits);
        g.mark_output(features);
        let specs: Vec<_> = g.params.iter().collect();
        let store = ParamStore::new(gpu, &specs, 0)?;
        crate::models::state::load_weights(gpu, &store, ckpt)
            .with_context(|| format!("loading classifier weights from {}", ckpt.path().display()))?;
        let steps = compile(&mut g, &store, Mode::Forward)?;
        let xb = gpu.zeros("feature-x", (FEATURE_BATCH * SIDE * SIDE * 4) as u64)?;
        let exec = Executor::new(gpu, &g, &steps, &store, &[("x", xb.whole())])?;
        Ok(FeatureNet { _store: store, exec, x: xb, logits, features })
    }

    /// Softmax probabilities [n, 10] and features [n, 128] of `images` (1×32×32 each, in [−1, 1]).
    pub fn run(&mut self, gpu: &Gpu, images: &[f32]) -> Result<(Vec<f64>, Vec<f64>)> {
        let per = SIDE * SIDE;
        if !images.len().is_multiple_of(per) {
            bail!("feature extractor: {} values is not a whole number of 32×32 images", images.len());
        }
        let (mut probs, mut feats) = (Vec::new(), Vec::new());
        for chunk in images.chunks(FEATURE_BATCH * per) {
            let n = chunk.len() / per;
            let mut batch = chunk.to_vec();
            batch.resize(FEATURE_BATCH * per, -1.0);
            gpu.write(&self.x, &batch);
            self.exec.step(gpu, false)?;
            let logits = self.exec.read(gpu, self.logits)?;
            for row in logits[..n * CLASSES].chunks(CLASSES) {
                let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
                let s: f64 = e.iter().sum();
                probs.extend(e.iter().map(|v| v / s));
            }
            feats.extend(self.exec.read(gpu, self.features)?[..n * FEATURES].iter().map(|&v| v as f64));
        }
        Ok((probs, feats))
    }
}
