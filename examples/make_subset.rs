//! Rebuilds the embedded dataset subset in assets/ from a full IDX dataset directory:
//!
//! `cargo run --release --example make_subset -- /usr/share/datasets/fashion-mnist assets/fashion-mnist-subset 10000 2000`
//!
//! keeps the first N training and first M test images and labels, written as gzip level 9 IDX files.

use std::path::Path;

use anyhow::{bail, Context, Result};
use gputrain::data::{read_images, read_labels, write_idx};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        bail!("usage: make_subset SRC_DIR DST_DIR N_TRAIN N_TEST");
    }
    let (src, dst) = (Path::new(&args[0]), Path::new(&args[1]));
    std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    for (prefix, count) in [("train", &args[2]), ("t10k", &args[3])] {
        let n: usize = count.parse().with_context(|| format!("count {count}"))?;
        let images = read_images(&src.join(format!("{prefix}-images-idx3-ubyte.gz")))?;
        let labels = read_labels(&src.join(format!("{prefix}-labels-idx1-ubyte.gz")))?;
        if n > images.n {
            bail!("{prefix}: asked for {n} images, the source has {}", images.n);
        }
        let len = images.h * images.w;
        let out = dst.join(format!("{prefix}-images-idx3-ubyte.gz"));
        write_idx(&out, &[n, images.h, images.w], &images.pixels[..n * len])?;
        write_idx(&dst.join(format!("{prefix}-labels-idx1-ubyte.gz")), &[n], &labels[..n])?;
        println!("{prefix}: {n} of {} images → {}", images.n, dst.display());
    }
    Ok(())
}
