use crate::common;

use common::*;
use gputrain::ops::loss::{self, BceReduction};

const REDUCTIONS: [BceReduction; 2] = [BceReduction::Mean, BceReduction::SumPerItemMeanOverBatch];

/// (batch, per_item): batch 1, the GAN's D output at batch 4 and 128, the VAE's 32×32 images at
/// batch 3, odd sizes, and a large n for the strided reduction loop.
const SHAPES: [(usize, usize); 7] = [(1, 1), (4, 1), (128, 1), (3, 1024), (5, 257), (1, 3), (2, 70_001)];

fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    to_f64(&to_f32(&v))
}

/// Relative rounding bound of the one-workgroup sum of n terms: ceil(n/64) sequential additions per
/// invocation and a 6-level tree, each rounding by at most 2^-24 relative to Σ|terms|.
fn sum_err(n: usize) -> f64 {
    (n.div_ceil(64) + 6) as f64 * 2f64.powi(-24)
}

/// Soft targets (the VAE's grey pixels), hard 0/1 labels, and smoothed labels (0.9) for the GAN.
fn targets(kind: usize, seed: u64, n: usize) -> Vec<f64> {
    match kind {
        0 => rand_vec(seed, n, 0.0, 1.0),
        1 => rand_vec(seed, n, 0.0, 1.0).into_iter().map(|v| v.round()).collect(),
        _ => vec![0.9; n],
    }
}

#[test]
fn bce_forward_matches_cpu() {
    for (k, (batch, per_item)) in SHAPES.into_iter().enumerate() {
        let n = batch * per_item;
        let p = f32_exact(rand_vec(k as u64, n, 0.001, 0.999));
        for kind in 0..3 {
            let t = f32_exact(targets(kind, 50 + k as u64, n));
            for red in REDUCTIONS {
                let out = run(
                    &loss::bce_forward(batch, per_item, red).unwrap(),
                    &[&p, &t],
                    &scalar_outputs(batch * per_item),
                );
                let want = loss::cpu_bce_forward(&p, &t, batch, red);
                // Each term is < 7 and Σ|ℓ| equals the unscaled loss. Beyond the sum's rounding,
                // each f32 log has an absolute error of about 2^-21, i.e. up to 2^-20 per term.
                let scale = red.scale(batch, per_item);
                let tol = sum_err(n) * want + scale * n as f64 * 2f64.powi(-20);
                assert_close(&format!("bce {batch}x{per_item} targets {kind} {red:?}"), &out[2], &[want], tol, 0.0);
            }
        }
    }
}

#[test]
fn bce_backward_matches_cpu() {
    for (k, (batch, per_item)) in SHAPES.into_iter().enumerate() {
        let n = batch * per_item;
        let p = f32_exact(rand_vec(k as u64 + 9, n, 0.001, 0.999));
        let t = f32_exact(targets(k % 3, 60 + k as u64, n));
        for red in REDUCTIONS {
            let out = run(&loss::bce_backward(batch, per_item, red, 1.0, false).unwrap(), &[&p, &t], &[n]);
            let want = loss::cpu_bce_backward(&p, &t, batch, red);
            // A few f32 roundings per element (subtraction, product, division, f32 scale): ~5 ulp.
            assert_close(&format!("dp {batch}x{per_item} {red:?}"), &out[2], &want, 0.0, 5.0 * 2f64.powi(-24));
        }
    }
}

#[test]
fn bce_backward_weight_and_accumulate() {
    let (batch, per_item) = (3, 17);
    let n = batch * per_item;
    let p = f32_exact(rand_vec(1, n, 0.01, 0.99));
    let t = f32_exact(rand_vec(2, n, 0.0, 1.0));
    let prior = f32_exact(rand_vec(3, n, -1.0, 1.0));
    let red = BceReduction::Mean;
    let out = run(&loss::bce_backward(batch, per_item, red, -0.5, true).unwrap(), &[&p, &t, &prior], &[]);
    let want: Vec<f64> =
        loss::cpu_bce_backward(&p, &t, batch, red).iter().zip(&prior).map(|(g, a)| a - 0.5 * g).collect();
    // The gradient term (~5 ulp) plus one rounding of the addition, on values up to ~2.
    assert_close("accumulated dp", &out[2], &want, 4.0 * 2f64.powi(-24), 6.0 * 2f64.powi(-24));
}

#[test]
fn bce_gradcheck() {
    let (batch, per_item) = (3, 5);
    let n = batch * per_item;
    let p = rand_vec(4, n, 0.05, 0.95);
    for kind in 0..3 {
        let t = targets(kind, 5, n);
        for red in REDUCTIONS {
            let num = numeric_grad(&p, 1e-6, |p| loss::cpu_bce_forward(p, &t, batch, red));
            let ana = loss::cpu_bce_backward(&p, &t, batch, red);
            // f64 central differences, h = 1e-6, on logs of arguments >= 0.05: error ~1e-8 at worst.
            assert_close(&format!("bce gradcheck targets {kind} {red:?}"), &ana, &num, 1e-7, 1e-6);
        }
    }
}

