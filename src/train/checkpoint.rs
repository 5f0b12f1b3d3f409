//! Checkpoints as safetensors files: PyTorch state_dict names (docs/architecture.md, "Numerics"), f32 tensors
//! plus int64 `num_batches_tracked`, and a string→string metadata map (model kind, step, ...).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};

use super::write_atomic;

/// One tensor's contents; `shape` is row-major and `[]` is a scalar (as PyTorch saves
/// `num_batches_tracked`).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    I64 { shape: Vec<usize>, data: Vec<i64> },
}

impl TensorData {
    pub fn shape(&self) -> &[usize] {
        match self {
            TensorData::F32 { shape, .. } | TensorData::I64 { shape, .. } => shape,
        }
    }

    fn dtype_name(&self) -> &'static str {
        match self {
            TensorData::F32 { .. } => "F32",
            TensorData::I64 { .. } => "I64",
        }
    }

    fn len(&self) -> usize {
        match self {
            TensorData::F32 { data, .. } => data.len(),
            TensorData::I64 { data, .. } => data.len(),
        }
    }
}

/// Little-endian bytes of one tensor, as safetensors stores them.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Saves `tensors` and `metadata` to `path` atomically (`<path>.tmp`, fsync, rename).
pub fn save(path: &Path, tensors: &[(String, TensorData)], metadata: &HashMap<String, String>) -> Result<()> {
    let mut raws = Vec::with_capacity(tensors.len());
    let mut seen = std::collections::HashSet::new();
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            bail!("saving {}: tensor {name} appears twice", path.display());
        }
        let numel: usize = t.shape().iter().product();
        if numel != t.len() {
            bail!(
                "saving {}: tensor {name} has shape {:?} ({numel} elements) but {} values",
                path.display(),
                t.shape(),
                t.len()
            );
        }
        let (dtype, bytes) = match t {
            TensorData::F32 { data, .. } => (Dtype::F32, data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            TensorData::I64 { data, .. } => (Dtype::I64, data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        };
        raws.push((name.clone(), Raw { dtype, shape: t.shape().to_vec(), bytes }));
    }
    let views = raws.iter().map(|(n, r)| (n.as_str(), r));
    let bytes = safetensors::tensor::serialize(views, Some(metadata.clone()))
        .with_context(|| format!("encoding checkpoint {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// A loaded checkpoint: every tensor decoded, looked up by name with a shape check.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    tensors: HashMap<String, TensorData>,
    metadata: HashMap<String, String>,
}

/// Loads a checkpoint written by [`save`] (or by `safetensors.torch.save_file` with F32/I64 tensors).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    parse(&bytes, path)
}

/// A checkpoint from bytes in memory (an embedded asset); `path` names it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).with_context(|| {
        format!(
            "{}: not a valid safetensors file ({} bytes; truncated or not a checkpoint)",
            path.display(),
            bytes.len()
        )
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).with_context(|| format!("{}: bad header", path.display()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.iter() {
        let shape = view.shape().to_vec();
        let t = match view.dtype() {
            Dtype::F32 => TensorData::F32 {
                shape,
                data: view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            },
            Dtype::I64 => TensorData::I64 {
                shape,
                data: view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
            },
            other => bail!("{}: tensor {name} has dtype {other:?}; only F32 and I64 are supported", path.display()),
        };
        tensors.insert(name.to_string(), t);
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok(Checkpoint { path: path.to_path_buf(), tensors, metadata })
}

impl Checkpoint {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(|s| s.as_str()).collect();
        v.sort_unstable();
        v
    }

    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }

    /// The f32 tensor `name`, which must have exactly `shape`.
    pub fn get_f32(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        match self.lookup(name, shape)? {
            TensorData::F32 { data, .. } => Ok(data),
            t => bail!("{}: tensor {name} is {}, expected F32", self.path.display(), t.dtype_name()),
        }
    }

    /// The i64 tensor `name`, which must have exactly `shape` (`&[]` for a scalar).
    pub fn get_i64(&self, name: &str, shape: &[usize]) -> Result<&[i64]> {
        match self.lookup(name, shape)? {
            TensorData::I64 { data, .. } => Ok(data),
            t => bail!("{}: tensor {name} is {}, expected I64", self.path.display(), t.dtype_name()),
        }
    }

    fn lookup(&self, name: &str, shape: &[usize]) -> Result<&TensorData> {
        let t = self.tensors.get(name).with_context(|| {
            format!("{}: no tensor {name} (the checkpoint has {} tensors)", self.path.display(), self.tensors.len())
        })?;
        if t.shape() != shape {
            bail!("{}: tensor {name} has shape {:?}, expected {shape:?}", self.path.display(), t.shape());
        }
        Ok(t)
    }
}
