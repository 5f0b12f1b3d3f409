//! The run directory's plots: loss.png (every logged loss against the global step, the test figures as
//! markers at each evaluation) and, for a GAN scored at its evaluations, scores.png (IS and FID per
//! epoch). Drawn with plotters into memory, with DejaVu Sans compiled into the binary so that text renders
//! the same on a machine with no fonts installed, then encoded as PNG and written atomically.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use image::ExtendedColorType;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;

use super::images::write_png;

/// Width and height of loss.png in pixels.
pub const LOSS_PLOT_SIZE: (u32, u32) = (960, 540);
/// Width and height of scores.png in pixels (one panel per score, side by side).
pub const SCORES_PLOT_SIZE: (u32, u32) = (1120, 440);

/// One named series of (x, y) points.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// One panel of scores.png: a figure against the epoch.
pub struct ScorePanel {
    pub title: String,
    pub y_label: String,
    /// (epoch, value) per evaluation.
    pub points: Vec<(f64, f64)>,
}

/// A panel for an evaluation figure that scores.png draws (`is_N`, `fid_N`: the GAN scorer's names for
/// N generated images), `None` for any other figure.
pub fn score_panel(name: &str, points: Vec<(f64, f64)>) -> Option<ScorePanel> {
    let (title, y_label) = if let Some(n) = name.strip_prefix("is_") {
        (format!("Inception score of {n} samples (higher is better)"), "IS")
    } else if let Some(n) = name.strip_prefix("fid_") {
        (format!("FID of {n} samples (lower is better)"), "FID")
    } else {
        return None;
    };
    Some(ScorePanel { title, y_label: y_label.into(), points })
}

/// Matplotlib's "tab10" colours: distinct for the first ten series, then repeated.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Above this ratio of largest to smallest value (1.5 decades) a positive curve is drawn on a log axis,
/// where the early fall and the late detail are both visible.
const LOG_RATIO: f64 = 31.6;

/// Width of loss.png's legend column in pixels.
const LEGEND_WIDTH: u32 = 210;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SANS: &str = "sans-serif";

/// Registers the embedded font as plotters' "sans-serif" (once per process).
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        bail!("the embedded font assets/fonts/DejaVuSans.ttf could not be read")
    }
}

/// Saves loss.png: one line per series of `losses` (name, (step, value)) and one set of markers per
/// series of `tests` (a test figure at each evaluation's step), a legend, the x axis "step" and the y
/// axis labelled `unit`. Non-finite points are skipped and break the line, so a diverged run still plots
/// up to where it diverged; the y axis is logarithmic when every value is positive and they span more
/// than 1.5 decades. A test series named like a loss ("test recon" for "recon") takes that loss's colour.
pub fn save_loss_plot(path: &Path, unit: &str, losses: &[Series], tests: &[Series]) -> Result<()> {
    let all = || losses.iter().chain(tests).flat_map(|(_, p)| p.iter().copied()).filter(|p| finite(*p));
    let x = x_range(all().map(|p| p.0), 0.02);
    let draw = |root: &Area| {
        // The legend has a column of its own, so it never hides the end of a curve.
        let (plot, legend) = root.split_horizontally(LOSS_PLOT_SIZE.0 - LEGEND_WIDTH);
        let entries = match y_extent(all().map(|p| p.1)) {
            Extent::Linear(y) => loss_chart(&plot, x.clone(), y, false, unit, losses, tests)?,
            Extent::Log(y) => loss_chart(&plot, x.clone(), log_axis(y), true, unit, losses, tests)?,
        };
        draw_legend(&legend, &entries)
    };
    let pixels = render(LOSS_PLOT_SIZE, draw).with_context(|| format!("drawing {}", path.display()))?;
    write_png(path, LOSS_PLOT_SIZE.0, LOSS_PLOT_SIZE.1, &pixels, ExtendedColorType::Rgb8)
}

