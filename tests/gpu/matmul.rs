use crate::common;

use common::*;
use gputrain::ops::matmul::{self, MatmulShape};

/// f32 unit roundoff.
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Inputs as the GPU sees them (rounded to f32), so the f64 reference differs from the kernel only by
/// the kernel's own arithmetic.
fn rand_f32(seed: u64, n: usize) -> Vec<f64> {
    to_f64(&to_f32(&rand_vec(seed, n, -1.0, 1.0)))
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// Checks a K-term f32 dot product against the f64 reference. Each of the K sequential FMAs (and the
/// bias and accumulate additions) rounds with relative error at most 2^-24 of a partial sum bounded
/// by scale = Σ|a||b| (+ |bias| + |old C|). Those errors are independent and roughly uniform, so they
/// sum like a random walk: standard deviation ≈ sqrt(K + 2)·2^-24·scale / sqrt(3). Allowing
/// 4·sqrt(K + 2)·2^-24·scale is about 7 standard deviations, safe over the ~10^5 elements tested, yet
/// far below the K·2^-24·scale worst case that a bug (a missed or doubled term) would exceed.
fn assert_gemm_close(what: &str, got: &[f64], want: &[f64], scale: &[f64], k: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let f = 4.0 * ((k + 2) as f64).sqrt() * U;
    for i in 0..got.len() {
        let tol = f * scale[i] + 1e-30;
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "{what}: element {i} is {} but the reference is {} (tolerance {tol:e})",
            got[i],
            want[i]
        );
    }
}

/// Runs `matmul` (or its portable path) on random data, C starting from random junk, and checks it
/// against the CPU reference. Returns the GPU result.
fn check_matmul(s: MatmulShape, bias: bool, accumulate: bool, portable: bool, seed: u64) -> Vec<f64> {
    let calls =
        if portable { matmul::matmul_portable(s, bias, accumulate) } else { matmul::matmul(s, bias, accumulate) };
    let what = format!("{s:?} bias={bias} accumulate={accumulate} portable={portable}");
    check_gemm(&what, &calls.unwrap(), &[], s, bias, accumulate, seed)
}

/// Runs `calls` (a matmul of shape `s` with operands `[a, b, (bias,) (scratch...,) c]`, of either
/// kernel set) on random data, the scratch zeroed and C starting from random junk, and checks the
/// result against the CPU reference. A split-K product's fold adds one rounding per split on top of
/// the K of the chunks, so the tolerance counts K plus the scratch's splits.
pub(crate) fn check_gemm(
    what: &str,
    calls: &[gputrain::runtime::KernelCall],
    scratch: &[usize],
    s: MatmulShape,
    bias: bool,
    accumulate: bool,
    seed: u64,
) -> Vec<f64> {
    let a = rand_f32(seed, s.a_len());
    let b = rand_f32(seed + 1, s.b_len());
    let bv = rand_f32(seed + 2, s.n);
    let c0 = rand_f32(seed + 3, s.c_len());
    let zeros: Vec<Vec<f64>> = scratch.iter().map(|&n| vec![0.0; n]).collect();
    let mut inputs: Vec<&[f64]> = if bias { vec![&a, &b, &bv] } else { vec![&a, &b] };
    inputs.extend(zeros.iter().map(Vec::as_slice));
    inputs.push(&c0);
    let out = run(calls, &inputs, &[]);
    let got = out.last().unwrap().clone();

    let mut want = matmul::cpu_matmul(&a, &b, s);
    let mut scale = matmul::cpu_matmul(&abs(&a), &abs(&b), s);
    for e in 0..s.c_len() {
        if bias {
            want[e] += bv[e % s.n];
            scale[e] += bv[e % s.n].abs();
        }
        if accumulate {
            want[e] += c0[e];
            scale[e] += c0[e].abs();
        }
    }
    let splits: usize = scratch.iter().map(|&n| n / s.c_len()).sum();
    assert_gemm_close(what, &got, &want, &scale, s.k + splits);
    got
}

pub(crate) type Variant = fn(usize, usize, usize) -> MatmulShape;
pub(crate) const VARIANTS: [Variant; 3] = [MatmulShape::nt, MatmulShape::nn, MatmulShape::tn];

