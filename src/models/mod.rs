//! The models (docs/architecture.md), built from nn layers.

pub mod classifier;
pub mod core;
pub mod gan;
pub mod state;
pub mod vae;

use anyhow::{bail, Result};

use crate::data::{Dataset, Split};
use crate::ops::gather::GatherShape;

/// Refuses a learning rate that is not a positive number (the message names the flag).
pub fn check_lr(lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr {lr}: must be a positive number");
    }
    Ok(())
}

/// Side of the square images the convolutional models work on.
pub const SIDE: usize = 32;

/// (channels, padding per side) that bring `data`'s images to 32×32: 28×28 (MNIST, Fashion-MNIST) are
/// padded by 2, 32×32 (CIFAR-10) used as they are.
pub fn image_geometry(data: &Dataset, model: &str) -> Result<(usize, usize)> {
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
    if tr.h != tr.w || !(tr.h == 28 || tr.h == SIDE) || !(tr.channels == 1 || tr.channels == 3) {
        bail!(
            "the {model} needs 28×28 or 32×32 images with 1 or 3 channels; {} has {}×{}×{}",
            data.source,
            tr.channels,
            tr.h,
            tr.w
        );
    }
    Ok((tr.channels, (SIDE - tr.h) / 2))
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
