//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only one these datasets use), a rank
//! byte, `rank` big-endian u32 dimensions, then the row-major data. Images are rank 3 (n, h, w), labels
//! rank 1 (n).
//!
//! Every size is checked before anything is allocated for the data: a raw file's length must equal the
//! header plus the declared data, and a gzip stream's trailer (ISIZE, the uncompressed length mod 2^32)
//! must agree with the header; decompression then reads through `take(declared + 1)` so that neither a
//! lying header nor a gzip bomb can make it allocate more than the declared size, itself capped at
//! [`MAX_DATA_BYTES`].

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Largest data section accepted (1 GiB): the whole of MNIST's training set is 47 MB.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;

/// A stack of `n` grayscale images of `h`×`w` bytes, row-major, image after image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<u8>,
}

/// A malformed or unreadable IDX file: `path` names the file, `detail` the byte offset or field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct IdxError {
    pub path: String,
    pub detail: String,
}

/// Reads an `*-images-idx3-ubyte[.gz]` file (gzip detected by its magic bytes, not its name).
pub fn read_images(path: &Path) -> Result<Images, IdxError> {
    parse_images(&read_file(path)?, &path.display().to_string())
}

/// Reads an `*-labels-idx1-ubyte[.gz]` file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_labels(&read_file(path)?, &path.display().to_string())
}

/// Parses the bytes of an images file; `name` is what errors call it.
pub fn parse_images(bytes: &[u8], name: &str) -> Result<Images, IdxError> {
    let (dims, pixels) = parse(bytes, name, 3)?;
    Ok(Images { n: dims[0], h: dims[1], w: dims[2], pixels })
}

/// Parses the bytes of a labels file; `name` is what errors call it.
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>, IdxError> {
    Ok(parse(bytes, name, 1)?.1)
}

fn read_file(path: &Path) -> Result<Vec<u8>, IdxError> {
    let err = |detail: String| IdxError { path: path.display().to_string(), detail };
    let len = fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?.len();
    // A compressed file is smaller than its contents, so this bounds both kinds before reading.
    if len > MAX_DATA_BYTES + 1024 {
        return Err(err(format!("file is {len} bytes, more than the {MAX_DATA_BYTES}-byte limit")));
    }
    fs::read(path).map_err(|e| err(format!("cannot read: {e}")))
}

fn parse(bytes: &[u8], name: &str, rank: u8) -> Result<(Vec<usize>, Vec<u8>), IdxError> {
    let err = |detail: String| IdxError { path: name.to_string(), detail };
    let header_len = 4 + 4 * rank as usize;
    if bytes.len() < 2 || bytes[..2] != GZIP_MAGIC {
        let (dims, declared) = parse_header(&bytes[..bytes.len().min(header_len)], rank).map_err(err)?;
        let have = (bytes.len() - header_len) as u64;
        if have != declared {
            return Err(err(size_mismatch(&dims, header_len, declared, have)));
        }
        return Ok((dims, bytes[header_len..].to_vec()));
    }

    // Smallest gzip member: 10-byte header, an (empty) deflate block, 8-byte trailer.
    if bytes.len() < 20 {
        return Err(err(format!("gzip stream is only {} bytes: truncated", bytes.len())));
    }
    let mut dec = GzDecoder::new(bytes);
    let mut head = Vec::with_capacity(header_len);
    (&mut dec)
        .take(header_len as u64)
        .read_to_end(&mut head)
        .map_err(|e| err(format!("gzip: corrupt or truncated stream in the IDX header: {e}")))?;
    let (dims, declared) = parse_header(&head, rank).map_err(err)?;
    let isize_at = bytes.len() - 4;
    let isize = u32::from_le_bytes(bytes[isize_at..].try_into().unwrap());
    let total = header_len as u64 + declared;
    if isize != total as u32 {
        return Err(err(format!(
            "gzip trailer (ISIZE at compressed offset {isize_at}) records {isize} uncompressed bytes but the IDX \
             header declares {total} ({header_len} header + {declared} data as {}): truncated file or lying header",
            dims_str(&dims)
        )));
    }
    let mut data = Vec::with_capacity(declared as usize);
    let read = (&mut dec).take(declared + 1).read_to_end(&mut data);
    if let Err(e) = read {
        let at = header_len + data.len();
        return Err(err(format!("gzip: corrupt or truncated stream at uncompressed offset {at}: {e}")));
    }
    if data.len() as u64 != declared {
        return Err(err(size_mismatch(&dims, header_len, declared, data.len() as u64)));
    }
    Ok((dims, data))
}