#[test]
fn all_variants_match_cpu_on_odd_shapes() {
    // Sizes around and off the 64×64 tile and the 4-wide k step: 1, 3, 33, 63..65, 100, 129.
    let shapes = [(1, 1, 1), (3, 5, 7), (1, 33, 100), (33, 100, 3), (64, 64, 64), (65, 63, 66), (100, 129, 33)];
    let mut seed = 0;
    for make in VARIANTS {
        for &(m, n, k) in &shapes {
            for (bias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
                seed += 10;
                check_matmul(make(m, n, k), bias, accumulate, false, seed);
            }
        }
    }
}

#[test]
fn tall_tile_matches_cpu() {
    // 515 rows leave a ragged last tile of the 128-row kernel.
    assert!(matmul::uses_tall_tile(515, 70));
    for (i, make) in VARIANTS.into_iter().enumerate() {
        check_matmul(make(515, 70, 37), i == 0, i == 2, false, 900 + i as u64);
    }
}

#[test]
fn long_k_products_stay_within_the_f32_bound() {
    for (i, make) in VARIANTS.into_iter().enumerate() {
        check_matmul(make(70, 66, 1500), false, false, false, 700 + i as u64);
    }
}

#[test]
fn portable_path_is_bit_identical_to_the_fast_path() {
    // Same FMAs in the same k order: the paths must agree exactly, not just within tolerance.
    for (i, make) in VARIANTS.into_iter().enumerate() {
        // The last shape takes the tall (128-row) entry point.
        assert!(matmul::uses_tall_tile(515, 70) && !matmul::uses_tall_tile(70, 66));
        for (m, n, k) in [(5, 9, 13), (70, 66, 37), (515, 70, 9)] {
            let s = make(m, n, k);
            let seed = 500 + 10 * i as u64 + m as u64;
            let fast = check_matmul(s, true, true, false, seed);
            let portable = check_matmul(s, true, true, true, seed);
            assert_eq!(fast, portable, "{s:?}: portable path differs from the fast path");
        }
    }
}

#[test]
fn bias_grad_matches_cpu() {
    for (m, n) in [(1, 1), (3, 70), (128, 32), (7, 2048)] {
        let dy = rand_f32(m as u64, m * n);
        let db0 = rand_f32(n as u64, n);
        let want = matmul::cpu_bias_grad(&dy, m, n);
        let scale = matmul::cpu_bias_grad(&abs(&dy), m, n);
        let out = run(&matmul::bias_grad(m, n, false).unwrap(), &[&dy], &[n]);
        // M additions in f32: the same random-walk bound as a K = M product.
        assert_gemm_close(&format!("bias_grad {m}x{n}"), &out[1], &want, &scale, m);
        let out = run(&matmul::bias_grad(m, n, true).unwrap(), &[&dy, &db0], &[]);
        let want: Vec<f64> = want.iter().zip(&db0).map(|(g, d)| g + d).collect();
        let scale: Vec<f64> = scale.iter().zip(&db0).map(|(g, d)| g + d.abs()).collect();
        assert_gemm_close(&format!("bias_grad accumulate {m}x{n}"), &out[1], &want, &scale, m);
    }
}

/// One Linear layer on the GPU (forward and all three gradients) against the CPU reference.
fn check_linear(batch: usize, in_f: usize, out_f: usize, seed: u64) {
    let x = rand_f32(seed, batch * in_f);
    let w = rand_f32(seed + 1, out_f * in_f);
    let b = rand_f32(seed + 2, out_f);
    let dy = rand_f32(seed + 3, batch * out_f);
    let what = format!("linear {in_f}->{out_f} batch {batch}");

    let out = run(&matmul::linear_forward(batch, in_f, out_f).unwrap(), &[&x, &w, &b], &[batch * out_f]);
    let want = matmul::cpu_linear_forward(&x, &w, &b, batch, in_f, out_f);
    let scale = matmul::cpu_linear_forward(&abs(&x), &abs(&w), &abs(&b), batch, in_f, out_f);
    assert_gemm_close(&format!("{what} forward"), &out[3], &want, &scale, in_f);

    let out = run(&matmul::linear_backward_input(batch, in_f, out_f, false).unwrap(), &[&dy, &w], &[batch * in_f]);
    let want = matmul::cpu_linear_backward_input(&dy, &w, batch, in_f, out_f);
    let scale = matmul::cpu_linear_backward_input(&abs(&dy), &abs(&w), batch, in_f, out_f);
    assert_gemm_close(&format!("{what} backward input"), &out[2], &want, &scale, out_f);

    // Accumulating onto an existing gradient, as for a second micro-batch.
    let dw0 = rand_f32(seed + 4, out_f * in_f);
    let out = run(&matmul::linear_backward_weight(batch, in_f, out_f, true).unwrap(), &[&dy, &x, &dw0], &[]);
    let want: Vec<f64> =
        matmul::cpu_linear_backward_weight(&dy, &x, batch, in_f, out_f).iter().zip(&dw0).map(|(g, d)| g + d).collect();
    let scale: Vec<f64> = matmul::cpu_linear_backward_weight(&abs(&dy), &abs(&x), batch, in_f, out_f)
        .iter()
        .zip(&dw0)
        .map(|(g, d)| g + d.abs())
        .collect();
    assert_gemm_close(&format!("{what} backward weight"), &out[2], &want, &scale, batch);

    let out = run(&matmul::linear_backward_bias(batch, out_f, false).unwrap(), &[&dy], &[out_f]);
    let want = matmul::cpu_bias_grad(&dy, batch, out_f);
    let scale = matmul::cpu_bias_grad(&abs(&dy), batch, out_f);
    assert_gemm_close(&format!("{what} backward bias"), &out[1], &want, &scale, batch);
}

