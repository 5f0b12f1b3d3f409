//! Command-line interface: parses flags and hands off to the library.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

mod cli {
    pub mod classifier;
    pub mod gan;
}

use gputrain::data::Dataset;
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::runtime::{BackendChoice, Gpu, KernelChoice, KernelSet};
use gputrain::train::checkpoint;
use gputrain::train::model::{ImageBatch, TrainableModel};
use gputrain::train::run::{self, RunOptions, StopReason};

#[derive(Parser)]
#[command(name = "gputrain", version, about = "Train a DCGAN or a VAE on the GPU with hand-written WGSL kernels")]
struct Cli {
    /// wgpu backend: auto, vulkan, gl, metal or dx12 (default: $WGPU_BACKEND, else auto).
    #[arg(long, global = true)]
    backend: Option<BackendChoice>,
    /// Matmul and convolution kernels: auto (lavapipe's on the 8-lane software adapter, tiled
    /// everywhere else), tiled or lavapipe (default: $GPUTRAIN_KERNELS, else auto).
    #[arg(long, global = true)]
    kernels: Option<KernelChoice>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the adapter, backend, limits and features the kernels will run on.
    Info,
    /// Train a model; writes a run directory (config, logs, images, checkpoints).
    #[command(subcommand)]
    Train(TrainCmd),
    /// Evaluate a checkpoint on the test set.
    #[command(subcommand)]
    Eval(EvalCmd),
    /// Write a PNG grid of images from a checkpoint.
    #[command(subcommand)]
    Sample(SampleCmd),
    /// Time training steps headless: ms/step, images/s, traffic per step and a per-kernel table.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Which model's training step to time: vae, gan or all.
    #[arg(long, default_value = "all")]
    model: String,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [128usize])]
    batch_size: Vec<usize>,
    /// Timed steps per configuration (after 2 warm-up steps).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Dataset directory (default: the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    json: bool,
    /// Time C = A·B (f32) on every kernel set instead of the models: sizes N (N³), MxNxK, `models`
    /// (the models' GEMM shapes at batch 128) or `models-small` (those a software adapter times in
    /// seconds), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SHAPES", conflicts_with_all = ["model", "batch_size", "steps", "data"])]
    matmul: Option<Vec<String>>,
}

#[derive(Subcommand)]
enum TrainCmd {
    /// The convolutional VAE (Fashion-MNIST, 1×32×32).
    Vae(TrainVae),
    /// The DCGAN (Fashion-MNIST, 1×32×32 in [−1, 1]).
    Gan(TrainGan),
    /// The Fashion-MNIST classifier whose features score the GAN (IS, FID); default 3 epochs.
    Classifier(TrainVae),
}

#[derive(Args)]
struct TrainGan {
    #[command(flatten)]
    common: TrainVae,
    /// dcgan (transposed convolutions, 32×32) or mlp (fully connected G, conv + max-pool D, 28×28)
    /// [default: dcgan, or the resumed checkpoint's].
    #[arg(long)]
    arch: Option<String>,
    /// One-sided label smoothing: the discriminator's target for real images (e.g. 0.9) [default: 1].
    #[arg(long, value_name = "REAL_LABEL")]
    label_smoothing: Option<f32>,
    /// Generated images scored (IS, FID) at each epoch's evaluation; 0 skips the scores.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    score_samples: usize,
}

