//! Deterministic reductions: sum and mean of a flat array to one scalar, per-channel sums, and the
//! fixed partition every scalar reduction of the project (the losses, these sums) is cut into.
//!
//! Determinism: the partition depends only on the element count (never on the adapter), each
//! workgroup sums its chunk in a fixed strided order and folds its 64 partials with a fixed tree,
//! and the chunk partials are folded the same way by one workgroup: the same input gives
//! bit-identical output from run to run. No atomics.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: usize = 64;

/// Elements per chunk: 8 per invocation of a 64-wide workgroup, so a reduction over 64 Ki elements
/// already runs on 128 workgroups.
pub const CHUNK: usize = 512;
/// At most this many chunks: the second stage, one workgroup, then adds at most 64 per invocation.
pub const MAX_PARTS: usize = 4096;

/// `n` elements cut into `parts` contiguous chunks of `chunk` (the last one shorter), one workgroup
/// each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub parts: usize,
    pub chunk: usize,
}

impl Partition {
    pub fn of(n: usize) -> Partition {
        let parts = n.div_ceil(CHUNK).clamp(1, MAX_PARTS);
        let chunk = n.div_ceil(parts).max(1);
        Partition { parts: n.div_ceil(chunk).max(1), chunk }
    }
}

/// Floats of the partials operand a scalar reduction over `n` elements binds last (one per chunk).
pub fn partials_len(n: usize) -> usize {
    Partition::of(n).parts
}

/// The two stages of a scalar reduction over `n` elements, `out` and `partials` being operand
/// indices. `stage1(partition, scale, target)` is the family's chunked kernel writing
/// `scale · Σ chunk` to element `wid` of operand `target`. With one chunk it writes the result
/// straight into `out`; otherwise it writes unscaled partials and `sum_forward` folds them.
pub fn two_stage(
    n: usize,
    scale: f32,
    out: usize,
    partials: usize,
    stage1: impl Fn(Partition, f32, usize) -> KernelCall,
) -> Vec<KernelCall> {
    let part = Partition::of(n);
    if part.parts == 1 {
        return vec![stage1(part, scale, out)];
    }
    let fold = Partition { parts: 1, chunk: part.parts };
    vec![stage1(part, 1.0, partials), chunk_sum(part.parts, fold, scale, vec![partials, out])]
}

fn chunk_sum(n: usize, part: Partition, scale: f32, operands: Vec<usize>) -> KernelCall {
    KernelCall {
        tile: None,
        family: Family::Reduce,
        entry: "sum_forward",
        params: Params::new().u(n).u(0).u(0).f(scale).u(part.chunk).words(),
        operands,
        workgroups: [part.parts as u32, 1, 1],
        flops: n as f64,
    }
}

fn scalar(n: usize, scale: f32) -> Vec<KernelCall> {
    two_stage(n, scale, 1, 2, |part, s, target| chunk_sum(n, part, s, vec![0, target]))
}

/// Operands: `[x, out, partials]` (`partials_len(n)` floats); out[0] = Σ x[0..n].
pub fn sum(n: usize) -> Result<Vec<KernelCall>> {
    nonzero("sum_forward", &[("n", n)])?;
    elements("sum_forward", &[n])?;
    Ok(scalar(n, 1.0))
}

/// Operands: `[x, out, partials]`; out[0] = Σ x[0..n] / n.
pub fn mean(n: usize) -> Result<Vec<KernelCall>> {
    nonzero("mean_forward", &[("n", n)])?;
    elements("mean_forward", &[n])?;
    Ok(scalar(n, (1.0 / n as f64) as f32))
}

/// Operands: `[x, out]` with x as [n, c, s] (NCHW with s = H·W) and out[c] = Σ over (n, s).
/// One workgroup per channel. Writes (does not accumulate) out.
pub fn sum_channels(n: usize, c: usize, s: usize) -> Result<Vec<KernelCall>> {
    let op = "sum_channels_forward";
    nonzero(op, &[("n", n), ("c", c), ("s", s)])?;
    let total = elements(op, &[n, c, s])?;
    Ok(vec![KernelCall {
        tile: None,
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
