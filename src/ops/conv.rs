//! 2-D convolution (NCHW, weight [Cout, Cin, k, k], bias [Cout]) as three implicit GEMMs plus a
//! per-channel bias gradient. Transposed convolution (ops::conv_transpose) reuses the same entries.
//!
//! Every op takes an `accumulate` flag: when set the kernel adds its result to the output operand
//! instead of overwriting it (gradient accumulation for tensors used more than once).

use anyhow::{bail, Result};

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

/// Invocations per workgroup of the GEMM entries: one subgroup on the software adapter.
const LANES: usize = 8;
/// Channels per workgroup of `conv2d_forward` / `conv2d_backward_input` (shaders/conv_common.wgsl: CH).
const CH: usize = 32;
/// Pixel tile of one lane: ROWS rows of COLS columns.
const ROWS: usize = 4;
const COLS: usize = 4;

const HAS_BIAS: usize = 1;
const ACCUMULATE: usize = 2;
const PORTABLE: usize = 4;
/// Index of `flags` in the uniform block, and the block's size in words (shaders/conv_common.wgsl: Params).
const FLAGS_WORD: usize = 10;
const PARAM_WORDS: usize = 16;

/// Geometry of a convolution: input [batch, cin, h, w], weight [cout, cin, k, k], square kernel,
/// the same stride and zero padding in both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2dShape {
    /// The shape of a convolution of an input `x` [batch, cin, h, w] with a weight `w` [cout, cin, k, k],
    /// refusing mismatched channels, non-square kernels and every case `validate` refuses.
    pub fn from_dims(op: &str, x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let [batch, cin, h, w, cout, k] = square_kernel_dims(op, x, w, WeightLayout::OutIn)?;
        let s = Conv2dShape { batch, cin, cout, h, w, k, stride, pad };
        s.validate(op)?;
        Ok(s)
    }

    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad).saturating_sub(self.k) / self.stride.max(1) + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad).saturating_sub(self.k) / self.stride.max(1) + 1
    }

    pub fn x_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }

    pub fn w_len(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }

    pub fn y_len(&self) -> usize {
        self.batch * self.cout * self.out_h() * self.out_w()
    }

    /// Multiply-adds of one pass times two: every pass (forward, input and weight gradients)
    /// performs the same products.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_h() * self.out_w()) as f64 * (self.cout * self.cin * self.k * self.k) as f64
    }

    /// Refuses shapes the kernels cannot run, naming `op`.
    pub fn validate(&self, op: &str) -> Result<()> {
        nonzero_sizes(op, [self.batch, self.cin, self.cout, self.h, self.w, self.k, self.stride])?;
        if self.k > self.h + 2 * self.pad || self.k > self.w + 2 * self.pad {
            bail!(
                "{op}: kernel {k}x{k} is larger than the padded input {}x{} (output size would be < 1)",
                self.h + 2 * self.pad,
                self.w + 2 * self.pad,
                k = self.k
            );
        }
        elements(op, &[self.batch, self.cin, self.h + 2 * self.pad, self.w + 2 * self.pad])?;
        elements(op, &[self.batch, self.cout, self.out_h(), self.out_w()])?;
        elements(op, &[self.cout, self.cin, self.k, self.k])?;
        Ok(())
    }

    /// The first words of both kernel sets' convolution parameter blocks (conv_common.wgsl and
    /// tiled_conv_common.wgsl): batch, cin, cout, h, w, oh, ow, k, stride, pad.
    pub(super) fn geometry(&self) -> Params {
        Params::new()
            .u(self.batch)
            .u(self.cin)
            .u(self.cout)
            .u(self.h)
            .u(self.w)
            .u(self.out_h())
            .u(self.out_w())
            .u(self.k)
            .u(self.stride)
            .u(self.pad)
    }

    /// Uniform block shared by the conv entries (shaders/conv_common.wgsl: Params).
    fn params(&self, flags: usize, t: &Tiling) -> Vec<u32> {
        self.geometry().u(flags).u(t.n_tiles).u(t.m_tiles).u(t.ctiles).u(t.aux.0).u(t.aux.1).words()
    }
}

/// How a GEMM is cut into workgroups: `m_tiles` channel blocks times `n_tiles` lanes along the pixel
/// axis (one pixel tile each), `ctiles` of them per output row.
struct Tiling {
    m_tiles: usize,
    n_tiles: usize,
    ctiles: usize,
    aux: (usize, usize),
}

impl Tiling {
    /// `channels` output channels by `rows` rows of `cols` columns, in ROWS x COLS pixel tiles.
    fn rows(channels: usize, rows: usize, cols: usize) -> Tiling {
        let ctiles = cols.div_ceil(COLS);
        Tiling { m_tiles: channels.div_ceil(CH), n_tiles: rows.div_ceil(ROWS) * ctiles, ctiles, aux: (0, 0) }
    }

