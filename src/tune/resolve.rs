//! The executor's side of autotuning: each tunable pass of a compiled graph becomes the candidate
//! the adapter's tuner picks, timed on buffers as long as the graph's own operands.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{bail, Result};

use super::measure::{time_calls_on, zero_operands};
use crate::graph::{BoundCall, Graph};
use crate::runtime::Gpu;

/// Replays per candidate measurement; the median is kept.
const REPS: usize = 5;

/// `steps` with every tunable pass replaced by its chosen candidate, bound to the same tensors.
pub fn resolve(gpu: &Gpu, graph: &Graph, steps: &[BoundCall]) -> Result<Vec<BoundCall>> {
    let started = Instant::now();
    let mut measured = HashSet::new();
    let mut out = Vec::with_capacity(steps.len());
    let mut i = 0;
    while i < steps.len() {
        let Some(t) = steps[i].tunable.clone() else {
            out.push(steps[i].clone());
            i += 1;
            continue;
        };
        let n = t.candidates[0].1.len();
        let args = steps[i].args.clone();
        let same_pass =
            |s: &BoundCall| s.args == args && s.tunable.as_ref().is_some_and(|u| std::sync::Arc::ptr_eq(u, &t));
        if i + n > steps.len() || !steps[i..i + n].iter().all(same_pass) {
            bail!("autotune {}: the recorded pass does not hold its {n} default calls in order", t.key);
        }
        let lens: Vec<usize> = args.iter().map(|&a| graph.len(a)).collect();
        let names: Vec<String> = t.candidates.iter().map(|(name, _)| name.clone()).collect();
        // Made at the first measurement, so a choice from the cache allocates nothing.
        let mut buffers = None;
        let chosen = gpu.tuner.choose(&t.key, &names, &mut |c| {
            measured.insert(t.key.clone());
            if buffers.is_none() {
                buffers = Some(zero_operands(gpu, &lens)?);
            }
            time_calls_on(gpu, &t.candidates[c].1, buffers.as_deref().unwrap_or_default(), REPS)
        })?;
        out.extend(t.candidates[chosen].1.iter().map(|call| BoundCall::new(call.clone(), args.clone())));
        i += n;
    }
    if !measured.is_empty() {
        let cache = gpu.tuner.cache_path().map_or("memory only".into(), |p| format!("cached in {}", p.display()));
        let secs = started.elapsed().as_secs_f64();
        eprintln!("autotune: {} shape classes measured in {secs:.1} s ({cache})", measured.len());
    }
    Ok(out)
}
