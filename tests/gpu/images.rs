//! PNG grids and the loss plot: sizes, pixel mapping, colour types, bad input, atomic writes.

use gputrain::train::images::{save_grid, save_loss_plot};

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

#[test]
fn loss_plot_writes_a_png_with_every_series() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loss.png");
    let d: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 1.4 * (-(i as f64) / 100.0).exp() + 0.3)).collect();
    let mut g: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 0.7 + (i as f64 / 30.0).sin() * 0.2)).collect();
    g[250].1 = f64::NAN;
    save_loss_plot(&p, &[("loss_d", d), ("loss_g", g)]).unwrap();
    let img = image::open(&p).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (800, 480));
    let count = |c: [u8; 3]| img.pixels().filter(|px| px.0 == c).count();
    // Each series' colour is drawn: its legend square (121 px) plus its line.
    assert!(count([31, 119, 180]) > 121 + 300, "first series");
    assert!(count([255, 127, 14]) > 121 + 300, "second series");
    assert!(count([0, 0, 0]) > 1000, "axes and labels");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn loss_plot_handles_degenerate_series() {
    let dir = tempfile::tempdir().unwrap();
    for (i, series) in [
        vec![],
        vec![("empty", vec![])],
        vec![("one point", vec![(3.0, 2.5)])],
        vec![("flat", vec![(0.0, 5.0), (1.0, 5.0)]), ("nan", vec![(f64::NAN, f64::NAN)])],
        vec![("big", vec![(0.0, 1e9), (1e7, -3e9)])],
    ]
    .into_iter()
    .enumerate()
    {
        let p = dir.path().join(format!("p{i}.png"));
        save_loss_plot(&p, &series).unwrap();
        assert_eq!(image::open(&p).unwrap().to_rgb8().dimensions(), (800, 480));
    }
}
