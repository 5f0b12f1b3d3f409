//! Bias gradients of the tiled kernel set (shaders/bias_grad.wgsl): db[c] (+)= Σ dy over every
//! axis but the channel's. The CPU references are `matmul::cpu_bias_grad` and `conv::cpu_bias_grad`.

use anyhow::Result;

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const WG: u32 = 256;
const ACCUMULATE: usize = 2;

fn call(entry: &'static str, dims: [usize; 3], accumulate: bool, workgroups: [u32; 3]) -> KernelCall {
    KernelCall {
        family: Family::BiasGrad,
        entry,
        params: Params::new().u(dims[0]).u(dims[1]).u(dims[2]).u(accumulate as usize * ACCUMULATE).words(),
        operands: vec![0, 1],
        workgroups,
        flops: (dims[0] * dims[1] * dims[2]) as f64,
        constants: Vec::new(),
    }
}

/// db[N] (+)= column sums of dy[M, N] (a Linear layer's bias). Operands: `[dy, db]`.
pub fn rows(m: usize, n: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let entry = "bias_grad_rows";
    nonzero(entry, &[("M", m), ("N", n)])?;
    elements(entry, &[m, n])?;
    Ok(vec![call(entry, [m, n, 1], accumulate, grid(entry, n, WG)?)])
}

/// db[c] (+)= Σ over (n, h, w) of dy[n, c, h, w] (a convolution's bias). Operands: `[dy, db]`.
pub fn planes(batch: usize, c: usize, h: usize, w: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let entry = "bias_grad_planes";
    nonzero(entry, &[("batch", batch), ("c", c), ("h", h), ("w", w)])?;
    elements(entry, &[batch, c, h, w])?;
    Ok(vec![call(entry, [batch, c, h * w], accumulate, grid(entry, c * WG as usize, WG)?)])
}
