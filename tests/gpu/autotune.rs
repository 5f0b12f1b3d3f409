//! The autotuner's infrastructure: mode parsing and defaults, the choice among candidates, the cache
//! file (reuse, refresh, damaged, foreign and unwritable cases) and the timing of real kernels.
use crate::common;

use std::cell::RefCell;
use std::path::Path;

use gputrain::ops::gemm;
use gputrain::ops::matmul::MatmulShape;
use gputrain::tune::{time_calls, TuneMode, Tuner};
use serde_json::Value;
use wgpu::DeviceType;

fn info(name: &str) -> wgpu::AdapterInfo {
    wgpu::AdapterInfo { name: name.to_string(), ..common::gpu().info.clone() }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Chooses with fixed times per candidate, recording which candidates were measured.
fn choose_timed(t: &Tuner, key: &str, cands: &[&str], ms: &[f64]) -> (usize, Vec<usize>) {
    let measured = RefCell::new(Vec::new());
    let i = t
        .choose(key, &names(cands), &mut |i| {
            measured.borrow_mut().push(i);
            Ok(ms[i])
        })
        .unwrap();
    (i, measured.into_inner())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn warnings(t: &Tuner) -> Vec<String> {
    t.chosen()["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
}

#[test]
fn autotune_mode_parses_case_insensitively_and_names_bad_values() {
    for (s, m) in [("on", TuneMode::On), ("OFF", TuneMode::Off), ("Refresh", TuneMode::Refresh)] {
        assert_eq!(s.parse::<TuneMode>().unwrap(), m);
        assert_eq!(m.to_string().parse::<TuneMode>().unwrap(), m);
    }
    let e = "sometimes".parse::<TuneMode>().unwrap_err().to_string();
    assert!(e.contains("'sometimes'") && e.contains("on, off or refresh"), "{e}");
    assert!("".parse::<TuneMode>().is_err());
}

#[test]
fn autotune_mode_resolution_flag_then_env_then_adapter() {
    let r = TuneMode::resolve_with;
    assert_eq!(r(Some(TuneMode::Off), Some("on"), DeviceType::DiscreteGpu).unwrap(), TuneMode::Off);
    // The flag wins even over an environment value that would not parse.
    assert_eq!(r(Some(TuneMode::On), Some("bogus"), DeviceType::Cpu).unwrap(), TuneMode::On);
    assert_eq!(r(None, Some("REFRESH"), DeviceType::Cpu).unwrap(), TuneMode::Refresh);
    assert_eq!(r(None, Some("on"), DeviceType::Cpu).unwrap(), TuneMode::On);
    assert_eq!(r(None, None, DeviceType::Cpu).unwrap(), TuneMode::Off);
    assert_eq!(r(None, Some(""), DeviceType::Cpu).unwrap(), TuneMode::Off);
    for t in [DeviceType::DiscreteGpu, DeviceType::IntegratedGpu, DeviceType::VirtualGpu, DeviceType::Other] {
        assert_eq!(r(None, None, t).unwrap(), TuneMode::On, "{t:?}");
    }
    let e = r(None, Some("yes"), DeviceType::DiscreteGpu).unwrap_err().to_string();
    assert!(e.contains("GPUTRAIN_AUTOTUNE") && e.contains("'yes'"), "{e}");
}

#[test]
fn autotune_tuner_is_shareable_and_mode_settable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Tuner>();
    let t = Tuner::new(&info("a"), TuneMode::Off, None);
    assert_eq!(t.mode(), TuneMode::Off);
    t.set_mode(TuneMode::Refresh);
    assert_eq!(t.mode(), TuneMode::Refresh);
    assert_eq!(t.chosen()["mode"], "refresh");
}

#[test]
fn autotune_off_measures_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tuner::new(&info("a"), TuneMode::Off, Some(dir.path().to_path_buf()));
    let i = t.choose("k", &names(&["x", "y"]), &mut |_| panic!("measured with tuning off")).unwrap();
    assert_eq!(i, 0);
    assert!(!t.cache_path().unwrap().exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let c = t.chosen();
    assert_eq!(c["choices"]["k"]["chosen"], "x");
    assert_eq!(c["choices"]["k"]["source"], "default");
}

#[test]
fn autotune_on_measures_once_picks_fastest_and_a_second_tuner_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tuner::new(&info("a"), TuneMode::On, Some(dir.path().to_path_buf()));
    let path = t.cache_path().unwrap().to_path_buf();
    let file_name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(file_name.starts_with("autotune-") && file_name.ends_with(".json"), "{file_name}");
    assert_eq!(path.parent().unwrap(), dir.path());

    let (i, measured) = choose_timed(&t, "gemm 64x64x64", &["a", "b", "c"], &[3.0, 1.0, 2.0]);
    assert_eq!((i, measured), (1, vec![0, 1, 2]));
    let file = read_json(&path);
    assert_eq!(file["entries"]["gemm 64x64x64"]["chosen"], "b");
    assert_eq!(file["entries"]["gemm 64x64x64"]["ms"]["a"], 3.0);
    assert_eq!(file["adapter"]["name"], "a");
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The same process asks again: remembered, not measured.
    assert_eq!(choose_timed(&t, "gemm 64x64x64", &["a", "b", "c"], &[3.0, 1.0, 2.0]), (1, vec![]));
    let c = t.chosen();
    assert_eq!(c["choices"]["gemm 64x64x64"]["source"], "measured");
    assert_eq!(c["choices"]["gemm 64x64x64"]["ms"]["b"], 1.0);
    assert_eq!(c["cache"], path.display().to_string());

    // A second key is added to the file, keeping the first.
    assert_eq!(choose_timed(&t, "other", &["a", "b"], &[1.0, 1.0]), (0, vec![0, 1]), "ties go to the lower index");
    assert_eq!(read_json(&path)["entries"].as_object().unwrap().len(), 2);

    let t2 = Tuner::new(&info("a"), TuneMode::On, Some(dir.path().to_path_buf()));
    assert_eq!(choose_timed(&t2, "gemm 64x64x64", &["a", "b", "c"], &[0.0; 3]), (1, vec![]));
    assert_eq!(t2.chosen()["choices"]["gemm 64x64x64"]["source"], "cache");
    assert!(warnings(&t2).is_empty());
}

#[test]
fn autotune_refresh_measures_again_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path().to_path_buf());
    let on = Tuner::new(&info("a"), TuneMode::On, d.clone());
    choose_timed(&on, "k", &["a", "b", "c"], &[3.0, 1.0, 2.0]);
    choose_timed(&on, "kept", &["a", "b"], &[2.0, 1.0]);

    let r = Tuner::new(&info("a"), TuneMode::Refresh, d.clone());
    assert_eq!(choose_timed(&r, "k", &["a", "b", "c"], &[3.0, 2.0, 1.0]), (2, vec![0, 1, 2]));
    // Only the first lookup in the process measures.
    assert_eq!(choose_timed(&r, "k", &["a", "b", "c"], &[0.0; 3]), (2, vec![]));
    let file = read_json(on.cache_path().unwrap());
    assert_eq!(file["entries"]["k"]["chosen"], "c");
    assert_eq!(file["entries"]["kept"]["chosen"], "b", "keys not refreshed stay in the file");

    let again = Tuner::new(&info("a"), TuneMode::On, d);
    assert_eq!(choose_timed(&again, "k", &["a", "b", "c"], &[0.0; 3]), (2, vec![]));
}

