//! The ops a graph records, each with its forward dispatches and its backward rule.

use anyhow::{bail, Result};

use super::autodiff::GradCtx;
use super::builder::{BoundCall, Graph, Node};
use super::tensor::TensorId;
use crate::ops::batchnorm::{self, BatchNormShape, BnAct};
use crate::ops::bce_logits;
use crate::ops::conv::Conv2dShape;
use crate::ops::conv_transpose::ConvTranspose2dShape;
use crate::ops::elementwise::{self, Activation};
use crate::ops::gather::{self, GatherShape};
use crate::ops::loss::{self, BceReduction};
use crate::ops::mse::{self, MseReduction};
use crate::ops::passes::{self, Pass};
use crate::ops::pool::{self, PoolShape};
use crate::ops::random::{self, Distribution, RngKey};
use crate::ops::reduce;
use crate::ops::upsample::{self, UpsampleShape};
use crate::runtime::KernelCall;

#[derive(Clone, Debug)]
pub enum Op {
    /// Same storage, new shape. Inputs `[x]`, outputs `[view]`.
    View,
    /// Batch from the GPU dataset, indexed by counter `slot`. Inputs `[images, order, counters]`,
    /// outputs `[x]`.
    Gather(GatherShape, usize),
    /// Random draws for this step. Inputs `[counters]`, outputs `[out]`.
    Random(Distribution, RngKey),
    /// Inputs `[x]`, outputs `[y]`.
    Act(Activation),
    /// A Linear, Conv2d or ConvTranspose2d with an activation in its epilogue (`fuse::activations`):
    /// the inner op's inputs, outputs `[act(y)]`.
    Epilogue(Box<Op>, Activation),
    /// y = x Wᵀ + b. Inputs `[x, w, b]`, outputs `[y]`.
    Linear { batch: usize, inp: usize, out: usize },
    /// Inputs `[x, w]` or `[x, w, b]`, outputs `[y]`.
    Conv2d(Conv2dShape, bool),
    /// 2×2 max-pooling. Inputs `[x]`, outputs `[y]`.
    MaxPool(PoolShape),
    /// Inputs `[x, w]` or `[x, w, b]`, outputs `[y]`.
    ConvT2d(ConvTranspose2dShape, bool),
    /// Nearest-neighbour upsampling ×2. Inputs `[x]`, outputs `[y]`.
    Upsample2x(UpsampleShape),
    /// Loss = Σ x. Inputs `[x]`, outputs `[loss]` (a scalar).
    SumLoss,
    /// The mean of x, for reporting (not differentiated). Inputs `[x]`, outputs `[mean]`.
    Mean,
    /// Binary cross-entropy of probabilities against targets (targets get no gradient).
    /// Inputs `[p, t]`, outputs `[loss]`.
    Bce { batch: usize, per_item: usize, reduction: BceReduction },
    /// Squared error of predictions against targets (both get gradients). Inputs `[pred, target]`,
    /// outputs `[loss]`.
    Mse { batch: usize, per_item: usize, reduction: MseReduction },
    /// Binary cross-entropy of logits against targets (targets get no gradient). Inputs
    /// `[logits, t]`, outputs `[loss]`.
    BceLogits { batch: usize, per_item: usize, reduction: BceReduction },
    /// Softmax cross-entropy of logits against class labels, mean over rows. Inputs `[logits, labels]`.
    Xent { rows: usize, classes: usize },
    /// The VAE's KL(q(z|x) ‖ N(0, I)), mean over the batch. Inputs `[mu, logvar]`, outputs `[loss]`.
    Kl { batch: usize, z: usize },
    /// z = μ + exp(½ logσ²)·ε. Inputs `[mu, logvar, eps]`, outputs `[z]`.
    Reparam,
    /// Training-mode batchnorm followed by an activation. Inputs `[x, gamma, beta, running_mean,
    /// running_var]`, outputs `[y, saved]`.
    BatchNorm(BatchNormShape, BnAct),
    /// Eval-mode batchnorm followed by an activation. Inputs as `BatchNorm`, outputs `[y]`.
    BatchNormEval(BatchNormShape, BnAct),
}

