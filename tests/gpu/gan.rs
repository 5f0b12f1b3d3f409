//! The DCGAN on a slice of the embedded subset (batch 4): the D step moves only D's parameters and the
//! G step only G's (running statistics as PyTorch's loop would move them); D learns a fixed real/fake
//! problem; checkpoints carry PyTorch names and resume bit for bit; the diversity indicator is right.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use gputrain::data::Dataset;
use gputrain::models::gan::{diversity, Arch, Gan, GanConfig};
use gputrain::train::checkpoint::{self, TensorData};
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions};

/// 16 training images: 4 steps per epoch at batch 4.
fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 16), test: common::head(&d.test, 8), source: "tiny slice".into() }
}

fn cfg() -> GanConfig {
    GanConfig { arch: Arch::Dcgan, batch_size: 4, lr: 2e-3, latent: 8, seed: 3, real_label: 1.0, ..Default::default() }
}

fn gan_of(arch: Arch) -> Gan {
    let mut g = Gan::new(common::gpu(), &GanConfig { arch, ..cfg() }, &tiny()).unwrap();
    g.start_epoch(common::gpu(), 0).unwrap();
    g
}

fn gan() -> Gan {
    gan_of(Arch::Dcgan)
}

fn snapshot(m: &Gan) -> HashMap<String, Vec<f32>> {
    m.state(common::gpu())
        .unwrap()
        .into_iter()
        .filter_map(|(n, t)| match t {
            TensorData::F32 { data, .. } if !n.starts_with("optim.") => Some((n, data)),
            _ => None,
        })
        .collect()
}

/// Names of the tensors that differ between two snapshots.
fn changed(a: &HashMap<String, Vec<f32>>, b: &HashMap<String, Vec<f32>>) -> Vec<String> {
    let mut v: Vec<String> = a.keys().filter(|k| a[*k] != b[*k]).cloned().collect();
    v.sort();
    v
}

fn is_running(n: &str) -> bool {
    n.ends_with("running_mean") || n.ends_with("running_var")
}

#[test]
fn each_step_updates_only_its_own_network() {
    for arch in [Arch::Dcgan, Arch::Mlp] {
        routing(arch);
    }
}

fn routing(arch: Arch) {
    let gpu = common::gpu();
    let mut m = gan_of(arch);
    let s0 = snapshot(&m);
    m.step_discriminator(gpu).unwrap();
    let s1 = snapshot(&m);
    let d_step = changed(&s0, &s1);
    // D's weights and running statistics move; of G only the running statistics (its forward pass in
    // training mode, as PyTorch's netG(noise) does), never its weights.
    for n in s0.keys() {
        let moved = d_step.contains(n);
        let expect = n.starts_with("discriminator.") || is_running(n);
        assert_eq!(moved, expect, "{arch:?} D step: {n} moved = {moved}");
    }
    m.step_generator(gpu).unwrap();
    let s2 = snapshot(&m);
    let g_step = changed(&s1, &s2);
    // G's weights move, G's running statistics do not (its batch was already counted in the D step);
    // D's weights stay, D's running statistics move (PyTorch's netD(fake) in training mode).
    for n in s0.keys() {
        let moved = g_step.contains(n);
        let expect = if n.starts_with("generator.") { !is_running(n) } else { is_running(n) };
        assert_eq!(moved, expect, "{arch:?} G step: {n} moved = {moved}");
    }
}

#[test]
fn the_discriminator_learns_a_fixed_real_fake_problem() {
    // With G never updated and the step counter never advanced, every D step sees the same real batch
    // and the same generated batch; 20 Adam steps at lr 2e-3 must at least halve BCE(real) + BCE(fake)
    // (≈ 1.39 at chance).
    let gpu = common::gpu();
    let mut m = gan();
    let first: f32 = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    let mut last = first;
    for _ in 0..19 {
        last = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    }
    assert!(last < first / 2.0, "D loss went from {first} to {last}");
}

fn opts(out: &Path, epochs: u64) -> RunOptions {
    common::run_opts(out, epochs, "gan")
}

