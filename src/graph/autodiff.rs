//! Reverse-mode differentiation of a recorded graph, and the optimiser dispatches that follow it.
//!
//! Walks the nodes backwards; each op emits the kernels for the gradients of those inputs that need
//! one. The first contribution to a gradient writes it; later ones (a tensor used twice, such as a
//! discriminator's weights on a real and a fake batch) go to a temporary and are accumulated, so no
//! gradient buffer ever needs zeroing.

use anyhow::{bail, Result};
use std::collections::HashMap;

use super::builder::{BoundCall, Graph};
use super::params::ParamStore;
use super::tensor::{Role, StoreBuf, TensorId};
use crate::ops::adam::{self, AdamConfig};
use crate::ops::{elementwise, random};
use crate::runtime::KernelCall;

pub struct GradCtx<'a> {
    pub graph: &'a mut Graph,
    pub grads: HashMap<TensorId, TensorId>,
    pub steps: Vec<BoundCall>,
    requires: Vec<bool>,
}

/// Where a backward kernel writes an input's gradient; `finish` accumulates it if needed.
#[derive(Clone, Copy, Debug)]
pub struct GradTarget {
    pub write: TensorId,
    accumulate_into: Option<TensorId>,
}

impl<'a> GradCtx<'a> {
    /// Whether `t` needs a gradient.
    pub fn needs(&self, t: TensorId) -> bool {
        self.requires[t.0]
    }

    /// The upstream gradient of a node output (None if nothing downstream needs it).
    pub fn grad(&self, t: TensorId) -> Option<TensorId> {
        self.grads.get(&t).copied()
    }

    pub fn emit(&mut self, calls: Vec<KernelCall>, args: Vec<TensorId>) {
        self.steps.extend(calls.into_iter().map(|call| BoundCall::new(call, args.clone())));
    }

    /// The tensor to write `t`'s gradient into.
    pub fn target(&mut self, t: TensorId) -> GradTarget {
        if let Some(&g) = self.grads.get(&t) {
            let shape = self.graph.shape(t).to_vec();
            let name = format!("{}.grad_part", self.graph.info(t).name);
            let tmp = self.graph.transient(&name, &shape);
            return GradTarget { write: tmp, accumulate_into: Some(g) };
        }
        let info = self.graph.info(t).clone();
        let g = match &info.role {
            Role::Param(name) => {
                let g = self.graph.transient(&format!("{name}.grad"), &info.shape);
                self.graph.tensors[g.0].role = Role::ParamGrad(name.clone());
                g
            }
            _ => self.graph.transient(&format!("{}.grad", info.name), &info.shape),
        };
        self.grads.insert(t, g);
        GradTarget { write: g, accumulate_into: None }
    }

    /// If `t` needs a gradient: emits `calls` over `args` followed by the tensor receiving it, and
    /// completes it (the form of every op whose gradients each come from their own kernels).
    pub fn grad_into(
        &mut self,
        t: TensorId,
        args: &[TensorId],
        calls: impl FnOnce() -> Result<Vec<KernelCall>>,
    ) -> Result<()> {
        if !self.needs(t) {
            return Ok(());
        }
        let target = self.target(t);
        let mut args = args.to_vec();
        args.push(target.write);
        self.emit(calls()?, args);
        self.finish(target)
    }

    /// Completes a gradient written through `target`.
    pub fn finish(&mut self, t: GradTarget) -> Result<()> {
        if let Some(acc) = t.accumulate_into {
            let n = self.graph.len(acc);
            self.emit(elementwise::accumulate(n)?, vec![acc, t.write]);
        }
        Ok(())
    }

    /// Targets for a kernel that writes the gradients of all of `ts` at once: those nobody needs go
    /// to a scratch tensor. Returns the tensors to bind and the targets to `finish_all`.
    pub fn targets_or_scratch(&mut self, ts: &[TensorId]) -> (Vec<TensorId>, Vec<GradTarget>) {
        let mut write = Vec::new();
        let mut targets = Vec::new();
        for &t in ts {
            if self.needs(t) {
                let g = self.target(t);
                write.push(g.write);
                targets.push(g);
            } else {
                let shape = self.graph.shape(t).to_vec();
                write.push(self.graph.transient("unused_grad", &shape));
            }
        }
        (write, targets)
    }

    pub fn finish_all(&mut self, targets: Vec<GradTarget>) -> Result<()> {
        targets.into_iter().try_for_each(|t| self.finish(t))
    }