#[derive(Subcommand)]
enum EvalCmd {
    /// Test-set accuracy of a classifier checkpoint (and export of its weights).
    Classifier(cli::classifier::EvalClassifier),
    /// IS and FID of a GAN checkpoint (10 000 samples against the test set) and the real-data ceiling.
    Gan(cli::gan::EvalGan),
    /// Test-set reconstruction, KL and negative ELBO (nats/image) of a VAE checkpoint.
    Vae {
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// Dataset directory (default: the one the checkpoint was trained on, else the usual lookup).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SampleCmd {
    /// Decoded z ~ N(0, I), or with --interpolate a latent walk between two test images.
    Vae(SampleVae),
    /// Generated images from z ~ N(0, I).
    Gan(cli::gan::SampleGan),
}

/// Hyper-parameters left out when resuming are taken from the checkpoint, so that
/// `train vae --resume F` alone continues the run it came from.
#[derive(Args)]
struct TrainVae {
    /// Total epochs [default: vae 10, gan 5, classifier 3].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// Images per step [default: 128].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate [default: gan 2e-4, otherwise 1e-3].
    #[arg(long)]
    lr: Option<f32>,
    /// Latent dimensions [default: vae 32, gan 100].
    #[arg(long)]
    latent: Option<usize>,
    /// Seed of initialisation, shuffling and noise [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Directory with the (Fashion-)MNIST IDX files [default: /usr/share/datasets/fashion-mnist, else the
    /// embedded subset].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Run directory [default: runs/<model>-<timestamp>, or the resumed checkpoint's run].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Stop once the global step reaches N (for smoke tests).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_steps: Option<u64>,
    /// Continue from a checkpoint (exactly: same batches, same random numbers).
    #[arg(long, value_name = "CHECKPOINT")]
    resume: Option<PathBuf>,
    /// Read the losses back every N steps.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write checkpoints/last.safetensors every M minutes within an epoch; 0: at epoch ends only.
    #[arg(long, value_name = "M", default_value_t = 10.0)]
    checkpoint_minutes: f64,
}

#[derive(Args)]
struct SampleVae {
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Images to draw (at most 64) [default: 64, or 16 frames with --interpolate].
    #[arg(long)]
    n: Option<usize>,
    /// Output PNG [default: samples.png, or interpolation.png].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Walk the latent space from test image --from to test image --to instead of sampling.
    #[arg(long)]
    interpolate: bool,
    #[arg(long, default_value_t = 0)]
    from: usize,
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Dataset for --interpolate's test images (default: the checkpoint's, else the usual lookup).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let backend = BackendChoice::resolve(cli.backend)?;
    let kernels = KernelChoice::resolve(cli.kernels)?;
    let gpu = || Gpu::open(backend, kernels);
    match cli.command {
        Command::Info => {
            let g = gpu()?;
            println!("{}", g.report());
            if g.kernel_set == KernelSet::Tiled {
                println!("tiled GEMM blocks (chosen per product shape):");
                for line in gputrain::ops::gemm::describe_tiles() {
                    println!("  {line}");
                }
            }
            if g.is_software() {
                println!("note: this is a software adapter (CPU); training works but is slow");
            }
            Ok(())
        }
        Command::Train(TrainCmd::Vae(a)) => train_vae(a, backend, gpu),
        Command::Train(TrainCmd::Classifier(a)) => cli::classifier::train(a, backend, gpu),
        Command::Eval(EvalCmd::Classifier(a)) => cli::classifier::eval(a, gpu),
        Command::Eval(EvalCmd::Gan(a)) => cli::gan::eval(a, gpu),
        Command::Train(TrainCmd::Gan(a)) => {
            cli::gan::train(a.common, a.arch, a.label_smoothing, a.score_samples, backend, gpu)
        }
        Command::Eval(EvalCmd::Vae { checkpoint, data }) => eval_vae(&checkpoint, data.as_deref(), gpu),
        Command::Sample(SampleCmd::Vae(a)) => sample_vae(a, gpu),
        Command::Sample(SampleCmd::Gan(a)) => cli::gan::sample(a, gpu),
        Command::Bench(a) => bench(a, gpu),
    }
}

/// The VAE's hyper-parameters as stored in a run's settings.
struct VaeSettings {
    batch_size: usize,
    lr: f32,
    latent: usize,
    seed: u64,
}

impl VaeSettings {
    /// From a checkpoint's settings, with the defaults for anything missing.
    fn from_json(s: &Value) -> VaeSettings {
        let u = |k: &str, d: u64| s.get(k).and_then(Value::as_u64).unwrap_or(d);
        VaeSettings {
            batch_size: u("batch_size", 128) as usize,
            lr: s.get("lr").and_then(Value::as_f64).unwrap_or(1e-3) as f32,
            latent: u("latent", 32) as usize,
            seed: u("seed", 0),
        }
    }
}

