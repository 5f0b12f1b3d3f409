//! Adam with PyTorch's `weight_decay`: a hand-computed sequence where the decay flips a step, and two
//! parameter groups in one store, each trained by its own graph with its own `AdamConfig` (one with
//! weight decay, one without), following the f64 reference of `torch.optim.Adam` step by step under
//! both kernel sets.

use crate::common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Init, Mode, ParamStore};
use gputrain::nn;
use gputrain::ops::adam::{self, AdamConfig};
use gputrain::ops::bce_logits;
use gputrain::ops::loss::BceReduction;
use gputrain::ops::mse::{self, MseReduction};
use gputrain::ops::upsample::{self, UpsampleShape};
use gputrain::runtime::{GpuBuffer, KernelSet};

#[test]
fn adam_weight_decay_matches_hand_computed_sequence() {
    // torch.optim.Adam([p], lr=0.1, weight_decay=0.5) from p = 1 with gradients −0.2, −2, 0.5, by hand:
    // t=1 g=−0.2+0.5·1=0.3: m=0.03, v=0.00009, m̂=0.3, √v̂=0.3 → p = 1 − 0.1 = 0.9 (without the decay
    //     g = −0.2 and p would rise to 1.1)
    // t=2 g=−2+0.5·0.9=−1.55: m=0.027−0.155=−0.128, v=0.00008991+0.0024025=0.00249241,
    //     m̂=−0.128/0.19=−0.673684, v̂=0.00249241/0.001999=1.246828, √v̂=1.116615 → p = 0.960333
    // t=3 g=0.5+0.5·0.960333=0.980166: m=−0.1152+0.0980166=−0.0171834, v=0.00248992+0.00096073
    //     =0.00345064, m̂=−0.0634072, v̂=0.00345064/0.002997001=1.151366, √v̂=1.073017
    //     → p = 0.960333 + 0.1·0.0590925 = 0.966242
    let cfg = AdamConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() };
    let (mut p, mut m, mut v) = ([1.0], [0.0], [0.0]);
    let mut seen = Vec::new();
    for (t, g) in [-0.2, -2.0, 0.5].into_iter().enumerate() {
        adam::cpu_step(&mut p, &[g], &mut m, &mut v, &cfg, t as u32 + 1);
        seen.push(p[0]);
    }
    // Six significant digits of the hand computation.
    for (got, want) in seen.iter().zip([0.9, 0.960333, 0.966242]) {
        assert!((got - want).abs() < 2e-6, "reference after steps {seen:?}");
    }
    // The GPU kernel over the same sequence (one element, repeated over a few workgroups).
    let g = gpu();
    let n = 300;
    let param = g.upload_f32("param", &vec![1.0; n]).unwrap();
    let (grad, m, v) = (
        g.zeros("grad", n as u64 * 4).unwrap(),
        g.zeros("m", n as u64 * 4).unwrap(),
        g.zeros("v", n as u64 * 4).unwrap(),
    );
    let counters = g.zeros("counters", 64).unwrap();
    let ops = [param.whole(), grad.whole(), m.whole(), v.whole(), counters.whole()];
    for gs in [-0.2f32, -2.0, 0.5] {
        g.write(&grad, &vec![gs; n]);
        g.run(&adam::step(n, &cfg, 0).unwrap(), &ops).unwrap();
        g.run(&gputrain::ops::random::increment_step(0), &[counters.whole()]).unwrap();
    }
    let got = g.read_f32(param.whole()).unwrap();
    // f32 pow/sqrt and storage add ~1e-7 relative per step.
    assert!(got.iter().all(|&p| (p as f64 - 0.966242).abs() < 2e-6), "GPU after 3 steps: {}", got[0]);
}

const S: UpsampleShape = UpsampleShape { planes: 2, h: 3, w: 3 };
const LEN: usize = 2 * 9;
const UP_LEN: usize = 4 * LEN;

/// Group `a` under an MSE against `ta`, group `b` under BCE with logits against `tb`, each through
/// an upsampling so that every parameter's gradient gathers four terms.
fn group(set: KernelSet, name: &str) -> Graph {
    let mut g = Graph::new(set);
    let p = g.param(&format!("{name}.x"), &[1, 2, 3, 3], Init::Uniform(1.0)).unwrap();
    let t = g.external(&format!("t{name}"), &[1, 2, 6, 6]);
    let y = nn::upsample_nearest2x(&mut g, p).unwrap();
    let l = if name == "a" {
        nn::mse_loss(&mut g, y, t, MseReduction::SumPerItemMeanOverBatch).unwrap()
    } else {
        nn::bce_with_logits(&mut g, y, t).unwrap()
    };
    g.add_loss(name, l);
    g
}

