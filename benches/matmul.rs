//! Matmul throughput on the current adapter: the three GEMM variants at 1024³ and the VAE's Linear
//! layers at batch 128 (forward and the three gradients).
//!
//! `cargo bench --bench matmul`; `GPUTRAIN_BENCH_QUICK=1` times a single replay per case (smoke test).
//! Times are host wall-clock per replay of prepared dispatches (`Gpu::time_replay`), so on a busy
//! machine they include whatever else competes for the CPU that lavapipe runs on.

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
        // The first replay compiles the pipeline (not timed); aim for about a second of timed work.
        let once = gpu.time_replay(&prepared, 1)?;
        let reps = if quick { 1 } else { (1.0 / once.max(1e-6)).clamp(3.0, 200.0) as usize };
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
