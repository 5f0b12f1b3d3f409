//! The convolutional autoencoder end to end on a slice of the embedded subset (batch 8): PyTorch
//! names and shapes, a short run lowers the squared error, resume is bit for bit, the evaluation's
//! figures agree with each other, and `sample ae --interpolate` walks between two test images.

use crate::common;

use std::path::Path;

use gputrain::data::Dataset;
use gputrain::models::ae::{psnr, AeConfig, Autoencoder};
use gputrain::train::checkpoint;
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions};

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 48), test: common::head(&d.test, 16), source: "tiny slice".into() }
}

fn cfg() -> AeConfig {
    AeConfig { batch_size: 8, lr: 3e-3, latent: 16, seed: 2 }
}

fn model() -> Autoencoder {
    Autoencoder::new(common::gpu(), &cfg(), &tiny()).unwrap()
}

fn opts(out: &Path, epochs: u64) -> RunOptions {
    common::run_opts(out, epochs, "ae")
}

#[test]
fn the_autoencoder_has_its_pytorch_layers() {
    let state = model().state(common::gpu()).unwrap();
    let mut got: Vec<(String, Vec<usize>)> =
        state.into_iter().filter(|(n, _)| !n.starts_with("optim.")).map(|(n, t)| (n, t.shape().to_vec())).collect();
    got.sort();
    let mut want: Vec<(String, Vec<usize>)> = [
        ("encoder.0.weight", &[64, 1, 3, 3][..]),
        ("encoder.0.bias", &[64]),
        ("encoder.3.weight", &[64, 64, 3, 3]),
        ("encoder.3.bias", &[64]),
        ("encoder.7.weight", &[16, 3136]),
        ("encoder.7.bias", &[16]),
        ("decoder.0.weight", &[3136, 16]),
        ("decoder.0.bias", &[3136]),
        ("decoder.3.weight", &[64, 64, 3, 3]),
        ("decoder.3.bias", &[64]),
        ("decoder.6.weight", &[1, 64, 3, 3]),
        ("decoder.6.bias", &[1]),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), s.to_vec()))
    .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_short_run_lowers_the_error_and_resumes_bit_for_bit() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let mut m = model();
    run::train(gpu, &mut m, &opts(&whole, 3)).unwrap();
    for f in ["loss.png", "samples/epoch_003.png", "recon/epoch_003.png", "checkpoints/last.safetensors"] {
        assert!(whole.join(f).is_file(), "{f} missing");
    }
    // The untrained decoder's sigmoid sits near 0.5 where most pixels are 0: ≈ 784 · 0.2 ≈ 160 per
    // image. 18 Adam steps at 3e-3 learn at least the dark background, far below 70% of that.
    let loss = common::csv_column(&whole.join("metrics.csv"), "loss");
    assert!(*loss.last().unwrap() < 0.7 * loss[0], "loss went from {} to {}", loss[0], loss.last().unwrap());
    let (mse, test_loss, db) = (
        common::csv_column(&whole.join("epochs.csv"), "mse"),
        common::csv_column(&whole.join("epochs.csv"), "loss"),
        common::csv_column(&whole.join("epochs.csv"), "psnr"),
    );
    assert!(mse[2] < mse[0], "test MSE went from {} to {}", mse[0], mse[2]);
    // Per-pixel MSE is the per-image sum over 784 pixels; both come from the same batches. The two
    // are reduced separately in f32 over ~6000 terms, so they agree to a few parts in a million.
    assert!((test_loss[2] / 784.0 - mse[2]).abs() < 1e-5 * mse[2].max(1e-3), "{} vs {}", test_loss[2], mse[2]);
    assert!((db[2] - psnr(mse[2])).abs() < 1e-9);

    let split = tmp.path().join("split");
    run::train(gpu, &mut model(), &RunOptions { max_steps: Some(8), ..opts(&split, 3) }).unwrap();
    let o = RunOptions { resume: Some(split.join("checkpoints/last.safetensors")), out: None, ..opts(&split, 3) };
    let s = run::train(gpu, &mut model(), &o).unwrap();
    assert_eq!(s.global_step, 18);
    let (a, b) = (
        common::checkpoint_bits(&whole.join("checkpoints/last.safetensors")),
        common::checkpoint_bits(&s.checkpoint.unwrap()),
    );
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resume");
    }
    let c = checkpoint::load(&whole.join("checkpoints/last.safetensors")).unwrap();
    assert!(c.names().iter().all(|n| !n.contains("running")), "no batchnorm in the autoencoder");
}

#[test]
fn an_interpolation_starts_and_ends_at_the_two_codes() {
    let gpu = common::gpu();
    let mut m = model();
    let codes = m.encode_test(gpu, &[3, 5]).unwrap();
    let l = m.latent();
    let walk = gputrain::models::codec::interpolate(&codes[..l], &codes[l..], 5);
    let frames = m.decode(gpu, &walk).unwrap();
    let ends = m.decode(gpu, &codes).unwrap();
    let px = 28 * 28;
    assert_eq!(frames.nchw, [5, 1, 28, 28]);
    assert_eq!(&frames.data[..px], &ends.data[..px], "first frame is test image 3's reconstruction");
    assert_eq!(&frames.data[4 * px..], &ends.data[px..], "last frame is test image 5's reconstruction");
    assert!(m.encode_test(gpu, &[16]).is_err(), "test image 16 does not exist");
}

#[test]
fn the_cli_trains_evaluates_and_interpolates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bin = env!("CARGO_BIN_EXE_gputrain");
    let run = |args: &[&str]| {
        let (code, out, err) = common::cli(bin, args, dir);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    crate::cli_vae::write_dataset(&dir.join("data"));
    let train =
        ["train", "ae", "--data", "data", "--max-steps", "2", "--batch-size", "8", "--latent", "8", "--out", "r"];
    run(&train);
    let ckpt = "r/checkpoints/last.safetensors";
    let out = run(&["eval", "ae", "--checkpoint", ckpt]);
    assert!(out.contains("PSNR") && out.contains("per pixel"), "{out}");
    run(&["sample", "ae", "--checkpoint", ckpt, "--interpolate", "--from", "2", "--to", "9", "--n", "12"]);
    let png = image::open(dir.join("interpolation.png")).unwrap();
    assert_eq!(png.width(), 4 * 30 + 2, "a grid of ⌈√12⌉ = 4 columns of 28 px with 2-px gaps");
    let (code, _, err) = common::cli(bin, &["sample", "ae", "--checkpoint", ckpt], dir);
    assert_eq!(code, 1);
    assert!(common::error_line(&err).contains("--interpolate"), "{err}");
}
