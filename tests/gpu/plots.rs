//! loss.png and scores.png: valid PNGs of the documented sizes for ordinary, log-scale, non-finite,
//! single-point, constant and empty input; the log axis chosen by the data's span; scores.png written
//! only when the evaluations have IS or FID.

use std::path::Path;

use gputrain::train::metrics::Logs;
use gputrain::train::model::Evaluation;
use gputrain::train::plots::{save_loss_plot, save_scores_plot, score_panel, Series, LOSS_PLOT_SIZE, SCORES_PLOT_SIZE};
use image::RgbImage;

/// The first three series colours (matplotlib's tab10).
const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];
const GREEN: [u8; 3] = [44, 160, 44];

fn open(p: &Path, size: (u32, u32)) -> RgbImage {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", p.display());
    img
}

fn count(img: &RgbImage, c: [u8; 3]) -> usize {
    img.pixels().filter(|px| px.0 == c).count()
}

/// The mean row of `c`-coloured pixels in column `x`, if any.
fn row_at(img: &RgbImage, x: u32, c: [u8; 3]) -> Option<f64> {
    let rows: Vec<u32> = (0..img.height()).filter(|&y| img.get_pixel(x, y).0 == c).collect();
    (!rows.is_empty()).then(|| rows.iter().sum::<u32>() as f64 / rows.len() as f64)
}

/// How far the curve's middle column is from the straight line through its quarter columns, in pixels
/// (columns inside the plotting area, left of the legend column).
fn bend(img: &RgbImage, c: [u8; 3]) -> f64 {
    let r = |x| row_at(img, x, c).unwrap_or_else(|| panic!("no curve in column {x}"));
    (r(480) - (r(300) + r(660)) / 2.0).abs()
}

fn plot(dir: &Path, name: &str, losses: &[Series], tests: &[Series]) -> RgbImage {
    let p = dir.join(name);
    save_loss_plot(&p, "nats per image", losses, tests).unwrap();
    open(&p, LOSS_PLOT_SIZE)
}

#[test]
fn loss_plot_draws_every_series_and_marker() {
    let dir = tempfile::tempdir().unwrap();
    let d: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 1.4 * (-(i as f64) / 100.0).exp() + 0.3)).collect();
    let g: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 0.7 + (i as f64 / 30.0).sin() * 0.2)).collect();
    let tests = [("test g_loss", vec![(100.0, 0.6), (200.0, 0.65)]), ("test extra", vec![(300.0, 0.5)])];
    let img = plot(dir.path(), "loss.png", &[("d_loss", d), ("g_loss", g)], &tests);
    assert!(count(&img, BLUE) > 500, "first loss line");
    assert!(count(&img, ORANGE) > 500, "second loss line and its test markers");
    // A test figure without a loss of its name takes the next colour: three markers' worth with its legend.
    assert!(count(&img, GREEN) > 100, "the unmatched test figure's markers");
    assert!(count(&img, [0, 0, 0]) > 1000, "axes, labels and marker outlines");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a .tmp was left behind");
}

#[test]
fn the_y_axis_is_logarithmic_only_past_one_and_a_half_decades() {
    let dir = tempfile::tempdir().unwrap();
    let curve = |decades: f64, offset: f64| -> Vec<(f64, f64)> {
        (0..500).map(|i| (i as f64, 10f64.powf(decades * (1.0 - i as f64 / 499.0)) + offset)).collect()
    };
    // Two decades of exponential decay: straight on a log axis.
    let img = plot(dir.path(), "log.png", &[("loss", curve(2.0, 0.0))], &[]);
    assert!(bend(&img, BLUE) < 3.0, "two decades should be drawn on a log axis: bend {}", bend(&img, BLUE));
    // 1.2 decades stays linear, where the same decay bends.
    let img = plot(dir.path(), "short.png", &[("loss", curve(1.2, 0.0))], &[]);
    assert!(bend(&img, BLUE) > 15.0, "1.2 decades should stay linear: bend {}", bend(&img, BLUE));
    // A curve that crosses zero cannot be logarithmic, however far it spans.
    let img = plot(dir.path(), "neg.png", &[("loss", curve(2.0, -2.0))], &[]);
    assert!(bend(&img, BLUE) > 15.0, "non-positive values should stay linear: bend {}", bend(&img, BLUE));
    // A straight line stays straight.
    let line: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 1.0 + i as f64 / 499.0)).collect();
    let img = plot(dir.path(), "line.png", &[("loss", line)], &[]);
    assert!(bend(&img, BLUE) < 3.0);
}

#[test]
fn non_finite_points_break_the_line_and_the_rest_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut loss: Vec<(f64, f64)> = (0..500).map(|i| (i as f64, 2.0 - i as f64 / 500.0)).collect();
    for p in &mut loss[150..350] {
        p.1 = f64::NAN;
    }
    loss[420].1 = f64::INFINITY;
    let diverged = vec![(0.0, f64::NAN), (1.0, f64::NEG_INFINITY)];
    let img =
        plot(dir.path(), "nan.png", &[("loss", loss), ("diverged", diverged)], &[("test kl", vec![(5.0, f64::NAN)])]);
    assert!(row_at(&img, 150, BLUE).is_some() && row_at(&img, 700, BLUE).is_some(), "both ends are drawn");
    assert!(row_at(&img, 480, BLUE).is_none(), "the NaN stretch is a gap");
}

