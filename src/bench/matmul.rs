//! `bench --matmul`: C = A·B (f32, row-major, both operands untransposed) timed on every kernel set
//! the adapter can run, for square sizes and the GEMM shapes the models run at batch 128.
//!
//! Every product is the plain `nn` case so that it compares like for like with `torch.matmul` on
//! contiguous tensors (benches/reference/pytorch_models.py reads the shapes from this JSON); the
//! Linear layers' own transposes are what `cargo bench --bench matmul` times. Each result is checked
//! against an f64 dot product at sampled entries, because a fast wrong kernel is not a result.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::ops::matmul::MatmulShape;
use crate::ops::{gemm, matmul, tuned};
use crate::runtime::{Gpu, KernelCall, KernelSet};
use crate::tune::{time_calls_on, zero_operands};

/// One product to time, labelled with what it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub label: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl Case {
    fn new(label: impl Into<String>, m: usize, n: usize, k: usize) -> Case {
        Case { label: label.into(), m, n, k }
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// The models' batch for `models` shapes: the batch both train at by default.
const BATCH: usize = 128;

/// The Linear layers of the VAE (forward, input gradient, weight gradient as M×N×K) and the
/// convolutions as implicit GEMMs: M = Cout, N = batch·OH·OW, K = Cin·k². `small` keeps those a
/// software adapter times in seconds (it drops the two DCGAN convolutions, ~2 GFLOP each).
pub fn model_cases(small: bool) -> Vec<Case> {
    let b = BATCH;
    let mut v = vec![
        Case::new("vae fc_mu/fc_logvar fwd", b, 32, 2048),
        Case::new("vae fc_mu/fc_logvar dx", b, 2048, 32),
        Case::new("vae fc_mu/fc_logvar dW", 32, 2048, b),
        Case::new("vae decoder_fc fwd", b, 2048, 32),
        Case::new("vae decoder_fc dx", b, 32, 2048),
        Case::new("vae decoder_fc dW", 2048, 32, b),
    ];
    // (label, Cin, Cout, input side); all 4×4 kernels, stride 2, padding 1, so the output side halves.
    let convs = [
        ("vae encoder.0 conv 1->32 32^2", 1, 32, 32, true),
        ("vae encoder.3 conv 32->64 16^2", 32, 64, 16, true),
        ("vae encoder.6 conv 64->128 8^2", 64, 128, 8, true),
        ("dcgan discriminator.2 conv 64->128 16^2", 64, 128, 16, false),
        ("dcgan discriminator.5 conv 128->256 8^2", 128, 256, 8, false),
    ];
    for (label, cin, cout, side, in_small) in convs {
        if in_small || !small {
            let out = side / 2;
            v.push(Case::new(label, cout, b * out * out, cin * 16));
        }
    }
    v
}

/// Parses the `--matmul` list: `N` (N³), `MxNxK`, `models` or `models-small`.
pub fn parse_cases(spec: &[String]) -> Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    for item in spec.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let add: Vec<Case> = match item {
            "models" => model_cases(false),
            "models-small" => model_cases(true),
            _ => {
                let dims: Vec<usize> = item
                    .split('x')
                    .map(|d| d.parse::<usize>().ok().filter(|&d| d > 0))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad_item(item))?;
                match dims[..] {
                    [s] => vec![Case::new(format!("square {s}"), s, s, s)],
                    [m, n, k] => vec![Case::new(format!("{m}x{n}x{k}"), m, n, k)],
                    _ => return Err(bad_item(item)),
                }
            }
        };
        for c in add {
            if !cases.contains(&c) {
                cases.push(c);
            }
        }
    }
    if cases.is_empty() {
        bail!("--matmul: no shapes given (e.g. --matmul 1024,2048,models)");
    }
    Ok(cases)
}

fn bad_item(item: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--matmul '{item}': expected a size N (N³), MxNxK with positive integers, 'models' or 'models-small'"
    )
}

/// How a row's time was measured.
const TIMESTAMPS: &str = "gpu-timestamps";
const WALL: &str = "wall-replay";

