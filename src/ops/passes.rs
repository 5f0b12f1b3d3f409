//! The passes of the layers whose kernels differ per kernel set (Linear, Conv2d, ConvTranspose2d),
//! each as its dispatches plus the scratch tensors they need: what the graph records, for whichever
//! set the device runs.
//!
//! Operand order of every pass: its inputs, then its scratch tensors in `scratch` order, then the
//! output. Outputs are overwritten (the graph accumulates repeated gradients itself).

use std::sync::Arc;

use anyhow::Result;

use super::conv::{self, Conv2dShape};
use super::conv_transpose::{self, ConvTranspose2dShape};
use super::elementwise::Activation;
use super::gemm::Plan;
use super::tuned::{self, Tunable};
use super::{bias_grad, conv_gemm, conv_tiled, gemm, matmul, rename_operands};
use crate::runtime::{KernelCall, KernelSet};

/// The kernels a graph's passes are built from: the set, and whether the tiled set's products carry
/// their candidate configurations for the autotuner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    pub set: KernelSet,
    pub tune: bool,
}

impl From<KernelSet> for Kernels {
    fn from(set: KernelSet) -> Kernels {
        Kernels { set, tune: false }
    }
}

impl Kernels {
    /// Whether this pass is built with candidates: the tiled set with tuning on.
    fn tuned(self) -> bool {
        self.set == KernelSet::Tiled && self.tune
    }
}

/// One pass of a layer.
#[derive(Clone, Debug)]
pub struct Pass {
    pub calls: Vec<KernelCall>,
    /// Lengths (f32 elements) of the scratch tensors bound between the inputs and the output.
    pub scratch: Vec<usize>,
    /// The configurations the autotuner chooses among; `calls` are its first (the default).
    pub tunable: Option<Arc<Tunable>>,
}

impl Pass {
    pub fn new(calls: Vec<KernelCall>, scratch: Vec<usize>) -> Pass {
        Pass { calls, scratch, tunable: None }
    }

    pub fn direct(calls: Vec<KernelCall>) -> Pass {
        Pass::new(calls, Vec::new())
    }

    /// The same pass for an op whose two inputs come in the other order.
    pub fn swap_inputs(self) -> Pass {
        let to: Vec<usize> = [1, 0].into_iter().chain(2..3 + self.scratch.len()).collect();
        Pass::new(rename_operands(self.calls, &to), self.scratch)
    }

    /// The same pass, a tiled product's forward pass, with `act` applied in the epilogue of every
    /// call and of every candidate's calls.
    pub fn with_activation(mut self, act: Activation) -> Result<Pass> {
        for c in &mut self.calls {
            gemm::set_epilogue_activation(c, act)?;
        }
        if let Some(t) = self.tunable.take() {
            let mut candidates = t.candidates.clone();
            for c in candidates.iter_mut().flat_map(|(_, calls)| calls.iter_mut()) {
                gemm::set_epilogue_activation(c, act)?;
            }
            // The activation costs the same in every candidate: the shape class stays the product's.
            self.tunable = Some(Arc::new(Tunable { key: t.key.clone(), candidates }));
        }
        Ok(self)
    }

    fn lowered(calls: Vec<KernelCall>, s: &Conv2dShape) -> Pass {
        Pass::new(calls, conv_gemm::scratch_lens(s).to_vec())
    }
}

/// A product through either set: the lavapipe set's matmul, or the tiled one's pass (K split when
/// the output is small, with its partials as scratch).
fn product(k: Kernels, shape: matmul::MatmulShape, bias: bool) -> Result<Pass> {
    match k.set {
        KernelSet::Lavapipe => Ok(Pass::direct(matmul::matmul(shape, bias, false)?)),
        KernelSet::Tiled => planned(
            k,
            || tuned::matmul_key(&shape, bias),
            2 + bias as usize,
            || gemm::matmul_plans(shape),
            |p| gemm::matmul_planned(shape, bias, false, p),
        ),
    }
}

/// A tiled pass with `n_in` inputs: on its default plan, or with tuning on, on each of its
/// candidate plans for the tuner to choose among (`tuned::pass`).
fn planned(
    k: Kernels,
    key: impl FnOnce() -> String,
    n_in: usize,
    plans: impl FnOnce() -> Result<Vec<Plan>>,
    build: impl Fn(Option<Plan>) -> Result<Pass>,
) -> Result<Pass> {
    if !k.tuned() {
        return build(None);
    }
    tuned::pass(key(), n_in, &plans()?, |p| build(Some(p)))
}

/// y[batch, out] = x · Wᵀ + b. Inputs `[x, w, b]`.
pub fn linear_forward(k: impl Into<Kernels>, batch: usize, inp: usize, out: usize) -> Result<Pass> {
    product(k.into(), matmul::MatmulShape::nt(batch, out, inp), true)
}

/// dx = dy · W. Inputs `[dy, w]`.
pub fn linear_backward_input(k: impl Into<Kernels>, batch: usize, inp: usize, out: usize) -> Result<Pass> {
    product(k.into(), matmul::MatmulShape::nn(batch, inp, out), false)
}

/// dW = dyᵀ · x. Inputs `[dy, x]`.
pub fn linear_backward_weight(k: impl Into<Kernels>, batch: usize, inp: usize, out: usize) -> Result<Pass> {
    product(k.into(), matmul::MatmulShape::tn(out, inp, batch), false)
}

/// db = Σ over the batch of dy. Inputs `[dy]`.
pub fn linear_backward_bias(k: impl Into<Kernels>, batch: usize, out: usize) -> Result<Pass> {
    Ok(match k.into().set {
        KernelSet::Lavapipe => Pass::direct(matmul::bias_grad(batch, out, false)?),
        KernelSet::Tiled => Pass::new(bias_grad::rows(batch, out, false)?, vec![bias_grad::rows_partials(batch, out)]),
    })
}

