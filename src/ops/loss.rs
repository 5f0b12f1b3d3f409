//! The ends of the training graphs: binary cross-entropy (PyTorch's BCELoss), the VAE's KL term, and
//! the VAE's reparameterisation z = μ + exp(½ logvar)·ε.
//!
//! Forward losses write one scalar into their `loss` operand (overwriting it), reduced
//! deterministically in two stages (`reduce::two_stage`: a chunk per workgroup, then the chunk sums
//! folded), so the executor can copy it out for logging. Their last operand holds the chunk sums:
//! `reduce::partials_len(n)` floats.
//!
//! Upstream gradient: backward ops take a constant `weight` (1.0 at the end of the graph) rather
//! than an operand, and compute the gradient of `weight × loss`.
//!
//! Accumulation: with `accumulate = true` a backward op adds into its outputs instead of
//! overwriting them, for tensors that receive gradient from several ops (in the VAE, μ and logvar get
//! gradient from both the KL term and the reparameterisation: run one with `false`, the other with `true`).

use anyhow::Result;

use super::{elements, nonzero, reduce};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const EWG: u32 = 256;
/// PyTorch clamps BCE's logs at −100 and divides its gradient by max(p(1−p), 1e-12).
pub const LOG_FLOOR: f64 = -100.0;
pub const GRAD_EPS: f64 = 1e-12;

/// How BCE's elementwise terms become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BceReduction {
    /// Mean over all elements (PyTorch's `reduction='mean'`; the GAN).
    Mean,
    /// Sum over each item's elements, mean over the batch (the VAE's reconstruction term).
    SumPerItemMeanOverBatch,
}

impl BceReduction {
    /// The factor applied to the plain sum of all terms.
    pub fn scale(self, batch: usize, per_item: usize) -> f64 {
        match self {
            BceReduction::Mean => 1.0 / (batch * per_item) as f64,
            BceReduction::SumPerItemMeanOverBatch => 1.0 / batch as f64,
        }
    }
}

fn params(n: usize, accumulate: bool, scale: f64, weight: f32) -> Vec<u32> {
    Params::new().u(n).u(accumulate as usize).f(scale as f32).f(weight).words()
}

/// A forward loss over `n` terms (rows for cross-entropy): chunk sums of `entry`, then their fold.
/// `operands` are the inputs; the loss and the partials follow them.
fn reduce_calls(
    entry: &'static str,
    n: usize,
    scale: f64,
    inputs: usize,
    classes: usize,
    flops: f64,
) -> Vec<KernelCall> {
    let operands: Vec<usize> = (0..inputs).collect();
    reduce::two_stage(n, scale as f32, inputs, inputs + 1, |part, s, target| KernelCall {
        tile: None,
        family: Family::Loss,
        entry,
        params: Params::new().u(n).u(0).f(s).f(1.0).u(classes).u(part.chunk).words(),
        operands: [operands.as_slice(), &[target]].concat(),
        workgroups: [part.parts as u32, 1, 1],
        flops,
    })
}

fn elementwise_call(
    entry: &'static str,
    n: usize,
    accumulate: bool,
    scale: f64,
    weight: f32,
    operands: Vec<usize>,
    flops: f64,
) -> Result<KernelCall> {
    Ok(KernelCall {
        tile: None,
        family: Family::Loss,
        entry,
        params: params(n, accumulate, scale, weight),
        operands,
        workgroups: grid(entry, n, EWG)?,
        flops,
    })
}

fn check(op: &str, dims: &[(&str, usize)]) -> Result<usize> {
    nonzero(op, dims)?;
    elements(op, &dims.iter().map(|d| d.1).collect::<Vec<_>>())
}

/// Operands: `[p, t, loss, partials]` (p, t: batch × per_item probabilities and targets; loss: 1
/// float; partials: `reduce::partials_len(batch · per_item)`).
pub fn bce_forward(batch: usize, per_item: usize, reduction: BceReduction) -> Result<Vec<KernelCall>> {
    let n = check("bce_forward", &[("batch", batch), ("per_item", per_item)])?;
    Ok(reduce_calls("bce_forward", n, reduction.scale(batch, per_item), 2, 0, 8.0 * n as f64))
}

/// Operands: `[p, t, dp]`; dp = weight · scale · (p − t) / max(p(1−p), 1e-12).
pub fn bce_backward(
    batch: usize,
    per_item: usize,
    reduction: BceReduction,
    weight: f32,
    accumulate: bool,
) -> Result<Vec<KernelCall>> {
    let op = "bce_backward_input";
    let n = check(op, &[("batch", batch), ("per_item", per_item)])?;
    let scale = reduction.scale(batch, per_item);
    Ok(vec![elementwise_call(op, n, accumulate, scale, weight, vec![0, 1, 2], 7.0 * n as f64)?])
}

/// Operands: `[mu, logvar, loss, partials]` (mu, logvar: [batch, z]; partials:
/// `reduce::partials_len(batch · z)`); loss = mean over the batch of −½ Σ_j (1 + logvar − μ² − exp(logvar)).
pub fn kl_forward(batch: usize, z: usize) -> Result<Vec<KernelCall>> {
    let n = check("kl_forward", &[("batch", batch), ("z", z)])?;
    Ok(reduce_calls("kl_forward", n, 0.5 / batch as f64, 2, 0, 6.0 * n as f64))
}

