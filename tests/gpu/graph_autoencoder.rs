//! A convolutional autoencoder in miniature through the graph, under both kernel sets: conv → ReLU →
//! nearest upsampling ×2 → conv, with an MSE loss summed per image and a BCE-with-logits loss on the
//! same output (so its gradient is an accumulation of two), and the per-pixel MSE as a metric. The
//! executor's losses and gradients equal the net composed by hand from the CPU references.

use crate::common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, Conv, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::bce_logits;
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::ops::elementwise::{cpu_backward, cpu_forward, Activation};
use gputrain::ops::loss::BceReduction;
use gputrain::ops::mse::{self, MseReduction};
use gputrain::ops::upsample::{self, UpsampleShape};
use gputrain::runtime::KernelSet;

const N: usize = 2;
const ENC: Conv2dShape = Conv2dShape { batch: N, cin: 1, cout: 3, h: 8, w: 8, k: 4, stride: 2, pad: 1 };
const UP: UpsampleShape = UpsampleShape { planes: N * 3, h: 4, w: 4 };
const DEC: Conv2dShape = Conv2dShape { batch: N, cin: 3, cout: 1, h: 8, w: 8, k: 3, stride: 1, pad: 1 };

fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    to_f64(&to_f32(&v))
}

/// The kernel sets this device runs: the lavapipe set needs subgroups.
pub fn kernel_sets() -> Vec<KernelSet> {
    let mut sets = vec![KernelSet::Tiled];
    if gpu().features.contains(wgpu::Features::SUBGROUP) {
        sets.push(KernelSet::Lavapipe);
    }
    sets
}

fn autoencoder(set: KernelSet) -> Graph {
    let mut g = Graph::new(set);
    let x = g.external("x", &[N, 1, 8, 8]);
    let h = nn::conv2d(&mut g, "enc", x, Conv { out: 3, k: 4, stride: 2, pad: 1, bias: true }, WeightInit::Default)
        .unwrap();
    let h = nn::act(&mut g, h, Activation::Relu);
    let h = nn::upsample_nearest2x(&mut g, h).unwrap();
    let y = nn::conv2d(&mut g, "dec", h, Conv { out: 1, k: 3, stride: 1, pad: 1, bias: true }, WeightInit::Default)
        .unwrap();
    let l = nn::mse_loss(&mut g, y, x, MseReduction::SumPerItemMeanOverBatch).unwrap();
    g.add_loss("mse", l);
    let l = nn::bce_with_logits(&mut g, y, x).unwrap();
    g.add_loss("bce", l);
    let m = nn::mse_loss(&mut g, y, x, MseReduction::Mean).unwrap();
    g.add_metric("mse_per_pixel", m);
    g
}

/// f32 kernels against f64 references through ≤ 6 kernels whose sums run over ≤ 128 terms: relative
/// round-off near 1e-5, so 1e-3 relative with a floor of 1e-5 of the largest element leaves a
/// margin while a missing term or a wrong index is off by O(1).
fn check(what: &str, got: &[f32], want: &[f64]) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(what, &to_f64(got), want, 1e-5 * scale + 1e-7, 1e-3);
}

