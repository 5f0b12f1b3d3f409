//! The models (docs/architecture.md), built from nn layers.

pub mod ae;
pub mod classifier;
pub mod codec;
pub mod core;
pub mod gan;
pub mod state;
pub mod vae;

use std::borrow::Cow;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::{resize_split, Dataset, Split};
use crate::graph::{Graph, TensorId};
use crate::nn::{self, Conv, WeightInit};
use crate::ops::gather::GatherShape;

/// Refuses a learning rate that is not a positive number (the message names the flag).
pub fn check_lr(lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr {lr}: must be a positive number");
    }
    Ok(())
}

/// How a decoder or generator doubles its resolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsampling {
    /// A 4×4 transposed convolution of stride 2, padding 1.
    #[default]
    Transposed,
    /// Nearest-neighbour ×2 then a 3×3 convolution of padding 1 (the "resize-convolution", which
    /// cannot make the checkerboard pattern of overlapping transposed-convolution strides).
    Nearest,
}

impl Upsampling {
    pub fn parse(s: &str) -> Result<Upsampling> {
        match s {
            "transposed" => Ok(Upsampling::Transposed),
            "nearest" => Ok(Upsampling::Nearest),
            _ => bail!("--upsample {s}: expected transposed or nearest"),
        }
    }

    /// One 2× layer named as a PyTorch Sequential would name it: `idx` is the index of its first module
    /// (the Upsample, which holds no weights, in the nearest form) and is advanced past the layer.
    pub fn layer(
        self,
        g: &mut Graph,
        (prefix, idx): (&str, &mut usize),
        x: TensorId,
        (out, bias): (usize, bool),
        init: WeightInit,
    ) -> Result<TensorId> {
        match self {
            Upsampling::Transposed => {
                let name = format!("{prefix}.{idx}");
                *idx += 1;
                nn::conv_transpose2d(g, &name, x, Conv { out, k: 4, stride: 2, pad: 1, bias }, init)
            }
            Upsampling::Nearest => {
                let up = nn::upsample_nearest2x(g, x)?;
                let name = format!("{prefix}.{}", *idx + 1);
                *idx += 2;
                nn::conv2d(g, &name, up, Conv { out, k: 3, stride: 1, pad: 1, bias }, init)
            }
        }
    }
}

/// Side of the conv VAE's (and the default DCGAN's) square images.
pub const SIDE: usize = 32;

/// A dataset as a model with `side`×`side` inputs reads it.
pub struct Fitted<'a> {
    /// The images, resized on the host when they came at another size.
    pub data: Cow<'a, Dataset>,
    pub channels: usize,
    /// Pixels of background the batch gather adds on each side.
    pub pad: usize,
}

/// Brings `data` to `side`×`side` for `model`: images already that size are used as they are, 28×28
/// (MNIST, Fashion-MNIST) under a 32-px model is padded by 2 with the background value as the
/// reference scripts do, and any other size is centre-cropped and resized once on the host.
pub fn fit_images<'a>(data: &'a Dataset, model: &str, side: usize) -> Result<Fitted<'a>> {
    let (tr, te) = (&data.train, &data.test);
    if (tr.channels, tr.h, tr.w) != (te.channels, te.h, te.w) {
        bail!(
            "{}: training images are {}×{}×{} but test images {}×{}×{}",
            data.source,
            tr.channels,
            tr.h,
            tr.w,
            te.channels,
            te.h,
            te.w
        );
    }
    if !(tr.channels == 1 || tr.channels == 3) {
        bail!("the {model} needs images with 1 or 3 channels; {} has {}", data.source, tr.channels);
    }
    let channels = tr.channels;
    if (tr.h, tr.w) == (side, side) {
        return Ok(Fitted { data: Cow::Borrowed(data), channels, pad: 0 });
    }
    if (tr.h, tr.w, side) == (28, 28, 32) {
        return Ok(Fitted { data: Cow::Borrowed(data), channels, pad: 2 });
    }
    let resized = Dataset {
        train: resize_split(tr, side),
        test: resize_split(te, side),
        source: format!("{} resized to {side}×{side}", data.source),
    };
    Ok(Fitted { data: Cow::Owned(resized), channels, pad: 0 })
}

/// The first `count` of a shuffle of 0..n that depends only on (seed, epoch), so a resumed run sees the
/// same batches as an uninterrupted one.
pub fn epoch_order(seed: u64, epoch: usize, n: usize, count: usize) -> Vec<u32> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ epoch as u64);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    order.truncate(count);
    order
}

/// How a model reads `split`: batches of `batch` for `steps` steps an epoch, each side padded by `pad`
/// pixels of value 0, pixel bytes 0..=255 mapped linearly onto `range`.
pub fn batch_shape(split: &Split, batch: usize, steps: usize, pad: usize, range: (f32, f32)) -> GatherShape {
    GatherShape {
        batch,
        channels: split.channels,
        src_h: split.h,
        src_w: split.w,
        pad,
        n_images: split.n,
        steps_per_epoch: steps,
        scale: (range.1 - range.0) / 255.0,
        shift: range.0,
    }
}
