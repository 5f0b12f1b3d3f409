//! Throughput of the conv family on every convolution and transposed convolution of the two models
//! (README, "Checkpoints in PyTorch") at batch 128: forward, input gradient and weight gradient of each layer.
//!
//! `cargo bench --bench conv`; `GPUTRAIN_BENCH_QUICK=1` times a single replay per case (smoke test).
//! Wide layers also get their three passes lowered to the matmul (ops::conv_gemm); `*` marks the
//! variant the models' graphs run, and the totals add those.
//! GFLOP/s counts 2·(multiply-adds of the convolution) for every pass, the same work in all three.
//! Times are host wall-clock per replay of prepared dispatches (`Gpu::time_replay`), so on a busy
//! machine they include whatever else competes for the CPU that lavapipe runs on.

use anyhow::Result;
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::ops::conv_gemm;
use gputrain::ops::conv_transpose::{self as convt, ConvTranspose2dShape};
use gputrain::runtime::{BackendChoice, Gpu, KernelCall};

const BATCH: usize = 128;

enum Layer {
    Conv(Conv2dShape),
    ConvT(ConvTranspose2dShape),
}

fn conv(cin: usize, cout: usize, hw: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv(Conv2dShape { batch: BATCH, cin, cout, h: hw, w: hw, k, stride, pad })
}

fn convt(cin: usize, cout: usize, hw: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::ConvT(ConvTranspose2dShape { batch: BATCH, cin, cout, h: hw, w: hw, k, stride, pad })
}

