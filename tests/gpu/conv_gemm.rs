//! The convolution lowered to the matmul (ops::conv_gemm) against the f64 references: forward,
//! input gradient and weight gradient, with and without bias and accumulation, on odd shapes and the models' layers,
//! and the transposed convolution's use of it. The references are the ones the conv module (tests/gpu/conv.rs) checks
//! against finite differences, so these comparisons carry the gradient check over to this path.
use crate::common;

use common::*;
use common::{conv_shape as shape, sum_tol as tol};
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::ops::conv_gemm;
use gputrain::ops::conv_transpose::{self as convt, ConvTranspose2dShape};

/// Odd spatial sizes and channel counts off every tile size, strides 1-3, padding 0-2, kernels
/// 1-4, plus the models' lowered layers at batch 2.
fn shapes() -> Vec<Conv2dShape> {
    vec![
        shape(1, 3, 5, 5, 7, 3, 1, 1),
        shape(2, 7, 9, 6, 9, 3, 2, 0),
        shape(1, 3, 33, 9, 11, 3, 3, 2),
        shape(3, 5, 70, 7, 5, 4, 2, 1),
        shape(2, 17, 3, 4, 4, 4, 1, 0),
        shape(2, 6, 130, 5, 5, 1, 1, 0),
        shape(2, 64, 128, 16, 16, 4, 2, 1),
        shape(2, 128, 256, 8, 8, 4, 2, 1),
    ]
}

fn plus(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

#[test]
fn forward_matches_cpu() {
    for (i, s) in shapes().iter().enumerate() {
        let seed = 10 * i as u64;
        let x = rand_vec(seed, s.x_len(), -1.0, 1.0);
        let w = rand_vec(seed + 1, s.w_len(), -1.0, 1.0);
        let b = rand_vec(seed + 2, s.cout, -1.0, 1.0);
        let [col, c] = conv_gemm::scratch_lens(s);
        let k = s.cin * s.k * s.k;

        let out = run(&conv_gemm::forward(s, true, false).unwrap(), &[&x, &w, &b], &[col, c, s.y_len()]);
        assert_close(&format!("{s:?} forward"), &out[5], &conv::cpu_forward(s, &x, &w, &b), tol(k + 1), 1e-5);

        let out = run(&conv_gemm::forward(s, false, false).unwrap(), &[&x, &w], &[col, c, s.y_len()]);
        assert_close(&format!("{s:?} forward, no bias"), &out[4], &conv::cpu_forward(s, &x, &w, &[]), tol(k), 1e-5);

        let y0 = rand_vec(seed + 3, s.y_len(), -1.0, 1.0);
        // Scratch starts as garbage: the lowering must not read what a previous layer left there.
        let (g_col, g_c) = (rand_vec(1, col, 5.0, 6.0), rand_vec(2, c, 5.0, 6.0));
        let out = run(&conv_gemm::forward(s, true, true).unwrap(), &[&x, &w, &b, &g_col, &g_c, &y0], &[]);
        let want = plus(&y0, &conv::cpu_forward(s, &x, &w, &b));
        assert_close(&format!("{s:?} forward accumulate"), &out[5], &want, tol(k + 2), 1e-5);
    }
}

#[test]
fn backward_input_matches_cpu() {
    for (i, s) in shapes().iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let dy = rand_vec(seed, s.y_len(), -1.0, 1.0);
        let w = rand_vec(seed + 1, s.w_len(), -1.0, 1.0);
        let b = rand_vec(seed + 2, s.cin, -1.0, 1.0);
        let [col, c] = conv_gemm::scratch_lens(s);
        let k = s.cout * s.k * s.k;
        let want = conv::cpu_backward_input(s, &dy, &w);

        let out = run(&conv_gemm::backward_input(s, false, false).unwrap(), &[&dy, &w], &[col, c, s.x_len()]);
        assert_close(&format!("{s:?} backward_input"), &out[4], &want, tol(k), 1e-5);

        // The bias form adds b[ci] to every pixel of input channel ci.
        let out = run(&conv_gemm::backward_input(s, true, false).unwrap(), &[&dy, &w, &b], &[col, c, s.x_len()]);
        let plane = s.h * s.w;
        let biased: Vec<f64> = want.iter().enumerate().map(|(j, v)| v + b[(j / plane) % s.cin]).collect();
        assert_close(&format!("{s:?} backward_input + bias"), &out[5], &biased, tol(k + 1), 1e-5);

        let dx0 = rand_vec(seed + 3, s.x_len(), -1.0, 1.0);
        let (g_col, g_c) = (rand_vec(1, col, 5.0, 6.0), rand_vec(2, c, 5.0, 6.0));
        let out = run(&conv_gemm::backward_input(s, false, true).unwrap(), &[&dy, &w, &g_col, &g_c, &dx0], &[]);
        assert_close(&format!("{s:?} backward_input accumulate"), &out[4], &plus(&dx0, &want), tol(k + 1), 1e-5);
    }
}

