//! Matmul throughput on the current adapter: the three GEMM variants at 1024³ and the VAE's Linear
//! layers at batch 128 (forward and the three gradients).
//!
//! `cargo bench --bench matmul`; `GPUTRAIN_BENCH_QUICK=1` times a single replay per case (smoke test).
//! Times are host wall-clock per replay of prepared dispatches (`Gpu::time_replay`), so on a busy
//! machine they include whatever else competes for the CPU that lavapipe runs on.
//!
//! Kernel variants tried on lavapipe (Mesa 22.3, LLVM 15, 2 AVX2 cores), C = A·Bᵀ at 1024³, GFLOP/s.
//! "cpu" is 2·M·N·K over half the process CPU time (what two uncontended cores give; others were
//! compiling on the same cores, so wall-clock varied 2x), "wall" is wall-clock on the busy machine.
//! Each lane of an 8-lane SIMD workgroup pays ~20-25 CPU cycles per float it loads from a storage
//! buffer, so the variants differ mainly in floats loaded per FMA.
//!
//! | variant | GFLOP/s |
//! |---|---|
//! | per-invocation register tile, vec4 loads, no subgroups: 4×4, workgroup 8×8 | 0.69 wall |
//! | same, 8×8 tile, workgroup 8×8 / 16×16 / 8×4 | 0.71 / 1.05 / 1.05 wall |
//! | same, 4×8 / 8×4 tile / 4×4 with k unrolled ×2 | 0.71 / 0.49 / 0.54 wall |
//! | 8×8 with all loads cache-resident (not memory bound) / without naga bounds checks | 1.06 / 1.06 wall |
//! | 8×8 with the loads hoisted out of the k-loop (FMAs only: loads are 97% of the time) | 35 wall |
//! | workgroup-memory loads instead of storage loads (micro-benchmark) | no cheaper |
//! | A rows shared by `subgroupBroadcast`, lane tile rows×cols, generated straight-line code: | |
//! | 16×4 / 32×2 / 64×2, workgroup 16-32 | 2.8 / 2.6 / 3.1 wall |
//! | 32×4, workgroup 32 | 7.3 cpu |
//! | 64×4, workgroup 8 / 16 / 32 | 8.2 / 9.5 / 8.5 cpu |
//! | 32×8, workgroup 8 / 16 / 32 | 7.9 / 8.8 / 9.1 cpu |
//! | 48×8 / 32×16 / 128×4 | 10.0 / 10.7 / 11.2 cpu |
//! | 64×8, workgroup 8 (≈4 s to compile) / 16 | 12.9 / 12.3 cpu |
//! | 64×16, workgroup 8 (17 s to compile) | 12.8 cpu |
//! | 64×8 with `subgroupShuffle` instead of `subgroupBroadcast` | 10.9 vs 12.5 cpu |
//! | 64×8 with scalar instead of vec4 loads | same within noise |
//! | 64×8 written as loops over accumulator arrays (the driver does not unroll them) | 4.8 cpu |
//! | shipped structure (helpers, strided scalar loads, clamped edges, bias/accumulate epilogue): | |
//! | fully unrolled epilogue with the accumulate branch | 41 s to compile |
//! | epilogue through rotation loops, 64×64 tile (`matmul_forward`, 2.1 s CPU to compile) | 11.2-12.3 cpu |
//! | **128×64 tile (`matmul_forward_tall`, ~4 s to compile): used for large M** | **14.1-15.3 cpu** |
//! | 128×64 with two k-steps per loop iteration (9 s to compile) | 12.6 vs 13.4 cpu |
//! | 192×64 tile (17 s to compile) | 14.2 vs 13.4 cpu |
//! | 128×64 with vec4 loads via aliased bindings (NT, K % 4 == 0 only) | 15.3 vs 14.3 cpu |
//! | 128×64 without the B loads (ablation: loads are still ~75% of the time) | 18.7 cpu |
//!
//! This bench on the shipped kernels (wall): nt / nn / tn 10.8 / 10.0 / 10.0 at load average 1.8,
//! 5.1-6.5 at load average 2.5-3.

