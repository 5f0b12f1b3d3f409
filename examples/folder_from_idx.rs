//! Writes Fashion-MNIST's test images as 28×28 greyscale PNG files, for a real-data trial of the image
//! folder loader:
//!
//! `cargo run --release --example folder_from_idx -- /tmp/fashion-png --count 2000 --classes`
//! `cargo run --release -- train vae --data /tmp/fashion-png`
//!
//! reads `t10k-images-idx3-ubyte.gz` (and, with `--classes`, the labels) from `--data DIR`, default
//! Debian's /usr/share/datasets/fashion-mnist; `--classes` puts each image in a sub-folder named for its
//! class (`0_t-shirt/`, …), which the loader walks and ignores.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use gputrain::data::{read_images, read_labels, DEBIAN_DIR};
use image::{GrayImage, ImageFormat};

const CLASSES: [&str; 10] =
    ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

#[derive(Parser)]
struct Args {
    /// Folder to write the PNG files into (created if missing).
    out: PathBuf,
    /// Directory holding t10k-images-idx3-ubyte.gz (and t10k-labels-idx1-ubyte.gz).
    #[arg(long, default_value = DEBIAN_DIR)]
    data: PathBuf,
    /// Write only the first N images.
    #[arg(long)]
    count: Option<usize>,
    /// One sub-folder per class.
    #[arg(long)]
    classes: bool,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let images = read_images(&a.data.join("t10k-images-idx3-ubyte.gz"))?;
    let labels = if a.classes { Some(read_labels(&a.data.join("t10k-labels-idx1-ubyte.gz"))?) } else { None };
    let n = a.count.unwrap_or(images.n);
    if n == 0 || n > images.n {
        bail!("--count {n}: the test set has {} images", images.n);
    }
    if labels.as_ref().is_some_and(|l| l.len() != images.n) {
        bail!("{}: the labels file does not have one label per image", a.data.display());
    }
    let len = images.h * images.w;
    for i in 0..n {
        let dir = match &labels {
            Some(l) => {
                let c = l[i] as usize;
                let name = CLASSES.get(c).with_context(|| format!("image {i}: label {c} is not a class 0-9"))?;
                a.out.join(format!("{c}_{name}"))
            }
            None => a.out.clone(),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let img = GrayImage::from_raw(images.w as u32, images.h as u32, images.pixels[i * len..(i + 1) * len].to_vec())
            .context("image size")?;
        write_png(&dir.join(format!("{i:05}.png")), &img)?;
    }
    println!("{n} images → {}", a.out.display());
    Ok(())
}

/// Through a temporary name and a rename, so an interrupted run leaves no half-written PNG for the
/// loader to skip.
fn write_png(path: &Path, img: &GrayImage) -> Result<()> {
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, ImageFormat::Png).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
