//! A directory of ordinary image files (PNG, JPEG, BMP, GIF, WebP) as a dataset.
//!
//! Every file below the folder with an image extension is taken, in sorted relative-path order; class
//! sub-folders are walked like any other and give no labels (all 0); hidden files and folders (a name
//! starting with `.`) and other extensions are passed over. Each image is decoded by its content (a PNG
//! named `.jpg` is read as PNG), any bit depth brought to 8 bits, palettes expanded, alpha composited
//! over black (transparent pixels become background 0, whatever colour they hide), centre-cropped to a
//! square and resized by [`super::resize`]'s filter. Channels: 1 by `image`'s luma conversion, 3 as RGB;
//! unless asked, a folder is 1-channel exactly when every image's colour type is greyscale. A file that
//! cannot be read or decoded is skipped and reported in [`FolderData::skipped`].
//!
//! The decoded tensor is cached ([`super::folder_cache`]); the split into train and test is made after,
//! from the seed, so changing the seed or the test fraction does not decode again.

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use image::{DynamicImage, GenericImageView, ImageReader};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use walkdir::WalkDir;

use super::folder_cache::{self, Entry, FileStamp, Skipped};
use super::options::LoadOptions;
use super::resize::square_plane;
use super::split::Split;

/// Extensions taken as images (compared without case).
pub const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];
/// How many skipped names [`FolderData::warnings`] lists.
const NAMES_SHOWN: usize = 5;

/// A loaded folder, split.
pub struct FolderData {
    pub train: Split,
    pub test: Split,
    /// Images decoded (train + test).
    pub n: usize,
    /// The decoded files, relative to the folder, in sorted order: image `i` of the folder.
    pub names: Vec<String>,
    /// Which of `names` form the test split, ascending; the others form the training split, in order.
    pub test_index: Vec<usize>,
    /// Files that could not be read or decoded: (path relative to the folder, reason).
    pub skipped: Vec<Skipped>,
    /// Whether the tensor came from the cache rather than from decoding.
    pub cached: bool,
    /// Seconds spent listing and decoding (or reading the cache).
    pub seconds: f64,
    /// Why the cache could not be written, if it could not.
    pub cache_warning: Option<String>,
}

impl FolderData {
    /// "N images → S×S×C, K skipped, cached", the part of `Dataset::source` after the folder's name.
    pub fn describe(&self) -> String {
        let (s, c) = (self.train.h, self.train.channels);
        let mut d = format!("image folder: {} images → {s}×{s}×{c}", self.n);
        if !self.skipped.is_empty() {
            d += &format!(", {} skipped", self.skipped.len());
        }
        if self.cached {
            d += ", cached";
        }
        d
    }

    /// What the user should be told: the skipped count with the first few names, and a cache failure.
    pub fn warnings(&self, folder: &Path) -> Vec<String> {
        let mut w = Vec::new();
        if !self.skipped.is_empty() {
            let shown: Vec<String> =
                self.skipped.iter().take(NAMES_SHOWN).map(|(name, why)| format!("{name} ({why})")).collect();
            let more = self.skipped.len().saturating_sub(NAMES_SHOWN);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            w.push(format!(
                "{}: {} file(s) skipped, not readable as images: {}{more}",
                folder.display(),
                self.skipped.len(),
                shown.join(", ")
            ));
        }
        w.extend(self.cache_warning.clone());
        w
    }
}

/// Whether `p`'s extension is one of [`EXTENSIONS`].
pub fn is_image_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Loads `dir` as an image folder (see the module comment), using and refreshing the cache in
/// [`folder_cache::dir`].
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<FolderData> {
    load_with_cache(dir, opts, folder_cache::dir().as_deref())
}

