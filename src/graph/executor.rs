//! Replaying a compiled step: one command encoder, one compute pass, one submit.
//!
//! Everything — arena buffers, uniform blocks, bind groups, pipelines — is created in `new`; `step`
//! only records the frozen dispatch list. Losses are summed on the GPU into `loss_accum` and copied to
//! a staging buffer every `log_every` steps, mapped asynchronously so the next step never waits.

use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::builder::{BoundCall, Graph};
use super::params::{ParamStore, ALIGN_FLOATS};
use super::plan::{place, Placement};
use super::tensor::{Role, TensorId};
use crate::runtime::buffers::Operand;
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer};

/// What one step costs in GPU work and host traffic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepStats {
    pub dispatches: usize,
    pub submits: usize,
    pub bytes_uploaded: u64,
    pub bytes_read_back: u64,
}

const UNMAPPED: u8 = 0;
const PENDING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

struct Staging {
    buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
    steps: u64,
}

pub struct Executor {
    pub prepared: Vec<Prepared>,
    pub loss_names: Vec<String>,
    pub arena_bytes: u64,
    arena: Vec<GpuBuffer>,
    /// Where each output tensor lives (arena bank, byte offset, bytes).
    outputs: HashMap<TensorId, (usize, u64, u64)>,
    loss_accum: GpuBuffer,
    staging: Vec<Staging>,
    next_staging: usize,
    steps_since_log: u64,
    reports: Vec<LossReport>,
    pub steps_done: u64,
    pub last_stats: StepStats,
}

/// Loss values averaged over the steps since the previous read.
#[derive(Clone, Debug)]
pub struct LossReport {
    pub values: Vec<f32>,
    pub steps: u64,
}

impl Executor {
    /// The value `report` holds for the loss or metric `name`, as the graph recorded it.
    pub fn reported(&self, report: &LossReport, name: &str) -> Result<f32> {
        match self.loss_names.iter().position(|n| n == name) {
            Some(i) if i < report.values.len() => Ok(report.values[i]),
            _ => bail!("no reported value named {name} (the graph reports {:?})", self.loss_names),
        }
    }

