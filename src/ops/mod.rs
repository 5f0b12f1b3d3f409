//! One file per kernel family: shape rules, the `KernelCall`s that run the op on the GPU, and a CPU
//! reference in f64 (used by tests for GPU comparisons and finite-difference gradient checks).
//!
//! Every op function returns the dispatches for one op given its shape; operand indices in those
//! calls refer to the operand order documented on the function.

pub mod adam;
pub mod batchnorm;
pub mod bce_logits;
pub mod bias_grad;
pub mod conv;
pub mod conv_gemm;
pub mod conv_tiled;
pub mod conv_transpose;
pub mod elementwise;
pub mod gather;
pub mod gemm;
pub mod loss;
pub mod matmul;
pub mod mse;
pub mod passes;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod tuned;
pub mod upsample;

use anyhow::{bail, Result};

use crate::runtime::KernelCall;

/// Refuses zero-sized dimensions up front, naming the op and the dimension.
pub fn nonzero(op: &str, dims: &[(&str, usize)]) -> Result<()> {
    for (name, v) in dims {
        if *v == 0 {
            bail!("{op}: dimension {name} is 0");
        }
    }
    Ok(())
}

/// Renumbers the operands of `calls` built for another op's operand list: operand `i` of theirs is
/// operand `to[i]` of ours (how one op runs on another's kernels).
pub fn rename_operands(mut calls: Vec<KernelCall>, to: &[usize]) -> Vec<KernelCall> {
    for c in &mut calls {
        for o in &mut c.operands {
            *o = to[*o];
        }
    }
    calls
}

/// Product of dimensions, refusing overflow of the u32 indices every shader uses.
pub fn elements(op: &str, dims: &[usize]) -> Result<usize> {
    let mut n: u64 = 1;
    for &d in dims {
        n = n.saturating_mul(d as u64);
    }
    if n > u32::MAX as u64 {
        bail!("{op}: {n} elements exceeds the 2^32 index range of the kernels");
    }
    Ok(n as usize)
}