/// Checks magic, type, rank and dimensions; returns the dimensions and the declared data size in bytes.
fn parse_header(head: &[u8], rank: u8) -> Result<(Vec<usize>, u64), String> {
    if head.len() < 4 {
        return Err(format!("file is {} bytes, too short for the 4-byte IDX magic at offset 0", head.len()));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(format!(
            "bad IDX magic at offset 0: bytes {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 {rank:02x}",
            head[0], head[1], head[2], head[3]
        ));
    }
    if head[2] != TYPE_U8 {
        return Err(format!("IDX type byte at offset 2 is 0x{:02x}, expected 0x08 (unsigned byte)", head[2]));
    }
    if head[3] != rank {
        return Err(format!("IDX rank byte at offset 3 is {}, expected {rank}", head[3]));
    }
    let header_len = 4 + 4 * rank as usize;
    if head.len() < header_len {
        return Err(format!(
            "file ends at offset {} inside the header ({rank} dimensions need {header_len} bytes)",
            head.len()
        ));
    }
    let mut dims = Vec::with_capacity(rank as usize);
    let mut product: u64 = 1;
    for i in 0..rank as usize {
        let at = 4 + 4 * i;
        let d = u32::from_be_bytes(head[at..at + 4].try_into().unwrap());
        if d == 0 {
            return Err(format!("dimension {i} (at offset {at}) is 0"));
        }
        dims.push(d as usize);
        product = product.checked_mul(d as u64).ok_or_else(|| {
            format!("dimensions {}×{d}… (up to offset {at}) overflow a 64-bit size", dims_str(&dims[..i]))
        })?;
    }
    if product > MAX_DATA_BYTES {
        return Err(format!(
            "header declares {} = {product} data bytes, more than the {MAX_DATA_BYTES}-byte limit",
            dims_str(&dims)
        ));
    }
    Ok((dims, product))
}

fn size_mismatch(dims: &[usize], header_len: usize, declared: u64, have: u64) -> String {
    let what = if have < declared { "truncated" } else { "trailing bytes after the data" };
    format!(
        "header declares {} = {declared} data bytes from offset {header_len} but {have} follow ({what})",
        dims_str(dims)
    )
}

fn dims_str(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")
}

/// Encodes unsigned-byte data of shape `dims` as an uncompressed IDX file.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> anyhow::Result<Vec<u8>> {
    if dims.is_empty() || dims.len() > 255 {
        bail!("IDX rank must be 1..=255, got {}", dims.len());
    }
    let mut n: usize = 1;
    for &d in dims {
        if d == 0 || d > u32::MAX as usize {
            bail!("IDX dimension {d} outside 1..=2^32-1");
        }
        n = n.checked_mul(d).context("IDX dimensions overflow")?;
    }
    if n != data.len() {
        bail!("IDX dimensions {} need {n} bytes, got {}", dims_str(dims), data.len());
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

/// Writes an IDX file, gzip-compressed at level 9 when `path` ends in `.gz` (flate2's encoder writes
/// mtime 0, so the output depends only on the input and the flate2 backend version).
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> anyhow::Result<()> {
    let raw = encode_idx(dims, data)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&raw)?;
        enc.finish()?
    } else {
        raw
    };
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
