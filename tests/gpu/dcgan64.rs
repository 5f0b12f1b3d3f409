//! The 64-px DCGAN: PyTorch `examples/dcgan`'s Generator and Discriminator (five layers each) with
//! their `main.N` indices under our `generator.` / `discriminator.` prefixes, widths from --ngf/--ndf,
//! 28×28 data resized to 64×64 on the host; its discriminator learns and the generator's images have
//! the size asked for.

use crate::common;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::train::model::TrainableModel;

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 16), test: common::head(&d.test, 8), source: "tiny slice".into() }
}

fn cfg(ngf: usize, ndf: usize) -> GanConfig {
    GanConfig {
        arch: Arch::Dcgan,
        batch_size: 4,
        lr: 2e-3,
        latent: 8,
        seed: 3,
        image_size: 64,
        ngf,
        ndf,
        ..Default::default()
    }
}

#[test]
fn the_64_px_dcgan_has_pytorchs_layers_and_names() {
    let gpu = common::gpu();
    let m = Gan::new(gpu, &GanConfig { image_size: 64, batch_size: 4, ..Default::default() }, &tiny()).unwrap();
    let state = m.state(gpu).unwrap();
    let shape = |name: &str| -> Vec<usize> {
        let t = state.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing")).1.clone();
        t.shape().to_vec()
    };
    // examples/dcgan with nz = 100, ngf = ndf = 64, nc = 1.
    for (name, want) in [
        ("generator.0.weight", &[100, 512, 4, 4][..]),
        ("generator.1.weight", &[512]),
        ("generator.3.weight", &[512, 256, 4, 4]),
        ("generator.4.running_var", &[256]),
        ("generator.6.weight", &[256, 128, 4, 4]),
        ("generator.9.weight", &[128, 64, 4, 4]),
        ("generator.10.bias", &[64]),
        ("generator.12.weight", &[64, 1, 4, 4]),
        ("discriminator.0.weight", &[64, 1, 4, 4]),
        ("discriminator.2.weight", &[128, 64, 4, 4]),
        ("discriminator.3.weight", &[128]),
        ("discriminator.5.weight", &[256, 128, 4, 4]),
        ("discriminator.6.running_mean", &[256]),
        ("discriminator.8.weight", &[512, 256, 4, 4]),
        ("discriminator.9.weight", &[512]),
        ("discriminator.11.weight", &[1, 512, 4, 4]),
    ] {
        assert_eq!(shape(name), want, "{name}");
    }
    let layers: Vec<&String> =
        state.iter().map(|(n, _)| n).filter(|n| !n.starts_with("optim.") && n.ends_with(".weight")).collect();
    // 5 transposed convs + 4 batchnorms in G, 5 convs + 3 batchnorms in D; no biases anywhere.
    assert_eq!(layers.len(), 17, "{layers:?}");
    let convs = [0, 3, 6, 9, 12].map(|i| format!("generator.{i}.bias"));
    let convs_d = [0, 2, 5, 8, 11].map(|i| format!("discriminator.{i}.bias"));
    for bias in convs.iter().chain(&convs_d) {
        assert!(!state.iter().any(|(n, _)| n == bias), "{bias}: DCGAN convolutions have no bias");
    }
}

#[test]
fn the_64_px_dcgan_trains_and_makes_64_px_images() {
    let gpu = common::gpu();
    let mut m = Gan::new(gpu, &cfg(8, 8), &tiny()).unwrap();
    m.start_epoch(gpu, 0).unwrap();
    // As for the 32-px model: on a fixed real batch and a frozen G, 20 D steps at lr 2e-3 at least halve
    // BCE(real) + BCE(fake) (≈ 1.39 at chance).
    let first: f32 = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    let mut last = first;
    for _ in 0..19 {
        last = m.step_discriminator(gpu).unwrap()[..2].iter().sum();
    }
    assert!(last < first / 2.0, "D loss went from {first} to {last}");
    for _ in 0..2 {
        m.step(gpu, true).unwrap();
    }
    let losses = m.poll_losses(gpu, true).unwrap();
    assert!(losses.iter().all(|(_, v)| v[..4].iter().all(|x| x.is_finite())), "{losses:?}");
    let img = m.samples(gpu).unwrap();
    assert_eq!(img.nchw, [64, 1, 64, 64]);
    assert!(img.data.iter().all(|v| (-1.0..=1.0).contains(v)), "tanh outputs");
}

#[test]
fn dcgan_sizes_other_than_32_and_64_are_refused() {
    let e = Gan::new(common::gpu(), &GanConfig { image_size: 48, batch_size: 4, ..Default::default() }, &tiny())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--image-size 48"), "{e}");
}

#[test]
fn a_folder_with_fewer_images_than_a_batch_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("few-photos");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..6u8 {
        image::RgbImage::from_pixel(40, 30, image::Rgb([i * 40, 100, 200])).save(dir.join(format!("{i}.png"))).unwrap();
    }
    let cache = tmp.path().join("cache");
    let opts = gputrain::data::LoadOptions::default();
    let f = gputrain::data::folder::load_with_cache(&dir, &opts, Some(&cache)).unwrap();
    let data = Dataset { train: f.train, test: f.test, source: dir.display().to_string() };
    // Five training images (one is held out for testing): a batch of 4 fits, one of 8 does not.
    assert_eq!(data.train.n, 5);
    Gan::new(common::gpu(), &cfg(8, 8), &data).unwrap();
    let e = Gan::new(common::gpu(), &GanConfig { batch_size: 8, ..cfg(8, 8) }, &data).err().unwrap().to_string();
    assert!(e.contains("--batch-size 8") && e.contains("few-photos"), "{e}");
}
