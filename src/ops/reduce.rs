//! Deterministic reductions: sum and mean of a flat array to one scalar, and per-channel sums
//! (bias gradients of linear and convolution layers).
//!
//! Determinism: each invocation sums a fixed strided subset in a fixed order, and each workgroup folds
//! its 64 partials with a fixed tree, so the same input gives bit-identical output on the same adapter.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: usize = 64;

fn scalar_call(entry: &'static str, n: usize, scale: f32, operands: Vec<usize>) -> KernelCall {
    KernelCall {
        constants: Vec::new(),
        family: Family::Reduce,
        entry,
        params: Params::new().u(n).u(0).u(0).f(scale).words(),
        operands,
        workgroups: [1, 1, 1],
        flops: n as f64,
    }
}

/// Operands: `[x, out]`; out[0] = Σ x[0..n]. One workgroup striding over the input.
pub fn sum(n: usize) -> Result<Vec<KernelCall>> {
    nonzero("sum_forward", &[("n", n)])?;
    elements("sum_forward", &[n])?;
    Ok(vec![scalar_call("sum_forward", n, 1.0, vec![0, 1])])
}

/// Operands: `[x, out]`; out[0] = Σ x[0..n] / n.
pub fn mean(n: usize) -> Result<Vec<KernelCall>> {
    nonzero("mean_forward", &[("n", n)])?;
    elements("mean_forward", &[n])?;
    Ok(vec![scalar_call("sum_forward", n, (1.0 / n as f64) as f32, vec![0, 1])])
}

/// Operands: `[x, out]` with x as [n, c, s] (NCHW with s = H·W) and out[c] = Σ over (n, s).
/// One workgroup per channel. Writes (does not accumulate) out.
pub fn sum_channels(n: usize, c: usize, s: usize) -> Result<Vec<KernelCall>> {
    let op = "sum_channels_forward";
    nonzero(op, &[("n", n), ("c", c), ("s", s)])?;
    let total = elements(op, &[n, c, s])?;
    Ok(vec![KernelCall {
        constants: Vec::new(),
        family: Family::Reduce,
        entry: op,
        params: Params::new().u(n).u(c).u(s).f(1.0).words(),
        operands: vec![0, 1],
        workgroups: grid(op, c * WG, WG as u32)?,
        flops: total as f64,
    }])
}

/// Operands: `[x, out]` with x as [r, c] row-major; out[j] = Σ_i x[i, j] (bias gradient of a linear).
pub fn sum_rows(r: usize, c: usize) -> Result<Vec<KernelCall>> {
    sum_channels(r, c, 1)
}

pub fn cpu_sum(x: &[f64]) -> f64 {
    x.iter().sum()
}

pub fn cpu_mean(x: &[f64]) -> f64 {
    cpu_sum(x) / x.len() as f64
}

/// x as [n, c, s]; returns the c per-channel sums.
pub fn cpu_sum_channels(x: &[f64], n: usize, c: usize, s: usize) -> Vec<f64> {
    let mut out = vec![0.0; c];
    for b in 0..n {
        for (ch, o) in out.iter_mut().enumerate() {
            for sp in 0..s {
                *o += x[(b * c + ch) * s + sp];
            }
        }
    }
    out
}
