//! BCE with logits against the f64 reference: odd shapes, both reductions, soft and hard targets,
//! extreme logits (±100, ±1e4) that must stay finite, confident logits whose loss is all log1p, the
//! backward's weight and accumulate conventions, and a gradient check of the reference.

use crate::common;

use common::*;
use gputrain::ops::bce_logits;
use gputrain::ops::loss::{self, BceReduction};

const REDUCTIONS: [BceReduction; 2] = [BceReduction::Mean, BceReduction::SumPerItemMeanOverBatch];

/// (batch, per_item): a GAN's D output at batch 1, 4 and 128, images at batch 3, odd sizes, and a
/// large n for the strided reduction loop.
const SHAPES: [(usize, usize); 7] = [(1, 1), (4, 1), (128, 1), (3, 1024), (5, 257), (1, 3), (2, 70_001)];

const ULP: f64 = 1.0 / (1u64 << 24) as f64;

fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    to_f64(&to_f32(&v))
}

/// Relative rounding bound of the one-workgroup sum of n nonnegative terms (see tests/gpu/loss.rs).
fn sum_err(n: usize) -> f64 {
    (n.div_ceil(64) + 6) as f64 * ULP
}

/// Bound on |GPU − reference| of the forward loss. Per term: x·t and max(x, 0) − x·t round by an
/// ulp of |x| each, the final addition by an ulp of |ℓ| ≤ |x| + ln 2; log1p(u) is within 5 ulp of
/// ln 2 (s = u/(2+u) to 2 ulp, the series and the products 3 more) and WGSL's exp bound of
/// (3 + 2|x|) ulp of e^-|x| is at most 3 ulp of 1: 3|x| + 12 ulp in all. The terms are nonnegative,
/// so the sum's rounding is relative to the unscaled loss; the f32 scale and its product add 2 ulp.
fn forward_tol(x: &[f64], want: f64, scale: f64) -> f64 {
    let terms: f64 = x.iter().map(|v| (3.0 * v.abs() + 12.0) * ULP).sum();
    (sum_err(x.len()) + 2.0 * ULP) * want + scale * terms
}

/// Bound on the gradient: σ is within 3 ulp of 1 from exp (as above) and 2 from its division, the
/// difference with t rounds by an ulp of |σ − t| ≤ 1, and the f32 scale and two products by 3 more.
fn check_backward(what: &str, got: &[f64], want: &[f64], scale: f64) {
    assert_close(what, got, want, 6.0 * ULP * scale, 3.0 * ULP);
}

/// Soft targets, hard 0/1 labels, and smoothed labels (0.9), as a GAN's D sees them.
fn targets(kind: usize, seed: u64, n: usize) -> Vec<f64> {
    match kind {
        0 => rand_vec(seed, n, 0.0, 1.0),
        1 => rand_vec(seed, n, 0.0, 1.0).into_iter().map(|v| v.round()).collect(),
        _ => vec![0.9; n],
    }
}

#[test]
fn bce_logits_forward_and_backward_match_cpu() {
    for (k, (batch, per_item)) in SHAPES.into_iter().enumerate() {
        let n = batch * per_item;
        let x = f32_exact(rand_vec(k as u64, n, -12.0, 12.0));
        for kind in 0..3 {
            let t = f32_exact(targets(kind, 50 + k as u64, n));
            for red in REDUCTIONS {
                let what = format!("{batch}x{per_item} targets {kind} {red:?}");
                let scale = red.scale(batch, per_item);
                let out = run(
                    &bce_logits::forward(batch, per_item, red).unwrap(),
                    &[&x, &t],
                    &scalar_outputs(batch * per_item),
                );
                let want = bce_logits::cpu_forward(&x, &t, batch, red);
                assert_close(&format!("loss {what}"), &out[2], &[want], forward_tol(&x, want, scale), 0.0);
                let out = run(&bce_logits::backward(batch, per_item, red, 1.0, false).unwrap(), &[&x, &t], &[n]);
                check_backward(&format!("dx {what}"), &out[2], &bce_logits::cpu_backward(&x, &t, batch, red), scale);
            }
        }
    }
}

#[test]
fn extreme_logits_give_finite_loss_and_gradient() {
    let xs = [100.0, -100.0, 1e4, -1e4, 0.0, 30.0, -30.0, 88.0, -88.0];
    let ts = [0.0, 1.0, 0.9, 0.3];
    let x: Vec<f64> = ts.iter().flat_map(|_| xs).collect();
    let t = f32_exact(ts.iter().flat_map(|&t| [t; 9]).collect());
    let (batch, per_item) = (4, 9);
    for red in REDUCTIONS {
        let scale = red.scale(batch, per_item);
        let out =
            run(&bce_logits::forward(batch, per_item, red).unwrap(), &[&x, &t], &scalar_outputs(batch * per_item));
        let want = bce_logits::cpu_forward(&x, &t, batch, red);
        assert!(want.is_finite() && want > 1e4 * scale, "{want}");
        assert_close(&format!("extreme loss {red:?}"), &out[2], &[want], forward_tol(&x, want, scale), 0.0);
        let out = run(&bce_logits::backward(batch, per_item, red, 1.0, false).unwrap(), &[&x, &t], &[x.len()]);
        let want = bce_logits::cpu_backward(&x, &t, batch, red);
        assert!(want.iter().all(|g| g.is_finite() && g.abs() <= scale));
        check_backward(&format!("extreme dx {red:?}"), &out[2], &want, scale);
    }
    // Each term alone: a saturated logit costs exactly max(x, 0) − x·t, never inf or NaN.
    for (&x, &t) in x.iter().zip(&t) {
        let out = run(&bce_logits::forward(1, 1, BceReduction::Mean).unwrap(), &[&[x], &[t]], &scalar_outputs(1));
        let want = bce_logits::cpu_forward(&[x], &[t], 1, BceReduction::Mean);
        assert_close(&format!("term x={x} t={t}"), &out[2], &[want], forward_tol(&[x], want, 1.0), 0.0);
    }
}

