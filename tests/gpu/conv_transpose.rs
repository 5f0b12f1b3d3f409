//! Transposed convolution (run on the conv2d kernels) against references written from its own
//! definition, the references against finite differences, accumulation, and shape errors.
use crate::common;

use common::*;
use common::{convt_shape as shape, sum_tol as tol};
use gputrain::ops::conv_transpose::{self as convt, ConvTranspose2dShape};

fn odd_shapes() -> Vec<ConvTranspose2dShape> {
    vec![
        shape(1, 3, 5, 5, 7, 3, 1, 1),
        shape(2, 7, 1, 5, 7, 4, 2, 1),
        shape(1, 5, 3, 3, 5, 4, 1, 0),
        shape(2, 3, 9, 4, 3, 3, 2, 0),
        shape(1, 2, 33, 4, 5, 3, 3, 2),
        shape(1, 1, 1, 1, 1, 4, 1, 0),
    ]
}

/// The models' transposed convolutions (README, "Checkpoints in PyTorch") at batch 2.
fn model_layers() -> Vec<(&'static str, ConvTranspose2dShape)> {
    vec![
        ("vae decoder.0", shape(2, 128, 64, 4, 4, 4, 2, 1)),
        ("vae decoder.3", shape(2, 64, 32, 8, 8, 4, 2, 1)),
        ("vae decoder.6", shape(2, 32, 1, 16, 16, 4, 2, 1)),
        ("gan generator.0", shape(2, 100, 256, 1, 1, 4, 1, 0)),
        ("gan generator.3", shape(2, 256, 128, 4, 4, 4, 2, 1)),
        ("gan generator.6", shape(2, 128, 64, 8, 8, 4, 2, 1)),
        ("gan generator.9", shape(2, 64, 1, 16, 16, 4, 2, 1)),
    ]
}

fn check_all(what: &str, s: &ConvTranspose2dShape, seed: u64) {
    let x = rand_vec(seed, s.x_len(), -1.0, 1.0);
    let w = rand_vec(seed + 1, s.w_len(), -1.0, 1.0);
    let b = rand_vec(seed + 2, s.cout, -1.0, 1.0);
    let dy = rand_vec(seed + 3, s.y_len(), -1.0, 1.0);
    // Terms per output element: each output pixel sums over (ci, kh, kw) at most.
    let k_out = s.cin * s.k * s.k + 1;

    let out = run(&convt::forward(s, true, false).unwrap(), &[&x, &w, &b], &[s.y_len()]);
    assert_close(&format!("{what} forward"), &out[3], &convt::cpu_forward(s, &x, &w, &b), tol(k_out), 1e-5);
    let out = run(&convt::forward(s, false, false).unwrap(), &[&x, &w], &[s.y_len()]);
    assert_close(&format!("{what} forward, no bias"), &out[2], &convt::cpu_forward(s, &x, &w, &[]), tol(k_out), 1e-5);

    let out = run(&convt::backward_input(s).unwrap(), &[&dy, &w], &[s.x_len()]);
    let want = convt::cpu_backward_input(s, &dy, &w);
    assert_close(&format!("{what} backward_input"), &out[2], &want, tol(s.cout * s.k * s.k), 1e-5);

    let out = run(&convt::backward_weight(s).unwrap(), &[&x, &dy], &[s.w_len()]);
    let want = convt::cpu_backward_weight(s, &x, &dy);
    assert_close(&format!("{what} backward_weight"), &out[2], &want, tol(s.batch * s.h * s.w), 1e-5);

    let out = run(&convt::bias_grad(s).unwrap(), &[&dy], &[s.cout]);
    let want = convt::cpu_bias_grad(s, &dy);
    assert_close(&format!("{what} bias_grad"), &out[1], &want, tol(s.batch * s.out_h() * s.out_w()), 1e-5);
}

#[test]
fn odd_shapes_match_cpu() {
    for (i, s) in odd_shapes().iter().enumerate() {
        check_all(&format!("{s:?}"), s, 10 * i as u64);
    }
}

#[test]
fn model_layers_match_cpu() {
    for (i, (name, s)) in model_layers().iter().enumerate() {
        check_all(name, s, 100 + 10 * i as u64);
    }
}