/// Operands: `[mu, logvar, dmu, dlogvar]`; dμ = weight·μ/batch, dlogvar = weight·½(exp(logvar) − 1)/batch.
pub fn kl_backward(batch: usize, z: usize, weight: f32, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "kl_backward_input";
    let n = check(op, &[("batch", batch), ("z", z)])?;
    Ok(vec![elementwise_call(op, n, accumulate, 1.0 / batch as f64, weight, vec![0, 1, 2, 3], 6.0 * n as f64)?])
}

/// Operands: `[mu, logvar, eps, z]` (all n floats); z = μ + exp(½ logvar)·ε.
pub fn reparam_forward(n: usize) -> Result<Vec<KernelCall>> {
    let op = "reparam_forward";
    let n = check(op, &[("n", n)])?;
    Ok(vec![elementwise_call(op, n, false, 1.0, 1.0, vec![0, 1, 2, 3], 4.0 * n as f64)?])
}

/// Operands: `[logvar, eps, dz, dmu, dlogvar]`; dμ = dz, dlogvar = dz·½·exp(½ logvar)·ε
/// (added to dmu and dlogvar when `accumulate`, written otherwise).
pub fn reparam_backward(n: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "reparam_backward_input";
    let n = check(op, &[("n", n)])?;
    Ok(vec![elementwise_call(op, n, accumulate, 1.0, 1.0, vec![0, 1, 2, 3, 4], 5.0 * n as f64)?])
}

/// Softmax cross-entropy, mean over rows. Operands: `[logits [rows, classes], labels [rows] (class
/// indices as floats), loss, partials (reduce::partials_len(rows))]`.
pub fn xent_forward(rows: usize, classes: usize) -> Result<Vec<KernelCall>> {
    let n = check("xent_forward", &[("rows", rows), ("classes", classes)])?;
    Ok(reduce_calls("xent_forward", rows, 1.0 / rows as f64, 2, classes, 4.0 * n as f64))
}

/// Operands: `[logits, labels, dlogits]`; dz = (softmax(z) − onehot(label)) / rows.
pub fn xent_backward(rows: usize, classes: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "xent_backward_input";
    let n = check(op, &[("rows", rows), ("classes", classes)])?;
    let params = Params::new().u(rows).u(accumulate as usize).f(1.0 / rows as f32).f(1.0).u(classes).words();
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Loss,
        entry: op,
        params,
        operands: vec![0, 1, 2],
        workgroups: grid(op, n, EWG)?,
        flops: 3.0 * (n * classes) as f64,
    }])
}

/// Mean over rows of logsumexp(z) − z[label].
pub fn cpu_xent_forward(logits: &[f64], labels: &[f64], classes: usize) -> f64 {
    let rows = labels.len();
    let total: f64 = (0..rows)
        .map(|r| {
            let z = &logits[r * classes..(r + 1) * classes];
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - z[labels[r] as usize]
        })
        .sum();
    total / rows as f64
}

pub fn cpu_xent_backward(logits: &[f64], labels: &[f64], classes: usize) -> Vec<f64> {
    let rows = labels.len();
    let mut d = vec![0.0; rows * classes];
    for r in 0..rows {
        let z = &logits[r * classes..(r + 1) * classes];
        let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        for k in 0..classes {
            let onehot = if k == labels[r] as usize { 1.0 } else { 0.0 };
            d[r * classes + k] = ((z[k] - m).exp() / s - onehot) / rows as f64;
        }
    }
    d
}

fn clamped_ln(v: f64) -> f64 {
    v.ln().max(LOG_FLOOR)
}

/// BCE of probabilities p against targets t, reduced as `reduction` says.
pub fn cpu_bce_forward(p: &[f64], t: &[f64], batch: usize, reduction: BceReduction) -> f64 {
    let sum: f64 = p.iter().zip(t).map(|(&p, &t)| -(t * clamped_ln(p) + (1.0 - t) * clamped_ln(1.0 - p))).sum();
    sum * reduction.scale(batch, p.len() / batch)
}

/// dLoss/dp (weight 1).
pub fn cpu_bce_backward(p: &[f64], t: &[f64], batch: usize, reduction: BceReduction) -> Vec<f64> {
    let scale = reduction.scale(batch, p.len() / batch);
    p.iter().zip(t).map(|(&p, &t)| scale * (p - t) / (p * (1.0 - p)).max(GRAD_EPS)).collect()
}

pub fn cpu_kl_forward(mu: &[f64], logvar: &[f64], batch: usize) -> f64 {
    let sum: f64 = mu.iter().zip(logvar).map(|(&m, &lv)| -0.5 * (1.0 + lv - m * m - lv.exp())).sum();
    sum / batch as f64
}

/// (dμ, dlogvar) of the KL term (weight 1).
pub fn cpu_kl_backward(mu: &[f64], logvar: &[f64], batch: usize) -> (Vec<f64>, Vec<f64>) {
    let b = batch as f64;
    (mu.iter().map(|m| m / b).collect(), logvar.iter().map(|lv| 0.5 * (lv.exp() - 1.0) / b).collect())
}

pub fn cpu_reparam_forward(mu: &[f64], logvar: &[f64], eps: &[f64]) -> Vec<f64> {
    mu.iter().zip(logvar).zip(eps).map(|((m, lv), e)| m + (0.5 * lv).exp() * e).collect()
}

/// (dμ, dlogvar) contributed by the reparameterisation given dz.
pub fn cpu_reparam_backward(logvar: &[f64], eps: &[f64], dz: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let dlv = logvar.iter().zip(eps).zip(dz).map(|((lv, e), g)| g * 0.5 * (0.5 * lv).exp() * e).collect();
    (dz.to_vec(), dlv)
}
