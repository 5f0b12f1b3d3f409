//! PNG grids and .npy sample files: sizes, pixel mapping, colour types, the NPY header, bad input,
//! atomic writes. The plots are tested in plots.rs.

use std::path::Path;

use gputrain::train::images::{grid_cols, in_chunks, save_grid, save_npy, save_samples, SampleFormat};
use gputrain::train::model::ImageBatch;

#[test]
fn grayscale_grid_layout_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("grid.png");
    // 5 images of 4×3 in [-1, 1], 3 per row: 2 rows; image i is filled with a value that depends on i.
    let (n, h, w) = (5, 4, 3);
    let vals = [-1.0f32, -0.5, 0.0, 1.0, 7.0];
    let images: Vec<f32> = (0..n * h * w).map(|k| vals[k / (h * w)]).collect();
    save_grid(&p, &images, [n, 1, h, w], 3, (-1.0, 1.0)).unwrap();
    let img = image::open(&p).unwrap();
    assert!(matches!(img, image::DynamicImage::ImageLuma8(_)));
    let g = img.to_luma8();
    assert_eq!(g.dimensions(), (3 * (w as u32 + 2) + 2, 2 * (h as u32 + 2) + 2));
    // Top-left pixel of image i sits at (2 + col·(w+2), 2 + row·(h+2)); values map lo→0, hi→255,
    // rounding to nearest, out-of-range values clamp.
    let want = [0u8, 64, 128, 255, 255];
    for (i, &v) in want.iter().enumerate() {
        let (x, y) = (2 + (i % 3) as u32 * 5, 2 + (i / 3) as u32 * 6);
        assert_eq!(g.get_pixel(x, y)[0], v, "image {i}");
        assert_eq!(g.get_pixel(x + 2, y + 3)[0], v, "image {i} bottom-right");
    }
    assert_eq!(g.get_pixel(0, 0)[0], 0, "gap");
    assert_eq!(g.get_pixel(13, 9)[0], 0, "empty sixth slot");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a .tmp was left behind");
}

#[test]
fn rgb_grid_keeps_channels_apart() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rgb.png");
    // Two 2×2 images: channel c of image i is constant (i + c) / 4 in [0, 1].
    let images: Vec<f32> = (0..2 * 3 * 4).map(|k| ((k / 4) / 3 + (k / 4) % 3) as f32 / 4.0).collect();
    save_grid(&p, &images, [2, 3, 2, 2], 8, (0.0, 1.0)).unwrap();
    let img = image::open(&p).unwrap();
    assert!(matches!(img, image::DynamicImage::ImageRgb8(_)));
    let rgb = img.to_rgb8();
    assert_eq!(rgb.dimensions(), (2 * 4 + 2, 6), "cols is capped at n");
    assert_eq!(rgb.get_pixel(2, 2).0, [0, 64, 128]);
    assert_eq!(rgb.get_pixel(7, 3).0, [64, 128, 191]);
}

#[test]
fn bad_grids_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.png");
    for (images, nchw, cols, range) in [
        (vec![0.0; 7], [2, 1, 2, 2], 2, (0.0, 1.0)),
        (vec![0.0; 16], [2, 2, 2, 2], 2, (0.0, 1.0)),
        (vec![0.0; 8], [2, 1, 2, 2], 0, (0.0, 1.0)),
        (vec![0.0; 8], [2, 1, 2, 2], 2, (1.0, 1.0)),
        (vec![], [0, 1, 2, 2], 2, (0.0, 1.0)),
    ] {
        let err = format!("{:#}", save_grid(&p, &images, nchw, cols, range).unwrap_err());
        assert!(err.contains("bad.png"), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Reads an .npy file as the NumPy format 1.0 specifies it, independently of the writer: the magic, the
/// version, a little-endian u16 header length, a header dict ending in a newline with the data starting
/// on a 64-byte boundary, little-endian float32 in C order. Returns the shape and the values.
pub(crate) fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "magic");
    assert_eq!((bytes[6], bytes[7]), (1, 0), "version 1.0");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "the data starts on a 64-byte boundary");
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'), "{header:?}");
    let dict = header.trim_end();
    assert!(dict.starts_with('{') && dict.ends_with('}'), "{dict}");
    assert!(dict.contains("'descr': '<f4'"), "{dict}");
    assert!(dict.contains("'fortran_order': False"), "{dict}");
    let shape_text = dict.split("'shape': (").nth(1).and_then(|t| t.split(')').next()).unwrap();
    let shape: Vec<usize> =
        shape_text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect();
    let data = &bytes[10 + len..];
    assert_eq!(data.len(), 4 * shape.iter().product::<usize>(), "data size for shape {shape:?}");
    let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (shape, values)
}

