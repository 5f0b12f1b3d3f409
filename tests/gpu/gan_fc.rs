//! The fully connected GAN: PyTorch names, D's logit trained with BCE-with-logits, the D step moving
//! only D and the G step only G, the L2 penalty only on D, a short run, and bit-exact resume.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::train::checkpoint::TensorData;
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions};

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 16), test: common::head(&d.test, 8), source: "tiny slice".into() }
}

fn cfg(weight_decay: f64) -> GanConfig {
    GanConfig { arch: Arch::Fc, batch_size: 4, lr: 2e-3, latent: 8, seed: 3, weight_decay, ..Default::default() }
}

fn gan(weight_decay: f64) -> Gan {
    let mut g = Gan::new(common::gpu(), &cfg(weight_decay), &tiny()).unwrap();
    g.start_epoch(common::gpu(), 0).unwrap();
    g
}

fn weights(m: &Gan) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    m.state(common::gpu())
        .unwrap()
        .into_iter()
        .filter_map(|(n, t)| match t {
            TensorData::F32 { shape, data } if !n.starts_with("optim.") => Some((n, (shape, data))),
            _ => None,
        })
        .collect()
}

#[test]
fn the_fc_gan_has_its_pytorch_layers() {
    let w = weights(&gan(1e-4));
    let mut got: Vec<(String, Vec<usize>)> = w.iter().map(|(n, (s, _))| (n.clone(), s.clone())).collect();
    got.sort();
    let mut want: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, o, n) in [(0, 128, 8), (2, 256, 128), (4, 512, 256), (6, 784, 512)] {
        want.push((format!("generator.{i}.weight"), vec![o, n]));
        want.push((format!("generator.{i}.bias"), vec![o]));
    }
    for (i, o, n) in [(1, 512, 784), (3, 256, 512), (5, 128, 256), (7, 1, 128)] {
        want.push((format!("discriminator.{i}.weight"), vec![o, n]));
        want.push((format!("discriminator.{i}.bias"), vec![o]));
    }
    want.sort();
    assert_eq!(got, want);
}

fn changed(a: &HashMap<String, (Vec<usize>, Vec<f32>)>, b: &HashMap<String, (Vec<usize>, Vec<f32>)>) -> Vec<String> {
    let mut v: Vec<String> = a.keys().filter(|k| a[*k].1 != b[*k].1).cloned().collect();
    v.sort();
    v
}

#[test]
fn each_step_moves_only_its_network_and_only_d_is_decayed() {
    let gpu = common::gpu();
    let (mut plain, mut decayed) = (gan(0.0), gan(0.1));
    let s0 = weights(&plain);
    assert!(changed(&s0, &weights(&decayed)).is_empty(), "the two models start from the same weights");
    // G step first: G's optimiser has no L2 term, so both models move G identically and D not at all.
    plain.step_generator(gpu).unwrap();
    decayed.step_generator(gpu).unwrap();
    let (p1, d1) = (weights(&plain), weights(&decayed));
    let moved = changed(&s0, &p1);
    assert!(!moved.is_empty() && moved.iter().all(|n| n.starts_with("generator.")), "G step moved {moved:?}");
    assert!(changed(&p1, &d1).is_empty(), "D's weight decay changed G's update: {:?}", changed(&p1, &d1));
    // D steps: D moves and G does not; the decay makes every D tensor differ between the two models.
    // (Three steps: Adam's first update is lr·sign(gradient), which an L2 term rarely flips.)
    for _ in 0..3 {
        plain.step_discriminator(gpu).unwrap();
        decayed.step_discriminator(gpu).unwrap();
    }
    let (p2, d2) = (weights(&plain), weights(&decayed));
    let moved = changed(&p1, &p2);
    assert!(moved.iter().all(|n| n.starts_with("discriminator.")), "D step moved {moved:?}");
    assert_eq!(moved.len(), 8, "{moved:?}");
    let differ = changed(&p2, &d2);
    assert_eq!(differ, moved, "weight decay must act on every D tensor and nothing else");
}

#[test]
fn the_fc_discriminator_learns_and_its_logits_stay_finite() {
    let gpu = common::gpu();
    let mut m = gan(1e-4);
    // As for the other GANs: 20 D steps on a fixed problem at least halve BCE(real) + BCE(fake).
    let first: f32 = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    let mut last = first;
    for _ in 0..19 {
        last = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    }
    assert!(last < first / 2.0, "D loss went from {first} to {last}");
    let r = m.step_discriminator(gpu).unwrap();
    // D(x) and D(G(z)) are probabilities (the sigmoid of the logit), the real ones now above the fake.
    assert!((0.0..=1.0).contains(&r[2]) && (0.0..=1.0).contains(&r[3]) && r[2] > r[3], "{r:?}");
}

fn opts(out: &Path, epochs: u64) -> RunOptions {
    common::run_opts(out, epochs, "gan")
}

#[test]
fn a_short_fc_gan_run_resumes_bit_for_bit() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let mut m = gan(1e-4);
    run::train(gpu, &mut m, &opts(&whole, 2)).unwrap();
    let img = m.samples(gpu).unwrap();
    assert_eq!(img.nchw, [64, 1, 28, 28]);
    assert!(img.data.iter().all(|v| (-1.0..=1.0).contains(v)), "tanh outputs");
    let split = tmp.path().join("split");
    run::train(gpu, &mut gan(1e-4), &RunOptions { max_steps: Some(5), ..opts(&split, 2) }).unwrap();
    let o = RunOptions { resume: Some(split.join("checkpoints/last.safetensors")), out: None, ..opts(&split, 2) };
    let s = run::train(gpu, &mut gan(1e-4), &o).unwrap();
    let (a, b) = (
        common::checkpoint_bits(&whole.join("checkpoints/last.safetensors")),
        common::checkpoint_bits(&s.checkpoint.unwrap()),
    );
    assert_eq!(a.len(), b.len());
    for ((na, va), (_, vb)) in a.iter().zip(&b) {
        assert!(va == vb, "{na} differs after resume");
    }
}
