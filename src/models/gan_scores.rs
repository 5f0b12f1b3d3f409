//! The GAN's Inception Score and FID, with the shipped Fashion-MNIST classifier standing in for
//! Inception: IS from its softmax, FID from its 128-d penultimate features against real test images.

use anyhow::Result;

use super::classifier::{FeatureNet, CLASSES, FEATURES};
use super::gan::Gan;
use crate::data::Split;
use crate::runtime::Gpu;
use crate::train::scores::{fid, inception_score};

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

/// Features of the real images a GAN is compared with, computed once.
pub struct GanScorer {
    pub net: FeatureNet,
    real_features: Vec<f64>,
    pub real_is: f64,
}

#[derive(Clone, Copy, Debug)]
pub struct Scores {
    pub inception_score: f64,
    pub fid: f64,
}

impl GanScorer {
    pub fn new(gpu: &Gpu, mut net: FeatureNet, real: &[f32]) -> Result<GanScorer> {
        let (probs, real_features) = net.run(gpu, real)?;
        let real_is = inception_score(&probs, CLASSES)?;
        Ok(GanScorer { net, real_features, real_is })
    }

    /// IS and FID of `images` (1×32×32 in [−1, 1]) against the real set.
    pub fn score(&mut self, gpu: &Gpu, images: &[f32]) -> Result<Scores> {
        let (probs, feats) = self.net.run(gpu, images)?;
        Ok(Scores {
            inception_score: inception_score(&probs, CLASSES)?,
            fid: fid(&feats, &self.real_features, FEATURES)?,
        })
    }

    /// `n` generated images from noise drawn with `seed`, scored (28×28 ones padded to the classifier's 32×32).
    pub fn score_gan(&mut self, gpu: &Gpu, gan: &mut Gan, n: usize, seed: u64) -> Result<Scores> {
        let images = gan.generate_many(gpu, n, seed)?;
        let side = gan.arch().side();
        self.score(gpu, &pad_to_32(&images, side))
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
