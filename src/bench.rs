//! The `bench` subcommand: warm-up and steady-state timing of a model's training step, host traffic
//! per step, and a per-kernel table from GPU timestamp queries with the share of the step spent
//! outside kernels. `matmul` is `bench --matmul`, the GEMM sweep per kernel set.

pub mod matmul;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

use crate::runtime::launch::Prepared;
use crate::runtime::Gpu;
use crate::train::model::TrainableModel;

/// One kernel entry point's share of a step.
#[derive(Clone, Debug)]
pub struct KernelRow {
    pub entry: &'static str,
    pub calls: usize,
    pub ms: f64,
    pub share: f64,
    pub gflops: f64,
}

/// One dispatch of the step in order: its grid, what it touches and (with timestamps) its time.
#[derive(Clone, Debug)]
pub struct DispatchRow {
    pub entry: &'static str,
    pub workgroups: [u32; 3],
    pub elements: u64,
    pub ms: Option<f64>,
}

impl DispatchRow {
    pub fn total_workgroups(&self) -> u64 {
        self.workgroups.iter().map(|&w| w as u64).product()
    }
}

/// The parallelism floor: a dispatch that reads or writes at least `FLOOR_ELEMENTS` floats should
/// launch at least `FLOOR_WORKGROUPS` workgroups, about one per multiprocessor of a large GPU, or
/// most of the chip idles while it runs.
pub const FLOOR_ELEMENTS: u64 = 64 << 10;
pub const FLOOR_WORKGROUPS: u64 = 128;

/// The dispatches of a step that break the parallelism floor.
pub fn below_floor(rows: &[DispatchRow]) -> Vec<&DispatchRow> {
    rows.iter().filter(|d| d.elements >= FLOOR_ELEMENTS && d.total_workgroups() < FLOOR_WORKGROUPS).collect()
}

