//! MSE against the f64 reference in both reductions on odd shapes, the backward's weight and
//! accumulate conventions, a gradient check of the reference, and bit-identical sums.

use crate::common;

use common::*;
use gputrain::ops::mse::{self, MseReduction};

const REDUCTIONS: [MseReduction; 2] = [MseReduction::Mean, MseReduction::SumPerItemMeanOverBatch];

/// (batch, per_item): single values, the autoencoder's 32×32 images at batch 3, odd sizes, and a
/// large n for the strided reduction loop.
const SHAPES: [(usize, usize); 6] = [(1, 1), (4, 1), (3, 1024), (5, 257), (1, 3), (2, 70_001)];

fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    to_f64(&to_f32(&v))
}

/// Relative rounding bound of the one-workgroup sum of n nonnegative terms: ceil(n/64) sequential
/// additions per invocation and a 6-level tree, each rounding by at most 2^-24 of the total.
fn sum_err(n: usize) -> f64 {
    (n.div_ceil(64) + 6) as f64 * 2f64.powi(-24)
}

#[test]
fn mse_forward_matches_cpu() {
    for (k, (batch, per_item)) in SHAPES.into_iter().enumerate() {
        let n = batch * per_item;
        // Reconstructions in [0, 1] against pixels in [0, 1], and unbounded regression targets.
        let (lo, hi) = if k % 2 == 0 { (0.0, 1.0) } else { (-4.0, 4.0) };
        let p = f32_exact(rand_vec(k as u64, n, lo, hi));
        let t = f32_exact(rand_vec(40 + k as u64, n, lo, hi));
        for red in REDUCTIONS {
            let out = run(&mse::forward(batch, per_item, red).unwrap(), &[&p, &t], &scalar_outputs(batch * per_item));
            let want = mse::cpu_forward(&p, &t, batch, red);
            // Each d² is within 3 ulp (the difference's rounding, doubled by squaring, and the
            // product's); the terms are nonnegative so the sum's bound is relative to the loss; the
            // f32 scale and the final product add 2 ulp.
            let tol = (sum_err(n) + 5.0 * 2f64.powi(-24)) * want;
            assert_close(&format!("mse {batch}x{per_item} {red:?}"), &out[2], &[want], tol, 0.0);
        }
    }
}

#[test]
fn mse_backward_matches_cpu_and_accumulates() {
    for (k, (batch, per_item)) in SHAPES.into_iter().enumerate() {
        let n = batch * per_item;
        let p = f32_exact(rand_vec(k as u64 + 9, n, -2.0, 2.0));
        let t = f32_exact(rand_vec(60 + k as u64, n, -2.0, 2.0));
        for red in REDUCTIONS {
            let out = run(&mse::backward(batch, per_item, red, 1.0, false).unwrap(), &[&p, &t], &[n]);
            let want = mse::cpu_backward(&p, &t, batch, red);
            // The difference, the f32 scale, and two products each round once: 4 ulp.
            assert_close(&format!("dpred {batch}x{per_item} {red:?}"), &out[2], &want, 0.0, 4.0 * 2f64.powi(-24));
        }
    }
    let (batch, per_item) = (3, 17);
    let n = batch * per_item;
    let p = f32_exact(rand_vec(1, n, -1.0, 1.0));
    let t = f32_exact(rand_vec(2, n, -1.0, 1.0));
    let prior = f32_exact(rand_vec(3, n, -1.0, 1.0));
    let red = MseReduction::SumPerItemMeanOverBatch;
    let out = run(&mse::backward(batch, per_item, red, -0.5, true).unwrap(), &[&p, &t, &prior], &[]);
    let want: Vec<f64> = mse::cpu_backward(&p, &t, batch, red).iter().zip(&prior).map(|(g, a)| a - 0.5 * g).collect();
    // The gradient term (≤ 4/3, 4 ulp) plus one rounding of the addition of values up to ~2.
    assert_close("accumulated dpred", &out[2], &want, 4.0 * 2f64.powi(-24), 6.0 * 2f64.powi(-24));
}

#[test]
fn mse_gradcheck() {
    let (batch, per_item) = (3, 5);
    let n = batch * per_item;
    let p = rand_vec(4, n, -2.0, 2.0);
    let t = rand_vec(5, n, -2.0, 2.0);
    for red in REDUCTIONS {
        let ana = mse::cpu_backward(&p, &t, batch, red);
        // Quadratic: central differences are exact up to f64 rounding of O(1) sums over 2h = 2e-6.
        let num = numeric_grad(&p, 1e-6, |p| mse::cpu_forward(p, &t, batch, red));
        assert_close(&format!("mse gradcheck pred {red:?}"), &ana, &num, 1e-8, 1e-7);
        let num = numeric_grad(&t, 1e-6, |t| mse::cpu_forward(&p, t, batch, red));
        let neg: Vec<f64> = ana.iter().map(|g| -g).collect();
        assert_close(&format!("mse gradcheck target {red:?}"), &neg, &num, 1e-8, 1e-7);
    }
    // PyTorch's MSELoss() of [1, 2] against [0, 4] is (1 + 4)/2; summed per item over a batch of 1, 5.
    assert_eq!(mse::cpu_forward(&[1.0, 2.0], &[0.0, 4.0], 1, MseReduction::Mean), 2.5);
    assert_eq!(mse::cpu_forward(&[1.0, 2.0], &[0.0, 4.0], 1, MseReduction::SumPerItemMeanOverBatch), 5.0);
}

#[test]
fn mse_is_bit_identical_across_runs_and_refuses_bad_shapes() {
    let (batch, per_item) = (16, 1024);
    let n = batch * per_item;
    let p = rand_vec(1, n, 0.0, 1.0);
    let t = rand_vec(2, n, 0.0, 1.0);
    let calls = mse::forward(batch, per_item, MseReduction::SumPerItemMeanOverBatch).unwrap();
    let a = run(&calls, &[&p, &t], &scalar_outputs(n));
    let b = run(&calls, &[&p, &t], &scalar_outputs(n));
    assert_eq!(a[2][0].to_bits(), b[2][0].to_bits());
    let e = mse::forward(0, 5, MseReduction::Mean).unwrap_err().to_string();
    assert!(e.contains("mse_forward") && e.contains("batch is 0"), "{e}");
    let e = mse::backward(1 << 20, 1 << 12, MseReduction::Mean, 1.0, false).unwrap_err().to_string();
    assert!(e.contains("mse_backward_input") && e.contains("2^32"), "{e}");
}
