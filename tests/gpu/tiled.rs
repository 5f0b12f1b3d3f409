//! The tiled kernel set against the same f64 CPU references as the lavapipe set (whose references
//! pass the finite-difference checks in the matmul, conv and conv_transpose tests): every tile
//! configuration on shapes that are not multiples of any tile dimension, batch 1, K below BK, the
//! models' layers, the accumulate flags, split-K, and the dense (1×1 output) convolutions.
use crate::common;

use crate::conv::{data, model_layers};
use crate::matmul::{check_gemm, VARIANTS};
use common::*;
use common::{conv_shape as shape, convt_shape, sum_tol as tol};
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::ops::conv_transpose::{self, ConvTranspose2dShape};
use gputrain::ops::gemm::{self, Tile, TILES};
use gputrain::ops::matmul::{self, MatmulShape};
use gputrain::ops::passes::{self, Pass};
use gputrain::ops::{bias_grad, conv_tiled};
use gputrain::runtime::KernelSet::Tiled;

fn check_matmul(tile: Option<Tile>, s: MatmulShape, bias: bool, accumulate: bool, seed: u64) {
    let calls = match tile {
        Some(t) => gemm::matmul_with(t, s, bias, accumulate),
        None => gemm::matmul(s, bias, accumulate),
    };
    let what = format!("{tile:?} {s:?} bias={bias} accumulate={accumulate}");
    check_gemm(&what, &calls.unwrap(), &[], s, bias, accumulate, seed);
}

/// The pass a model records for `s` (K split when its output is small), or `tile` with about
/// `splits` splits.
fn check_pass(plan: Option<(Tile, usize)>, s: MatmulShape, bias: bool, accumulate: bool, seed: u64) -> usize {
    let pass = match plan {
        Some((tile, splits)) => gemm::matmul_split(tile, splits, s, bias, accumulate),
        None => gemm::matmul_pass(s, bias, accumulate),
    }
    .unwrap();
    let what = format!("{plan:?} {s:?} bias={bias} accumulate={accumulate}");
    check_gemm(&what, &pass.calls, &pass.scratch, s, bias, accumulate, seed);
    pass.calls.len()
}

#[test]
fn split_k_products_match_cpu_on_every_tile() {
    // K off every chunk and BK multiple; split counts of 2, 7 (ragged last chunk) and 64 (more
    // splits than the fold has lanes); one shape with a single output column, which runs transposed.
    let shapes = [(3, 5, 300), (33, 17, 3000), (100, 1, 777)];
    let mut seed = 2000;
    for tile in TILES {
        for make in VARIANTS {
            for &(m, n, k) in &shapes {
                for splits in [2, 7, 64] {
                    seed += 10;
                    let (bias, accumulate) = (splits != 7, splits == 7);
                    let calls = check_pass(Some((tile, splits)), make(m, n, k), bias, accumulate, seed);
                    assert_eq!(calls, 2, "{tile:?} {m}x{n}x{k} split {splits}: expected a GEMM and its fold");
                }
            }
        }
    }
}

#[test]
fn long_k_products_with_small_outputs_split_and_match() {
    // The VAE's fc_mu forward and input gradient, the DCGAN discriminator's last layer as a GEMV and
    // its weight gradient, all at batch 128.
    let shapes = [
        MatmulShape::nt(128, 32, 2048),
        MatmulShape::nn(128, 2048, 32),
        MatmulShape::nt(128, 1, 8192),
        MatmulShape::tn(1, 8192, 128),
    ];
    for (i, s) in shapes.into_iter().enumerate() {
        let plan = gemm::default_plan(s).unwrap();
        let (m, n) = if s.n < 4 && s.m > s.n { (s.n, s.m) } else { (s.m, s.n) };
        let workgroups = plan.tile.blocks(m, n) * plan.splits;
        assert!(workgroups >= gemm::MIN_BLOCKS, "{s:?}: {plan:?} launches only {workgroups} workgroups");
        check_pass(None, s, i % 2 == 0, i == 3, 3000 + 10 * i as u64);
    }
}

