//! Convolution passes lowered to the matmul: im2col (or col2im) plus one GEMM plus a swap of the
//! first two dimensions (shaders/conv_gemm.wgsl).
//!
//! Why: on the software adapter the matmul runs at 14-16 GFLOP/s on these shapes while the direct
//! conv kernels (ops::conv) reach 5-9 on the models' wide layers; moving each element of col once
//! costs far less than the difference (benches/conv.rs lists both per layer). The price is scratch
//! memory, `Cin·k²·N·OH·OW` floats for col, which the buffer planner shares between layers.
//! Narrower layers stay on the direct kernels, which win there (`lowers_forward`).
//!
//! Operand orders put the scratch tensors between the inputs and the output, so a gradient's target
//! still comes last:
//! - forward: `[x, w, b, col, c, y]` with bias, `[x, w, col, c, y]` without;
//! - input gradient: `[dy, w, b, dcol, dyt, dx]` with bias, `[dy, w, dcol, dyt, dx]` without (the
//!   bias form is the transposed convolution's forward pass);
//! - weight gradient: `[x, dy, col, dyt, dw]`;
//!
//! so that every pass takes its scratch in `scratch_lens` order.

use anyhow::{bail, Result};

use super::conv::{flags, Conv2dShape};
use super::matmul::{self, MatmulShape};
use super::{elements, rename_operands};
use crate::runtime::kernels::{KernelCall, Params};
use crate::runtime::Family;

const WG: usize = 256;
/// col beyond this many bytes stays on the direct kernels: the lowering is for the models' layers,
/// not for shapes whose scratch would crowd out the rest of a step.
const MAX_COL_BYTES: usize = 64 << 20;
/// Which layers lower, from benches/conv.rs at batch 128 (ms, direct → lowered): the forward pass
/// wins from 128 output channels and 1024-long dot products (Conv(64→128) 16²: 249 → 180,
/// Conv(128→256) 8²: 248 → 154, Conv(64→128) 8²: 61 → 45) and loses below (Conv(32→64) 16²:
/// 63 → 67); the input gradient, whose col2im gathers up to k² values per pixel, wins only from
/// 256 output channels (Conv(128→256) 8²: 236 → 199; Conv(64→128) 16²: 237 → 218, but 61 → 65 at 8²).
const FORWARD_MIN_COUT: usize = 128;
const FORWARD_MIN_DOT: usize = 1024;
const BACKWARD_MIN_COUT: usize = 256;
/// The weight gradient, a [Cout, Cin·k²] product of N·OH·OW-long dot products, wins once that
/// product has 2¹⁷ elements (32 of the matmul's 64×64 tiles; ms at batch 128, three runs, direct →
/// lowered): ConvT(256→128) 4²: 211-262 → 149-166, Conv(128→256) 8²: 214-299 → 150-206,
/// ConvT(100→256) 1²: 29 → 13, Conv(64→128) 8²: 54-67 → 43-55, Conv(64→128) 16²: 185-198 → 174-193,
/// ConvT(128→64) 8²: 190-192 → 174-182, ConvT(128→64) 4²: 54 → 53; it loses below (Conv(32→64)
/// 16², 2¹⁵: 54-74 → 75-76; ConvT(64→32) 8²: 49-74 → 64-66).
const WEIGHT_MIN_OUTPUT: usize = 1 << 17;

/// Whether `s`'s forward pass runs through the matmul.
pub fn lowers_forward(s: &Conv2dShape) -> bool {
    s.cout >= FORWARD_MIN_COUT && s.cin * s.k * s.k >= FORWARD_MIN_DOT && fits(s)
}

/// Whether `s`'s input gradient runs through the matmul.
pub fn lowers_backward_input(s: &Conv2dShape) -> bool {
    s.cout >= BACKWARD_MIN_COUT && fits(s)
}

/// Whether `s`'s weight gradient runs through the matmul.
pub fn lowers_backward_weight(s: &Conv2dShape) -> bool {
    s.cout * s.cin * s.k * s.k >= WEIGHT_MIN_OUTPUT && fits(s)
}

/// Workgroup rows of the 2-D grids (see `call`) and the largest index the shader's f32 division
/// is exact for.
const MAX_ROWS: usize = 65_535;
const MAX_INDEX: usize = 1 << 24;

fn fits(s: &Conv2dShape) -> bool {
    col_len(s) * 4 <= MAX_COL_BYTES && fits_grids(s)
}

fn fits_grids(s: &Conv2dShape) -> bool {
    let p = s.out_h() * s.out_w();
    let rows_ok = [s.cin, s.batch * s.cin, s.batch, s.cout].iter().all(|&r| r <= MAX_ROWS);
    let xs_ok =
        [pixels(s), s.h * s.w, s.cout * p, s.batch * p, s.h + s.pad, s.w + s.pad].iter().all(|&x| x < MAX_INDEX);
    rows_ok && xs_ok
}

fn pixels(s: &Conv2dShape) -> usize {
    s.batch * s.out_h() * s.out_w()
}