/// (pass, calls, operand lengths in operand order, whether the models' graphs run this variant).
type Pass = (&'static str, Vec<KernelCall>, Vec<usize>, bool);

/// The direct kernels' three passes of a layer, then the three lowered to the matmul
/// (ops::conv_gemm) where the layer is wide enough to try.
fn passes(layer: &Layer) -> Result<(String, f64, Vec<Pass>)> {
    let (name, flops, direct) = direct_passes(layer)?;
    let (view, lowered) = match layer {
        Layer::Conv(s) => (
            *s,
            [conv_gemm::lowers_forward(s), conv_gemm::lowers_backward_input(s), conv_gemm::lowers_backward_weight(s)],
        ),
        Layer::ConvT(t) => (
            t.conv_view(),
            [convt::lowers_forward(t), convt::lowers_backward_input(t), convt::lowers_backward_weight(t)],
        ),
    };
    let mut passes: Vec<Pass> = direct.into_iter().zip(lowered).map(|((n, c, l), low)| (n, c, l, !low)).collect();
    // Layers with 1 input or output channel (the models' first and last) are not worth timing:
    // the GEMM's 64-wide tiles would be almost all padding.
    if view.cin > 1 && view.cout > 1 {
        let [col, c] = conv_gemm::scratch_lens(&view);
        let (x, y, w) = (view.x_len(), view.y_len(), view.w_len());
        // The layer's forward pass with its bias, as in the direct rows; the transposed
        // convolution's forward pass is its view's input gradient and vice versa.
        let (f, b, g) = match layer {
            Layer::Conv(s) => (
                (conv_gemm::forward(s, true, false)?, vec![x, w, s.cout, col, c, y]),
                (conv_gemm::backward_input(s, false, false)?, vec![y, w, col, c, x]),
                (conv_gemm::backward_weight(s, false)?, vec![x, y, col, c, w]),
            ),
            Layer::ConvT(t) => (
                (convt::forward_lowered(t, true, false)?, vec![y, w, t.cout, col, c, x]),
                (convt::backward_input_lowered(t)?, vec![x, w, col, c, y]),
                (convt::backward_weight_lowered(t, false)?, vec![y, x, col, c, w]),
            ),
        };
        passes.push(("forward gemm", f.0, f.1, lowered[0]));
        passes.push(("bw_input gemm", b.0, b.1, lowered[1]));
        passes.push(("bw_weight gemm", g.0, g.1, lowered[2]));
    }
    Ok((name, flops, passes))
}

type Direct = (&'static str, Vec<KernelCall>, Vec<usize>);

fn direct_passes(layer: &Layer) -> Result<(String, f64, Vec<Direct>)> {
    Ok(match layer {
        Layer::Conv(s) => (
            format!("Conv({}→{},k{}s{}p{}) {}²", s.cin, s.cout, s.k, s.stride, s.pad, s.h),
            s.flops(),
            vec![
                ("forward", conv::forward(s, true, false)?, vec![s.x_len(), s.w_len(), s.cout, s.y_len()]),
                ("backward_input", conv::backward_input(s)?, vec![s.y_len(), s.w_len(), s.x_len()]),
                ("backward_weight", conv::backward_weight(s)?, vec![s.x_len(), s.y_len(), s.w_len()]),
            ],
        ),
        Layer::ConvT(s) => (
            format!("ConvT({}→{},k{}s{}p{}) {}²", s.cin, s.cout, s.k, s.stride, s.pad, s.h),
            s.flops(),
            vec![
                ("forward", convt::forward(s, true, false)?, vec![s.x_len(), s.w_len(), s.cout, s.y_len()]),
                ("backward_input", convt::backward_input(s)?, vec![s.y_len(), s.w_len(), s.x_len()]),
                ("backward_weight", convt::backward_weight(s)?, vec![s.x_len(), s.y_len(), s.w_len()]),
            ],
        ),
    })
}

fn main() -> Result<()> {
    let gpu = Gpu::new(BackendChoice::resolve(None)?)?;
    let quick = std::env::var("GPUTRAIN_BENCH_QUICK").is_ok_and(|v| v == "1");
    let reps = if quick { 1 } else { 5 };
    println!("adapter: {}   batch {BATCH}   {reps} replays per case", gpu.describe());
    let models = [
        (
            "VAE",
            vec![
                ("encoder.0", conv(1, 32, 32, 4, 2, 1)),
                ("encoder.3", conv(32, 64, 16, 4, 2, 1)),
                ("encoder.6", conv(64, 128, 8, 4, 2, 1)),
                ("decoder.0", convt(128, 64, 4, 4, 2, 1)),
                ("decoder.3", convt(64, 32, 8, 4, 2, 1)),
                ("decoder.6", convt(32, 1, 16, 4, 2, 1)),
            ],
        ),
        (
            "DCGAN",
            vec![
                ("generator.0", convt(100, 256, 1, 4, 1, 0)),
                ("generator.3", convt(256, 128, 4, 4, 2, 1)),
                ("generator.6", convt(128, 64, 8, 4, 2, 1)),
                ("generator.9", convt(64, 1, 16, 4, 2, 1)),
                ("discriminator.0", conv(1, 64, 32, 4, 2, 1)),
                ("discriminator.2", conv(64, 128, 16, 4, 2, 1)),
                ("discriminator.5", conv(128, 256, 8, 4, 2, 1)),
                ("discriminator.8", conv(256, 1, 4, 4, 1, 0)),
            ],
        ),
    ];
    println!("{:<6} {:<16} {:<26} {:<16} {:>9} {:>9}", "model", "layer", "shape", "pass", "ms", "GFLOP/s");
    for (model, layers) in &models {
        let (mut total_s, mut total_flops) = (0.0, 0.0);
        for (name, layer) in layers {
            let (desc, flops, passes) = passes(layer)?;
            for (pass, calls, lens, used) in passes {
                let bufs = lens.iter().map(|&n| gpu.zeros(pass, n as u64 * 4)).collect::<Result<Vec<_>>>()?;
                let ops: Vec<_> = bufs.iter().map(|b| b.whole()).collect();
                let prepared = calls.iter().map(|c| gpu.prepare(c, &ops)).collect::<Result<Vec<_>>>()?;
                let t = gpu.time_replay(&prepared, reps)?;
                if used {
                    total_s += t;
                    total_flops += flops;
                }
                let mark = if used { "*" } else { "" };
                println!(
                    "{model:<6} {name:<16} {desc:<26} {pass:<16} {:>9.2} {:>9.2} {mark}",
                    t * 1e3,
                    flops / t * 1e-9
                );
            }
        }
        println!(
            "{model:<6} {:<16} {:<26} {:<16} {:>9.2} {:>9.2}",
            "all layers",
            "",
            "passes marked *",
            total_s * 1e3,
            total_flops / total_s * 1e-9
        );
    }
    Ok(())
}
