//! Checkpoint save/load: exact round trip, atomic writes, and clear errors for bad files and lookups.

use std::collections::HashMap;
use std::path::Path;

use gputrain::train::checkpoint::{load, save, TensorData};

fn sample() -> (Vec<(String, TensorData)>, HashMap<String, String>) {
    let conv: Vec<f32> = (0..2 * 3 * 4 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    // Special values must survive bit for bit.
    let odd = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MIN_POSITIVE / 2.0, f32::MAX];
    let tensors = vec![
        ("encoder.0.weight".to_string(), TensorData::F32 { shape: vec![2, 3, 4, 4], data: conv }),
        ("encoder.0.bias".to_string(), TensorData::F32 { shape: vec![6], data: odd }),
        ("encoder.1.num_batches_tracked".to_string(), TensorData::I64 { shape: vec![], data: vec![1 << 40] }),
        ("counts".to_string(), TensorData::I64 { shape: vec![3], data: vec![-1, 0, i64::MAX] }),
    ];
    let meta = HashMap::from([
        ("model".to_string(), "vae".to_string()),
        ("step".to_string(), "1234".to_string()),
        ("note".to_string(), "ünïcode \"quoted\"".to_string()),
    ]);
    (tensors, meta)
}

fn f32_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn saved(dir: &Path) -> std::path::PathBuf {
    let (t, m) = sample();
    let p = dir.join("ckpt.safetensors");
    save(&p, &t, &m).unwrap();
    p
}

#[test]
fn round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = saved(dir.path());
    let (tensors, meta) = sample();
    let ck = load(&p).unwrap();
    assert_eq!(ck.metadata(), &meta);
    assert_eq!(ck.names(), vec!["counts", "encoder.0.bias", "encoder.0.weight", "encoder.1.num_batches_tracked"]);
    for (name, t) in &tensors {
        match t {
            TensorData::F32 { shape, data } => assert_eq!(f32_bits(ck.get_f32(name, shape).unwrap()), f32_bits(data)),
            TensorData::I64 { shape, data } => assert_eq!(ck.get_i64(name, shape).unwrap(), &data[..]),
        }
    }
    // The file is standard safetensors: 8-byte little-endian header length, then a JSON header.
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.contains("\"encoder.1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"), "{header}");
    assert!(header.contains("\"__metadata__\""), "{header}");
}

#[test]
fn save_is_atomic_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let p = saved(dir.path());
    let (mut t, m) = sample();
    t.truncate(1);
    save(&p, &t, &m).unwrap();
    assert_eq!(load(&p).unwrap().names(), vec!["encoder.0.weight"]);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec!["ckpt.safetensors"], "a .tmp was left behind");
}

#[test]
fn bad_tensors_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.safetensors");
    let m = HashMap::new();
    let wrong_len = vec![("w".to_string(), TensorData::F32 { shape: vec![2, 2], data: vec![0.0; 3] })];
    let err = save(&p, &wrong_len, &m).unwrap_err().to_string();
    assert!(err.contains("tensor w") && err.contains("3 values"), "{err}");
    let (mut dup, _) = sample();
    dup.push(dup[0].clone());
    let err = save(&p, &dup, &m).unwrap_err().to_string();
    assert!(err.contains("encoder.0.weight appears twice"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing may be written");
    let err = format!("{:#}", save(&dir.path().join("no/such/dir/c"), &sample().0, &m).unwrap_err());
    assert!(err.contains("no/such/dir/c.tmp"), "{err}");
}

fn load_err(p: &Path) -> String {
    let err = format!("{:#}", load(p).unwrap_err());
    assert!(err.contains(&p.display().to_string()), "error does not name the file: {err}");
    err
}

#[test]
fn truncated_garbage_and_empty_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = saved(dir.path());
    let bytes = std::fs::read(&p).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 40, 7, 0] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = load_err(&p);
        assert!(err.contains("not a valid safetensors file"), "cut at {cut}: {err}");
    }
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&p, garbage).unwrap();
    load_err(&p);
    // A plausible header length followed by non-JSON.
    let mut fake = 16u64.to_le_bytes().to_vec();
    fake.extend_from_slice(b"{not json at all");
    std::fs::write(&p, fake).unwrap();
    load_err(&p);
    let err = load_err(&dir.path().join("missing.safetensors"));
    assert!(err.contains("reading checkpoint"), "{err}");
}

#[test]
fn lookups_check_name_shape_and_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let ck = load(&saved(dir.path())).unwrap();
    let err = ck.get_f32("encoder.0.weight", &[2, 3, 4, 5]).unwrap_err().to_string();
    assert!(err.contains("encoder.0.weight has shape [2, 3, 4, 4], expected [2, 3, 4, 5]"), "{err}");
    let err = ck.get_f32("decoder.0.weight", &[1]).unwrap_err().to_string();
    assert!(err.contains("no tensor decoder.0.weight") && err.contains("ckpt.safetensors"), "{err}");
    let err = ck.get_f32("encoder.1.num_batches_tracked", &[]).unwrap_err().to_string();
    assert!(err.contains("is I64, expected F32"), "{err}");
    let err = ck.get_i64("encoder.0.bias", &[6]).unwrap_err().to_string();
    assert!(err.contains("is F32, expected I64"), "{err}");
}