/// What the CLI needs from the VAE beyond training: decoding latents and encoding test images.
trait LatentModel: TrainableModel {
    fn latent(&self) -> usize;
    fn decode(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch>;
    /// μ of the given test images, `latent` floats each.
    fn encode_test(&mut self, gpu: &Gpu, indices: &[usize]) -> Result<Vec<f32>>;
}

impl LatentModel for Vae {
    fn latent(&self) -> usize {
        Vae::latent(self)
    }
    fn decode(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch> {
        Vae::decode(self, gpu, z)
    }
    fn encode_test(&mut self, gpu: &Gpu, indices: &[usize]) -> Result<Vec<f32>> {
        Vae::encode_test(self, gpu, indices)
    }
}

fn new_vae(gpu: &Gpu, s: &VaeSettings, data: &Dataset) -> Result<Box<dyn LatentModel>> {
    let cfg = VaeConfig { batch_size: s.batch_size, lr: s.lr, latent: s.latent, seed: s.seed };
    Ok(Box::new(Vae::new(gpu, &cfg, data)?))
}

/// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
fn check_vae_settings(s: &VaeSettings) -> Result<()> {
    if s.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if s.latent == 0 {
        bail!("--latent must be at least 1");
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        bail!("--lr {}: must be a positive number", s.lr);
    }
    Ok(())
}

fn checkpoint_settings(path: &Path) -> Result<Value> {
    run::checkpoint_settings(&checkpoint::load(path)?)
}

/// `--data` if given, else the directory the checkpoint's run used (if it still exists), else the usual lookup.
fn load_data(flag: Option<&Path>, settings: &Value) -> Result<Dataset> {
    let trained_on = settings.get("data").and_then(Value::as_str).map(PathBuf::from).filter(|d| d.is_dir());
    let data = Dataset::load(flag.or(trained_on.as_deref()))?;
    println!("data: {}", data.source);
    Ok(data)
}

fn train_vae(a: TrainVae, backend: BackendChoice, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let from = match &a.resume {
        Some(p) => checkpoint_settings(p).context("--resume")?,
        None => Value::Null,
    };
    let d = VaeSettings::from_json(&from);
    let s = VaeSettings {
        batch_size: a.batch_size.unwrap_or(d.batch_size),
        lr: a.lr.unwrap_or(d.lr),
        latent: a.latent.unwrap_or(d.latent),
        seed: a.seed.unwrap_or(d.seed),
    };
    check_vae_settings(&s)?;
    let settings = json!({
        "model": "vae",
        "batch_size": s.batch_size,
        "lr": s.lr,
        "latent": s.latent,
        "seed": s.seed,
    });
    train_model(
        a,
        &from,
        settings,
        10,
        backend,
        gpu,
        |gpu, data| Ok(new_vae(gpu, &s, data)? as Box<dyn TrainableModel>),
    )
}

/// The run shared by every model: dataset lookup, settings record, run directory, Ctrl-C, summary.
/// `settings` holds the model's hyper-parameters; the run's own flags are added here.
fn train_model(
    a: TrainVae,
    from: &Value,
    mut settings: Value,
    default_epochs: u64,
    backend: BackendChoice,
    gpu: impl Fn() -> Result<Gpu>,
    build: impl FnOnce(&Gpu, &Dataset) -> Result<Box<dyn TrainableModel>>,
) -> Result<()> {
    if !(a.checkpoint_minutes.is_finite() && a.checkpoint_minutes >= 0.0) {
        bail!("--checkpoint-minutes must be a number of minutes ≥ 0, got {}", a.checkpoint_minutes);
    }
    let checkpoint_every = (a.checkpoint_minutes > 0.0).then(|| Duration::from_secs_f64(a.checkpoint_minutes * 60.0));
    let epochs = a.epochs.or(from.get("epochs").and_then(Value::as_u64)).unwrap_or(default_epochs);
    let data_dir = a.data.clone().or(from.get("data").and_then(Value::as_str).map(PathBuf::from));
    let data = Dataset::load(data_dir.as_deref())?;
    let extra = json!({
        "epochs": epochs,
        "data": data_dir.as_ref().map(|d| d.display().to_string()),
        "dataset": data.source,
        "max_steps": a.max_steps,
        "log_every": a.log_every,
        "backend": backend.to_string(),
    });
    if let (Some(s), Value::Object(e)) = (settings.as_object_mut(), extra) {
        s.extend(e);
    }
    let gpu = gpu()?;
    println!("data: {}", data.source);
    let mut model = build(&gpu, &data)?;
    let stop = Arc::new(AtomicBool::new(false));
    run::install_interrupt_handler(stop.clone())?;
    let opts = RunOptions {
        epochs,
        checkpoint_every,
        max_steps: a.max_steps,
        out: a.out,
        quiet: a.quiet,
        log_every: a.log_every,
        resume: a.resume,
        settings,
        stop,
    };
    let summary = run::train(&gpu, model.as_mut(), &opts)?;
    let what = match summary.stop {
        StopReason::Finished => "finished",
        StopReason::MaxSteps => "stopped at --max-steps",
        StopReason::Interrupted => "interrupted",
    };
    println!("{what} at step {}; run directory {}", summary.global_step, summary.run_dir.display());
    Ok(())
}

fn eval_vae(path: &Path, data: Option<&Path>, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let settings = checkpoint_settings(path).context("--checkpoint")?;
    let data = load_data(data, &settings)?;
    let gpu = gpu()?;
    let mut model = new_vae(&gpu, &VaeSettings::from_json(&settings), &data)?;
    let eval = run::evaluate_checkpoint(&gpu, model.as_mut(), path)?;
    let f = |k: &str| eval.get(k).map(|v| format!("{v:.3}")).unwrap_or_else(|| "?".into());
    println!("test set: recon {}  KL {}  negative ELBO {} nats/image", f("recon"), f("kl"), f("neg_elbo"));
    Ok(())
}

fn sample_vae(a: SampleVae, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let n = a.n.unwrap_or(if a.interpolate { 16 } else { 64 });
    if !(1..=64).contains(&n) || (a.interpolate && n < 2) {
        bail!("--n {n}: must be between {} and 64", if a.interpolate { 2 } else { 1 });
    }
    let out = a.out.unwrap_or_else(|| PathBuf::from(if a.interpolate { "interpolation.png" } else { "samples.png" }));
    let settings = checkpoint_settings(&a.checkpoint).context("--checkpoint")?;
    let data = load_data(a.data.as_deref(), &settings)?;
    if a.interpolate {
        for (flag, i) in [("--from", a.from), ("--to", a.to)] {
            if i >= data.test.n {
                bail!("{flag} {i}: the test set has {} images", data.test.n);
            }
        }
    }
    let gpu = gpu()?;
    let mut model = new_vae(&gpu, &VaeSettings::from_json(&settings), &data)?;
    run::load_checkpoint(&gpu, model.as_mut(), &a.checkpoint)?;
    let latent = model.latent();
    let z: Vec<f32> = if a.interpolate {
        let mu = model.encode_test(&gpu, &[a.from, a.to])?;
        let (za, zb) = mu.split_at(latent);
        (0..n)
            .flat_map(|k| {
                let t = k as f32 / (n - 1) as f32;
                za.iter().zip(zb).map(move |(p, q)| p + t * (q - p))
            })
            .collect()
    } else {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).expect("unit normal");
        (0..n * latent).map(|_| rand_distr::Distribution::sample(&normal, &mut rng)).collect()
    };
    let images = model.decode(&gpu, &z)?;
    run::save_batch(&out, &images)?;
    println!("wrote {} ({n} images)", out.display());
    Ok(())
}

fn bench(a: BenchArgs, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    if let Some(spec) = &a.matmul {
        // Parse before opening the device, so a typo fails at once.
        gputrain::bench::matmul::parse_cases(spec)?;
        return gputrain::bench::matmul::main(&gpu()?, spec, a.json);
    }
    let models: Vec<&str> = match a.model.as_str() {
        "all" => vec!["vae", "gan"],
        "vae" => vec!["vae"],
        "gan" => vec!["gan"],
        m => bail!("--model {m}: expected vae, gan or all"),
    };
    if let Some(b) = a.batch_size.iter().find(|&&b| b == 0) {
        bail!("--batch-size {b}: must be at least 1");
    }
    let data = Dataset::load(a.data.as_deref())?;
    let gpu = gpu()?;
    if !a.json {
        println!("{}, {} kernels\ndata: {}", gpu.describe(), gpu.kernel_set, data.source);
    }
    let mut results = Vec::new();
    for m in &models {
        for &b in &a.batch_size {
            let r = gputrain::bench::run(&gpu, m, b, a.steps as usize, 2, || {
                Ok(if *m == "vae" {
                    let s = VaeSettings { batch_size: b, lr: 1e-3, latent: 32, seed: 0 };
                    new_vae(&gpu, &s, &data)? as Box<dyn TrainableModel>
                } else {
                    let c = gputrain::models::gan::GanConfig { batch_size: b, ..Default::default() };
                    Box::new(gputrain::models::gan::Gan::new(&gpu, &c, &data)?)
                })
            })?;
            if !a.json {
                print!("{}", gputrain::bench::to_text(&r));
            }
            results.push(r);
        }
    }
    if a.json {
        let doc = json!({
            "adapter": gpu.describe(),
            "software_adapter": gpu.is_software(),
            "timestamp_queries": gpu.has_timestamps(),
            "kernels": gputrain::ops::gemm::kernel_set_json(gpu.kernel_set),
            "data": data.source,
            "results": results.iter().map(gputrain::bench::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
