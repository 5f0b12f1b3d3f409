//! 2-D transposed convolution (NCHW, weight [Cin, Cout, k, k], bias [Cout]) run on the conv2d kernels.
//!
//! A transposed convolution is the input gradient of the convolution that maps its output space back
//! to its input space: that convolution (`conv_view`) has input [batch, Cout, OH, OW], output
//! [batch, Cin, H, W], and weight [Cin, Cout, k, k] read as a conv weight [Cout_conv = Cin,
//! Cin_conv = Cout, k, k], i.e. the very same tensor. Hence
//! - forward: y = conv2d_backward_input(dy_conv = x) (+ bias through the kernel's bias path);
//! - input gradient: dx = conv2d_forward(dy);
//! - weight gradient: dw = conv2d_backward_weight(x_conv = dy, dy_conv = x).
//!
//! The CPU references are written from the definition y[n, co, ih·s - p + kh, iw·s - p + kw] +=
//! x[n, ci, ih, iw] · W[ci, co, kh, kw], independently of the conv ones, so the tests check the
//! mapping too.

use anyhow::{bail, Result};

use super::conv::{self, Conv2dShape};
use super::conv_gemm;
use super::rename_operands;
use crate::runtime::kernels::KernelCall;

/// Geometry of a transposed convolution: input [batch, cin, h, w], weight [cin, cout, k, k], output
/// [batch, cout, (h - 1)·stride - 2·pad + k, (w - 1)·stride - 2·pad + k].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dShape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvTranspose2dShape {
    /// The shape of a transposed convolution of `x` [batch, cin, h, w] with `w` [cin, cout, k, k],
    /// refusing mismatched channels, non-square kernels and every case `validate` refuses.
    pub fn from_dims(op: &str, x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let [batch, cin, h, w, cout, k] = conv::square_kernel_dims(op, x, w, conv::WeightLayout::InOut)?;
        let s = ConvTranspose2dShape { batch, cin, cout, h, w, k, stride, pad };
        s.validate(op)?;
        Ok(s)
    }

    pub fn out_h(&self) -> usize {
        (self.h.saturating_sub(1) * self.stride + self.k).saturating_sub(2 * self.pad)
    }

    pub fn out_w(&self) -> usize {
        (self.w.saturating_sub(1) * self.stride + self.k).saturating_sub(2 * self.pad)
    }

    pub fn x_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }

    pub fn w_len(&self) -> usize {
        self.cin * self.cout * self.k * self.k
    }

    pub fn y_len(&self) -> usize {
        self.batch * self.cout * self.out_h() * self.out_w()
    }

    pub fn flops(&self) -> f64 {
        self.conv_view().flops()
    }

    /// The convolution whose input gradient this is (see the module comment).
    pub fn conv_view(&self) -> Conv2dShape {
        Conv2dShape {
            batch: self.batch,
            cin: self.cout,
            cout: self.cin,
            h: self.out_h(),
            w: self.out_w(),
            k: self.k,
            stride: self.stride,
            pad: self.pad,
        }
    }

    /// Refuses shapes the kernels cannot run, naming `op`.
    pub fn validate(&self, op: &str) -> Result<()> {
        conv::nonzero_sizes(op, [self.batch, self.cin, self.cout, self.h, self.w, self.k, self.stride])?;
        let full = |n: usize| (n - 1) * self.stride + self.k;
        if full(self.h) <= 2 * self.pad || full(self.w) <= 2 * self.pad {
            bail!(
                "{op}: padding {} removes the whole {}x{} output of a {}x{} input (output size would be < 1)",
                self.pad,
                full(self.h),
                full(self.w),
                self.h,
                self.w
            );
        }
        self.conv_view().validate(op)
    }
}

/// Operands: `[x, w, b, y]` with bias, `[x, w, y]` without; y is overwritten, or added to when
/// `accumulate`.
pub fn forward(s: &ConvTranspose2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_forward")?;
    conv::backward_input_with(&s.conv_view(), bias, accumulate)
}

/// Whether the forward pass runs through the matmul (`forward_lowered`): it is the input gradient
/// of `conv_view`.
pub fn lowers_forward(s: &ConvTranspose2dShape) -> bool {
    conv_gemm::lowers_backward_input(&s.conv_view())
}

/// Whether the input gradient runs through the matmul (`backward_input_lowered`): it is the
/// forward pass of `conv_view`.
pub fn lowers_backward_input(s: &ConvTranspose2dShape) -> bool {
    conv_gemm::lowers_forward(&s.conv_view())
}

/// `forward` lowered to the matmul (ops::conv_gemm). Operands `[x, w, b, dcol, dyt, y]` with bias,
/// `[x, w, dcol, dyt, y]` without, the scratch sized by `conv_gemm::scratch_lens(&s.conv_view())`.
pub fn forward_lowered(s: &ConvTranspose2dShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_forward")?;
    conv_gemm::backward_input(&s.conv_view(), bias, accumulate)
}

/// `backward_input` lowered to the matmul. Operands `[dy, w, col, c, dx]`, the scratch sized as for
/// `forward_lowered`.
pub fn backward_input_lowered(s: &ConvTranspose2dShape) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_backward_input")?;
    conv_gemm::forward(&s.conv_view(), false, false)
}

/// Whether the weight gradient runs through the matmul (`backward_weight_lowered`): it is the
/// weight gradient of `conv_view`.
pub fn lowers_backward_weight(s: &ConvTranspose2dShape) -> bool {
    conv_gemm::lowers_backward_weight(&s.conv_view())
}

