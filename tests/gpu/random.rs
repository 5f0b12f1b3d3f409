use crate::common;

use common::*;
use gputrain::ops::random::{self, Distribution, RngKey};

/// Draws on the GPU with the step counter set to `step`.
fn draw(n: usize, dist: Distribution, key: RngKey, step: u32) -> Vec<f32> {
    let g = gpu();
    let mut counters = vec![0u32; 4];
    counters[key.slot] = step;
    let c = g.upload("counters", &counters).unwrap();
    let out = g.zeros("out", n as u64 * 4).unwrap();
    g.run(&random::fill(n, dist, key).unwrap(), &[c.whole(), out.whole()]).unwrap();
    g.read_f32(out.whole()).unwrap()
}

const KEY: RngKey = RngKey { seed: 0x0123_4567_89ab_cdef, slot: 1, stream: 3 };
const NORMAL: Distribution = Distribution::Normal { mean: 0.0, std: 1.0 };

#[test]
fn philox_matches_published_test_vectors() {
    // Random123 known-answer tests for philox4x32_10.
    assert_eq!(random::philox([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(random::philox([0xffffffff; 4], [0xffffffff; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(
        random::philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn gpu_draws_match_cpu_reference() {
    let n = 10_007;
    let uni = Distribution::Uniform { low: -2.0, high: 3.0 };
    // Uniform: the same 24 bits scaled in f32 vs f64, so within a few ulp of 5.
    assert_close("uniform", &to_f64(&draw(n, uni, KEY, 7)), &random::cpu_fill(n, uni, KEY, 7), 1e-6, 0.0);
    // Normal: the shader's log/sqrt/cos are f32 with a few ulp each; |z| < 6, so 1e-5 absolute.
    assert_close("normal", &to_f64(&draw(n, NORMAL, KEY, 7)), &random::cpu_fill(n, NORMAL, KEY, 7), 1e-5, 1e-5);
}

#[test]
fn normal_draws_have_unit_moments_and_are_reproducible() {
    let n = 200_000;
    let a = draw(n, NORMAL, KEY, 42);
    let mean = a.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    // Standard errors at n = 200 000: mean 0.0022, variance 0.0032; allow about 4.5 of them.
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.015, "variance {var}");
    assert_eq!(a, draw(n, NORMAL, KEY, 42), "identical keys must give identical draws");
    assert_ne!(a, draw(n, NORMAL, KEY, 43), "a new step must give new draws");
    assert_ne!(a, draw(n, NORMAL, RngKey { stream: 4, ..KEY }, 42), "a new stream must give new draws");
}

#[test]
fn step_increment_advances_only_its_slot() {
    let g = gpu();
    let c = g.upload("counters", &[5u32, 9, 0, 0]).unwrap();
    g.run(&random::increment_step(1), &[c.whole()]).unwrap();
    g.run(&random::increment_step(1), &[c.whole()]).unwrap();
    assert_eq!(g.read_u32(c.whole()).unwrap(), vec![5, 11, 0, 0]);
}