#[test]
fn every_tile_matches_cpu_on_odd_shapes() {
    // Off every block dimension (1, 64, 128, 256) and BK (8, 16): K from 1 to 300.
    let shapes = [(1, 1, 1), (3, 5, 7), (1, 33, 100), (33, 100, 3), (65, 63, 17), (130, 129, 9), (7, 300, 300)];
    let mut seed = 0;
    for tile in TILES {
        for make in VARIANTS {
            for &(m, n, k) in &shapes {
                for (bias, accumulate) in [(false, false), (true, true)] {
                    seed += 10;
                    check_matmul(Some(tile), make(m, n, k), bias, accumulate, seed);
                }
            }
        }
    }
}

#[test]
fn chosen_tiles_match_cpu_including_single_columns() {
    // One output column is computed transposed (a row of the thin tile); bias and accumulate too.
    let shapes = [(100, 1, 300), (5, 2, 40), (1, 1, 4096), (128, 32, 2048), (128, 2048, 32), (32, 2048, 128)];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        for (j, make) in VARIANTS.into_iter().enumerate() {
            check_matmul(None, make(m, n, k), j != 1, j == 2, 500 + 10 * (3 * i + j) as u64);
        }
    }
}

#[test]
fn tiles_fit_webgpu_default_limits() {
    for t in TILES {
        assert!(t.workgroup_bytes() <= gemm::WORKGROUP_BYTES, "{t:?}: {} bytes", t.workgroup_bytes());
        assert!(t.invocations() <= gemm::MAX_INVOCATIONS, "{t:?}");
        // 64 accumulators per invocation is what a GPU's register file holds beside the operands
        // without spilling.
        assert!(t.tm * t.tn4 * 4 <= 64, "{t:?}: {} accumulators per invocation", t.tm * t.tn4 * 4);
    }
}

/// Runs a pass: `inputs` uploaded, zeroed scratch, then an output of `out_len`; returns the output.
fn run_pass(p: &Pass, inputs: &[&[f64]], out_len: usize) -> Vec<f64> {
    let outs: Vec<usize> = p.scratch.iter().copied().chain([out_len]).collect();
    run(&p.calls, inputs, &outs).pop().unwrap()
}

/// Runs an accumulating pass: `inputs` uploaded, zeroed scratch, then the output starting at `out0`.
fn run_accumulating(p: &Pass, inputs: &[&[f64]], out0: &[f64]) -> Vec<f64> {
    let scratch: Vec<Vec<f64>> = p.scratch.iter().map(|&n| vec![0.0; n]).collect();
    let all: Vec<&[f64]> = inputs.iter().copied().chain(scratch.iter().map(Vec::as_slice)).chain([out0]).collect();
    run(&p.calls, &all, &[]).pop().unwrap()
}

/// Forward, both gradients and the bias gradient of `s` through the passes the graph records.
fn check_conv(what: &str, s: &Conv2dShape, seed: u64) {
    let d = data(s, seed);
    let k_fwd = s.cin * s.k * s.k + 1;
    let got = run_pass(&passes::conv_forward(Tiled, s, true).unwrap(), &[&d.x, &d.w, &d.b], s.y_len());
    assert_close(&format!("{what} forward"), &got, &conv::cpu_forward(s, &d.x, &d.w, &d.b), tol(k_fwd), 1e-5);
    let got = run_pass(&passes::conv_forward(Tiled, s, false).unwrap(), &[&d.x, &d.w], s.y_len());
    assert_close(&format!("{what} forward, no bias"), &got, &conv::cpu_forward(s, &d.x, &d.w, &[]), tol(k_fwd), 1e-5);

    let got = run_pass(&passes::conv_backward_input(Tiled, s).unwrap(), &[&d.dy, &d.w], s.x_len());
    let want = conv::cpu_backward_input(s, &d.dy, &d.w);
    assert_close(&format!("{what} backward_input"), &got, &want, tol(s.cout * s.k * s.k), 1e-5);

    let got = run_pass(&passes::conv_backward_weight(Tiled, s).unwrap(), &[&d.x, &d.dy], s.w_len());
    let want = conv::cpu_backward_weight(s, &d.x, &d.dy);
    assert_close(&format!("{what} backward_weight"), &got, &want, tol(s.batch * s.out_h() * s.out_w()), 1e-5);

    let (oh, ow) = (s.out_h(), s.out_w());
    let got = run_pass(&passes::conv_bias_grad(Tiled, s.batch, s.cout, oh, ow).unwrap(), &[&d.dy], s.cout);
    let want = conv::cpu_bias_grad(s.batch, s.cout, oh, ow, &d.dy);
    assert_close(&format!("{what} bias_grad"), &got, &want, tol(s.batch * oh * ow), 1e-5);
}