fn cpu_grad(name: &str, p: &[f64], t: &[f64]) -> Vec<f64> {
    let y = upsample::cpu_forward(&S, p);
    let dy = if name == "a" {
        mse::cpu_backward(&y, t, 1, MseReduction::SumPerItemMeanOverBatch)
    } else {
        bce_logits::cpu_backward(&y, t, 1, BceReduction::Mean)
    };
    upsample::cpu_backward_input(&S, &dy)
}

/// CPU Adam trajectory of one group from `p0` under `cfg`, the gradient recomputed at every step.
fn trajectory(name: &str, p0: &[f64], t: &[f64], cfg: &AdamConfig, steps: usize) -> Vec<Vec<f64>> {
    let (mut p, mut m, mut v) = (p0.to_vec(), vec![0.0; LEN], vec![0.0; LEN]);
    (0..steps)
        .map(|k| {
            let g = cpu_grad(name, &p, t);
            adam::cpu_step(&mut p, &g, &mut m, &mut v, cfg, k as u32 + 1);
            p.clone()
        })
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn each_graph_runs_adam_with_its_own_weight_decay_on_its_own_span() {
    let gpu = gpu();
    let steps = 5;
    let decayed = AdamConfig { lr: 0.05, weight_decay: 0.5, ..Default::default() };
    let plain = AdamConfig { lr: 0.05, ..Default::default() };
    for set in crate::graph_autoencoder::kernel_sets() {
        let (mut ga, mut gb) = (group(set, "a"), group(set, "b"));
        let specs: Vec<_> = ga.params.iter().chain(&gb.params).collect();
        let store = ParamStore::new(gpu, &specs, 12).unwrap();
        let (a0, b0) = (to_f64(&store.read(gpu, "a.x").unwrap()), to_f64(&store.read(gpu, "b.x").unwrap()));
        // a's targets sit near its upsampled start, so the decay (up to 0.5 per element) is comparable
        // to the MSE gradients; b's are random labels.
        let noise = rand_vec(3, UP_LEN, -0.05, 0.05);
        let ta: Vec<f64> =
            to_f64(&to_f32(&upsample::cpu_forward(&S, &a0).iter().zip(&noise).map(|(y, e)| y + e).collect::<Vec<_>>()));
        let tb = rand_vec(4, UP_LEN, 0.0, 1.0).into_iter().map(|v| v.round()).collect::<Vec<_>>();
        // Like the GAN's D and G steps: the first graph leaves the step counter to the second.
        let sa = compile(&mut ga, &store, Mode::Train { adam: &decayed, end_of_step: false }).unwrap();
        let sb = compile(&mut gb, &store, Mode::Train { adam: &plain, end_of_step: true }).unwrap();
        let bufs: Vec<GpuBuffer> = [&ta, &tb].iter().map(|t| gpu.upload_f32("t", &to_f32(t)).unwrap()).collect();
        let mut ea = Executor::new(gpu, &ga, &sa, &store, &[("ta", bufs[0].whole())]).unwrap();
        let mut eb = Executor::new(gpu, &gb, &sb, &store, &[("tb", bufs[1].whole())]).unwrap();

        let want_a = trajectory("a", &a0, &ta, &decayed, steps);
        let want_b = trajectory("b", &b0, &tb, &plain, steps);
        for k in 0..steps {
            ea.step(gpu, false).unwrap();
            eb.step(gpu, false).unwrap();
            let (a, b) = (to_f64(&store.read(gpu, "a.x").unwrap()), to_f64(&store.read(gpu, "b.x").unwrap()));
            // Each step moves a parameter by at most ~lr = 0.05; f32 gradients (~1e-7 relative) and
            // f32 updates keep the trajectories within ~1e-6 over 5 steps (3e-7 measured), while
            // swapping the groups' weight decay moves them by 0.1 or more (checked below).
            assert_close(&format!("{set:?} a.x after step {}", k + 1), &a, &want_a[k], 1e-5, 1e-5);
            assert_close(&format!("{set:?} b.x after step {}", k + 1), &b, &want_b[k], 1e-5, 1e-5);
        }
        assert_eq!(gpu.read_u32(store.counters.whole()).unwrap()[0], steps as u32, "{set:?} step counter");
        // The test can tell the configurations apart: with the decay swapped between the groups both
        // trajectories end far outside the tolerance.
        let swapped_a = trajectory("a", &a0, &ta, &plain, steps);
        let swapped_b = trajectory("b", &b0, &tb, &decayed, steps);
        assert!(max_diff(&swapped_a[steps - 1], &want_a[steps - 1]) > 1e-3, "{set:?}: a's decay changes nothing");
        assert!(max_diff(&swapped_b[steps - 1], &want_b[steps - 1]) > 1e-3, "{set:?}: b's decay would change nothing");
    }
}