    fn workgroups(&self, op: &str) -> Result<[u32; 3]> {
        let groups = self.n_tiles.div_ceil(LANES) * self.m_tiles;
        grid(op, groups * LANES, LANES as u32)
    }
}

/// Sends the GEMM entries among `calls` down their portable path (the one taken on adapters whose
/// subgroups are not 8 lanes wide) so that tests can compare both paths on any adapter.
pub fn force_portable(calls: &mut [KernelCall]) {
    for c in calls.iter_mut().filter(|c| c.entry != "conv2d_bias_grad") {
        c.params[FLAGS_WORD] |= PORTABLE as u32;
    }
}

/// Where a square convolution weight keeps its input channels.
#[derive(Clone, Copy)]
pub(super) enum WeightLayout {
    /// [Cout, Cin, k, k] (convolution).
    OutIn,
    /// [Cin, Cout, k, k] (transposed convolution).
    InOut,
}

/// `[batch, cin, h, w, cout, k]` of an input `x` [N, C, H, W] and a square weight in `layout`,
/// refusing other ranks, mismatched input channels and non-square kernels.
pub(super) fn square_kernel_dims(op: &str, x: &[usize], w: &[usize], layout: WeightLayout) -> Result<[usize; 6]> {
    let (&[batch, cin, h, wd], &[w0, w1, k, k2]) = (x, w) else {
        let expected = match layout {
            WeightLayout::OutIn => "[Cout, Cin, k, k]",
            WeightLayout::InOut => "[Cin, Cout, k, k]",
        };
        bail!("{op}: expected a 4-d input [N, C, H, W] and a 4-d weight {expected}, got {x:?} and {w:?}");
    };
    let (wcin, cout) = match layout {
        WeightLayout::OutIn => (w1, w0),
        WeightLayout::InOut => (w0, w1),
    };
    if wcin != cin {
        bail!("{op}: the weight {w:?} expects {wcin} input channels but the input {x:?} has {cin}");
    }
    if k != k2 {
        bail!("{op}: only square kernels are supported, the weight is {k}x{k2}");
    }
    Ok([batch, cin, h, wd, cout, k])
}

/// Refuses a zero among `[batch, cin, cout, h, w, k, stride]`, naming it.
pub(super) fn nonzero_sizes(op: &str, sizes: [usize; 7]) -> Result<()> {
    let names = ["batch", "cin", "cout", "h", "w", "k", "stride"];
    nonzero(op, &std::array::from_fn::<_, 7, _>(|i| (names[i], sizes[i])))
}

/// The flags word of conv_common.wgsl and conv_gemm.wgsl (same bits).
pub(super) fn flags(bias: bool, accumulate: bool) -> usize {
    (if bias { HAS_BIAS } else { 0 }) | (if accumulate { ACCUMULATE } else { 0 })
}

/// Operands: `[x, w, b, y]` with bias, `[x, w, y]` without. y = conv(x, w) + b, or y += that when
/// `accumulate`.
pub fn forward(shape: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_forward";
    shape.validate(op)?;
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let t = Tiling::rows(shape.cout, shape.batch * oh, ow);
    // Without a bias the weight is bound in the (unread) bias slot.
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    Ok(vec![KernelCall {
        tile: None,
        family: Family::ConvForward,
        entry: op,
        params: shape.params(flags(bias, accumulate), &t),
        operands,
        workgroups: t.workgroups(op)?,
        flops: shape.flops(),
    }])
}

/// Operands: `[dy, w, dx]`; dx = conv2d input gradient.
pub fn backward_input(shape: &Conv2dShape) -> Result<Vec<KernelCall>> {
    backward_input_with(shape, false, false)
}