/// The lavapipe set's odd shapes (off every block dimension, strides 1-3, padding 0-2, batch 1, one
/// channel in or out, a dense 1×1 output) plus a stride-3 k-5 layer whose stride classes are ragged
/// and a dense layer with one output channel.
fn odd_shapes() -> Vec<Conv2dShape> {
    let mut v = crate::conv::odd_shapes();
    v.extend([shape(3, 2, 70, 7, 6, 5, 3, 2), shape(3, 40, 1, 4, 4, 4, 1, 0)]);
    v
}

#[test]
fn conv_odd_shapes_match_cpu() {
    for (i, s) in odd_shapes().iter().enumerate() {
        check_conv(&format!("{s:?}"), s, 10 * i as u64);
    }
}

#[test]
fn conv_model_layers_match_cpu() {
    for (i, (name, s)) in model_layers().iter().enumerate() {
        check_conv(name, s, 100 + 10 * i as u64);
    }
}

#[test]
fn long_weight_gradients_split_along_k_and_still_match() {
    // batch 16 of 32×32: K = 16·16·16 = 4096 against a 32×16 output, so several splits.
    let s = shape(16, 1, 32, 32, 32, 4, 2, 1);
    let scratch = conv_tiled::backward_weight(&s, false).unwrap().scratch;
    assert!(scratch.len() == 1 && scratch[0] > s.w_len(), "expected split-K partials, got {scratch:?}");
    check_conv("vae encoder.0 at batch 16", &s, 7);
}

#[test]
fn accumulate_adds_to_the_output() {
    let plus = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>();
    // A general shape, a dense one, and one whose weight gradient splits along K.
    for s in [shape(2, 3, 5, 7, 6, 4, 2, 1), shape(3, 6, 5, 3, 3, 3, 1, 0), shape(16, 2, 3, 16, 16, 3, 1, 1)] {
        let d = data(&s, 7);
        let y0 = rand_vec(50, s.y_len(), -1.0, 1.0);
        let out = run_accumulating(&conv_tiled::forward(&s, true, true).unwrap(), &[&d.x, &d.w, &d.b], &y0);
        let want = plus(&y0, &conv::cpu_forward(&s, &d.x, &d.w, &d.b));
        assert_close(&format!("{s:?} forward accumulate"), &out, &want, tol(s.cin * s.k * s.k + 2), 1e-5);

        let dx0 = rand_vec(51, s.x_len(), -1.0, 1.0);
        let out = run_accumulating(&conv_tiled::backward_input(&s, false, true).unwrap(), &[&d.dy, &d.w], &dx0);
        let want = plus(&dx0, &conv::cpu_backward_input(&s, &d.dy, &d.w));
        assert_close(&format!("{s:?} backward_input accumulate"), &out, &want, tol(s.cout * s.k * s.k + 1), 1e-5);

        let dw0 = rand_vec(52, s.w_len(), -1.0, 1.0);
        let out = run_accumulating(&conv_tiled::backward_weight(&s, true).unwrap(), &[&d.x, &d.dy], &dw0);
        let want = plus(&dw0, &conv::cpu_backward_weight(&s, &d.x, &d.dy));
        let k = s.batch * s.out_h() * s.out_w() + 1;
        assert_close(&format!("{s:?} backward_weight accumulate"), &out, &want, tol(k), 1e-5);

        let db0 = rand_vec(53, s.cout, -1.0, 1.0);
        let (oh, ow) = (s.out_h(), s.out_w());
        let part = vec![0.0; bias_grad::planes_partials(s.batch, s.cout, oh, ow)];
        let out = run(&bias_grad::planes(s.batch, s.cout, oh, ow, true).unwrap(), &[&d.dy, &part, &db0], &[]);
        let want = plus(&db0, &conv::cpu_bias_grad(s.batch, s.cout, oh, ow, &d.dy));
        assert_close(&format!("{s:?} bias_grad accumulate"), &out[2], &want, tol(s.batch * oh * ow + 1), 1e-5);
    }
}