#[test]
fn bce_clamps_at_zero_and_one() {
    let p = [0.0, 1.0, 0.0, 1.0, 0.5, 1.0];
    let t = f32_exact(vec![1.0, 0.0, 0.0, 1.0, 0.3, 0.9]);
    let (batch, per_item) = (2, 3);
    for red in REDUCTIONS {
        let out = run(&loss::bce_forward(batch, per_item, red).unwrap(), &[&p, &t], &scalar_outputs(batch * per_item));
        let want = loss::cpu_bce_forward(&p, &t, batch, red);
        assert!(want.is_finite() && want > 200.0 * red.scale(batch, per_item));
        // Terms of 100, 100, 0, 0, ~0.75, 10: a few roundings of a sum near 211.
        assert_close(&format!("clamped bce {red:?}"), &out[2], &[want], 0.0, 1e-6);
        let out = run(&loss::bce_backward(batch, per_item, red, 1.0, false).unwrap(), &[&p, &t], &[6]);
        let want = loss::cpu_bce_backward(&p, &t, batch, red);
        assert!(want.iter().all(|g| g.is_finite()));
        // Finite even where p(1−p) = 0: ±scale·1e12 through the 1e-12 floor (f32(1e-12) is 1 ulp off).
        assert_close(&format!("clamped dp {red:?}"), &out[2], &want, 0.0, 3.0 * 2f64.powi(-24));
    }
}

#[test]
fn kl_matches_cpu_and_gradcheck() {
    for (batch, z) in [(1, 32), (4, 32), (128, 32), (3, 7), (1, 1)] {
        let n = batch * z;
        let mu = f32_exact(rand_vec(n as u64, n, -2.0, 2.0));
        let lv = f32_exact(rand_vec(n as u64 + 1, n, -3.0, 1.5));
        let out = run(&loss::kl_forward(batch, z).unwrap(), &[&mu, &lv], &scalar_outputs(batch * z));
        let want = loss::cpu_kl_forward(&mu, &lv, batch);
        // Terms are nonnegative (exp(lv) − 1 − lv >= 0), so Σ|terms| is twice the loss; exp is within
        // 3 + 2·3 = 9 ulp for |lv| <= 3 (WGSL's bound), at most ~9·2^-24·4.5 absolute per term.
        let tol = 2.0 * sum_err(n) * want + n as f64 * 9.0 * 4.5 * 2f64.powi(-24) / batch as f64;
        assert_close(&format!("kl {batch}x{z}"), &out[2], &[want], tol, 0.0);

        let out = run(&loss::kl_backward(batch, z, 1.0, false).unwrap(), &[&mu, &lv], &[n, n]);
        let (dmu, dlv) = loss::cpu_kl_backward(&mu, &lv, batch);
        // dμ: a product with the f32 scale, 2 roundings. dlogvar: exp(lv) < 4.5 within 9 ulp (see above)
        // = 9·2^-22 absolute, kept by the subtraction, then halving and scaling (2 more roundings).
        assert_close(&format!("kl dmu {batch}x{z}"), &out[2], &dmu, 0.0, 2.0 * 2f64.powi(-24));
        assert_close(
            &format!("kl dlogvar {batch}x{z}"),
            &out[3],
            &dlv,
            9.0 * 2f64.powi(-22) / batch as f64,
            2.0 * 2f64.powi(-24),
        );
    }
    let (batch, z) = (3, 4);
    let mu = rand_vec(1, batch * z, -2.0, 2.0);
    let lv = rand_vec(2, batch * z, -3.0, 1.5);
    let (dmu, dlv) = loss::cpu_kl_backward(&mu, &lv, batch);
    // f64 central differences with h = 1e-6 on a polynomial/exponential of O(1) values: ~1e-9.
    assert_close(
        "kl gradcheck mu",
        &dmu,
        &numeric_grad(&mu, 1e-6, |m| loss::cpu_kl_forward(m, &lv, batch)),
        1e-7,
        1e-6,
    );
    let num = numeric_grad(&lv, 1e-6, |l| loss::cpu_kl_forward(&mu, l, batch));
    assert_close("kl gradcheck logvar", &dlv, &num, 1e-7, 1e-6);
}