/// Saves scores.png: one panel per entry of `panels`, side by side, each a line with markers against the
/// epoch (log y axis by the same rule as loss.png).
pub fn save_scores_plot(path: &Path, panels: &[ScorePanel]) -> Result<()> {
    if panels.is_empty() {
        bail!("{}: no scores to plot", path.display());
    }
    let draw = |root: &Area| {
        for (i, (area, panel)) in root.split_evenly((1, panels.len())).iter().zip(panels).enumerate() {
            let pts: Vec<(f64, f64)> = panel.points.iter().copied().filter(|p| finite(*p)).collect();
            // Half an epoch either side, so the first and last markers sit clear of the axes.
            let (lo, hi) = min_max(pts.iter().map(|p| p.0)).unwrap_or((1.0, 1.0));
            let x = lo - 0.5..hi + 0.5;
            let colour = PALETTE[i % PALETTE.len()];
            match y_extent(pts.iter().map(|p| p.1)) {
                Extent::Linear(y) => score_chart(area, x, y, panel, colour)?,
                Extent::Log(y) => score_chart(area, x, log_axis(y), panel, colour)?,
            }
        }
        Ok(())
    };
    let pixels = render(SCORES_PLOT_SIZE, draw).with_context(|| format!("drawing {}", path.display()))?;
    write_png(path, SCORES_PLOT_SIZE.0, SCORES_PLOT_SIZE.1, &pixels, ExtendedColorType::Rgb8)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws into a white RGB buffer of `size` and returns its pixels.
fn render(size: (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    register_font()?;
    let mut pixels = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(pixels)
}

fn loss_chart<Y>(
    root: &Area,
    x: Range<f64>,
    y: Y,
    log: bool,
    unit: &str,
    losses: &[Series],
    tests: &[Series],
) -> Result<Vec<LegendEntry>>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let caption = if log { "Training losses and test figures (log scale)" } else { "Training losses and test figures" };
    let mut chart = ChartBuilder::on(root)
        .margin(14)
        .caption(caption, (SANS, 20))
        .x_label_area_size(46)
        .y_label_area_size(76)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(unit)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .max_light_lines(4)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(214, 214, 214))
        .draw()?;

    let mut entries = Vec::new();
    for (i, (name, points)) in losses.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let style = colour.stroke_width(2);
        let segments = segments(points);
        // A point with no finite neighbour draws no line, so it gets a dot.
        chart.draw_series(segments.iter().filter(|s| s.len() == 1).map(|s| Circle::new(s[0], 2, colour.filled())))?;
        chart.draw_series(segments.iter().filter(|s| s.len() > 1).map(|s| PathElement::new(s.clone(), style)))?;
        entries.push(LegendEntry { name: legend_name(name, !segments.is_empty()), colour, marker: false });
    }
    let mut spare = losses.len();
    for (name, points) in tests {
        let same = losses.iter().position(|(l, _)| name.strip_prefix("test ") == Some(*l));
        let index = same.unwrap_or_else(|| {
            spare += 1;
            spare - 1
        });
        let colour = PALETTE[index % PALETTE.len()];
        let finite_points: Vec<(f64, f64)> = points.iter().copied().filter(|p| finite(*p)).collect();
        entries.push(LegendEntry { name: legend_name(name, !finite_points.is_empty()), colour, marker: true });
        chart.draw_series(finite_points.into_iter().map(|p| marker(p, colour)))?;
    }
    Ok(entries)
}

/// One line of loss.png's legend: a line sample, or a marker for a test figure.
struct LegendEntry {
    name: String,
    colour: RGBColor,
    marker: bool,
}

/// The legend as a column of entries, top-aligned with the plotting area.
fn draw_legend(area: &Area, entries: &[LegendEntry]) -> Result<()> {
    let font = (SANS, 14).into_font().color(&BLACK);
    for (k, e) in entries.iter().enumerate() {
        let y = 56 + 22 * k as i32;
        if e.marker {
            area.draw(&marker((14, y), e.colour))?;
        } else {
            area.draw(&PathElement::new(vec![(2, y), (26, y)], e.colour.stroke_width(2)))?;
        }
        area.draw(&Text::new(e.name.as_str(), (34, y - 8), font.clone()))?;
    }
    Ok(())
}

