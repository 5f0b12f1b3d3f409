use crate::common;

use common::*;
use gputrain::ops::elementwise::{self, Activation};

const ACTS: [Activation; 4] = [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Tanh, Activation::Sigmoid];

// Elementwise f32 kernels differ from the f64 reference only by rounding of a few operations
// (tanh/exp in the shader are within a few ulp): 1e-6 absolute plus 1e-5 relative is ~100 ulp.
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-5;

#[test]
fn activations_match_cpu_forward_and_backward() {
    for (k, act) in ACTS.into_iter().enumerate() {
        for n in [1usize, 7, 256, 1000, 70_001] {
            let x = rand_vec(k as u64 * 31 + n as u64, n, -6.0, 6.0);
            let out = run(&elementwise::forward(act, n).unwrap(), &[&x], &[n]);
            let y_ref = elementwise::cpu_forward(act, &x);
            assert_close(&format!("{act:?} forward n={n}"), &out[1], &y_ref, ATOL, RTOL);

            let dy = rand_vec(n as u64, n, -1.0, 1.0);
            let y32 = out[1].clone();
            let out = run(&elementwise::backward(act, n).unwrap(), &[&y32, &dy], &[n]);
            let dx_ref = elementwise::cpu_backward(act, &y32, &dy);
            assert_close(&format!("{act:?} backward n={n}"), &out[2], &dx_ref, ATOL, RTOL);
        }
    }
}

#[test]
fn activation_backward_passes_gradcheck() {
    // Points kept away from the ReLU kink (|x| >= 0.05) where the derivative is undefined.
    let x: Vec<f64> =
        rand_vec(3, 64, -3.0, 3.0).into_iter().map(|v| if v.abs() < 0.05 { v + 0.1 } else { v }).collect();
    let w = rand_vec(4, 64, -1.0, 1.0);
    for act in ACTS {
        let loss = |x: &[f64]| dot(&elementwise::cpu_forward(act, x), &w);
        let num = numeric_grad(&x, 1e-6, loss);
        let y = elementwise::cpu_forward(act, &x);
        let ana = elementwise::cpu_backward(act, &y, &w);
        // f64 central differences with h = 1e-6 are accurate to ~1e-9 for these smooth functions.
        assert_close(&format!("{act:?} gradcheck"), &ana, &num, 1e-7, 1e-6);
    }
}

#[test]
fn arithmetic_kernels() {
    let n = 1037;
    let a = rand_vec(1, n, -2.0, 2.0);
    let b = rand_vec(2, n, -2.0, 2.0);
    let sum: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let out = run(&elementwise::add(n).unwrap(), &[&a, &b], &[n]);
    assert_close("add", &out[2], &sum, ATOL, RTOL);
    let out = run(&elementwise::accumulate(n).unwrap(), &[&a, &b], &[]);
    assert_close("accumulate", &out[0], &sum, ATOL, RTOL);
    let out = run(&elementwise::scale(n, -0.5).unwrap(), &[&a], &[n]);
    let want: Vec<f64> = a.iter().map(|x| -0.5 * x).collect();
    assert_close("scale", &out[1], &want, ATOL, RTOL);
    let out = run(&elementwise::fill(n, 3.25).unwrap(), &[], &[n]);
    assert_close("fill", &out[0], &vec![3.25; n], 0.0, 0.0);
}

#[test]
fn zero_sized_and_huge_dispatches_are_refused_clearly() {
    let e = elementwise::forward(Activation::Relu, 0).unwrap_err().to_string();
    assert!(e.contains("relu_forward") && e.contains("is 0"), "{e}");
    // 2^32 elements cannot be indexed by the u32 kernels.
    let e = elementwise::forward(Activation::Relu, 1 << 32).unwrap_err().to_string();
    assert!(e.contains("2^32"), "{e}");
}

#[test]
fn large_dispatch_folds_into_a_2d_grid() {
    // 20M elements = 78 125 workgroups of 256: more than 65 535 in one dimension.
    let n = 20_000_000;
    let calls = elementwise::fill(n, 1.5).unwrap();
    assert!(calls[0].workgroups[1] > 1, "{:?}", calls[0].workgroups);
    let out = run_f32(&calls, &[], &[n]);
    assert!(out[0].iter().all(|&v| v == 1.5));
}

#[test]
fn operand_beyond_max_binding_is_refused() {
    let g = gpu();
    let calls = elementwise::fill(16, 0.0).unwrap();
    let buf = g.zeros("small", 64).unwrap();
    // Claim a binding larger than the adapter allows: check_call must refuse it before wgpu sees it.
    let fake = gputrain::runtime::buffers::Operand {
        buffer: &buf.buffer,
        offset: 0,
        bytes: g.limits.max_storage_buffer_binding_size + 4,
    };
    let e = g.check_call(&calls[0], &[fake]).unwrap_err().to_string();
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
}
