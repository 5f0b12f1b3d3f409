//! The parameter store shared by every graph of a model: one flat buffer each for parameters,
//! their gradients, Adam's first and second moments, and non-trainable state (running statistics).

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;

use super::tensor::{Init, ParamSpec, StoreBuf};
use crate::runtime::buffers::Operand;
use crate::runtime::{Gpu, GpuBuffer};

#[derive(Clone, Debug)]
pub struct Slot {
    pub offset: usize,
    pub len: usize,
    pub shape: Vec<usize>,
    pub trainable: bool,
}

pub struct ParamStore {
    pub slots: HashMap<String, Slot>,
    /// Declaration order, which is also checkpoint order.
    pub order: Vec<String>,
    pub params: GpuBuffer,
    pub grads: GpuBuffer,
    pub adam_m: GpuBuffer,
    pub adam_v: GpuBuffer,
    pub state: GpuBuffer,
    /// u32 step counters read by the RNG, the batch gather and Adam; slot 0 is the optimiser step.
    pub counters: GpuBuffer,
    pub param_len: usize,
    pub state_len: usize,
}

/// Offsets are rounded to this many floats so every tensor can be bound on its own (256 bytes covers
/// every adapter's storage offset alignment).
pub const ALIGN_FLOATS: usize = 64;

/// Number of u32 step counters in the store.
pub const COUNTER_SLOTS: usize = 16;

fn init_values(spec: &ParamSpec, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let n: usize = spec.shape.iter().product();
    match spec.init {
        Init::Const(v) => vec![v; n],
        Init::Uniform(b) => (0..n).map(|_| rng.random_range(-b..=b)).collect(),
        Init::Normal { mean, std } => {
            let d = Normal::new(mean, std).expect("finite std");
            (0..n).map(|_| d.sample(rng)).collect()
        }
    }
}

impl ParamStore {
    /// Lays out and initialises every parameter of `specs` (in order; duplicates by name are shared),
    /// drawing initial values from a generator seeded with `seed`.
    pub fn new(gpu: &Gpu, specs: &[&ParamSpec], seed: u64) -> Result<ParamStore> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut slots, mut order) = (HashMap::new(), Vec::new());
        let (mut p_host, mut s_host) = (Vec::<f32>::new(), Vec::<f32>::new());
        for spec in specs {
            if let Some(s) = slots.get(&spec.name) {
                let s: &Slot = s;
                if s.shape != spec.shape {
                    bail!("parameter {} declared with shapes {:?} and {:?}", spec.name, s.shape, spec.shape);
                }
                continue;
            }
            let values = init_values(spec, &mut rng);
            let host = if spec.trainable { &mut p_host } else { &mut s_host };
            let offset = host.len().next_multiple_of(ALIGN_FLOATS);
            host.resize(offset, 0.0);
            host.extend_from_slice(&values);
            let slot = Slot { offset, len: values.len(), shape: spec.shape.clone(), trainable: spec.trainable };
            slots.insert(spec.name.clone(), slot);
            order.push(spec.name.clone());
        }
        let bytes = |n: usize| n.max(1) as u64 * 4;
        let max = gpu.limits.max_storage_buffer_binding_size;
        if bytes(p_host.len()) > max {
            bail!(
                "the model has {} parameters ({} MiB), above the adapter's max_storage_buffer_binding_size of {} MiB",
                p_host.len(),
                bytes(p_host.len()) >> 20,
                max >> 20
            );
        }
        Ok(ParamStore {
            params: gpu.upload_f32("params", &p_host)?,
            grads: gpu.zeros("grads", bytes(p_host.len()))?,
            adam_m: gpu.zeros("adam_m", bytes(p_host.len()))?,
            adam_v: gpu.zeros("adam_v", bytes(p_host.len()))?,
            state: gpu.upload_f32("state", &s_host)?,
            counters: gpu.zeros("counters", COUNTER_SLOTS as u64 * 4)?,
            param_len: p_host.len(),
            state_len: s_host.len(),
            slots,
            order,
        })
    }

    pub fn slot(&self, name: &str) -> Result<&Slot> {
        self.slots.get(name).with_context(|| format!("no parameter named {name} in the model"))
    }

    fn buffer_of(&self, slot: &Slot) -> &GpuBuffer {
        if slot.trainable {
            &self.params
        } else {
            &self.state
        }
    }

    /// The binding of a parameter or state tensor.
    pub fn operand(&self, name: &str) -> Result<Operand<'_>> {
        let s = self.slot(name)?;
        Ok(self.buffer_of(s).range_f32(s.offset, s.len))
    }

    pub fn grad_operand(&self, name: &str) -> Result<Operand<'_>> {
        let s = self.slot(name)?;
        Ok(self.grads.range_f32(s.offset, s.len))
    }

    /// The contiguous span (offset, len) of the trainable parameters `names`, for one Adam dispatch
    /// per parameter group; refused when another trainable parameter lies inside it.
    pub fn span(&self, names: &[String]) -> Result<(usize, usize)> {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for n in names {
            let s = self.slot(n)?;
            lo = lo.min(s.offset);
            hi = hi.max(s.offset + s.len);
        }
        for (name, s) in &self.slots {
            if s.trainable && s.offset >= lo && s.offset < hi && !names.contains(name) {
                bail!("optimizer: parameter {name} lies inside the span of this graph's trained parameters but is not trained by it; declare each group's parameters contiguously");
            }
        }
        Ok((lo, hi - lo))
    }

    pub fn span_operand(&self, buf: StoreBuf, offset: usize, len: usize) -> Operand<'_> {
        let b = match buf {
            StoreBuf::Params => &self.params,
            StoreBuf::Grads => &self.grads,
            StoreBuf::AdamM => &self.adam_m,
            StoreBuf::AdamV => &self.adam_v,
        };
        b.range_f32(offset, len)
    }

    /// Sets step counter `slot` (e.g. rewinds an evaluation pass's batch index).
    pub fn set_counter(&self, gpu: &Gpu, slot: usize, value: u32) {
        gpu.queue.write_buffer(&self.counters.buffer, slot as u64 * 4, bytemuck::bytes_of(&value));
    }

    pub fn read(&self, gpu: &Gpu, name: &str) -> Result<Vec<f32>> {
        gpu.read_f32(self.operand(name)?)
    }

    pub fn read_grad(&self, gpu: &Gpu, name: &str) -> Result<Vec<f32>> {
        gpu.read_f32(self.grad_operand(name)?)
    }

    pub fn write(&self, gpu: &Gpu, name: &str, values: &[f32]) -> Result<()> {
        let s = self.slot(name)?;
        if values.len() != s.len {
            bail!("parameter {name}: {} values given, {} expected", values.len(), s.len);
        }
        gpu.queue.write_buffer(&self.buffer_of(s).buffer, s.offset as u64 * 4, bytemuck::cast_slice(values));
        Ok(())
    }
}
