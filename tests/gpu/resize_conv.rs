//! `--upsample nearest`: the DCGAN generator's and the conv VAE decoder's stride-2 transposed
//! convolutions become nearest ×2 + 3×3 convolutions, named by their PyTorch Sequential indices, and the
//! models still learn. (That the default stays the transposed model bit for bit is tests/gpu/defaults.rs.)

use crate::common;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::models::Upsampling;
use gputrain::train::checkpoint::TensorData;
use gputrain::train::model::TrainableModel;

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 16), test: common::head(&d.test, 8), source: "tiny slice".into() }
}

fn weights_and_biases(state: Vec<(String, TensorData)>, prefix: &str) -> Vec<(String, Vec<usize>)> {
    let keep = |n: &String| n.ends_with(".weight") || n.ends_with(".bias");
    common::tensor_shapes(state, prefix).into_iter().filter(|(n, _)| keep(n)).collect()
}

#[test]
fn the_resize_convolution_dcgan_is_named_and_learns() {
    let gpu = common::gpu();
    let cfg = GanConfig {
        arch: Arch::Dcgan,
        batch_size: 4,
        lr: 2e-3,
        latent: 8,
        seed: 3,
        upsample: Upsampling::Nearest,
        ..Default::default()
    };
    let mut m = Gan::new(gpu, &cfg, &tiny()).unwrap();
    // nn.Sequential(ConvT(8,256,4,1,0), BN, ReLU, Upsample, Conv(256,128,3,1,1), BN, ReLU, Upsample,
    //               Conv(128,64,3,1,1), BN, ReLU, Upsample, Conv(64,1,3,1,1), Tanh)
    let want = common::named_shapes(&[
        ("generator.0.weight", &[8, 256, 4, 4]),
        ("generator.1.weight", &[256]),
        ("generator.1.bias", &[256]),
        ("generator.4.weight", &[128, 256, 3, 3]),
        ("generator.5.weight", &[128]),
        ("generator.5.bias", &[128]),
        ("generator.8.weight", &[64, 128, 3, 3]),
        ("generator.9.weight", &[64]),
        ("generator.9.bias", &[64]),
        ("generator.12.weight", &[1, 64, 3, 3]),
    ]);
    assert_eq!(weights_and_biases(m.state(gpu).unwrap(), "generator."), want);
    m.start_epoch(gpu, 0).unwrap();
    let first: f32 = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    let mut last = first;
    for _ in 0..19 {
        last = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    }
    assert!(last < first / 2.0, "D loss went from {first} to {last}");
    // The G step lowers G's loss against the frozen, now confident D.
    let g0 = m.step_generator(gpu).unwrap()[0];
    let mut g = g0;
    for _ in 0..5 {
        g = m.step_generator(gpu).unwrap()[0];
    }
    assert!(g < g0, "G loss went from {g0} to {g}");
    let img = m.samples(gpu).unwrap();
    assert_eq!(img.nchw, [64, 1, 32, 32]);
}

#[test]
fn the_resize_convolution_vae_is_named_and_learns() {
    let gpu = common::gpu();
    let cfg =
        VaeConfig { batch_size: 8, lr: 3e-3, latent: 4, seed: 5, upsample: Upsampling::Nearest, ..Default::default() };
    let d = Dataset::embedded().unwrap();
    let data = Dataset { train: common::head(&d.train, 48), test: common::head(&d.test, 16), source: "tiny".into() };
    let mut m = Vae::new(gpu, &cfg, &data).unwrap();
    let want = common::named_shapes(&[
        ("decoder.1.weight", &[64, 128, 3, 3]),
        ("decoder.1.bias", &[64]),
        ("decoder.2.weight", &[64]),
        ("decoder.2.bias", &[64]),
        ("decoder.5.weight", &[32, 64, 3, 3]),
        ("decoder.5.bias", &[32]),
        ("decoder.6.weight", &[32]),
        ("decoder.6.bias", &[32]),
        ("decoder.9.weight", &[1, 32, 3, 3]),
        ("decoder.9.bias", &[1]),
    ]);
    assert_eq!(weights_and_biases(m.state(gpu).unwrap(), "decoder."), want);
    m.start_epoch(gpu, 0).unwrap();
    let mut losses = Vec::new();
    for _ in 0..6 {
        m.step(gpu, true).unwrap();
        losses.extend(m.poll_losses(gpu, true).unwrap().into_iter().map(|(_, v)| v[0]));
    }
    // As for the transposed decoder: six Adam steps at 3e-3 learn the dark background first.
    assert!(losses[5] < 0.8 * losses[0], "{losses:?}");
    assert_eq!(m.samples(gpu).unwrap().nchw, [64, 1, 32, 32]);
}

#[test]
fn nearest_upsampling_belongs_to_the_convolutional_models() {
    let e = GanConfig { arch: Arch::Fc, upsample: Upsampling::Nearest, ..Default::default() }.validate().unwrap_err();
    assert!(e.to_string().contains("--upsample"), "{e}");
}