fn bind(calls: Vec<KernelCall>, args: Vec<TensorId>) -> Vec<BoundCall> {
    calls.into_iter().map(|call| BoundCall::new(call, args.clone())).collect()
}

impl Op {
    /// Whether the op is a product an activation can be fused into (`fuse::activations`).
    pub fn has_epilogue(&self) -> bool {
        matches!(self, Op::Linear { .. } | Op::Conv2d(..) | Op::ConvT2d(..))
    }

    /// The forward pass of a product (`has_epilogue`).
    fn product_pass(&self, g: &Graph) -> Result<Pass> {
        match self {
            Op::Linear { batch, inp, out } => passes::linear_forward(g.kernels, *batch, *inp, *out),
            Op::Conv2d(s, bias) => passes::conv_forward(g.kernels, s, *bias),
            Op::ConvT2d(s, bias) => passes::conv_t_forward(g.kernels, s, *bias),
            _ => bail!("{self:?} is not a product with an epilogue"),
        }
    }

    pub fn differentiable(&self) -> bool {
        match self {
            Op::Epilogue(inner, _) => inner.differentiable(),
            _ => !matches!(self, Op::Gather(..) | Op::Random(..) | Op::Mean),
        }
    }

    /// The op's dispatches; `g` gains the scratch tensors of ops lowered to the matmul.
    pub fn forward(&self, g: &mut Graph, node: &Node) -> Result<Vec<BoundCall>> {
        let (i, o) = (&node.inputs, &node.outputs);
        Ok(match self {
            Op::View => vec![],
            Op::Gather(s, slot) => bind(gather::forward(s, *slot)?, vec![i[0], i[1], i[2], o[0]]),
            Op::Random(d, key) => bind(random::fill(g.len(o[0]), *d, *key)?, vec![i[0], o[0]]),
            Op::Act(a) => bind(elementwise::forward(*a, g.len(i[0]))?, vec![i[0], o[0]]),
            Op::Epilogue(inner, a) => {
                let pass = inner.product_pass(g)?.with_activation(*a)?;
                bind_pass(g, pass, i, o[0])
            }
            Op::SumLoss => {
                let n = g.len(i[0]);
                bind(reduce::sum(n)?, vec![i[0], o[0], partials(g, n)])
            }
            Op::Mean => {
                let n = g.len(i[0]);
                bind(reduce::mean(n)?, vec![i[0], o[0], partials(g, n)])
            }
            Op::MaxPool(s) => bind(pool::forward(s)?, vec![i[0], o[0]]),
            Op::Upsample2x(s) => bind(upsample::forward(s)?, vec![i[0], o[0]]),
            Op::Linear { .. } | Op::Conv2d(..) | Op::ConvT2d(..) => {
                let pass = self.product_pass(g)?;
                bind_pass(g, pass, i, o[0])
            }
            Op::Bce { batch, per_item, reduction } => {
                let part = partials(g, batch * per_item);
                bind(loss::bce_forward(*batch, *per_item, *reduction)?, vec![i[0], i[1], o[0], part])
            }
            Op::Mse { batch, per_item, reduction } => {
                let part = partials(g, batch * per_item);
                bind(mse::forward(*batch, *per_item, *reduction)?, vec![i[0], i[1], o[0], part])
            }
            Op::BceLogits { batch, per_item, reduction } => {
                let part = partials(g, batch * per_item);
                bind(bce_logits::forward(*batch, *per_item, *reduction)?, vec![i[0], i[1], o[0], part])
            }
            Op::Kl { batch, z } => {
                let part = partials(g, batch * z);
                bind(loss::kl_forward(*batch, *z)?, vec![i[0], i[1], o[0], part])
            }
            Op::Xent { rows, classes } => {
                let part = partials(g, *rows);
                bind(loss::xent_forward(*rows, *classes)?, vec![i[0], i[1], o[0], part])
            }
            Op::Reparam => bind(loss::reparam_forward(g.len(i[0]))?, vec![i[0], i[1], i[2], o[0]]),
            Op::BatchNorm(s, a) => {
                let part = g.transient("batchnorm.partials", &[batchnorm::forward_partials(s)]);
                bind(batchnorm::train_forward(s, *a)?, vec![i[0], i[1], i[2], i[3], i[4], o[1], o[0], part])
            }
            Op::BatchNormEval(s, a) => bind(batchnorm::eval_forward(s, *a)?, vec![i[0], i[1], i[2], i[3], i[4], o[0]]),
        })
    }

