//! The `train vae`, `eval vae` and `sample vae` commands as a user runs them, on a tiny IDX dataset
//! written by the test; corrupt datasets are refused with one clear line and nothing written.

use crate::common;

use std::io::Write;
use std::path::Path;

use image::GenericImageView;

/// Runs this build's `gputrain`.
pub(crate) fn cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    common::cli(env!("CARGO_BIN_EXE_gputrain"), args, cwd)
}

fn idx_images(n: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    // A bright square whose position depends on the image: something learnable, not noise.
    for i in 0..n {
        let (oy, ox) = ((i * 7 + seed as usize) % 14, (i * 3) % 14);
        v.extend((0..28 * 28).map(|p| {
            if (oy..oy + 12).contains(&(p / 28)) && (ox..ox + 12).contains(&(p % 28)) {
                230
            } else {
                0
            }
        }));
    }
    v
}

fn idx_labels(n: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(n as u32).to_be_bytes());
    v.extend((0..n).map(|i| (i % 10) as u8));
    v
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// 32 training and 16 test images, the training images gzipped as the real files are.
pub(crate) fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&idx_images(32, 0))).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(32)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx_images(16, 5)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_labels(16)).unwrap();
}

#[test]
fn train_then_eval_then_sample_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dataset(&dir.join("data"));
    let (code, out, err) = cli(
        &["train", "vae", "--data", "data", "--batch-size", "8", "--epochs", "2", "--max-steps", "6", "--out", "run"],
        dir,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("data: data"), "the run names its data source: {out}");
    assert!(out.contains("stopped at --max-steps"), "{out}");
    let ckpt = dir.join("run/checkpoints/last.safetensors");
    assert!(ckpt.is_file());

    let (code, out, err) = cli(&["eval", "vae", "--checkpoint", "run/checkpoints/last.safetensors"], dir);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("test set:")).unwrap_or_else(|| panic!("{out}"));
    let elbo: f64 = line.split("negative ELBO ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(elbo.is_finite() && elbo > 0.0, "{line}");

    for args in [
        &["sample", "vae", "--checkpoint", "run/checkpoints/last.safetensors", "--n", "16", "--out", "s.png"][..],
        &["sample", "vae", "--checkpoint", "run/checkpoints/last.safetensors", "--interpolate", "--out", "i.png"],
    ] {
        let (code, out, err) = cli(args, dir);
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
    }
    assert!(image::open(dir.join("s.png")).is_ok());
    assert!(image::open(dir.join("i.png")).is_ok());

    // More than one decode batch, as a grid ⌈√N⌉ wide and as an array; the defaults name the file.
    let ck = ["sample", "vae", "--checkpoint", "run/checkpoints/last.safetensors"];
    for (extra, file, n) in [
        (&["--n", "100", "--out", "g100.png"][..], "g100.png", 100),
        (&["--n", "7", "--out", "g7.png"], "g7.png", 7),
        (&["--n", "1", "--out", "g1.png"], "g1.png", 1),
        (&["--n", "100", "--format", "npy"], "samples.npy", 100),
        (&["--interpolate", "--n", "5", "--format", "npy"], "interpolation.npy", 5),
    ] {
        let args: Vec<&str> = ck.iter().chain(extra).copied().collect();
        let (code, out, err) = cli(&args, dir);
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
        assert!(out.contains(&format!("wrote {file} ({n} images)")), "{out}");
        if file.ends_with(".png") {
            let cols = (n as f64).sqrt().ceil() as u32;
            let rows = (n as u32).div_ceil(cols);
            let dims = image::open(dir.join(file)).unwrap().dimensions();
            assert_eq!(dims, (cols * 34 + 2, rows * 34 + 2), "{file}");
        } else {
            let (shape, values) = crate::images::read_npy(&dir.join(file));
            assert_eq!(shape, [n, 1, 32, 32], "{file}");
            assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{file}: values outside [0, 1]");
            assert!(values.iter().any(|&v| v > 0.01), "{file}: blank images");
        }
    }
    // The first images of a larger draw are the smaller draw's (the same latent stream, chunked).
    let (_, few) = crate::images::read_npy(&dir.join("samples.npy"));
    let (code, _, err) = cli(&[&ck[..], &["--n", "3", "--format", "npy", "--out", "s3.npy"]].concat(), dir);
    assert_eq!(code, 0, "{err}");
    assert_eq!(crate::images::read_npy(&dir.join("s3.npy")).1, few[..3 * 32 * 32]);
    for bad in ["0", "50001"] {
        let (code, _, err) = cli(&[&ck[..], &["--n", bad, "--format", "npy", "--out", "bad.npy"]].concat(), dir);
        assert_eq!(code, 1, "{err}");
        assert!(common::error_line(&err).contains(&format!("--n {bad}")), "{err}");
    }
    let (code, _, err) = cli(&[&ck[..], &["--format", "jpg"]].concat(), dir);
    assert_eq!(code, 2, "clap refuses an unknown format: {err}");
    assert!(err.contains("jpg"), "{err}");
    assert!(!dir.join("bad.npy").exists());
}

