//! Command-line interface: parses flags and hands each subcommand to its file under src/cli/.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli {
    pub mod ae;
    pub mod bench;
    pub mod classifier;
    pub mod gan;
    pub mod info;
    pub mod probe;
    pub mod train;
    pub mod vae;
}

use cli::train::TrainArgs;
use gputrain::runtime::{BackendChoice, KernelChoice};
use gputrain::tune::TuneMode;

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
    /// Time candidate kernels per shape on this adapter at first use and cache the winner (default:
    /// $GPUTRAIN_AUTOTUNE, else on for GPUs, off for software adapters).
    #[arg(long, global = true, value_name = "on|off|refresh")]
    autotune: Option<TuneMode>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process, so the size of the largest variant (the GAN's training flags) costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Write images from a checkpoint: a PNG grid, or an .npy array for other tools.
    #[command(subcommand)]
    Sample(SampleCmd),
    /// Time training steps headless: ms/step, images/s, traffic per step and a per-kernel table.
    Bench(cli::bench::BenchArgs),
}

#[derive(Subcommand)]
enum TrainCmd {
    /// The convolutional VAE (Fashion-MNIST, 1×32×32).
    Vae(cli::vae::TrainVae),
    /// The DCGAN (Fashion-MNIST, 1×32×32 in [−1, 1]).
    Gan(cli::gan::TrainGan),
    /// The Fashion-MNIST classifier whose features score the GAN (IS, FID); default 3 epochs.
    Classifier(TrainArgs),
    /// The convolutional autoencoder (1×28×28, max-pool down, nearest upsampling up, squared error).
    Ae(TrainArgs),
}

#[derive(Subcommand)]
enum EvalCmd {
    /// Test-set accuracy of a classifier checkpoint (and export of its weights).
    Classifier(cli::classifier::EvalClassifier),
    /// IS and FID of a GAN checkpoint (10 000 samples against the test set) and the real-data ceiling.
    Gan(cli::gan::EvalGan),
    /// Test-set reconstruction, KL and negative ELBO (nats/image) of a VAE checkpoint.
    Vae(cli::vae::EvalVae),
    /// Test-set MSE per pixel and PSNR of an autoencoder checkpoint.
    Ae(cli::ae::EvalAe),
}

#[derive(Subcommand)]
enum SampleCmd {
    /// Decoded z ~ N(0, I), or with --interpolate a latent walk between two test images.
    Vae(cli::vae::SampleVae),
    /// Generated images from z ~ N(0, I).
    Gan(cli::gan::SampleGan),
    /// With --interpolate, a walk through code space between two test images.
    Ae(cli::ae::SampleAe),
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
    let autotune = cli.autotune;
    // The device resolves the mode from the environment and the adapter; the flag overrides it.
    let gpu = || {
        let g = cli::probe::open_gpu(backend, kernels)?;
        if let Some(mode) = autotune {
            g.tuner.set_mode(mode);
        }
        Ok(g)
    };
    match cli.command {
        Command::Info => cli::info::run(gpu),
        Command::Train(TrainCmd::Vae(a)) => cli::vae::train(a, backend, gpu),
        Command::Train(TrainCmd::Gan(a)) => cli::gan::train(a, backend, gpu),
        Command::Train(TrainCmd::Classifier(a)) => cli::classifier::train(a, backend, gpu),
        Command::Train(TrainCmd::Ae(a)) => cli::ae::train(a, backend, gpu),
        Command::Eval(EvalCmd::Vae(a)) => cli::vae::eval(a, gpu),
        Command::Eval(EvalCmd::Gan(a)) => cli::gan::eval(a, gpu),
        Command::Eval(EvalCmd::Classifier(a)) => cli::classifier::eval(a, gpu),
        Command::Eval(EvalCmd::Ae(a)) => cli::ae::eval(a, gpu),
        Command::Sample(SampleCmd::Vae(a)) => cli::vae::sample(a, gpu),
        Command::Sample(SampleCmd::Gan(a)) => cli::gan::sample(a, gpu),
        Command::Sample(SampleCmd::Ae(a)) => cli::ae::sample(a, gpu),
        Command::Bench(a) => cli::bench::run(a, gpu),
    }
}
