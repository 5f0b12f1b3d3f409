//! Bounded fuzzing of the readers that take files from users: the IDX parser (raw and gzip), the
//! CIFAR-10 record parser and the checkpoint reader. Each mutated input must give Ok or a clean error,
//! never a panic; an Ok result must be self-consistent, and an error must name the input and say what
//! was wrong in the reader's own words (one of the faults listed for it below).

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::catch_unwind;
use std::path::Path;

use gputrain::data::{cifar, idx};
use gputrain::train::checkpoint::{self, TensorData};
use rand::{Rng, SeedableRng};

/// Mutations per reader: enough to hit every header field many times, a few seconds in all.
const CASES: usize = 3000;

fn mutate(rng: &mut rand::rngs::StdRng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.random_range(0..5) {
        0 => v.truncate(rng.random_range(0..=v.len())),
        1 => {
            for _ in 0..rng.random_range(1..4) {
                // Mostly the header, where lengths and ranks live.
                let i = if rng.random_bool(0.7) {
                    rng.random_range(0..v.len().min(64))
                } else {
                    rng.random_range(0..v.len())
                };
                v[i] = rng.random();
            }
        }
        2 => {
            let i = rng.random_range(0..v.len());
            v.insert(i, rng.random());
        }
        3 => {
            let i = rng.random_range(0..v.len().min(16));
            let bytes = [0xff, 0xff, 0xff, 0x7f];
            for (k, b) in bytes.iter().enumerate() {
                if i + k < v.len() {
                    v[i + k] = *b;
                }
            }
        }
        _ => v.extend((0..rng.random_range(1..100)).map(|_| rng.random::<u8>())),
    }
    v
}

fn idx_bytes() -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3];
    v.extend((0..60).map(|i| i as u8));
    v
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Checks that `msg` reads "<name>: <detail>" and that the detail names one of `faults`; returns that
/// fault, so that a test can count which of its reader's checks the mutations reached.
fn fault(msg: &str, name: &str, faults: &[&'static str]) -> &'static str {
    let detail = msg
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or_else(|| panic!("the error does not start with the input's name {name:?}: {msg}"));
    faults
        .iter()
        .find(|f| detail.contains(**f))
        .unwrap_or_else(|| panic!("the error names none of the known faults {faults:?}: {msg}"))
}

/// What the IDX parser says is wrong with a file (src/data/idx.rs).
const IDX_FAULTS: [&str; 13] = [
    "too short for the 4-byte IDX magic",
    "bad IDX magic",
    "IDX type byte",
    "IDX rank byte",
    "inside the header",
    "is 0",
    "overflow a 64-bit size",
    "-byte limit",
    "(truncated)",
    "(trailing bytes after the data)",
    "gzip stream is only",
    "gzip: corrupt or truncated stream",
    "truncated file or lying header",
];

fn labels_bytes() -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1, 0, 0, 0, 7];
    v.extend([3, 1, 4, 1, 5, 9, 2]);
    v
}

#[test]
fn idx_parser_never_panics_and_names_every_fault() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut seen = BTreeMap::new();
    let mut oks = 0;
    for base in [idx_bytes(), gz(&idx_bytes()), labels_bytes(), gz(&labels_bytes())] {
        for _ in 0..CASES {
            let input = mutate(&mut rng, &base);
            let images = catch_unwind(|| idx::parse_images(&input, "fuzz").map(|i| (i.n, i.h, i.w, i.pixels.len())))
                .unwrap_or_else(|_| panic!("images panic on {input:?}"));
            let labels = catch_unwind(|| idx::parse_labels(&input, "fuzz"))
                .unwrap_or_else(|_| panic!("labels panic on {input:?}"));
            match images {
                Ok((n, h, w, len)) => {
                    assert_eq!(n * h * w, len, "{input:?}");
                    oks += 1;
                }
                Err(e) => {
                    assert_eq!(e.path, "fuzz");
                    *seen.entry(fault(&e.to_string(), "fuzz", &IDX_FAULTS)).or_insert(0) += 1;
                }
            }
            match labels {
                // An uncompressed rank-1 file is its dimension followed by that many bytes.
                Ok(l) => {
                    if input[..2] != [0x1f, 0x8b] {
                        assert_eq!(u32::from_be_bytes(input[4..8].try_into().unwrap()) as usize, l.len(), "{input:?}");
                    }
                    oks += 1;
                }
                Err(e) => {
                    assert_eq!(e.path, "fuzz");
                    *seen.entry(fault(&e.to_string(), "fuzz", &IDX_FAULTS)).or_insert(0) += 1;
                }
            }
        }
    }
    println!("{oks} inputs parsed; faults: {seen:?}");
    assert!(oks > 0, "no mutated input parsed: the mutations never left a valid file");
    assert_eq!(seen.len(), IDX_FAULTS.len(), "not every check was reached: {seen:?}");
}

