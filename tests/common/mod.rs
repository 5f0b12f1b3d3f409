//! Shared by the GPU tests: one device for the whole test binary, data generators, comparisons and
//! a finite-difference gradient checker.
#![allow(dead_code)]

use std::sync::OnceLock;

use gputrain::runtime::{BackendChoice, Gpu, KernelCall};
use rand::{Rng, SeedableRng};

/// One device per test binary: opening lavapipe costs ~100 ms and pipelines are cached on it.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let choice = BackendChoice::resolve(None).expect("WGPU_BACKEND");
        Gpu::new(choice).expect("a wgpu adapter (install mesa-vulkan-drivers for the software one)")
    })
}

/// Uniform random values in [lo, hi), deterministic per seed.
pub fn rand_vec(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The bits every guard float holds: a NaN, so that a kernel reading past its operand turns its
/// result into NaN (which the comparisons refuse), and one no kernel computes.
const POISON: u32 = 0x7fc0_dead;

/// Runs `calls` with `inputs` uploaded as the first operands and `outputs` zero-filled buffers of the
/// given lengths after them; returns every operand's final contents (inputs included, for in-place ops).
///
/// Every operand is bound in the middle of a larger buffer between two guard regions of poison, and
/// the run fails if a kernel wrote into them: the proof that kernels built without runtime bounds
/// checks (`Family::unchecked`) stay inside their bindings, and a check on every other kernel too.
pub fn run_f32(calls: &[KernelCall], inputs: &[&[f32]], outputs: &[usize]) -> Vec<Vec<f32>> {
    let g = gpu();
    // Whole offset-alignment units, at least 64 floats.
    let guard = (g.limits.min_storage_buffer_offset_alignment as usize / 4).max(64);
    let poison = f32::from_bits(POISON);
    let zeros: Vec<Vec<f32>> = outputs.iter().map(|&n| vec![0.0; n]).collect();
    let contents: Vec<&[f32]> = inputs.iter().copied().chain(zeros.iter().map(|v| v.as_slice())).collect();
    let mut bufs = Vec::new();
    for (i, data) in contents.iter().enumerate() {
        let mut padded = vec![poison; guard];
        padded.extend_from_slice(data);
        padded.extend(std::iter::repeat_n(poison, guard));
        bufs.push(g.upload_f32(&format!("operand{i}"), &padded).unwrap());
    }
    let ops: Vec<_> = bufs.iter().zip(&contents).map(|(b, d)| b.range_f32(guard, d.len())).collect();
    g.run(calls, &ops).unwrap();
    let entries: Vec<&str> = calls.iter().map(|c| c.entry).collect();
    bufs.iter()
        .zip(&contents)
        .enumerate()
        .map(|(i, (b, d))| {
            let all = g.read_f32(b.range_f32(0, d.len() + 2 * guard)).unwrap();
            let (before, rest) = all.split_at(guard);
            let (mid, after) = rest.split_at(d.len());
            for (side, region) in [("before", before), ("after", after)] {
                if let Some(j) = region.iter().position(|v| v.to_bits() != POISON) {
                    panic!("{entries:?} wrote {} into the guard {side} operand {i} (float {j} of {guard})", region[j]);
                }
            }
            mid.to_vec()
        })
        .collect()
}

/// Same as `run_f32` with f64 data converted to f32 on the way in and back on the way out.
pub fn run(calls: &[KernelCall], inputs: &[&[f64]], outputs: &[usize]) -> Vec<Vec<f64>> {
    let ins: Vec<Vec<f32>> = inputs.iter().map(|d| to_f32(d)).collect();
    let refs: Vec<&[f32]> = ins.iter().map(|v| v.as_slice()).collect();
    run_f32(calls, &refs, outputs).iter().map(|v| to_f64(v)).collect()
}

/// Output lengths of a scalar reduction over `n` elements: the result, then its chunk sums.
pub fn scalar_outputs(n: usize) -> Vec<usize> {
    vec![1, gputrain::ops::reduce::partials_len(n)]
}

/// Asserts |got - want| <= atol + rtol·|want| element-wise, reporting the worst element.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length {} != {}", got.len(), want.len());
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}[{i}] is {g}");
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    if worst.1 > 0.0 {
        let i = worst.0;
        panic!("{what}: element {i} is {} but the reference is {} (atol {atol}, rtol {rtol})", got[i], want[i]);
    }
}

