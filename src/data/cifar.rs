//! The CIFAR-10 binary format: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a run
//! of 3073-byte records (one label byte, then 1024 red, 1024 green and 1024 blue bytes of a 32×32 image,
//! row-major), which is already the channel-major layout the batch gather reads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::split::Split;

pub const SIDE: usize = 32;
pub const CHANNELS: usize = 3;
const RECORD: usize = 1 + CHANNELS * SIDE * SIDE;
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
/// Largest file accepted: a CIFAR-10 batch is 30 730 000 bytes.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Whether `dir` looks like a CIFAR-10 binary directory.
pub fn present(dir: &Path) -> bool {
    dir.join(TEST_FILE).is_file() || dir.join(TRAIN_FILES[0]).is_file()
}

/// Appends the records of `bytes` (named `name` in errors) to `images` and `labels`.
pub fn parse_records(bytes: &[u8], name: &str, images: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    if bytes.is_empty() {
        bail!("{name}: empty file (a CIFAR-10 batch is a run of {RECORD}-byte records)");
    }
    if !bytes.len().is_multiple_of(RECORD) {
        bail!(
            "{name}: {} bytes is not a whole number of {RECORD}-byte records (truncated at record {}?)",
            bytes.len(),
            bytes.len() / RECORD
        );
    }
    for (i, r) in bytes.chunks_exact(RECORD).enumerate() {
        if r[0] >= 10 {
            bail!("{name}: record {i} (byte offset {}) has label {}; CIFAR-10 labels are 0-9", i * RECORD, r[0]);
        }
        labels.push(r[0]);
        images.extend_from_slice(&r[1..]);
    }
    Ok(())
}

fn read(path: &Path, images: &mut Vec<u8>, labels: &mut Vec<u8>) -> Result<()> {
    let len = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?.len();
    if len > MAX_FILE_BYTES {
        bail!("{}: {len} bytes is larger than any CIFAR-10 batch", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_records(&bytes, &path.display().to_string(), images, labels)
}

fn split(paths: &[PathBuf]) -> Result<Split> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for p in paths {
        read(p, &mut images, &mut labels)?;
    }
    Ok(Split { n: labels.len(), images, labels, h: SIDE, w: SIDE, channels: CHANNELS })
}

/// (train, test) from `dir`: every `data_batch_N.bin` present (at least the first) and `test_batch.bin`.
pub fn load(dir: &Path) -> Result<(Split, Split)> {
    let train: Vec<PathBuf> = TRAIN_FILES.iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect();
    if !dir.join(TRAIN_FILES[0]).is_file() {
        bail!("{}: no {} (CIFAR-10 binary training batch)", dir.display(), TRAIN_FILES[0]);
    }
    let test = dir.join(TEST_FILE);
    if !test.is_file() {
        bail!("{}: no {TEST_FILE} (CIFAR-10 binary test batch)", dir.display());
    }
    Ok((split(&train)?, split(&[test])?))
}
