//! conv2d kernels against the f64 references, the references against finite differences, the
//! accumulate flag, the portable path, and shape errors.
use crate::common;

use common::*;
use common::{conv_shape as shape, sum_tol as tol};
use gputrain::ops::conv::{self, Conv2dShape};
use gputrain::runtime::KernelCall;

/// Channel counts that are not multiples of the 32-channel block or the 8-lane pixel groups, odd
/// spatial sizes, strides 1-3, padding 0-2, kernels 3 and 4.
pub(crate) fn odd_shapes() -> Vec<Conv2dShape> {
    vec![
        shape(1, 3, 5, 5, 7, 3, 1, 1),
        shape(2, 1, 7, 5, 7, 4, 2, 1),
        shape(1, 5, 3, 7, 5, 4, 1, 0),
        shape(2, 7, 9, 6, 9, 3, 2, 0),
        shape(1, 3, 33, 9, 11, 3, 3, 2),
        shape(1, 1, 1, 5, 7, 4, 2, 1),
        // 1x1 output of a k x k input without padding: the dense input-gradient kernel, k < 4 columns.
        shape(5, 6, 37, 3, 3, 3, 1, 0),
    ]
}

/// The models' convolutions (README, "Checkpoints in PyTorch") at batch 2.
pub(crate) fn model_layers() -> Vec<(&'static str, Conv2dShape)> {
    vec![
        ("vae encoder.0", shape(2, 1, 32, 32, 32, 4, 2, 1)),
        ("vae encoder.3", shape(2, 32, 64, 16, 16, 4, 2, 1)),
        ("vae encoder.6", shape(2, 64, 128, 8, 8, 4, 2, 1)),
        ("gan discriminator.0", shape(2, 1, 64, 32, 32, 4, 2, 1)),
        ("gan discriminator.2", shape(2, 64, 128, 16, 16, 4, 2, 1)),
        ("gan discriminator.5", shape(2, 128, 256, 8, 8, 4, 2, 1)),
        ("gan discriminator.8", shape(2, 256, 1, 4, 4, 4, 1, 0)),
        ("mlp gan discriminator.0", shape(2, 1, 16, 28, 28, 3, 1, 1)),
        ("mlp gan discriminator.3", shape(2, 16, 32, 14, 14, 3, 1, 1)),
        ("mlp gan discriminator.6", shape(2, 32, 64, 7, 7, 3, 1, 1)),
    ]
}

pub(crate) struct Data {
    pub x: Vec<f64>,
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    pub dy: Vec<f64>,
}

pub(crate) fn data(s: &Conv2dShape, seed: u64) -> Data {
    Data {
        x: rand_vec(seed, s.x_len(), -1.0, 1.0),
        w: rand_vec(seed + 1, s.w_len(), -1.0, 1.0),
        b: rand_vec(seed + 2, s.cout, -1.0, 1.0),
        dy: rand_vec(seed + 3, s.y_len(), -1.0, 1.0),
    }
}

