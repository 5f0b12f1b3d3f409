//! Recording a model once: tensors, parameters with their initialisers, and forward nodes.

use anyhow::{bail, Result};
use std::collections::HashMap;

use super::op::Op;
use super::tensor::{Init, ParamSpec, Role, StoreBuf, TensorId, TensorInfo};
use std::sync::Arc;

use crate::ops::passes::Kernels;
use crate::ops::tuned::Tunable;
use crate::runtime::KernelCall;

/// A kernel call bound to graph tensors: `args[i]` is the tensor for the call's operand `i`.
#[derive(Clone, Debug)]
pub struct BoundCall {
    pub call: KernelCall,
    pub args: Vec<TensorId>,
    /// Set on the calls of a tunable pass (consecutive, sharing one `Tunable`): the executor
    /// replaces them with the candidate the autotuner picks (`tune::resolve`).
    pub tunable: Option<Arc<Tunable>>,
}

impl BoundCall {
    pub fn new(call: KernelCall, args: Vec<TensorId>) -> BoundCall {
        BoundCall { call, args, tunable: None }
    }
}

/// One recorded op: what autodiff needs to derive its backward.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

/// A model recorded as a static list of nodes.
pub struct Graph {
    /// The kernels the graph's matmuls and convolutions are compiled for.
    pub kernels: Kernels,
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    pub params: Vec<ParamSpec>,
    /// Named scalar losses; their sum is what backward differentiates.
    pub losses: Vec<(String, TensorId)>,
    /// Named scalars reported beside the losses but never differentiated (e.g. a discriminator's mean output).
    pub metrics: Vec<(String, TensorId)>,
    /// Tensors the host reads after a step (images to save, encodings): kept alive to the end.
    pub outputs: Vec<TensorId>,
    /// Parameters this graph reads but must not update (a GAN's G step through a frozen D).
    pub frozen: Vec<String>,
    by_name: HashMap<String, TensorId>,
}

impl Graph {
    pub fn new(kernels: impl Into<Kernels>) -> Self {
        Graph {
            kernels: kernels.into(),
            tensors: Vec::new(),
            nodes: Vec::new(),
            params: Vec::new(),
            losses: Vec::new(),
            metrics: Vec::new(),
            outputs: Vec::new(),
            frozen: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    pub fn info(&self, t: TensorId) -> &TensorInfo {
        &self.tensors[t.0]
    }

    pub fn shape(&self, t: TensorId) -> &[usize] {
        &self.tensors[t.0].shape
    }

    pub fn len(&self, t: TensorId) -> usize {
        self.tensors[t.0].len
    }

    fn add(&mut self, name: String, shape: Vec<usize>, role: Role) -> TensorId {
        let len = shape.iter().product();
        let id = TensorId(self.tensors.len());
        self.tensors.push(TensorInfo { name, shape, role, len });
        id
    }

    /// An intermediate value.
    pub fn transient(&mut self, name: &str, shape: &[usize]) -> TensorId {
        self.add(name.to_string(), shape.to_vec(), Role::Transient)
    }

    /// `x` under a new shape with the same element count; shares storage (and gradient storage).
    pub fn view(&mut self, x: TensorId, shape: &[usize]) -> Result<TensorId> {
        let n: usize = shape.iter().product();
        if n != self.len(x) {
            bail!("cannot view {} of shape {:?} as {shape:?}", self.info(x).name, self.shape(x));
        }
        let name = format!("{}.view", self.info(x).name);
        let v = self.add(name, shape.to_vec(), Role::View(x));
        self.push(Op::View, vec![x], vec![v]);
        Ok(v)
    }

    /// `len` floats of one of the parameter store's flat buffers, starting at `offset`.
    pub fn span(&mut self, buf: StoreBuf, offset: usize, len: usize) -> TensorId {
        self.add(format!("{buf:?}[{offset}..+{len}]"), vec![len], Role::Span(buf, offset))
    }

    /// The tensor that owns `t`'s storage (itself unless `t` is a view).
    pub fn root(&self, mut t: TensorId) -> TensorId {
        while let Role::View(r) = self.tensors[t.0].role {
            t = r;
        }
        t
    }

    /// A caller-owned buffer of `len` 32-bit words, bound by name at plan time.
    pub fn external(&mut self, name: &str, shape: &[usize]) -> TensorId {
        if let Some(&t) = self.by_name.get(name) {
            return t;
        }
        let t = self.add(name.to_string(), shape.to_vec(), Role::External(name.to_string()));
        self.by_name.insert(name.to_string(), t);
        t
    }

    /// A trainable parameter; recording the same name twice returns the same tensor (weight sharing).
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<TensorId> {
        self.persistent(name, shape, init, true)
    }

    /// Persistent non-trainable state such as batchnorm running statistics.
    pub fn state(&mut self, name: &str, shape: &[usize], init: Init) -> Result<TensorId> {
        self.persistent(name, shape, init, false)
    }

    fn persistent(&mut self, name: &str, shape: &[usize], init: Init, trainable: bool) -> Result<TensorId> {
        if let Some(&t) = self.by_name.get(name) {
            if self.shape(t) != shape {
                bail!("parameter {name} recorded with shapes {:?} and {shape:?}", self.shape(t));
            }
            return Ok(t);
        }
        let role = if trainable { Role::Param(name.to_string()) } else { Role::State(name.to_string()) };
        let t = self.add(name.to_string(), shape.to_vec(), role);
        self.by_name.insert(name.to_string(), t);
        self.params.push(ParamSpec { name: name.to_string(), shape: shape.to_vec(), init, trainable });
        Ok(t)
    }

    /// Marks every parameter whose name starts with `prefix` as read-only in this graph.
    pub fn freeze(&mut self, prefix: &str) {
        self.frozen.push(prefix.to_string());
    }

    pub fn is_frozen(&self, name: &str) -> bool {
        self.frozen.iter().any(|p| name.starts_with(p.as_str()))
    }

    pub fn push(&mut self, op: Op, inputs: Vec<TensorId>, outputs: Vec<TensorId>) {
        self.nodes.push(Node { op, inputs, outputs });
    }

    pub fn mark_output(&mut self, t: TensorId) {
        self.outputs.push(t);
    }

    pub fn add_loss(&mut self, name: &str, t: TensorId) {
        self.losses.push((name.to_string(), t));
    }

    pub fn add_metric(&mut self, name: &str, t: TensorId) {
        self.metrics.push((name.to_string(), t));
    }

    /// Losses then metrics: the scalars an executor accumulates and reports, in that order.
    pub fn reported(&self) -> impl Iterator<Item = &(String, TensorId)> {
        self.losses.iter().chain(&self.metrics)
    }
}
