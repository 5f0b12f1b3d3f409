//! Command-line interface: parses flags and hands off to the library.

use anyhow::Result;
use clap::{Parser, Subcommand};

use gputrain::runtime::{BackendChoice, Gpu};

#[derive(Parser)]
#[command(name = "gputrain", version, about = "Train a DCGAN or a VAE on the GPU with hand-written WGSL kernels")]
struct Cli {
    /// wgpu backend: auto, vulkan, gl, metal or dx12 (default: $WGPU_BACKEND, else auto).
    #[arg(long, global = true)]
    backend: Option<BackendChoice>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the adapter, backend, limits and features the kernels will run on.
    Info,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let gpu = || Gpu::new(BackendChoice::resolve(cli.backend)?);
    match cli.command {
        Command::Info => {
            let g = gpu()?;
            println!("{}", g.report());
            if g.is_software() {
                println!("note: this is a software adapter (CPU); training works but is slow");
            }
            Ok(())
        }
    }
}