#[test]
fn reparam_matches_cpu_and_gradcheck() {
    for n in [1, 32, 4 * 32, 128 * 32, 1001] {
        let mu = f32_exact(rand_vec(n as u64, n, -2.0, 2.0));
        let lv = f32_exact(rand_vec(n as u64 + 1, n, -3.0, 1.5));
        let eps = f32_exact(rand_vec(n as u64 + 2, n, -3.0, 3.0));
        let dz = f32_exact(rand_vec(n as u64 + 3, n, -1.0, 1.0));
        let out = run(&loss::reparam_forward(n).unwrap(), &[&mu, &lv, &eps], &[n]);
        // WGSL bounds exp's error by 3 + 2|x| ulp: 6 ulp for |½lv| <= 1.5, carried into the product
        // (|σε| <= 6.4, ulp 2^-21), plus the product's and the sum's roundings on |z| < 8 (ulp 2^-21):
        // 8 ulp of 2^-21.
        let want = loss::cpu_reparam_forward(&mu, &lv, &eps);
        assert_close(&format!("z n={n}"), &out[3], &want, 8.0 * 2f64.powi(-21), 0.0);
        let out = run(&loss::reparam_backward(n, false).unwrap(), &[&lv, &eps, &dz], &[n, n]);
        let (dmu, dlv) = loss::cpu_reparam_backward(&lv, &eps, &dz);
        assert_eq!(out[3], dmu, "dmu is a copy of dz");
        // exp(½lv) within 3 + 2·1.5 = 6 ulp (WGSL's bound), then three products: 9 ulp relative.
        assert_close(&format!("reparam dlogvar n={n}"), &out[4], &dlv, 0.0, 9.0 * 2f64.powi(-24));
    }
    let n = 12;
    let (mu, lv, eps, w) =
        (rand_vec(1, n, -2.0, 2.0), rand_vec(2, n, -3.0, 1.5), rand_vec(3, n, -3.0, 3.0), rand_vec(4, n, -1.0, 1.0));
    let (dmu, dlv) = loss::cpu_reparam_backward(&lv, &eps, &w);
    let num = numeric_grad(&mu, 1e-6, |m| dot(&loss::cpu_reparam_forward(m, &lv, &eps), &w));
    // f64 central differences with h = 1e-6 on smooth O(1) functions: ~1e-9.
    assert_close("reparam gradcheck mu", &dmu, &num, 1e-7, 1e-6);
    let num = numeric_grad(&lv, 1e-6, |l| dot(&loss::cpu_reparam_forward(&mu, l, &eps), &w));
    assert_close("reparam gradcheck logvar", &dlv, &num, 1e-7, 1e-6);
}

/// The VAE's μ and logvar get gradient from the KL term and from z: one op writes, the other adds.
#[test]
fn kl_then_reparam_accumulate_into_mu_and_logvar() {
    let (batch, z) = (3, 8);
    let n = batch * z;
    let mu = f32_exact(rand_vec(1, n, -2.0, 2.0));
    let lv = f32_exact(rand_vec(2, n, -3.0, 1.5));
    let eps = f32_exact(rand_vec(3, n, -3.0, 3.0));
    let dz = f32_exact(rand_vec(4, n, -1.0, 1.0));
    // Combined operands: 0 mu, 1 logvar, 2 eps, 3 dz, 4 dmu, 5 dlogvar.
    let mut calls = loss::kl_backward(batch, z, 1.0, false).unwrap();
    calls[0].operands = vec![0, 1, 4, 5];
    let mut r = loss::reparam_backward(n, true).unwrap();
    r[0].operands = vec![1, 2, 3, 4, 5];
    calls.extend(r);
    // Garbage in dmu/dlogvar beforehand: the writing op must overwrite it.
    let junk = vec![7.0; n];
    let out = run(&calls, &[&mu, &lv, &eps, &dz, &junk, &junk], &[]);
    let (kmu, klv) = loss::cpu_kl_backward(&mu, &lv, batch);
    let (rmu, rlv) = loss::cpu_reparam_backward(&lv, &eps, &dz);
    let add = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>();
    // Sums of two terms with the error bounds of the tests above, plus the addition's rounding.
    assert_close("dmu", &out[4], &add(&kmu, &rmu), 2f64.powi(-22), 3.0 * 2f64.powi(-24));
    assert_close("dlogvar", &out[5], &add(&klv, &rlv), 9.0 * 2f64.powi(-22), 10.0 * 2f64.powi(-24));
}

#[test]
fn losses_are_bit_identical_across_runs() {
    let (batch, per_item) = (16, 1024);
    let n = batch * per_item;
    let p = rand_vec(1, n, 0.001, 0.999);
    let t = rand_vec(2, n, 0.0, 1.0);
    let calls = loss::bce_forward(batch, per_item, BceReduction::SumPerItemMeanOverBatch).unwrap();
    let a = run(&calls, &[&p, &t], &scalar_outputs(n));
    let b = run(&calls, &[&p, &t], &scalar_outputs(n));
    assert_eq!(a[2][0].to_bits(), b[2][0].to_bits());
    let calls = loss::kl_forward(batch, 64).unwrap();
    let a = run(&calls, &[&p, &t], &scalar_outputs(batch * 64));
    let b = run(&calls, &[&p, &t], &scalar_outputs(batch * 64));
    assert_eq!(a[2][0].to_bits(), b[2][0].to_bits());
}

#[test]
fn bad_shapes_are_refused() {
    let e = loss::bce_forward(0, 5, BceReduction::Mean).unwrap_err().to_string();
    assert!(e.contains("bce_forward") && e.contains("batch is 0"), "{e}");
    let e = loss::kl_backward(4, 0, 1.0, false).unwrap_err().to_string();
    assert!(e.contains("kl_backward_input") && e.contains("z is 0"), "{e}");
    let e = loss::reparam_forward(0).unwrap_err().to_string();
    assert!(e.contains("reparam_forward"), "{e}");
    let e = loss::bce_backward(1 << 20, 1 << 12, BceReduction::Mean, 1.0, false).unwrap_err().to_string();
    assert!(e.contains("2^32"), "{e}");
}
