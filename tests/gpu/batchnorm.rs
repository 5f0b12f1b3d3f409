use crate::common;

use common::*;
use gputrain::ops::batchnorm::{self, BatchNormShape, BnAct};
use gputrain::runtime::KernelCall;

fn shape(n: usize, c: usize, h: usize, w: usize) -> BatchNormShape {
    BatchNormShape { n, c, h, w }
}

/// Odd shapes, the models' batchnorm layers at batch 2, and one large N·H·W for the strided loop.
fn shapes() -> Vec<BatchNormShape> {
    vec![
        shape(1, 3, 5, 7),    // batch 1, H·W > 1, odd sizes
        shape(4, 1, 3, 3),    // one channel
        shape(3, 3, 5, 5),    // odd everything
        shape(7, 33, 1, 1),   // BatchNorm1d over [N, C]
        shape(2, 32, 16, 16), // VAE encoder.1 / decoder.4
        shape(2, 64, 8, 8),   // VAE encoder.4 / decoder.1
        shape(2, 128, 4, 4),  // VAE encoder.7
        shape(5, 3, 17, 19),  // four splits per channel, the last one short
        shape(2, 256, 4, 4),  // DCGAN G.1, D.6
        shape(2, 128, 8, 8),  // DCGAN G.4, D.3
        shape(2, 64, 16, 16), // DCGAN G.7
        shape(8, 16, 32, 32), // 8192 values per channel: 128 strided steps per invocation
    ]
}

/// Every activation the kernels fuse; the tests give each shape each of them.
const ACTS: [BnAct; 3] = [BnAct::Identity, BnAct::Relu, BnAct::LeakyRelu(0.2)];

/// x, gamma, beta, running_mean, running_var.
type Inputs = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// Channel data with a nonzero mean so that the centring matters.
fn inputs(s: &BatchNormShape, seed: u64) -> Inputs {
    let x = rand_vec(seed, s.numel(), -1.0, 3.0);
    let gamma = rand_vec(seed + 1, s.c, 0.5, 1.5);
    let beta = rand_vec(seed + 2, s.c, -0.5, 0.5);
    let rm = rand_vec(seed + 3, s.c, -0.2, 0.2);
    let rv = rand_vec(seed + 4, s.c, 0.5, 1.5);
    (x, gamma, beta, rm, rv)
}

/// Relative error bound of one f32 channel sum: each of the 64 invocations adds ceil(M/64) terms in
/// sequence, then a 6-level tree, each addition rounding by at most 2^-24 (relative to Σ|terms|).
fn sum_err(m: usize) -> f64 {
    (m.div_ceil(64) + 6) as f64 * 2f64.powi(-24)
}

#[test]
fn train_forward_matches_cpu() {
    for (k, (s, act)) in shapes().into_iter().flat_map(|s| ACTS.map(|a| (s, a))).enumerate() {
        let (x, gamma, beta, rm, rv) = inputs(&s, 10 * k as u64);
        let calls = batchnorm::train_forward(&s, act).unwrap();
        let out = run(&calls, &[&x, &gamma, &beta, &rm, &rv], &[2 * s.c, s.numel(), batchnorm::forward_partials(&s)]);
        let x = to_f64(&to_f32(&x));
        let want = batchnorm::cpu_train_forward(&x, (&gamma, &beta), &rm, &rv, &s, act);
        let inv_std: Vec<f64> = want.var.iter().map(|v| 1.0 / (v + batchnorm::EPS as f64).sqrt()).collect();
        // The mean's sum has relative error sum_err(M) w.r.t. mean|x| <= 3; the variance's sum
        // likewise, plus the mean's error entering each centred square. x̂ is at most ~4 here, so y
        // carries a few times that; 8·sum_err plus a few f32 ulps of the final expression.
        let e = 8.0 * sum_err(s.per_channel()) + 1e-6;
        let what = format!("{s:?} {act:?}");
        assert_close(&format!("mean {what}"), &out[5][..s.c], &want.mean, 3.0 * e, 0.0);
        assert_close(&format!("inv_std {what}"), &out[5][s.c..], &inv_std, 0.0, e);
        assert_close(&format!("y {what}"), &out[6], &want.y, e, e);
        assert_close(&format!("running_mean {what}"), &out[3], &want.running_mean, 3.0 * e, e);
        assert_close(&format!("running_var {what}"), &out[4], &want.running_var, 0.0, e);
    }
}

