//! Convolution passes of the tiled kernel set: implicit GEMMs on the tiled core
//! (shaders/tiled_conv_*.wgsl), the im2col index map inside the operand loaders, no im2col buffer.
//! The CPU references are those of `ops::conv`; operand orders are those of `ops::conv` too, with
//! the weight gradient's split-K partials as a scratch operand before the output.
//!
//! - forward: M = Cout, N = batch·OH·OW, K = Cin·k²;
//! - input gradient: one GEMM per stride class (M = Cin, N = the class's pixels, K = Cout·⌈k/s⌉²),
//!   which also serves the transposed convolution's forward pass (with its bias);
//! - weight gradient: M = Cout, N = Cin·k², K = batch·OH·OW, split along K when that is long and the
//!   output small.
//!
//! A convolution whose output is one pixel covering the whole unpadded input (a discriminator's last
//! layer, and the transposed view of a generator's first) is a dense product and runs on the matmul.

use anyhow::{bail, Result};

use super::conv::{flags, Conv2dShape};
use super::gemm::{self, Plan, Tile};
use super::matmul::MatmulShape;
use super::passes::Pass;
use crate::runtime::kernels::KernelCall;
use crate::runtime::Family;

/// Whether `s` is a dense product: a 1×1 output of an unpadded input exactly the kernel's size.
pub fn is_dense(s: &Conv2dShape) -> bool {
    s.pad == 0 && s.h == s.k && s.w == s.k && s.out_h() == 1 && s.out_w() == 1
}

fn params(s: &Conv2dShape, flags: usize, plan: &Plan, lanes: usize, class: [usize; 3]) -> Vec<u32> {
    let g = s.geometry().u(flags).u(plan.chunk).u(plan.splits);
    // The activation epilogue (code, slope) ends the parameters: none unless fused.
    g.u(class[0]).u(class[1]).u(class[2]).u(lanes).u(0).f(0.0).words()
}

fn gemm_call(
    family: Family,
    entry: &'static str,
    params: Vec<u32>,
    operands: Vec<usize>,
    tile: Tile,
    mnz: [usize; 3],
    flops: f64,
) -> Result<KernelCall> {
    Ok(KernelCall {
        family,
        entry,
        params,
        operands,
        workgroups: tile.workgroups(entry, mnz[0], mnz[1], mnz[2])?,
        flops,
        tile: Some(tile),
    })
}

/// A plan for a pass without a fold: refused if it splits K.
fn check_unsplit(op: &str, plan: Option<Plan>, [m, n, k]: [usize; 3]) -> Result<Plan> {
    let plan = plan.unwrap_or_else(|| Plan::unsplit(m, n, k));
    if plan.splits > 1 {
        bail!("{op}: plan {} splits K, which this pass does not", plan.name());
    }
    Ok(plan)
}

/// The forward pass's implicit GEMM: M = Cout, N = batch·OH·OW, K = Cin·k².
fn forward_dims(s: &Conv2dShape) -> [usize; 3] {
    [s.cout, s.batch * s.out_h() * s.out_w(), s.cin * s.k * s.k]
}

/// The input gradient's taps per kernel row of one stride class and the class's rows and columns.
fn stride_class(s: &Conv2dShape) -> [usize; 3] {
    [s.k.div_ceil(s.stride), s.h.div_ceil(s.stride), s.w.div_ceil(s.stride)]
}

/// The input gradient's GEMM per stride class: M = Cin, N = the class's pixels, K = Cout·⌈k/s⌉².
fn backward_input_dims(s: &Conv2dShape) -> [usize; 3] {
    let [kj, th, tw] = stride_class(s);
    [s.cin, s.batch * th * tw, s.cout * kj * kj]
}

/// The weight gradient's GEMM: M = Cout, N = Cin·k², K = batch·OH·OW.
fn backward_weight_dims(s: &Conv2dShape) -> [usize; 3] {
    [s.cout, s.cin * s.k * s.k, s.batch * s.out_h() * s.out_w()]
}

/// The dense forward pass's product: y[b, co] = x[b, :] · w[co, :].
fn dense_forward(s: &Conv2dShape) -> MatmulShape {
    MatmulShape::nt(s.batch, s.cout, s.cin * s.k * s.k)
}

/// The dense input gradient's product: dx[b, ci·k² + t] = dy[b, :] · w[:, ci·k² + t].
fn dense_backward_input(s: &Conv2dShape) -> MatmulShape {
    MatmulShape::nn(s.batch, s.cin * s.k * s.k, s.cout)
}

/// The dense weight gradient's product: dw[co, :] = Σ_b dy[b, co] · x[b, :].
fn dense_backward_weight(s: &Conv2dShape) -> MatmulShape {
    MatmulShape::tn(s.cout, s.cin * s.k * s.k, s.batch)
}

/// The plans the autotuner may choose among for `forward(s, ..)`, the default first.
pub fn forward_plans(s: &Conv2dShape) -> Result<Vec<Plan>> {
    if is_dense(s) {
        return gemm::matmul_plans(dense_forward(s));
    }
    let [m, n, k] = forward_dims(s);
    Ok(gemm::candidate_plans(m, n, k, false))
}

/// The plans the autotuner may choose among for `backward_input(s, ..)`, the default first.
pub fn backward_input_plans(s: &Conv2dShape) -> Result<Vec<Plan>> {
    if is_dense(s) {
        return gemm::matmul_plans(dense_backward_input(s));
    }
    let [m, n, k] = backward_input_dims(s);
    Ok(gemm::candidate_plans(m, n, k, false))
}