    pub fn backward(&self, ctx: &mut GradCtx<'_>, node: &Node) -> Result<()> {
        let (i, o) = (&node.inputs, &node.outputs);
        match self {
            Op::View => {
                if let Some(g) = ctx.grad(o[0]) {
                    ctx.alias_grad(i[0], g)?;
                }
            }
            Op::Gather(..) | Op::Random(..) | Op::Mean => {}
            Op::Act(a) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let t = ctx.target(i[0]);
                let n = ctx.graph.len(i[0]);
                ctx.emit(elementwise::backward(*a, n)?, vec![o[0], dy, t.write]);
                ctx.finish(t)?;
            }
            Op::Epilogue(inner, a) => {
                // The activation's gradient first, from the fused output; the inner op then sees it
                // as the gradient of its own (never stored) output.
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let shape = ctx.graph.shape(o[0]).to_vec();
                let name = format!("{}.pre_activation_grad", ctx.graph.info(o[0]).name);
                let pre = ctx.graph.transient(&name, &shape);
                ctx.emit(elementwise::backward(*a, ctx.graph.len(o[0]))?, vec![o[0], dy, pre]);
                ctx.grads.insert(o[0], pre);
                inner.backward(ctx, node)?;
            }
            Op::SumLoss => {
                let t = ctx.target(i[0]);
                let n = ctx.graph.len(i[0]);
                ctx.emit(elementwise::fill(n, 1.0)?, vec![t.write]);
                ctx.finish(t)?;
            }
            Op::Conv2d(s, bias) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let set = ctx.graph.kernels;
                grad_pass(ctx, i[0], &[dy, i[1]], || passes::conv_backward_input(set, s))?;
                grad_pass(ctx, i[1], &[i[0], dy], || passes::conv_backward_weight(set, s))?;
                if *bias {
                    grad_pass(ctx, i[2], &[dy], || passes::conv_bias_grad(set, s.batch, s.cout, s.out_h(), s.out_w()))?;
                }
            }
            Op::ConvT2d(s, bias) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let set = ctx.graph.kernels;
                grad_pass(ctx, i[0], &[dy, i[1]], || passes::conv_t_backward_input(set, s))?;
                grad_pass(ctx, i[1], &[i[0], dy], || passes::conv_t_backward_weight(set, s))?;
                if *bias {
                    grad_pass(ctx, i[2], &[dy], || passes::conv_bias_grad(set, s.batch, s.cout, s.out_h(), s.out_w()))?;
                }
            }
            Op::BatchNorm(s, a) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let (write, targets) = ctx.targets_or_scratch(&[i[1], i[2], i[0]]);
                let part = ctx.graph.transient("batchnorm.partials", &[batchnorm::backward_partials(s)]);
                let operands = vec![i[0], dy, i[1], o[1], write[0], write[1], write[2], o[0], part];
                ctx.emit(batchnorm::backward(s, *a)?, operands);
                ctx.finish_all(targets)?;
            }
            Op::MaxPool(s) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let t = ctx.target(i[0]);
                ctx.emit(pool::backward_input(s, false)?, vec![i[0], dy, t.write]);
                ctx.finish(t)?;
            }
            Op::Upsample2x(s) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let t = ctx.target(i[0]);
                ctx.emit(upsample::backward_input(s, false)?, vec![dy, t.write]);
                ctx.finish(t)?;
            }
            Op::Linear { batch, inp, out } => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let (b, n, m, set) = (*batch, *inp, *out, ctx.graph.kernels);
                grad_pass(ctx, i[0], &[dy, i[1]], || passes::linear_backward_input(set, b, n, m))?;
                grad_pass(ctx, i[1], &[dy, i[0]], || passes::linear_backward_weight(set, b, n, m))?;
                grad_pass(ctx, i[2], &[dy], || passes::linear_backward_bias(set, b, m))?;
            }
            // Losses are differentiated with unit weight: the total loss is their plain sum.
            Op::Bce { batch, per_item, reduction } => {
                ctx.grad_into(i[0], &[i[0], i[1]], || loss::bce_backward(*batch, *per_item, *reduction, 1.0, false))?;
            }
            Op::Mse { batch, per_item, reduction } => {
                let (b, n, r) = (*batch, *per_item, *reduction);
                ctx.grad_into(i[0], &[i[0], i[1]], || mse::backward(b, n, r, 1.0, false))?;
                ctx.grad_into(i[1], &[i[0], i[1]], || mse::backward(b, n, r, -1.0, false))?;
            }
            Op::BceLogits { batch, per_item, reduction } => {
                if ctx.needs(i[1]) {
                    let name = &ctx.graph.info(i[1]).name;
                    bail!("bce_with_logits: target {name} needs a gradient, which this loss does not give");
                }
                let (b, n, r) = (*batch, *per_item, *reduction);
                ctx.grad_into(i[0], &[i[0], i[1]], || bce_logits::backward(b, n, r, 1.0, false))?;
            }
            Op::Xent { rows, classes } => {
                ctx.grad_into(i[0], &[i[0], i[1]], || loss::xent_backward(*rows, *classes, false))?;
            }
            Op::Kl { batch, z } => {
                let (write, targets) = ctx.targets_or_scratch(&[i[0], i[1]]);
                ctx.emit(loss::kl_backward(*batch, *z, 1.0, false)?, vec![i[0], i[1], write[0], write[1]]);
                ctx.finish_all(targets)?;
            }
            Op::Reparam => {
                let Some(dz) = ctx.grad(o[0]) else { return Ok(()) };
                let (write, targets) = ctx.targets_or_scratch(&[i[0], i[1]]);
                let n = ctx.graph.len(i[0]);
                ctx.emit(loss::reparam_backward(n, false)?, vec![i[1], i[2], dz, write[0], write[1]]);
                ctx.finish_all(targets)?;
            }
            Op::BatchNormEval(..) => bail!("eval-mode batchnorm has no backward; build the graph in training mode"),
        }
        Ok(())
    }
}

