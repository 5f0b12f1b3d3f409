//! The VAE end to end on a small slice of the embedded Fashion-MNIST subset (batch 8): a short run
//! lowers the loss and leaves every output; checkpoints carry PyTorch names, evaluate identically after
//! loading, and resume bit for bit; bad data and settings are refused with the reason named.

use crate::common;

use std::path::Path;

use gputrain::data::{Dataset, Split};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::train::checkpoint;
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions, StopReason};

const BATCH: usize = 8;

/// 48 training images (6 steps per epoch) and 16 test images (2 evaluation batches).
fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 48), test: common::head(&d.test, 16), source: "tiny slice".into() }
}

fn cfg() -> VaeConfig {
    VaeConfig { batch_size: BATCH, lr: 3e-3, latent: 4, seed: 5, ..Default::default() }
}

fn opts(out: &Path, epochs: u64) -> RunOptions {
    common::run_opts(out, epochs, "vae")
}

fn model() -> Vae {
    Vae::new(common::gpu(), &cfg(), &tiny()).unwrap()
}

#[test]
fn a_short_run_lowers_the_loss_and_leaves_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut m = model();
    let s = run::train(common::gpu(), &mut m, &opts(&out, 3)).unwrap();
    assert_eq!((s.stop, s.global_step), (StopReason::Finished, 18));
    for f in [
        "config.json",
        "metrics.csv",
        "epochs.csv",
        "loss.png",
        "samples/epoch_003.png",
        "recon/epoch_003.png",
        "checkpoints/last.safetensors",
        "checkpoints/epoch_003.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // Per-image BCE over 1024 pixels starts near 1024·ln 2 ≈ 710 nats; 18 Adam steps at lr 3e-3 learn
    // the mean image at least, which removes far more than a fifth of that.
    let loss = common::csv_column(&out.join("metrics.csv"), "loss");
    assert!(loss.iter().all(|l| l.is_finite()));
    assert!(*loss.last().unwrap() < 0.8 * loss[0], "loss went from {} to {}", loss[0], loss.last().unwrap());
    let elbo = common::csv_column(&out.join("epochs.csv"), "neg_elbo");
    assert!(elbo[2] < elbo[0], "test −ELBO went from {} to {}", elbo[0], elbo[2]);

    // Loaded into a fresh model, the checkpoint evaluates to exactly what the trained model gives.
    let direct = m.evaluate(common::gpu()).unwrap();
    let mut fresh = model();
    let loaded =
        run::evaluate_checkpoint(common::gpu(), &mut fresh, &out.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!(direct.figures, loaded.figures);
    assert_eq!(direct.get("neg_elbo"), elbo.last().copied());
}

#[test]
fn checkpoints_use_pytorch_state_dict_names_and_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run::train(common::gpu(), &mut model(), &RunOptions { max_steps: Some(2), ..opts(&out, 1) }).unwrap();
    let c = checkpoint::load(&out.join("checkpoints/last.safetensors")).unwrap();
    for (name, shape) in [
        ("encoder.0.weight", &[32, 1, 4, 4][..]),
        ("encoder.0.bias", &[32]),
        ("encoder.1.weight", &[32]),
        ("encoder.1.running_var", &[32]),
        ("encoder.3.weight", &[64, 32, 4, 4]),
        ("encoder.6.weight", &[128, 64, 4, 4]),
        ("encoder.7.running_mean", &[128]),
        ("fc_mu.weight", &[4, 2048]),
        ("fc_logvar.bias", &[4]),
        ("decoder_fc.weight", &[2048, 4]),
        ("decoder.0.weight", &[128, 64, 4, 4]),
        ("decoder.3.weight", &[64, 32, 4, 4]),
        ("decoder.4.bias", &[32]),
        ("decoder.6.weight", &[32, 1, 4, 4]),
        ("decoder.6.bias", &[1]),
    ] {
        c.get_f32(name, shape).unwrap_or_else(|e| panic!("{e:#}"));
    }
    for bn in ["encoder.1", "encoder.4", "encoder.7", "decoder.1", "decoder.4"] {
        assert_eq!(c.get_i64(&format!("{bn}.num_batches_tracked"), &[]).unwrap(), [2]);
    }
    let model_keys = c.names().into_iter().filter(|n| !n.starts_with("optim.")).count();
    // 3 conv + 3 BN(4 + count) + 3 linear + 3 conv-transpose + 2 BN(4 + count), two tensors per layer.
    assert_eq!(model_keys, 3 * 2 + 3 * 5 + 3 * 2 + 3 * 2 + 2 * 5);
}

