//! Whole nets recorded with the graph: the executor's gradients equal the same nets composed by hand
//! from the CPU references; weight sharing accumulates, frozen parameters stay put; a toy problem
//! trains.

use crate::common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, Conv, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::batchnorm::{self, BatchNormShape, BnAct};
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::ops::conv_transpose::{self, ConvTranspose2dShape};
use gputrain::ops::elementwise::{cpu_backward, cpu_forward, Activation};
use gputrain::ops::loss::{self, BceReduction};
use gputrain::ops::matmul::{self as mm};
use gputrain::runtime::GpuBuffer;

/// f32 kernels against f64 references: each gradient is a chain of ≤ 8 kernels whose sums run over
/// at most a few hundred terms, so relative round-off stays near 1e-5; 1e-3 relative plus an absolute
/// floor of 1e-5 of the gradient's largest element leaves a margin of ~10× without hiding a wrong term
/// (a missing accumulation or a wrong transpose changes gradients by O(1) relative).
fn check(what: &str, got: &[f32], want: &[f64]) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(what, &to_f64(got), want, 1e-5 * scale + 1e-7, 1e-3);
}

struct Built {
    graph: Graph,
    store: ParamStore,
    exec: Executor,
    _inputs: Vec<GpuBuffer>,
}

/// Compiles `graph` for training with `adam` and binds `inputs` (name, f64 data) as externals.
fn build(mut graph: Graph, seed: u64, adam: &AdamConfig, inputs: &[(&str, Vec<f64>)]) -> Built {
    let g = gpu();
    let specs: Vec<_> = graph.params.iter().collect();
    let store = ParamStore::new(g, &specs, seed).unwrap();
    let steps = compile(&mut graph, &store, Mode::Train { adam, end_of_step: true }).unwrap();
    let bufs: Vec<GpuBuffer> = inputs.iter().map(|(n, d)| g.upload_f32(n, &to_f32(d)).unwrap()).collect();
    let ext: Vec<_> = inputs.iter().zip(&bufs).map(|((n, _), b)| (*n, b.whole())).collect();
    let exec = Executor::new(g, &graph, &steps, &store, &ext).unwrap();
    Built { graph, store, exec, _inputs: bufs }
}

impl Built {
    fn p(&self, name: &str) -> Vec<f64> {
        to_f64(&self.store.read(gpu(), name).unwrap())
    }
    fn grad(&self, name: &str) -> Vec<f32> {
        self.store.read_grad(gpu(), name).unwrap()
    }
    fn step_losses(&mut self) -> Vec<f32> {
        self.exec.step(gpu(), true).unwrap();
        self.exec.poll_losses(gpu(), true).unwrap().pop().unwrap().values
    }
}

const B: usize = 5;
const IN: usize = 7;
const HID: usize = 6;
const OUT: usize = 3;

/// Two batches through the same two linear layers (as a discriminator sees real and fake data), each
/// with a mean BCE loss: every weight is used twice, so its gradient is an accumulation.
fn mlp(freeze_fc2: bool) -> Graph {
    let mut g = Graph::new(common::gpu().kernel_set);
    for k in 0..2 {
        let x = g.external(&format!("x{k}"), &[B, IN]);
        let t = g.external(&format!("t{k}"), &[B, OUT]);
        let h = nn::linear(&mut g, "fc1", x, HID, WeightInit::Default).unwrap();
        let h = nn::act(&mut g, h, Activation::LeakyRelu(0.2));
        let h = nn::linear(&mut g, "fc2", h, OUT, WeightInit::Default).unwrap();
        let p = nn::act(&mut g, h, Activation::Sigmoid);
        let l = nn::bce(&mut g, p, t, BceReduction::Mean).unwrap();
        g.add_loss(&format!("bce{k}"), l);
    }
    if freeze_fc2 {
        g.freeze("fc2.");
    }
    g
}

fn mlp_inputs() -> Vec<(&'static str, Vec<f64>)> {
    let t = |seed| rand_vec(seed, B * OUT, 0.0, 1.0).iter().map(|v| v.round()).collect::<Vec<_>>();
    vec![("x0", rand_vec(1, B * IN, -2.0, 2.0)), ("t0", t(2)), ("x1", rand_vec(3, B * IN, -2.0, 2.0)), ("t1", t(4))]
}

