//! The autotuner's file: `autotune-<hash>.json`, one per adapter, driver and candidate set.
//!
//! The hash in the name keeps adapters apart in one cache directory; the identification inside repeats
//! what was hashed, so a file copied from another machine (or a hash collision) is recognised as
//! foreign instead of being trusted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped by whoever changes a candidate set (names, order or meaning), so that choices made among the
/// old candidates stop matching.
pub const CANDIDATES_VERSION: u32 = 2;

/// Written into every file; a file with another format is treated as damaged.
const FORMAT: &str = "gputrain-autotune-1";

/// What a choice depends on besides the shape: the adapter, its driver, and the candidate sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub vendor: u32,
    pub device: u32,
    pub backend: String,
    pub driver: String,
    pub driver_info: String,
    pub candidates_version: u32,
}

impl Identity {
    pub fn of(info: &wgpu::AdapterInfo) -> Identity {
        Identity {
            name: info.name.clone(),
            vendor: info.vendor,
            device: info.device,
            backend: info.backend.to_str().to_string(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            candidates_version: CANDIDATES_VERSION,
        }
    }

    /// `autotune-<16 hex digits>.json`. Each string is length-prefixed so that moving text from one
    /// field to the next changes the hash.
    pub fn file_name(&self) -> String {
        let mut h = Sha256::new();
        for s in [&self.name, &self.backend, &self.driver, &self.driver_info] {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        h.update(self.vendor.to_le_bytes());
        h.update(self.device.to_le_bytes());
        h.update(self.candidates_version.to_le_bytes());
        let hex: String = h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("autotune-{hex}.json")
    }
}

/// One shape class's outcome: the winner and what every candidate measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub chosen: String,
    /// Milliseconds per candidate that could be measured.
    pub ms: BTreeMap<String, f64>,
    /// The error of each candidate that could not.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    adapter: Identity,
    entries: BTreeMap<String, Entry>,
}

/// What reading the file found.
pub enum Loaded {
    /// No file yet.
    Missing,
    Entries(BTreeMap<String, Entry>),
    /// Unusable, with the reason to print: damaged, foreign or unreadable.
    Ignored(String),
}

pub fn load(path: &Path, id: &Identity) -> Loaded {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // Under a path that is not a directory nothing can have been written: a miss like a missing file
        // (the write that follows reports the directory).
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Loaded::Missing
        }
        Err(e) => return Loaded::Ignored(format!("cannot be read ({e})")),
    };
    let file: File = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => return Loaded::Ignored(format!("is not a valid autotune file ({e})")),
    };
    if file.format != FORMAT {
        return Loaded::Ignored(format!("has format '{}', expected '{FORMAT}'", file.format));
    }
    if file.adapter != *id {
        let a = &file.adapter;
        return Loaded::Ignored(format!(
            "was written for another adapter or candidate set ('{}', {} {}, candidates version {}; this is '{}', \
             {} {}, version {})",
            a.name, a.backend, a.driver, a.candidates_version, id.name, id.backend, id.driver, id.candidates_version
        ));
    }
    Loaded::Entries(file.entries)
}

/// Replaces the file with `entries`: written to a temporary file in the same directory, then renamed
/// over it, so a reader (or a crash) never sees half a file.
pub fn store(path: &Path, id: &Identity, entries: &BTreeMap<String, Entry>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = File { format: FORMAT.to_string(), adapter: id.clone(), entries: entries.clone() };
    let text = serde_json::to_string_pretty(&file)? + "\n";
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Unique per process and write, so that two processes tuning at once never share a temporary file.
fn temp_path(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}-{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(name)
}