/// Central finite differences of the scalar `f` at `x`, in f64.
pub fn numeric_grad(x: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + h;
            let up = f(&x);
            x[i] = orig - h;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * h)
        })
        .collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The first `n` images of a split.
/// `n` images cycling through those of `s` (with their labels).
pub fn repeat(s: &gputrain::data::Split, n: usize) -> gputrain::data::Split {
    let len = s.image_len();
    let images = (0..n).flat_map(|i| s.images[(i % s.n) * len..(i % s.n + 1) * len].iter().copied()).collect();
    gputrain::data::Split { images, labels: (0..n).map(|i| s.labels[i % s.n]).collect(), n, ..s.clone() }
}

pub fn head(s: &gputrain::data::Split, n: usize) -> gputrain::data::Split {
    gputrain::data::Split {
        images: s.images[..n * s.image_len()].to_vec(),
        labels: s.labels[..n].to_vec(),
        n,
        ..s.clone()
    }
}

/// Every tensor of a checkpoint as raw bits, sorted by name: equal only if bit-identical.
pub fn checkpoint_bits(path: &std::path::Path) -> Vec<(String, Vec<u64>)> {
    use gputrain::train::checkpoint::{self, TensorData};
    let c = checkpoint::load(path).unwrap();
    let mut names: Vec<String> = c.names().into_iter().map(String::from).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let v = match c.get(&n).unwrap() {
                TensorData::F32 { data, .. } => data.iter().map(|v| v.to_bits() as u64).collect(),
                TensorData::I64 { data, .. } => data.iter().map(|&v| v as u64).collect(),
            };
            (n, v)
        })
        .collect()
}

/// Runs the `gputrain` binary of this build in `cwd`; returns (exit code, stdout, stderr).
pub fn cli(bin: &str, args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(bin).args(args).current_dir(cwd).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The error line, ignoring the loader's own noise (e.g. Mesa's XDG_RUNTIME_DIR complaint).
/// Options for a model's training-run tests: quiet, losses read back every 2 steps, into `out`.
pub fn run_opts(out: &std::path::Path, epochs: u64, model: &str) -> gputrain::train::run::RunOptions {
    gputrain::train::run::RunOptions {
        epochs,
        out: Some(out.to_path_buf()),
        quiet: true,
        log_every: 2,
        settings: serde_json::json!({ "model": model }),
        ..Default::default()
    }
}

pub fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("error:")).unwrap_or("")
}

/// A convolution shape from its fields in `Conv2dShape`'s order.
#[allow(clippy::too_many_arguments)]
pub fn conv_shape(
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> gputrain::ops::conv::Conv2dShape {
    gputrain::ops::conv::Conv2dShape { batch, cin, cout, h, w, k, stride, pad }
}

/// A transposed convolution shape from its fields in `ConvTranspose2dShape`'s order.
#[allow(clippy::too_many_arguments)]
pub fn convt_shape(
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> gputrain::ops::conv_transpose::ConvTranspose2dShape {
    gputrain::ops::conv_transpose::ConvTranspose2dShape { batch, cin, cout, h, w, k, stride, pad }
}

/// Bound on |GPU - reference| for sums of `k` products of values in [-1, 1]: the inputs are rounded
/// to f32 (2^-24 relative each, two per product) and the f32 accumulation adds at most 2^-24 of the
/// running sum per term, so 3k·2^-24 ≈ k·1.8e-7 bounds the error; real errors are far smaller, while a
/// wrong index gives errors of order 1.
pub fn sum_tol(k: usize) -> f64 {
    k as f64 * 2e-7
}

/// Column `name` of a run's CSV log (metrics.csv, epochs.csv) as numbers.
pub fn csv_column(path: &std::path::Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let col = lines.next().unwrap().split(',').position(|h| h == name).unwrap_or_else(|| panic!("no {name} column"));
    lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect()
}

/// The (name, shape) pairs of a model's checkpoint tensors whose names start with `prefix` (optimiser
/// state left out), sorted by name.
pub fn tensor_shapes(
    state: Vec<(String, gputrain::train::checkpoint::TensorData)>,
    prefix: &str,
) -> Vec<(String, Vec<usize>)> {
    let mut v: Vec<(String, Vec<usize>)> = state
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix) && !n.starts_with("optim."))
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    v.sort();
    v
}

/// `[(name, shape)]` as [`tensor_shapes`] returns it, for comparing.
pub fn named_shapes(v: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    let mut v: Vec<(String, Vec<usize>)> = v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect();
    v.sort();
    v
}
