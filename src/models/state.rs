//! Parameter store ⇄ checkpoint tensors: PyTorch state_dict names for the model, `optim.` for Adam's
//! moments, the step and the GPU step counters (which key the RNG and the batch order).

use anyhow::{bail, Result};

use crate::graph::params::COUNTER_SLOTS;
use crate::graph::ParamStore;
use crate::runtime::Gpu;
use crate::train::checkpoint::{Checkpoint, TensorData};

fn f32_tensor(shape: &[usize], data: &[f32]) -> TensorData {
    TensorData::F32 { shape: shape.to_vec(), data: data.to_vec() }
}

/// `batches(layer)` is how many batches the batchnorm `layer` has normalised in `step` steps (PyTorch's
/// num_batches_tracked): `step` for the VAE, more for a discriminator that sees several batches a step.
pub fn save(
    gpu: &Gpu,
    store: &ParamStore,
    step: u64,
    batches: &dyn Fn(&str) -> u64,
) -> Result<Vec<(String, TensorData)>> {
    let params = gpu.read_f32(store.params.whole())?;
    let m = gpu.read_f32(store.adam_m.whole())?;
    let v = gpu.read_f32(store.adam_v.whole())?;
    let state = gpu.read_f32(store.state.whole())?;
    let counters = gpu.read_u32(store.counters.whole())?;
    let mut out = Vec::new();
    let mut optim = Vec::new();
    for name in &store.order {
        let s = store.slot(name)?;
        let r = s.offset..s.offset + s.len;
        if s.trainable {
            out.push((name.clone(), f32_tensor(&s.shape, &params[r.clone()])));
            optim.push((format!("optim.exp_avg.{name}"), f32_tensor(&s.shape, &m[r.clone()])));
            optim.push((format!("optim.exp_avg_sq.{name}"), f32_tensor(&s.shape, &v[r])));
        } else {
            out.push((name.clone(), f32_tensor(&s.shape, &state[r])));
            if let Some(prefix) = name.strip_suffix(".running_var") {
                let nbt = TensorData::I64 { shape: vec![], data: vec![batches(prefix) as i64] };
                out.push((format!("{prefix}.num_batches_tracked"), nbt));
            }
        }
    }
    out.extend(optim);
    out.push(("optim.step".into(), TensorData::I64 { shape: vec![], data: vec![step as i64] }));
    let counters = counters.iter().map(|&c| c as i64).collect();
    out.push(("optim.counters".into(), TensorData::I64 { shape: vec![COUNTER_SLOTS], data: counters }));
    Ok(out)
}

/// Restores every tensor `save` wrote; returns the step.
pub fn load(gpu: &Gpu, store: &ParamStore, ckpt: &Checkpoint) -> Result<u64> {
    let mut params = vec![0f32; store.param_len];
    let mut m = vec![0f32; store.param_len];
    let mut v = vec![0f32; store.param_len];
    let mut state = vec![0f32; store.state_len];
    for name in &store.order {
        let s = store.slot(name)?;
        let r = s.offset..s.offset + s.len;
        if s.trainable {
            params[r.clone()].copy_from_slice(ckpt.get_f32(name, &s.shape)?);
            m[r.clone()].copy_from_slice(ckpt.get_f32(&format!("optim.exp_avg.{name}"), &s.shape)?);
            v[r].copy_from_slice(ckpt.get_f32(&format!("optim.exp_avg_sq.{name}"), &s.shape)?);
        } else {
            state[r].copy_from_slice(ckpt.get_f32(name, &s.shape)?);
        }
    }
    let step = ckpt.get_i64("optim.step", &[])?[0];
    let counters = ckpt.get_i64("optim.counters", &[COUNTER_SLOTS])?;
    if step < 0 || counters.iter().any(|&c| !(0..=u32::MAX as i64).contains(&c)) {
        bail!("{}: optim.step or optim.counters out of range", ckpt.path().display());
    }
    let counters: Vec<u32> = counters.iter().map(|&c| c as u32).collect();
    gpu.write(&store.params, &params);
    gpu.write(&store.adam_m, &m);
    gpu.write(&store.adam_v, &v);
    gpu.write(&store.state, &state);
    gpu.write(&store.counters, &counters);
    Ok(step as u64)
}

/// Restores only the model tensors (weights and running statistics), e.g. a shipped classifier.
pub fn load_weights(gpu: &Gpu, store: &ParamStore, ckpt: &Checkpoint) -> Result<()> {
    let mut params = vec![0f32; store.param_len];
    let mut state = vec![0f32; store.state_len];
    for name in &store.order {
        let s = store.slot(name)?;
        let dst = if s.trainable { &mut params } else { &mut state };
        dst[s.offset..s.offset + s.len].copy_from_slice(ckpt.get_f32(name, &s.shape)?);
    }
    gpu.write(&store.params, &params);
    gpu.write(&store.state, &state);
    Ok(())
}