/// Kernel time aimed for per product: enough replays to steady a GPU's clocks, little enough that
/// the slowest case on a software adapter (a few replays of ~1 s) stays within the run's budget.
const TARGET_S: f64 = 0.25;
const MIN_REPS: usize = 3;
/// Timestamp queries are 2 per replay in one query set, which wgpu caps at 4096.
const MAX_REPS: usize = 200;
/// Replays per candidate when the tuner measures one.
const TUNE_REPS: usize = 5;
/// Entries of C checked against the f64 product.
const CHECKED: usize = 64;
/// Largest |c − c_ref| / Σ_k |a_ik·b_kj| accepted: f32 rounding over K ≤ 4096 terms stays far below.
const MAX_REL_ERR: f64 = 1e-4;

pub struct Row {
    pub case: Case,
    pub set: KernelSet,
    /// The entry point and, for the tiled set, the plan (tile and K split) the product was given.
    pub kernel: String,
    pub reps: usize,
    pub ms: f64,
    pub gflops: f64,
    pub timing: &'static str,
    pub max_rel_err: f64,
}

impl Row {
    pub fn correct(&self) -> bool {
        self.max_rel_err <= MAX_REL_ERR
    }
}

pub struct Skipped {
    pub case: Case,
    pub set: KernelSet,
    pub reason: String,
}

pub struct Sweep {
    pub rows: Vec<Row>,
    pub skipped: Vec<Skipped>,
}

/// The dispatches of `c` on `set`, the scratch lengths they bind between B and C, and a label. On the
/// tiled set the plan (tile and K split) is the adapter's tuner's choice among the shape's candidates
/// (the default plan when tuning is off).
fn calls(gpu: &Gpu, set: KernelSet, c: &Case) -> Result<(Vec<KernelCall>, Vec<usize>, String)> {
    let shape = MatmulShape::nn(c.m, c.n, c.k);
    Ok(match set {
        KernelSet::Tiled => {
            let key = tuned::matmul_key(&shape, false);
            let plans = gemm::matmul_plans(shape)?;
            let pass = tuned::pass(key.clone(), 2, &plans, |p| gemm::matmul_planned(shape, false, false, Some(p)))?;
            let Some(t) = pass.tunable else {
                let kernel = format!("{} {}", pass.calls[0].entry, plans[0].name());
                return Ok((pass.calls, pass.scratch, kernel));
            };
            // Every candidate binds [A, B, (partials,) C]: one set of buffers serves them all.
            let lens: Vec<usize> = [shape.a_len(), shape.b_len()]
                .into_iter()
                .chain(pass.scratch.iter().copied())
                .chain([shape.c_len()])
                .collect();
            let mut buffers = None;
            let names: Vec<String> = t.candidates.iter().map(|(n, _)| n.clone()).collect();
            let chosen = gpu.tuner.choose(&key, &names, &mut |i| {
                if buffers.is_none() {
                    buffers = Some(zero_operands(gpu, &lens)?);
                }
                time_calls_on(gpu, &t.candidates[i].1, buffers.as_deref().unwrap_or_default(), TUNE_REPS)
            })?;
            let (name, calls) = &t.candidates[chosen];
            (calls.clone(), pass.scratch, format!("{} {name}", calls[0].entry))
        }
        KernelSet::Lavapipe => {
            let calls = matmul::matmul(shape, false, false)?;
            let kernel = calls[0].entry.to_string();
            (calls, Vec::new(), kernel)
        }
    })
}

