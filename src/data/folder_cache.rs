//! The decoded tensor of an image folder, kept between runs so that a second load skips decoding.
//!
//! One file per (folder, image size, channel request), `images-<hash>.gz` in [`dir`]: a new decode of the
//! same folder overwrites it, so the cache holds no stale copies. Inside, gzip of: [`MAGIC`], the format
//! version, the content key (a SHA-256 of the sorted relative file list, each file's size and mtime,
//! the image size, the channel request and the version), a JSON header and the pixels. gzip's CRC and
//! length trailer catch a truncated or damaged file, and anything that does not match is a miss, never
//! an error: the folder is decoded again.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped whenever decoding or the layout changes, so older caches stop matching.
pub const VERSION: u32 = 1;
const MAGIC: &[u8; 16] = b"gputrain-folder\n";
/// The environment variable that overrides the cache directory.
pub const ENV: &str = "GPUTRAIN_CACHE_DIR";

/// A file that could not be read or decoded: (path relative to the folder, reason).
pub type Skipped = (String, String);

/// One file of the folder as the key sees it.
pub struct FileStamp {
    pub rel: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
}

/// A decoded folder: `n` images of `channels`×`side`×`side` bytes in sorted-path order, their names,
/// and the files that could not be decoded (relative name, reason).
#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub n: usize,
    pub side: usize,
    pub channels: usize,
    /// The decoded files, relative to the folder.
    pub names: Vec<String>,
    pub skipped: Vec<Skipped>,
    #[serde(skip)]
    pub pixels: Vec<u8>,
}

/// `$GPUTRAIN_CACHE_DIR` if set, else the platform's cache directory + `gputrain`.
pub fn dir() -> Option<PathBuf> {
    resolve_dir(std::env::var_os(ENV))
}

/// [`dir`] given the value of `$GPUTRAIN_CACHE_DIR`.
pub fn resolve_dir(env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    match env {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => dirs::cache_dir().map(|d| d.join("gputrain")),
    }
}

/// The cache file of `folder` (an absolute, canonical path) for one image size and channel request.
pub fn file_for(cache_dir: &Path, folder: &Path, side: usize, channels: Option<usize>) -> PathBuf {
    let mut h = Sha256::new();
    h.update(folder.as_os_str().as_encoded_bytes());
    h.update((side as u64).to_le_bytes());
    h.update((channels.unwrap_or(0) as u64).to_le_bytes());
    let hex: String = h.finalize()[..12].iter().map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("images-{hex}.gz"))
}

/// The content key: any added, removed, resized or touched file changes it.
pub fn key(files: &[FileStamp], side: usize, channels: Option<usize>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(VERSION.to_le_bytes());
    h.update((side as u64).to_le_bytes());
    h.update((channels.unwrap_or(0) as u64).to_le_bytes());
    h.update((files.len() as u64).to_le_bytes());
    for f in files {
        let name = f.rel.as_os_str().as_encoded_bytes();
        // Length-prefixed, so no two lists of names hash the same bytes.
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(f.size.to_le_bytes());
        h.update(f.mtime_ns.to_le_bytes());
    }
    h.finalize().into()
}

/// The entry in `path` if it exists, is whole and was made for `key`; `None` otherwise.
pub fn read(path: &Path, key: &[u8; 32]) -> Option<Entry> {
    read_checked(path, key).ok()
}

fn read_checked(path: &Path, key: &[u8; 32]) -> Result<Entry> {
    let mut r = GzDecoder::new(BufReader::new(File::open(path)?));
    let mut head = [0u8; 16 + 4 + 32 + 4];
    r.read_exact(&mut head)?;
    if &head[..16] != MAGIC || head[16..20] != VERSION.to_le_bytes() || head[20..52] != key[..] {
        bail!("not this folder's cache");
    }
    let json_len = u32::from_le_bytes(head[52..56].try_into()?) as u64;
    if json_len > 1 << 28 {
        bail!("header too long");
    }
    let mut json = Vec::new();
    (&mut r).take(json_len).read_to_end(&mut json)?;
    let mut e: Entry = serde_json::from_slice(&json)?;
    let len = e.n.checked_mul(e.channels).and_then(|x| x.checked_mul(e.side * e.side)).context("overflow")?;
    if e.n == 0 || e.names.len() != e.n || !(e.channels == 1 || e.channels == 3) {
        bail!("bad header");
    }
    // One byte more than expected shows trailing data; reading to the end makes gzip check its trailer.
    (&mut r).take(len as u64 + 1).read_to_end(&mut e.pixels)?;
    if e.pixels.len() != len || r.read(&mut [0u8; 1])? != 0 {
        bail!("wrong length");
    }
    Ok(e)
}

/// Writes `e` for `key` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file and an interrupted write leaves only a stray `.tmp`.
pub fn write(path: &Path, key: &[u8; 32], e: &Entry) -> Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension(format!("gz.{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let json = serde_json::to_vec(e)?;
        let mut w = GzEncoder::new(BufWriter::new(File::create(&tmp)?), Compression::fast());
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(key)?;
        w.write_all(&(json.len() as u32).to_le_bytes())?;
        w.write_all(&json)?;
        w.write_all(&e.pixels)?;
        w.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
