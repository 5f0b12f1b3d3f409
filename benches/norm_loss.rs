//! Batchnorm, BCE and reduction timings at the VAE's batch-128 shapes on the current adapter.
//!
//! `cargo bench --bench norm_loss`; `GPUTRAIN_BENCH_QUICK=1` times a single replay per case.
//! Times are host wall-clock per replay of prepared dispatches (`Gpu::time_replay`), best of 3.

use anyhow::Result;
use gputrain::ops::batchnorm::{self, BatchNormShape, BnAct};
use gputrain::ops::loss::{self, BceReduction};
use gputrain::ops::reduce;
use gputrain::runtime::buffers::Operand;
use gputrain::runtime::{BackendChoice, Gpu, KernelCall};

fn best_ms(gpu: &Gpu, calls: &[KernelCall], ops: &[Operand<'_>], reps: usize) -> Result<f64> {
    let prep = calls.iter().map(|c| gpu.prepare(c, ops)).collect::<Result<Vec<_>>>()?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(gpu.time_replay(&prep, reps)?);
    }
    Ok(best * 1e3)
}

fn main() -> Result<()> {
    let gpu = Gpu::new(BackendChoice::resolve(None)?)?;
    let reps = if std::env::var_os("GPUTRAIN_BENCH_QUICK").is_some() { 1 } else { 10 };
    println!("adapter: {}", gpu.describe());

    for s in [BatchNormShape { n: 128, c: 32, h: 16, w: 16 }, BatchNormShape { n: 128, c: 256, h: 4, w: 4 }] {
        let x = gpu.upload_f32("x", &vec![0.5f32; s.numel()])?;
        let per_c = |v: f32| gpu.upload_f32("c", &vec![v; s.c]);
        let (gamma, beta, rm, rv) = (per_c(1.0)?, per_c(0.0)?, per_c(0.0)?, per_c(1.0)?);
        let saved = gpu.zeros("saved", 2 * s.c as u64 * 4)?;
        let (y, dy, dx) =
            (gpu.zeros("y", x.bytes)?, gpu.upload_f32("dy", &vec![0.1f32; s.numel()])?, gpu.zeros("dx", x.bytes)?);
        let (dg, db) = (gpu.zeros("dg", s.c as u64 * 4)?, gpu.zeros("db", s.c as u64 * 4)?);
        let fpart = gpu.zeros("forward partials", batchnorm::forward_partials(&s) as u64 * 4)?;
        let bpart = gpu.zeros("backward partials", batchnorm::backward_partials(&s) as u64 * 4)?;
        let train =
            [x.whole(), gamma.whole(), beta.whole(), rm.whole(), rv.whole(), saved.whole(), y.whole(), fpart.whole()];
        let eval = [x.whole(), gamma.whole(), beta.whole(), rm.whole(), rv.whole(), y.whole()];
        let bwd = [
            x.whole(),
            dy.whole(),
            gamma.whole(),
            saved.whole(),
            dg.whole(),
            db.whole(),
            dx.whole(),
            y.whole(),
            bpart.whole(),
        ];
        for act in [BnAct::Identity, BnAct::Relu] {
            let label = format!("batchnorm {}x{}x{}x{} {act:?}", s.n, s.c, s.h, s.w);
            println!(
                "{label} train_forward: {:.3} ms",
                best_ms(&gpu, &batchnorm::train_forward(&s, act)?, &train, reps)?
            );
            println!(
                "{label} eval_forward:  {:.3} ms",
                best_ms(&gpu, &batchnorm::eval_forward(&s, act)?, &eval, reps)?
            );
            println!("{label} backward:      {:.3} ms", best_ms(&gpu, &batchnorm::backward(&s, act)?, &bwd, reps)?);
        }
    }

    let (batch, per_item) = (128, 1024);
    let n = batch * per_item;
    let p = gpu.upload_f32("p", &vec![0.3f32; n])?;
    let t = gpu.upload_f32("t", &vec![0.6f32; n])?;
    let out = gpu.zeros("out", n as u64 * 4)?;
    let red = BceReduction::SumPerItemMeanOverBatch;
    let part = gpu.zeros("partials", gputrain::ops::reduce::partials_len(n) as u64 * 4)?;
    let ops = [p.whole(), t.whole(), out.whole(), part.whole()];
    println!(
        "bce_forward {batch}x{per_item}:  {:.3} ms",
        best_ms(&gpu, &loss::bce_forward(batch, per_item, red)?, &ops, reps)?
    );
    let bwd = loss::bce_backward(batch, per_item, red, 1.0, false)?;
    println!("bce_backward {batch}x{per_item}: {:.3} ms", best_ms(&gpu, &bwd, &ops, reps)?);

    let n = 1 << 20;
    let x = gpu.upload_f32("x", &vec![1.0f32; n])?;
    let out = gpu.zeros("out", 4)?;
    let part = gpu.zeros("partials", reduce::partials_len(n) as u64 * 4)?;
    let ops = [x.whole(), out.whole(), part.whole()];
    println!("sum of 1M elements: {:.3} ms", best_ms(&gpu, &reduce::sum(n)?, &ops, reps)?);
    Ok(())
}