/// Median seconds per replay of `prepared`: from timestamp queries around each replay when the
/// adapter has them (one submit of `reps` timed passes), else host time of `reps` replays in one
/// submit.
fn time(gpu: &Gpu, prepared: &[crate::runtime::launch::Prepared], reps: usize) -> Result<(f64, &'static str)> {
    let list: Vec<_> = (0..reps).flat_map(|_| prepared.iter()).collect();
    if let Some(t) = gpu.kernel_times(&list)? {
        let mut per_rep: Vec<f64> = t.chunks(prepared.len()).map(|c| c.iter().sum()).collect();
        per_rep.sort_by(f64::total_cmp);
        // A zero median means the adapter's timestamps did not advance: fall through to wall time.
        if per_rep[per_rep.len() / 2] > 0.0 {
            return Ok((per_rep[per_rep.len() / 2], TIMESTAMPS));
        }
    }
    Ok((gpu.time_replay(prepared, reps)?, WALL))
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Largest relative error of C at `CHECKED` sampled entries against an f64 dot product.
fn check(a: &[f32], b: &[f32], c: &[f32], case: &Case) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut worst = 0.0f64;
    for _ in 0..CHECKED {
        let (i, j) = (rng.random_range(0..case.m), rng.random_range(0..case.n));
        let (mut exact, mut scale) = (0.0f64, 0.0f64);
        for p in 0..case.k {
            let t = a[i * case.k + p] as f64 * b[p * case.n + j] as f64;
            exact += t;
            scale += t.abs();
        }
        let err = (c[i * case.n + j] as f64 - exact).abs() / scale.max(f64::MIN_POSITIVE);
        // A NaN must fail the check rather than vanish in max().
        worst = if err.is_nan() { f64::INFINITY } else { worst.max(err) };
    }
    worst
}

/// The kernel sets this adapter runs, and a note for each it cannot.
fn sets(gpu: &Gpu) -> (Vec<KernelSet>, Vec<(KernelSet, String)>) {
    if gpu.features.contains(wgpu::Features::SUBGROUP) {
        (vec![KernelSet::Tiled, KernelSet::Lavapipe], Vec::new())
    } else {
        let why = format!("the lavapipe set needs subgroup operations, which {} does not offer", gpu.describe());
        (vec![KernelSet::Tiled], vec![(KernelSet::Lavapipe, why)])
    }
}

/// Times every case on every kernel set the adapter runs; `progress` sees each row as it is done.
pub fn run(gpu: &Gpu, cases: &[Case], mut progress: impl FnMut(&Row)) -> Result<Sweep> {
    let (runnable, missing) = sets(gpu);
    let mut sweep = Sweep { rows: Vec::new(), skipped: Vec::new() };
    for case in cases {
        for (set, reason) in &missing {
            sweep.skipped.push(Skipped { case: case.clone(), set: *set, reason: reason.clone() });
        }
        let (a, b) = (random(case.m * case.k, 1), random(case.k * case.n, 2));
        let bufs = [gpu.upload_f32("A", &a)?, gpu.upload_f32("B", &b)?, gpu.zeros("C", (case.m * case.n * 4) as u64)?];
        for &set in &runnable {
            let (calls, scratch, kernel) = match calls(gpu, set, case) {
                Ok(c) => c,
                Err(e) => {
                    sweep.skipped.push(Skipped { case: case.clone(), set, reason: format!("{e:#}") });
                    continue;
                }
            };
            let scratch =
                scratch.iter().map(|&n| gpu.zeros("split-K partials", n as u64 * 4)).collect::<Result<Vec<_>>>()?;
            let operands: Vec<_> = bufs[..2].iter().chain(&scratch).chain(&bufs[2..]).map(|b| b.whole()).collect();
            let prepared = calls.iter().map(|c| gpu.prepare(c, &operands)).collect::<Result<Vec<_>>>()?;
            // time_replay's own warm-up replay absorbs first-use costs; its timed replay sizes `reps`.
            let once = gpu.time_replay(&prepared, 1)?;
            // A product slower than a second per replay is far above timer noise: once is enough,
            // and keeps a slow kernel set from eating the run.
            let reps = if once >= 1.0 { 1 } else { ((TARGET_S / once.max(1e-7)) as usize).clamp(MIN_REPS, MAX_REPS) };
            let (secs, timing) = time(gpu, &prepared, reps)?;
            gpu.check()?;
            let c = gpu.read_f32(bufs[2].whole())?;
            let row = Row {
                case: case.clone(),
                set,
                kernel,
                reps,
                ms: secs * 1e3,
                gflops: case.flops() / secs / 1e9,
                timing,
                max_rel_err: check(&a, &b, &c, case),
            };
            progress(&row);
            sweep.rows.push(row);
        }
    }
    Ok(sweep)
}

