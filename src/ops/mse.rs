//! Mean squared error (PyTorch's `MSELoss`): the autoencoder's reconstruction loss, summed over each
//! image's pixels and averaged over the batch, or averaged over every element (`MSELoss()`'s default,
//! the per-pixel error a test reports).
//!
//! The conventions are loss.rs's: the forward writes one scalar reduced in a fixed order in two
//! stages; the backward computes the gradient of `weight × loss` and, with `accumulate`, adds
//! into its output instead of overwriting it.

use anyhow::Result;

use super::{elements, nonzero, reduce};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const EWG: u32 = 256;

/// The same two reductions as BCE's: `Mean` over all elements, or `SumPerItemMeanOverBatch`.
pub type MseReduction = super::loss::BceReduction;

fn params(n: usize, accumulate: bool, scale: f64, weight: f32) -> Vec<u32> {
    Params::new().u(n).u(accumulate as usize).f(scale as f32).f(weight).words()
}

fn check(op: &str, batch: usize, per_item: usize) -> Result<usize> {
    nonzero(op, &[("batch", batch), ("per_item", per_item)])?;
    elements(op, &[batch, per_item])
}

/// Operands: `[pred, target, loss, partials]` (pred, target: batch × per_item; loss: 1 float;
/// partials: `reduce::partials_len(batch · per_item)` floats);
/// loss = scale · Σ (pred − target)².
pub fn forward(batch: usize, per_item: usize, reduction: MseReduction) -> Result<Vec<KernelCall>> {
    let op = "mse_forward";
    let n = check(op, batch, per_item)?;
    let scale = reduction.scale(batch, per_item) as f32;
    Ok(reduce::two_stage(n, scale, 2, 3, |part, s, target| KernelCall {
        tile: None,
        family: Family::Mse,
        entry: op,
        params: Params::new().u(n).u(0).f(s).f(1.0).u(part.chunk).words(),
        operands: vec![0, 1, target],
        workgroups: [part.parts as u32, 1, 1],
        flops: 3.0 * n as f64,
    }))
}

/// Operands: `[pred, target, dpred]`; dpred (+)= weight · scale · 2(pred − target). The target's
/// gradient is the same kernel with weight −weight.
pub fn backward(
    batch: usize,
    per_item: usize,
    reduction: MseReduction,
    weight: f32,
    accumulate: bool,
) -> Result<Vec<KernelCall>> {
    let op = "mse_backward_input";
    let n = check(op, batch, per_item)?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Mse,
        entry: op,
        params: params(n, accumulate, reduction.scale(batch, per_item), weight),
        operands: vec![0, 1, 2],
        workgroups: grid(op, n, EWG)?,
        flops: 4.0 * n as f64,
    }])
}

pub fn cpu_forward(pred: &[f64], target: &[f64], batch: usize, reduction: MseReduction) -> f64 {
    let sum: f64 = pred.iter().zip(target).map(|(p, t)| (p - t) * (p - t)).sum();
    sum * reduction.scale(batch, pred.len() / batch)
}

/// dLoss/dpred (weight 1); dLoss/dtarget is its negation.
pub fn cpu_backward(pred: &[f64], target: &[f64], batch: usize, reduction: MseReduction) -> Vec<f64> {
    let scale = reduction.scale(batch, pred.len() / batch);
    pred.iter().zip(target).map(|(p, t)| 2.0 * scale * (p - t)).collect()
}