#[test]
fn one_point_and_constant_series_sit_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let near_centre = |img: &RgbImage| {
        let mut rows = Vec::new();
        for y in 0..img.height() {
            for x in 60..720 {
                if img.get_pixel(x, y).0 == BLUE {
                    rows.push(y);
                }
            }
        }
        rows
    };
    let img = plot(dir.path(), "one.png", &[("loss", vec![(3.0, 2.5)])], &[]);
    let rows = near_centre(&img);
    assert!(!rows.is_empty(), "the single point is drawn");
    assert!(rows.iter().all(|&y| (230..310).contains(&y)), "{rows:?}");

    let img = plot(dir.path(), "flat.png", &[("loss", (0..100).map(|i| (i as f64, 5.0)).collect())], &[]);
    let rows = near_centre(&img);
    assert!(rows.len() > 500, "the flat line is drawn");
    let (lo, hi) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
    assert!(hi - lo <= 3 && (230..310).contains(lo), "rows {lo}..{hi}");

    plot(dir.path(), "empty.png", &[], &[]);
    plot(dir.path(), "nothing.png", &[("loss", vec![])], &[("test loss", vec![])]);
    plot(dir.path(), "zeros.png", &[("loss", vec![(1.0, 0.0), (2.0, 0.0)])], &[]);
    plot(dir.path(), "huge.png", &[("big", vec![(0.0, 1e9), (1e7, -3e9)])], &[]);
}

#[test]
fn scores_plot_has_a_panel_per_score() {
    let dir = tempfile::tempdir().unwrap();
    assert!(score_panel("sample_diversity", vec![]).is_none() && score_panel("recon", vec![]).is_none());
    let is = score_panel("is_1000", vec![(1.0, 3.3), (2.0, 5.1), (3.0, f64::NAN), (4.0, 5.9)]).unwrap();
    let fid = score_panel("fid_1000", vec![(1.0, 219.0), (2.0, 76.0), (3.0, 50.4), (4.0, 4.0)]).unwrap();
    assert!(is.title.contains("1000") && is.y_label == "IS" && fid.y_label == "FID");
    let p = dir.path().join("scores.png");
    save_scores_plot(&p, &[is, fid]).unwrap();
    let img = open(&p, SCORES_PLOT_SIZE);
    let (w, _) = SCORES_PLOT_SIZE;
    let left = |c| {
        (0..w / 2)
            .flat_map(|x| (0..img.height()).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == c)
            .count()
    };
    assert!(left(BLUE) > 200 && count(&img, BLUE) == left(BLUE), "IS on the left panel");
    assert!(count(&img, ORANGE) > 200 && left(ORANGE) == 0, "FID on the right panel");

    let one = score_panel("fid_10", vec![(1.0, 300.0)]).unwrap();
    save_scores_plot(&p, &[one]).unwrap();
    open(&p, SCORES_PLOT_SIZE);
    assert!(save_scores_plot(&dir.path().join("none.png"), &[]).is_err());
}

fn logged_run(dir: &Path, figures: &[(&str, f64)]) {
    let names = ["d_loss".to_string(), "g_loss".to_string()];
    let mut logs = Logs::open(dir, None, &names, "loss", 4, 0).unwrap();
    let eval = Evaluation { figures: figures.iter().map(|(n, v)| (n.to_string(), *v)).collect() };
    for epoch in 1..=2u64 {
        logs.losses(epoch * 4 - 2, 2, &[1.0, 0.5], 100.0).unwrap();
        logs.losses(epoch * 4, 2, &[0.9, 0.6], 100.0).unwrap();
        logs.epoch(epoch, epoch * 4, &eval, 1.0).unwrap();
        logs.plot().unwrap();
    }
}

#[test]
fn scores_png_is_written_only_when_the_evaluations_score() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, scored) = (tmp.path().join("plain"), tmp.path().join("scored"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&scored).unwrap();
    logged_run(&plain, &[("sample_diversity", 0.3)]);
    open(&plain.join("loss.png"), LOSS_PLOT_SIZE);
    assert!(!plain.join("scores.png").exists());

    logged_run(&scored, &[("sample_diversity", 0.3), ("is_10", 2.5), ("fid_10", 120.0)]);
    open(&scored.join("loss.png"), LOSS_PLOT_SIZE);
    open(&scored.join("scores.png"), SCORES_PLOT_SIZE);
    let epochs = std::fs::read_to_string(scored.join("epochs.csv")).unwrap();
    assert_eq!(epochs.lines().next(), Some("epoch,step,train_loss,sample_diversity,is_10,fid_10,seconds"));
    assert_eq!(epochs.lines().count(), 3);
    let names: Vec<String> =
        std::fs::read_dir(&scored).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}