pub fn to_json(gpu: &Gpu, sweep: &Sweep) -> Value {
    json!({
        "adapter": gpu.describe(),
        "software_adapter": gpu.is_software(),
        "timestamp_queries": gpu.has_timestamps(),
        "default_kernel_set": gpu.kernel_set.name(),
        "tiled_tiles": gemm::kernel_set_json(KernelSet::Tiled)["tiles"],
        "autotune": gpu.tuner.chosen(),
        "max_rel_err_allowed": MAX_REL_ERR,
        "matmul": sweep.rows.iter().map(|r| json!({
            "label": r.case.label, "m": r.case.m, "n": r.case.n, "k": r.case.k,
            "set": r.set.name(), "kernel": r.kernel, "reps": r.reps, "ms": r.ms, "gflops": r.gflops,
            "timing": r.timing, "max_rel_err": r.max_rel_err, "correct": r.correct(),
        })).collect::<Vec<_>>(),
        "skipped": sweep.skipped.iter().map(|s| json!({
            "label": s.case.label, "m": s.case.m, "n": s.case.n, "k": s.case.k,
            "set": s.set.name(), "reason": s.reason,
        })).collect::<Vec<_>>(),
    })
}

pub const TEXT_HEADER: &str = "label                                       M      N      K  set       kernel                 reps        ms   GFLOP/s  timing";

pub fn row_text(r: &Row) -> String {
    format!(
        "{:<40} {:>6} {:>6} {:>6}  {:<9} {:<22} {:>4} {:>9.3} {:>9.1}  {}{}",
        r.case.label,
        r.case.m,
        r.case.n,
        r.case.k,
        r.set.name(),
        r.kernel,
        r.reps,
        r.ms,
        r.gflops,
        r.timing,
        if r.correct() { String::new() } else { format!("  WRONG (rel. error {:.2e})", r.max_rel_err) }
    )
}

/// The whole `bench --matmul` subcommand: a table as rows finish, or one JSON document.
pub fn main(gpu: &Gpu, spec: &[String], json_out: bool) -> Result<()> {
    let cases = parse_cases(spec)?;
    if !json_out {
        println!("{}, default kernel set {}", gpu.describe(), gpu.kernel_set);
        println!("{TEXT_HEADER}");
    }
    let sweep = run(gpu, &cases, |r| {
        if !json_out {
            println!("{}", row_text(r));
        }
    })?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&to_json(gpu, &sweep))?);
    } else {
        for s in &sweep.skipped {
            println!("skipped {} on the {} set: {}", s.case.label, s.set, s.reason);
        }
    }
    let wrong = sweep.rows.iter().filter(|r| !r.correct()).count();
    if wrong > 0 {
        bail!("{wrong} of {} products disagree with the f64 reference (see the table)", sweep.rows.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_shapes_and_model_lists() {
        let spec: Vec<String> = ["256", "64x32x16", "models-small", "256"].iter().map(|s| s.to_string()).collect();
        let c = parse_cases(&spec).unwrap();
        assert_eq!(c[0], Case::new("square 256", 256, 256, 256));
        assert_eq!(c[1], Case::new("64x32x16", 64, 32, 16));
        assert_eq!(c.len(), 2 + model_cases(true).len());
        assert!(parse_cases(&["0".into()]).is_err());
        assert!(parse_cases(&["12x3".into()]).is_err());
        assert!(parse_cases(&["big".into()]).is_err());
    }

    #[test]
    fn model_shapes_are_the_implicit_gemms() {
        let all = model_cases(false);
        let d = all.iter().find(|c| c.label.starts_with("dcgan discriminator.5")).unwrap();
        // Conv(128→256, 4, 2, 1) on 8×8 at batch 128: M = Cout, N = 128·4·4, K = 128·16.
        assert_eq!((d.m, d.n, d.k), (256, 2048, 2048));
        assert_eq!(all.len(), model_cases(true).len() + 2);
    }
}
