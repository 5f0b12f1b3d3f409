//! The generators and discriminators, with the PyTorch state_dict names `generator.N.*` and
//! `discriminator.N.*`: the DCGAN (transposed convolutions, 32×32) and the MLP GAN (fully connected G,
//! conv + max-pool D, 28×28).

use anyhow::Result;

use super::config::Arch;
use crate::graph::{Graph, TensorId};
use crate::nn::{self, BnMode, Conv, WeightInit};
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;

/// The DCGAN discriminator's (and the MLP generator's) LeakyReLU slope.
const LRELU_SLOPE: f32 = 0.2;

pub(super) fn generator(g: &mut Graph, z: TensorId, bn: BnMode, arch: Arch, channels: usize) -> Result<TensorId> {
    match arch {
        Arch::Dcgan => dcgan_generator(g, z, bn, channels),
        Arch::Mlp => mlp_generator(g, z, bn),
    }
}

pub(super) fn discriminator(g: &mut Graph, x: TensorId, bn: BnMode, arch: Arch) -> Result<TensorId> {
    match arch {
        Arch::Dcgan => dcgan_discriminator(g, x, bn),
        Arch::Mlp => mlp_discriminator(g, x),
    }
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

/// G: z [B, latent, 1, 1] → images [B, 1, 32, 32] in [−1, 1].
fn dcgan_generator(g: &mut Graph, z: TensorId, bn: BnMode, channels: usize) -> Result<TensorId> {
    let mut h = z;
    for (i, cout, stride, pad) in [(0, 256, 1, 0), (3, 128, 2, 1), (6, 64, 2, 1)] {
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
        "generator.9",
        h,
        Conv { out: channels, k: 4, stride: 2, pad: 1, bias: false },
        WeightInit::Dcgan,
    )?;
    Ok(nn::act(g, h, Activation::Tanh))
}

/// D: images → probability of "real", [B, 1, 1, 1].
fn dcgan_discriminator(g: &mut Graph, x: TensorId, bn: BnMode) -> Result<TensorId> {
    let lrelu = Activation::LeakyRelu(LRELU_SLOPE);
    let h =
        nn::conv2d(g, "discriminator.0", x, Conv { out: 64, k: 4, stride: 2, pad: 1, bias: false }, WeightInit::Dcgan)?;
    let mut h = nn::act(g, h, lrelu);
    for (i, cout) in [(2, 128), (5, 256)] {
        h = nn::conv2d(
            g,
            &format!("discriminator.{i}"),
            h,
            Conv { out: cout, k: 4, stride: 2, pad: 1, bias: false },
            WeightInit::Dcgan,
        )?;
        let prefix = format!("discriminator.{}", i + 1);
        h = nn::batchnorm_act(g, &prefix, h, bn, WeightInit::Dcgan, BnAct::LeakyRelu(LRELU_SLOPE))?;
    }
    let h =
        nn::conv2d(g, "discriminator.8", h, Conv { out: 1, k: 4, stride: 1, pad: 0, bias: false }, WeightInit::Dcgan)?;
    Ok(nn::act(g, h, Activation::Sigmoid))
}
