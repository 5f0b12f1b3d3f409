//! Bias gradients of the tiled kernel set (shaders/bias_grad.wgsl): db[c] (+)= Σ dy over every
//! axis but the channel's, in two deterministic stages through a partials operand: split sums, then
//! their fold per channel. The CPU references are `matmul::cpu_bias_grad` and `conv::cpu_bias_grad`.

use anyhow::{bail, Result};

use super::reduce::Partition;
use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

const ACCUMULATE: usize = 2;
/// Columns per workgroup of the row sums.
const COLS: usize = 64;
/// Rows per split of a Linear layer's bias gradient: a batch of 128 gives 16 splits, so even 512
/// features spread over 128 workgroups.
const ROWS: usize = 8;

fn call(
    entry: &'static str,
    dims: [usize; 3],
    accumulate: bool,
    split: (usize, usize),
    workgroups: [u32; 3],
) -> KernelCall {
    KernelCall {
        family: Family::BiasGrad,
        entry,
        params: Params::new()
            .u(dims[0])
            .u(dims[1])
            .u(dims[2])
            .u(accumulate as usize * ACCUMULATE)
            .u(split.0)
            .u(split.1)
            .words(),
        operands: vec![0, 1, 2],
        workgroups,
        flops: (dims[0] * dims[1] * dims[2]) as f64,
        tile: None,
    }
}

/// A finish pass reads only the partials and writes db: dy's slot repeats the partials, so the
/// dispatch binds nothing it does not touch.
fn finish_call(mut c: KernelCall) -> KernelCall {
    c.operands = vec![1, 1, 2];
    c
}

fn dim(entry: &str, what: &str, v: usize) -> Result<u32> {
    if v > 65_535 {
        bail!("{entry}: {v} {what} exceed the 65535 workgroups per dimension");
    }
    Ok(v as u32)
}

/// Floats of the partials operand of `rows(m, n, _)`.
pub fn rows_partials(m: usize, n: usize) -> usize {
    m.div_ceil(ROWS) * n
}

/// db[N] (+)= column sums of dy[M, N] (a Linear layer's bias). Operands: `[dy, partials, db]`,
/// partials `rows_partials(m, n)` floats.
pub fn rows(m: usize, n: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let entry = "bias_grad_rows";
    nonzero(entry, &[("M", m), ("N", n)])?;
    elements(entry, &[m, n])?;
    let parts = m.div_ceil(ROWS);
    let split = (parts, ROWS);
    let wg = [dim(entry, "column blocks", n.div_ceil(COLS))?, dim(entry, "row splits", parts)?, 1];
    let finish = "bias_grad_rows_finish";
    Ok(vec![
        call(entry, [m, n, 1], accumulate, split, wg),
        finish_call(call(finish, [parts, n, 1], accumulate, split, grid(finish, n, 256)?)),
    ])
}

/// Floats of the partials operand of `planes(batch, c, h, w, _)`.
pub fn planes_partials(batch: usize, c: usize, h: usize, w: usize) -> usize {
    c * Partition::of(batch * h * w).parts
}

/// db[c] (+)= Σ over (n, h, w) of dy[n, c, h, w] (a convolution's bias). Operands:
/// `[dy, partials, db]`, partials `planes_partials(batch, c, h, w)` floats.
pub fn planes(batch: usize, c: usize, h: usize, w: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let entry = "bias_grad_planes";
    nonzero(entry, &[("batch", batch), ("c", c), ("h", h), ("w", w)])?;
    elements(entry, &[batch, c, h, w])?;
    let part = Partition::of(batch * h * w);
    let split = (part.parts, part.chunk);
    let dims = [batch, c, h * w];
    let finish = "bias_grad_planes_finish";
    Ok(vec![
        call(entry, dims, accumulate, split, [part.parts as u32, dim(entry, "channels", c)?, 1]),
        finish_call(call(finish, [part.parts, c, 1], accumulate, split, grid(finish, c * 64, 64)?)),
    ])
}