#[test]
fn confident_correct_logits_keep_the_digits_of_log1p() {
    // x > 0 with t = 1 and x < 0 with t = 0 make max(x, 0) − x·t exactly 0, so every term is
    // log1p(e^-|x|) ∈ [2e-9, 3.4e-4]: log(1 + u) in f32 would return 0 below u = 6e-8 and lose
    // digits above. The bound is relative: WGSL's exp within 3 + 2·20 = 43 ulp, log1p within 5, and
    // the sum's rounding.
    let n = 1000;
    let mag = rand_vec(7, n, 8.0, 20.0);
    let x = f32_exact(mag.iter().enumerate().map(|(i, m)| if i % 2 == 0 { *m } else { -m }).collect());
    let t: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    let out = run(&bce_logits::forward(1, n, BceReduction::Mean).unwrap(), &[&x, &t], &scalar_outputs(n));
    let want = bce_logits::cpu_forward(&x, &t, 1, BceReduction::Mean);
    assert_close("confident loss", &out[2], &[want], (48.0 * ULP + sum_err(n)) * want, 0.0);
}

#[test]
fn bce_logits_backward_weight_and_accumulate() {
    let (batch, per_item) = (3, 17);
    let n = batch * per_item;
    let x = f32_exact(rand_vec(1, n, -5.0, 5.0));
    let t = f32_exact(rand_vec(2, n, 0.0, 1.0));
    let prior = f32_exact(rand_vec(3, n, -1.0, 1.0));
    let red = BceReduction::Mean;
    let out = run(&bce_logits::backward(batch, per_item, red, -0.5, true).unwrap(), &[&x, &t, &prior], &[]);
    let want: Vec<f64> =
        bce_logits::cpu_backward(&x, &t, batch, red).iter().zip(&prior).map(|(g, a)| a - 0.5 * g).collect();
    // The gradient term (≤ 1/51, within the bound above) plus one rounding of the sum, of size ≤ ~1.
    assert_close("accumulated dx", &out[2], &want, 2.0 * ULP, 3.0 * ULP);
}

#[test]
fn bce_logits_gradcheck_and_agrees_with_bce_of_the_sigmoid() {
    let (batch, per_item) = (3, 5);
    let n = batch * per_item;
    let x = rand_vec(4, n, -6.0, 6.0);
    for kind in 0..3 {
        let t = targets(kind, 5, n);
        for red in REDUCTIONS {
            let num = numeric_grad(&x, 1e-6, |x| bce_logits::cpu_forward(x, &t, batch, red));
            let ana = bce_logits::cpu_backward(&x, &t, batch, red);
            // f64 central differences with h = 1e-6 of a smooth function with |f'''| ≤ 0.1: ~1e-10.
            assert_close(&format!("gradcheck targets {kind} {red:?}"), &ana, &num, 1e-8, 1e-6);
            // Where σ(x) is far from 0 and 1 the stable form is BCELoss of the sigmoid, whose gradient
            // through σ' = σ(1 − σ) is the same σ − t.
            let p: Vec<f64> = x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
            let bce = loss::cpu_bce_forward(&p, &t, batch, red);
            let got = bce_logits::cpu_forward(&x, &t, batch, red);
            assert!((got - bce).abs() < 1e-10 * bce.abs(), "targets {kind} {red:?}: {got} vs {bce}");
            let chained: Vec<f64> =
                loss::cpu_bce_backward(&p, &t, batch, red).iter().zip(&p).map(|(g, p)| g * p * (1.0 - p)).collect();
            assert_close(&format!("chain rule targets {kind} {red:?}"), &ana, &chained, 1e-12, 1e-9);
        }
    }
}

#[test]
fn bce_logits_is_bit_identical_across_runs_and_refuses_bad_shapes() {
    let (batch, per_item) = (16, 1024);
    let n = batch * per_item;
    let x = rand_vec(1, n, -8.0, 8.0);
    let t = rand_vec(2, n, 0.0, 1.0);
    let calls = bce_logits::forward(batch, per_item, BceReduction::Mean).unwrap();
    let a = run(&calls, &[&x, &t], &scalar_outputs(n));
    let b = run(&calls, &[&x, &t], &scalar_outputs(n));
    assert_eq!(a[2][0].to_bits(), b[2][0].to_bits());
    let e = bce_logits::forward(4, 0, BceReduction::Mean).unwrap_err().to_string();
    assert!(e.contains("bce_logits_forward") && e.contains("per_item is 0"), "{e}");
    let e = bce_logits::backward(1 << 20, 1 << 12, BceReduction::Mean, 1.0, false).unwrap_err().to_string();
    assert!(e.contains("bce_logits_backward_input") && e.contains("2^32"), "{e}");
}
