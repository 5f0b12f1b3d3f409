//! The static graph: record a model once, derive its backward pass, plan its buffers, and replay it
//! as a fixed dispatch list.

pub mod autodiff;
pub mod builder;
pub mod executor;
pub mod fuse;
pub mod op;
pub mod params;
pub mod plan;
pub mod tensor;

pub use builder::{BoundCall, Graph};
pub use executor::{Executor, LossReport, StepStats};
pub use op::Op;
pub use params::ParamStore;
pub use tensor::{Init, ParamSpec, Role, StoreBuf, TensorId};

use anyhow::Result;

use crate::ops::adam::AdamConfig;

/// What a compiled plan does besides the forward pass.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// Forward only (evaluation, sampling).
    Forward,
    /// Forward, backward, the Adam update of the graph's unfrozen parameters, and optionally the
    /// step-counter increment that ends a training iteration.
    Train { adam: &'a AdamConfig, end_of_step: bool },
}

/// Compiles `graph` into its dispatch list for `mode`, its activations fused into the products
/// before them where the kernel set allows (`fuse::activations`).
pub fn compile(graph: &mut Graph, store: &ParamStore, mode: Mode<'_>) -> Result<Vec<BoundCall>> {
    fuse::activations(graph);
    let mut steps = autodiff::forward(graph)?;
    if let Mode::Train { adam, end_of_step } = mode {
        autodiff::backward(graph, &mut steps)?;
        autodiff::optimizer(graph, store, adam, &mut steps)?;
        if end_of_step {
            autodiff::increment_step(graph, &mut steps);
        }
    }
    Ok(steps)
}
