//! Inception Score and FID against cases with known answers.

use gputrain::scores::{fid, frechet_distance, inception_score, mean_cov};
use rand::{Rng, SeedableRng};

fn one_hot(n: usize, k: usize) -> Vec<f64> {
    (0..n).flat_map(|i| (0..k).map(move |c| if c == i % k { 1.0 } else { 0.0 })).collect()
}

#[test]
fn inception_score_of_confident_balanced_predictions_is_the_class_count() {
    for k in [1, 2, 10] {
        let is = inception_score(&one_hot(10 * k, k), k).unwrap();
        assert!((is - k as f64).abs() < 1e-12, "k = {k}: {is}");
    }
    // Uniform predictions carry no information: IS 1.
    assert!((inception_score(&[0.1; 100], 10).unwrap() - 1.0).abs() < 1e-12);
    // All images confidently the same class (mode collapse): IS 1.
    let same: Vec<f64> = (0..50).flat_map(|_| (0..10).map(|c| if c == 3 { 1.0 } else { 0.0 })).collect();
    assert!((inception_score(&same, 10).unwrap() - 1.0).abs() < 1e-12);
    assert!(inception_score(&[0.5; 3], 2).is_err());
}

fn gaussian(seed: u64, n: usize, d: usize, shift: f64, scale: f64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * d)
        .map(|_| {
            // Sum of 12 uniforms − 6: a cheap, adequate unit normal.
            let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
            shift + scale * z
        })
        .collect()
}

#[test]
fn fid_of_a_set_with_itself_is_zero_and_of_different_sets_positive() {
    let d = 8;
    let a = gaussian(1, 500, d, 0.0, 1.0);
    // Same statistics: zero up to the eigen-solver's round-off (relative 1e-9 of the trace ≈ 8).
    assert!(fid(&a, &a, d).unwrap().abs() < 1e-8, "{}", fid(&a, &a, d).unwrap());
    let shifted = gaussian(2, 500, d, 1.0, 1.0);
    let wider = gaussian(3, 500, d, 0.0, 2.0);
    let same_law = gaussian(4, 500, d, 0.0, 1.0);
    let (f_shift, f_wide, f_same) =
        (fid(&a, &shifted, d).unwrap(), fid(&a, &wider, d).unwrap(), fid(&a, &same_law, d).unwrap());
    // Expected: shift → d·1² = 8; doubled σ → d·(2 − 1)² = 8; same law → sampling noise only.
    assert!((f_shift - 8.0).abs() < 1.5, "{f_shift}");
    assert!((f_wide - 8.0).abs() < 2.0, "{f_wide}");
    assert!(f_same < 0.5 && f_same > 0.0, "{f_same}");
}

#[test]
fn frechet_distance_matches_the_closed_form_for_non_diagonal_covariances() {
    // Σ1 = R diag(1, 4) Rᵀ and Σ2 = R diag(9, 1) Rᵀ share eigenvectors, so
    // Tr(Σ1 Σ2)^½ = √9 + √4 = 5 and FID = |Δμ|² + (5 + 10) − 2·5 = |Δμ|² + 5.
    let (c, s) = (0.6f64, 0.8f64);
    let r = [c, -s, s, c];
    let cov = |l: [f64; 2]| {
        let mut m = [0.0; 4];
        for i in 0..2 {
            for j in 0..2 {
                m[i * 2 + j] = (0..2).map(|k| r[i * 2 + k] * l[k] * r[j * 2 + k]).sum();
            }
        }
        m
    };
    let f = frechet_distance(&[0.0, 0.0], &cov([1.0, 4.0]), &[1.0, 2.0], &cov([9.0, 1.0]));
    assert!((f - 10.0).abs() < 1e-9, "{f}");
    let (m, cv) = mean_cov(&[1.0, 2.0, 3.0, 6.0], 2).unwrap();
    assert_eq!(m, [2.0, 4.0]);
    assert_eq!(cv, [2.0, 4.0, 4.0, 8.0]);
}
