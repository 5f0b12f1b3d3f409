//! CIFAR-10 binary batches: parsing and its errors, and the 3-channel DCGAN and VAE training a few steps.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions};

/// `n` records whose red plane is bright on the left, green on the top, blue constant; label i % 10.
fn records(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push((i % 10) as u8);
        for c in 0..3 {
            v.extend((0..1024).map(|p| match c {
                0 => {
                    if p % 32 < 16 {
                        200
                    } else {
                        (i * 7 % 50) as u8
                    }
                }
                1 => {
                    if p / 32 < 16 {
                        180
                    } else {
                        20
                    }
                }
                _ => 90,
            }));
        }
    }
    v
}

fn write_cifar(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("data_batch_1.bin"), records(train)).unwrap();
    std::fs::write(dir.join("test_batch.bin"), records(test)).unwrap();
}

#[test]
fn batches_load_channel_major_with_labels() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(tmp.path(), 12, 5);
    std::fs::write(tmp.path().join("data_batch_2.bin"), records(3)).unwrap();
    let d = Dataset::from_dir(tmp.path()).unwrap();
    assert!(d.source.contains("CIFAR-10"), "{}", d.source);
    assert_eq!((d.train.n, d.train.channels, d.train.h, d.train.w, d.test.n), (15, 3, 32, 32, 5));
    assert_eq!(d.train.labels[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    let img = d.train.image(1);
    assert_eq!((img[0], img[16], img[1024], img[1024 + 16 * 32], img[2048]), (200, 7, 180, 20, 90));
}

#[test]
fn bad_batches_name_the_file_and_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_cifar(dir, 4, 2);
    let mut short = records(3);
    short.truncate(3073 * 2 + 100);
    std::fs::write(dir.join("data_batch_1.bin"), &short).unwrap();
    let e = format!("{:#}", Dataset::from_dir(dir).unwrap_err());
    assert!(e.contains("data_batch_1.bin") && e.contains("record 2"), "{e}");

    let mut bad_label = records(3);
    bad_label[3073] = 10;
    std::fs::write(dir.join("data_batch_1.bin"), &bad_label).unwrap();
    let e = format!("{:#}", Dataset::from_dir(dir).unwrap_err());
    assert!(e.contains("record 1") && e.contains("label 10"), "{e}");

    std::fs::write(dir.join("data_batch_1.bin"), records(3)).unwrap();
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    let e = format!("{:#}", Dataset::from_dir(dir).unwrap_err());
    assert!(e.contains("test_batch.bin"), "{e}");
    std::fs::write(dir.join("test_batch.bin"), b"").unwrap();
    let e = format!("{:#}", Dataset::from_dir(dir).unwrap_err());
    assert!(e.contains("test_batch.bin") && e.contains("empty"), "{e}");
}

fn opts(out: &Path) -> RunOptions {
    RunOptions {
        epochs: 1,
        max_steps: Some(3),
        out: Some(out.to_path_buf()),
        quiet: true,
        log_every: 1,
        settings: serde_json::json!({}),
        stop: Arc::new(false.into()),
        ..Default::default()
    }
}

fn losses_finite(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    for line in text.lines().skip(1) {
        for v in line.split(',').skip(2) {
            assert!(v.parse::<f64>().unwrap().is_finite(), "{line}");
        }
    }
}

#[test]
fn colour_dcgan_and_vae_train_a_few_steps() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    write_cifar(&tmp.path().join("data"), 16, 8);
    let data = Dataset::from_dir(&tmp.path().join("data")).unwrap();

    let mut gan =
        Gan::new(gpu, &GanConfig { arch: Arch::Dcgan, batch_size: 4, latent: 8, ..Default::default() }, &data).unwrap();
    run::train(gpu, &mut gan, &opts(&tmp.path().join("gan"))).unwrap();
    assert_eq!(gan.samples(gpu).unwrap().nchw, [64, 3, 32, 32]);
    let png = image::open(tmp.path().join("gan/samples/epoch_001.png")).unwrap();
    assert_eq!(png.color(), image::ColorType::Rgb8);
    losses_finite(&tmp.path().join("gan"));

    let mut vae =
        Vae::new(gpu, &VaeConfig { batch_size: 4, lr: 1e-3, latent: 4, seed: 0, ..Default::default() }, &data).unwrap();
    run::train(gpu, &mut vae, &opts(&tmp.path().join("vae"))).unwrap();
    assert_eq!(vae.reconstructions(gpu).unwrap().unwrap().nchw, [8, 3, 32, 32]);
    losses_finite(&tmp.path().join("vae"));
    let c = gputrain::train::checkpoint::load(&tmp.path().join("vae/checkpoints/last.safetensors")).unwrap();
    c.get_f32("encoder.0.weight", &[32, 3, 4, 4]).unwrap();
    c.get_f32("decoder.6.weight", &[32, 3, 4, 4]).unwrap();

    // The MLP GAN makes grayscale images only.
    let e = Gan::new(gpu, &GanConfig { arch: Arch::Mlp, batch_size: 4, ..Default::default() }, &data).err().unwrap();
    assert!(e.to_string().contains("1-channel"), "{e}");
}
