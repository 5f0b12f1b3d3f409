//! Batch normalisation over NCHW with PyTorch's semantics (BatchNorm1d over [N, C] is H = W = 1).
//!
//! Training normalises with the batch mean and biased variance, and updates the running estimates
//! in place with momentum 0.1 and the unbiased variance; evaluation uses the running estimates.
//! The training forward leaves a `saved` operand of 2·C floats for the backward:
//! `saved[c]` = batch mean, `saved[C + c]` = 1 / sqrt(biased variance + eps).
//!
//! Per-channel sums (statistics forward, dγ and dβ backward) run in two stages over
//! `reduce::Partition::of(N·H·W)`: a workgroup per (split, channel), then one per channel folding
//! the splits, through a partials operand the ops take last (`forward_partials`,
//! `backward_partials` floats).

use anyhow::{bail, Result};

use super::elementwise::{self, Activation};
use super::reduce::Partition;
use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

pub const EPS: f32 = 1e-5;
pub const MOMENTUM: f32 = 0.1;

/// Per-channel reductions run 64-wide workgroups; elementwise passes run one invocation per
/// (channel, position) of the C·H·W plane and block of `BATCH_BLOCK` batch items.
const RWG: u32 = 64;
const EWG: u32 = 256;
/// Batch items per invocation of the elementwise passes: enough to amortise the channel's
/// constants, few enough that a batch of 128 spreads over 16 rows of workgroups.
const BATCH_BLOCK: usize = 8;

/// How the reductions cut each channel's N·H·W elements.
enum Grid {
    /// Workgroup (split, channel).
    Splits,
    /// One workgroup per channel.
    Channels,
    /// Workgroup (plane block, batch block).
    Elementwise,
}

/// An activation applied to the normalised output by the batchnorm kernels themselves, saving a
/// separate pass over the tensor forward and backward. Only activations whose derivative follows from
/// the sign of their output qualify: the backward reads it from y.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum BnAct {
    #[default]
    Identity,
    Relu,
    LeakyRelu(f32),
}

impl BnAct {
    fn code_and_slope(self) -> (usize, f32) {
        match self {
            BnAct::Identity => (0, 0.0),
            BnAct::Relu => (1, 0.0),
            BnAct::LeakyRelu(a) => (2, a),
        }
    }

