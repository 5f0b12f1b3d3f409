//! Image output: PNG sample grids (torchvision `make_grid` style, 2-px gaps) and NumPy .npy arrays of
//! samples for other tools; every file written atomically. The plots are in plots.rs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::model::ImageBatch;
use super::{write_atomic, write_atomic_with};

const GAP: usize = 2;

/// Saves `images` (NCHW with `nchw = [n, channels, h, w]`, values in `range = (lo, hi)`, clamped) as one
/// PNG of `cols` images per row with 2-px black gaps between and around them; 1 channel gives a
/// grayscale PNG, 3 an RGB one.
pub fn save_grid(path: &Path, images: &[f32], nchw: [usize; 4], cols: usize, range: (f32, f32)) -> Result<()> {
    let (width, height, pixels, color) =
        grid(images, nchw, cols, range).with_context(|| format!("image grid {}", path.display()))?;
    write_png(path, width, height, &pixels, color)
}

/// The grid as (width, height, interleaved pixel bytes, colour type).
fn grid(
    images: &[f32],
    nchw: [usize; 4],
    cols: usize,
    range: (f32, f32),
) -> Result<(u32, u32, Vec<u8>, ExtendedColorType)> {
    let [n, c, h, w] = nchw;
    if n == 0 || h == 0 || w == 0 || cols == 0 {
        bail!("empty grid: {n} images of {h}×{w}, {cols} columns");
    }
    let color = match c {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        _ => bail!("{c} channels: only 1 (grayscale) or 3 (RGB) can be saved"),
    };
    if images.len() != n * c * h * w {
        bail!("{} values for {n}×{c}×{h}×{w} images", images.len());
    }
    let (lo, hi) = range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        bail!("bad value range [{lo}, {hi}]");
    }
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (gw, gh) = (cols * (w + GAP) + GAP, rows * (h + GAP) + GAP);
    if gw > u32::MAX as usize || gh > u32::MAX as usize {
        bail!("grid of {gw}×{gh} pixels is too large");
    }
    let mut px = vec![0u8; gw * gh * c];
    let scale = 255.0 / (hi - lo);
    for i in 0..n {
        let (x0, y0) = ((i % cols) * (w + GAP) + GAP, (i / cols) * (h + GAP) + GAP);
        for ch in 0..c {
            let plane = &images[(i * c + ch) * h * w..][..h * w];
            for y in 0..h {
                for x in 0..w {
                    // NaN maps to 0 through the saturating cast, which keeps a broken sample visible as black.
                    let v = ((plane[y * w + x].clamp(lo, hi) - lo) * scale).round() as u8;
                    px[((y0 + y) * gw + x0 + x) * c + ch] = v;
                }
            }
        }
    }
    Ok((gw as u32, gh as u32, px, color))
}

pub(super) fn write_png(path: &Path, width: u32, height: u32, pixels: &[u8], color: ExtendedColorType) -> Result<()> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(pixels, width, height, color)
        .with_context(|| format!("encoding PNG {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// The most images `sample` writes to one file.
pub const MAX_SAMPLES: usize = 50_000;

/// How `sample` writes its images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// One PNG grid, [`grid_cols`] images wide.
    Png,
    /// A float32 NCHW array in the model's value range, as [`save_npy`] writes it.
    Npy,
}

impl SampleFormat {
    /// The file `stem` with this format's extension (e.g. `samples.npy`).
    pub fn file(self, stem: &str) -> PathBuf {
        PathBuf::from(format!("{stem}.{self}"))
    }
}

impl FromStr for SampleFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "png" => Self::Png,
            "npy" => Self::Npy,
            other => bail!("unknown format '{other}': expected png or npy"),
        })
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Png => "png",
            Self::Npy => "npy",
        })
    }
}

/// Columns of a sample grid of `n` images: ⌈√n⌉, so the grid is as near square as whole rows allow.
pub fn grid_cols(n: usize) -> usize {
    let mut c = (n as f64).sqrt() as usize;
    while c * c < n {
        c += 1;
    }
    c.max(1)
}

/// The images of every `per_call`-vector slice of `z` (vectors of `latent` floats) made by `make` (a
/// model's decoder or generator, which takes a bounded batch), concatenated in order.
pub fn in_chunks(
    z: &[f32],
    latent: usize,
    per_call: usize,
    mut make: impl FnMut(&[f32]) -> Result<ImageBatch>,
) -> Result<ImageBatch> {
    if latent == 0 || per_call == 0 || z.is_empty() || !z.len().is_multiple_of(latent) {
        bail!("{} floats are not whole latent vectors of {latent}", z.len());
    }
    let n = z.len() / latent;
    let mut all: Option<ImageBatch> = None;
    for chunk in z.chunks(per_call * latent) {
        let b = make(chunk)?;
        if b.nchw[0] != chunk.len() / latent || b.data.len() != b.nchw.iter().product::<usize>() {
            bail!("{} latent vectors gave {:?} images of {} values", chunk.len() / latent, b.nchw, b.data.len());
        }
        match &mut all {
            None => {
                let mut data = Vec::with_capacity(n * (b.data.len() / b.nchw[0]));
                data.extend_from_slice(&b.data);
                all = Some(ImageBatch { data, ..b });
            }
            Some(a) if a.nchw[1..] != b.nchw[1..] || a.range != b.range => {
                bail!("chunks of {:?} images in {:?} and {:?} in {:?}", a.nchw, a.range, b.nchw, b.range)
            }
            Some(a) => {
                a.data.extend_from_slice(&b.data);
                a.nchw[0] += b.nchw[0];
            }
        }
    }
    all.context("no images")
}

/// Saves `batch` at `path` in `format`: a PNG grid [`grid_cols`] wide, or an .npy array.
pub fn save_samples(path: &Path, format: SampleFormat, batch: &ImageBatch) -> Result<()> {
    match format {
        SampleFormat::Png => save_grid(path, &batch.data, batch.nchw, grid_cols(batch.nchw[0]), batch.range),
        SampleFormat::Npy => save_npy(path, &batch.data, batch.nchw),
    }
}

/// Saves `images` (NCHW with `nchw = [n, channels, h, w]`) as a NumPy .npy file, format version 1.0:
/// a little-endian float32 (`'<f4'`) C-order array of shape (n, channels, h, w), values as given.
pub fn save_npy(path: &Path, images: &[f32], nchw: [usize; 4]) -> Result<()> {
    let count = nchw.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(images.len()) {
        let [n, c, h, w] = nchw;
        bail!("{}: {} values for {n}×{c}×{h}×{w} images", path.display(), images.len());
    }
    let header = npy_header(&nchw);
    write_atomic_with(path, |w| {
        w.write_all(&header)?;
        let mut bytes = Vec::with_capacity(1 << 16);
        for chunk in images.chunks(1 << 14) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            w.write_all(&bytes)?;
        }
        Ok(())
    })
}

/// The magic, version, header length and header dict of an .npy 1.0 file of little-endian float32 in C
/// order. The dict is padded with spaces and ended by a newline so that the data starts on a 64-byte
/// boundary, as the format asks (and numpy.load memory-maps).
fn npy_header(&[n, c, h, w]: &[usize; 4]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {c}, {h}, {w}), }}");
    const PREFIX: usize = 6 + 2 + 2;
    let pad = (64 - (PREFIX + dict.len() + 1) % 64) % 64;
    dict.extend(std::iter::repeat_n(' ', pad));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    // Four usize dims make a dict of at most 192 bytes, inside version 1.0's u16 length.
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}