fn col_len(s: &Conv2dShape) -> usize {
    s.cin * s.k * s.k * pixels(s)
}

/// Lengths of the two scratch tensors of either pass, in operand order: col (or dcol), then the
/// [Cout, N·OH·OW] product (or dyᵀ).
pub fn scratch_lens(s: &Conv2dShape) -> [usize; 2] {
    [col_len(s), s.cout * pixels(s)]
}

fn params(s: &Conv2dShape, flags: usize, swap: [usize; 3]) -> Vec<u32> {
    Params::new()
        .u(s.batch)
        .u(s.cin)
        .u(s.h)
        .u(s.w)
        .u(s.out_h())
        .u(s.out_w())
        .u(s.k)
        .u(s.stride)
        .u(s.pad)
        .u(flags)
        .u(swap[0])
        .u(swap[1])
        .u(swap[2])
        .u(0)
        .u(0)
        .u(0)
        .words()
}

/// A dispatch of `rows` workgroup rows of `width` invocations each (shaders/conv_gemm.wgsl).
fn call(entry: &'static str, params: Vec<u32>, operands: [usize; 3], width: usize, rows: usize) -> Result<KernelCall> {
    let x = width.div_ceil(WG);
    if x > MAX_ROWS || rows > MAX_ROWS || width >= MAX_INDEX {
        bail!("{entry}: {rows} rows of {width} invocations exceed the dispatch grid (check `lowers_forward` / `lowers_backward_input` first)");
    }
    let workgroups = [x as u32, rows as u32, 1];
    Ok(KernelCall {
        tile: None,
        family: Family::ConvGemm,
        entry,
        params,
        operands: operands.to_vec(),
        workgroups,
        flops: 0.0,
    })
}

/// The matmul's calls with its operands `[a, b, c]` renamed to `to`.
fn gemm(shape: MatmulShape, accumulate: bool, to: [usize; 3]) -> Result<Vec<KernelCall>> {
    Ok(rename_operands(matmul::matmul(shape, false, accumulate)?, &to))
}

/// Operand slots shared by both passes: the bias (the weight's slot, never read, without one) and
/// the two scratch tensors and the output after the inputs.
fn slots(bias: bool) -> (usize, [usize; 3]) {
    let first = if bias { 3 } else { 2 };
    (if bias { 2 } else { 1 }, [first, first + 1, first + 2])
}

/// y (+)= conv(x, w) (+ b). Operands as in the module documentation.
pub fn forward(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv2d_forward (gemm)")?;
    let [x, w] = [0, 1];
    let (b, [col, c, y]) = slots(bias);
    let (p, r) = (s.out_h() * s.out_w(), pixels(s));
    elements("im2col", &[s.cin * s.k * s.k, r])?;
    let mut calls = vec![call("im2col", params(s, 0, [0; 3]), [x, x, col], r, s.cin)?];
    calls.extend(gemm(MatmulShape::nn(s.cout, r, s.cin * s.k * s.k), false, [w, col, c])?);
    let swap = params(s, flags(bias, accumulate), [s.cout, s.batch, p]);
    calls.push(call("planes_swap", swap, [c, b, y], s.cout * p, s.batch)?);
    Ok(calls)
}

/// dx (+)= the input gradient of conv(x, w) for dy (+ b[ci]). Operands as in the module documentation.
pub fn backward_input(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv2d_backward_input (gemm)")?;
    let [dy, w] = [0, 1];
    let (b, [dcol, dyt, dx]) = slots(bias);
    let (p, r) = (s.out_h() * s.out_w(), pixels(s));
    elements("col2im", &[s.cin * s.k * s.k, r])?;
    let mut calls = vec![call("planes_swap", params(s, 0, [s.batch, s.cout, p]), [dy, dy, dyt], s.batch * p, s.cout)?];
    calls.extend(gemm(MatmulShape::tn(s.cin * s.k * s.k, r, s.cout), false, [w, dyt, dcol])?);
    let unfold = params(s, flags(bias, accumulate), [0; 3]);
    calls.push(call("col2im", unfold, [dcol, b, dx], s.h * s.w, s.batch * s.cin)?);
    Ok(calls)
}

/// dw (+)= the weight gradient of conv(x, w) for dy: dYᵀ [Cout, N·P] times colᵀ, col = im2col(x).
/// Operands `[x, dy, col, dyt, dw]`.
pub fn backward_weight(s: &Conv2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv2d_backward_weight (gemm)")?;
    let [x, dy, col, dyt, dw] = [0, 1, 2, 3, 4];
    let (p, r) = (s.out_h() * s.out_w(), pixels(s));
    elements("im2col", &[s.cin * s.k * s.k, r])?;
    let mut calls = vec![
        call("im2col", params(s, 0, [0; 3]), [x, x, col], r, s.cin)?,
        call("planes_swap", params(s, 0, [s.batch, s.cout, p]), [dy, dy, dyt], s.batch * p, s.cout)?,
    ];
    calls.extend(gemm(MatmulShape::nt(s.cout, s.cin * s.k * s.k, r), accumulate, [dyt, col, dw])?);
    Ok(calls)
}
