//! Softmax cross-entropy (the classifier's loss): GPU against the f64 reference on several shapes,
//! finite-difference check of the reference gradient, large logits stay finite.

use crate::common;

use common::*;
use gputrain::ops::loss;

/// (rows, classes): one row, the classifier's 10 classes at batch 3 and 128, a class count that is
/// not a tile multiple, and more rows than the 64 reduction lanes.
const SHAPES: [(usize, usize); 5] = [(1, 10), (3, 10), (128, 10), (7, 3), (200, 17)];

fn labels(seed: u64, rows: usize, classes: usize) -> Vec<f64> {
    rand_vec(seed, rows, 0.0, classes as f64).into_iter().map(|v| v.floor()).collect()
}

#[test]
fn xent_forward_and_backward_match_cpu() {
    for (i, &(rows, classes)) in SHAPES.iter().enumerate() {
        let z = to_f64(&to_f32(&rand_vec(i as u64, rows * classes, -4.0, 4.0)));
        let t = labels(100 + i as u64, rows, classes);
        let got = run(&loss::xent_forward(rows, classes).unwrap(), &[&z, &t], &scalar_outputs(rows))[2][0];
        let want = loss::cpu_xent_forward(&z, &t, classes);
        // Per row: an f32 logsumexp of ≤ 17 terms (relative error ≤ ~20·2^-24 of values ≤ ~7), then an
        // ordered sum of ≤ 200 rows: 1e-5 relative to the mean loss (≥ ~0.5 here) covers both.
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{rows}x{classes}: {got} vs {want}");
        let d = run(&loss::xent_backward(rows, classes, false).unwrap(), &[&z, &t], &[rows * classes])[2].clone();
        // Each element is (softmax − onehot)/rows with softmax from f32 exp and log: ~1e-6 relative to 1/rows.
        assert_close(
            &format!("dz {rows}x{classes}"),
            &d,
            &loss::cpu_xent_backward(&z, &t, classes),
            1e-6 / rows as f64,
            1e-5,
        );
    }
}

#[test]
fn xent_backward_accumulates() {
    let (rows, classes) = (5, 10);
    let z = rand_vec(1, rows * classes, -2.0, 2.0);
    let t = labels(2, rows, classes);
    let prior = rand_vec(3, rows * classes, -1.0, 1.0);
    let calls = loss::xent_backward(rows, classes, true).unwrap();
    let got = run(&calls, &[&z, &t, &prior], &[])[2].clone();
    let want: Vec<f64> = loss::cpu_xent_backward(&z, &t, classes).iter().zip(&prior).map(|(a, b)| a + b).collect();
    assert_close("accumulated dz", &got, &want, 1e-6, 1e-5);
}

#[test]
fn xent_gradcheck() {
    let (rows, classes) = (4, 6);
    let z = rand_vec(7, rows * classes, -3.0, 3.0);
    let t = labels(8, rows, classes);
    let num = numeric_grad(&z, 1e-6, |z| loss::cpu_xent_forward(z, &t, classes));
    // f64 central differences with h = 1e-6 on a smooth function of logits in [−3, 3]: error ~1e-9.
    assert_close("xent gradcheck", &loss::cpu_xent_backward(&z, &t, classes), &num, 1e-8, 1e-6);
}

#[test]
fn huge_logits_stay_finite() {
    let z = vec![1000.0, -1000.0, 50.0, 999.0, 0.0, 0.0];
    let t = vec![1.0, 2.0];
    let out = run(&loss::xent_forward(2, 3).unwrap(), &[&z, &t], &scalar_outputs(2));
    let want = loss::cpu_xent_forward(&z, &t, 3);
    assert!(out[2][0].is_finite() && (out[2][0] - want).abs() < 1e-3 * want, "{} vs {want}", out[2][0]);
    let d = run(&loss::xent_backward(2, 3, false).unwrap(), &[&z, &t], &[6])[2].clone();
    assert!(d.iter().all(|v| v.is_finite()));
}