#[test]
fn accumulate_adds_to_the_output() {
    let s = shape(2, 5, 3, 4, 3, 4, 2, 1);
    let x = rand_vec(1, s.x_len(), -1.0, 1.0);
    let w = rand_vec(2, s.w_len(), -1.0, 1.0);
    let dy = rand_vec(3, s.y_len(), -1.0, 1.0);
    let plus = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>();

    let y0 = rand_vec(4, s.y_len(), -1.0, 1.0);
    let out = run(&convt::forward(&s, false, true).unwrap(), &[&x, &w, &y0], &[]);
    assert_close("forward", &out[2], &plus(&y0, &convt::cpu_forward(&s, &x, &w, &[])), tol(s.cin * 16 + 1), 1e-5);

    let dx0 = rand_vec(5, s.x_len(), -1.0, 1.0);
    let out = run(&convt::backward_input_with(&s, true).unwrap(), &[&dy, &w, &dx0], &[]);
    let want = plus(&dx0, &convt::cpu_backward_input(&s, &dy, &w));
    assert_close("backward_input", &out[2], &want, tol(s.cout * 16 + 1), 1e-5);

    let dw0 = rand_vec(6, s.w_len(), -1.0, 1.0);
    let out = run(&convt::backward_weight_with(&s, true).unwrap(), &[&x, &dy, &dw0], &[]);
    let want = plus(&dw0, &convt::cpu_backward_weight(&s, &x, &dy));
    assert_close("backward_weight", &out[2], &want, tol(s.batch * 12 + 1), 1e-5);

    let db0 = rand_vec(7, s.cout, -1.0, 1.0);
    let out = run(&convt::bias_grad_with(&s, true).unwrap(), &[&dy, &db0], &[]);
    let want = plus(&db0, &convt::cpu_bias_grad(&s, &dy));
    assert_close("bias_grad", &out[1], &want, tol(s.batch * s.out_h() * s.out_w() + 1), 1e-5);
}

#[test]
fn backward_references_pass_gradcheck() {
    for s in [shape(2, 3, 2, 3, 4, 4, 2, 1), shape(1, 2, 3, 3, 3, 3, 1, 1), shape(1, 2, 2, 2, 3, 3, 2, 0)] {
        let x = rand_vec(1, s.x_len(), -1.0, 1.0);
        let w = rand_vec(2, s.w_len(), -1.0, 1.0);
        let b = rand_vec(3, s.cout, -1.0, 1.0);
        let r = rand_vec(4, s.y_len(), -1.0, 1.0); // loss = dot(y, r), so dL/dy = r
                                                   // Linear in each argument: central differences are exact up to f64 rounding.
        let num = numeric_grad(&x, 1e-6, |x| dot(&convt::cpu_forward(&s, x, &w, &b), &r));
        assert_close(&format!("{s:?} dx"), &convt::cpu_backward_input(&s, &r, &w), &num, 1e-7, 1e-6);
        let num = numeric_grad(&w, 1e-6, |w| dot(&convt::cpu_forward(&s, &x, w, &b), &r));
        assert_close(&format!("{s:?} dw"), &convt::cpu_backward_weight(&s, &x, &r), &num, 1e-7, 1e-6);
        let num = numeric_grad(&b, 1e-6, |b| dot(&convt::cpu_forward(&s, &x, &w, b), &r));
        assert_close(&format!("{s:?} db"), &convt::cpu_bias_grad(&s, &r), &num, 1e-7, 1e-6);
    }
}

#[test]
fn bad_shapes_are_refused_naming_the_op() {
    let err = |r: anyhow::Result<Vec<gputrain::runtime::KernelCall>>| r.unwrap_err().to_string();
    let e = err(convt::forward(&shape(2, 4, 0, 4, 4, 4, 2, 1), true, false));
    assert!(e.contains("conv_transpose2d_forward") && e.contains("cout") && e.contains("is 0"), "{e}");
    let e = err(convt::backward_input(&shape(0, 4, 3, 4, 4, 4, 2, 1)));
    assert!(e.contains("conv_transpose2d_backward_input") && e.contains("batch"), "{e}");
    // 1x1 input, k 2, pad 1: the full 2x2 output loses 2 pixels per side.
    let e = err(convt::backward_weight(&shape(1, 2, 2, 1, 1, 2, 1, 1)));
    assert!(e.contains("conv_transpose2d_backward_weight") && e.contains("output size would be < 1"), "{e}");

    let e =
        ConvTranspose2dShape::from_dims("decoder.0", &[2, 128, 4, 4], &[64, 64, 4, 4], 2, 1).unwrap_err().to_string();
    assert!(e.contains("decoder.0") && e.contains("64 input channels") && e.contains("has 128"), "{e}");
    let e = ConvTranspose2dShape::from_dims("g", &[2, 100, 1, 1], &[100, 256, 4], 1, 0).unwrap_err().to_string();
    assert!(e.contains("4-d weight [Cin, Cout, k, k]"), "{e}");
    let s = ConvTranspose2dShape::from_dims("g", &[2, 100, 1, 1], &[100, 256, 4, 4], 1, 0).unwrap();
    assert_eq!((s.cout, s.out_h(), s.out_w()), (256, 4, 4));
}
