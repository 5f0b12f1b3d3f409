//! Tunable passes: the tiled set's products built on every candidate plan of their shape class,
//! sharing one operand list, so that the executor can run whichever the autotuner picks for the
//! adapter (`tune::resolve`) without the graph changing.

use std::sync::Arc;

use anyhow::Result;

use super::conv::Conv2dShape;
use super::gemm::Plan;
use super::matmul::MatmulShape;
use super::passes::Pass;
use super::rename_operands;
use crate::runtime::KernelCall;

/// A pass's candidate configurations for one shape class.
#[derive(Debug)]
pub struct Tunable {
    /// The shape class: the tuning cache's key.
    pub key: String,
    /// Name and dispatches of each candidate, the heuristic default first; every candidate binds the
    /// same operand list.
    pub candidates: Vec<(String, Vec<KernelCall>)>,
}

/// The shape class of a tiled matmul.
pub fn matmul_key(shape: &MatmulShape, bias: bool) -> String {
    format!(
        "matmul m{} n{} k{} ta{} tb{} bias{}",
        shape.m, shape.n, shape.k, shape.trans_a as u8, shape.trans_b as u8, bias as u8
    )
}

/// The shape class of a tiled convolution pass.
pub fn conv_key(pass: &str, s: &Conv2dShape, bias: bool) -> String {
    format!(
        "{pass} b{} ci{} co{} {}x{} k{} s{} p{} bias{}",
        s.batch, s.cin, s.cout, s.h, s.w, s.k, s.stride, s.pad, bias as u8
    )
}

/// The pass on each of `plans` (the default first), all over one operand list: `n_in` inputs, one
/// scratch tensor as long as the largest candidate's (when any has one), the output. A candidate
/// without scratch has its output renumbered past the shared scratch slot. Passes built here have
/// at most one scratch tensor.
pub fn pass(key: String, n_in: usize, plans: &[Plan], build: impl Fn(Plan) -> Result<Pass>) -> Result<Pass> {
    let built = plans.iter().map(|&p| build(p)).collect::<Result<Vec<_>>>()?;
    if built.len() == 1 {
        return Ok(built.into_iter().next().expect("one candidate"));
    }
    let scratch = built.iter().filter_map(|p| p.scratch.first().copied()).max();
    let past_scratch: Vec<usize> = (0..n_in).chain([n_in + 1]).collect();
    let candidates: Vec<(String, Vec<KernelCall>)> = plans
        .iter()
        .zip(built)
        .map(|(plan, p)| {
            debug_assert!(p.scratch.len() <= 1, "{key}: a tunable pass with {} scratch tensors", p.scratch.len());
            let calls = match scratch {
                Some(_) if p.scratch.is_empty() => rename_operands(p.calls, &past_scratch),
                _ => p.calls,
            };
            (plan.name(), calls)
        })
        .collect();
    let calls = candidates[0].1.clone();
    Ok(Pass { calls, scratch: scratch.into_iter().collect(), tunable: Some(Arc::new(Tunable { key, candidates })) })
}