/// Binds a forward pass: inputs, then fresh scratch tensors, then the output. The planner overlaps
/// scratch of different layers: each lives only across its own pass's dispatches.
fn bind_pass(g: &mut Graph, pass: Pass, inputs: &[TensorId], out: TensorId) -> Vec<BoundCall> {
    let scratch = scratch_tensors(g, &pass);
    let mut calls = bind(pass.calls, [inputs, &scratch, &[out]].concat());
    for c in &mut calls {
        c.tunable.clone_from(&pass.tunable);
    }
    calls
}

/// A fresh transient tensor for the chunk sums of a reduction over `n` elements (`reduce::two_stage`).
fn partials(g: &mut Graph, n: usize) -> TensorId {
    g.transient("reduce.partials", &[reduce::partials_len(n)])
}

/// Fresh transient tensors for a pass's scratch, in its operand order.
fn scratch_tensors(g: &mut Graph, pass: &Pass) -> Vec<TensorId> {
    pass.scratch.iter().map(|&n| g.transient("pass.scratch", &[n])).collect()
}

/// The gradient of `t` through a pass over `inputs` (plus the pass's scratch), if `t` needs one.
fn grad_pass(
    ctx: &mut GradCtx<'_>,
    t: TensorId,
    inputs: &[TensorId],
    pass: impl FnOnce() -> Result<Pass>,
) -> Result<()> {
    if !ctx.needs(t) {
        return Ok(());
    }
    let pass = pass()?;
    let scratch = scratch_tensors(ctx.graph, &pass);
    let first = ctx.steps.len();
    ctx.grad_into(t, &[inputs, &scratch].concat(), || Ok(pass.calls))?;
    // The pass's own calls come first; an accumulation of a repeated gradient may follow them.
    let calls = pass.tunable.as_ref().map_or(0, |t| t.candidates[0].1.len());
    for c in ctx.steps.iter_mut().skip(first).take(calls) {
        c.tunable.clone_from(&pass.tunable);
    }
    Ok(())
}
