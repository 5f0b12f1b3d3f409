//! Which implementation of the matmul and convolution families a device runs.
//!
//! The CPU emulator and a GPU want opposite kernels (docs/architecture.md, "Kernel sets"): the
//! lavapipe set shares rows through 8-lane subgroup broadcasts and keeps hundreds of accumulators
//! per invocation; the tiled set stages tiles through workgroup memory with 64-256 invocations and
//! uses no subgroup operations, so it runs on every backend, wgpu's GL included.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::str::FromStr;

/// The kernel set a device was opened with; ops build the dispatches of whichever set they are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelSet {
    /// One 8-lane subgroup per workgroup, rows shared by `subgroupBroadcast`: fast only on lavapipe.
    Lavapipe,
    /// Workgroup-memory tiles and register tiles, no subgroups: every GPU, GL, WebGPU.
    Tiled,
}

impl KernelSet {
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Lavapipe => "lavapipe",
            KernelSet::Tiled => "tiled",
        }
    }
}

impl fmt::Display for KernelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asked for with `--kernels` / `GPUTRAIN_KERNELS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KernelChoice {
    #[default]
    Auto,
    Tiled,
    Lavapipe,
}

impl FromStr for KernelChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Self::Auto,
            "tiled" => Self::Tiled,
            "lavapipe" => Self::Lavapipe,
            other => bail!("unknown kernel set '{other}': expected auto, tiled or lavapipe"),
        })
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Tiled => "tiled",
            Self::Lavapipe => "lavapipe",
        })
    }
}

impl KernelChoice {
    /// The `--kernels` flag wins; otherwise `GPUTRAIN_KERNELS`; otherwise auto.
    pub fn resolve(flag: Option<KernelChoice>) -> Result<KernelChoice> {
        if let Some(k) = flag {
            return Ok(k);
        }
        match std::env::var("GPUTRAIN_KERNELS") {
            Ok(v) => v.parse().context("environment variable GPUTRAIN_KERNELS"),
            Err(_) => Ok(Self::Auto),
        }
    }

    /// The set for an adapter: lavapipe's only on a CPU adapter whose subgroups are exactly 8 wide,
    /// the tiled set everywhere else. Forcing the lavapipe set where subgroups are missing fails here,
    /// naming the adapter, rather than at the first pipeline.
    pub fn pick(self, info: &wgpu::AdapterInfo, features: wgpu::Features) -> Result<KernelSet> {
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        let eight_wide = subgroups && info.subgroup_min_size == 8 && info.subgroup_max_size == 8;
        match self {
            Self::Tiled => Ok(KernelSet::Tiled),
            Self::Lavapipe if subgroups => Ok(KernelSet::Lavapipe),
            Self::Lavapipe => bail!(
                "--kernels lavapipe needs subgroup operations, which adapter '{}' ({:?}) does not offer; use \
                 --kernels tiled or auto",
                info.name,
                info.backend
            ),
            Self::Auto if info.device_type == wgpu::DeviceType::Cpu && eight_wide => Ok(KernelSet::Lavapipe),
            Self::Auto => Ok(KernelSet::Tiled),
        }
    }
}
