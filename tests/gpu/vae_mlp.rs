//! The fully connected VAE of PyTorch's `examples/vae`: its layers and names (fc1, fc21, fc22, fc3, fc4;
//! `encoder.N`/`decoder.N` around fc_mu/fc_logvar with several hidden layers), unpadded 28×28 images,
//! and a short run that lowers the loss.

use crate::common;

use gputrain::data::Dataset;
use gputrain::models::vae::{Vae, VaeArch, VaeConfig};
use gputrain::train::model::TrainableModel;
use gputrain::train::run;

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 48), test: common::head(&d.test, 16), source: "tiny slice".into() }
}

fn mlp(hidden: Vec<usize>, latent: usize) -> VaeConfig {
    VaeConfig { arch: VaeArch::Mlp, batch_size: 8, lr: 1e-2, latent, seed: 5, hidden, ..Default::default() }
}

fn shapes(cfg: &VaeConfig) -> Vec<(String, Vec<usize>)> {
    let m = Vae::new(common::gpu(), cfg, &tiny()).unwrap();
    common::tensor_shapes(m.state(common::gpu()).unwrap(), "")
}

#[test]
fn the_mlp_vae_is_examples_vae() {
    let want = common::named_shapes(&[
        ("fc1.weight", &[400, 784]),
        ("fc1.bias", &[400]),
        ("fc21.weight", &[20, 400]),
        ("fc21.bias", &[20]),
        ("fc22.weight", &[20, 400]),
        ("fc22.bias", &[20]),
        ("fc3.weight", &[400, 20]),
        ("fc3.bias", &[400]),
        ("fc4.weight", &[784, 400]),
        ("fc4.bias", &[784]),
    ]);
    assert_eq!(shapes(&mlp(vec![400], 20)), want);
}

#[test]
fn a_deeper_mlp_vae_names_its_layers_as_sequentials() {
    let want = common::named_shapes(&[
        ("encoder.0.weight", &[128, 784]),
        ("encoder.0.bias", &[128]),
        ("encoder.2.weight", &[64, 128]),
        ("encoder.2.bias", &[64]),
        ("fc_mu.weight", &[32, 64]),
        ("fc_mu.bias", &[32]),
        ("fc_logvar.weight", &[32, 64]),
        ("fc_logvar.bias", &[32]),
        ("decoder.0.weight", &[64, 32]),
        ("decoder.0.bias", &[64]),
        ("decoder.2.weight", &[128, 64]),
        ("decoder.2.bias", &[128]),
        ("decoder.4.weight", &[784, 128]),
        ("decoder.4.bias", &[784]),
    ]);
    assert_eq!(shapes(&mlp(vec![128, 64], 32)), want);
}

#[test]
fn a_short_mlp_vae_run_lowers_the_loss_on_unpadded_images() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut m = Vae::new(gpu, &mlp(vec![64], 8), &tiny()).unwrap();
    run::train(gpu, &mut m, &common::run_opts(&out, 3, "vae")).unwrap();
    // BCE summed over 784 pixels starts near 784·ln 2 ≈ 543 nats; 18 Adam steps at lr 1e-2 learn the
    // mean image at least, which removes far more than a fifth of that.
    let loss = common::csv_column(&out.join("metrics.csv"), "loss");
    assert!(*loss.last().unwrap() < 0.8 * loss[0], "loss went from {} to {}", loss[0], loss.last().unwrap());
    let elbo = common::csv_column(&out.join("epochs.csv"), "neg_elbo");
    assert!(elbo[2] < elbo[0], "test −ELBO went from {} to {}", elbo[0], elbo[2]);
    let img = m.samples(gpu).unwrap();
    assert_eq!(img.nchw, [64, 1, 28, 28]);
    let rec = m.reconstructions(gpu).unwrap().unwrap();
    assert_eq!(rec.nchw, [16, 1, 28, 28]);
}

#[test]
fn hidden_widths_belong_to_the_mlp_vae() {
    let e = VaeConfig { hidden: vec![128], ..Default::default() }.validate().unwrap_err().to_string();
    assert!(e.contains("--arch mlp"), "{e}");
    let e = mlp(vec![128, 0], 8).validate().unwrap_err().to_string();
    assert!(e.contains("--hidden"), "{e}");
}