/// The plans the autotuner may choose among for `backward_weight(s, ..)`, the default first.
pub fn backward_weight_plans(s: &Conv2dShape) -> Result<Vec<Plan>> {
    if is_dense(s) {
        return gemm::matmul_plans(dense_backward_weight(s));
    }
    let [m, n, k] = backward_weight_dims(s);
    Ok(gemm::candidate_plans(m, n, k, true))
}

/// Inputs `[x, w, b]` with bias, `[x, w]` without. y (+)= conv(x, w) (+ b).
pub fn forward(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Pass> {
    forward_on(s, bias, accumulate, None)
}

/// `forward` on `plan`, one of `forward_plans(s)` (the default when `None`).
pub fn forward_on(s: &Conv2dShape, bias: bool, accumulate: bool, plan: Option<Plan>) -> Result<Pass> {
    let op = "conv2d_forward_tiled";
    s.validate(op)?;
    if is_dense(s) {
        return gemm::matmul_planned(dense_forward(s), bias, accumulate, plan);
    }
    let dims @ [m, n, _] = forward_dims(s);
    let plan = check_unsplit(op, plan, dims)?;
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    let p = params(s, flags(bias, accumulate), &plan, 1, [0; 3]);
    let call = gemm_call(Family::TiledConvForward, op, p, operands, plan.tile, [m, n, 1], s.flops())?;
    Ok(Pass::direct(vec![call]))
}

/// Inputs `[dy, w, b]` with `bias` (dx += b[ci]: the transposed convolution's forward pass),
/// `[dy, w]` without. dx (+)= the input gradient of conv(x, w) for dy.
pub fn backward_input(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Pass> {
    backward_input_on(s, bias, accumulate, None)
}

/// `backward_input` on `plan`, one of `backward_input_plans(s)` (the default when `None`).
pub fn backward_input_on(s: &Conv2dShape, bias: bool, accumulate: bool, plan: Option<Plan>) -> Result<Pass> {
    let op = "conv2d_backward_input_tiled";
    s.validate(op)?;
    if is_dense(s) {
        // The bias is per input channel, every k² columns.
        let shape = dense_backward_input(s);
        return if bias {
            gemm::matmul_bias_groups(shape, s.k * s.k, accumulate, plan)
        } else {
            gemm::matmul_planned(shape, false, accumulate, plan)
        };
    }
    let dims @ [m, n, _] = backward_input_dims(s);
    let plan = check_unsplit(op, plan, dims)?;
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    let p = params(s, flags(bias, accumulate), &plan, 1, stride_class(s));
    let classes = s.stride * s.stride;
    let call = gemm_call(Family::TiledConvBackwardInput, op, p, operands, plan.tile, [m, n, classes], s.flops())?;
    Ok(Pass::direct(vec![call]))
}

/// dw (+)= the weight gradient of conv(x, w) for dy. Inputs `[x, dy]`; K (batch·OH·OW) is split
/// when the output has few blocks, the partials being the pass's scratch.
pub fn backward_weight(s: &Conv2dShape, accumulate: bool) -> Result<Pass> {
    backward_weight_on(s, accumulate, None)
}

/// `backward_weight` on `plan`, one of `backward_weight_plans(s)` (the default when `None`).
pub fn backward_weight_on(s: &Conv2dShape, accumulate: bool, plan: Option<Plan>) -> Result<Pass> {
    let op = "conv2d_backward_weight_tiled";
    s.validate(op)?;
    let [m, n, k] = backward_weight_dims(s);
    if is_dense(s) {
        return Ok(gemm::matmul_planned(dense_backward_weight(s), false, accumulate, plan)?.swap_inputs());
    }
    let plan = plan.unwrap_or_else(|| Plan::for_product(m, n, k));
    let flags = flags(false, accumulate);
    if plan.splits == 1 {
        let p = params(s, flags, &plan, 1, [0; 3]);
        let call =
            gemm_call(Family::TiledConvBackwardWeight, op, p, vec![0, 1, 2, 2], plan.tile, [m, n, 1], s.flops())?;
        return Ok(Pass::direct(vec![call]));
    }
    if m * n * plan.splits > u32::MAX as usize {
        bail!("{op}: {} partial gradients of {m}x{n} exceed the kernels' 2^32 index range", plan.splits);
    }
    let lanes = gemm::fold_lanes(m * n, plan.splits);
    let p = params(s, flags, &plan, lanes, [0; 3]);
    let gemm = gemm_call(
        Family::TiledConvBackwardWeight,
        op,
        p.clone(),
        vec![0, 1, 2, 3],
        plan.tile,
        [m, n, plan.splits],
        s.flops(),
    )?;
    let reduce_entry = "conv2d_backward_weight_reduce";
    let reduce = KernelCall {
        family: Family::TiledConvBackwardWeight,
        entry: reduce_entry,
        params: p,
        // The fold reads only the partials (b3) and writes dw (b4).
        operands: vec![2, 2, 2, 3],
        workgroups: gemm::fold_workgroups(reduce_entry, m * n, lanes)?,
        flops: (m * n * plan.splits) as f64,
        tile: Some(plan.tile),
    };
    Ok(Pass::new(vec![gemm, reduce], vec![plan.splits * s.w_len()]))
}
