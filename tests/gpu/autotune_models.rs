//! Autotuning where the models meet it: every candidate of a tunable pass computes the same result
//! over the pass's shared operand list, and a model built with tuning on measures its passes once,
//! caches the choices, and a second run from that cache chooses the same and trains bit for bit alike.
use crate::common;

use crate::conv::data;
use crate::matmul::check_gemm;
use common::*;
use common::{conv_shape as shape, sum_tol as tol};
use gputrain::data::Dataset;
use gputrain::models::vae::{Vae, VaeArch, VaeConfig};
use gputrain::ops::conv;
use gputrain::ops::matmul::MatmulShape;
use gputrain::ops::passes::{self, Kernels, Pass};
use gputrain::runtime::{BackendChoice, Gpu, KernelChoice, KernelSet};
use gputrain::train::model::TrainableModel;
use gputrain::tune::{TuneMode, Tuner};
use serde_json::Value;

const TUNED: Kernels = Kernels { set: KernelSet::Tiled, tune: true };

/// Each candidate of `pass` as a pass of its own over the shared operands.
fn candidates(what: &str, pass: &Pass) -> Vec<(String, Pass)> {
    let t = pass.tunable.as_ref().unwrap_or_else(|| panic!("{what}: no candidates"));
    assert!(t.candidates.len() > 1, "{what}: a single candidate");
    assert_eq!(pass.calls.len(), t.candidates[0].1.len(), "{what}: the pass's calls are not its default");
    t.candidates.iter().map(|(name, calls)| (name.clone(), Pass::new(calls.clone(), pass.scratch.clone()))).collect()
}

#[test]
fn every_candidate_of_a_tuned_linear_pass_matches_cpu() {
    // fc_mu at batch 16: a long K and a small output, so the candidates split K in several ways.
    let (b, inp, out) = (16, 2048, 32);
    let cases = [
        ("forward", passes::linear_forward(TUNED, b, inp, out), MatmulShape::nt(b, out, inp), true),
        ("input gradient", passes::linear_backward_input(TUNED, b, inp, out), MatmulShape::nn(b, inp, out), false),
        ("weight gradient", passes::linear_backward_weight(TUNED, b, inp, out), MatmulShape::tn(out, inp, b), false),
    ];
    for (i, (what, pass, s, bias)) in cases.into_iter().enumerate() {
        let pass = pass.unwrap();
        for (j, (name, c)) in candidates(what, &pass).iter().enumerate() {
            let what = format!("linear {what} candidate {name}");
            check_gemm(&what, &c.calls, &c.scratch, s, bias, false, 4000 + 100 * i as u64 + j as u64);
        }
    }
}

/// Runs `p` on `inputs`, zeroed scratch and an output of `out` floats; returns the output.
fn run_pass(p: &Pass, inputs: &[&[f64]], out: usize) -> Vec<f64> {
    let outs: Vec<usize> = p.scratch.iter().copied().chain([out]).collect();
    run(&p.calls, inputs, &outs).pop().unwrap()
}

#[test]
fn every_candidate_of_a_tuned_conv_pass_matches_cpu() {
    // The VAE's first encoder layer widened to 8 input channels (fewer leave the input gradient
    // only the thin tile, nothing to choose) at batch 4: K = 4·16·16 for the weight gradient's splits.
    let s = shape(4, 8, 32, 32, 32, 4, 2, 1);
    let d = data(&s, 11);
    let fwd = passes::conv_forward(TUNED, &s, true).unwrap();
    for (name, c) in candidates("conv forward", &fwd) {
        let got = run_pass(&c, &[&d.x, &d.w, &d.b], s.y_len());
        let want = conv::cpu_forward(&s, &d.x, &d.w, &d.b);
        assert_close(&format!("conv forward {name}"), &got, &want, tol(s.cin * s.k * s.k + 1), 1e-5);
    }
    let dx = passes::conv_backward_input(TUNED, &s).unwrap();
    for (name, c) in candidates("conv input gradient", &dx) {
        let got = run_pass(&c, &[&d.dy, &d.w], s.x_len());
        let want = conv::cpu_backward_input(&s, &d.dy, &d.w);
        assert_close(&format!("conv input gradient {name}"), &got, &want, tol(s.cout * s.k * s.k), 1e-5);
    }
    let dw = passes::conv_backward_weight(TUNED, &s).unwrap();
    let cands = candidates("conv weight gradient", &dw);
    assert!(cands.iter().any(|(n, _)| !n.ends_with("/split1")), "no weight-gradient candidate splits K");
    for (name, c) in cands {
        let got = run_pass(&c, &[&d.x, &d.dy], s.w_len());
        let want = conv::cpu_backward_weight(&s, &d.x, &d.dy);
        assert_close(&format!("conv weight gradient {name}"), &got, &want, tol(s.batch * s.out_h() * s.out_w()), 1e-5);
    }
}

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 32), test: common::head(&d.test, 16), source: "tiny slice".into() }
}

/// Two steps of the MLP VAE (its Linear passes are the shape classes; every candidate of the conv
/// passes is checked above, and timing them all on lavapipe would take minutes) on the tiled set with
/// tuning on and its cache in `dir`: the losses and what the tuner reports.
fn tuned_vae_run(dir: &std::path::Path) -> (Vec<u32>, Value) {
    let mut gpu = Gpu::open(BackendChoice::resolve(None).unwrap(), KernelChoice::Tiled).unwrap();
    gpu.tuner = Tuner::new(&gpu.info, TuneMode::On, Some(dir.to_path_buf()));
    let cfg = VaeConfig { batch_size: 8, arch: VaeArch::Mlp, hidden: vec![64], ..Default::default() };
    let mut m = Vae::new(&gpu, &cfg, &tiny()).unwrap();
    m.start_epoch(&gpu, 0).unwrap();
    let mut losses = Vec::new();
    for _ in 0..2 {
        m.step(&gpu, true).unwrap();
        for (_, v) in m.poll_losses(&gpu, true).unwrap() {
            losses.extend(v.iter().map(|x| x.to_bits()));
        }
    }
    (losses, gpu.tuner.chosen())
}

/// Shape class → (chosen candidate, where the choice came from).
fn choices(report: &Value) -> Vec<(String, String, String)> {
    let map = report["choices"].as_object().expect("choices");
    map.iter()
        .map(|(k, v)| (k.clone(), v["chosen"].as_str().unwrap().into(), v["source"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn a_tuned_vae_caches_its_choices_and_a_rerun_from_the_cache_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (first, report) = tuned_vae_run(dir.path());
    let measured = choices(&report);
    let classes = |prefix: &str| measured.iter().filter(|(k, _, _)| k.starts_with(prefix)).count();
    assert!(classes("matmul") >= 6, "VAE linear passes tuned: {measured:?}");
    assert!(measured.iter().all(|(_, _, src)| src == "measured"), "{measured:?}");
    let cache = report["cache"].as_str().expect("a cache file");
    assert!(std::path::Path::new(cache).exists(), "{cache} was not written");

    let (second, again) = tuned_vae_run(dir.path());
    let cached = choices(&again);
    assert_eq!(cached.len(), measured.len());
    for ((k1, c1, _), (k2, c2, src)) in measured.iter().zip(&cached) {
        assert_eq!((k1, c1), (k2, c2), "the rerun chose differently");
        assert_eq!(src, "cache", "{k2} was not taken from the cache");
    }
    assert_eq!(first, second, "a rerun from the cache trains differently");
    assert!(first.len() >= 6, "losses: {first:?}");
}
