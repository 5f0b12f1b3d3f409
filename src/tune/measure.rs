//! Timing one candidate: its dispatches on zero-filled operands, median of several replays.

use std::time::Instant;

use anyhow::{bail, Result};

use crate::runtime::{Gpu, GpuBuffer, KernelCall};

/// Replays before timing starts: the first pays for pipeline creation and first-touch of the buffers.
const WARM_UPS: usize = 2;

/// Zero-filled f32 buffers of `lens` floats: the operands candidates of one shape class are timed on.
pub fn zero_operands(gpu: &Gpu, lens: &[usize]) -> Result<Vec<GpuBuffer>> {
    lens.iter().enumerate().map(|(i, &n)| gpu.zeros(&format!("autotune operand {i}"), n as u64 * 4)).collect()
}

/// Median milliseconds of one run of `calls` over zero-filled f32 operands of `operand_lens` floats,
/// over `reps` replays: GPU time (the sum of every dispatch's timestamps) where the adapter has
/// timestamp queries, else the host's time from submit to completion.
pub fn time_calls(gpu: &Gpu, calls: &[KernelCall], operand_lens: &[usize], reps: usize) -> Result<f64> {
    time_calls_on(gpu, calls, &zero_operands(gpu, operand_lens)?, reps)
}

/// `time_calls` on buffers made once (`zero_operands`) and shared by the candidates of a class.
pub fn time_calls_on(gpu: &Gpu, calls: &[KernelCall], buffers: &[GpuBuffer], reps: usize) -> Result<f64> {
    if reps == 0 {
        bail!("time_calls: reps must be at least 1");
    }
    if calls.is_empty() {
        bail!("time_calls: no kernel calls to time");
    }
    let operands: Vec<_> = buffers.iter().map(|b| b.whole()).collect();
    let prepared = calls.iter().map(|c| gpu.prepare(c, &operands)).collect::<Result<Vec<_>>>()?;
    for _ in 0..WARM_UPS {
        gpu.replay(&prepared)?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        match gpu.kernel_times(&prepared)? {
            Some(t) => times.push(t.iter().sum::<f64>() * 1e3),
            None => break,
        }
    }
    // Some drivers report timestamps that never advance; the host clock is coarser but real.
    if times.len() < reps || median(&mut times) <= 0.0 {
        times.clear();
        for _ in 0..reps {
            let t = Instant::now();
            gpu.replay(&prepared)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    gpu.check()?;
    Ok(median(&mut times))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