#[test]
fn autoencoder_matches_composed_cpu_references_under_both_kernel_sets() {
    let gpu = gpu();
    let x = f32_exact(rand_vec(31, N * 64, 0.0, 1.0));
    for set in kernel_sets() {
        let mut graph = autoencoder(set);
        let specs: Vec<_> = graph.params.iter().collect();
        let store = ParamStore::new(gpu, &specs, 4).unwrap();
        // lr 0: the weights the gradients belong to are still in the store after the step.
        let adam = AdamConfig { lr: 0.0, ..Default::default() };
        let steps = compile(&mut graph, &store, Mode::Train { adam: &adam, end_of_step: true }).unwrap();
        let xb = gpu.upload_f32("x", &to_f32(&x)).unwrap();
        let mut exec = Executor::new(gpu, &graph, &steps, &store, &[("x", xb.whole())]).unwrap();
        exec.step(gpu, true).unwrap();
        let report = exec.poll_losses(gpu, true).unwrap().pop().unwrap();
        let value = |name: &str| exec.reported(&report, name).unwrap() as f64;
        let p = |name: &str| to_f64(&store.read(gpu, name).unwrap());
        let grad = |name: &str| store.read_grad(gpu, name).unwrap();
        let (ew, eb, dw, db) = (p("enc.weight"), p("enc.bias"), p("dec.weight"), p("dec.bias"));

        let c = conv::cpu_forward(&ENC, &x, &ew, &eb);
        let a = cpu_forward(Activation::Relu, &c);
        let u = upsample::cpu_forward(&UP, &a);
        let y = conv::cpu_forward(&DEC, &u, &dw, &db);
        let red = MseReduction::SumPerItemMeanOverBatch;
        let (l_mse, l_bce) = (mse::cpu_forward(&y, &x, N, red), bce_logits::cpu_forward(&y, &x, N, BceReduction::Mean));
        let per_pixel = mse::cpu_forward(&y, &x, N, MseReduction::Mean);
        // Sums of 128 f32 terms of size ≤ ~3 after two small convolutions: within 1e-5 relative.
        for (name, want) in [("mse", l_mse), ("bce", l_bce), ("mse_per_pixel", per_pixel)] {
            let got = value(name);
            assert!((got - want).abs() < 1e-5 * want.abs(), "{set:?} {name}: {got} vs {want}");
        }

        let dy: Vec<f64> = mse::cpu_backward(&y, &x, N, red)
            .iter()
            .zip(bce_logits::cpu_backward(&y, &x, N, BceReduction::Mean))
            .map(|(a, b)| a + b)
            .collect();
        check(&format!("{set:?} dec.weight grad"), &grad("dec.weight"), &conv::cpu_backward_weight(&DEC, &u, &dy));
        check(&format!("{set:?} dec.bias grad"), &grad("dec.bias"), &conv::cpu_bias_grad(N, 1, 8, 8, &dy));
        let da = upsample::cpu_backward_input(&UP, &conv::cpu_backward_input(&DEC, &dy, &dw));
        let dc = cpu_backward(Activation::Relu, &a, &da);
        check(&format!("{set:?} enc.weight grad"), &grad("enc.weight"), &conv::cpu_backward_weight(&ENC, &x, &dc));
        check(&format!("{set:?} enc.bias grad"), &grad("enc.bias"), &conv::cpu_bias_grad(N, 3, 4, 4, &dc));
    }
}

#[test]
fn a_target_that_needs_a_gradient_is_refused_by_bce_with_logits() {
    let mut g = Graph::new(KernelSet::Tiled);
    let logits = g.external("x", &[2, 3]);
    let t = g.param("t", &[2, 3], gputrain::graph::Init::Const(0.5)).unwrap();
    let l = nn::bce_with_logits(&mut g, logits, t).unwrap();
    g.add_loss("bce", l);
    let store = ParamStore::new(gpu(), &g.params.iter().collect::<Vec<_>>(), 0).unwrap();
    let adam = AdamConfig::default();
    let e = compile(&mut g, &store, Mode::Train { adam: &adam, end_of_step: true }).unwrap_err().to_string();
    assert!(e.contains("bce_with_logits") && e.contains("gradient"), "{e}");
    let mut g = Graph::new(KernelSet::Tiled);
    let (a, b) = (g.external("a", &[2, 3]), g.external("b", &[3, 2]));
    let e = nn::mse_loss(&mut g, a, b, MseReduction::Mean).unwrap_err().to_string();
    assert!(e.contains("mse_loss") && e.contains("differ"), "{e}");
    let e = nn::upsample_nearest2x(&mut g, a).unwrap_err().to_string();
    assert!(e.contains("upsample_nearest2x") && e.contains("NCHW"), "{e}");
}
