//! Batch gather from the GPU-resident u8 dataset into a normalised, padded f32 NCHW batch.

use anyhow::{bail, Result};

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

/// How raw images become a batch. Pixel value v maps to v·scale + shift, padding included (v = 0).
#[derive(Clone, Copy, Debug)]
pub struct GatherShape {
    pub batch: usize,
    pub channels: usize,
    pub src_h: usize,
    pub src_w: usize,
    pub pad: usize,
    pub n_images: usize,
    pub steps_per_epoch: usize,
    pub scale: f32,
    pub shift: f32,
}

impl GatherShape {
    pub fn out_h(&self) -> usize {
        self.src_h + 2 * self.pad
    }
    pub fn out_w(&self) -> usize {
        self.src_w + 2 * self.pad
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.channels * self.out_h() * self.out_w()
    }
    /// Length of the per-epoch index list the kernel reads.
    pub fn order_len(&self) -> usize {
        self.batch * self.steps_per_epoch
    }
}

/// Gathers batch `counters[slot] % steps_per_epoch` of the epoch's order.
/// Operands: `[images (u8 packed in u32), order (u32), counters (u32), out (f32)]`.
pub fn forward(s: &GatherShape, slot: usize) -> Result<Vec<KernelCall>> {
    let op = "gather_forward";
    nonzero(
        op,
        &[
            ("batch", s.batch),
            ("channels", s.channels),
            ("height", s.src_h),
            ("width", s.src_w),
            ("images", s.n_images),
            ("steps_per_epoch", s.steps_per_epoch),
        ],
    )?;
    elements(op, &[s.n_images, s.channels, s.src_h, s.src_w])?;
    let n = elements(op, &[s.out_len()])?;
    if s.order_len() > s.n_images {
        bail!(
            "{op}: {} steps of batch {} need {} images, the dataset has {}",
            s.steps_per_epoch,
            s.batch,
            s.order_len(),
            s.n_images
        );
    }
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Gather,
        entry: op,
        params: Params::new()
            .u(s.batch)
            .u(s.channels)
            .u(s.src_h)
            .u(s.src_w)
            .u(s.out_h())
            .u(s.out_w())
            .u(s.pad)
            .u(s.pad)
            .u(s.n_images)
            .u(s.steps_per_epoch)
            .u(slot)
            .f(s.scale)
            .f(s.shift)
            .words(),
        operands: vec![0, 1, 2, 3],
        workgroups: grid(op, n, 256)?,
        flops: 2.0 * n as f64,
    }])
}

/// Packs u8 pixels four to a u32 word, as the kernel reads them.
pub fn pack_u8(pixels: &[u8]) -> Vec<u32> {
    pixels.chunks(4).map(|c| c.iter().rev().fold(0u32, |w, &b| (w << 8) | b as u32)).collect()
}

/// CPU reference of `forward` for a given step.
pub fn cpu_forward(s: &GatherShape, images: &[u8], order: &[u32], step: usize) -> Vec<f64> {
    let (oh, ow) = (s.out_h(), s.out_w());
    let mut out = vec![0.0; s.out_len()];
    let first = (step % s.steps_per_epoch) * s.batch;
    for b in 0..s.batch {
        let img = (order[first + b] as usize).min(s.n_images - 1);
        for c in 0..s.channels {
            for y in 0..oh {
                for x in 0..ow {
                    let inside = (s.pad..s.pad + s.src_h).contains(&y) && (s.pad..s.pad + s.src_w).contains(&x);
                    let v = if inside {
                        images[((img * s.channels + c) * s.src_h + y - s.pad) * s.src_w + x - s.pad]
                    } else {
                        0
                    };
                    out[((b * s.channels + c) * oh + y) * ow + x] = v as f64 * s.scale as f64 + s.shift as f64;
                }
            }
        }
    }
    out
}
