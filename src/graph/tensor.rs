//! The graph's vocabulary: tensor identities, shapes and where each tensor lives, the parameter
//! store's buffers and how parameters start. Every other graph file imports these; this one imports none.

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
    Span(StoreBuf, usize),
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

/// Which buffer of the store a `Role::Span` refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBuf {
    Params,
    Grads,
    AdamM,
    AdamV,
}

/// How a parameter or state tensor starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Const(f32),
    Uniform(f32),
    Normal { mean: f32, std: f32 },
}

#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Trainable parameters get gradients and Adam state; running statistics do not.
    pub trainable: bool,
}
