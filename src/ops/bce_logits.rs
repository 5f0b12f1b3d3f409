//! Binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`): the sigmoid and the BCE in one
//! stable form, ℓ = max(x, 0) − x·t + log1p(exp(−|x|)), which never takes the log of a sigmoid that
//! has rounded to 0 or 1, so any finite logit gives a finite loss and gradient (σ(x) − t)·scale.
//!
//! The conventions are loss.rs's: the forward writes one scalar reduced in a fixed order in two
//! stages; the backward computes the gradient of `weight × loss` and, with `accumulate`, adds
//! into its output instead of overwriting it. Targets get no gradient.

use anyhow::Result;

use super::loss::BceReduction;
use super::{elements, nonzero, reduce};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const EWG: u32 = 256;

fn params(n: usize, accumulate: bool, scale: f64, weight: f32) -> Vec<u32> {
    Params::new().u(n).u(accumulate as usize).f(scale as f32).f(weight).words()
}

fn check(op: &str, batch: usize, per_item: usize) -> Result<usize> {
    nonzero(op, &[("batch", batch), ("per_item", per_item)])?;
    elements(op, &[batch, per_item])
}

/// Operands: `[logits, target, loss, partials]` (logits, target: batch × per_item; loss: 1 float;
/// partials: `reduce::partials_len(batch · per_item)` floats).
pub fn forward(batch: usize, per_item: usize, reduction: BceReduction) -> Result<Vec<KernelCall>> {
    let op = "bce_logits_forward";
    let n = check(op, batch, per_item)?;
    let scale = reduction.scale(batch, per_item) as f32;
    Ok(reduce::two_stage(n, scale, 2, 3, |part, s, target| KernelCall {
        tile: None,
        family: Family::BceLogits,
        entry: op,
        params: Params::new().u(n).u(0).f(s).f(1.0).u(part.chunk).words(),
        operands: vec![0, 1, target],
        workgroups: [part.parts as u32, 1, 1],
        flops: 30.0 * n as f64,
    }))
}

/// Operands: `[logits, target, dlogits]`; dlogits (+)= weight · scale · (σ(x) − t).
pub fn backward(
    batch: usize,
    per_item: usize,
    reduction: BceReduction,
    weight: f32,
    accumulate: bool,
) -> Result<Vec<KernelCall>> {
    let op = "bce_logits_backward_input";
    let n = check(op, batch, per_item)?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::BceLogits,
        entry: op,
        params: params(n, accumulate, reduction.scale(batch, per_item), weight),
        operands: vec![0, 1, 2],
        workgroups: grid(op, n, EWG)?,
        flops: 8.0 * n as f64,
    }])
}

fn sigmoid(x: f64) -> f64 {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

pub fn cpu_forward(logits: &[f64], target: &[f64], batch: usize, reduction: BceReduction) -> f64 {
    let sum: f64 = logits.iter().zip(target).map(|(&x, &t)| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()).sum();
    sum * reduction.scale(batch, logits.len() / batch)
}

/// dLoss/dlogits (weight 1).
pub fn cpu_backward(logits: &[f64], target: &[f64], batch: usize, reduction: BceReduction) -> Vec<f64> {
    let scale = reduction.scale(batch, logits.len() / batch);
    logits.iter().zip(target).map(|(&x, &t)| scale * (sigmoid(x) - t)).collect()
}