    /// The same activation as a separate op (for the CPU references).
    pub fn activation(self) -> Option<Activation> {
        match self {
            BnAct::Identity => None,
            BnAct::Relu => Some(Activation::Relu),
            BnAct::LeakyRelu(a) => Some(Activation::LeakyRelu(a)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl BatchNormShape {
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Elements per channel, N·H·W: the count each statistic is taken over.
    pub fn per_channel(&self) -> usize {
        self.n * self.hw()
    }
    pub fn numel(&self) -> usize {
        self.c * self.per_channel()
    }

    fn check(&self, op: &str) -> Result<usize> {
        nonzero(op, &[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        elements(op, &[self.n, self.c, self.h, self.w])
    }

    fn split(&self) -> Partition {
        Partition::of(self.per_channel())
    }

    fn params(&self, act: BnAct) -> Vec<u32> {
        let (code, slope) = act.code_and_slope();
        let part = self.split();
        Params::new()
            .u(self.n)
            .u(self.c)
            .u(self.hw())
            .u(self.c * self.hw())
            .f(EPS)
            .f(MOMENTUM)
            .u(code)
            .f(slope)
            .u(part.parts)
            .u(part.chunk)
            .u(BATCH_BLOCK)
            .words()
    }

    fn call(
        &self,
        act: BnAct,
        entry: &'static str,
        operands: Vec<usize>,
        layout: Grid,
        flops_per_elem: f64,
    ) -> Result<KernelCall> {
        let limit = |what: &str, v: usize| {
            if v > 65_535 {
                bail!("{entry}: {v} {what} exceed the 65535 workgroups per dimension");
            }
            Ok(v as u32)
        };
        let workgroups = match layout {
            Grid::Splits => [self.split().parts as u32, limit("channels", self.c)?, 1],
            Grid::Channels => grid(entry, self.c * RWG as usize, RWG)?,
            Grid::Elementwise => [
                limit("plane blocks", (self.c * self.hw()).div_ceil(EWG as usize))?,
                limit("batch blocks", self.n.div_ceil(BATCH_BLOCK))?,
                1,
            ],
        };
        Ok(KernelCall {
            tile: None,
            family: Family::Batchnorm,
            entry,
            params: self.params(act),
            operands,
            workgroups,
            flops: flops_per_elem * self.numel() as f64,
        })
    }
}

/// Floats of the partials operand `train_forward` takes last: a (count, mean, M2) per split.
pub fn forward_partials(s: &BatchNormShape) -> usize {
    3 * s.c * s.split().parts
}

/// Floats of the partials operand `backward` takes last: a (Σ g·(x − mean), Σ g) per split.
pub fn backward_partials(s: &BatchNormShape) -> usize {
    2 * s.c * s.split().parts
}

/// Training forward, y = act(batchnorm(x)). Operands: `[x, gamma, beta, running_mean, running_var,
/// saved, y, partials]` (x, y: [N, C, H, W]; gamma, beta, running_*: [C]; saved: [2·C]; partials:
/// `forward_partials`). Writes saved and y, and updates running_mean and running_var in place.
/// Three dispatches: split statistics, their merge per channel, then apply.
pub fn train_forward(s: &BatchNormShape, act: BnAct) -> Result<Vec<KernelCall>> {
    let op = "batchnorm_forward";
    s.check(op)?;
    if s.per_channel() < 2 {
        // PyTorch refuses this too: the unbiased running variance would divide by zero.
        bail!("{op}: training needs more than 1 value per channel, got N·H·W = {}", s.per_channel());
    }
    Ok(vec![
        s.call(act, "batchnorm_stats", vec![0, 7], Grid::Splits, 4.0)?,
        s.call(act, "batchnorm_stats_finish", vec![7, 3, 4, 5], Grid::Channels, 0.0)?,
        s.call(act, "batchnorm_forward", vec![0, 1, 2, 5, 6], Grid::Elementwise, 4.0)?,
    ])
}

/// Evaluation forward with the running statistics, y = act(batchnorm(x)).
/// Operands: `[x, gamma, beta, running_mean, running_var, y]`.
pub fn eval_forward(s: &BatchNormShape, act: BnAct) -> Result<Vec<KernelCall>> {
    let op = "batchnorm_eval_forward";
    s.check(op)?;
    Ok(vec![s.call(act, op, vec![0, 1, 2, 3, 4, 5], Grid::Elementwise, 5.0)?])
}

/// Backward of the training forward. Operands: `[x, dy, gamma, saved, dgamma, dbeta, dx, y,
/// partials]`, y being the forward's output (read only for the activation's derivative), partials
/// `backward_partials` floats. Writes (does not accumulate) dgamma, dbeta and dx. Three dispatches:
/// the split sums, their fold into dgamma/dbeta, then dx, which reads them back.
pub fn backward(s: &BatchNormShape, act: BnAct) -> Result<Vec<KernelCall>> {
    s.check("batchnorm_backward")?;
    Ok(vec![
        s.call(act, "batchnorm_backward_gamma_beta", vec![0, 1, 3, 8, 5, 7], Grid::Splits, 4.0)?,
        s.call(act, "batchnorm_gamma_beta_finish", vec![8, 3, 4, 5], Grid::Channels, 0.0)?,
        s.call(act, "batchnorm_backward_input", vec![0, 1, 2, 3, 4, 5, 6, 7], Grid::Elementwise, 9.0)?,
    ])
}

/// What the training forward produces: output, batch statistics (biased variance) and the updated
/// running estimates.
#[derive(Clone, Debug)]
pub struct TrainForward {
    pub y: Vec<f64>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub running_mean: Vec<f64>,
    pub running_var: Vec<f64>,
}

fn index(s: &BatchNormShape, b: usize, ch: usize, sp: usize) -> usize {
    (b * s.c + ch) * s.hw() + sp
}

/// Per-channel (mean, biased variance) in f64.
pub fn cpu_stats(x: &[f64], s: &BatchNormShape) -> (Vec<f64>, Vec<f64>) {
    let m = s.per_channel() as f64;
    let mut mean = vec![0.0; s.c];
    let mut var = vec![0.0; s.c];
    for ch in 0..s.c {
        for b in 0..s.n {
            for sp in 0..s.hw() {
                mean[ch] += x[index(s, b, ch, sp)];
            }
        }
        mean[ch] /= m;
        for b in 0..s.n {
            for sp in 0..s.hw() {
                let d = x[index(s, b, ch, sp)] - mean[ch];
                var[ch] += d * d;
            }
        }
        var[ch] /= m;
    }
    (mean, var)
}

struct Affine<'a> {
    gamma: &'a [f64],
    beta: &'a [f64],
    act: BnAct,
}

fn apply(x: &[f64], s: &BatchNormShape, a: Affine<'_>, mean: &[f64], var: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for b in 0..s.n {
        for ch in 0..s.c {
            let inv_std = 1.0 / (var[ch] + EPS as f64).sqrt();
            for sp in 0..s.hw() {
                let i = index(s, b, ch, sp);
                y[i] = a.gamma[ch] * (x[i] - mean[ch]) * inv_std + a.beta[ch];
            }
        }
    }
    match a.act.activation() {
        Some(act) => elementwise::cpu_forward(act, &y),
        None => y,
    }
}

pub fn cpu_train_forward(
    x: &[f64],
    (gamma, beta): (&[f64], &[f64]),
    running_mean: &[f64],
    running_var: &[f64],
    s: &BatchNormShape,
    act: BnAct,
) -> TrainForward {
    let (mean, var) = cpu_stats(x, s);
    let m = s.per_channel() as f64;
    let mom = MOMENTUM as f64;
    let running_mean = running_mean.iter().zip(&mean).map(|(r, b)| (1.0 - mom) * r + mom * b).collect();
    let running_var = running_var.iter().zip(&var).map(|(r, v)| (1.0 - mom) * r + mom * v * m / (m - 1.0)).collect();
    let y = apply(x, s, Affine { gamma, beta, act }, &mean, &var);
    TrainForward { y, mean, var, running_mean, running_var }
}

pub fn cpu_eval_forward(
    x: &[f64],
    (gamma, beta): (&[f64], &[f64]),
    running_mean: &[f64],
    running_var: &[f64],
    s: &BatchNormShape,
    act: BnAct,
) -> Vec<f64> {
    apply(x, s, Affine { gamma, beta, act }, running_mean, running_var)
}

/// Gradients of the training forward (batch statistics recomputed from x): (dx, dgamma, dbeta).
/// With an activation, `y` is the forward's output it reads the derivative from (unused otherwise).
pub fn cpu_backward(
    x: &[f64],
    dy: &[f64],
    gamma: &[f64],
    s: &BatchNormShape,
    (act, y): (BnAct, &[f64]),
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let dy = match act.activation() {
        Some(a) => elementwise::cpu_backward(a, y, dy),
        None => dy.to_vec(),
    };
    let (mean, var) = cpu_stats(x, s);
    let m = s.per_channel() as f64;
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + EPS as f64).sqrt()).collect();
    let xhat = |i: usize, ch: usize| (x[i] - mean[ch]) * inv_std[ch];
    let mut dgamma = vec![0.0; s.c];
    let mut dbeta = vec![0.0; s.c];
    for b in 0..s.n {
        for ch in 0..s.c {
            for sp in 0..s.hw() {
                let i = index(s, b, ch, sp);
                dgamma[ch] += dy[i] * xhat(i, ch);
                dbeta[ch] += dy[i];
            }
        }
    }
    let mut dx = vec![0.0; x.len()];
    for b in 0..s.n {
        for ch in 0..s.c {
            for sp in 0..s.hw() {
                let i = index(s, b, ch, sp);
                dx[i] = gamma[ch] * inv_std[ch] * (dy[i] - dbeta[ch] / m - xhat(i, ch) * dgamma[ch] / m);
            }
        }
    }
    (dx, dgamma, dbeta)
}
