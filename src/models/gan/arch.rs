//! The generators and discriminators, with the PyTorch state_dict names `generator.N.*` and
//! `discriminator.N.*`: the DCGAN (PyTorch `examples/dcgan`'s `main.N.*` at 64×64, one upsampling layer
//! fewer at 32×32), the MLP GAN (fully connected G, conv + max-pool D, 28×28) and the fully connected
//! GAN (both networks fully connected, D ending in a logit, 28×28).

use anyhow::Result;

use super::config::{Arch, GanConfig};
use crate::graph::{Graph, TensorId};
use crate::models::Upsampling;
use crate::nn::{self, BnMode, Conv, WeightInit};
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;

/// The DCGAN discriminator's (and the MLP generator's) LeakyReLU slope.
const LRELU_SLOPE: f32 = 0.2;

pub(super) fn generator(g: &mut Graph, z: TensorId, bn: BnMode, cfg: &GanConfig, channels: usize) -> Result<TensorId> {
    match cfg.arch {
        Arch::Dcgan => dcgan_generator(g, z, bn, (channels, cfg.upsample), &widths(cfg.ngf, cfg.image_size)),
        Arch::Mlp => mlp_generator(g, z, bn),
        Arch::Fc => fc_generator(g, z),
    }
}

pub(super) fn discriminator(g: &mut Graph, x: TensorId, bn: BnMode, cfg: &GanConfig) -> Result<TensorId> {
    match cfg.arch {
        Arch::Dcgan => dcgan_discriminator(g, x, bn, &widths(cfg.ndf, cfg.image_size)),
        Arch::Mlp => mlp_discriminator(g, x),
        Arch::Fc => fc_discriminator(g, x),
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
/// 4×4 layer on) has one entry per layer before the last. Names are Sequential indices counted over
/// every module, so the nearest-upsampling form (an extra Upsample per layer) names its own layers.
fn dcgan_generator(
    g: &mut Graph,
    z: TensorId,
    bn: BnMode,
    (channels, upsample): (usize, Upsampling),
    widths: &[usize],
) -> Result<TensorId> {
    let first = Conv { out: widths[0], k: 4, stride: 1, pad: 0, bias: false };
    let mut h = nn::conv_transpose2d(g, "generator.0", z, first, WeightInit::Dcgan)?;
    h = nn::batchnorm_act(g, "generator.1", h, bn, WeightInit::Dcgan, BnAct::Relu)?;
    let mut idx = 3;
    for &cout in &widths[1..] {
        h = upsample.layer(g, ("generator", &mut idx), h, (cout, false), WeightInit::Dcgan)?;
        h = nn::batchnorm_act(g, &format!("generator.{idx}"), h, bn, WeightInit::Dcgan, BnAct::Relu)?;
        idx += 2;
    }
    let h = upsample.layer(g, ("generator", &mut idx), h, (channels, false), WeightInit::Dcgan)?;
    Ok(nn::act(g, h, Activation::Tanh))
}

/// G: z [B, latent] → 128 → 256 → 512 (Linear + LeakyReLU each) → Linear 784 + Tanh, viewed as
/// [B, 1, 28, 28]; the Sequential's Linear layers are generator.0, .2, .4 and .6.
fn fc_generator(g: &mut Graph, z: TensorId) -> Result<TensorId> {
    let b = g.shape(z)[0];
    let mut h = z;
    for (i, out) in [(0, 128), (2, 256), (4, 512)] {
        h = nn::linear(g, &format!("generator.{i}"), h, out, WeightInit::Default)?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
    }
    let h = nn::linear(g, "generator.6", h, 28 * 28, WeightInit::Default)?;
    let h = nn::act(g, h, Activation::Tanh);
    g.view(h, &[b, 1, 28, 28])
}

/// D: images → Flatten → 512 → 256 → 128 (Linear + LeakyReLU each) → Linear 1: a logit, [B, 1, 1, 1];
/// the Sequential's Linear layers are discriminator.1, .3, .5 and .7 (index 0 is the Flatten).
fn fc_discriminator(g: &mut Graph, x: TensorId) -> Result<TensorId> {
    let b = g.shape(x)[0];
    let mut h = g.view(x, &[b, g.len(x) / b])?;
    for (i, out) in [(1, 512), (3, 256), (5, 128)] {
        h = nn::linear(g, &format!("discriminator.{i}"), h, out, WeightInit::Default)?;
        h = nn::act(g, h, Activation::LeakyRelu(LRELU_SLOPE));
    }
    let h = nn::linear(g, "discriminator.7", h, 1, WeightInit::Default)?;
    g.view(h, &[b, 1, 1, 1])
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