#[test]
fn backward_weight_matches_cpu() {
    for (i, s) in shapes().iter().enumerate() {
        let seed = 300 + 10 * i as u64;
        let x = rand_vec(seed, s.x_len(), -1.0, 1.0);
        let dy = rand_vec(seed + 1, s.y_len(), -1.0, 1.0);
        let [col, c] = conv_gemm::scratch_lens(s);
        // Each weight's gradient sums one product per (image, output pixel).
        let k = s.batch * s.out_h() * s.out_w();
        let want = conv::cpu_backward_weight(s, &x, &dy);

        let out = run(&conv_gemm::backward_weight(s, false).unwrap(), &[&x, &dy], &[col, c, s.w_len()]);
        assert_close(&format!("{s:?} backward_weight"), &out[4], &want, tol(k), 1e-5);

        let dw0 = rand_vec(seed + 2, s.w_len(), -1.0, 1.0);
        let (g_col, g_c) = (rand_vec(1, col, 5.0, 6.0), rand_vec(2, c, 5.0, 6.0));
        let out = run(&conv_gemm::backward_weight(s, true).unwrap(), &[&x, &dy, &g_col, &g_c, &dw0], &[]);
        assert_close(&format!("{s:?} backward_weight accumulate"), &out[4], &plus(&dw0, &want), tol(k + 1), 1e-5);
    }
}

/// A transposed convolution runs its forward pass on the input-gradient lowering, its input
/// gradient on the forward lowering and its weight gradient on the view's (ops::conv_transpose);
/// all against the transposed references.
#[test]
fn transposed_convolution_through_the_lowering_matches_cpu() {
    let shapes = [
        ConvTranspose2dShape { batch: 2, cin: 256, cout: 128, h: 4, w: 4, k: 4, stride: 2, pad: 1 },
        ConvTranspose2dShape { batch: 3, cin: 5, cout: 7, h: 3, w: 5, k: 3, stride: 2, pad: 1 },
    ];
    for (i, t) in shapes.iter().enumerate() {
        let seed = 200 + 10 * i as u64;
        let s = t.conv_view();
        let [col, c] = conv_gemm::scratch_lens(&s);
        let x = rand_vec(seed, t.x_len(), -1.0, 1.0);
        let w = rand_vec(seed + 1, t.w_len(), -1.0, 1.0);
        let b = rand_vec(seed + 2, t.cout, -1.0, 1.0);
        let dy = rand_vec(seed + 3, t.y_len(), -1.0, 1.0);

        let out = run(&conv_gemm::backward_input(&s, true, false).unwrap(), &[&x, &w, &b], &[col, c, t.y_len()]);
        let k = t.cin * t.k * t.k + 1;
        assert_close(&format!("{t:?} forward"), &out[5], &convt::cpu_forward(t, &x, &w, &b), tol(k), 1e-5);

        let out = run(&conv_gemm::forward(&s, false, false).unwrap(), &[&dy, &w], &[col, c, t.x_len()]);
        let want = convt::cpu_backward_input(t, &dy, &w);
        assert_close(&format!("{t:?} backward_input"), &out[4], &want, tol(t.cout * t.k * t.k), 1e-5);

        let out = run(&convt::backward_weight_lowered(t, false).unwrap(), &[&x, &dy], &[col, c, t.w_len()]);
        let want = convt::cpu_backward_weight(t, &x, &dy);
        assert_close(&format!("{t:?} backward_weight"), &out[4], &want, tol(t.batch * t.h * t.w), 1e-5);
    }
}

#[test]
fn the_models_wide_layers_lower_and_the_narrow_ones_do_not() {
    let gan_d2 = shape(128, 64, 128, 16, 16, 4, 2, 1);
    let gan_d5 = shape(128, 128, 256, 8, 8, 4, 2, 1);
    let vae_e3 = shape(128, 32, 64, 16, 16, 4, 2, 1);
    let gan_d0 = shape(128, 1, 64, 32, 32, 4, 2, 1);
    assert!(conv_gemm::lowers_forward(&gan_d2) && conv_gemm::lowers_forward(&gan_d5));
    assert!(!conv_gemm::lowers_forward(&vae_e3) && !conv_gemm::lowers_forward(&gan_d0));
    assert!(conv_gemm::lowers_backward_input(&gan_d5));
    assert!(!conv_gemm::lowers_backward_input(&gan_d2) && !conv_gemm::lowers_backward_input(&vae_e3));
    assert!(conv_gemm::lowers_backward_weight(&gan_d2) && conv_gemm::lowers_backward_weight(&gan_d5));
    assert!(!conv_gemm::lowers_backward_weight(&vae_e3) && !conv_gemm::lowers_backward_weight(&gan_d0));
    let gan_g0 = ConvTranspose2dShape { batch: 128, cin: 100, cout: 256, h: 1, w: 1, k: 4, stride: 1, pad: 0 };
    assert!(convt::lowers_backward_weight(&gan_g0) && !convt::lowers_forward(&gan_g0));
    // A batch whose col would exceed the scratch cap stays on the direct kernels.
    assert!(!conv_gemm::lowers_forward(&Conv2dShape { batch: 4096, ..gan_d2 }));
}

#[test]
fn grids_too_large_are_refused_naming_the_op() {
    let s = shape(70_000, 1, 16, 2, 2, 1, 1, 0);
    let err = conv_gemm::backward_input(&s, false, false).unwrap_err().to_string();
    assert!(err.contains("planes_swap") || err.contains("col2im"), "{err}");
}
