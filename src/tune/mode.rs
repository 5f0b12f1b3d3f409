//! Whether kernel candidates are timed: `--autotune`, `GPUTRAIN_AUTOTUNE`, or the adapter's default.

use anyhow::{anyhow, bail, Result};
use std::fmt;
use std::str::FromStr;

/// The environment variable read when `--autotune` is not given.
pub const ENV: &str = "GPUTRAIN_AUTOTUNE";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TuneMode {
    /// Reuse a cached choice, time the candidates of a shape class the cache lacks.
    On,
    /// Always the heuristic default; nothing is timed, read or written.
    Off,
    /// Time every shape class again on its first use in this process and overwrite the cache.
    Refresh,
}

impl TuneMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Refresh => "refresh",
        }
    }

    /// The `--autotune` flag wins; otherwise `GPUTRAIN_AUTOTUNE`; otherwise on for a GPU and off for a
    /// software adapter, where timing candidates costs more than it could win.
    pub fn resolve(flag: Option<TuneMode>, device_type: wgpu::DeviceType) -> Result<TuneMode> {
        let env = match std::env::var(ENV) {
            Ok(v) => Some(v),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(v)) => {
                bail!("environment variable {ENV}: {v:?} is not valid UTF-8; expected on, off or refresh")
            }
        };
        Self::resolve_with(flag, env.as_deref(), device_type)
    }

    /// [`resolve`](Self::resolve) given the value of `GPUTRAIN_AUTOTUNE`; an empty value counts as unset.
    pub fn resolve_with(flag: Option<TuneMode>, env: Option<&str>, device_type: wgpu::DeviceType) -> Result<TuneMode> {
        if let Some(m) = flag {
            return Ok(m);
        }
        match env {
            Some(v) if !v.is_empty() => v.parse().map_err(|e| anyhow!("environment variable {ENV}: {e}")),
            _ if device_type == wgpu::DeviceType::Cpu => Ok(Self::Off),
            _ => Ok(Self::On),
        }
    }
}

impl FromStr for TuneMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "on" => Self::On,
            "off" => Self::Off,
            "refresh" => Self::Refresh,
            _ => bail!("unknown autotune mode '{s}': expected on, off or refresh"),
        })
    }
}

impl fmt::Display for TuneMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
