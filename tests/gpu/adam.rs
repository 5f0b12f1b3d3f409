use crate::common;

use common::*;
use gputrain::ops::adam::{self, AdamConfig};
use gputrain::ops::random;

/// Runs `steps` Adam updates on the GPU (increment after each, as a training step does) and returns
/// the parameters, m and v.
fn gpu_adam(p0: &[f64], grads: &[Vec<f64>], cfg: &AdamConfig) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let g = gpu();
    let n = p0.len();
    let param = g.upload_f32("param", &to_f32(p0)).unwrap();
    let grad = g.zeros("grad", n as u64 * 4).unwrap();
    let m = g.zeros("m", n as u64 * 4).unwrap();
    let v = g.zeros("v", n as u64 * 4).unwrap();
    let counters = g.zeros("counters", 16).unwrap();
    let update = adam::step(n, cfg, 2).unwrap();
    let increment = random::increment_step(2);
    let ops = [param.whole(), grad.whole(), m.whole(), v.whole(), counters.whole()];
    for gs in grads {
        g.write(&grad, &to_f32(gs));
        g.run(&update, &ops).unwrap();
        g.run(&increment, &[counters.whole()]).unwrap();
    }
    assert_eq!(g.read_u32(counters.whole()).unwrap()[2], grads.len() as u32, "step counter");
    (g.read_f32(param.whole()).unwrap(), g.read_f32(m.whole()).unwrap(), g.read_f32(v.whole()).unwrap())
}

#[test]
fn adam_matches_hand_computed_sequence() {
    // One parameter, three steps, lr 0.1, default betas, computed by hand:
    // t=1 g=1: m=0.1, v=0.001, m̂=1, v̂=1 → p = 1 - 0.1·1/(1+1e-8) = 0.9
    // t=2 g=-2: m=0.09-0.2=-0.11, v=0.000999+0.004=0.004999, m̂=-0.11/0.19=-0.578947,
    //     v̂=0.004999/0.001999=2.500750, √v̂=1.581376 → p = 0.9 + 0.1·0.366099 = 0.936610
    // t=3 g=0.5: m=-0.099+0.05=-0.049, v=0.004994001+0.00025=0.005244001, m̂=-0.049/0.271=-0.180812,
    //     v̂=0.005244001/0.002997001=1.749749, √v̂=1.322781 → p = 0.936610 + 0.1·0.136693 = 0.950279
    let cfg = AdamConfig { lr: 0.1, ..Default::default() };
    let (p, _, _) = gpu_adam(&[1.0], &[vec![1.0], vec![-2.0], vec![0.5]], &cfg);
    // Six significant digits of the hand computation; f32 pow/sqrt add ~1e-7 relative.
    assert!((p[0] as f64 - 0.950279).abs() < 2e-6, "adam after 3 steps: {}", p[0]);
}

#[test]
fn adam_matches_cpu_reference_over_many_steps() {
    let n = 1001;
    let p0 = rand_vec(1, n, -1.0, 1.0);
    let grads: Vec<Vec<f64>> = (0..7).map(|s| rand_vec(10 + s, n, -3.0, 3.0)).collect();
    for cfg in [
        AdamConfig { lr: 1e-3, ..Default::default() },
        AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
        AdamConfig { lr: 1e-2, weight_decay: 0.01, ..Default::default() },
    ] {
        let (p, m, v) = gpu_adam(&p0, &grads, &cfg);
        let (mut pc, mut mc, mut vc) = (p0.clone(), vec![0.0; n], vec![0.0; n]);
        for (t, gs) in grads.iter().enumerate() {
            adam::cpu_step(&mut pc, gs, &mut mc, &mut vc, &cfg, t as u32 + 1);
        }
        // Each update moves p by at most ~lr; f32 rounding of m̂/√v̂ (~1e-6 relative) times lr over
        // 7 steps plus f32 storage of p (6e-8) bounds the error well below 1e-6 absolute.
        assert_close(&format!("param {cfg:?}"), &to_f64(&p), &pc, 1e-6, 1e-6);
        assert_close(&format!("m {cfg:?}"), &to_f64(&m), &mc, 1e-6, 1e-5);
        assert_close(&format!("v {cfg:?}"), &to_f64(&v), &vc, 1e-6, 1e-5);
    }
}

#[test]
fn adam_rejects_bad_hyper_parameters() {
    let cfg = AdamConfig { lr: f32::NAN, ..Default::default() };
    let e = adam::step(10, &cfg, 0).unwrap_err().to_string();
    assert!(e.contains("adam"), "{e}");
    assert!(adam::step(0, &AdamConfig::default(), 0).is_err());
}