use anyhow::Result;
use gputrain::ops::matmul::{self, MatmulShape};
use gputrain::runtime::{BackendChoice, Gpu, KernelCall};

struct Case {
    shape: String,
    variant: &'static str,
    calls: Vec<KernelCall>,
    /// f32 length of each operand, in operand order.
    lens: Vec<usize>,
}

fn gemm(variant: &'static str, s: MatmulShape, bias: bool) -> Result<Case> {
    let mut lens = vec![s.a_len(), s.b_len(), s.c_len()];
    if bias {
        lens.insert(2, s.n);
    }
    Ok(Case { shape: format!("{}x{}x{}", s.m, s.n, s.k), variant, calls: matmul::matmul(s, bias, false)?, lens })
}

/// The four kernels of one Linear layer `in -> out` at `batch`.
fn linear(name: &str, batch: usize, in_f: usize, out_f: usize) -> Result<Vec<Case>> {
    let shape = format!("{name} {in_f}->{out_f} b{batch}");
    Ok(vec![
        Case {
            shape: shape.clone(),
            variant: "forward (nt+bias)",
            calls: matmul::linear_forward(batch, in_f, out_f)?,
            lens: vec![batch * in_f, out_f * in_f, out_f, batch * out_f],
        },
        Case {
            shape: shape.clone(),
            variant: "backward input (nn)",
            calls: matmul::linear_backward_input(batch, in_f, out_f, false)?,
            lens: vec![batch * out_f, out_f * in_f, batch * in_f],
        },
        Case {
            shape: shape.clone(),
            variant: "backward weight (tn)",
            calls: matmul::linear_backward_weight(batch, in_f, out_f, false)?,
            lens: vec![batch * out_f, batch * in_f, out_f * in_f],
        },
        Case {
            shape,
            variant: "backward bias",
            calls: matmul::linear_backward_bias(batch, out_f, false)?,
            lens: vec![batch * out_f, out_f],
        },
    ])
}

fn main() -> Result<()> {
    let gpu = Gpu::new(BackendChoice::resolve(None)?)?;
    let quick = std::env::var("GPUTRAIN_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    println!("adapter: {}", gpu.describe());

    let mut cases = vec![
        gemm("nt", MatmulShape::nt(1024, 1024, 1024), false)?,
        gemm("nn", MatmulShape::nn(1024, 1024, 1024), false)?,
        gemm("tn", MatmulShape::tn(1024, 1024, 1024), false)?,
    ];
    cases.extend(linear("fc_mu", 128, 2048, 32)?);
    cases.extend(linear("decoder_fc", 128, 32, 2048)?);

    println!("{:<24} {:<22} {:>10} {:>9} {:>9}", "shape", "variant", "ms", "GFLOP/s", "entry");
    for case in &cases {
        let bufs = case
            .lens
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let data: Vec<f32> = (0..n).map(|j| ((j * 7 + i * 13) % 17) as f32 / 17.0 - 0.5).collect();
                gpu.upload_f32(&format!("operand{i}"), &data)
            })
            .collect::<Result<Vec<_>>>()?;
        let operands: Vec<_> = bufs.iter().map(|b| b.whole()).collect();
        let prepared = case.calls.iter().map(|c| gpu.prepare(c, &operands)).collect::<Result<Vec<_>>>()?;
        // time_replay's warm-up replay compiles the pipeline; aim for about a second of timed work.
        let reps = if quick { 1 } else { (1.0 / gpu.time_replay(&prepared, 1)?.max(1e-6)).clamp(3.0, 200.0) as usize };
        let secs = gpu.time_replay(&prepared, reps)?;
        let flops: f64 = case.calls.iter().map(|c| c.flops).sum();
        println!(
            "{:<24} {:<22} {:>10.3} {:>9.2} {:>9}",
            case.shape,
            case.variant,
            secs * 1e3,
            flops / secs / 1e9,
            case.calls[0].entry.trim_start_matches("matmul_")
        );
    }
    Ok(())
}