#[test]
fn vae_linear_layers_match_cpu() {
    // fc_mu / fc_logvar: 2048 -> 32; decoder_fc: 32 -> 2048 (the VAE, z = 32).
    for batch in [1, 3, 8] {
        check_linear(batch, 2048, 32, 40 + batch as u64);
        check_linear(batch, 32, 2048, 80 + batch as u64);
    }
}

#[test]
fn linear_backward_passes_gradcheck() {
    let (batch, in_f, out_f) = (3, 5, 4);
    let x = rand_vec(1, batch * in_f, -1.0, 1.0);
    let w = rand_vec(2, out_f * in_f, -1.0, 1.0);
    let b = rand_vec(3, out_f, -1.0, 1.0);
    // Loss = <y, r>, so dL/dy = r.
    let r = rand_vec(4, batch * out_f, -1.0, 1.0);
    let fwd = |x: &[f64], w: &[f64], b: &[f64]| dot(&matmul::cpu_linear_forward(x, w, b, batch, in_f, out_f), &r);

    // The loss is linear in each argument, so central differences are exact up to f64 rounding of
    // the loss (~1e-16 / h = 1e-10).
    let h = 1e-6;
    let dx = numeric_grad(&x, h, |x| fwd(x, &w, &b));
    let dw = numeric_grad(&w, h, |w| fwd(&x, w, &b));
    let db = numeric_grad(&b, h, |b| fwd(&x, &w, b));
    assert_close("dx", &matmul::cpu_linear_backward_input(&r, &w, batch, in_f, out_f), &dx, 1e-8, 1e-8);
    assert_close("dW", &matmul::cpu_linear_backward_weight(&r, &x, batch, in_f, out_f), &dw, 1e-8, 1e-8);
    assert_close("db", &matmul::cpu_bias_grad(&r, batch, out_f), &db, 1e-8, 1e-8);
}

#[test]
fn bad_shapes_are_refused_clearly() {
    let e = matmul::matmul(MatmulShape::nt(0, 4, 4), false, false).unwrap_err().to_string();
    assert!(e.contains("matmul_forward") && e.contains("M is 0"), "{e}");
    let e = matmul::linear_forward(2, 0, 3).unwrap_err().to_string();
    assert!(e.contains("K is 0"), "{e}");
    let e = matmul::bias_grad(4, 0, false).unwrap_err().to_string();
    assert!(e.contains("matmul_backward_bias") && e.contains("N is 0"), "{e}");

    let e = MatmulShape::infer([2, 3], [4, 5], false, false).unwrap_err().to_string();
    assert!(e.contains("inner dimensions differ"), "{e}");
    let s = MatmulShape::infer([3, 2], [5, 3], true, true).unwrap();
    assert_eq!(s, MatmulShape { m: 2, n: 5, k: 3, trans_a: true, trans_b: true });

    // 2^33 outputs cannot be indexed by the u32 kernels.
    let e = matmul::matmul(MatmulShape::nt(1 << 17, 1 << 16, 1), false, false).unwrap_err().to_string();
    assert!(e.contains("2^32"), "{e}");
    // More row tiles than one grid dimension holds.
    let e = matmul::matmul(MatmulShape::nt(65_536 * matmul::TILE_M_TALL, 1, 1), false, false).unwrap_err().to_string();
    assert!(e.contains("65535"), "{e}");
}