#[test]
fn autotune_damaged_file_is_ignored_with_one_warning_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path().to_path_buf());
    let t = Tuner::new(&info("a"), TuneMode::On, d.clone());
    let path = t.cache_path().unwrap().to_path_buf();
    std::fs::write(&path, "{\"format\": \"gputrain-autotune-1\", \"entries\": {").unwrap();
    assert_eq!(choose_timed(&t, "k", &["a", "b"], &[2.0, 1.0]), (1, vec![0, 1]));
    assert_eq!(choose_timed(&t, "k2", &["a", "b"], &[1.0, 2.0]), (0, vec![0, 1]));
    let w = warnings(&t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(&path.display().to_string()) && w[0].ends_with(": ignored, tuning again"), "{w:?}");
    assert_eq!(read_json(&path)["entries"]["k"]["chosen"], "b");

    let t2 = Tuner::new(&info("a"), TuneMode::On, d);
    assert_eq!(choose_timed(&t2, "k", &["a", "b"], &[0.0; 2]), (1, vec![]));
    assert!(warnings(&t2).is_empty());
}

#[test]
fn autotune_foreign_file_is_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path().to_path_buf());
    let a = Tuner::new(&info("adapter A"), TuneMode::On, d.clone());
    choose_timed(&a, "k", &["a", "b"], &[2.0, 1.0]);
    let b = Tuner::new(&info("adapter B"), TuneMode::On, d.clone());
    let b_path = b.cache_path().unwrap().to_path_buf();
    assert_ne!(a.cache_path().unwrap(), b_path, "adapters get files of their own");
    std::fs::copy(a.cache_path().unwrap(), &b_path).unwrap();

    assert_eq!(choose_timed(&b, "k", &["a", "b"], &[1.0, 2.0]), (0, vec![0, 1]));
    let w = warnings(&b);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("another adapter") && w[0].ends_with("ignored, tuning again"), "{w:?}");
    let file = read_json(&b_path);
    assert_eq!(file["adapter"]["name"], "adapter B");
    assert_eq!(file["entries"]["k"]["chosen"], "a");

    let b2 = Tuner::new(&info("adapter B"), TuneMode::On, d);
    assert_eq!(choose_timed(&b2, "k", &["a", "b"], &[0.0; 2]), (0, vec![]));
}