/// db[c] = Σ over (n, h, w) of dy, for a convolution's or a transposed convolution's output
/// [batch, c, h, w]. Inputs `[dy]`.
pub fn conv_bias_grad(k: impl Into<Kernels>, batch: usize, c: usize, h: usize, w: usize) -> Result<Pass> {
    Ok(match k.into().set {
        KernelSet::Lavapipe => Pass::direct(conv::bias_grad(batch, c, h, w)?),
        KernelSet::Tiled => {
            Pass::new(bias_grad::planes(batch, c, h, w, false)?, vec![bias_grad::planes_partials(batch, c, h, w)])
        }
    })
}

/// y = conv(x, w) (+ b). Inputs `[x, w]` or `[x, w, b]`.
pub fn conv_forward(k: impl Into<Kernels>, s: &Conv2dShape, bias: bool) -> Result<Pass> {
    let k = k.into();
    Ok(match k.set {
        KernelSet::Lavapipe if conv_gemm::lowers_forward(s) => Pass::lowered(conv_gemm::forward(s, bias, false)?, s),
        KernelSet::Lavapipe => Pass::direct(conv::forward(s, bias, false)?),
        KernelSet::Tiled => tiled_forward(k, s, bias)?,
    })
}

/// dx of conv(x, w). Inputs `[dy, w]`.
pub fn conv_backward_input(k: impl Into<Kernels>, s: &Conv2dShape) -> Result<Pass> {
    let k = k.into();
    Ok(match k.set {
        KernelSet::Lavapipe if conv_gemm::lowers_backward_input(s) => {
            Pass::lowered(conv_gemm::backward_input(s, false, false)?, s)
        }
        KernelSet::Lavapipe => Pass::direct(conv::backward_input(s)?),
        KernelSet::Tiled => tiled_backward_input(k, s, false)?,
    })
}

/// dw of conv(x, w). Inputs `[x, dy]`.
pub fn conv_backward_weight(k: impl Into<Kernels>, s: &Conv2dShape) -> Result<Pass> {
    let k = k.into();
    Ok(match k.set {
        KernelSet::Lavapipe if conv_gemm::lowers_backward_weight(s) => {
            Pass::lowered(conv_gemm::backward_weight(s, false)?, s)
        }
        KernelSet::Lavapipe => Pass::direct(conv::backward_weight(s)?),
        KernelSet::Tiled => tiled_backward_weight(k, s)?,
    })
}

/// y = conv_transpose(x, w) (+ b). Inputs `[x, w]` or `[x, w, b]`.
pub fn conv_t_forward(k: impl Into<Kernels>, s: &ConvTranspose2dShape, bias: bool) -> Result<Pass> {
    let (k, view) = (k.into(), s.conv_view());
    Ok(match k.set {
        KernelSet::Lavapipe if conv_transpose::lowers_forward(s) => {
            Pass::lowered(conv_transpose::forward_lowered(s, bias, false)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::forward(s, bias, false)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_forward")?;
            tiled_backward_input(k, &view, bias)?
        }
    })
}

/// dx of conv_transpose(x, w). Inputs `[dy, w]`.
pub fn conv_t_backward_input(k: impl Into<Kernels>, s: &ConvTranspose2dShape) -> Result<Pass> {
    let (k, view) = (k.into(), s.conv_view());
    Ok(match k.set {
        KernelSet::Lavapipe if conv_transpose::lowers_backward_input(s) => {
            Pass::lowered(conv_transpose::backward_input_lowered(s)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::backward_input(s)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_backward_input")?;
            tiled_forward(k, &view, false)?
        }
    })
}

/// dw of conv_transpose(x, w). Inputs `[x, dy]`.
pub fn conv_t_backward_weight(k: impl Into<Kernels>, s: &ConvTranspose2dShape) -> Result<Pass> {
    let (k, view) = (k.into(), s.conv_view());
    Ok(match k.set {
        KernelSet::Lavapipe if conv_transpose::lowers_backward_weight(s) => {
            Pass::lowered(conv_transpose::backward_weight_lowered(s, false)?, &view)
        }
        KernelSet::Lavapipe => Pass::direct(conv_transpose::backward_weight(s)?),
        KernelSet::Tiled => {
            s.validate("conv_transpose2d_backward_weight")?;
            // The view's input is this op's dy and its output gradient this op's x.
            tiled_backward_weight(k, &view)?.swap_inputs()
        }
    })
}

fn tiled_forward(k: Kernels, s: &Conv2dShape, bias: bool) -> Result<Pass> {
    let key = || tuned::conv_key("conv2d_forward", s, bias);
    planned(k, key, 2 + bias as usize, || conv_tiled::forward_plans(s), |p| conv_tiled::forward_on(s, bias, false, p))
}

fn tiled_backward_input(k: Kernels, s: &Conv2dShape, bias: bool) -> Result<Pass> {
    let key = || tuned::conv_key("conv2d_backward_input", s, bias);
    let build = |p| conv_tiled::backward_input_on(s, bias, false, p);
    planned(k, key, 2 + bias as usize, || conv_tiled::backward_input_plans(s), build)
}

fn tiled_backward_weight(k: Kernels, s: &Conv2dShape) -> Result<Pass> {
    let key = || tuned::conv_key("conv2d_backward_weight", s, false);
    planned(k, key, 2, || conv_tiled::backward_weight_plans(s), |p| conv_tiled::backward_weight_on(s, false, p))
}