/// [`load`] with the cache in `cache_dir`, or none.
pub fn load_with_cache(dir: &Path, opts: &LoadOptions, cache_dir: Option<&Path>) -> Result<FolderData> {
    opts.validate()?;
    let (side, want) = (opts.side(), opts.channels);
    let root = dir.canonicalize().with_context(|| format!("{}: cannot open", dir.display()))?;
    let started = std::time::Instant::now();
    let (files, mut skipped) = list(&root)?;
    if files.is_empty() {
        bail!(
            "{}: no image files ({}) in the folder or its sub-folders, and none of the Fashion-MNIST IDX or \
             CIFAR-10 binary files",
            dir.display(),
            EXTENSIONS.join(", ")
        );
    }
    let key = folder_cache::key(&files, side, want);
    let cache_file = cache_dir.map(|d| folder_cache::file_for(d, &root, side, want));
    let hit = cache_file.as_deref().and_then(|f| folder_cache::read(f, &key));
    let cached = hit.is_some();
    let mut cache_warning = None;
    let entry = match hit {
        Some(e) => e,
        None => {
            let e = decode_all(&root, &files, side, want, dir)?;
            match &cache_file {
                Some(f) => {
                    if let Err(err) = folder_cache::write(f, &key, &e) {
                        cache_warning = Some(format!("image cache not written (decoding again next time): {err:#}"));
                    }
                }
                None => {
                    cache_warning =
                        Some(format!("no cache directory (set {}); decoding again next time", folder_cache::ENV))
                }
            }
            e
        }
    };
    // The cache holds the decoding failures; files the walk could not stat are not in the key, so they
    // are found afresh each time.
    skipped.extend(entry.skipped.iter().cloned());
    skipped.sort();
    let (train, test, test_index) = split(&entry, opts, dir)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(FolderData { train, test, n: entry.n, names: entry.names, test_index, skipped, cached, seconds, cache_warning })
}