/// All four kernels of `s` against the references.
fn check_all(what: &str, s: &Conv2dShape, seed: u64) {
    let d = data(s, seed);
    let k_fwd = s.cin * s.k * s.k + 1;
    let out = run(&conv::forward(s, true, false).unwrap(), &[&d.x, &d.w, &d.b], &[s.y_len()]);
    assert_close(&format!("{what} forward"), &out[3], &conv::cpu_forward(s, &d.x, &d.w, &d.b), tol(k_fwd), 1e-5);

    let out = run(&conv::forward(s, false, false).unwrap(), &[&d.x, &d.w], &[s.y_len()]);
    assert_close(
        &format!("{what} forward, no bias"),
        &out[2],
        &conv::cpu_forward(s, &d.x, &d.w, &[]),
        tol(k_fwd),
        1e-5,
    );

    let out = run(&conv::backward_input(s).unwrap(), &[&d.dy, &d.w], &[s.x_len()]);
    let want = conv::cpu_backward_input(s, &d.dy, &d.w);
    assert_close(&format!("{what} backward_input"), &out[2], &want, tol(s.cout * s.k * s.k), 1e-5);

    let out = run(&conv::backward_weight(s).unwrap(), &[&d.x, &d.dy], &[s.w_len()]);
    let want = conv::cpu_backward_weight(s, &d.x, &d.dy);
    assert_close(&format!("{what} backward_weight"), &out[2], &want, tol(s.batch * s.out_h() * s.out_w()), 1e-5);

    let (oh, ow) = (s.out_h(), s.out_w());
    let out = run(&conv::bias_grad(s.batch, s.cout, oh, ow).unwrap(), &[&d.dy], &[s.cout]);
    let want = conv::cpu_bias_grad(s.batch, s.cout, oh, ow, &d.dy);
    assert_close(&format!("{what} bias_grad"), &out[1], &want, tol(s.batch * oh * ow), 1e-5);
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
    // k 4 stride 2 with 3 input channels takes the block kernel for the input gradient; k 3 the general one.
    for s in [shape(2, 3, 5, 7, 6, 4, 2, 1), shape(1, 9, 4, 6, 5, 3, 1, 1)] {
        accumulate_case(&s);
    }
}

fn accumulate_case(s: &Conv2dShape) {
    let s = *s;
    let d = data(&s, 7);
    let plus = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>();

    let y0 = rand_vec(50, s.y_len(), -1.0, 1.0);
    let out = run(&conv::forward(&s, true, true).unwrap(), &[&d.x, &d.w, &d.b, &y0], &[]);
    let want = plus(&y0, &conv::cpu_forward(&s, &d.x, &d.w, &d.b));
    assert_close("forward accumulate", &out[3], &want, tol(s.cin * s.k * s.k + 2), 1e-5);

    let dx0 = rand_vec(51, s.x_len(), -1.0, 1.0);
    let out = run(&conv::backward_input_with(&s, false, true).unwrap(), &[&d.dy, &d.w, &dx0], &[]);
    let want = plus(&dx0, &conv::cpu_backward_input(&s, &d.dy, &d.w));
    assert_close("backward_input accumulate", &out[2], &want, tol(s.cout * s.k * s.k + 1), 1e-5);

    let dw0 = rand_vec(52, s.w_len(), -1.0, 1.0);
    let out = run(&conv::backward_weight_with(&s, true).unwrap(), &[&d.x, &d.dy, &dw0], &[]);
    let want = plus(&dw0, &conv::cpu_backward_weight(&s, &d.x, &d.dy));
    assert_close("backward_weight accumulate", &out[2], &want, tol(s.batch * s.out_h() * s.out_w() + 1), 1e-5);

    let db0 = rand_vec(53, s.cout, -1.0, 1.0);
    let (oh, ow) = (s.out_h(), s.out_w());
    let out = run(&conv::bias_grad_with(s.batch, s.cout, oh, ow, true).unwrap(), &[&d.dy, &db0], &[]);
    let want = plus(&db0, &conv::cpu_bias_grad(s.batch, s.cout, oh, ow, &d.dy));
    assert_close("bias_grad accumulate", &out[1], &want, tol(s.batch * oh * ow + 1), 1e-5);
}

/// Dispatches, their inputs, and the length of their one output.
type Case<'a> = (Vec<KernelCall>, Vec<&'a [f64]>, usize);

#[test]
fn portable_path_is_bit_identical() {
    // The path for adapters whose subgroups are not 8 lanes performs the same FMAs in the same order.
    // The first shape's input gradient takes the k 4 stride 2 block kernel (3 input channels), the
    // last one the dense kernel (1x1 output).
    for s in [
        shape(2, 3, 33, 9, 7, 4, 2, 1),
        shape(1, 5, 7, 6, 5, 3, 1, 1),
        shape(1, 9, 3, 8, 9, 4, 2, 1),
        shape(5, 34, 7, 4, 4, 4, 1, 0),
    ] {
        let d = data(&s, 3);
        let cases: [Case; 3] = [
            (conv::forward(&s, true, false).unwrap(), vec![&d.x, &d.w, &d.b], s.y_len()),
            (conv::backward_input(&s).unwrap(), vec![&d.dy, &d.w], s.x_len()),
            (conv::backward_weight(&s).unwrap(), vec![&d.x, &d.dy], s.w_len()),
        ];
        for (calls, inputs, len) in cases {
            let mut slow = calls.clone();
            conv::force_portable(&mut slow);
            let fast_out = run(&calls, &inputs, &[len]).pop().unwrap();
            let slow_out = run(&slow, &inputs, &[len]).pop().unwrap();
            assert_eq!(fast_out, slow_out, "{} {s:?}", calls[0].entry);
        }
    }
}

