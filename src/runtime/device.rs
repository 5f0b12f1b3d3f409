//! Adapter choice and device creation.

use anyhow::{anyhow, bail, Context, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use super::kernel_set::{KernelChoice, KernelSet};
use super::kernels::KernelCall;
use super::pipelines::{Kernel, KernelCache};

/// Which wgpu backend to use; `Auto` lets wgpu try all of them and we pick the best adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    #[default]
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
}

impl FromStr for BackendChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Self::Auto,
            "vulkan" | "vk" => Self::Vulkan,
            "gl" | "gles" | "opengl" => Self::Gl,
            "metal" | "mtl" => Self::Metal,
            "dx12" | "d3d12" => Self::Dx12,
            other => bail!("unknown backend '{other}': expected auto, vulkan, gl, metal or dx12"),
        })
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Auto => "auto",
            Self::Vulkan => "vulkan",
            Self::Gl => "gl",
            Self::Metal => "metal",
            Self::Dx12 => "dx12",
        };
        f.write_str(s)
    }
}

impl BackendChoice {
    /// The `--backend` flag wins; otherwise `WGPU_BACKEND`; otherwise auto.
    pub fn resolve(flag: Option<BackendChoice>) -> Result<BackendChoice> {
        if let Some(b) = flag {
            return Ok(b);
        }
        match std::env::var("WGPU_BACKEND") {
            Ok(v) => v.parse().context("environment variable WGPU_BACKEND"),
            Err(_) => Ok(Self::Auto),
        }
    }

    fn backends(self) -> wgpu::Backends {
        match self {
            Self::Auto => wgpu::Backends::all(),
            Self::Vulkan => wgpu::Backends::VULKAN,
            Self::Gl => wgpu::Backends::GL,
            Self::Metal => wgpu::Backends::METAL,
            Self::Dx12 => wgpu::Backends::DX12,
        }
    }
}