/// The input gradient with options. Operands: `[dy, w, b, dx]` with `bias` (dx += b[ci], which
/// makes this the transposed convolution's forward pass), `[dy, w, dx]` without; dx is overwritten,
/// or added to when `accumulate`.
pub fn backward_input_with(shape: &Conv2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_backward_input";
    shape.validate(op)?;
    let operands = if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 1, 2] };
    let flags = flags(bias, accumulate);
    if shape.k == 4 && shape.stride == 2 && shape.cin <= K4S2_MAX_CIN {
        // 8x8 blocks of dX starting at row/column -pad, numbered per input channel, padded to whole
        // workgroups so that a workgroup shares its channel's weights.
        let op = "conv2d_backward_input_k4s2";
        let (rb, cb) = ((shape.h + shape.pad).div_ceil(8), (shape.w + shape.pad).div_ceil(8));
        let per_channel = (shape.batch * rb * cb).next_multiple_of(LANES);
        let t = Tiling { m_tiles: 1, n_tiles: shape.cin * per_channel, ctiles: cb, aux: (rb, per_channel) };
        return Ok(vec![KernelCall {
            tile: None,
            family: Family::ConvBackwardInput,
            entry: op,
            params: shape.params(flags, &t),
            operands,
            workgroups: grid(op, t.n_tiles, LANES as u32)?,
            flops: shape.flops(),
        }]);
    }
    if shape.out_h() == 1
        && shape.out_w() == 1
        && shape.pad == 0
        && shape.h == shape.k
        && shape.w == shape.k
        && shape.k <= COLS
    {
        // A dense product (the transposed convolution of a 1x1 input): lanes own 4 images x the k
        // columns of one kernel row, numbered per kernel row and padded to whole workgroups.
        let op = "conv2d_backward_input_dense";
        let per_row = shape.batch.div_ceil(ROWS).next_multiple_of(LANES);
        let t = Tiling { m_tiles: shape.cin.div_ceil(CH), n_tiles: shape.k * per_row, ctiles: 1, aux: (0, per_row) };
        return Ok(vec![KernelCall {
            tile: None,
            family: Family::ConvBackwardInput,
            entry: op,
            params: shape.params(flags, &t),
            operands,
            workgroups: t.workgroups(op)?,
            flops: shape.flops(),
        }]);
    }
    let s = shape.stride;
    // Pixels are tiled per class (ih mod s, iw mod s) on the grid of every s-th row and column.
    let (sh, sw) = (shape.h.div_ceil(s), shape.w.div_ceil(s));
    let ctiles = sw.div_ceil(COLS);
    let rtiles = sh.div_ceil(ROWS);
    // Tiles per class padded to whole workgroups so that a workgroup never spans two classes.
    let per_class = (shape.batch * rtiles * ctiles).next_multiple_of(LANES);
    let t = Tiling { m_tiles: shape.cin.div_ceil(CH), n_tiles: s * s * per_class, ctiles, aux: (rtiles, per_class) };
    Ok(vec![KernelCall {
        tile: None,
        family: Family::ConvBackwardInput,
        entry: op,
        params: shape.params(flags, &t),
        operands,
        workgroups: t.workgroups(op)?,
        flops: shape.flops(),
    }])
}

/// Input channels up to which `backward_input` uses the k = 4, stride 2 block kernel: its cost does
/// not depend on the 32-channel blocks of the general kernel, which it beats below this (measured).
const K4S2_MAX_CIN: usize = 8;

/// Operands: `[x, dy, dw]`; dw = conv2d weight gradient (overwritten).
pub fn backward_weight(shape: &Conv2dShape) -> Result<Vec<KernelCall>> {
    backward_weight_with(shape, false)
}

/// As `backward_weight`, adding into dw when `accumulate`. One dispatch: K (batch·OH·OW) is split
/// over the subgroups of a workgroup and reduced in workgroup memory, so no scratch operand.
pub fn backward_weight_with(shape: &Conv2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_backward_weight";
    shape.validate(op)?;
    // Lanes own ROWS (ci, kh) rows x COLS kernel columns; workgroup rows of 8 lanes share 32 channels.
    let ctiles = shape.k.div_ceil(COLS);
    let n_tiles = (shape.cin * shape.k).div_ceil(ROWS) * ctiles;
    let m_tiles = shape.cout.div_ceil(CH);
    let tile_groups = m_tiles * n_tiles.div_ceil(LANES);
    let splits = bw_splits(tile_groups, shape.batch * shape.out_h());
    let t = Tiling { m_tiles, n_tiles, ctiles, aux: (splits, 0) };
    let groups_per_wg = BW_SUBGROUPS / splits;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::ConvBackwardWeight,
        entry: op,
        params: shape.params(flags(false, accumulate), &t),
        // Binding 3 (bias) is unused; x is bound there again.
        operands: vec![0, 1, 0, 2],
        workgroups: grid(op, tile_groups.div_ceil(groups_per_wg) * BW_WG, BW_WG as u32)?,
        flops: shape.flops(),
    }])
}

/// Subgroups per workgroup of `conv2d_backward_weight`, and its invocations.
const BW_SUBGROUPS: usize = 8;
const BW_WG: usize = BW_SUBGROUPS * LANES;
/// Subgroups wanted per dispatch before K is split further. On the 2-core software adapter the
/// model layers time the same with 16, 32 or 64 (more splits only add reduction work); 64 leaves
/// room for wider machines.
const BW_MIN_SUBGROUPS: usize = 64;

