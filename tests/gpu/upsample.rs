//! Nearest-neighbour upsampling ×2 against the f64 reference on odd shapes, its gradient (a gather of
//! each 2×2 block) with and without accumulation, and a gradient check of the reference.

use crate::common;

use common::*;
use gputrain::ops::upsample::{self, UpsampleShape};

/// A single pixel, odd non-square planes, the autoencoder decoder's 64-channel 4×4 maps at batch 2,
/// and a 14×14 map with a plane count that leaves the last workgroup partly empty.
const SHAPES: [UpsampleShape; 5] = [
    UpsampleShape { planes: 1, h: 1, w: 1 },
    UpsampleShape { planes: 3, h: 5, w: 7 },
    UpsampleShape { planes: 2 * 64, h: 4, w: 4 },
    UpsampleShape { planes: 2 * 32 + 1, h: 14, w: 14 },
    UpsampleShape { planes: 1, h: 9, w: 2 },
];

/// Multiples of 2^-10 in [-1, 1]: a sum of four of them needs 13 bits, so the kernel's f32 sum is
/// exact and the comparison with the f64 reference can be equality.
fn dyadic(seed: u64, n: usize) -> Vec<f64> {
    rand_vec(seed, n, -1.0, 1.0).into_iter().map(|v| (v * 1024.0).round() / 1024.0).collect()
}

#[test]
fn upsample_forward_and_backward_match_cpu() {
    for (i, s) in SHAPES.iter().enumerate() {
        let n = s.planes * s.h * s.w;
        let m = s.planes * s.out_h() * s.out_w();
        let x = to_f64(&to_f32(&rand_vec(i as u64, n, -3.0, 3.0)));
        let y = run(&upsample::forward(s).unwrap(), &[&x], &[m])[1].clone();
        // A copy: exact.
        assert_eq!(y, upsample::cpu_forward(s, &x), "{s:?}");
        let dy = dyadic(50 + i as u64, m);
        let dx = run(&upsample::backward_input(s, false).unwrap(), &[&dy], &[n])[1].clone();
        assert_eq!(dx, upsample::cpu_backward_input(s, &dy), "{s:?}");
    }
}

#[test]
fn upsample_matches_pytorch_layout_and_backward_accumulates() {
    // nn.Upsample(scale_factor=2, mode='nearest') of [[1, 2], [3, 4]] is
    // [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]].
    let s = UpsampleShape { planes: 1, h: 2, w: 2 };
    let y = upsample::cpu_forward(&s, &[1.0, 2.0, 3.0, 4.0]);
    let want = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0];
    assert_eq!(y, want);
    assert_eq!(run(&upsample::forward(&s).unwrap(), &[&[1.0, 2.0, 3.0, 4.0]], &[16])[1], want);
    // dy = 0..16 row by row: block sums 0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15, on top of 100.
    let dy: Vec<f64> = (0..16).map(|v| v as f64).collect();
    let out = run(&upsample::backward_input(&s, true).unwrap(), &[&dy, &[100.0; 4]], &[]);
    assert_eq!(out[1], [110.0, 118.0, 142.0, 150.0]);
}

#[test]
fn upsample_gradcheck() {
    let s = UpsampleShape { planes: 2, h: 3, w: 2 };
    let x = rand_vec(9, 12, -1.0, 1.0);
    let w = rand_vec(10, 48, -1.0, 1.0);
    let num = numeric_grad(&x, 1e-6, |x| dot(&upsample::cpu_forward(&s, x), &w));
    // Linear in x: central differences are exact up to the f64 rounding of the 48-term dot (~1e-15)
    // divided by 2h = 2e-6.
    assert_close("upsample gradcheck", &upsample::cpu_backward_input(&s, &w), &num, 1e-8, 1e-8);
}

#[test]
fn empty_and_oversize_shapes_are_refused() {
    let e = upsample::forward(&UpsampleShape { planes: 0, h: 4, w: 4 }).unwrap_err().to_string();
    assert!(e.contains("upsample2x_forward") && e.contains("planes is 0"), "{e}");
    let e = upsample::backward_input(&UpsampleShape { planes: 1 << 12, h: 1 << 10, w: 1 << 9 }, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("upsample2x_backward_input") && e.contains("2^32"), "{e}");
}