    /// Plans buffers for `steps` (the compiled dispatch list of `graph`), binds every tensor, and
    /// prepares every dispatch. `externals` supplies the caller-owned buffers by name.
    pub fn new(
        gpu: &Gpu,
        graph: &Graph,
        steps: &[BoundCall],
        store: &ParamStore,
        externals: &[(&str, Operand<'_>)],
    ) -> Result<Executor> {
        let steps = &crate::tune::resolve(gpu, graph, steps)?;
        let roots: Vec<_> = (0..graph.tensors.len()).map(|t| graph.root(TensorId(t))).collect();
        let max_bind = gpu.limits.max_storage_buffer_binding_size;
        let align = (gpu.limits.min_storage_buffer_offset_alignment as u64).max(256);
        // Losses are read by the accumulation dispatches appended after the plan, so they live to the end.
        let mut keep = graph.outputs.clone();
        keep.extend(graph.reported().map(|(_, t)| *t));
        let plan: Placement = place(&graph.tensors, &roots, steps, &keep, max_bind, align)?;
        let arena = plan
            .bank_bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| gpu.zeros(&format!("arena{i}"), b))
            .collect::<Result<Vec<_>>>()?;
        let n_losses = graph.reported().count();
        let loss_accum = gpu.zeros("loss_accum", (n_losses.max(1) * ALIGN_FLOATS) as u64 * 4)?;
        let externals: HashMap<&str, Operand<'_>> = externals.iter().copied().collect();

        let mut all_steps = steps.to_vec();
        let mut extra_ops: Vec<Operand<'_>> = Vec::new();
        // Loss accumulation: loss_accum[i] += loss_i, bound as extra operands after the graph tensors.
        for (i, (_, t)) in graph.reported().enumerate() {
            let acc = crate::ops::elementwise::accumulate(1)?;
            let acc_id = TensorId(graph.tensors.len() + extra_ops.len());
            extra_ops.push(loss_accum.range_f32(i * ALIGN_FLOATS, 1));
            all_steps.extend(acc.into_iter().map(|call| BoundCall::new(call, vec![acc_id, *t])));
        }

        let operand = |t: TensorId| -> Result<Operand<'_>> {
            if t.0 >= graph.tensors.len() {
                return Ok(extra_ops[t.0 - graph.tensors.len()]);
            }
            let info = graph.info(t);
            let root = graph.info(roots[t.0]);
            let bytes = info.bytes();
            Ok(match &root.role {
                Role::Param(name) | Role::State(name) => store.operand(name)?,
                Role::ParamGrad(name) => store.grad_operand(name)?,
                Role::Span(buf, offset) => store.span_operand(*buf, *offset, root.len),
                Role::External(name) if name == "counters" => store.counters.whole(),
                Role::External(name) => {
                    *externals.get(name.as_str()).ok_or_else(|| anyhow!("graph needs external buffer '{name}'"))?
                }
                Role::Transient => {
                    let s = plan.slots[t.0].ok_or_else(|| anyhow!("tensor {} was never placed", info.name))?;
                    Operand { buffer: &arena[s.bank].buffer, offset: s.offset, bytes: bytes.max(4) }
                }
                Role::View(_) => unreachable!("roots are never views"),
            })
        };
        let mut prepared = Vec::with_capacity(all_steps.len());
        for s in &all_steps {
            let ops = s.args.iter().map(|&a| operand(a)).collect::<Result<Vec<_>>>()?;
            prepared.push(gpu.prepare(&s.call, &ops).map_err(|e| anyhow!("planning {}: {e:#}", s.call.entry))?);
        }
        let staging = (0..2)
            .map(|i| Staging {
                buffer: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("loss-staging{i}")),
                    size: loss_accum.bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(AtomicU8::new(UNMAPPED)),
                steps: 0,
            })
            .collect();
        let mut outputs = HashMap::new();
        for &t in &graph.outputs {
            let s =
                plan.slots[t.0].ok_or_else(|| anyhow!("output {} is not a transient tensor", graph.info(t).name))?;
            outputs.insert(t, (s.bank, s.offset, graph.info(t).bytes()));
        }
        Ok(Executor {
            outputs,
            prepared,
            loss_names: graph.reported().map(|(n, _)| n.clone()).collect(),
            arena_bytes: plan.bank_bytes.iter().sum(),
            arena,
            loss_accum,
            staging,
            next_staging: 0,
            steps_since_log: 0,
            reports: Vec::new(),
            steps_done: 0,
            last_stats: StepStats::default(),
        })
    }

    /// Records and submits one step. With `log`, the summed losses since the last log are copied to
    /// a staging buffer and mapped asynchronously; collect them with `poll_losses`.
    pub fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        Executor::step_chain(gpu, &mut [self], log)
    }

    /// One step of several executors in order (a GAN's discriminator then generator update) in one
    /// command encoder, one compute pass and one submit.
    pub fn step_chain(gpu: &Gpu, execs: &mut [&mut Executor], log: bool) -> Result<()> {
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for e in execs.iter() {
                for p in &e.prepared {
                    p.encode(&mut pass);
                }
            }
        }
        let mut mapping = Vec::new();
        for e in execs.iter_mut() {
            e.steps_since_log += 1;
            if log {
                let k = e.next_staging;
                if e.staging[k].state.load(Ordering::Acquire) != UNMAPPED {
                    // Logging faster than the GPU finishes: wait for the older read instead of losing it.
                    e.collect(gpu, true)?;
                }
                enc.copy_buffer_to_buffer(&e.loss_accum.buffer, 0, &e.staging[k].buffer, 0, e.loss_accum.bytes);
                enc.clear_buffer(&e.loss_accum.buffer, 0, None);
                e.staging[k].steps = e.steps_since_log;
                e.steps_since_log = 0;
                e.next_staging = (k + 1) % e.staging.len();
                mapping.push(Some(k));
            } else {
                mapping.push(None);
            }
        }
        gpu.queue.submit([enc.finish()]);
        gpu.check()?;
        for (e, m) in execs.iter_mut().zip(mapping) {
            let mut read_back = 0;
            if let Some(k) = m {
                let st = e.staging[k].state.clone();
                st.store(PENDING, Ordering::Release);
                e.staging[k].buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                    st.store(if r.is_ok() { READY } else { FAILED }, Ordering::Release);
                });
                read_back = e.loss_accum.bytes;
            }
            e.steps_done += 1;
            e.last_stats =
                StepStats { dispatches: e.prepared.len(), submits: 1, bytes_uploaded: 0, bytes_read_back: read_back };
        }
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        Ok(())
    }

    /// Loss reports whose mapping has completed, oldest first; `wait` blocks until all are in.
    pub fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<LossReport>> {
        self.collect(gpu, wait)?;
        Ok(std::mem::take(&mut self.reports))
    }

    fn collect(&mut self, gpu: &Gpu, wait: bool) -> Result<()> {
        let poll = if wait { wgpu::PollType::wait_indefinitely() } else { wgpu::PollType::Poll };
        gpu.device.poll(poll).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        gpu.check()?;
        // Another thread polling the same device may have taken our map callback and not run it yet:
        // the queue is idle but the mapping is still pending for a moment.
        while wait && self.staging.iter().any(|s| s.state.load(Ordering::Acquire) == PENDING) {
            std::thread::yield_now();
            gpu.device.poll(wgpu::PollType::Poll).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
            gpu.check()?;
        }
        let n = self.loss_names.len();
        for i in 0..self.staging.len() {
            let k = (self.next_staging + i) % self.staging.len();
            let s = &self.staging[k];
            match s.state.load(Ordering::Acquire) {
                READY => {
                    let data = s.buffer.slice(..).get_mapped_range().map_err(|e| anyhow!("reading losses: {e}"))?;
                    let words: &[f32] = bytemuck::cast_slice(&data);
                    let values = (0..n).map(|j| words[j * ALIGN_FLOATS] / s.steps.max(1) as f32).collect();
                    drop(data);
                    s.buffer.unmap();
                    s.state.store(UNMAPPED, Ordering::Release);
                    self.reports.push(LossReport { values, steps: s.steps });
                }
                FAILED => {
                    gpu.check()?;
                    bail!("mapping the loss staging buffer failed (device lost?)")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Blocks until every submitted step has finished.
    pub fn finish(&self, gpu: &Gpu) -> Result<()> {
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        Ok(())
    }

    /// GPU time of each dispatch (timestamp queries), paired with its entry point name.
    pub fn kernel_times(&self, gpu: &Gpu) -> Result<Option<Vec<(&'static str, f64)>>> {
        Ok(gpu.kernel_times(&self.prepared)?.map(|t| self.prepared.iter().map(|p| p.entry).zip(t).collect()))
    }

    /// Reads an output tensor (one marked with `Graph::mark_output`) after the last step.
    pub fn read(&self, gpu: &Gpu, t: TensorId) -> Result<Vec<f32>> {
        let &(bank, offset, bytes) =
            self.outputs.get(&t).ok_or_else(|| anyhow!("tensor {t:?} is not a graph output"))?;
        gpu.read_f32(Operand { buffer: &self.arena[bank].buffer, offset, bytes })
    }

    pub fn arena_buffers(&self) -> usize {
        self.arena.len()
    }
}
