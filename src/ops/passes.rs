//! The passes of the layers whose kernels differ per kernel set (Linear, Conv2d, ConvTranspose2d),
//! each as its dispatches plus the scratch tensors they need: what the graph records, for whichever
//! set the device runs.
//!
//! Operand order of every pass: its inputs, then its scratch tensors in `scratch` order, then the
//! output. Outputs are overwritten (the graph accumulates repeated gradients itself).

use anyhow::Result;

use super::conv::{self, Conv2dShape};
use super::conv_transpose::{self, ConvTranspose2dShape};
use super::{bias_grad, conv_gemm, conv_tiled, gemm, matmul, rename_operands};
use crate::runtime::{KernelCall, KernelSet};

/// One pass of a layer.
#[derive(Clone, Debug)]
pub struct Pass {
    pub calls: Vec<KernelCall>,
    /// Lengths (f32 elements) of the scratch tensors bound between the inputs and the output.
    pub scratch: Vec<usize>,
}

impl Pass {
    fn direct(calls: Vec<KernelCall>) -> Pass {
        Pass { calls, scratch: Vec::new() }
    }

    fn lowered(calls: Vec<KernelCall>, s: &Conv2dShape) -> Pass {
        Pass { calls, scratch: conv_gemm::scratch_lens(s).to_vec() }
    }
}

/// y[batch, out] = x · Wᵀ + b. Operands `[x, w, b, y]`.
pub fn linear_forward(set: KernelSet, batch: usize, inp: usize, out: usize) -> Result<Vec<KernelCall>> {
    let shape = matmul::MatmulShape::nt(batch, out, inp);
    match set {
        KernelSet::Lavapipe => matmul::matmul(shape, true, false),
        KernelSet::Tiled => gemm::matmul(shape, true, false),
    }
}

/// dx = dy · W. Operands `[dy, w, dx]`.
pub fn linear_backward_input(set: KernelSet, batch: usize, inp: usize, out: usize) -> Result<Vec<KernelCall>> {
    let shape = matmul::MatmulShape::nn(batch, inp, out);
    match set {
        KernelSet::Lavapipe => matmul::matmul(shape, false, false),
        KernelSet::Tiled => gemm::matmul(shape, false, false),
    }
}

/// dW = dyᵀ · x. Operands `[dy, x, dw]`.
pub fn linear_backward_weight(set: KernelSet, batch: usize, inp: usize, out: usize) -> Result<Vec<KernelCall>> {
    let shape = matmul::MatmulShape::tn(out, inp, batch);
    match set {
        KernelSet::Lavapipe => matmul::matmul(shape, false, false),
        KernelSet::Tiled => gemm::matmul(shape, false, false),
    }
}

/// db = Σ over the batch of dy. Inputs `[dy]`.
pub fn linear_backward_bias(set: KernelSet, batch: usize, out: usize) -> Result<Pass> {
    Ok(match set {
        KernelSet::Lavapipe => Pass::direct(matmul::bias_grad(batch, out, false)?),
        KernelSet::Tiled => {
            Pass { calls: bias_grad::rows(batch, out, false)?, scratch: vec![bias_grad::rows_partials(batch, out)] }
        }
    })
}

/// db[c] = Σ over (n, h, w) of dy, for a convolution's or a transposed convolution's output
/// [batch, c, h, w]. Inputs `[dy]`.
pub fn conv_bias_grad(set: KernelSet, batch: usize, c: usize, h: usize, w: usize) -> Result<Pass> {
    Ok(match set {
        KernelSet::Lavapipe => Pass::direct(conv::bias_grad(batch, c, h, w)?),
        KernelSet::Tiled => Pass {
            calls: bias_grad::planes(batch, c, h, w, false)?,
            scratch: vec![bias_grad::planes_partials(batch, c, h, w)],
        },
    })
}

/// y = conv(x, w) (+ b). Inputs `[x, w]` or `[x, w, b]`.
pub fn conv_forward(set: KernelSet, s: &Conv2dShape, bias: bool) -> Result<Pass> {
    Ok(match set {
        KernelSet::Lavapipe if conv_gemm::lowers_forward(s) => Pass::lowered(conv_gemm::forward(s, bias, false)?, s),
        KernelSet::Lavapipe => Pass::direct(conv::forward(s, bias, false)?),
        KernelSet::Tiled => Pass::direct(conv_tiled::forward(s, bias, false)?),
    })
}

/// dx of conv(x, w). Inputs `[dy, w]`.
pub fn conv_backward_input(set: KernelSet, s: &Conv2dShape) -> Result<Pass> {
    Ok(match set {
        KernelSet::Lavapipe if conv_gemm::lowers_backward_input(s) => {
            Pass::lowered(conv_gemm::backward_input(s, false, false)?, s)
        }
        KernelSet::Lavapipe => Pass::direct(conv::backward_input(s)?),
        KernelSet::Tiled => Pass::direct(conv_tiled::backward_input(s, false, false)?),
    })
}

/// dw of conv(x, w). Inputs `[x, dy]`.
pub fn conv_backward_weight(set: KernelSet, s: &Conv2dShape) -> Result<Pass> {
    Ok(match set {
        KernelSet::Lavapipe if conv_gemm::lowers_backward_weight(s) => {
            Pass::lowered(conv_gemm::backward_weight(s, false)?, s)
        }
        KernelSet::Lavapipe => Pass::direct(conv::backward_weight(s)?),
        KernelSet::Tiled => {
            Pass { calls: conv_tiled::backward_weight(s, false)?, scratch: conv_tiled::backward_weight_scratch(s) }
        }
    })
}

/// y = conv_transpose(x, w) (+ b). Inputs `[x, w]` or `[x, w, b]`.
pub fn conv_t_forward(set: KernelSet, s: &ConvTranspose2dShape, bias: bool) -> Result<Pass> {
    let view = s.conv_view();
    Ok(match set {
        KernelSet::Lavapipe if conv_transpose::lowers_forward(s) => {
            Pass::lowered(conv_transpose::forward_lowered(s, bias, false)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::forward(s, bias, false)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_forward")?;
            Pass::direct(conv_tiled::backward_input(&view, bias, false)?)
        }
    })
}

/// dx of conv_transpose(x, w). Inputs `[dy, w]`.
pub fn conv_t_backward_input(set: KernelSet, s: &ConvTranspose2dShape) -> Result<Pass> {
    let view = s.conv_view();
    Ok(match set {
        KernelSet::Lavapipe if conv_transpose::lowers_backward_input(s) => {
            Pass::lowered(conv_transpose::backward_input_lowered(s)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::backward_input(s)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_backward_input")?;
            Pass::direct(conv_tiled::forward(&view, false, false)?)
        }
    })
}

/// dw of conv_transpose(x, w). Inputs `[x, dy]`.
pub fn conv_t_backward_weight(set: KernelSet, s: &ConvTranspose2dShape) -> Result<Pass> {
    let view = s.conv_view();
    Ok(match set {
        KernelSet::Lavapipe if conv_transpose::lowers_backward_weight(s) => {
            Pass::lowered(conv_transpose::backward_weight_lowered(s, false)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::backward_weight(s)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_backward_weight")?;
            // The view's input is this op's dy and its output gradient this op's x.
            let scratch = conv_tiled::backward_weight_scratch(&view);
            let to: Vec<usize> = [1, 0].into_iter().chain(2..3 + scratch.len()).collect();
            Pass { calls: rename_operands(conv_tiled::backward_weight(&view, false)?, &to), scratch }
        }
    })
}
