//! Turning `KernelCall`s into bound dispatches, and running a list of them.

use anyhow::{anyhow, bail, Result};
use wgpu::util::DeviceExt;

use super::buffers::Operand;
use super::device::Gpu;
use super::kernels::KernelCall;

/// A dispatch with everything created: replaying it allocates nothing.
pub struct Prepared {
    pub pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    pub entry: &'static str,
    pub flops: f64,
    /// Floats in the largest operand it binds: the size of what the dispatch reads or writes, for
    /// the parallelism report (`bench --json`) and its test.
    pub elements: u64,
}

impl Prepared {
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

impl Gpu {
    /// Checks `call` against the adapter's limits and the operands it binds, naming the op and the
    /// limit on failure, so that nothing reaches wgpu validation that would panic or lose the device.
    pub fn check_call(&self, call: &KernelCall, operands: &[Operand<'_>]) -> Result<()> {
        let op = call.entry;
        let max_wg = self.limits.max_compute_workgroups_per_dimension;
        if call.workgroups.iter().any(|&w| w > max_wg) {
            bail!(
                "{op}: dispatch of {:?} workgroups exceeds the adapter's limit of {max_wg} per dimension",
                call.workgroups
            );
        }
        let max_bind = self.limits.max_storage_buffer_binding_size;
        let align = self.limits.min_storage_buffer_offset_alignment as u64;
        for (slot, &i) in call.operands.iter().enumerate() {
            let o = operands.get(i).ok_or_else(|| {
                anyhow!("{op}: binding {} refers to operand {i}, only {} given", slot + 1, operands.len())
            })?;
            if o.bytes > max_bind {
                bail!(
                    "{op}: operand {i} is {} bytes, above the adapter's max_storage_buffer_binding_size of {max_bind} bytes",
                    o.bytes
                );
            }
            if o.offset % align != 0 {
                bail!("{op}: operand {i} starts at byte {}, not a multiple of the adapter's storage offset alignment {align}", o.offset);
            }
            if o.offset + o.bytes > o.buffer.size() {
                bail!("{op}: operand {i} runs past the end of its buffer");
            }
        }
        Ok(())
    }

    /// Compiles (or fetches) the pipeline and creates the uniform block and bind group for `call`.
    pub fn prepare(&self, call: &KernelCall, operands: &[Operand<'_>]) -> Result<Prepared> {
        self.check_call(call, operands)?;
        let kernel = self.kernel(call)?;
        // Padded to at least 64 bytes so a call may omit trailing fields its entry point never reads
        // (a module's entry points share one Params struct, whose full size wgpu checks).
        let mut words = call.params.clone();
        words.resize(words.len().max(16).next_multiple_of(4), 0);
        let uniform = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(call.entry),
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (slot, &i) in call.operands.iter().enumerate() {
            let o = operands[i];
            entries.push(wgpu::BindGroupEntry {
                binding: slot as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: o.buffer,
                    offset: o.offset,
                    size: wgpu::BufferSize::new(o.bytes.max(4)),
                }),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(call.entry),
            layout: &kernel.bind_layout,
            entries: &entries,
        });
        Ok(Prepared {
            pipeline: kernel.pipeline,
            bind_group,
            workgroups: call.workgroups,
            entry: call.entry,
            flops: call.flops,
            elements: call.operands.iter().map(|&i| operands[i].bytes / 4).max().unwrap_or(0),
        })
    }

    /// Prepares `calls`, records them into one compute pass, submits and waits. Validation errors
    /// come back as `Err` with wgpu's message instead of a panic.
    pub fn run(&self, calls: &[KernelCall], operands: &[Operand<'_>]) -> Result<()> {
        let prepared = calls.iter().map(|c| self.prepare(c, operands)).collect::<Result<Vec<_>>>()?;
        self.replay(&prepared)
    }

    /// Records prepared dispatches into one pass, submits once and waits for completion.
    pub fn replay(&self, prepared: &[Prepared]) -> Result<()> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for p in prepared {
                p.encode(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("GPU validation error: {e}");
        }
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        Ok(())
    }
}