/// CPU loss and gradients (fc1.w, fc1.b, fc2.w, fc2.b) of the MLP, composed from the references.
fn mlp_cpu(w1: &[f64], b1: &[f64], w2: &[f64], b2: &[f64], inputs: &[(&str, Vec<f64>)]) -> (f64, [Vec<f64>; 4]) {
    let mut grads = [vec![0.0; HID * IN], vec![0.0; HID], vec![0.0; OUT * HID], vec![0.0; OUT]];
    let mut total = 0.0;
    let lrelu = Activation::LeakyRelu(0.2);
    for k in 0..2 {
        let (x, t) = (&inputs[2 * k].1, &inputs[2 * k + 1].1);
        let a = cpu_forward(lrelu, &mm::cpu_linear_forward(x, w1, b1, B, IN, HID));
        let p = cpu_forward(Activation::Sigmoid, &mm::cpu_linear_forward(&a, w2, b2, B, HID, OUT));
        total += loss::cpu_bce_forward(&p, t, B, BceReduction::Mean);
        let dp = loss::cpu_bce_backward(&p, t, B, BceReduction::Mean);
        let dh2 = cpu_backward(Activation::Sigmoid, &p, &dp);
        let da = mm::cpu_linear_backward_input(&dh2, w2, B, HID, OUT);
        let dh1 = cpu_backward(lrelu, &a, &da);
        let parts = [
            mm::cpu_linear_backward_weight(&dh1, x, B, IN, HID),
            mm::cpu_bias_grad(&dh1, B, HID),
            mm::cpu_linear_backward_weight(&dh2, &a, B, HID, OUT),
            mm::cpu_bias_grad(&dh2, B, OUT),
        ];
        for (g, p) in grads.iter_mut().zip(parts) {
            g.iter_mut().zip(p).for_each(|(g, p)| *g += p);
        }
    }
    (total, grads)
}

#[test]
fn mlp_with_shared_weights_matches_composed_cpu_references() {
    // lr 0: the weights the gradients belong to are still in the store after the step.
    let adam = AdamConfig { lr: 0.0, ..Default::default() };
    let inputs = mlp_inputs();
    let mut b = build(mlp(false), 5, &adam, &inputs);
    let l = b.step_losses();
    let (w1, b1, w2, b2) = (b.p("fc1.weight"), b.p("fc1.bias"), b.p("fc2.weight"), b.p("fc2.bias"));
    let (loss, [dw1, db1, dw2, db2]) = mlp_cpu(&w1, &b1, &w2, &b2, &inputs);
    let got = (l[0] + l[1]) as f64;
    assert!((got - loss).abs() < 1e-5 * (1.0 + loss.abs()), "loss {got} vs {loss}");
    check("fc1.weight grad", &b.grad("fc1.weight"), &dw1);
    check("fc1.bias grad", &b.grad("fc1.bias"), &db1);
    check("fc2.weight grad", &b.grad("fc2.weight"), &dw2);
    check("fc2.bias grad", &b.grad("fc2.bias"), &db2);
}

#[test]
fn frozen_parameters_pass_gradients_through_but_do_not_move() {
    let adam = AdamConfig { lr: 0.01, ..Default::default() };
    let inputs = mlp_inputs();
    let mut b = build(mlp(true), 5, &adam, &inputs);
    let before: Vec<_> = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].map(|n| b.p(n)).into();
    b.step_losses();
    let after: Vec<_> = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].map(|n| b.p(n)).into();
    assert_ne!(before[0], after[0], "fc1 trains");
    assert_ne!(before[1], after[1], "fc1 trains");
    assert_eq!(before[2], after[2], "frozen fc2.weight moved");
    assert_eq!(before[3], after[3], "frozen fc2.bias moved");
    // The gradient reaching fc1 went through the frozen fc2, computed at the pre-step weights.
    let (_, [dw1, db1, ..]) = mlp_cpu(&before[0], &before[1], &before[2], &before[3], &inputs);
    check("fc1.weight grad through frozen fc2", &b.grad("fc1.weight"), &dw1);
    check("fc1.bias grad through frozen fc2", &b.grad("fc1.bias"), &db1);
    assert!(!b.graph.tensors.iter().any(|t| t.name == "fc2.weight.grad"), "a gradient for frozen fc2 was planned");
}

#[test]
fn toy_classification_problem_trains() {
    // Labels are a fixed linear rule of the inputs, so the MLP can fit them: with Adam (lr 0.05) the
    // summed BCE of the two batches (≈ 1.39 at chance) must fall below a third of its start in 40 steps.
    let mut inputs = mlp_inputs();
    for k in 0..2 {
        let x = inputs[2 * k].1.clone();
        inputs[2 * k + 1].1 =
            (0..B * OUT).map(|i| (x[(i / OUT) * IN + i % OUT] > x[(i / OUT) * IN + 3]) as u8 as f64).collect();
    }
    let adam = AdamConfig { lr: 0.05, ..Default::default() };
    let mut b = build(mlp(false), 9, &adam, &inputs);
    let losses: Vec<f32> = (0..40).map(|_| b.step_losses().iter().sum()).collect();
    assert!(losses[39] < losses[0] / 3.0, "loss went from {} to {}", losses[0], losses[39]);
}