#[test]
fn checkpoints_have_pytorch_names_and_resume_bit_for_bit() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    run::train(gpu, &mut gan(), &opts(&whole, 2)).unwrap();
    let split = tmp.path().join("split");
    run::train(gpu, &mut gan(), &RunOptions { max_steps: Some(5), ..opts(&split, 2) }).unwrap();
    let o = RunOptions { resume: Some(split.join("checkpoints/last.safetensors")), out: None, ..opts(&split, 2) };
    let s = run::train(gpu, &mut gan(), &o).unwrap();
    assert_eq!(s.global_step, 8);
    let (a, b) = (
        common::checkpoint_bits(&whole.join("checkpoints/last.safetensors")),
        common::checkpoint_bits(&s.checkpoint.unwrap()),
    );
    assert_eq!(a.iter().map(|t| &t.0).collect::<Vec<_>>(), b.iter().map(|t| &t.0).collect::<Vec<_>>());
    for ((n, va), (_, vb)) in a.iter().zip(&b) {
        assert!(va == vb, "{n} differs after resume");
    }

    let c = checkpoint::load(&whole.join("checkpoints/last.safetensors")).unwrap();
    for (name, shape) in [
        ("generator.0.weight", &[8, 256, 4, 4][..]),
        ("generator.1.running_var", &[256]),
        ("generator.3.weight", &[256, 128, 4, 4]),
        ("generator.6.weight", &[128, 64, 4, 4]),
        ("generator.9.weight", &[64, 1, 4, 4]),
        ("discriminator.0.weight", &[64, 1, 4, 4]),
        ("discriminator.2.weight", &[128, 64, 4, 4]),
        ("discriminator.3.weight", &[128]),
        ("discriminator.5.weight", &[256, 128, 4, 4]),
        ("discriminator.6.running_mean", &[256]),
        ("discriminator.8.weight", &[1, 256, 4, 4]),
    ] {
        c.get_f32(name, shape).unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert!(c.get("generator.0.bias").is_none(), "DCGAN convolutions have no bias");
    // Per 8 iterations G's batchnorm saw 8 batches and D's 24 (real, fake, fake again in the G step).
    assert_eq!(c.get_i64("generator.4.num_batches_tracked", &[]).unwrap(), [8]);
    assert_eq!(c.get_i64("discriminator.6.num_batches_tracked", &[]).unwrap(), [24]);
}

#[test]
fn diversity_is_the_mean_squared_distance_between_images() {
    // Two images [0, 0] and [1, 3]: one pair at squared distance 1 + 9 = 10.
    assert!((diversity(&[0.0, 0.0, 1.0, 3.0], 2) - 10.0).abs() < 1e-12);
    // Three images: pairs at 1, 4, 1 → mean 2.
    assert!((diversity(&[0.0, 1.0, 2.0], 1) - 2.0).abs() < 1e-12);
    assert_eq!(diversity(&[0.5; 8], 2), 0.0, "identical images have no diversity");
}

#[test]
fn the_mlp_gan_trains_a_few_steps_with_its_pytorch_names() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    let mut m = gan_of(Arch::Mlp);
    run::train(gpu, &mut m, &RunOptions { max_steps: Some(6), ..opts(&out, 2) }).unwrap();
    let img = m.samples(gpu).unwrap();
    assert_eq!(img.nchw, [64, 1, 28, 28]);
    assert!(img.data.iter().all(|v| (-1.0..=1.0).contains(v)), "tanh outputs");
    let c = checkpoint::load(&out.join("checkpoints/last.safetensors")).unwrap();
    for (name, shape) in [
        ("generator.0.weight", &[256, 8][..]),
        ("generator.2.running_mean", &[256]),
        ("generator.3.weight", &[512, 256]),
        ("generator.5.weight", &[512]),
        ("generator.6.weight", &[784, 512]),
        ("generator.6.bias", &[784]),
        ("discriminator.0.weight", &[16, 1, 3, 3]),
        ("discriminator.3.weight", &[32, 16, 3, 3]),
        ("discriminator.6.bias", &[64]),
        ("discriminator.10.weight", &[1, 576]),
    ] {
        c.get_f32(name, shape).unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert_eq!(c.get_i64("generator.5.num_batches_tracked", &[]).unwrap(), [6]);
    let losses: Vec<f64> = std::fs::read_to_string(out.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
}