    /// Records that `t`'s gradient is `g` without any kernel (views share gradient storage).
    pub fn alias_grad(&mut self, t: TensorId, g: TensorId) -> Result<()> {
        match self.grads.get(&t).copied() {
            None => {
                let shape = self.graph.shape(t).to_vec();
                let name = format!("{}.grad", self.graph.info(t).name);
                let v = self.graph.transient(&name, &shape);
                self.graph.tensors[v.0].role = Role::View(g);
                self.grads.insert(t, v);
            }
            Some(acc) => {
                let n = self.graph.len(acc);
                self.emit(elementwise::accumulate(n)?, vec![acc, g]);
            }
        }
        Ok(())
    }
}

/// Which tensors need gradients: trainable, unfrozen parameters and everything computed from them.
fn requires_grad(graph: &Graph) -> Vec<bool> {
    let mut req: Vec<bool> =
        graph.tensors.iter().map(|t| matches!(&t.role, Role::Param(n) if !graph.is_frozen(n))).collect();
    for node in &graph.nodes {
        // A frozen parameter passes no gradient to itself but still lets it flow to the activations
        // it multiplies, which is how a generator step trains through a fixed discriminator.
        let flows = node.op.differentiable() && node.inputs.iter().any(|i| req[i.0]);
        for o in &node.outputs {
            req[o.0] = flows;
        }
    }
    req
}

/// Forward dispatches of every node, in recording order.
pub fn forward(graph: &mut Graph) -> Result<Vec<BoundCall>> {
    let mut steps = Vec::new();
    let nodes = graph.nodes.clone();
    for node in &nodes {
        for call in node.op.forward(graph, node)? {
            steps.push(call);
        }
    }
    Ok(steps)
}

/// Appends the backward dispatches of `graph`'s losses to `steps`.
pub fn backward(graph: &mut Graph, steps: &mut Vec<BoundCall>) -> Result<()> {
    if graph.losses.is_empty() {
        bail!("backward: the graph has no loss");
    }
    let requires = requires_grad(graph);
    let losses: Vec<TensorId> = graph.losses.iter().map(|(_, t)| *t).collect();
    let nodes = graph.nodes.clone();
    let mut ctx = GradCtx { graph, grads: HashMap::new(), steps: Vec::new(), requires };
    for node in nodes.iter().rev() {
        let is_loss = node.outputs.iter().any(|o| losses.contains(o));
        let has_upstream = node.outputs.iter().any(|o| ctx.grads.contains_key(o));
        if !(is_loss || has_upstream) || !node.inputs.iter().any(|i| ctx.needs(*i)) {
            continue;
        }
        node.op.backward(&mut ctx, node)?;
    }
    steps.append(&mut ctx.steps);
    Ok(())
}

/// The Adam update of every trainable, unfrozen parameter the graph records, as one dispatch over
/// their contiguous span of the store.
pub fn optimizer(graph: &mut Graph, store: &ParamStore, cfg: &AdamConfig, steps: &mut Vec<BoundCall>) -> Result<()> {
    let trained: Vec<String> =
        graph.params.iter().filter(|p| p.trainable && !graph.is_frozen(&p.name)).map(|p| p.name.clone()).collect();
    if trained.is_empty() {
        return Ok(());
    }
    let (lo, n) = store.span(&trained)?;
    let args = [StoreBuf::Params, StoreBuf::Grads, StoreBuf::AdamM, StoreBuf::AdamV].map(|b| graph.span(b, lo, n));
    let counters = graph.external("counters", &[super::params::COUNTER_SLOTS]);
    let calls = adam::step(n, cfg, 0)?;
    steps
        .extend(calls.into_iter().map(|call| BoundCall::new(call, vec![args[0], args[1], args[2], args[3], counters])));
    Ok(())
}

/// Advances the step counter (slot 0) at the end of a training step.
pub fn increment_step(graph: &mut Graph, steps: &mut Vec<BoundCall>) {
    increment_slot(graph, steps, 0);
}

/// Advances counter `slot` (the batch index of an evaluation pass, for instance) after `steps`.
pub fn increment_slot(graph: &mut Graph, steps: &mut Vec<BoundCall>, slot: usize) {
    let counters = graph.external("counters", &[super::params::COUNTER_SLOTS]);
    steps.extend(random::increment_step(slot).into_iter().map(|call| BoundCall::new(call, vec![counters])));
}
