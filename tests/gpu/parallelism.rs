//! The parallelism floor of the tiled set, the one built for GPUs: in the VAE's and the DCGAN's
//! training steps at batch 128, every dispatch that reads or writes at least 64 Ki floats launches
//! at least 128 workgroups (`bench::below_floor`), so no single-workgroup reduction or unsplit
//! long-K product leaves a large GPU idle. Only the grids are checked: nothing here is timed.
use crate::common;

use gputrain::bench::{below_floor, dispatch_rows};
use gputrain::data::Dataset;
use gputrain::models::gan::{Gan, GanConfig};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::runtime::{BackendChoice, Gpu, KernelChoice};
use gputrain::train::model::TrainableModel;

fn tiled() -> Gpu {
    Gpu::open(BackendChoice::resolve(None).unwrap(), KernelChoice::Tiled).unwrap()
}

fn data() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::repeat(&d.train, 256), test: common::repeat(&d.test, 128), source: "embedded".into() }
}

fn check(what: &str, model: &dyn TrainableModel) {
    let rows = dispatch_rows(&model.step_dispatches(), None);
    assert!(rows.len() > 20, "{what}: only {} dispatches", rows.len());
    let low: Vec<String> = below_floor(&rows)
        .iter()
        .map(|d| format!("{} {:?} over {} floats", d.entry, d.workgroups, d.elements))
        .collect();
    assert!(low.is_empty(), "{what}: {} dispatches below the floor:\n{}", low.len(), low.join("\n"));
}

#[test]
fn vae_step_at_batch_128_fills_a_gpu() {
    let gpu = tiled();
    let m = Vae::new(&gpu, &VaeConfig { batch_size: 128, ..Default::default() }, &data()).unwrap();
    check("VAE", &m);
}

#[test]
fn dcgan_step_at_batch_128_fills_a_gpu() {
    let gpu = tiled();
    let m = Gan::new(&gpu, &GanConfig { batch_size: 128, ..Default::default() }, &data()).unwrap();
    check("DCGAN", &m);
}
