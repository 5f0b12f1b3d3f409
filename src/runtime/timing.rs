//! Wall-clock and GPU-timestamp timing of prepared dispatches, for benchmarks and `bench`.

use anyhow::{anyhow, Result};
use std::time::Instant;

use super::device::Gpu;
use super::launch::Prepared;

impl Gpu {
    /// Seconds per replay of `prepared`: one warm-up replay, then `reps` replays recorded into one
    /// command buffer and submitted once, timed on the host from submit to completion.
    pub fn time_replay(&self, prepared: &[Prepared], reps: usize) -> Result<f64> {
        self.replay(prepared)?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                for p in prepared {
                    p.encode(&mut pass);
                }
            }
        }
        let t = Instant::now();
        self.queue.submit([enc.finish()]);
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        Ok(t.elapsed().as_secs_f64() / reps.max(1) as f64)
    }

    /// GPU time of each dispatch in seconds, from timestamp queries around one compute pass per
    /// dispatch; `None` when the adapter has no timestamp queries (e.g. the GL backend).
    pub fn kernel_times<P: std::borrow::Borrow<Prepared>>(&self, prepared: &[P]) -> Result<Option<Vec<f64>>> {
        if !self.has_timestamps() || prepared.is_empty() {
            return Ok(None);
        }
        let n = prepared.len() as u32 * 2;
        let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel-times"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel-times-resolve"),
            size: n as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        for (i, p) in prepared.iter().enumerate() {
            let p = p.borrow();
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(p.entry),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            p.encode(&mut pass);
        }
        enc.resolve_query_set(&queries, 0..n, &resolve, 0);
        self.queue.submit([enc.finish()]);
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.read_bytes(super::buffers::Operand {
            buffer: &resolve,
            offset: 0,
            bytes: n as u64 * 8,
        })?);
        let period = self.queue.get_timestamp_period() as f64 * 1e-9;
        Ok(Some(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect()))
    }
}
