//! GPU buffers and the slices of them that kernels bind.

use anyhow::{bail, Result};
use wgpu::util::DeviceExt;

use super::device::Gpu;

/// A storage buffer with its size in bytes; everything the kernels touch lives in one of these.
pub struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    pub bytes: u64,
}

/// A byte range of a storage buffer, bound at one kernel binding.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub bytes: u64,
}

impl GpuBuffer {
    pub fn whole(&self) -> Operand<'_> {
        Operand { buffer: &self.buffer, offset: 0, bytes: self.bytes }
    }

    /// The f32 elements `[start, start + len)`; `start * 4` must meet the adapter's offset alignment.
    pub fn range_f32(&self, start: usize, len: usize) -> Operand<'_> {
        Operand { buffer: &self.buffer, offset: start as u64 * 4, bytes: len as u64 * 4 }
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        if bytes > self.limits.max_buffer_size {
            bail!("{label}: {bytes} bytes exceeds the adapter's max_buffer_size of {}", self.limits.max_buffer_size);
        }
        Ok(())
    }

    /// A zero-filled storage buffer of `bytes` (rounded up to 4; never empty, which wgpu refuses).
    pub fn zeros(&self, label: &str, bytes: u64) -> Result<GpuBuffer> {
        let bytes = bytes.max(4).next_multiple_of(4);
        self.check_size(label, bytes)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuBuffer { buffer, bytes })
    }

    /// A storage buffer initialised from plain data (f32, u32, packed u8 ...).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<GpuBuffer> {
        let mut bytes: Vec<u8> = bytemuck::cast_slice(data).to_vec();
        let len = bytes.len().max(4).next_multiple_of(4);
        bytes.resize(len, 0);
        self.check_size(label, len as u64)?;
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &bytes,
            usage: STORAGE,
        });
        Ok(GpuBuffer { buffer, bytes: len as u64 })
    }

    pub fn upload_f32(&self, label: &str, data: &[f32]) -> Result<GpuBuffer> {
        self.upload(label, data)
    }

    /// Overwrites the start of `dst` with `data` (queued; visible to the next submit).
    pub fn write<T: bytemuck::Pod>(&self, dst: &GpuBuffer, data: &[T]) {
        self.queue.write_buffer(&dst.buffer, 0, bytemuck::cast_slice(data));
    }
}
