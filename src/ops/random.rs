//! GPU random numbers (Philox 4x32-10, keyed by seed, step, stream and element index) and the step
//! counter they and Adam read.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Uniform { low: f32, high: f32 },
    Normal { mean: f32, std: f32 },
}

/// Which step counter and stream a draw reads; `seed` is the run's seed.
#[derive(Clone, Copy, Debug)]
pub struct RngKey {
    pub seed: u64,
    pub slot: usize,
    pub stream: u32,
}

/// Fills `n` floats with draws for step counters[key.slot]. Operands: `[counters, out]`.
pub fn fill(n: usize, dist: Distribution, key: RngKey) -> Result<Vec<KernelCall>> {
    let (entry, a, b) = match dist {
        Distribution::Uniform { low, high } => ("uniform_forward", low, high),
        Distribution::Normal { mean, std } => ("normal_forward", mean, std),
    };
    nonzero(entry, &[("n", n)])?;
    elements(entry, &[n])?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Random,
        entry,
        params: Params::new()
            .u(n)
            .u(key.slot)
            .u(key.stream as usize)
            .u((key.seed & 0xffff_ffff) as usize)
            .u((key.seed >> 32) as usize)
            .f(a)
            .f(b)
            .words(),
        operands: vec![0, 1],
        workgroups: grid(entry, n, 256)?,
        flops: 0.0,
    }])
}

/// counters[slot] += 1. Operands: `[counters]`.
pub fn increment_step(slot: usize) -> Vec<KernelCall> {
    vec![KernelCall {
        tile: None,
        family: Family::Random,
        entry: "step_increment",
        params: Params::new().u(0).u(slot).words(),
        operands: vec![0],
        workgroups: [1, 1, 1],
        flops: 0.0,
    }]
}

/// Philox 4x32-10, the same function as the shader, for the CPU reference.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [(p1 >> 32) as u32 ^ c[1] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c[3] ^ k[1], p0 as u32];
        k = [k[0].wrapping_add(0x9E37_79B9), k[1].wrapping_add(0xBB67_AE85)];
    }
    c
}

fn to_unit(x: u32) -> f64 {
    ((x >> 8) as f64 + 0.5) / 16_777_216.0
}

/// CPU reference of `fill` at a given step.
pub fn cpu_fill(n: usize, dist: Distribution, key: RngKey, step: u32) -> Vec<f64> {
    let k = [key.seed as u32, (key.seed >> 32) as u32];
    (0..n)
        .map(|i| {
            let r = philox([i as u32, step, key.stream, 0], k);
            match dist {
                Distribution::Uniform { low, high } => low as f64 + (high as f64 - low as f64) * to_unit(r[0]),
                Distribution::Normal { mean, std } => {
                    let (u1, u2) = (to_unit(r[0]), to_unit(r[1]));
                    mean as f64 + std as f64 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                }
            }
        })
        .collect()
}