#[test]
fn npy_holds_the_nchw_array_with_a_numpy_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npy");
    let nchw = [3, 2, 4, 5];
    let images: Vec<f32> = (0..120).map(|k| k as f32 / 7.0 - 3.0).collect();
    save_npy(&p, &images, nchw).unwrap();
    let (shape, values) = read_npy(&p);
    assert_eq!(shape, nchw);
    assert_eq!(values, images, "values bit for bit, in C order");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a .tmp was left behind");

    // Large dimensions make a longer header; it is padded to the boundary all the same.
    save_npy(&p, &[0.5; 12345], [12345, 1, 1, 1]).unwrap();
    assert_eq!(read_npy(&p).0, [12345, 1, 1, 1]);

    let err = format!("{:#}", save_npy(&dir.path().join("bad.npy"), &images, [3, 2, 4, 4]).unwrap_err());
    assert!(err.contains("bad.npy") && err.contains("120 values"), "{err}");
    assert!(!dir.path().join("bad.npy").exists());
}

#[test]
fn sample_grids_are_about_square_for_any_count() {
    assert_eq!([1, 2, 7, 9, 10, 64, 100, 50_000].map(grid_cols), [1, 2, 3, 3, 4, 8, 10, 224]);
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (4, 3);
    for n in [1usize, 7, 100] {
        let batch = ImageBatch { data: vec![0.25; n * h * w], nchw: [n, 1, h, w], range: (0.0, 1.0) };
        let p = dir.path().join(format!("g{n}.png"));
        save_samples(&p, SampleFormat::Png, &batch).unwrap();
        let (cols, rows) = (grid_cols(n), n.div_ceil(grid_cols(n)));
        let g = image::open(&p).unwrap().to_luma8();
        assert_eq!(g.dimensions(), ((cols * (w + 2) + 2) as u32, (rows * (h + 2) + 2) as u32), "n = {n}");
        // The last image is drawn where the layout puts it.
        let last = n - 1;
        let (x, y) = (2 + (last % cols) * (w + 2), 2 + (last / cols) * (h + 2));
        assert_eq!(g.get_pixel(x as u32, y as u32)[0], 64, "n = {n}");
    }
    let batch = ImageBatch { data: vec![-0.5; 2 * 3 * h * w], nchw: [2, 3, h, w], range: (-1.0, 1.0) };
    let p = dir.path().join("s.npy");
    save_samples(&p, SampleFormat::Npy, &batch).unwrap();
    assert_eq!(read_npy(&p), (vec![2, 3, h, w], batch.data.clone()));
    assert_eq!("NPY".parse::<SampleFormat>().unwrap(), SampleFormat::Npy);
    assert_eq!(SampleFormat::Png.file("samples"), Path::new("samples.png"));
    let err = format!("{:#}", "jpg".parse::<SampleFormat>().unwrap_err());
    assert!(err.contains("jpg") && err.contains("png or npy"), "{err}");
}

#[test]
fn chunked_generation_keeps_order_and_checks_shapes() {
    // A stand-in decoder: image k of a call is filled with its latent vector's first value.
    let latent = 2;
    let z: Vec<f32> = (0..150).flat_map(|i| [i as f32, 0.0]).collect();
    let mut calls = Vec::new();
    let all = in_chunks(&z, latent, 64, |z| {
        let n = z.len() / latent;
        calls.push(n);
        Ok(ImageBatch {
            data: (0..n).flat_map(|i| [z[i * latent]; 4]).collect(),
            nchw: [n, 1, 2, 2],
            range: (0.0, 1.0),
        })
    })
    .unwrap();
    assert_eq!(calls, [64, 64, 22]);
    assert_eq!(all.nchw, [150, 1, 2, 2]);
    assert!(all.data.chunks(4).enumerate().all(|(i, px)| px.iter().all(|&v| v == i as f32)));

    let short =
        in_chunks(&z, latent, 64, |_| Ok(ImageBatch { data: vec![0.0; 4], nchw: [1, 1, 2, 2], range: (0.0, 1.0) }));
    let err = format!("{:#}", short.err().expect("a short chunk is refused"));
    assert!(err.contains("64 latent vectors"), "{err}");
    assert!(in_chunks(&z[..3], latent, 64, |_| unreachable!()).is_err());
}
