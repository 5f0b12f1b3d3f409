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
use super::gemm::{self, Tile};
use super::matmul::MatmulShape;
use super::rename_operands;
use crate::runtime::kernels::{grid, KernelCall};
use crate::runtime::Family;

/// Split-K aims for this many workgroups: enough to occupy every multiprocessor of a large GPU.
const SPLIT_TARGET_WORKGROUPS: usize = 256;
/// The shortest reduction a split is given: below this the partials cost more than they save.
const SPLIT_MIN_CHUNK: usize = 256;
/// Split-K partials beyond this many bytes are not worth their memory.
const SPLIT_MAX_BYTES: usize = 64 << 20;

/// Whether `s` is a dense product: a 1×1 output of an unpadded input exactly the kernel's size.
pub fn is_dense(s: &Conv2dShape) -> bool {
    s.pad == 0 && s.h == s.k && s.w == s.k && s.out_h() == 1 && s.out_w() == 1
}

fn params(s: &Conv2dShape, flags: usize, split: (usize, usize), class: [usize; 3]) -> Vec<u32> {
    s.geometry().u(flags).u(split.0).u(split.1).u(class[0]).u(class[1]).u(class[2]).words()
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
        constants: tile.constants(),
    })
}

/// Operands: `[x, w, b, y]` with bias, `[x, w, y]` without. y (+)= conv(x, w) (+ b).
pub fn forward(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_forward_tiled";
    s.validate(op)?;
    let kk = s.cin * s.k * s.k;
    if is_dense(s) {
        // y[b, co] = x[b, :] · w[co, :]
        return gemm::matmul(MatmulShape::nt(s.batch, s.cout, kk), bias, accumulate);
    }
    let n = s.batch * s.out_h() * s.out_w();
    let tile = Tile::for_product(s.cout, n);
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    let p = params(s, flags(bias, accumulate), (0, 1), [0; 3]);
    Ok(vec![gemm_call(Family::TiledConvForward, op, p, operands, tile, [s.cout, n, 1], s.flops())?])
}

/// Operands: `[dy, w, b, dx]` with `bias` (dx += b[ci]: the transposed convolution's forward pass),
/// `[dy, w, dx]` without. dx (+)= the input gradient of conv(x, w) for dy.
pub fn backward_input(s: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_backward_input_tiled";
    s.validate(op)?;
    if is_dense(s) {
        // dx[b, ci·k² + t] = dy[b, :] · w[:, ci·k² + t]; the bias is per input channel, every k² columns.
        let shape = MatmulShape::nn(s.batch, s.cin * s.k * s.k, s.cout);
        return if bias {
            gemm::matmul_bias_groups(shape, s.k * s.k, accumulate)
        } else {
            gemm::matmul(shape, false, accumulate)
        };
    }
    let st = s.stride;
    let (kj, th, tw) = (s.k.div_ceil(st), s.h.div_ceil(st), s.w.div_ceil(st));
    let n = s.batch * th * tw;
    let tile = Tile::for_product(s.cin, n);
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    let p = params(s, flags(bias, accumulate), (0, 1), [kj, th, tw]);
    Ok(vec![gemm_call(Family::TiledConvBackwardInput, op, p, operands, tile, [s.cin, n, st * st], s.flops())?])
}

/// How the weight gradient's reduction is cut: (splits, chunk), chunk a multiple of the tile's BK.
fn split_k(s: &Conv2dShape, tile: &Tile) -> (usize, usize) {
    let (m, n, k) = (s.cout, s.cin * s.k * s.k, s.batch * s.out_h() * s.out_w());
    let blocks = m.div_ceil(tile.rows()) * n.div_ceil(tile.cols());
    let by_occupancy = SPLIT_TARGET_WORKGROUPS.div_ceil(blocks);
    let by_length = (k / SPLIT_MIN_CHUNK).max(1);
    let by_memory = (SPLIT_MAX_BYTES / (4 * m * n)).max(1);
    let wanted = by_occupancy.min(by_length).min(by_memory).clamp(1, 65_535);
    let bk = tile.bk as usize;
    let chunk = k.div_ceil(wanted).next_multiple_of(bk);
    (k.div_ceil(chunk), chunk)
}

/// Lengths of the scratch tensors `backward_weight` needs: the split-K partials, or none.
pub fn backward_weight_scratch(s: &Conv2dShape) -> Vec<usize> {
    if is_dense(s) {
        return vec![];
    }
    let tile = Tile::for_product(s.cout, s.cin * s.k * s.k);
    match split_k(s, &tile) {
        (1, _) => vec![],
        (splits, _) => vec![splits * s.w_len()],
    }
}

/// dw (+)= the weight gradient of conv(x, w) for dy. Operands: `[x, dy, partials, dw]` when
/// `backward_weight_scratch` names a scratch tensor, `[x, dy, dw]` otherwise.
pub fn backward_weight(s: &Conv2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_backward_weight_tiled";
    s.validate(op)?;
    let (m, n) = (s.cout, s.cin * s.k * s.k);
    if is_dense(s) {
        // dw[co, :] = Σ_b dy[b, co] · x[b, :]
        let calls = gemm::matmul(MatmulShape::tn(m, n, s.batch), false, accumulate)?;
        return Ok(rename_operands(calls, &[1, 0, 2]));
    }
    let tile = Tile::for_product(m, n);
    let (splits, chunk) = split_k(s, &tile);
    let flags = flags(false, accumulate);
    let p = params(s, flags, (chunk, splits), [0; 3]);
    if splits == 1 {
        let call = gemm_call(Family::TiledConvBackwardWeight, op, p, vec![0, 1, 2, 2], tile, [m, n, 1], s.flops())?;
        return Ok(vec![call]);
    }
    if m * n * splits > u32::MAX as usize {
        bail!("{op}: {splits} partial gradients of {m}x{n} exceed the kernels' 2^32 index range");
    }
    let gemm =
        gemm_call(Family::TiledConvBackwardWeight, op, p.clone(), vec![0, 1, 2, 3], tile, [m, n, splits], s.flops())?;
    let reduce_entry = "conv2d_backward_weight_reduce";
    let reduce = KernelCall {
        family: Family::TiledConvBackwardWeight,
        entry: reduce_entry,
        params: p,
        operands: vec![0, 1, 2, 3],
        workgroups: grid(reduce_entry, m * n, 256)?,
        flops: (m * n * splits) as f64,
        constants: tile.constants(),
    };
    Ok(vec![gemm, reduce])
}
