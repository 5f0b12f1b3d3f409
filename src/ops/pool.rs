//! 2×2 max-pooling, stride 2 (MaxPool2d(2)) on NCHW tensors, and its input gradient.

use anyhow::{bail, Result};

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: u32 = 256;

/// `planes` = batch · channels images of h × w; the output is (h/2) × (w/2), rounding down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
}

impl PoolShape {
    pub fn out_h(&self) -> usize {
        self.h / 2
    }
    pub fn out_w(&self) -> usize {
        self.w / 2
    }
    fn check(&self, op: &str) -> Result<usize> {
        nonzero(op, &[("planes", self.planes), ("h", self.h), ("w", self.w)])?;
        if self.h < 2 || self.w < 2 {
            bail!("{op}: a 2×2 window does not fit in {}×{}", self.h, self.w);
        }
        elements(op, &[self.planes, self.h, self.w])
    }
}

fn params(s: &PoolShape, accumulate: bool) -> Vec<u32> {
    Params::new().u(s.planes).u(s.h).u(s.w).u(accumulate as usize).words()
}

/// Operands: `[x, y]`.
pub fn forward(s: &PoolShape) -> Result<Vec<KernelCall>> {
    let op = "maxpool_forward";
    s.check(op)?;
    let n = s.planes * s.out_h() * s.out_w();
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Pool,
        entry: op,
        params: params(s, false),
        operands: vec![0, 1],
        workgroups: grid(op, n, WG)?,
        flops: 3.0 * n as f64,
    }])
}

/// Operands: `[x, dy, dx]`; dx (+)= dy at each window's first maximum, 0 elsewhere.
pub fn backward_input(s: &PoolShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "maxpool_backward_input";
    let n = s.check(op)?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Pool,
        entry: op,
        params: params(s, accumulate),
        operands: vec![0, 1, 2],
        workgroups: grid(op, n, WG)?,
        flops: 3.0 * n as f64,
    }])
}

/// Offset of the first maximum of output window (plane, oy, ox).
fn argmax(s: &PoolShape, x: &[f64], plane: usize, oy: usize, ox: usize) -> usize {
    let base = plane * s.h * s.w + 2 * oy * s.w + 2 * ox;
    let mut best = base;
    for k in 1..4 {
        let o = base + (k / 2) * s.w + k % 2;
        if x[o] > x[best] {
            best = o;
        }
    }
    best
}

pub fn cpu_forward(s: &PoolShape, x: &[f64]) -> Vec<f64> {
    let (oh, ow) = (s.out_h(), s.out_w());
    (0..s.planes * oh * ow).map(|i| x[argmax(s, x, i / (oh * ow), (i / ow) % oh, i % ow)]).collect()
}

pub fn cpu_backward_input(s: &PoolShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let (oh, ow) = (s.out_h(), s.out_w());
    let mut dx = vec![0.0; x.len()];
    for (i, g) in dy.iter().enumerate() {
        dx[argmax(s, x, i / (oh * ow), (i / ow) % oh, i % ow)] += g;
    }
    dx
}
