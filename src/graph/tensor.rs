//! Tensor identities, shapes and where each tensor lives.

/// Index of a tensor in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// Where a tensor's storage comes from, which decides its buffer and lifetime.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// A trainable parameter, stored in the shared parameter store under its state_dict name.
    Param(String),
    /// The gradient of a parameter, kept for the optimiser.
    ParamGrad(String),
    /// Persistent non-trainable state in the parameter store (batchnorm running statistics).
    State(String),
    /// A buffer owned by the caller (dataset, per-epoch order, step counters, ...).
    External(String),
    /// A range of one of the parameter store's flat buffers (Adam's view of a parameter group).
    Span(super::params::StoreBuf, usize),
    /// Another tensor's storage under a new shape (flatten / unflatten).
    View(TensorId),
    /// An intermediate value of one step: placed by liveness in the activation arena.
    Transient,
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub role: Role,
    /// Element count; for u32 externals (packed images) this is the word count.
    pub len: usize,
}

impl TensorInfo {
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }
}