/// K splits per tile group (a power of two up to 8): as few as give BW_MIN_SUBGROUPS subgroups,
/// and never more than the `rows` (image, output row) pairs there are to share.
fn bw_splits(tile_groups: usize, rows: usize) -> usize {
    let mut s = 1;
    while s < BW_SUBGROUPS && tile_groups * s < BW_MIN_SUBGROUPS && s * 2 <= rows {
        s *= 2;
    }
    s
}

/// Operands: `[dy, db]`; db[c] = sum of dy[n, c, h, w] over (n, h, w).
pub fn bias_grad(batch: usize, c: usize, h: usize, w: usize) -> Result<Vec<KernelCall>> {
    bias_grad_with(batch, c, h, w, false)
}

/// As `bias_grad`, adding into db when `accumulate`. One workgroup per channel.
pub fn bias_grad_with(batch: usize, c: usize, h: usize, w: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let op = "conv2d_bias_grad";
    nonzero(op, &[("batch", batch), ("c", c), ("h", h), ("w", w)])?;
    let n = elements(op, &[batch, c, h, w])?;
    // The conv uniform block with batch, cout = c, h, w and flags set; the other fields are unused.
    let mut params = Params::new().u(batch).u(0).u(c).u(h).u(w).words();
    params.resize(FLAGS_WORD, 0);
    params.push(flags(false, accumulate) as u32);
    params.resize(PARAM_WORDS, 0);
    Ok(vec![KernelCall {
        tile: None,
        family: Family::ConvBackwardWeight,
        entry: op,
        params,
        operands: vec![0, 1],
        workgroups: grid(op, c * BW_WG, BW_WG as u32)?,
        flops: n as f64,
    }])
}

fn at4(v: &[f64], d: [usize; 4], i: [usize; 4]) -> f64 {
    v[((i[0] * d[1] + i[1]) * d[2] + i[2]) * d[3] + i[3]]
}

/// Calls `f(n, co, ci, oh, ow, kh, kw, ih, iw)` for every product of the convolution whose input
/// pixel lies inside the image: the one loop nest the three references share.
fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut([usize; 9])) {
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    for n in 0..s.batch {
        for co in 0..s.cout {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    for ci in 0..s.cin {
                        for kh in 0..s.k {
                            for kw in 0..s.k {
                                let ih = (oh * s.stride + kh) as isize - s.pad as isize;
                                let iw = (ow * s.stride + kw) as isize - s.pad as isize;
                                if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize {
                                    continue;
                                }
                                f([n, co, ci, oh, ow, kh, kw, ih as usize, iw as usize]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y = conv(x, w) + b in f64 (`b` empty for no bias).
pub fn cpu_forward(s: &Conv2dShape, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    let yd = [s.batch, s.cout, oh_n, ow_n];
    let mut y = vec![0.0; s.y_len()];
    for_each_tap(s, |[n, co, ci, oh, ow, kh, kw, ih, iw]| {
        y[((n * s.cout + co) * oh_n + oh) * ow_n + ow] +=
            at4(w, [s.cout, s.cin, s.k, s.k], [co, ci, kh, kw]) * at4(x, [s.batch, s.cin, s.h, s.w], [n, ci, ih, iw]);
    });
    if !b.is_empty() {
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[(i / (yd[2] * yd[3])) % s.cout];
        }
    }
    y
}

/// dx from dy and w in f64.
pub fn cpu_backward_input(s: &Conv2dShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    let mut dx = vec![0.0; s.x_len()];
    for_each_tap(s, |[n, co, ci, oh, ow, kh, kw, ih, iw]| {
        dx[((n * s.cin + ci) * s.h + ih) * s.w + iw] += at4(w, [s.cout, s.cin, s.k, s.k], [co, ci, kh, kw])
            * at4(dy, [s.batch, s.cout, oh_n, ow_n], [n, co, oh, ow]);
    });
    dx
}

/// dw from x and dy in f64.
pub fn cpu_backward_weight(s: &Conv2dShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    let mut dw = vec![0.0; s.w_len()];
    for_each_tap(s, |[n, co, ci, oh, ow, kh, kw, ih, iw]| {
        dw[((co * s.cin + ci) * s.k + kh) * s.k + kw] += at4(x, [s.batch, s.cin, s.h, s.w], [n, ci, ih, iw])
            * at4(dy, [s.batch, s.cout, oh_n, ow_n], [n, co, oh, ow]);
    });
    dw
}

/// db[c] = sum of dy[n, c, h, w] over (n, h, w), in f64.
pub fn cpu_bias_grad(batch: usize, c: usize, h: usize, w: usize, dy: &[f64]) -> Vec<f64> {
    let mut db = vec![0.0; c];
    for n in 0..batch {
        for (ch, d) in db.iter_mut().enumerate() {
            *d += dy[(n * c + ch) * h * w..][..h * w].iter().sum::<f64>();
        }
    }
    db
}