#[test]
fn resume_reproduces_an_uninterrupted_run_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    run::train(common::gpu(), &mut model(), &opts(&whole, 2)).unwrap();
    // Stop mid-epoch 2 (step 8 of 12), then continue in a fresh model from the checkpoint.
    let split = tmp.path().join("split");
    run::train(common::gpu(), &mut model(), &RunOptions { max_steps: Some(8), ..opts(&split, 2) }).unwrap();
    let o = RunOptions { resume: Some(split.join("checkpoints/last.safetensors")), out: None, ..opts(&split, 2) };
    let s = run::train(common::gpu(), &mut model(), &o).unwrap();
    assert_eq!(s.global_step, 12);
    let (a, b) = (
        common::checkpoint_bits(&whole.join("checkpoints/last.safetensors")),
        common::checkpoint_bits(&s.checkpoint.unwrap()),
    );
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resume");
    }
    assert_eq!(
        common::csv_column(&whole.join("epochs.csv"), "neg_elbo")[1],
        *common::csv_column(&split.join("epochs.csv"), "neg_elbo").last().unwrap()
    );
}

#[test]
fn unusable_data_and_settings_are_refused_with_the_reason() {
    let gpu = common::gpu();
    let d = tiny();
    let mut small = d.clone();
    small.train = Split { h: 14, w: 56, ..small.train };
    let e = Vae::new(gpu, &cfg(), &small).err().unwrap().to_string();
    assert!(e.contains("28×28") && e.contains("14×56"), "{e}");
    let e = Vae::new(gpu, &VaeConfig { batch_size: 17, ..cfg() }, &d).err().unwrap().to_string();
    assert!(e.contains("--batch-size 17") && e.contains("16"), "{e}");
    let e = Vae::new(gpu, &VaeConfig { lr: f32::NAN.into(), ..cfg() }, &d).err().unwrap();
    assert!(format!("{e:#}").contains("--lr"), "{e:#}");
    let e = Vae::new(gpu, &VaeConfig { latent: 0, ..cfg() }, &d).err().unwrap().to_string();
    assert!(e.contains("--latent"), "{e}");
}

#[test]
fn decode_and_encode_serve_sampling_and_interpolation() {
    let gpu = common::gpu();
    let mut m = model();
    let img = m.decode(gpu, &[0.0; 12]).unwrap();
    assert_eq!(img.nchw, [3, 1, 32, 32]);
    assert!(img.data.iter().all(|p| (0.0..=1.0).contains(p)), "sigmoid outputs are probabilities");
    let mu = m.encode_test(gpu, &[0, 5]).unwrap();
    assert_eq!(mu.len(), 8);
    assert_ne!(mu[..4], mu[4..], "two different images encode differently");
    // Encoding is eval mode: the same image gives the same code wherever it sits in the request.
    let again = m.encode_test(gpu, &[5, 0, 5]).unwrap();
    assert_eq!((&again[..4], &again[4..8]), (&mu[4..], &mu[..4]));
    assert!(m.encode_test(gpu, &[16]).is_err());
    assert!(m.decode(gpu, &[0.0; 5]).is_err());
}

#[test]
fn a_batch_too_large_for_the_adapter_is_refused_naming_the_limit() {
    let gpu = common::gpu();
    // encoder.0's output is batch·32·16·16 floats: one image more than the adapter's binding limit
    // holds (4097 on lavapipe's 128 MiB, 65 505 on a 2 GiB GPU).
    let batch = (gpu.limits.max_storage_buffer_binding_size / 4 / (32 * 16 * 16)) as usize + 1;
    let d = Dataset::embedded().unwrap();
    let big = common::repeat(&d.train, batch);
    let big = Dataset { train: big.clone(), test: big, source: "big".into() };
    let e = Vae::new(gpu, &VaeConfig { batch_size: batch, ..cfg() }, &big).err().expect("must be refused");
    let e = format!("{e:#}");
    assert!(e.contains("max_storage_buffer_binding_size") && e.contains("batch size"), "{e}");
}
