//! Inception Score and Fréchet distance over a classifier's outputs, in f64 on the host (they run
//! once per evaluation on a few thousand vectors, far from the training step's hot path).

use anyhow::{bail, Result};

/// IS = exp(E_x KL(p(y|x) ‖ p(y))) for `probs` [n, classes] (rows sum to 1).
pub fn inception_score(probs: &[f64], classes: usize) -> Result<f64> {
    if classes == 0 || probs.is_empty() || !probs.len().is_multiple_of(classes) {
        bail!("inception score: {} probabilities do not form rows of {classes}", probs.len());
    }
    let n = probs.len() / classes;
    let mut marginal = vec![0.0; classes];
    for row in probs.chunks(classes) {
        marginal.iter_mut().zip(row).for_each(|(m, p)| *m += p / n as f64);
    }
    let kl: f64 = probs
        .chunks(classes)
        .map(|row| row.iter().zip(&marginal).filter(|(p, _)| **p > 0.0).map(|(p, m)| p * (p / m).ln()).sum::<f64>())
        .sum::<f64>()
        / n as f64;
    Ok(kl.exp())
}

/// Mean and covariance (divided by n − 1) of `x` [n, d].
pub fn mean_cov(x: &[f64], d: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    if d == 0 || !x.len().is_multiple_of(d) || x.len() / d < 2 {
        bail!("statistics need at least two rows of {d} features, got {} values", x.len());
    }
    let n = x.len() / d;
    let mut mean = vec![0.0; d];
    for row in x.chunks(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n as f64);
    }
    let mut cov = vec![0.0; d * d];
    for row in x.chunks(d) {
        for i in 0..d {
            let a = row[i] - mean[i];
            for j in i..d {
                cov[i * d + j] += a * (row[j] - mean[j]);
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / (n - 1) as f64;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    Ok((mean, cov))
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: (eigenvalues, eigenvectors
/// as columns of a row-major d×d matrix).
fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..d * d).filter(|k| k / d != k % d).map(|k| a[k] * a[k]).sum();
        let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                c[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    c
}

/// Fréchet distance between Gaussians (μ1, Σ1) and (μ2, Σ2):
/// |μ1 − μ2|² + Tr Σ1 + Tr Σ2 − 2 Tr (Σ1^½ Σ2 Σ1^½)^½ (the symmetric form of Tr (Σ1 Σ2)^½).
pub fn frechet_distance(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64]) -> f64 {
    let d = m1.len();
    let (w, v) = symmetric_eigen(c1, d);
    // Σ1^½ = V diag(√λ) Vᵀ; negative eigenvalues are round-off of a PSD matrix.
    let mut s1 = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            s1[i * d + j] = (0..d).map(|k| v[i * d + k] * w[k].max(0.0).sqrt() * v[j * d + k]).sum();
        }
    }
    let m = matmul(&matmul(&s1, c2, d), &s1, d);
    let sym: Vec<f64> = (0..d * d).map(|k| 0.5 * (m[k] + m[(k % d) * d + k / d])).collect();
    let (lam, _) = symmetric_eigen(&sym, d);
    let tr_sqrt: f64 = lam.iter().map(|l| l.max(0.0).sqrt()).sum();
    let diff: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    (diff + tr(c1) + tr(c2) - 2.0 * tr_sqrt).max(0.0)
}

/// FID of two feature sets [n, d].
pub fn fid(a: &[f64], b: &[f64], d: usize) -> Result<f64> {
    let (m1, c1) = mean_cov(a, d)?;
    let (m2, c2) = mean_cov(b, d)?;
    Ok(frechet_distance(&m1, &c1, &m2, &c2))
}
