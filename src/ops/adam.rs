//! Adam over a flat parameter range, with the step count kept on the GPU.

use anyhow::{bail, Result};

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

/// PyTorch `torch.optim.Adam` hyper-parameters (`weight_decay` is its L2 term added to the gradient).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamConfig {
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps > 0.0
            && self.weight_decay.is_finite()
            && self.weight_decay >= 0.0;
        if !ok {
            bail!("adam: invalid hyper-parameters {self:?} (need finite lr ≥ 0, betas in [0, 1), eps > 0)");
        }
        Ok(())
    }
}

/// One Adam update of `n` parameters using step t = counters[slot] + 1.
/// Operands: `[param, grad, m, v, counters]` (counters is a u32 array).
pub fn step(n: usize, cfg: &AdamConfig, slot: usize) -> Result<Vec<KernelCall>> {
    let op = "adam_forward";
    nonzero(op, &[("n", n)])?;
    elements(op, &[n])?;
    cfg.validate()?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Adam,
        entry: op,
        params: Params::new()
            .u(n)
            .u(slot)
            .f(cfg.lr)
            .f(cfg.beta1)
            .f(cfg.beta2)
            .f(cfg.eps)
            .f(cfg.weight_decay)
            .f((cfg.beta1 as f64).ln() as f32)
            .f((cfg.beta2 as f64).ln() as f32)
            .words(),
        operands: vec![0, 1, 2, 3, 4],
        workgroups: grid(op, n, 256)?,
        flops: 16.0 * n as f64,
    }])
}

/// CPU reference of one Adam step at step number `t` (1-based), updating all slices in place.
pub fn cpu_step(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], cfg: &AdamConfig, t: u32) {
    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    for i in 0..param.len() {
        let g = grad[i] + cfg.weight_decay as f64 * param[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        let denom = v[i].sqrt() / bc2.sqrt() + cfg.eps as f64;
        param[i] -= cfg.lr as f64 / bc1 * m[i] / denom;
    }
}
