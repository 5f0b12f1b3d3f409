//! PNG output: sample grids (torchvision `make_grid` style, 2-px gaps) and a loss plot, both drawn by
//! hand so that no plotting or font crate enters the build; both written atomically.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::write_atomic;

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

fn write_png(path: &Path, width: u32, height: u32, pixels: &[u8], color: ExtendedColorType) -> Result<()> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(pixels, width, height, color)
        .with_context(|| format!("encoding PNG {}", path.display()))?;
    write_atomic(path, &bytes)
}

const PLOT_W: usize = 800;
const PLOT_H: usize = 480;
const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// Saves a line plot of `series` (name, (x, y) points) as a PNG: axes with labelled ticks, one colour per
/// series, and a legend of coloured squares with the names (upper-cased, in a 3×5 pixel font).
/// Non-finite points are skipped, so a diverged run still plots up to where it diverged.
pub fn save_loss_plot(path: &Path, series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    let finite = || series.iter().flat_map(|(_, p)| p.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (xs, ys) = (Axis::new(finite().map(|p| p.0)), Axis::new(finite().map(|p| p.1)));
    let mut cv = Canvas::new(PLOT_W, PLOT_H);
    let ylabels: Vec<String> = ys.ticks.iter().map(|&t| ys.label(t)).collect();
    let left = 12 + ylabels.iter().map(|l| text_width(l)).max().unwrap_or(0) as i64;
    let (top, right, bottom) = (34i64, PLOT_W as i64 - 24, PLOT_H as i64 - 30);
    let to_px = |x: f64, y: f64| -> (i64, i64) {
        let fx = (x - xs.lo) / (xs.hi - xs.lo);
        let fy = (y - ys.lo) / (ys.hi - ys.lo);
        (left + (fx * (right - left) as f64).round() as i64, bottom - (fy * (bottom - top) as f64).round() as i64)
    };
    const GRID: [u8; 3] = [225, 225, 225];
    const INK: [u8; 3] = [0, 0, 0];
    for (t, label) in ys.ticks.iter().zip(&ylabels) {
        let (_, py) = to_px(xs.lo, *t);
        cv.line(left, py, right, py, GRID);
        cv.line(left - 4, py, left, py, INK);
        cv.text(left - 6 - text_width(label) as i64, py - 4, label, INK);
    }
    for &t in &xs.ticks {
        let (px, _) = to_px(t, ys.lo);
        cv.line(px, top, px, bottom, GRID);
        cv.line(px, bottom, px, bottom + 4, INK);
        let label = xs.label(t);
        cv.text(px - text_width(&label) as i64 / 2, bottom + 8, &label, INK);
    }
    cv.line(left, top, left, bottom, INK);
    cv.line(left, bottom, right, bottom, INK);
    let mut lx = left;
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut prev: Option<(i64, i64)> = None;
        for &(x, y) in points {
            if !(x.is_finite() && y.is_finite()) {
                prev = None;
                continue;
            }
            let p = to_px(x, y);
            match prev {
                Some(q) => cv.line(q.0, q.1, p.0, p.1, colour),
                None => cv.set(p.0, p.1, colour),
            }
            prev = Some(p);
        }
        cv.rect(lx, 10, lx + 11, 21, colour);
        cv.text(lx + 16, 11, name, INK);
        lx += 16 + text_width(name) as i64 + 20;
    }
    write_png(path, PLOT_W as u32, PLOT_H as u32, &cv.px, ExtendedColorType::Rgb8)
}

/// An axis range widened to whole multiples of a 1-2-5 tick step (about five ticks).
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 * lo.abs().max(1.0) {
            (lo, hi) = (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0));
        }
        let raw = (hi - lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
        let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        let count = ((hi - lo) / step).round() as usize;
        let ticks = (0..=count).map(|k| lo + k as f64 * step).collect();
        Axis { lo, hi, step, ticks }
    }

    fn label(&self, v: f64) -> String {
        let big = self.hi.abs().max(self.lo.abs());
        if big >= 1e6 || self.step < 1e-4 {
            return format!("{v:.1e}");
        }
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        // Snap values like 0.30000000000000004 and -0 before printing.
        let v = if v.abs() < self.step * 1e-6 { 0.0 } else { v };
        format!("{v:.decimals$}")
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas { w, h, px: vec![255; w * h * 3] }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, c);
            }
        }
    }

    /// Bresenham's line, both ends included.
    fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `s` at 2× scale with its top-left corner at (x, y); unknown characters leave a gap.
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let Some(rows) = glyph(ch) else { continue };
            let gx = x + (k * GLYPH_ADVANCE) as i64;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        self.rect(gx + 2 * col, y + 2 * r as i64, gx + 2 * col + 2, y + 2 * r as i64 + 2, c);
                    }
                }
            }
        }
    }
}

/// 3-px glyphs at 2× plus 2 px of spacing.
const GLYPH_ADVANCE: usize = 8;

fn text_width(s: &str) -> usize {
    (s.chars().count() * GLYPH_ADVANCE).saturating_sub(2)
}

/// A 3×5 bitmap per character, one row per byte (bit 2 = left column); letters are upper case only.
fn glyph(ch: char) -> Option<[u8; 5]> {
    Some(match ch.to_ascii_uppercase() {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ',' => [0b000, 0b000, 0b000, 0b010, 0b100],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '_' => [0b000, 0b000, 0b000, 0b000, 0b111],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '(' => [0b001, 0b010, 0b010, 0b010, 0b001],
        ')' => [0b100, 0b010, 0b010, 0b010, 0b100],
        '=' => [0b000, 0b111, 0b000, 0b111, 0b000],
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        _ => return None,
    })
}
