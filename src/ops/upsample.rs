//! Nearest-neighbour upsampling ×2 (PyTorch's `nn.Upsample(scale_factor=2, mode='nearest')`) on NCHW
//! tensors, and its input gradient.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: u32 = 256;

/// `planes` = batch · channels images of h × w; the output is 2h × 2w.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsampleShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
}

impl UpsampleShape {
    pub fn out_h(&self) -> usize {
        2 * self.h
    }
    pub fn out_w(&self) -> usize {
        2 * self.w
    }
    /// Refuses empty shapes and outputs beyond the kernels' u32 indices; returns the input's length.
    fn check(&self, op: &str) -> Result<usize> {
        nonzero(op, &[("planes", self.planes), ("h", self.h), ("w", self.w)])?;
        elements(op, &[self.planes, self.out_h(), self.out_w()])?;
        Ok(self.planes * self.h * self.w)
    }
}

fn params(s: &UpsampleShape, accumulate: bool) -> Vec<u32> {
    Params::new().u(s.planes).u(s.h).u(s.w).u(accumulate as usize).words()
}

/// Operands: `[x, y]`; y[p, Y, X] = x[p, Y/2, X/2].
pub fn forward(s: &UpsampleShape) -> Result<Vec<KernelCall>> {
    let op = "upsample2x_forward";
    let n = 4 * s.check(op)?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Upsample,
        entry: op,
        params: params(s, false),
        operands: vec![0, 1],
        workgroups: grid(op, n, WG)?,
        flops: 0.0,
    }])
}

/// Operands: `[dy, dx]`; dx (+)= the sum of dy over each 2×2 block, one invocation per element of dx.
pub fn backward_input(s: &UpsampleShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "upsample2x_backward_input";
    let n = s.check(op)?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Upsample,
        entry: op,
        params: params(s, accumulate),
        operands: vec![0, 1],
        workgroups: grid(op, n, WG)?,
        flops: 3.0 * n as f64,
    }])
}

pub fn cpu_forward(s: &UpsampleShape, x: &[f64]) -> Vec<f64> {
    let (oh, ow) = (s.out_h(), s.out_w());
    (0..s.planes * oh * ow)
        .map(|i| {
            let (plane, y, xx) = (i / (oh * ow), (i / ow) % oh, i % ow);
            x[(plane * s.h + y / 2) * s.w + xx / 2]
        })
        .collect()
}

/// Σ of dy over each 2×2 block, added in the kernel's order (row by row).
pub fn cpu_backward_input(s: &UpsampleShape, dy: &[f64]) -> Vec<f64> {
    let ow = s.out_w();
    (0..s.planes * s.h * s.w)
        .map(|i| {
            let (plane, y, x) = (i / (s.h * s.w), (i / s.w) % s.h, i % s.w);
            let top = (plane * s.out_h() + 2 * y) * ow + 2 * x;
            dy[top] + dy[top + 1] + dy[top + ow] + dy[top + ow + 1]
        })
        .collect()
}
