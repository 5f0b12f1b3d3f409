//! `bench`: training steps timed headless, or C = A·B on every kernel set (`--matmul`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use gputrain::data::{Dataset, LoadOptions};
use gputrain::models::vae::{Vae, VaeConfig};
use gputrain::runtime::Gpu;
use gputrain::train::model::TrainableModel;

#[derive(Args)]
pub struct BenchArgs {
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

pub fn run(a: BenchArgs, gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
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
    let data = Dataset::load(a.data.as_deref(), &LoadOptions::default())?;
    let gpu = gpu()?;
    if !a.json {
        println!("{}, {} kernels\ndata: {}", gpu.describe(), gpu.kernel_set, data.source);
    }
    let mut results = Vec::new();
    for m in &models {
        for &b in &a.batch_size {
            let r = gputrain::bench::run(&gpu, m, b, a.steps as usize, 2, || {
                Ok(if *m == "vae" {
                    let c = VaeConfig { batch_size: b, ..Default::default() };
                    Box::new(Vae::new(&gpu, &c, &data)?) as Box<dyn TrainableModel>
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
            "autotune": gpu.tuner.chosen(),
            "data": data.source,
            "results": results.iter().map(gputrain::bench::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
