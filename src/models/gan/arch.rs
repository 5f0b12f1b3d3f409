//! The generators and discriminators, with the PyTorch state_dict names `generator.N.*` and
//! `discriminator.N.*`: the DCGAN (PyTorch `examples/dcgan`'s `main.N.*` at 64×64, one upsampling layer
//! fewer at 32×32) and the MLP GAN (fully connected G, conv + max-pool D, 28×28).

use anyhow::Result;

use super::config::{Arch, GanConfig};
use crate::graph::{Graph, TensorId};
use crate::nn::{self, BnMode, Conv, WeightInit};
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;

/// The DCGAN discriminator's (and the MLP generator's) LeakyReLU slope.
const LRELU_SLOPE: f32 = 0.2;

pub(super) fn generator(g: &mut Graph, z: TensorId, bn: BnMode, cfg: &GanConfig, channels: usize) -> Result<TensorId> {
    match cfg.arch {
        Arch::Dcgan => dcgan_generator(g, z, bn, channels, &widths(cfg.ngf, cfg.image_size)),
        Arch::Mlp => mlp_generator(g, z, bn),
    }
}

pub(super) fn discriminator(g: &mut Graph, x: TensorId, bn: BnMode, cfg: &GanConfig) -> Result<TensorId> {
    match cfg.arch {
        Arch::Dcgan => dcgan_discriminator(g, x, bn, &widths(cfg.ndf, cfg.image_size)),
        Arch::Mlp => mlp_discriminator(g, x),
    }
}

/// The DCGAN's hidden widths from the 4×4 end inwards: `base` at the image-side end, doubling per layer
/// towards 4×4, one layer per halving from `side` to 4 (32 px: 4, 2, 1 × base; 64 px: 8, 4, 2, 1 × base).
fn widths(base: usize, side: usize) -> Vec<usize> {
    let layers = (side / 4).trailing_zeros() as usize;
    (0..layers).rev().map(|i| base << i).collect()
}

/// G: z [B, latent] → Linear 256 → Linear 512 → Linear 784 + Tanh, viewed as [B, 1, 28, 28].
fn mlp_generator(g: &mut Graph, z: TensorId, bn: BnMode) -> Result<TensorId> {
    let b = g.shape(z)[0];
    let mut h = z;
    for (i, out) in [(0, 256), (3, 512)] {
        h = nn::linear(g, &format!("generator.{i}"), h, out, WeightInit::Default)?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
        h = nn::batchnorm(g, &format!("generator.{}", i + 2), h, bn, WeightInit::Default)?;
    }
    let h = nn::linear(g, "generator.6", h, 28 * 28, WeightInit::Default)?;
    let h = nn::act(g, h, Activation::Tanh);
    g.view(h, &[b, 1, 28, 28])
}

/// D: 3 × (Conv k3 p1 + LeakyReLU + MaxPool 2) → flatten (64·3·3) → Linear 1 + Sigmoid.
fn mlp_discriminator(g: &mut Graph, x: TensorId) -> Result<TensorId> {
    let b = g.shape(x)[0];
    let mut h = x;
    for (i, cout) in [(0, 16), (3, 32), (6, 64)] {
        h = nn::conv2d(
            g,
            &format!("discriminator.{i}"),
            h,
            Conv { out: cout, k: 3, stride: 1, pad: 1, bias: true },
            WeightInit::Default,
        )?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
        h = nn::maxpool2d(g, h)?;
    }
    let flat = g.len(h) / b;
    let h = g.view(h, &[b, flat])?;
    let h = nn::linear(g, "discriminator.10", h, 1, WeightInit::Default)?;
    let p = nn::act(g, h, Activation::Sigmoid);
    g.view(p, &[b, 1, 1, 1])
}

/// G: z [B, latent, 1, 1] → 4×4 → … → images [B, channels, side, side] in [−1, 1]; `widths` (from the
/// 4×4 layer on) has one entry per layer before the last.
fn dcgan_generator(g: &mut Graph, z: TensorId, bn: BnMode, channels: usize, widths: &[usize]) -> Result<TensorId> {
    let mut h = z;
    for (layer, &cout) in widths.iter().enumerate() {
        let (stride, pad) = if layer == 0 { (1, 0) } else { (2, 1) };
        let i = 3 * layer;
        h = nn::conv_transpose2d(
            g,
            &format!("generator.{i}"),
            h,
            Conv { out: cout, k: 4, stride, pad, bias: false },
            WeightInit::Dcgan,
        )?;
        h = nn::batchnorm_act(g, &format!("generator.{}", i + 1), h, bn, WeightInit::Dcgan, BnAct::Relu)?;
    }
    let h = nn::conv_transpose2d(
        g,
        &format!("generator.{}", 3 * widths.len()),
        h,
        Conv { out: channels, k: 4, stride: 2, pad: 1, bias: false },
        WeightInit::Dcgan,
    )?;
    Ok(nn::act(g, h, Activation::Tanh))
}

/// D: images → side/2 → … → 4×4 → probability of "real", [B, 1, 1, 1]; `widths` lists the layers from
/// the 4×4 end, as the generator's do.
fn dcgan_discriminator(g: &mut Graph, x: TensorId, bn: BnMode, widths: &[usize]) -> Result<TensorId> {
    let lrelu = Activation::LeakyRelu(LRELU_SLOPE);
    let mut h = x;
    for (layer, &cout) in widths.iter().rev().enumerate() {
        // discriminator.0 is Conv + LeakyReLU; each later layer is Conv + BatchNorm + LeakyReLU.
        let i = if layer == 0 { 0 } else { 3 * layer - 1 };
        h = nn::conv2d(
            g,
            &format!("discriminator.{i}"),
            h,
            Conv { out: cout, k: 4, stride: 2, pad: 1, bias: false },
            WeightInit::Dcgan,
        )?;
        h = if layer == 0 {
            nn::act(g, h, lrelu)
        } else {
            let prefix = format!("discriminator.{}", i + 1);
            nn::batchnorm_act(g, &prefix, h, bn, WeightInit::Dcgan, BnAct::LeakyRelu(LRELU_SLOPE))?
        };
    }
    let last = format!("discriminator.{}", 3 * widths.len() - 1);
    let h = nn::conv2d(g, &last, h, Conv { out: 1, k: 4, stride: 1, pad: 0, bias: false }, WeightInit::Dcgan)?;
    Ok(nn::act(g, h, Activation::Sigmoid))
}
