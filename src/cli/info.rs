//! `info`: the adapter, backend, limits and features the kernels will run on.

use anyhow::Result;

use gputrain::runtime::{Gpu, KernelSet};

pub fn run(gpu: impl Fn() -> Result<Gpu>) -> Result<()> {
    let g = gpu()?;
    println!("{}", g.report());
    let cache = g.tuner.cache_path().map_or("none (no cache directory)".to_string(), |p| p.display().to_string());
    println!("autotune:       {} (cache {cache})", g.tuner.mode());
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
