//! What every model's training shares: the parameter store, the epoch's sample order on the GPU, the
//! optimiser steps done, and the `start_epoch`/`state`/`load` of [`crate::train::model::TrainableModel`]
//! written once on top of them.

use anyhow::Result;

use crate::graph::ParamStore;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{Checkpoint, TensorData};

pub struct Core {
    pub store: ParamStore,
    /// The training split's sample indices for this epoch (`steps_per_epoch · batch_size` of them).
    pub train_order: GpuBuffer,
    pub steps_per_epoch: usize,
    /// Optimiser steps completed (restored by `load`).
    pub global_step: u64,
    n_train: usize,
    batch_size: usize,
    seed: u64,
}

impl Core {
    /// `steps_per_epoch` batches of `batch_size` from a training split of `n_train` images, shuffled
    /// by `seed`.
    pub fn new(
        gpu: &Gpu,
        store: ParamStore,
        (n_train, steps_per_epoch, batch_size): (usize, usize, usize),
        seed: u64,
    ) -> Result<Core> {
        let train_order = gpu.zeros("train-order", (steps_per_epoch * batch_size) as u64 * 4)?;
        Ok(Core { store, train_order, steps_per_epoch, global_step: 0, n_train, batch_size, seed })
    }

    /// Shuffles and uploads the epoch's sample order (the only per-epoch upload).
    pub fn start_epoch(&self, gpu: &Gpu, epoch: usize) -> Result<()> {
        let count = self.steps_per_epoch * self.batch_size;
        gpu.write(&self.train_order, &super::epoch_order(self.seed, epoch, self.n_train, count));
        Ok(())
    }

    /// The checkpoint tensors; `batches(layer)` is how many batches batchnorm `layer` has normalised in
    /// `global_step` steps (see [`super::state::save`]).
    pub fn state(&self, gpu: &Gpu, batches: &dyn Fn(&str) -> u64) -> Result<Vec<(String, TensorData)>> {
        super::state::save(gpu, &self.store, self.global_step, batches)
    }

    /// Restores what `state` saved, step included.
    pub fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.global_step = super::state::load(gpu, &self.store, ckpt)?;
        Ok(())
    }
}