#[test]
fn eval_forward_matches_cpu() {
    for (k, (s, act)) in shapes().into_iter().flat_map(|s| ACTS.map(|a| (s, a))).enumerate() {
        let (x, gamma, beta, rm, rv) = inputs(&s, 7 + k as u64);
        let out = run(&batchnorm::eval_forward(&s, act).unwrap(), &[&x, &gamma, &beta, &rm, &rv], &[s.numel()]);
        let want = batchnorm::cpu_eval_forward(&x, (&gamma, &beta), &rm, &rv, &s, act);
        // No reduction: a handful of f32 roundings (inverseSqrt is within 2 ulp) on values up to ~6.
        assert_close(&format!("eval y {s:?} {act:?}"), &out[5], &want, 2e-6, 2e-6);
    }
}

#[test]
fn backward_matches_cpu() {
    for (k, (s, act)) in shapes().into_iter().flat_map(|s| ACTS.map(|a| (s, a))).enumerate() {
        let (x, gamma, beta, rm, rv) = inputs(&s, 100 + k as u64);
        let dy = rand_vec(200 + k as u64, s.numel(), -1.0, 1.0);
        let calls = batchnorm::train_forward(&s, act).unwrap();
        let fwd = run(&calls, &[&x, &gamma, &beta, &rm, &rv], &[2 * s.c, s.numel(), batchnorm::forward_partials(&s)]);
        let (saved, y) = (&fwd[5], &fwd[6]);
        // y moves in front of the outputs: 0 x, 1 dy, 2 gamma, 3 saved, 4 y, 5 dgamma, 6 dbeta, 7 dx,
        // 8 partials.
        let calls: Vec<_> = remap(batchnorm::backward(&s, act).unwrap(), &[0, 1, 2, 3, 5, 6, 7, 4, 8]);
        let out = run(&calls, &[&x, &dy, &gamma, saved, y], &[s.c, s.c, s.numel(), batchnorm::backward_partials(&s)]);
        let x = to_f64(&to_f32(&x));
        let dy = to_f64(&to_f32(&dy));
        // The activation's derivative comes from the GPU's y: a value within rounding of 0 may have
        // either sign, and the kernel is tested on the mask it was given.
        let (dx, dgamma, dbeta) = batchnorm::cpu_backward(&x, &dy, &gamma, &s, (act, y));
        let m = s.per_channel() as f64;
        // dβ is a channel sum of M terms |dy| <= 1 (exact in f32): error <= sum_err(M)·M. dγ's terms
        // dy·x̂ have |x̂| <= 1.8 for uniform data and carry the saved statistics' error (a few
        // sum_err, see the forward test): 2·sum_err per unit of Σ|dy·x̂| <= 1.8·M, rounded up to 4M.
        let e = 2.0 * sum_err(s.per_channel()) + 1e-7;
        let what = format!("{s:?} {act:?}");
        assert_close(&format!("dbeta {what}"), &out[6], &dbeta, e * m, 0.0);
        assert_close(&format!("dgamma {what}"), &out[5], &dgamma, 4.0 * e * m, 0.0);
        // dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M): the sums' errors divided by M (e and 4e·1.8), times
        // γ·inv_std <= 1.5·0.9, plus a few f32 roundings of the O(1) result.
        assert_close(&format!("dx {what}"), &out[7], &dx, 12.0 * e, 1e-6);
    }
}

/// The call list with each call's operand indices sent through `map`.
fn remap(calls: Vec<KernelCall>, map: &[usize]) -> Vec<KernelCall> {
    calls
        .into_iter()
        .map(|mut c| {
            c.operands = c.operands.iter().map(|&i| map[i]).collect();
            c
        })
        .collect()
}

#[test]
fn backward_gradcheck() {
    let shapes = [shape(2, 3, 2, 3), shape(1, 2, 3, 1), shape(5, 4, 1, 1)];
    for (s, act) in shapes.into_iter().flat_map(|s| ACTS.map(|a| (s, a))) {
        let (x, gamma, beta, rm, rv) = inputs(&s, 42);
        let w = rand_vec(43, s.numel(), -1.0, 1.0);
        let fwd = |x: &[f64], g: &[f64], b: &[f64]| batchnorm::cpu_train_forward(x, (g, b), &rm, &rv, &s, act).y;
        let loss = |x: &[f64], g: &[f64], b: &[f64]| dot(&fwd(x, g, b), &w);
        let y = fwd(&x, &gamma, &beta);
        let (dx, dgamma, dbeta) = batchnorm::cpu_backward(&x, &w, &gamma, &s, (act, &y));
        // f64 central differences with h = 1e-6 on smooth functions of O(1) values: error ~1e-9. The
        // activations' kinks are at pre-activation 0, which no random input here comes within h of.
        let what = format!("{s:?} {act:?}");
        assert_close(&format!("dx {what}"), &dx, &numeric_grad(&x, 1e-6, |x| loss(x, &gamma, &beta)), 1e-7, 1e-6);
        let num = numeric_grad(&gamma, 1e-6, |g| loss(&x, g, &beta));
        assert_close(&format!("dgamma {what}"), &dgamma, &num, 1e-7, 1e-6);
        let num = numeric_grad(&beta, 1e-6, |b| loss(&x, &gamma, b));
        assert_close(&format!("dbeta {what}"), &dbeta, &num, 1e-7, 1e-6);
    }
}