#[test]
fn corrupt_datasets_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = idx_images(32, 0);
    let mut truncated_gz = gz(&good);
    truncated_gz.truncate(truncated_gz.len() / 2);
    let mut wrong_magic = good.clone();
    wrong_magic[3] = 9;
    let mut too_many = good.clone();
    too_many[4..8].copy_from_slice(&1000u32.to_be_bytes());
    for (case, file, bytes, want) in [
        ("truncated", "train-images-idx3-ubyte.gz", truncated_gz, "train-images-idx3-ubyte.gz"),
        ("magic", "train-images-idx3-ubyte", wrong_magic, "magic"),
        ("dims", "train-images-idx3-ubyte", too_many, "1000"),
        ("empty", "train-images-idx3-ubyte", vec![], "train-images-idx3-ubyte"),
    ] {
        let data = dir.join(case);
        write_dataset(&data);
        std::fs::remove_file(data.join("train-images-idx3-ubyte.gz")).unwrap();
        std::fs::write(data.join(file), bytes).unwrap();
        let out = format!("run-{case}");
        let (code, _, err) = cli(&["train", "vae", "--data", case, "--batch-size", "8", "--out", &out], dir);
        assert_eq!(code, 1, "{case}: {err}");
        let line = common::error_line(&err);
        assert!(line.contains(&format!("--data {case}")) && line.contains(want), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert!(!dir.join(&out).exists(), "{case}: a run directory was left behind");
    }
}

#[test]
fn bench_json_reports_consistent_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dataset(&dir.join("data"));
    let (code, out, err) =
        cli(&["bench", "--model", "vae", "--batch-size", "4,8", "--steps", "2", "--json", "--data", "data"], dir);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (r, b) in results.iter().zip([4, 8]) {
        assert_eq!((r["model"].as_str(), r["batch_size"].as_u64()), (Some("vae"), Some(b)));
        assert_eq!(r["submits_per_step"], 1);
        assert_eq!(r["bytes_uploaded_per_step"], 0);
        assert!(r["dispatches_per_step"].as_u64().unwrap() > 50);
        let t = &r["ms_per_step"];
        let (lo, med, hi) = (t["min"].as_f64().unwrap(), t["median"].as_f64().unwrap(), t["max"].as_f64().unwrap());
        assert!(0.0 < lo && lo <= med && med <= hi, "{t}");
        let ips = r["images_per_s"].as_f64().unwrap();
        assert!((ips - b as f64 / (med / 1e3)).abs() < 1e-6 * ips);
        if doc["timestamp_queries"] == true {
            let kernels = r["kernels"].as_array().unwrap();
            let calls: u64 = kernels.iter().map(|k| k["calls"].as_u64().unwrap()).sum();
            assert_eq!(calls, r["dispatches_per_step"].as_u64().unwrap());
            let share: f64 = kernels.iter().map(|k| k["share"].as_f64().unwrap()).sum();
            assert!((share - 1.0).abs() < 1e-6, "shares sum to {share}");
            let o = r["outside_kernels_share"].as_f64().unwrap();
            assert!((0.0..1.0).contains(&o));
        }
    }
    let (code, _, err) = cli(&["bench", "--model", "resnet"], dir);
    assert_eq!(code, 1);
    assert!(common::error_line(&err).contains("--model resnet"), "{err}");
}

#[test]
fn kill_9_at_any_moment_leaves_a_loadable_checkpoint_to_resume_from() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dataset(&dir.join("data"));
    let last = dir.join("run/checkpoints/last.safetensors");
    let mut step = 0;
    // Each round waits until the run has written a checkpoint of its own (so it is mid-training
    // whatever the machine's load), then kills it after a delay that is not a multiple of an epoch
    // (~0.3 s: 4 steps, evaluation, images, checkpoint), so some kills land inside a checkpoint write.
    for (round, delay_ms) in [410u64, 170, 290].into_iter().enumerate() {
        let mut args = vec!["train", "vae", "--data", "data", "--batch-size", "8", "--epochs", "500", "--quiet"];
        let resume = last.display().to_string();
        if round == 0 {
            args.extend(["--out", "run"]);
        } else {
            args.extend(["--resume", resume.as_str()]);
        }
        let written_before = std::fs::metadata(&last).and_then(|m| m.modified()).ok();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gputrain"))
            .args(&args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::fs::metadata(&last).and_then(|m| m.modified()).ok() == written_before {
            assert!(start.elapsed().as_secs() < 120, "round {round}: no checkpoint within 2 minutes");
            assert!(child.try_wait().unwrap().is_none(), "round {round}: the run ended early");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let c = gputrain::train::checkpoint::load(&last).unwrap_or_else(|e| panic!("round {round}: {e:#}"));
        let s = c.get_i64("optim.step", &[]).unwrap()[0];
        assert!(s >= step, "round {round}: checkpoint went back from step {step} to {s}");
        step = s;
    }
    assert!(step > 0, "no checkpoint was completed before the kills");
    let target = (step + 2).to_string();
    let resume = last.display().to_string();
    let (code, out, err) = cli(&["train", "vae", "--resume", &resume, "--max-steps", &target, "--quiet"], dir);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("at step {target}")), "{out}");
}