/// The device every op runs on, with the adapter facts the rest of the program needs.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The matmul and convolution kernels models on this device are built from.
    pub kernel_set: KernelSet,
    /// Chooses among candidate kernel configurations per shape class and caches the winners.
    pub tuner: crate::tune::Tuner,
    /// The cooperative-matrix (tensor core) configurations the adapter offers; empty without
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX`. Reported by `info`; no kernel uses them yet.
    pub cooperative_matrices: Vec<wgpu::CooperativeMatrixProperties>,
    pub(crate) kernels: Mutex<KernelCache>,
    /// The first error wgpu reported outside an error scope, or the reason the device was lost. wgpu's
    /// default is to panic; recording it lets a run stop with a message and its last checkpoint intact.
    fault: Arc<Mutex<Option<String>>>,
}

fn preference(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_preference(b: wgpu::Backend) -> u8 {
    // Vulkan/Metal/DX12 expose timestamps and larger binding counts than GL.
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

impl Gpu {
    /// The kernels graphs on this device are built from: its set, with candidates for the autotuner
    /// unless tuning is off.
    pub fn kernels(&self) -> crate::ops::passes::Kernels {
        let tune = self.tuner.mode() != crate::tune::TuneMode::Off;
        crate::ops::passes::Kernels { set: self.kernel_set, tune }
    }
}

impl Gpu {
    /// Picks the best adapter for `choice` (a real GPU over the software adapter) and opens a device
    /// with the adapter's own limits and the optional features we can use.
    /// The kernel set is `GPUTRAIN_KERNELS`'s, else the adapter's default.
    pub fn new(choice: BackendChoice) -> Result<Gpu> {
        Self::open(choice, KernelChoice::resolve(None)?)
    }

    /// As `new`, with the kernel set chosen by `kernels`.
    pub fn open(choice: BackendChoice, kernels: KernelChoice) -> Result<Gpu> {
        pollster::block_on(Self::new_async(choice, kernels))
    }

    async fn new_async(choice: BackendChoice, kernels: KernelChoice) -> Result<Gpu> {
        // Auto tries the native APIs first and GL only when they offer nothing: probing EGL without a
        // display prints errors and GL lacks timestamps.
        let tries = match choice {
            BackendChoice::Auto => vec![wgpu::Backends::PRIMARY, wgpu::Backends::GL],
            _ => vec![choice.backends()],
        };
        let mut adapters = Vec::new();
        for backends in tries {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
            desc.backends = backends;
            adapters = wgpu::Instance::new(desc).enumerate_adapters(backends).await;
            if !adapters.is_empty() {
                break;
            }
        }
        if adapters.is_empty() {
            bail!(
                "no GPU adapter found for backend '{choice}'. On Linux without a GPU install the software \
                 adapter: apt-get install mesa-vulkan-drivers libvulkan1"
            );
        }
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (preference(i.device_type), backend_preference(i.backend))
        });
        let adapter = adapters.remove(0);
        let info = adapter.get_info();
        let limits = adapter.limits();
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let cooperative_matrices = if adapter.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            adapter.cooperative_matrix_properties()
        } else {
            Vec::new()
        };
        let kernel_set = kernels.pick(&info, features)?;
        let tuner = crate::tune::Tuner::for_adapter(&info, crate::tune::TuneMode::resolve(None, info.device_type)?);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gputrain"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| anyhow!("could not open a device on adapter '{}': {e}", info.name))?;
        let fault: Arc<Mutex<Option<String>>> = Arc::default();
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            f.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| format!("GPU error: {e}"));
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            f.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| format!("GPU device lost ({reason:?}): {msg}"));
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            kernel_set,
            tuner,
            cooperative_matrices,
            kernels: Mutex::new(KernelCache::default()),
            fault,
        })
    }

    /// The pipeline for `call`, compiled on first use and cached on this device.
    pub fn kernel(&self, call: &KernelCall) -> Result<Kernel> {
        let storage = call.operands.len();
        if storage as u32 > self.limits.max_storage_buffers_per_shader_stage.min(8) {
            bail!("{}: {storage} storage buffers, more than the 8 per stage this project allows", call.entry);
        }
        let mut cache = self.kernels.lock().map_err(|_| anyhow!("kernel cache poisoned"))?;
        cache.kernel(&self.device, call)
    }

    /// Fails with the first GPU error or device loss reported so far.
    pub fn check(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(msg) => bail!("{msg}"),
            None => Ok(()),
        }
    }

    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// One line naming the adapter, for logs and config files.
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }

    /// The adapter report printed by `info`.
    pub fn report(&self) -> String {
        let l = &self.limits;
        let f = |feat: wgpu::Features| if self.features.contains(feat) { "yes" } else { "no" };
        let mut s = String::new();
        use std::fmt::Write;
        let _ = writeln!(s, "adapter:        {}", self.info.name);
        let _ = writeln!(s, "backend:        {:?}", self.info.backend);
        let _ = writeln!(s, "device type:    {:?}", self.info.device_type);
        let _ = writeln!(s, "driver:         {} {}", self.info.driver, self.info.driver_info);
        let _ = writeln!(s, "subgroup sizes: {}-{}", self.info.subgroup_min_size, self.info.subgroup_max_size);
        let _ = writeln!(s, "kernel set:     {}", self.kernel_set);
        let _ = writeln!(s, "limits:");
        let _ = writeln!(s, "  max_storage_buffer_binding_size   {} MiB", l.max_storage_buffer_binding_size >> 20);
        let _ = writeln!(s, "  max_buffer_size                   {} MiB", l.max_buffer_size >> 20);
        let _ = writeln!(s, "  max_storage_buffers_per_stage     {}", l.max_storage_buffers_per_shader_stage);
        let _ = writeln!(s, "  max_compute_workgroups_per_dim    {}", l.max_compute_workgroups_per_dimension);
        let _ = writeln!(s, "  max_compute_invocations_per_wg    {}", l.max_compute_invocations_per_workgroup);
        let _ = writeln!(s, "  max_compute_workgroup_storage     {} KiB", l.max_compute_workgroup_storage_size >> 10);
        let _ = writeln!(s, "  min_storage_buffer_offset_align   {}", l.min_storage_buffer_offset_alignment);
        let _ = writeln!(s, "features:");
        let _ = writeln!(s, "  timestamp queries  {}", f(wgpu::Features::TIMESTAMP_QUERY));
        let _ = writeln!(s, "  shader f16         {}", f(wgpu::Features::SHADER_F16));
        let _ = writeln!(s, "  subgroups          {}", f(wgpu::Features::SUBGROUP));
        let _ = write!(s, "  cooperative matrix {}", describe_cooperative(&self.cooperative_matrices));
        s
    }
}

/// The cooperative-matrix configurations as `M×N×K A/B→C` entries, or why there are none.
pub fn describe_cooperative(configs: &[wgpu::CooperativeMatrixProperties]) -> String {
    if configs.is_empty() {
        return "no (the adapter does not offer EXPERIMENTAL_COOPERATIVE_MATRIX)".into();
    }
    let ty = |t: wgpu::CooperativeScalarType| format!("{t:?}").to_lowercase();
    let list: Vec<String> = configs
        .iter()
        .map(|c| format!("{}x{}x{} {}->{}", c.m_size, c.n_size, c.k_size, ty(c.ab_type), ty(c.cr_type)))
        .collect();
    format!("yes: {}", list.join(", "))
}