/// What the CIFAR-10 parser says is wrong with a batch (src/data/cifar.rs).
const CIFAR_FAULTS: [&str; 3] = ["empty file", "is not a whole number of 3073-byte records", "has label"];

#[test]
fn cifar_parser_never_panics_and_names_every_fault() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut base = Vec::new();
    for i in 0..2u8 {
        base.push(i);
        base.extend((0..3072).map(|p| (p % 251) as u8));
    }
    let mut seen = BTreeMap::new();
    let mut oks = 0;
    // The empty file first: truncation alone almost never reaches it.
    let inputs = std::iter::once(Vec::new()).chain((0..CASES).map(|_| mutate(&mut rng, &base)));
    for input in inputs {
        let r = catch_unwind(|| {
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            cifar::parse_records(&input, "fuzz", &mut images, &mut labels).map(|_| (images, labels))
        });
        match r.unwrap_or_else(|_| panic!("panic on a {}-byte input", input.len())) {
            Ok((images, labels)) => {
                assert_eq!(images.len(), labels.len() * 3072);
                assert_eq!(input.len(), labels.len() * 3073);
                assert!(labels.iter().all(|&l| l < 10), "{labels:?}");
                oks += 1;
            }
            Err(e) => *seen.entry(fault(&format!("{e:#}"), "fuzz", &CIFAR_FAULTS)).or_insert(0) += 1,
        }
    }
    println!("{oks} inputs parsed; faults: {seen:?}");
    assert!(oks > 0, "no mutated input parsed");
    assert_eq!(seen.len(), CIFAR_FAULTS.len(), "not every check was reached: {seen:?}");
}

/// What the checkpoint reader says is wrong with a file or a lookup in it (src/train/checkpoint.rs).
/// ("bad header", from reading the metadata of a file that has already parsed, is not reached.)
const CHECKPOINT_FAULTS: [&str; 6] = [
    "not a valid safetensors file",
    "bad header",
    "only F32 and I64 are supported",
    "no tensor w",
    "tensor w has shape",
    "expected F32",
];

/// The checkpoint the reader is asked for `w` (f32, 2×3) in, and four that are well formed but wrong
/// for that lookup: byte mutations of the first alone nearly always break its JSON header, so these
/// bring the reader's other checks within reach.
fn checkpoint_bases(dir: &Path) -> Vec<Vec<u8>> {
    let f32s = |shape: Vec<usize>| TensorData::F32 { shape, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
    let step = || ("optim.step".to_string(), TensorData::I64 { shape: vec![], data: vec![7] });
    let variants = [
        vec![("w".to_string(), f32s(vec![2, 3])), step()],
        vec![("v".to_string(), f32s(vec![2, 3])), step()],
        vec![("w".to_string(), f32s(vec![3, 2])), step()],
        vec![("w".to_string(), TensorData::I64 { shape: vec![2, 3], data: vec![1, 2, 3, 4, 5, 6] }), step()],
    ];
    let mut bases: Vec<Vec<u8>> = variants
        .iter()
        .enumerate()
        .map(|(i, tensors)| {
            let path = dir.join(format!("{i}.safetensors"));
            checkpoint::save(&path, tensors, &Default::default()).unwrap();
            std::fs::read(&path).unwrap()
        })
        .collect();
    // w as I32, a dtype of the same size that safetensors accepts and this reader does not: the
    // header's one "F32" (optim.step is I64) rewritten in place.
    let mut i32s = bases[0].clone();
    let at = i32s.windows(5).position(|b| b == b"\"F32\"").expect("w's dtype in the header");
    i32s[at + 1] = b'I';
    bases.push(i32s);
    bases
}

#[test]
fn checkpoint_reader_never_panics_and_names_every_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let bases = checkpoint_bases(tmp.path());
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut seen = BTreeMap::new();
    let mut oks = 0;
    for base in &bases {
        // Each base as it is, then mutated.
        let inputs = std::iter::once(base.clone()).chain((0..CASES / bases.len()).map(|_| mutate(&mut rng, base)));
        for input in inputs {
            let r = catch_unwind(|| {
                checkpoint::parse(&input, Path::new("fuzz.safetensors"))
                    .map(|c| c.get_f32("w", &[2, 3]).map(|w| w.to_vec()))
            });
            match r.unwrap_or_else(|_| panic!("panic on {input:?}")) {
                Ok(Ok(w)) => {
                    assert_eq!(w.len(), 6);
                    oks += 1;
                }
                Ok(Err(e)) | Err(e) => {
                    *seen.entry(fault(&format!("{e:#}"), "fuzz.safetensors", &CHECKPOINT_FAULTS)).or_insert(0) += 1
                }
            }
        }
    }
    println!("{oks} inputs parsed; faults: {seen:?}");
    assert!(oks > 0, "no mutated input parsed");
    assert_eq!(seen.len(), CHECKPOINT_FAULTS.len() - 1, "not every reachable check was reached: {seen:?}");
}
