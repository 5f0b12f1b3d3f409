//! Bounded fuzzing of the readers that take files from users: the IDX parser (raw and gzip), the
//! CIFAR-10 record parser and the checkpoint reader. Each mutated input must give Ok or a clean error,
//! never a panic, and an Ok result must be self-consistent.

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

#[test]
fn idx_parser_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for base in [idx_bytes(), gz(&idx_bytes())] {
        for _ in 0..CASES {
            let input = mutate(&mut rng, &base);
            let r = catch_unwind(|| idx::parse_images(&input, "fuzz").map(|i| (i.n, i.h, i.w, i.pixels.len())));
            match r.unwrap_or_else(|_| panic!("panic on {input:?}")) {
                Ok((n, h, w, len)) => assert_eq!(n * h * w, len),
                Err(e) => assert!(e.to_string().starts_with("fuzz:"), "{e}"),
            }
            let r = catch_unwind(|| idx::parse_labels(&input, "fuzz").map(|l| l.len()));
            assert!(r.is_ok(), "labels panic on {input:?}");
        }
    }
}

#[test]
fn cifar_parser_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut base = Vec::new();
    for i in 0..2u8 {
        base.push(i);
        base.extend((0..3072).map(|p| (p % 251) as u8));
    }
    for _ in 0..CASES {
        let input = mutate(&mut rng, &base);
        let r = catch_unwind(|| {
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            cifar::parse_records(&input, "fuzz", &mut images, &mut labels).map(|_| (images.len(), labels.len()))
        });
        if let Ok((images, labels)) = r.unwrap_or_else(|_| panic!("panic on a {}-byte input", input.len())) {
            assert_eq!(images, labels * 3072);
        }
    }
}

#[test]
fn checkpoint_reader_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.safetensors");
    let tensors = vec![
        ("w".to_string(), TensorData::F32 { shape: vec![2, 3], data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }),
        ("optim.step".to_string(), TensorData::I64 { shape: vec![], data: vec![7] }),
    ];
    checkpoint::save(&path, &tensors, &Default::default()).unwrap();
    let base = std::fs::read(&path).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..CASES {
        let input = mutate(&mut rng, &base);
        let r = catch_unwind(|| {
            checkpoint::parse(&input, Path::new("fuzz.safetensors")).map(|c| c.get_f32("w", &[2, 3]).map(|w| w.len()))
        });
        match r.unwrap_or_else(|_| panic!("panic on {input:?}")) {
            Ok(Ok(n)) => assert_eq!(n, 6),
            Ok(Err(e)) | Err(e) => {
                assert!(format!("{e:#}").contains("fuzz.safetensors") || format!("{e:#}").contains("w"), "{e:#}")
            }
        }
    }
}
