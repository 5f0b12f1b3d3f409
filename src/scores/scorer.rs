//! Inception Score and FID of generated images, with the shipped Fashion-MNIST classifier standing in
//! for Inception: IS from its softmax, FID from its 128-d penultimate features against real test images.

use anyhow::{bail, Result};

use super::features::FeatureNet;
use super::stats::{fid, inception_score};
use crate::data::Split;
use crate::models::classifier::{CLASSES, FEATURES};
use crate::runtime::Gpu;
use crate::train::model::{ImageBatch, ImageScorer};

const SIDE: usize = 32;
const PAD: usize = 2;

/// The first `n` images of `split` as the generator's images look: 1×32×32, [−1, 1], background −1.
pub fn real_images(split: &Split, n: usize) -> Vec<f32> {
    let n = n.min(split.n);
    let mut out = vec![-1.0f32; n * SIDE * SIDE];
    for i in 0..n {
        let img = split.image(i);
        for y in 0..split.h {
            for x in 0..split.w {
                out[i * SIDE * SIDE + (y + PAD) * SIDE + x + PAD] = img[y * split.w + x] as f32 * (2.0 / 255.0) - 1.0;
            }
        }
    }
    out
}

/// Features of the real images generated ones are compared with, computed once.
pub struct Scorer {
    pub net: FeatureNet,
    real_features: Vec<f64>,
    pub real_is: f64,
}

#[derive(Clone, Copy, Debug)]
pub struct Scores {
    pub inception_score: f64,
    pub fid: f64,
}

impl Scorer {
    pub fn new(gpu: &Gpu, mut net: FeatureNet, real: &[f32]) -> Result<Scorer> {
        let (probs, real_features) = net.run(gpu, real)?;
        let real_is = inception_score(&probs, CLASSES)?;
        Ok(Scorer { net, real_features, real_is })
    }

    /// IS and FID of `images` (1×32×32 in [−1, 1]) against the real set.
    pub fn score(&mut self, gpu: &Gpu, images: &[f32]) -> Result<Scores> {
        let (probs, feats) = self.net.run(gpu, images)?;
        Ok(Scores {
            inception_score: inception_score(&probs, CLASSES)?,
            fid: fid(&feats, &self.real_features, FEATURES)?,
        })
    }

    /// IS and FID of generated `images` (1×`side`×`side` in [−1, 1]; 28×28 ones are padded to the
    /// classifier's 32×32).
    pub fn score_generated(&mut self, gpu: &Gpu, images: &[f32], side: usize) -> Result<Scores> {
        self.score(gpu, &pad_to_32(images, side))
    }
}

/// The GAN's evaluation hook: `is_N` and `fid_N` of its N images (the count is part of the name, so
/// epochs.csv's header states it).
impl ImageScorer for Scorer {
    fn figures(&mut self, gpu: &Gpu, images: &ImageBatch) -> Result<Vec<(String, f64)>> {
        let [n, c, h, w] = images.nchw;
        if c != 1 || h != w || images.range != (-1.0, 1.0) {
            bail!("IS and FID need 1-channel square images in [−1, 1], got {c}×{h}×{w} in {:?}", images.range);
        }
        let s = self.score_generated(gpu, &images.data, h)?;
        Ok(vec![(format!("is_{n}"), s.inception_score), (format!("fid_{n}"), s.fid)])
    }
}

/// Centres `side`×`side` images in 32×32 ones with background −1.
pub fn pad_to_32(images: &[f32], side: usize) -> Vec<f32> {
    if side == SIDE {
        return images.to_vec();
    }
    let off = (SIDE - side) / 2;
    let n = images.len() / (side * side);
    let mut out = vec![-1.0f32; n * SIDE * SIDE];
    for i in 0..n {
        for y in 0..side {
            let src = &images[(i * side + y) * side..(i * side + y + 1) * side];
            out[i * SIDE * SIDE + (y + off) * SIDE + off..][..side].copy_from_slice(src);
        }
    }
    out
}