#[test]
fn autotune_unwritable_directory_only_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let t = Tuner::new(&info("a"), TuneMode::On, Some(file.join("cache")));
    assert_eq!(choose_timed(&t, "k", &["a", "b"], &[2.0, 1.0]), (1, vec![0, 1]));
    assert_eq!(choose_timed(&t, "k2", &["a", "b"], &[1.0, 2.0]), (0, vec![0, 1]));
    assert_eq!(choose_timed(&t, "k", &["a", "b"], &[0.0; 2]), (1, vec![]), "kept in memory");
    let w = warnings(&t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("cannot be written"), "{w:?}");
}

#[test]
fn autotune_without_cache_dir_works_in_memory() {
    let t = Tuner::new(&info("a"), TuneMode::On, None);
    assert!(t.cache_path().is_none());
    assert_eq!(choose_timed(&t, "k", &["a", "b"], &[2.0, 1.0]), (1, vec![0, 1]));
    assert_eq!(choose_timed(&t, "k", &["a", "b"], &[0.0; 2]), (1, vec![]));
    assert!(t.chosen()["cache"].is_null());
    assert!(warnings(&t).is_empty());
}

#[test]
fn autotune_cached_name_no_longer_a_candidate_is_measured_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path().to_path_buf());
    let t = Tuner::new(&info("a"), TuneMode::On, d.clone());
    choose_timed(&t, "k", &["a", "old"], &[2.0, 1.0]);
    let t2 = Tuner::new(&info("a"), TuneMode::On, d.clone());
    assert_eq!(choose_timed(&t2, "k", &["a", "new"], &[2.0, 1.0]), (1, vec![0, 1]));
    assert_eq!(read_json(t2.cache_path().unwrap())["entries"]["k"]["chosen"], "new");
    // Reordered candidates: the cached name is found at its new index.
    let t3 = Tuner::new(&info("a"), TuneMode::On, d);
    assert_eq!(choose_timed(&t3, "k", &["new", "a"], &[0.0; 2]), (0, vec![]));
}

#[test]
fn autotune_failing_candidates_are_skipped_and_all_failing_is_the_defaults_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tuner::new(&info("a"), TuneMode::On, Some(dir.path().to_path_buf()));
    let cands = names(&["a", "b", "c", "d"]);
    let i = t
        .choose("k", &cands, &mut |i| match i {
            1 => anyhow::bail!("b does not compile"),
            3 => Ok(f64::NAN),
            _ => Ok([3.0, 0.5, 2.0, 0.1][i]),
        })
        .unwrap();
    assert_eq!(i, 2);
    let c = t.chosen();
    assert_eq!(c["choices"]["k"]["failed"]["b"], "b does not compile");
    assert!(c["choices"]["k"]["failed"]["d"].is_string());
    assert_eq!(read_json(t.cache_path().unwrap())["entries"]["k"]["chosen"], "c");

    let e = t.choose("all", &cands, &mut |i| anyhow::bail!("candidate {i} failed")).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("candidate 0 failed") && msg.contains("autotune all"), "{msg}");
    assert!(t.choose("none", &[], &mut |_| Ok(1.0)).is_err());
}

#[test]
fn autotune_single_candidate_is_not_measured() {
    let t = Tuner::new(&info("a"), TuneMode::On, None);
    assert_eq!(t.choose("k", &names(&["only"]), &mut |_| panic!("nothing to choose")).unwrap(), 0);
}

#[test]
fn autotune_time_calls_times_real_kernels() {
    let g = common::gpu();
    let n = 4096;
    let ms = time_calls(g, &gputrain::ops::elementwise::fill(n, 1.0).unwrap(), &[n], 3).unwrap();
    assert!(ms.is_finite() && ms > 0.0, "fill: {ms} ms");
    let s = MatmulShape::nn(64, 48, 80);
    let calls = gemm::matmul(s, false, false).unwrap();
    let ms = time_calls(g, &calls, &[s.a_len(), s.b_len(), s.c_len()], 3).unwrap();
    assert!(ms.is_finite() && ms > 0.0, "matmul: {ms} ms");
    assert!(time_calls(g, &calls, &[s.a_len(), s.b_len(), s.c_len()], 0).is_err());
    // Too few operands for the call's bindings: an error naming the entry, not a panic.
    let e = time_calls(g, &calls, &[s.a_len()], 1).unwrap_err().to_string();
    assert!(e.contains(calls[0].entry), "{e}");
}
