//! Whole training steps through the executor on the tiled set: the same seed gives bit-identical
//! losses twice, and on lavapipe the losses follow the lavapipe set's.
use crate::common;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::runtime::{BackendChoice, Gpu, KernelChoice, KernelSet};
use gputrain::train::model::TrainableModel;

fn device(kernels: KernelChoice) -> Gpu {
    Gpu::open(BackendChoice::resolve(None).unwrap(), kernels).unwrap()
}

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 32), test: common::head(&d.test, 8), source: "tiny slice".into() }
}

/// Per-step losses of `steps` training steps.
fn losses(gpu: &Gpu, m: &mut dyn TrainableModel, steps: usize) -> Vec<Vec<f32>> {
    m.start_epoch(gpu, 0).unwrap();
    for _ in 0..steps {
        m.step(gpu, true).unwrap();
    }
    m.poll_losses(gpu, true).unwrap().into_iter().map(|(_, v)| v).collect()
}

fn vae(gpu: &Gpu, lr: f32) -> Vec<Vec<f32>> {
    let cfg = VaeConfig { batch_size: 8, lr: lr.into(), latent: 4, seed: 5, ..Default::default() };
    losses(gpu, &mut Vae::new(gpu, &cfg, &tiny()).unwrap(), 3)
}

fn gan(gpu: &Gpu, lr: f32) -> Vec<Vec<f32>> {
    let cfg = GanConfig {
        arch: Arch::Dcgan,
        batch_size: 4,
        lr: lr.into(),
        latent: 8,
        seed: 3,
        real_label: 1.0,
        ..Default::default()
    };
    losses(gpu, &mut Gan::new(gpu, &cfg, &tiny()).unwrap(), 3)
}

/// The two sets add the same products in different orders, so each value differs by f32
/// rounding: about sqrt(K)·2^-24 relative per layer, ~1e-6 through the model. Adam's first steps
/// move every parameter by about ±lr whatever its gradient's size, so a gradient that is zero up
/// to rounding moves a parameter by up to 2·lr between the sets; at lr 1e-5 that keeps the losses
/// within ~1e-5 of each other, and 1e-4 relative leaves a margin while a wrong index or a missing
/// term changes a loss by far more. (At the models' own learning rates a saturated GAN loss of
/// ~12 nats moved by 0.2 % after one step: the sign flips, not an error.)
fn assert_follow(what: &str, tiled: &[Vec<f32>], lavapipe: &[Vec<f32>]) {
    assert_eq!(tiled.len(), lavapipe.len(), "{what}: step counts");
    for (step, (t, l)) in tiled.iter().zip(lavapipe).enumerate() {
        for (i, (a, b)) in t.iter().zip(l).enumerate() {
            assert!(a.is_finite(), "{what}: step {step} loss {i} is {a}");
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-2), "{what}: step {step} loss {i}: tiled {a}, lavapipe {b}");
        }
    }
}

#[test]
fn vae_and_gan_steps_are_deterministic_and_follow_the_lavapipe_set() {
    let tiled = device(KernelChoice::Tiled);
    assert_eq!(tiled.kernel_set, KernelSet::Tiled);
    let (v, g) = (vae(&tiled, 3e-3), gan(&tiled, 2e-3));
    assert_eq!(v.len(), 3);
    assert_eq!(v, vae(&tiled, 3e-3), "VAE losses differ between two runs of the same seed");
    assert_eq!(g, gan(&tiled, 2e-3), "GAN losses differ between two runs of the same seed");
    // The lavapipe set is only native (and only fast enough to run here) on lavapipe itself.
    if KernelChoice::Auto.pick(&tiled.info, tiled.features).unwrap() == KernelSet::Lavapipe {
        let lavapipe = device(KernelChoice::Lavapipe);
        assert_follow("VAE", &vae(&tiled, 1e-5), &vae(&lavapipe, 1e-5));
        assert_follow("GAN", &gan(&tiled, 1e-5), &gan(&lavapipe, 1e-5));
    }
}
