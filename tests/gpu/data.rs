//! IDX parsing (round trips and every kind of bad file) and the dataset lookup.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use gputrain::data::idx::{encode_idx, parse_images, read_images, read_labels, write_idx, Images};
use gputrain::data::{Dataset, LoadOptions, DEBIAN_DIR};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Images whose pixel bytes encode their index and position, so any reordering shows.
fn sample_images(n: usize, h: usize, w: usize) -> Images {
    Images { n, h, w, pixels: (0..n * h * w).map(|i| (i * 7 % 251) as u8).collect() }
}

/// An images header with arbitrary type/rank/dims, followed by `data_len` bytes.
fn header(magic: [u8; 4], dims: &[u32], data_len: usize) -> Vec<u8> {
    let mut v = magic.to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.resize(v.len() + data_len, 0x55);
    v
}

/// Writes `bytes` to a file named `name` and asserts that reading it as images fails with a message
/// naming the file and containing `want`.
fn expect_images_err(bytes: &[u8], name: &str, want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = read_images(&path).expect_err(name).to_string();
    assert!(err.contains(&path.display().to_string()), "error does not name the file: {err}");
    assert!(err.contains(want), "error for {name} lacks {want:?}: {err}");
}

#[test]
fn embedded_subset_loads() {
    let d = Dataset::embedded().unwrap();
    assert_eq!(d.source, "embedded Fashion-MNIST subset (10000 train, 2000 test)");
    for (s, n) in [(&d.train, 10_000), (&d.test, 2_000)] {
        assert_eq!((s.n, s.channels, s.h, s.w), (n, 1, 28, 28));
        assert_eq!(s.images.len(), n * 784);
        assert_eq!(s.labels.len(), n);
        assert!(s.labels.iter().all(|&l| l < 10));
        // Every one of the ten classes is present in a few thousand images.
        let mut seen = [false; 10];
        s.labels.iter().for_each(|&l| seen[l as usize] = true);
        assert!(seen.iter().all(|&b| b));
        assert_eq!(s.image(n - 1).len(), 784);
    }
}

/// Without `--data`, the lookup takes the Debian package when it is installed — then the embedded
/// subset must be its head — and the embedded subset otherwise. Both branches assert; which one runs
/// depends on the machine (CI installs only the Vulkan driver, so it checks the fallback).
#[test]
fn default_lookup_uses_the_debian_dataset_whose_head_is_the_embedded_subset() {
    let dir = Path::new(DEBIAN_DIR);
    if !dir.join("train-images-idx3-ubyte.gz").is_file() {
        let d = Dataset::load(None, &LoadOptions::default()).unwrap();
        assert!(d.source.starts_with("embedded"), "{}", d.source);
        return;
    }
    let full = Dataset::load(None, &LoadOptions::default()).unwrap();
    assert_eq!(full.source, DEBIAN_DIR);
    assert_eq!((full.train.n, full.test.n), (60_000, 10_000));
    let sub = Dataset::embedded().unwrap();
    assert_eq!(sub.train.images[..], full.train.images[..10_000 * 784]);
    assert_eq!(sub.train.labels[..], full.train.labels[..10_000]);
    assert_eq!(sub.test.images[..], full.test.images[..2_000 * 784]);
    assert_eq!(sub.test.labels[..], full.test.labels[..2_000]);
}

#[test]
fn idx_round_trip_plain_and_gz() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = sample_images(5, 7, 3);
    let labels: Vec<u8> = (0..5).collect();
    for ext in ["", ".gz"] {
        let ip = dir.path().join(format!("i{ext}"));
        let lp = dir.path().join(format!("l{ext}"));
        write_idx(&ip, &[imgs.n, imgs.h, imgs.w], &imgs.pixels).unwrap();
        write_idx(&lp, &[5], &labels).unwrap();
        let raw = std::fs::read(&ip).unwrap();
        assert_eq!(raw[..2] == [0x1f, 0x8b], ext == ".gz", "gzip exactly when the name ends in .gz");
        assert_eq!(read_images(&ip).unwrap(), imgs);
        assert_eq!(read_labels(&lp).unwrap(), labels);
    }
    assert!(encode_idx(&[2, 3], &[0; 5]).is_err(), "dims must match the data length");
}

#[test]
fn gzip_detected_by_magic_not_name() {
    let imgs = sample_images(2, 2, 2);
    let bytes = gz(&encode_idx(&[2, 2, 2], &imgs.pixels).unwrap());
    assert_eq!(parse_images(&bytes, "no-extension").unwrap(), imgs);
}