#[test]
fn running_statistics_over_three_steps() {
    let s = shape(3, 5, 4, 3);
    let g = gpu();
    let (_, gamma, beta, rm0, rv0) = inputs(&s, 5);
    let f = |v: &[f64]| g.upload_f32("bn", &to_f32(v)).unwrap();
    let (gb, bb, rmb, rvb) = (f(&gamma), f(&beta), f(&rm0), f(&rv0));
    let saved = g.zeros("saved", 2 * s.c as u64 * 4).unwrap();
    let y = g.zeros("y", s.numel() as u64 * 4).unwrap();
    let part = g.zeros("partials", batchnorm::forward_partials(&s) as u64 * 4).unwrap();
    let (mut rm, mut rv) = (rm0, rv0);
    for step in 0..3 {
        // A different batch each step, with a drifting mean.
        let x = to_f64(&to_f32(&rand_vec(50 + step, s.numel(), -1.0 + step as f64, 2.0 + step as f64)));
        let xb = f(&x);
        let ops =
            [xb.whole(), gb.whole(), bb.whole(), rmb.whole(), rvb.whole(), saved.whole(), y.whole(), part.whole()];
        g.run(&batchnorm::train_forward(&s, BnAct::Identity).unwrap(), &ops).unwrap();
        let want = batchnorm::cpu_train_forward(&x, (&gamma, &beta), &rm, &rv, &s, BnAct::Identity);
        (rm, rv) = (want.running_mean, want.running_var);
    }
    // Three steps of f32 blending on top of the per-step statistic error (36 values per channel).
    let e = 3.0 * (8.0 * sum_err(s.per_channel()) + 1e-6);
    assert_close("running_mean", &to_f64(&g.read_f32(rmb.whole()).unwrap()), &rm, e, e);
    assert_close("running_var", &to_f64(&g.read_f32(rvb.whole()).unwrap()), &rv, e, e);
}

#[test]
fn bit_identical_across_runs() {
    let s = shape(8, 16, 32, 32);
    let (x, gamma, beta, rm, rv) = inputs(&s, 9);
    let dy = rand_vec(10, s.numel(), -1.0, 1.0);
    // One run of forward then backward over a combined operand list:
    // 0 x, 1 gamma, 2 beta, 3 running_mean, 4 running_var, 5 dy, 6 saved, 7 y, 8 dgamma, 9 dbeta, 10 dx,
    // 11 forward partials, 12 backward partials.
    let act = BnAct::LeakyRelu(0.2);
    let mut calls = remap(batchnorm::train_forward(&s, act).unwrap(), &[0, 1, 2, 3, 4, 6, 7, 11]);
    calls.extend(remap(batchnorm::backward(&s, act).unwrap(), &[0, 5, 1, 6, 8, 9, 10, 7, 12]));
    let ins: Vec<Vec<f32>> = [&x, &gamma, &beta, &rm, &rv, &dy].iter().map(|v| to_f32(v)).collect();
    let refs: Vec<&[f32]> = ins.iter().map(|v| v.as_slice()).collect();
    let (fp, bp) = (batchnorm::forward_partials(&s), batchnorm::backward_partials(&s));
    let go = || run_f32(&calls, &refs, &[2 * s.c, s.numel(), s.c, s.c, s.numel(), fp, bp]);
    let (a, b) = (go(), go());
    for i in 3..a.len() {
        let same = a[i].iter().zip(&b[i]).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same, "operand {i} differs between two identical runs");
    }
}

#[test]
fn bad_shapes_are_refused() {
    let e = batchnorm::train_forward(&shape(2, 0, 3, 3), BnAct::Identity).unwrap_err().to_string();
    assert!(e.contains("batchnorm_forward") && e.contains("c is 0"), "{e}");
    let e = batchnorm::train_forward(&shape(1, 4, 1, 1), BnAct::Relu).unwrap_err().to_string();
    assert!(e.contains("more than 1 value per channel"), "{e}");
    // Evaluation of a single value per channel is fine.
    assert!(batchnorm::eval_forward(&shape(1, 4, 1, 1), BnAct::Identity).is_ok());
    let e = batchnorm::backward(&shape(1 << 16, 1 << 16, 2, 1), BnAct::Identity).unwrap_err().to_string();
    assert!(e.contains("2^32"), "{e}");
}