#[test]
fn linear_bias_gradient_matches_cpu() {
    for (m, n) in [(1, 1), (7, 300), (130, 33)] {
        let dy = rand_vec(m as u64, m * n, -1.0, 1.0);
        let db0 = rand_vec(9, n, -1.0, 1.0);
        let out = run_pass(&passes::linear_backward_bias(Tiled, m, n).unwrap(), &[&dy], n);
        assert_close("bias_grad_rows", &out, &matmul::cpu_bias_grad(&dy, m, n), tol(m), 1e-5);
        let part = vec![0.0; bias_grad::rows_partials(m, n)];
        let out = run(&bias_grad::rows(m, n, true).unwrap(), &[&dy, &part, &db0], &[]);
        let want: Vec<f64> = matmul::cpu_bias_grad(&dy, m, n).iter().zip(&db0).map(|(a, b)| a + b).collect();
        assert_close("bias_grad_rows accumulate", &out[2], &want, tol(m + 1), 1e-5);
    }
}

/// Forward and both gradients of a transposed convolution through the tiled passes.
fn check_convt(what: &str, s: &ConvTranspose2dShape, bias: bool, seed: u64) {
    let x = rand_vec(seed, s.x_len(), -1.0, 1.0);
    let w = rand_vec(seed + 1, s.w_len(), -1.0, 1.0);
    let b = if bias { rand_vec(seed + 2, s.cout, -1.0, 1.0) } else { vec![] };
    let dy = rand_vec(seed + 3, s.y_len(), -1.0, 1.0);
    let inputs: Vec<&[f64]> = if bias { vec![&x, &w, &b] } else { vec![&x, &w] };
    let got = run_pass(&passes::conv_t_forward(Tiled, s, bias).unwrap(), &inputs, s.y_len());
    let want = conv_transpose::cpu_forward(s, &x, &w, &b);
    assert_close(&format!("{what} forward"), &got, &want, tol(s.cin * s.k * s.k + 1), 1e-5);
    let got = run_pass(&passes::conv_t_backward_input(Tiled, s).unwrap(), &[&dy, &w], s.x_len());
    let want = conv_transpose::cpu_backward_input(s, &dy, &w);
    assert_close(&format!("{what} backward_input"), &got, &want, tol(s.cout * s.k * s.k), 1e-5);
    let got = run_pass(&passes::conv_t_backward_weight(Tiled, s).unwrap(), &[&x, &dy], s.w_len());
    let want = conv_transpose::cpu_backward_weight(s, &x, &dy);
    assert_close(&format!("{what} backward_weight"), &got, &want, tol(s.batch * s.h * s.w), 1e-5);
}

#[test]
fn transposed_convs_match_cpu() {
    let cases = [
        ("gan generator.0 (1x1 input, dense)", convt_shape(3, 100, 256, 1, 1, 4, 1, 0), false),
        ("dense with bias", convt_shape(2, 5, 7, 1, 1, 3, 1, 0), true),
        ("gan generator.3", convt_shape(2, 256, 128, 4, 4, 4, 2, 1), false),
        ("gan generator.9", convt_shape(2, 64, 1, 16, 16, 4, 2, 1), false),
        ("vae decoder.0", convt_shape(2, 128, 64, 4, 4, 4, 2, 1), true),
        ("vae decoder.6", convt_shape(1, 32, 1, 16, 16, 4, 2, 1), true),
        ("odd: stride 3, k 5", convt_shape(2, 3, 5, 4, 5, 5, 3, 2), true),
        ("odd: stride 2, k 3", convt_shape(1, 7, 3, 5, 6, 3, 2, 1), true),
    ];
    for (i, (what, s, bias)) in cases.iter().enumerate() {
        check_convt(what, s, *bias, 300 + 10 * i as u64);
    }
}