#[test]
fn backward_references_pass_gradcheck() {
    for s in [shape(2, 2, 3, 5, 6, 3, 2, 1), shape(1, 3, 2, 6, 5, 4, 2, 1), shape(1, 2, 2, 4, 5, 3, 1, 0)] {
        let d = data(&s, 11);
        let r = &d.dy; // the projection defining the scalar loss dot(y, r); dL/dy = r
        let num = numeric_grad(&d.x, 1e-6, |x| dot(&conv::cpu_forward(&s, x, &d.w, &d.b), r));
        // Conv is linear in each argument, so central differences are exact up to f64 rounding.
        assert_close(&format!("{s:?} dx"), &conv::cpu_backward_input(&s, r, &d.w), &num, 1e-7, 1e-6);
        let num = numeric_grad(&d.w, 1e-6, |w| dot(&conv::cpu_forward(&s, &d.x, w, &d.b), r));
        assert_close(&format!("{s:?} dw"), &conv::cpu_backward_weight(&s, &d.x, r), &num, 1e-7, 1e-6);
        let num = numeric_grad(&d.b, 1e-6, |b| dot(&conv::cpu_forward(&s, &d.x, &d.w, b), r));
        let db = conv::cpu_bias_grad(s.batch, s.cout, s.out_h(), s.out_w(), r);
        assert_close(&format!("{s:?} db"), &db, &num, 1e-7, 1e-6);
    }
}

#[test]
fn bad_shapes_are_refused_naming_the_op() {
    let err = |r: anyhow::Result<Vec<KernelCall>>| r.unwrap_err().to_string();
    let e = err(conv::forward(&shape(2, 0, 4, 8, 8, 3, 1, 1), false, false));
    assert!(e.contains("conv2d_forward") && e.contains("cin") && e.contains("is 0"), "{e}");
    let e = err(conv::backward_weight(&shape(2, 3, 4, 8, 8, 3, 0, 1)));
    assert!(e.contains("conv2d_backward_weight") && e.contains("stride"), "{e}");
    // A 5x5 kernel on a 2x2 input padded by 1: the padded input is 4x4.
    let e = err(conv::backward_input(&shape(1, 1, 1, 2, 2, 5, 1, 1)));
    assert!(e.contains("conv2d_backward_input") && e.contains("larger than the padded input"), "{e}");
    let e = err(conv::bias_grad(2, 3, 0, 4));
    assert!(e.contains("conv2d_bias_grad") && e.contains("is 0"), "{e}");

    let e = Conv2dShape::from_dims("encoder.3", &[2, 32, 16, 16], &[64, 16, 4, 4], 2, 1).unwrap_err().to_string();
    assert!(e.contains("encoder.3") && e.contains("16 input channels") && e.contains("has 32"), "{e}");
    let e = Conv2dShape::from_dims("c", &[2, 3, 8, 8], &[4, 3, 3, 2], 1, 0).unwrap_err().to_string();
    assert!(e.contains("square"), "{e}");
    let e = Conv2dShape::from_dims("c", &[2, 3, 8], &[4, 3, 3, 3], 1, 0).unwrap_err().to_string();
    assert!(e.contains("4-d"), "{e}");
    let s = Conv2dShape::from_dims("c", &[2, 3, 8, 9], &[4, 3, 3, 3], 2, 1).unwrap();
    assert_eq!((s.out_h(), s.out_w()), (4, 5));
}