/// `backward_weight` lowered to the matmul. Operands `[x, dy, col, dyt, dw]`, the scratch sized as
/// for `forward_lowered`.
pub fn backward_weight_lowered(s: &ConvTranspose2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_backward_weight")?;
    // The view's input is this op's dy and its output gradient this op's x.
    Ok(rename_operands(conv_gemm::backward_weight(&s.conv_view(), accumulate)?, &[1, 0, 2, 3, 4]))
}

/// Operands: `[dy, w, dx]`; dx is overwritten.
pub fn backward_input(s: &ConvTranspose2dShape) -> Result<Vec<KernelCall>> {
    backward_input_with(s, false)
}

/// As `backward_input`, adding into dx when `accumulate`.
pub fn backward_input_with(s: &ConvTranspose2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_backward_input")?;
    conv::forward(&s.conv_view(), false, accumulate)
}

/// Operands: `[x, dy, dw]`; dw is overwritten.
pub fn backward_weight(s: &ConvTranspose2dShape) -> Result<Vec<KernelCall>> {
    backward_weight_with(s, false)
}

/// As `backward_weight`, adding into dw when `accumulate`.
pub fn backward_weight_with(s: &ConvTranspose2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_backward_weight")?;
    // The conv call numbers its operands [x_conv, dy_conv, dw] = [dy, x, dw] of this op.
    Ok(rename_operands(conv::backward_weight_with(&s.conv_view(), accumulate)?, &[1, 0, 2]))
}

/// Operands: `[dy, db]`; db[co] = sum of dy[n, co, ...] (the conv2d kernel on the output).
pub fn bias_grad(s: &ConvTranspose2dShape) -> Result<Vec<KernelCall>> {
    bias_grad_with(s, false)
}

/// As `bias_grad`, adding into db when `accumulate`.
pub fn bias_grad_with(s: &ConvTranspose2dShape, accumulate: bool) -> Result<Vec<KernelCall>> {
    s.validate("conv_transpose2d_bias_grad")?;
    conv::bias_grad_with(s.batch, s.cout, s.out_h(), s.out_w(), accumulate)
}

/// Calls `f([n, ci, co, ih, iw, kh, kw, oh, ow])` for every product of the transposed convolution
/// whose output pixel lies inside the output.
fn for_each_tap(s: &ConvTranspose2dShape, mut f: impl FnMut([usize; 9])) {
    let (oh_n, ow_n) = (s.out_h() as isize, s.out_w() as isize);
    for n in 0..s.batch {
        for ci in 0..s.cin {
            for ih in 0..s.h {
                for iw in 0..s.w {
                    for co in 0..s.cout {
                        for kh in 0..s.k {
                            for kw in 0..s.k {
                                let oh = (ih * s.stride + kh) as isize - s.pad as isize;
                                let ow = (iw * s.stride + kw) as isize - s.pad as isize;
                                if oh >= 0 && ow >= 0 && oh < oh_n && ow < ow_n {
                                    f([n, ci, co, ih, iw, kh, kw, oh as usize, ow as usize]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn x_at(s: &ConvTranspose2dShape, n: usize, ci: usize, ih: usize, iw: usize) -> usize {
    ((n * s.cin + ci) * s.h + ih) * s.w + iw
}

fn y_at(s: &ConvTranspose2dShape, n: usize, co: usize, oh: usize, ow: usize) -> usize {
    ((n * s.cout + co) * s.out_h() + oh) * s.out_w() + ow
}

fn w_at(s: &ConvTranspose2dShape, ci: usize, co: usize, kh: usize, kw: usize) -> usize {
    ((ci * s.cout + co) * s.k + kh) * s.k + kw
}

/// y = conv_transpose(x, w) + b in f64 (`b` empty for no bias).
pub fn cpu_forward(s: &ConvTranspose2dShape, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; s.y_len()];
    for_each_tap(s, |[n, ci, co, ih, iw, kh, kw, oh, ow]| {
        y[y_at(s, n, co, oh, ow)] += x[x_at(s, n, ci, ih, iw)] * w[w_at(s, ci, co, kh, kw)];
    });
    if !b.is_empty() {
        let plane = s.out_h() * s.out_w();
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[(i / plane) % s.cout];
        }
    }
    y
}

/// dx from dy and w in f64.
pub fn cpu_backward_input(s: &ConvTranspose2dShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; s.x_len()];
    for_each_tap(s, |[n, ci, co, ih, iw, kh, kw, oh, ow]| {
        dx[x_at(s, n, ci, ih, iw)] += dy[y_at(s, n, co, oh, ow)] * w[w_at(s, ci, co, kh, kw)];
    });
    dx
}

/// dw from x and dy in f64.
pub fn cpu_backward_weight(s: &ConvTranspose2dShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let mut dw = vec![0.0; s.w_len()];
    for_each_tap(s, |[n, ci, co, ih, iw, kh, kw, oh, ow]| {
        dw[w_at(s, ci, co, kh, kw)] += x[x_at(s, n, ci, ih, iw)] * dy[y_at(s, n, co, oh, ow)];
    });
    dw
}

/// db[co] = sum of dy[n, co, ...] in f64.
pub fn cpu_bias_grad(s: &ConvTranspose2dShape, dy: &[f64]) -> Vec<f64> {
    let plane = s.out_h() * s.out_w();
    (0..s.cout)
        .map(|co| (0..s.batch).map(|n| dy[(n * s.cout + co) * plane..][..plane].iter().sum::<f64>()).sum())
        .collect()
}
