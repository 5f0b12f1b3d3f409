//! The classifier behind IS and FID: a short run on a slice of the embedded subset learns; the shipped
//! weights classify the embedded test images as well as documented; the GAN's epoch scores use it.

use crate::common;

use std::sync::Arc;

use gputrain::data::Dataset;
use gputrain::models::classifier::{argmax_rows, Classifier, ClassifierConfig, CLASSES, FEATURES};
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::scores::{real_images, FeatureNet, Scorer};
use gputrain::train::model::TrainableModel;
use gputrain::train::run::{self, RunOptions};

#[test]
fn a_short_run_learns_to_classify() {
    let d = Dataset::embedded().unwrap();
    let data = Dataset { train: common::head(&d.train, 512), test: common::head(&d.test, 256), source: "slice".into() };
    let gpu = common::gpu();
    let mut m = Classifier::new(gpu, &ClassifierConfig { batch_size: 32, lr: 2e-3, seed: 1 }, &data).unwrap();
    let before = m.evaluate(gpu).unwrap().get("accuracy").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        epochs: 2,
        out: Some(tmp.path().join("run")),
        quiet: true,
        log_every: 4,
        settings: serde_json::json!({"model": "classifier"}),
        stop: Arc::new(false.into()),
        ..Default::default()
    };
    run::train(gpu, &mut m, &opts).unwrap();
    let after = m.evaluate(gpu).unwrap().get("accuracy").unwrap();
    // Chance is 10 %; 32 steps of Adam on 512 images reach well over 50 % on held-out images.
    assert!(before < 0.3 && after > 0.5, "accuracy {before} → {after}");
}

#[test]
fn shipped_weights_classify_the_embedded_test_set() {
    let gpu = common::gpu();
    let d = Dataset::embedded().unwrap();
    let mut net = FeatureNet::embedded(gpu).unwrap();
    let (probs, feats) = net.run(gpu, &real_images(&d.test, d.test.n)).unwrap();
    assert_eq!((probs.len(), feats.len()), (d.test.n * CLASSES, d.test.n * FEATURES));
    let p32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
    let right = argmax_rows(&p32, CLASSES).iter().zip(&d.test.labels).filter(|(p, l)| **p == **l as usize).count();
    let acc = right as f64 / d.test.n as f64;
    // The README documents ≥ 90 % test accuracy for assets/classifier.safetensors.
    assert!(acc >= 0.90, "shipped classifier: {:.2}% on the embedded test images", 100.0 * acc);
}

#[test]
fn gan_epoch_evaluation_reports_is_and_fid() {
    let gpu = common::gpu();
    let d = Dataset::embedded().unwrap();
    let data = Dataset { train: common::head(&d.train, 16), test: common::head(&d.test, 64), source: "slice".into() };
    for arch in [Arch::Dcgan, Arch::Mlp] {
        let cfg = GanConfig { arch, batch_size: 4, latent: 8, ..Default::default() };
        let mut gan = Gan::new(gpu, &cfg, &data).unwrap();
        let scorer = Scorer::new(gpu, FeatureNet::embedded(gpu).unwrap(), &real_images(&data.test, 64)).unwrap();
        assert!(scorer.real_is > 2.0, "64 real images of ~10 classes: IS {}", scorer.real_is);
        gan.attach_scorer(Box::new(scorer), 64);
        let e = gan.evaluate(gpu).unwrap();
        let (is, fid) = (e.get("is_64").unwrap(), e.get("fid_64").unwrap());
        // An untrained generator draws near-identical images: IS near 1 and a large FID.
        assert!((1.0..2.5).contains(&is), "{arch:?}: IS {is}");
        assert!(fid > 10.0, "{arch:?}: FID {fid}");
    }
}