#[test]
fn bad_image_files_name_the_file_and_the_fault() {
    let good = encode_idx(&[3, 4, 4], &[9; 48]).unwrap();
    expect_images_err(&[], "empty", "too short for the 4-byte IDX magic");
    expect_images_err(&good[..2], "two-bytes", "too short");
    expect_images_err(&good[..10], "cut-header", "inside the header");
    expect_images_err(&good[..30], "cut-data", "truncated");
    expect_images_err(&[good.clone(), vec![1]].concat(), "trailing", "trailing bytes");
    let zipped = gz(&good);
    expect_images_err(&zipped[..zipped.len() / 2], "cut.gz", "gzip");
    expect_images_err(&zipped[..12], "tiny.gz", "truncated");
    let mut not_gzip: Vec<u8> = (0..500u32).map(|i| (i * 97 + 13) as u8).collect();
    expect_images_err(&not_gzip, "garbage", "bad IDX magic at offset 0");
    not_gzip[..2].copy_from_slice(&[0x1f, 0x8b]);
    expect_images_err(&not_gzip, "garbage.gz", "gzip");
    expect_images_err(&header([0x12, 0x34, 0x08, 3], &[1, 1, 1], 1), "magic", "bad IDX magic at offset 0");
    expect_images_err(&header([0, 0, 0x0d, 3], &[1, 1, 1], 4), "float", "type byte at offset 2 is 0x0d");
    expect_images_err(&header([0, 0, 8, 1], &[3], 3), "labels-as-images", "rank byte at offset 3 is 1, expected 3");
    expect_images_err(&header([0, 0, 8, 4], &[1, 1, 1, 1], 1), "rank4", "rank byte at offset 3 is 4");
    expect_images_err(&header([0, 0, 8, 3], &[2, 0, 4], 0), "zero-dim", "dimension 1 (at offset 8) is 0");
    let huge = [u32::MAX; 3];
    expect_images_err(&header([0, 0, 8, 3], &huge, 0), "overflow", "overflow a 64-bit size");
    expect_images_err(&gz(&header([0, 0, 8, 3], &huge, 0)), "overflow.gz", "overflow a 64-bit size");
    // 2^31 bytes fits a u64 but passes the 1 GiB cap: refused before any allocation.
    expect_images_err(&header([0, 0, 8, 3], &[1 << 15, 256, 256], 0), "over-cap", "limit");
    expect_images_err(&header([0, 0, 8, 3], &[100, 28, 28], 10 * 784), "short", "truncated");
    expect_images_err(&gz(&header([0, 0, 8, 3], &[100, 28, 28], 10 * 784)), "short.gz", "lying header");
}

#[test]
fn gzip_with_forged_trailer_cannot_overrun_the_header() {
    // The header claims 100 images, only 10 follow, and ISIZE is forged to agree with the header: the
    // mismatch must then surface while decompressing (CRC/size check or short data), not as a panic or
    // an oversized read.
    let mut bytes = gz(&header([0, 0, 8, 3], &[100, 28, 28], 10 * 784));
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&(16u32 + 100 * 784).to_le_bytes());
    expect_images_err(&bytes, "forged.gz", "gzip");
}

#[test]
fn bad_label_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels");
    std::fs::write(&p, encode_idx(&[2, 2, 2], &[0; 8]).unwrap()).unwrap();
    let err = read_labels(&p).unwrap_err().to_string();
    assert!(err.contains("labels") && err.contains("rank byte at offset 3 is 3, expected 1"), "{err}");
}

/// A directory holding a tiny dataset in the given spelling; returns its paths in lookup order.
fn tiny_dataset(dir: &Path, n_train: usize, n_train_labels: usize, dotted: bool) -> Vec<PathBuf> {
    let name = |s: &str| if dotted { s.replace("-idx", ".idx") } else { format!("{s}.gz") };
    let specs = [
        ("train-images-idx3-ubyte", vec![n_train, 4, 4]),
        ("train-labels-idx1-ubyte", vec![n_train_labels]),
        ("t10k-images-idx3-ubyte", vec![2, 4, 4]),
        ("t10k-labels-idx1-ubyte", vec![2]),
    ];
    specs
        .iter()
        .map(|(stem, dims)| {
            let p = dir.join(name(stem));
            let len: usize = dims.iter().product();
            write_idx(&p, dims, &(0..len).map(|i| (i % 10) as u8).collect::<Vec<_>>()).unwrap();
            p
        })
        .collect()
}

#[test]
fn data_dir_is_used_in_both_spellings() {
    for dotted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        tiny_dataset(dir.path(), 3, 3, dotted);
        let d = Dataset::load(Some(dir.path()), &LoadOptions::default()).unwrap();
        assert_eq!(d.source, dir.path().display().to_string());
        assert_eq!((d.train.n, d.test.n, d.train.h, d.train.w), (3, 2, 4, 4));
        assert_eq!(d.train.labels, vec![0, 1, 2]);
    }
}

#[test]
fn label_count_must_match_image_count() {
    let dir = tempfile::tempdir().unwrap();
    let paths = tiny_dataset(dir.path(), 3, 4, false);
    let err = format!("{:#}", Dataset::load(Some(dir.path()), &LoadOptions::default()).unwrap_err());
    assert!(err.contains(&paths[1].display().to_string()) && err.contains("4 labels"), "{err}");
    assert!(err.contains(&paths[0].display().to_string()) && err.contains("3 images"), "{err}");
}

#[test]
fn bad_data_dir_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = format!("{:#}", Dataset::load(Some(&missing), &LoadOptions::default()).unwrap_err());
    assert!(err.contains("--data") && err.contains("not a directory"), "{err}");

    let paths = tiny_dataset(dir.path(), 3, 3, false);
    std::fs::remove_file(&paths[3]).unwrap();
    let err = format!("{:#}", Dataset::load(Some(dir.path()), &LoadOptions::default()).unwrap_err());
    assert!(err.contains("t10k-labels-idx1-ubyte"), "{err}");

    std::fs::write(&paths[3], b"garbage!").unwrap();
    let err = format!("{:#}", Dataset::load(Some(dir.path()), &LoadOptions::default()).unwrap_err());
    assert!(err.contains(&paths[3].display().to_string()) && err.contains("magic"), "{err}");
}
