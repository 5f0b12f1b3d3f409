//! Opening the GPU without Mesa's headless noise.
//!
//! On Linux the Vulkan loader runs Mesa's device-select layer (an implicit layer). When the instance
//! enables `VK_KHR_wayland_surface`, as wgpu's does, the layer asks the Wayland compositor which GPU is
//! the default on every `vkEnumeratePhysicalDevices`; without `XDG_RUNTIME_DIR` libwayland-client then
//! prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." (twice: wgpu enumerates
//! twice). No compositor can be reached in that case anyway, so while the adapters are probed
//! `XDG_RUNTIME_DIR` names an empty private directory: the layer finds no socket, stays quiet and
//! otherwise chooses as before. The directory is removed once the device is open; the variable stays
//! (naming no directory, which keeps later probes quiet too), since changing the environment after the
//! driver's threads have started would race with them.

use std::path::Path;

use anyhow::Result;

use gputrain::runtime::{BackendChoice, Gpu, KernelChoice};

/// [`Gpu::open`], quiet on a headless machine. Called from the CLI's main thread before any other
/// thread exists, so setting the environment is safe here.
pub fn open_gpu(backend: BackendChoice, kernels: KernelChoice) -> Result<Gpu> {
    let absolute = |name: &str| std::env::var_os(name).is_some_and(|d| Path::new(&d).is_absolute());
    // With either, libwayland tries a real connection and its messages are worth reading.
    if absolute("XDG_RUNTIME_DIR") || absolute("WAYLAND_DISPLAY") {
        return Gpu::open(backend, kernels);
    }
    let dir = std::env::temp_dir().join(format!("gputrain-runtime-{}", std::process::id()));
    if private_dir(&dir).is_err() {
        return Gpu::open(backend, kernels);
    }
    std::env::set_var("XDG_RUNTIME_DIR", &dir);
    let gpu = Gpu::open(backend, kernels);
    // Empty, so removal fails only if something else removed it first.
    std::fs::remove_dir(&dir).ok();
    gpu
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn private_dir(_dir: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("only needed where Mesa's Vulkan layers run"))
}
