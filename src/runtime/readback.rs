//! Copying GPU buffers back to the host through a staging buffer.

use anyhow::{anyhow, Result};

use super::buffers::Operand;
use super::device::Gpu;

impl Gpu {
    /// Blocking read of `src` into host memory. Meant for tests, evaluation and logging, never the
    /// inner training loop.
    pub fn read_bytes(&self, src: Operand<'_>) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: src.bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src.buffer, src.offset, &staging, 0, src.bytes);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        rx.recv()
            .map_err(|_| anyhow!("buffer map callback never ran"))?
            .map_err(|e| anyhow!("mapping a read-back buffer: {e}"))?;
        let data = slice.get_mapped_range().map_err(|e| anyhow!("reading a mapped buffer: {e}"))?.to_vec();
        staging.unmap();
        Ok(data)
    }

    pub fn read_f32(&self, src: Operand<'_>) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(src)?))
    }

    pub fn read_u32(&self, src: Operand<'_>) -> Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(src)?))
    }
}
