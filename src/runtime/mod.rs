//! Everything that talks to wgpu directly: adapter choice, shader modules and pipelines, buffers,
//! read-back and timing. Nothing here knows about models.

pub mod buffers;
pub mod device;
pub mod kernel_set;
pub mod kernels;
pub mod launch;
pub mod pipelines;
pub mod readback;
pub mod tile;
pub mod timing;

pub use buffers::GpuBuffer;
pub use device::{BackendChoice, Gpu};
pub use kernel_set::{KernelChoice, KernelSet};
pub use kernels::{Family, KernelCall};
pub use tile::Tile;
