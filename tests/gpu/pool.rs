//! Max-pooling 2×2 against the f64 reference, on even and odd sizes, with a gradient check.

use crate::common;

use common::*;
use gputrain::ops::pool::{self, PoolShape};

/// The MLP GAN discriminator's three pools at batch 2 (28 → 14 → 7 → 3, the last dropping a row and a
/// column), a single plane, and a non-square odd image.
const SHAPES: [PoolShape; 5] = [
    PoolShape { planes: 2 * 16, h: 28, w: 28 },
    PoolShape { planes: 2 * 32, h: 14, w: 14 },
    PoolShape { planes: 2 * 64, h: 7, w: 7 },
    PoolShape { planes: 1, h: 2, w: 2 },
    PoolShape { planes: 3, h: 5, w: 9 },
];

#[test]
fn maxpool_forward_and_backward_match_cpu() {
    for (i, s) in SHAPES.iter().enumerate() {
        let n = s.planes * s.h * s.w;
        let m = s.planes * s.out_h() * s.out_w();
        // Distinct f32 values, so the maximum of every window is unique and exact.
        let x = to_f64(&to_f32(&rand_vec(i as u64, n, -3.0, 3.0)));
        let dy = rand_vec(50 + i as u64, m, -1.0, 1.0);
        let y = run(&pool::forward(s).unwrap(), &[&x], &[m])[1].clone();
        // Selection moves values unchanged: exact.
        assert_eq!(y, pool::cpu_forward(s, &x), "{s:?}");
        let dx = run(&pool::backward_input(s, false).unwrap(), &[&x, &dy], &[n])[2].clone();
        assert_eq!(to_f32(&dx), to_f32(&pool::cpu_backward_input(s, &x, &dy)), "{s:?}");
    }
}

#[test]
fn maxpool_backward_accumulates_and_ties_go_to_the_first_element() {
    let s = PoolShape { planes: 1, h: 2, w: 4 };
    let x = [1.0, 1.0, 0.0, 5.0, 1.0, 0.5, 5.0, 5.0];
    let dy = [2.0, 3.0];
    let prior = [10.0; 8];
    let out = run(&pool::backward_input(&s, true).unwrap(), &[&x, &dy, &prior], &[]);
    assert_eq!(out[2], [12.0, 10.0, 10.0, 13.0, 10.0, 10.0, 10.0, 10.0]);
    assert_eq!(pool::cpu_forward(&s, &x), [1.0, 5.0]);
}

#[test]
fn maxpool_gradcheck() {
    let s = PoolShape { planes: 2, h: 5, w: 4 };
    let x = rand_vec(9, 40, -1.0, 1.0);
    let dy = rand_vec(10, 2 * 2 * 2, -1.0, 1.0);
    let num = numeric_grad(&x, 1e-6, |x| dot(&pool::cpu_forward(&s, x), &dy));
    // Piecewise linear: away from ties (random inputs are ≥ ~1e-3 apart) central differences are exact
    // up to f64 rounding of h = 1e-6.
    assert_close("maxpool gradcheck", &pool::cpu_backward_input(&s, &x, &dy), &num, 1e-8, 1e-8);
}

#[test]
fn windows_that_do_not_fit_are_refused() {
    let e = pool::forward(&PoolShape { planes: 1, h: 1, w: 4 }).unwrap_err().to_string();
    assert!(e.contains("maxpool_forward") && e.contains("1×4"), "{e}");
}