fn score_chart<Y>(root: &Area, x: Range<f64>, y: Y, panel: &ScorePanel, colour: RGBColor) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let epochs = (x.end - x.start).round().max(1.0) as usize;
    let mut chart = ChartBuilder::on(root)
        .margin(14)
        .caption(&panel.title, (SANS, 17))
        .x_label_area_size(46)
        .y_label_area_size(66)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels(epochs.min(10) + 1)
        // Epochs are whole numbers; ticks between them stay unlabelled.
        .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
        .y_label_formatter(&|v| tick(*v))
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .max_light_lines(4)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(214, 214, 214))
        .draw()?;
    let segments = segments(&panel.points);
    let style = colour.stroke_width(2);
    chart.draw_series(segments.iter().filter(|s| s.len() > 1).map(|s| PathElement::new(s.clone(), style)))?;
    chart.draw_series(segments.iter().flatten().map(|&p| marker(p, colour)))?;
    Ok(())
}

type Marker<C, DB> = ComposedElement<C, DB, Circle<(i32, i32), i32>, Circle<(i32, i32), i32>>;

/// A filled circle with a dark outline, so markers stand out on a line of the same colour.
fn marker<C, DB: DrawingBackend>(at: C, colour: RGBColor) -> Marker<C, DB> {
    EmptyElement::at(at) + Circle::new((0, 0), 5, colour.filled()) + Circle::new((0, 0), 5, BLACK.stroke_width(1))
}

fn finite((x, y): (f64, f64)) -> bool {
    x.is_finite() && y.is_finite()
}

/// The runs of consecutive finite points.
fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    points.split(|p| !finite(*p)).filter(|s| !s.is_empty()).map(<[_]>::to_vec).collect()
}

fn legend_name(name: &str, drawn: bool) -> String {
    if drawn {
        name.to_string()
    } else {
        format!("{name} (no finite values)")
    }
}

/// The x range of `xs` widened by `pad` of its span on each side; one value gets ±1, none gives 0..1.
fn x_range(xs: impl Iterator<Item = f64>, pad: f64) -> Range<f64> {
    match min_max(xs) {
        None => 0.0..1.0,
        Some((lo, hi)) if hi - lo <= f64::EPSILON * lo.abs().max(1.0) => lo - 1.0..hi + 1.0,
        Some((lo, hi)) => lo - pad * (hi - lo)..hi + pad * (hi - lo),
    }
}

enum Extent {
    Linear(Range<f64>),
    Log(Range<f64>),
}

/// The y axis for `ys`: logarithmic when all are positive and span more than [`LOG_RATIO`], else linear
/// with 5 % headroom; a constant series is centred in ±10 % of its value (±1 around zero).
fn y_extent(ys: impl Iterator<Item = f64>) -> Extent {
    let Some((lo, hi)) = min_max(ys) else { return Extent::Linear(0.0..1.0) };
    if lo > 0.0 && hi / lo > LOG_RATIO {
        return Extent::Log(lo / 1.3..hi * 1.3);
    }
    let span = hi - lo;
    if span <= 1e-9 * lo.abs().max(hi.abs()) || span == 0.0 {
        let half = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        return Extent::Linear(lo - half..hi + half);
    }
    Extent::Linear(lo - 0.05 * span..hi + 0.05 * span)
}

/// A log axis over `y` with labelled ticks at 1, 2 and 5 times the powers of ten (only the powers when it
/// spans more than 2.5 decades) and light grid lines at the other integer multiples.
fn log_axis(y: Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (k0, k1) = (y.start.log10().floor() as i32, y.end.log10().ceil() as i32);
    let labelled: &[f64] = if y.end.log10() - y.start.log10() > 2.5 { &[1.0] } else { &[1.0, 2.0, 5.0] };
    let (mut major, mut minor) = (Vec::new(), Vec::new());
    for k in k0..=k1 {
        for m in 1..=9 {
            let v = m as f64 * 10f64.powi(k);
            if y.contains(&v) {
                if labelled.contains(&(m as f64)) { &mut major } else { &mut minor }.push(v);
            }
        }
    }
    y.log_scale().with_key_points(major).with_light_points(minor)
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A tick label: up to four significant digits without trailing zeros, exponent form outside 1e-3..1e6.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
