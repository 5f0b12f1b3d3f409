//! The per-adapter choice among kernel candidates: remembered for the process, cached on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::cache::{self, Entry, Identity, Loaded};
use super::mode::TuneMode;

/// How a choice of this process was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Candidate 0 without timing: tuning off, or nothing to choose between.
    Default,
    Cache,
    Measured,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Cache => "cache",
            Source::Measured => "measured",
        }
    }
}

struct Choice {
    source: Source,
    entry: Entry,
}

struct State {
    mode: TuneMode,
    /// The file's entries as last read or written; `None` until the first lookup that needs them.
    disk: Option<BTreeMap<String, Entry>>,
    chosen: BTreeMap<String, Choice>,
    warnings: Vec<String>,
    /// Set by the first failed write: it is reported once and not retried.
    unwritable: bool,
}

/// Chooses among candidate kernel configurations per shape class on one adapter. Shared by every
/// thread using the device; the lock is not held while candidates are measured, so a measurement may
/// itself build kernels that consult the tuner.
pub struct Tuner {
    id: Identity,
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl Tuner {
    /// A tuner for `info`, caching in `cache_dir/autotune-<hash>.json`; with no directory, choices live
    /// in memory only. Nothing is read until the first choice that needs the file.
    pub fn new(info: &wgpu::AdapterInfo, mode: TuneMode, cache_dir: Option<PathBuf>) -> Tuner {
        let id = Identity::of(info);
        let path = cache_dir.map(|d| d.join(id.file_name()));
        let state = State { mode, disk: None, chosen: BTreeMap::new(), warnings: Vec::new(), unwritable: false };
        Tuner { id, path, state: Mutex::new(state) }
    }

    /// [`new`](Self::new) in the cache directory the image-folder cache uses (`$GPUTRAIN_CACHE_DIR`, else
    /// the platform's cache directory + `gputrain`).
    pub fn for_adapter(info: &wgpu::AdapterInfo, mode: TuneMode) -> Tuner {
        Self::new(info, mode, crate::data::folder_cache::dir())
    }

    pub fn mode(&self) -> TuneMode {
        self.lock().mode
    }

    pub fn set_mode(&self, mode: TuneMode) {
        self.lock().mode = mode;
    }

    /// The cache file, whether or not it exists yet.
    pub fn cache_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The index of the candidate to run for shape class `key`. `candidates[0]` is the heuristic
    /// default, returned without measuring when tuning is off. Otherwise a choice made earlier in this
    /// process, then (mode on) one from the cache file, is reused if its name is still a candidate;
    /// failing that every candidate is measured with `measure(i)` (milliseconds, lower is better; ties
    /// go to the lower index), the fastest is kept and the file rewritten. A candidate whose measurement
    /// fails is skipped; if all fail, the default's error is returned.
    pub fn choose(
        &self,
        key: &str,
        candidates: &[String],
        measure: &mut dyn FnMut(usize) -> Result<f64>,
    ) -> Result<usize> {
        if candidates.is_empty() {
            bail!("autotune {key}: no candidates given");
        }
        let index_of = |name: &str| candidates.iter().position(|c| c == name);
        {
            let mut s = self.lock();
            if s.mode == TuneMode::Off || candidates.len() == 1 {
                let entry = Entry { chosen: candidates[0].clone(), ms: BTreeMap::new(), failed: BTreeMap::new() };
                s.chosen.insert(key.to_string(), Choice { source: Source::Default, entry });
                return Ok(0);
            }
            let mode = s.mode;
            if let Some(c) = s.chosen.get(key) {
                // A cached choice carried over from mode on is not what refresh asked for.
                let reusable = c.source == Source::Measured || (c.source == Source::Cache && mode == TuneMode::On);
                if let Some(i) = index_of(&c.entry.chosen).filter(|_| reusable) {
                    return Ok(i);
                }
            }
            if mode == TuneMode::On {
                let cached = self.disk(&mut s).get(key).cloned();
                if let Some((i, entry)) = cached.and_then(|e| Some((index_of(&e.chosen)?, e))) {
                    s.chosen.insert(key.to_string(), Choice { source: Source::Cache, entry });
                    return Ok(i);
                }
            }
        }
        let (best, entry) = measure_all(key, candidates, measure)?;
        let mut s = self.lock();
        s.chosen.insert(key.to_string(), Choice { source: Source::Measured, entry });
        self.save(&mut s);
        Ok(best)
    }

    /// What this process chose: the mode, the cache file, per shape class the chosen candidate, where
    /// the choice came from and the timings, and any warning about the cache.
    pub fn chosen(&self) -> Value {
        let s = self.lock();
        let choices: serde_json::Map<String, Value> = s
            .chosen
            .iter()
            .map(|(k, c)| {
                let v = json!({
                    "chosen": c.entry.chosen,
                    "source": c.source.name(),
                    "ms": c.entry.ms,
                    "failed": c.entry.failed,
                });
                (k.clone(), v)
            })
            .collect();
        json!({
            "mode": s.mode.name(),
            "cache": self.path.as_ref().map(|p| p.display().to_string()),
            "choices": choices,
            "warnings": s.warnings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file's entries, read on first use; a file that cannot be used is reported once.
    fn disk<'s>(&self, s: &'s mut State) -> &'s BTreeMap<String, Entry> {
        if s.disk.is_none() {
            let entries = match self.path.as_deref().map(|p| (p, cache::load(p, &self.id))) {
                Some((_, Loaded::Entries(e))) => e,
                Some((p, Loaded::Ignored(why))) => {
                    warn(s, format!("autotune cache {} {why}: ignored, tuning again", p.display()));
                    BTreeMap::new()
                }
                None | Some((_, Loaded::Missing)) => BTreeMap::new(),
            };
            s.disk = Some(entries);
        }
        s.disk.get_or_insert_with(BTreeMap::new)
    }

    /// Writes the file: what it holds now (another process may have added shape classes since it was
    /// read) with this process's measurements over it. A damaged or foreign file is replaced.
    fn save(&self, s: &mut State) {
        let Some(path) = self.path.as_deref() else { return };
        if s.unwritable {
            return;
        }
        let mut entries = match cache::load(path, &self.id) {
            Loaded::Entries(e) => e,
            Loaded::Missing | Loaded::Ignored(_) => BTreeMap::new(),
        };
        for (k, c) in &s.chosen {
            if c.source == Source::Measured {
                entries.insert(k.clone(), c.entry.clone());
            }
        }
        match cache::store(path, &self.id, &entries) {
            Ok(()) => s.disk = Some(entries),
            Err(e) => {
                s.unwritable = true;
                let msg = format!(
                    "autotune cache {} cannot be written ({e:#}): choices are kept for this process only",
                    path.display()
                );
                warn(s, msg);
            }
        }
    }
}

fn warn(s: &mut State, msg: String) {
    eprintln!("warning: {msg}");
    s.warnings.push(msg);
}

/// Measures every candidate; the fastest (lowest index on ties) and the record of all of them.
fn measure_all(
    key: &str,
    candidates: &[String],
    measure: &mut dyn FnMut(usize) -> Result<f64>,
) -> Result<(usize, Entry)> {
    let mut ms = BTreeMap::new();
    let mut failed = BTreeMap::new();
    let mut best: Option<(usize, f64)> = None;
    let mut default_error = None;
    for (i, name) in candidates.iter().enumerate() {
        let t = measure(i).and_then(|t| {
            if t.is_finite() && t >= 0.0 {
                Ok(t)
            } else {
                Err(anyhow!("measured {t} ms, not a duration"))
            }
        });
        match t {
            Ok(t) => {
                ms.insert(name.clone(), t);
                if best.is_none_or(|(_, b)| t < b) {
                    best = Some((i, t));
                }
            }
            Err(e) => {
                failed.insert(name.clone(), format!("{e:#}"));
                if i == 0 {
                    default_error = Some(e);
                }
            }
        }
    }
    let Some((best, _)) = best else {
        let e = default_error.unwrap_or_else(|| anyhow!("no measurement"));
        return Err(e.context(format!("autotune {key}: every candidate failed; the default {}", candidates[0])));
    };
    Ok((best, Entry { chosen: candidates[best].clone(), ms, failed }))
}