/// The image files below `root`, sorted by relative path, with their size and mtime; and the entries
/// that could not be listed or stat'ed, as skipped.
fn list(root: &Path) -> Result<(Vec<FileStamp>, Vec<Skipped>)> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let walk = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.depth() == 0 => return Err(e).with_context(|| format!("{}: cannot list", root.display())),
            Err(e) => {
                let name = e.path().map(|p| rel_name(root, p)).unwrap_or_default();
                skipped.push((name, e.to_string()));
                continue;
            }
        };
        if !entry.file_type().is_file() || !is_image_name(entry.path()) {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_path_buf();
        match entry.metadata() {
            Ok(m) => {
                let mtime_ns =
                    m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
                files.push(FileStamp { rel, size: m.len(), mtime_ns });
            }
            Err(e) => skipped.push((rel.display().to_string(), e.to_string())),
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok((files, skipped))
}

fn rel_name(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Decodes every file in parallel (a progress bar on stderr when it is a terminal).
fn decode_all(root: &Path, files: &[FileStamp], side: usize, want: Option<usize>, shown: &Path) -> Result<Entry> {
    let bar = ProgressBar::new(files.len() as u64).with_message(format!("decoding {}", shown.display()));
    if let Ok(style) = ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} {eta}") {
        bar.set_style(style);
    }
    let decoded: Vec<Result<(usize, Vec<u8>), String>> = files
        .par_iter()
        .map(|f| {
            let r = decode_one(&root.join(&f.rel), side, want);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let (mut images, mut names, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (f, r) in files.iter().zip(decoded) {
        match r {
            Ok(img) => {
                images.push(img);
                names.push(f.rel.display().to_string());
            }
            Err(why) => skipped.push((f.rel.display().to_string(), why)),
        }
    }
    if images.is_empty() {
        bail!(
            "{}: none of its {} image file(s) could be decoded (first: {} — {})",
            shown.display(),
            files.len(),
            skipped[0].0,
            skipped[0].1
        );
    }
    // Unasked, one colour image makes the folder RGB; greyscale planes are then repeated, which is what
    // converting them to RGB before resizing would have given.
    let channels = want.unwrap_or(if images.iter().any(|(c, _)| *c == 3) { 3 } else { 1 });
    let plane = side * side;
    let mut pixels = Vec::with_capacity(images.len() * channels * plane);
    for (c, px) in &images {
        if *c == channels {
            pixels.extend_from_slice(px);
        } else {
            for _ in 0..channels {
                pixels.extend_from_slice(px);
            }
        }
    }
    Ok(Entry { n: images.len(), side, channels, names, skipped, pixels })
}

/// One file as (channels, CHW bytes): `want` channels if given, else 1 for a greyscale file and 3 for
/// a colour one.
fn decode_one(path: &Path, side: usize, want: Option<usize>) -> Result<(usize, Vec<u8>), String> {
    let read = || -> Result<DynamicImage, String> {
        let reader = ImageReader::open(path).map_err(|e| e.to_string())?;
        reader.with_guessed_format().map_err(|e| e.to_string())?.decode().map_err(|e| e.to_string())
    };
    // A decoder bug on a hostile file must cost that file, not the run.
    let img = std::panic::catch_unwind(read).map_err(|_| "the decoder panicked".to_string())??;
    let (w, h) = img.dimensions();
    let s = w.min(h);
    if s == 0 {
        return Err(format!("{w}×{h} image has no pixels"));
    }
    let img = img.crop_imm((w - s) / 2, (h - s) / 2, s, s);
    let grey = !img.color().has_color();
    let channels = want.unwrap_or(if grey { 1 } else { 3 });
    let s = s as usize;
    let mut out = Vec::with_capacity(channels * side * side);
    if channels == 1 {
        let luma = if grey { luma_over_black(&img) } else { DynamicImage::ImageRgb8(rgb_over_black(&img)).to_luma8() };
        square_plane(luma.as_raw(), s, s, side, &mut out);
    } else {
        let rgb = rgb_over_black(&img);
        let mut plane = vec![0u8; s * s];
        for c in 0..3 {
            for (p, px) in plane.iter_mut().zip(rgb.pixels()) {
                *p = px.0[c];
            }
            square_plane(&plane, s, s, side, &mut out);
        }
    }
    Ok((channels, out))
}

/// `v` over black at opacity `a`, rounded.
fn over_black(v: u8, a: u8) -> u8 {
    ((v as u32 * a as u32 + 127) / 255) as u8
}

fn rgb_over_black(img: &DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        image::Rgb([over_black(r, a), over_black(g, a), over_black(b, a)])
    })
}

fn luma_over_black(img: &DynamicImage) -> image::GrayImage {
    if !img.color().has_alpha() {
        return img.to_luma8();
    }
    let la = img.to_luma_alpha8();
    image::GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let [l, a] = la.get_pixel(x, y).0;
        image::Luma([over_black(l, a)])
    })
}

/// A seeded shuffle holds out round(test_fraction · n) images (at least 1, and at least 1 left to
/// train); each split keeps the folder's order.
fn split(e: &Entry, opts: &LoadOptions, shown: &Path) -> Result<(Split, Split, Vec<usize>)> {
    if e.n < 2 {
        bail!("{}: only {} decodable image; at least 2 are needed to hold one out for testing", shown.display(), e.n);
    }
    let k = ((opts.test_fraction * e.n as f64).round() as usize).clamp(1, e.n - 1);
    let mut order: Vec<usize> = (0..e.n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(opts.seed));
    let (mut test, mut train) = (order[..k].to_vec(), order[k..].to_vec());
    test.sort_unstable();
    train.sort_unstable();
    let len = e.channels * e.side * e.side;
    let take = |idx: &[usize]| {
        let mut images = Vec::with_capacity(idx.len() * len);
        for &i in idx {
            images.extend_from_slice(&e.pixels[i * len..(i + 1) * len]);
        }
        Split { images, labels: vec![0; idx.len()], n: idx.len(), h: e.side, w: e.side, channels: e.channels }
    };
    Ok((take(&train), take(&test), test))
}
