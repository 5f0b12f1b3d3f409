use crate::common;

use common::*;
use gputrain::ops::reduce;

const SIZES: [usize; 6] = [1, 255, 256, 257, 100_000, 1_000_003];

/// Small integers: every partial sum of up to 2^21 of them is an integer below 2^24, hence exact in
/// f32, so the GPU must match the reference exactly; any lost or doubled element shows.
fn ints(seed: u64, n: usize) -> Vec<f64> {
    rand_vec(seed, n, -8.0, 9.0).into_iter().map(f64::floor).collect()
}

/// Rounds to f32 and back, so CPU references see exactly the values the GPU sees.
fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    to_f64(&to_f32(&v))
}

#[test]
fn sum_and_mean_are_exact_on_integers() {
    for n in SIZES {
        let x = ints(n as u64, n);
        let want = reduce::cpu_sum(&x);
        let out = run(&reduce::sum(n).unwrap(), &[&x], &scalar_outputs(n));
        assert_eq!(out[1][0], want, "sum n={n}");
        let out = run(&reduce::mean(n).unwrap(), &[&x], &scalar_outputs(n));
        // Exact sum times f32(1/n): two roundings of relative size 2^-24 each.
        assert_close(&format!("mean n={n}"), &out[1], &[reduce::cpu_mean(&x)], 1e-30, 2.0 * 2f64.powi(-24) * 1.01);
    }
}

#[test]
fn sum_of_floats_within_the_summation_error_bound() {
    for n in SIZES {
        let x = f32_exact(rand_vec(7 + n as u64, n, -1.0, 1.5));
        let abs: f64 = x.iter().map(|v| v.abs()).sum();
        // Recursive summation bound: every term passes through at most ceil(chunk/64) additions in
        // its invocation, a 6-level tree, then (with several chunks) ceil(parts/64) additions and
        // another 6-level tree: |error| <= that count * 2^-24 * Σ|x|.
        let part = reduce::Partition::of(n);
        let depth = part.chunk.div_ceil(64) + 6 + if part.parts > 1 { part.parts.div_ceil(64) + 6 } else { 0 };
        let bound = depth as f64 * 2f64.powi(-24) * abs;
        let out = run(&reduce::sum(n).unwrap(), &[&x], &scalar_outputs(n));
        assert_close(&format!("sum n={n}"), &out[1], &[reduce::cpu_sum(&x)], bound, 0.0);
    }
}

#[test]
fn long_sums_are_cut_into_enough_workgroups() {
    // The parallelism floor: 64 Ki elements already run on 128 workgroups, and the partition depends
    // on the length alone.
    let p = reduce::Partition::of(1 << 16);
    assert_eq!((p.parts, p.chunk), (128, 512));
    for n in [1, 511, 512, 513, 65_535, 1_000_003, 1 << 26] {
        let p = reduce::Partition::of(n);
        assert!(p.parts * p.chunk >= n && (p.parts - 1) * p.chunk < n, "n={n}: {p:?}");
        assert!(p.parts <= reduce::MAX_PARTS, "n={n}: {p:?}");
        assert_eq!(reduce::sum(n).unwrap().len(), if p.parts == 1 { 1 } else { 2 }, "n={n}");
    }
    assert_eq!(reduce::sum(1 << 20).unwrap()[0].workgroups, [2048, 1, 1]);
}

#[test]
fn sums_are_bit_identical_across_runs() {
    for n in [257, 1_000_003] {
        let x = rand_vec(11, n, -1.0, 1.0);
        let a = run(&reduce::sum(n).unwrap(), &[&x], &scalar_outputs(n));
        let b = run(&reduce::sum(n).unwrap(), &[&x], &scalar_outputs(n));
        assert_eq!(a[1][0].to_bits(), b[1][0].to_bits(), "sum n={n}");
        let calls = reduce::sum_channels(4, 3, n / 4).unwrap();
        let a = run(&calls, &[&x], &[3]);
        let b = run(&calls, &[&x], &[3]);
        assert_eq!(a[1], b[1], "sum_channels n={n}");
    }
}

#[test]
fn channel_and_row_sums() {
    // (n, c, s): batch 1, odd sizes, linear bias [batch, features], conv bias shapes of the models.
    for (n, c, s) in [(1, 1, 1), (1, 3, 7), (5, 1, 13), (3, 257, 1), (2, 32, 256), (2, 128, 16), (4, 7, 999)] {
        let x = ints((n * c * s) as u64, n * c * s);
        let out = run(&reduce::sum_channels(n, c, s).unwrap(), &[&x], &[c]);
        assert_eq!(out[1], reduce::cpu_sum_channels(&x, n, c, s), "sum_channels {n}x{c}x{s}");
    }
    let (r, c) = (5, 2048);
    let x = f32_exact(rand_vec(5, r * c, -1.0, 1.0));
    let out = run(&reduce::sum_rows(r, c).unwrap(), &[&x], &[c]);
    // Five terms per column added in sequence: at most 5 roundings of 2^-24 relative to Σ|x| <= 5.
    assert_close("sum_rows", &out[1], &reduce::cpu_sum_channels(&x, r, c, 1), 5.0 * 5.0 * 2f64.powi(-24), 0.0);
}

#[test]
fn bad_shapes_are_refused() {
    let e = reduce::sum(0).unwrap_err().to_string();
    assert!(e.contains("sum_forward") && e.contains("is 0"), "{e}");
    let e = reduce::sum_channels(2, 0, 3).unwrap_err().to_string();
    assert!(e.contains("sum_channels_forward") && e.contains("c is 0"), "{e}");
    let e = reduce::sum_channels(1 << 16, 1 << 16, 2).unwrap_err().to_string();
    assert!(e.contains("2^32"), "{e}");
}