/// The dispatch list of a step, with GPU times where the adapter has timestamp queries.
pub fn dispatch_rows(prepared: &[&Prepared], times: Option<&[f64]>) -> Vec<DispatchRow> {
    prepared
        .iter()
        .enumerate()
        .map(|(i, p)| DispatchRow {
            entry: p.entry,
            workgroups: p.workgroups,
            elements: p.elements,
            ms: times.map(|t| t[i] * 1e3),
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct BenchResult {
    pub model: String,
    pub batch_size: usize,
    /// Model construction: planning, buffers, and every pipeline (shader compilation).
    pub build_ms: f64,
    /// The first step (first use of every pipeline and buffer).
    pub first_step_ms: f64,
    pub steps: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub images_per_s: f64,
    /// Host time to record and submit a step (median): the CPU cost the GPU cannot hide.
    pub host_ms: f64,
    pub dispatches: usize,
    pub submits: usize,
    pub bytes_uploaded: u64,
    pub bytes_read_back: u64,
    /// Σ kernel GPU time of one step (None without timestamp queries).
    pub kernel_ms: Option<f64>,
    pub kernels: Vec<KernelRow>,
    pub dispatch_list: Vec<DispatchRow>,
}

impl BenchResult {
    /// (step − Σ kernels) / step: host recording, submission, synchronisation and gaps between kernels.
    /// Kernels are timed one per pass, which on a software adapter can sum to more than the fused step;
    /// the share is then 0 and `host_ms` is the better measure of what runs outside kernels.
    pub fn outside_kernels(&self) -> Option<f64> {
        self.kernel_ms.map(|k| ((self.median_ms - k) / self.median_ms).max(0.0))
    }
}

fn wait(gpu: &Gpu) -> Result<()> {
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
    Ok(())
}

/// Times `steps` training steps of the model `build` makes, after `warmup` untimed ones.
pub fn run(
    gpu: &Gpu,
    name: &str,
    batch_size: usize,
    steps: usize,
    warmup: usize,
    build: impl FnOnce() -> Result<Box<dyn TrainableModel>>,
) -> Result<BenchResult> {
    let t = Instant::now();
    let mut model = build()?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    model.start_epoch(gpu, 0)?;
    let t = Instant::now();
    model.step(gpu, false)?;
    wait(gpu)?;
    let first_step_ms = t.elapsed().as_secs_f64() * 1e3;
    for _ in 0..warmup {
        model.step(gpu, false)?;
    }
    wait(gpu)?;
    let mut times = Vec::with_capacity(steps);
    let mut host = Vec::with_capacity(steps);
    let mut stats = model.step_stats();
    for i in 0..steps {
        let t = Instant::now();
        // Losses are read back on the last step, as a logging step would.
        model.step(gpu, i + 1 == steps)?;
        host.push(t.elapsed().as_secs_f64() * 1e3);
        wait(gpu)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            stats = model.step_stats();
        }
    }
    let logged = model.step_stats();
    model.poll_losses(gpu, true)?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = sorted[sorted.len() / 2];
    host.sort_by(f64::total_cmp);
    let host_ms = host[host.len() / 2];

    let prepared = model.step_dispatches();
    let per_kernel = gpu.kernel_times(&prepared)?;
    let dispatch_list = dispatch_rows(&prepared, per_kernel.as_deref());
    let (kernel_ms, kernels) = match per_kernel {
        None => (None, Vec::new()),
        Some(t) => {
            let total: f64 = t.iter().sum::<f64>() * 1e3;
            let mut by: BTreeMap<&'static str, (usize, f64, f64)> = BTreeMap::new();
            for (p, s) in prepared.iter().zip(&t) {
                let e = by.entry(p.entry).or_default();
                *e = (e.0 + 1, e.1 + s * 1e3, e.2 + p.flops);
            }
            let mut rows: Vec<KernelRow> = by
                .into_iter()
                .map(|(entry, (calls, ms, flops))| KernelRow {
                    entry,
                    calls,
                    ms,
                    share: ms / total.max(1e-12),
                    gflops: if ms > 0.0 { flops / (ms * 1e6) } else { 0.0 },
                })
                .collect();
            rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
            (Some(total), rows)
        }
    };
    Ok(BenchResult {
        model: name.to_string(),
        batch_size,
        build_ms,
        first_step_ms,
        steps,
        median_ms,
        min_ms: sorted[0],
        max_ms: sorted[sorted.len() - 1],
        images_per_s: batch_size as f64 / (median_ms / 1e3),
        host_ms,
        dispatches: stats.dispatches,
        submits: stats.submits,
        bytes_uploaded: stats.bytes_uploaded,
        bytes_read_back: logged.bytes_read_back,
        kernel_ms,
        kernels,
        dispatch_list,
    })
}

pub fn to_json(r: &BenchResult) -> Value {
    json!({
        "model": r.model,
        "batch_size": r.batch_size,
        "build_ms": r.build_ms,
        "first_step_ms": r.first_step_ms,
        "steps": r.steps,
        "ms_per_step": {"median": r.median_ms, "min": r.min_ms, "max": r.max_ms},
        "images_per_s": r.images_per_s,
        "host_record_submit_ms": r.host_ms,
        "dispatches_per_step": r.dispatches,
        "submits_per_step": r.submits,
        "bytes_uploaded_per_step": r.bytes_uploaded,
        "bytes_read_back_per_logged_step": r.bytes_read_back,
        "kernel_ms_per_step": r.kernel_ms,
        "outside_kernels_share": r.outside_kernels(),
        "kernels": r.kernels.iter().map(|k| json!({
            "kernel": k.entry, "calls": k.calls, "ms": k.ms, "share": k.share, "gflops": k.gflops,
        })).collect::<Vec<_>>(),
        "dispatches": r.dispatch_list.iter().map(|d| json!({
            "kernel": d.entry, "workgroups": d.workgroups, "total_workgroups": d.total_workgroups(),
            "elements": d.elements, "ms": d.ms,
        })).collect::<Vec<_>>(),
        "below_parallelism_floor": below_floor(&r.dispatch_list).len(),
    })
}

/// A human-readable report: summary lines and the per-kernel table.
pub fn to_text(r: &BenchResult) -> String {
    let mut s = format!(
        "{} batch {}: build {:.0} ms, first step {:.0} ms\n  {:.1} ms/step median (min {:.1}, max {:.1}) over {} steps, {:.0} images/s\n  {} dispatches, {} submit, {} B uploaded per step; {} B read back on a logging step\n  host: {:.2} ms to record and submit a step ({:.2}% of the step)\n",
        r.model,
        r.batch_size,
        r.build_ms,
        r.first_step_ms,
        r.median_ms,
        r.min_ms,
        r.max_ms,
        r.steps,
        r.images_per_s,
        r.dispatches,
        r.submits,
        r.bytes_uploaded,
        r.bytes_read_back,
        r.host_ms,
        100.0 * r.host_ms / r.median_ms,
    );
    match (r.kernel_ms, r.outside_kernels()) {
        (Some(k), Some(o)) => {
            s += &format!("  kernels {k:.1} ms per step; outside kernels {:.1}% of the step\n", o * 100.0);
            s += &format!("  {:<32} {:>5} {:>10} {:>6} {:>8}\n", "kernel", "calls", "total ms", "share", "GFLOP/s");
            for k in &r.kernels {
                s += &format!(
                    "  {:<32} {:>5} {:>10.2} {:>5.1}% {:>8.2}\n",
                    k.entry,
                    k.calls,
                    k.ms,
                    k.share * 100.0,
                    k.gflops
                );
            }
        }
        _ => s += "  (no timestamp queries on this adapter: no per-kernel table)\n",
    }
    let low = below_floor(&r.dispatch_list);
    if !low.is_empty() {
        s += &format!(
            "  {} dispatches touch >= {FLOOR_ELEMENTS} floats on fewer than {FLOOR_WORKGROUPS} workgroups:\n",
            low.len()
        );
        for d in low {
            s += &format!("    {:<32} {:?} workgroups, {} floats\n", d.entry, d.workgroups, d.elements);
        }
    }
    s
}
