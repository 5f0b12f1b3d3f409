//! The mode-collapse indicator: how different the images of a batch are from one another.

/// Below this ratio of generated to real batch diversity the run warns of mode collapse.
pub const COLLAPSE_RATIO: f64 = 0.1;
/// An untrained generator's images are all alike without having collapsed: no warning before this step.
pub const COLLAPSE_WARMUP_STEPS: u64 = 200;

/// Mean squared distance between two images of a batch (NCHW, `per` values each): 2n/(n−1)·Σ var.
pub fn diversity(x: &[f32], per: usize) -> f64 {
    let n = x.len() / per;
    if n < 2 {
        return 0.0;
    }
    let mut total = 0.0;
    for p in 0..per {
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let v = x[i * per + p] as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        total += (s2 / n as f64 - mean * mean).max(0.0);
    }
    2.0 * n as f64 / (n - 1) as f64 * total
}