// A VAE in miniature: conv → BN → ReLU → flatten → (μ, logσ²) linears → reparameterise → linear →
// ReLU → unflatten → conv-transpose → sigmoid, with per-image BCE against the input plus KL. μ and
// logσ² each feed two ops and x feeds the encoder and the loss.
const N: usize = 4;
const Z: usize = 2;
const CONV: Conv2dShape = Conv2dShape { batch: N, cin: 1, cout: 3, h: 8, w: 8, k: 4, stride: 2, pad: 1 };
const BN: BatchNormShape = BatchNormShape { n: N, c: 3, h: 4, w: 4 };
const DEC: ConvTranspose2dShape =
    ConvTranspose2dShape { batch: N, cin: 3, cout: 1, h: 4, w: 4, k: 4, stride: 2, pad: 1 };
const FLAT: usize = 3 * 4 * 4;

fn mini_vae() -> Graph {
    let mut g = Graph::new(common::gpu().kernel_set);
    let x = g.external("x", &[N, 1, 8, 8]);
    let eps = g.external("eps", &[N, Z]);
    let h = nn::conv2d(&mut g, "enc", x, Conv { out: 3, k: 4, stride: 2, pad: 1, bias: true }, WeightInit::Default)
        .unwrap();
    let h = nn::batchnorm(&mut g, "bn", h, true, WeightInit::Dcgan).unwrap();
    let h = nn::act(&mut g, h, Activation::Relu);
    let flat = g.view(h, &[N, FLAT]).unwrap();
    let mu = nn::linear(&mut g, "mu", flat, Z, WeightInit::Default).unwrap();
    let logvar = nn::linear(&mut g, "logvar", flat, Z, WeightInit::Default).unwrap();
    let z = nn::reparameterize(&mut g, mu, logvar, eps).unwrap();
    let d = nn::linear(&mut g, "dec_fc", z, FLAT, WeightInit::Default).unwrap();
    let d = nn::act(&mut g, d, Activation::Relu);
    let d = g.view(d, &[N, 3, 4, 4]).unwrap();
    let d = nn::conv_transpose2d(
        &mut g,
        "dec",
        d,
        Conv { out: 1, k: 4, stride: 2, pad: 1, bias: true },
        WeightInit::Default,
    )
    .unwrap();
    let p = nn::act(&mut g, d, Activation::Sigmoid);
    let recon = nn::bce_sum_per_image(&mut g, p, x).unwrap();
    let kl = nn::kl_divergence(&mut g, mu, logvar).unwrap();
    g.add_loss("recon", recon);
    g.add_loss("kl", kl);
    g
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

#[test]
fn conv_vae_in_miniature_matches_composed_cpu_references() {
    let adam = AdamConfig { lr: 0.0, ..Default::default() };
    let x = rand_vec(21, N * 64, 0.0, 1.0);
    let eps = rand_vec(22, N * Z, -1.5, 1.5);
    let mut b = build(mini_vae(), 8, &adam, &[("x", x.clone()), ("eps", eps.clone())]);
    let l = b.step_losses();
    let p = |n: &str| b.p(n);
    let (cw, cb, gamma, beta) = (p("enc.weight"), p("enc.bias"), p("bn.weight"), p("bn.bias"));
    let (mw, mb, lw, lb, fw, fb, dw, db) = (
        p("mu.weight"),
        p("mu.bias"),
        p("logvar.weight"),
        p("logvar.bias"),
        p("dec_fc.weight"),
        p("dec_fc.bias"),
        p("dec.weight"),
        p("dec.bias"),
    );

    let c = conv::cpu_forward(&CONV, &x, &cw, &cb);
    let bn = batchnorm::cpu_train_forward(&c, (&gamma, &beta), &[0.0; 3], &[1.0; 3], &BN, BnAct::Identity);
    let a = cpu_forward(Activation::Relu, &bn.y);
    let mu = mm::cpu_linear_forward(&a, &mw, &mb, N, FLAT, Z);
    let lv = mm::cpu_linear_forward(&a, &lw, &lb, N, FLAT, Z);
    let z = loss::cpu_reparam_forward(&mu, &lv, &eps);
    let f = cpu_forward(Activation::Relu, &mm::cpu_linear_forward(&z, &fw, &fb, N, Z, FLAT));
    let pr = cpu_forward(Activation::Sigmoid, &conv_transpose::cpu_forward(&DEC, &f, &dw, &db));
    let recon = loss::cpu_bce_forward(&pr, &x, N, BceReduction::SumPerItemMeanOverBatch);
    let kl = loss::cpu_kl_forward(&mu, &lv, N);
    // Losses are sums of 256 (recon) and 8 (KL) f32 terms of size ≤ ~5: within 1e-5 relative.
    assert!(((l[0] as f64) - recon).abs() < 1e-5 * recon.abs(), "recon {} vs {recon}", l[0]);
    assert!(((l[1] as f64) - kl).abs() < 1e-5 * (1.0 + kl.abs()), "kl {} vs {kl}", l[1]);

    let dpr = loss::cpu_bce_backward(&pr, &x, N, BceReduction::SumPerItemMeanOverBatch);
    let dd = cpu_backward(Activation::Sigmoid, &pr, &dpr);
    check("dec.weight grad", &b.grad("dec.weight"), &conv_transpose::cpu_backward_weight(&DEC, &f, &dd));
    check("dec.bias grad", &b.grad("dec.bias"), &conv_transpose::cpu_bias_grad(&DEC, &dd));
    let df = cpu_backward(Activation::Relu, &f, &conv_transpose::cpu_backward_input(&DEC, &dd, &dw));
    check("dec_fc.weight grad", &b.grad("dec_fc.weight"), &mm::cpu_linear_backward_weight(&df, &z, N, Z, FLAT));
    check("dec_fc.bias grad", &b.grad("dec_fc.bias"), &mm::cpu_bias_grad(&df, N, FLAT));
    let dz = mm::cpu_linear_backward_input(&df, &fw, N, Z, FLAT);
    let (dmu_r, dlv_r) = loss::cpu_reparam_backward(&lv, &eps, &dz);
    let (dmu_k, dlv_k) = loss::cpu_kl_backward(&mu, &lv, N);
    let (dmu, dlv) = (add(&dmu_r, &dmu_k), add(&dlv_r, &dlv_k));
    check("mu.weight grad", &b.grad("mu.weight"), &mm::cpu_linear_backward_weight(&dmu, &a, N, FLAT, Z));
    check("mu.bias grad", &b.grad("mu.bias"), &mm::cpu_bias_grad(&dmu, N, Z));
    check("logvar.weight grad", &b.grad("logvar.weight"), &mm::cpu_linear_backward_weight(&dlv, &a, N, FLAT, Z));
    check("logvar.bias grad", &b.grad("logvar.bias"), &mm::cpu_bias_grad(&dlv, N, Z));
    let da = add(
        &mm::cpu_linear_backward_input(&dmu, &mw, N, FLAT, Z),
        &mm::cpu_linear_backward_input(&dlv, &lw, N, FLAT, Z),
    );
    let dbn = cpu_backward(Activation::Relu, &a, &da);
    let (dc, dgamma, dbeta) = batchnorm::cpu_backward(&c, &dbn, &gamma, &BN, (BnAct::Identity, &[]));
    check("bn.weight grad", &b.grad("bn.weight"), &dgamma);
    check("bn.bias grad", &b.grad("bn.bias"), &dbeta);
    check("enc.weight grad", &b.grad("enc.weight"), &conv::cpu_backward_weight(&CONV, &x, &dc));
    // A bias before batchnorm has an exactly zero gradient (BN removes the channel mean), so the GPU
    // value is pure cancellation error: bounded by f32 ε times the sum of the terms' magnitudes.
    let terms = conv::cpu_bias_grad(N, 3, 4, 4, &dc.iter().map(|v| v.abs()).collect::<Vec<_>>());
    let atol = 1e-6 * terms.iter().fold(0.0f64, |m, v| m.max(*v));
    assert_close("enc.bias grad", &to_f64(&b.grad("enc.bias")), &conv::cpu_bias_grad(N, 3, 4, 4, &dc), atol, 0.0);
    // Running statistics moved from (0, 1) with momentum 0.1.
    assert_close("bn.running_mean", &b.p("bn.running_mean"), &bn.running_mean, 1e-6, 1e-4);
    assert_close("bn.running_var", &b.p("bn.running_var"), &bn.running_var, 1e-6, 1e-4);
}

// Layers wide enough to run through the matmul lowering (ops::conv_gemm) on every pass the graph
// records: conv forward and input gradient, and the transposed conv's forward and input gradient.
const WIDE: Conv2dShape = Conv2dShape { batch: 2, cin: 64, cout: 256, h: 4, w: 4, k: 4, stride: 2, pad: 1 };
const WIDE_T: ConvTranspose2dShape =
    ConvTranspose2dShape { batch: 2, cin: 256, cout: 64, h: 2, w: 2, k: 4, stride: 2, pad: 1 };

#[test]
fn lowered_convolutions_match_composed_cpu_references() {
    use gputrain::ops::conv_gemm;
    for s in [WIDE, WIDE_T.conv_view()] {
        let lowers = [conv_gemm::lowers_forward(&s), conv_gemm::lowers_backward_input(&s)];
        assert!(lowers[0] && lowers[1] && conv_gemm::lowers_backward_weight(&s), "{s:?}");
    }
    // x → conv → tanh → conv-transpose → conv-transpose's bias → tanh → Σ; x needs a gradient too
    // (it is a parameter here), so every input-gradient path runs.
    let mut g = Graph::new(common::gpu().kernel_set);
    let x = g.param("x", &[2, 64, 4, 4], gputrain::graph::Init::Uniform(1.0)).unwrap();
    let h = nn::conv2d(&mut g, "c", x, Conv { out: 256, k: 4, stride: 2, pad: 1, bias: false }, WeightInit::Default)
        .unwrap();
    let h = nn::act(&mut g, h, Activation::Tanh);
    let y = nn::conv_transpose2d(
        &mut g,
        "t",
        h,
        Conv { out: 64, k: 4, stride: 2, pad: 1, bias: true },
        WeightInit::Default,
    )
    .unwrap();
    let y = nn::act(&mut g, y, Activation::Tanh);
    let loss = nn::sum_loss(&mut g, y);
    g.add_loss("sum", loss);
    let adam = AdamConfig { lr: 0.0, ..Default::default() };
    let mut b = build(g, 3, &adam, &[]);
    let l = b.step_losses()[0] as f64;
    let (x, cw, tw, tb) = (b.p("x"), b.p("c.weight"), b.p("t.weight"), b.p("t.bias"));
    let h = cpu_forward(Activation::Tanh, &conv::cpu_forward(&WIDE, &x, &cw, &[]));
    let y = cpu_forward(Activation::Tanh, &conv_transpose::cpu_forward(&WIDE_T, &h, &tw, &tb));
    let want: f64 = y.iter().sum();
    // 2048 terms of magnitude ≤ 1 in f32: within 1e-4 absolute.
    assert!((l - want).abs() < 1e-4 * (1.0 + want.abs()), "loss {l} vs {want}");
    let dy = cpu_backward(Activation::Tanh, &y, &vec![1.0; y.len()]);
    check("t.weight grad", &b.grad("t.weight"), &conv_transpose::cpu_backward_weight(&WIDE_T, &h, &dy));
    check("t.bias grad", &b.grad("t.bias"), &conv_transpose::cpu_bias_grad(&WIDE_T, &dy));
    let dh = cpu_backward(Activation::Tanh, &h, &conv_transpose::cpu_backward_input(&WIDE_T, &dy, &tw));
    check("c.weight grad", &b.grad("c.weight"), &conv::cpu_backward_weight(&WIDE, &x, &dh));
    check("x grad", &b.grad("x"), &conv::cpu_backward_input(&WIDE, &dh, &cw));
    // Those four are every trainable parameter of the net: no gradient went unchecked.
    let mut trainable: Vec<&str> = b.graph.params.iter().filter(|p| p.trainable).map(|p| p.name.as_str()).collect();
    trainable.sort_unstable();
    assert_eq!(trainable, ["c.weight", "t.bias", "t.weight", "x"]);
}

#[test]
fn liveness_planning_shares_memory_between_tensors() {
    // The mini VAE's plan packs activations and gradients into one arena far smaller than their sum.
    let adam = AdamConfig::default();
    let x = rand_vec(21, N * 64, 0.0, 1.0);
    let eps = rand_vec(22, N * Z, -1.5, 1.5);
    let b = build(mini_vae(), 8, &adam, &[("x", x), ("eps", eps)]);
    let transient_bytes: u64 = b
        .graph
        .tensors
        .iter()
        .filter(|t| t.role == gputrain::graph::Role::Transient)
        .map(|t| t.bytes().next_multiple_of(256))
        .sum();
    assert!(b.exec.arena_bytes < transient_bytes, "arena {} vs {} unshared", b.exec.arena_bytes, transient_bytes);
}
