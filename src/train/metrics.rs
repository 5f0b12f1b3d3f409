//! The run directory's logs: metrics.csv, epochs.csv and the plots drawn from them (plots.rs). Rows are appended
//! and flushed as they arrive, so a crash keeps what was logged; a resume rewrites each file first,
//! dropping rows past the checkpoint it continues from.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::model::Evaluation;
use super::plots::{save_loss_plot, save_scores_plot, score_panel};
use super::progress::epoch_of;
use super::write_atomic;

/// A CSV file's header and rows.
pub type Table = (Vec<String>, Vec<Vec<String>>);

/// One CSV file open for appending.
pub struct CsvLog {
    path: PathBuf,
    file: File,
    columns: usize,
}

impl CsvLog {
    /// Writes `path` afresh with `header` and `rows`, then keeps it open for appending.
    pub fn create(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<CsvLog> {
        write_table(path, header, rows)?;
        let file = OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(CsvLog { path: path.to_path_buf(), file, columns: header.len() })
    }

    /// Appends one row and flushes it to the OS.
    pub fn row(&mut self, fields: &[String]) -> Result<()> {
        if fields.len() != self.columns {
            bail!("{}: row of {} fields for {} columns", self.path.display(), fields.len(), self.columns);
        }
        self.file.write_all(join(fields).as_bytes()).with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The header of the CSV at `path` and its rows whose `step_col` value is at most `keep_until`, or `None`
/// when there is no such file. Rows cut short (a crash mid-write) are skipped.
pub fn read_history(path: &Path, step_col: usize, keep_until: u64) -> Result<Option<Table>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let Some(header) = lines.next().map(split) else { return Ok(None) };
    let mut kept = Vec::new();
    for line in lines {
        let row = split(line);
        if row.len() != header.len() || step_col >= row.len() {
            continue;
        }
        let Ok(step) = row[step_col].parse::<u64>() else { continue };
        if step <= keep_until {
            kept.push(row);
        }
    }
    Ok(Some((header, kept)))
}

/// Writes a whole CSV file atomically.
pub fn write_table(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let mut text = join(header);
    for row in rows {
        text.push_str(&join(row));
    }
    write_atomic(path, text.as_bytes())
}

fn split(line: &str) -> Vec<String> {
    line.split(',').map(|s| s.trim().to_string()).collect()
}

fn join(fields: &[String]) -> String {
    let mut s = fields.join(",");
    s.push('\n');
    s
}

/// A float as CSV text: the shortest representation that reads back to the same value.
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        // Spelled the way Python's float() and pandas read them back.
        (if v.is_nan() {
            "nan"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        })
        .to_string()
    }
}

/// As [`num`], for an f32 (printed as the f32 it is, not as its widened f64 digits).
pub fn num32(v: f32) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        num(v as f64)
    }
}

/// Parses a field written by [`num`].
pub fn parse_num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

/// Logged values at one step: the x and ys of the loss plot.
type Point = (u64, Vec<f64>);

/// One evaluation's figures, at the epoch and global step it ended.
struct EvalPoint {
    epoch: u64,
    step: u64,
    figures: Vec<f64>,
}

/// A run's metrics.csv (one row per loss report), epochs.csv (one row per evaluation), loss.png and,
/// when the evaluations score generated images, scores.png, with the history the plots and the epoch's
/// mean train loss need.
pub struct Logs {
    dir: PathBuf,
    loss_names: Vec<String>,
    /// The y axis label of loss.png.
    loss_unit: String,
    steps_per_epoch: u64,
    metrics: CsvLog,
    metric_points: Vec<Point>,
    /// Step-weighted sum of the first loss, and steps, of the current epoch.
    epoch_loss: (f64, u64),
    /// Opened at the first evaluation, whose figure names make its header.
    epochs: Option<CsvLog>,
    /// epochs.csv as kept from before a resume, until the first evaluation opens the log.
    epoch_history: Option<Table>,
    eval_names: Vec<String>,
    eval_points: Vec<EvalPoint>,
}

impl Logs {
    /// Starts the logs in `dir` at global step `start`, carrying over the rows up to `start` from the
    /// logs in `history` (the resumed run's directory, which may be `dir` itself); `loss_unit` labels
    /// loss.png's y axis.
    pub fn open(
        dir: &Path,
        history: Option<&Path>,
        loss_names: &[String],
        loss_unit: &str,
        steps_per_epoch: u64,
        start: u64,
    ) -> Result<Logs> {
        let mut header = vec!["step".to_string(), "epoch".to_string()];
        header.extend(loss_names.iter().cloned());
        header.push("images_per_s".into());
        let read = |name: &str, col: usize| match history {
            Some(h) => read_history(&h.join(name), col, start),
            None => Ok(None),
        };
        let kept = read("metrics.csv", 0)?.filter(|(h, _)| *h == header).map(|(_, rows)| rows).unwrap_or_default();
        let metrics = CsvLog::create(&dir.join("metrics.csv"), &header, &kept)?;
        let epoch_history = read("epochs.csv", 1)?;
        if let Some((h, rows)) = &epoch_history {
            write_table(&dir.join("epochs.csv"), h, rows)?;
        }

        let parse = |row: &[String]| row.iter().map(|s| parse_num(s)).collect::<Vec<f64>>();
        let mut logs = Logs {
            dir: dir.to_path_buf(),
            loss_names: loss_names.to_vec(),
            loss_unit: loss_unit.to_string(),
            steps_per_epoch,
            metrics,
            metric_points: Vec::new(),
            epoch_loss: (0.0, 0),
            epochs: None,
            epoch_history: None,
            eval_names: Vec::new(),
            eval_points: Vec::new(),
        };
        // A resume mid-epoch continues that epoch's mean train loss from the rows already logged in it;
        // each row covers the steps since the previous row (or since the epoch began).
        let epoch = epoch_of(start + 1, steps_per_epoch);
        let mut prev = 0;
        for v in kept.iter().map(|r| parse(r)) {
            let step = v[0] as u64;
            if v[1] as u64 == epoch && !loss_names.is_empty() {
                let covered = step - prev.max((epoch - 1) * steps_per_epoch);
                logs.epoch_loss.0 += v[2] * covered as f64;
                logs.epoch_loss.1 += covered;
            }
            prev = step;
            logs.metric_points.push((step, v[2..2 + loss_names.len()].to_vec()));
        }
        if let Some((h, rows)) = &epoch_history {
            // epoch, step, train_loss, figures..., seconds
            if h.len() > 4 {
                logs.eval_names = h[3..h.len() - 1].to_vec();
                logs.eval_points = rows
                    .iter()
                    .map(|r| parse(r))
                    .map(|v| EvalPoint { epoch: v[0] as u64, step: v[1] as u64, figures: v[3..v.len() - 1].to_vec() })
                    .collect();
            }
        }
        logs.epoch_history = epoch_history;
        Ok(logs)
    }

    /// One loss report: the mean of `values` over the `covered` steps ending at `step`.
    pub fn losses(&mut self, step: u64, covered: u64, values: &[f32], images_per_s: f64) -> Result<()> {
        let mut row = vec![step.to_string(), epoch_of(step, self.steps_per_epoch).to_string()];
        row.extend(values.iter().map(|v| num32(*v)));
        row.push(format!("{images_per_s:.1}"));
        self.metrics.row(&row)?;
        self.metric_points.push((step, values.iter().map(|&v| v as f64).collect()));
        if let Some(&first) = values.first() {
            self.epoch_loss.0 += first as f64 * covered as f64;
            self.epoch_loss.1 += covered;
        }
        Ok(())
    }

    /// The evaluation at the end of epoch `epoch` (1-based; at `step`, which may end it early); returns
    /// the epoch's mean train loss (its first loss, weighted by steps) and starts the next epoch's.
    pub fn epoch(&mut self, epoch: u64, step: u64, eval: &Evaluation, seconds: f64) -> Result<f64> {
        if self.epochs.is_none() {
            let names: Vec<String> = eval.figures.iter().map(|(n, _)| n.clone()).collect();
            let mut header = vec!["epoch".to_string(), "step".into(), "train_loss".into()];
            header.extend(names.iter().cloned());
            header.push("seconds".into());
            let rows = match self.epoch_history.take() {
                Some((h, rows)) if h == header => rows,
                _ => {
                    self.eval_points.clear();
                    Vec::new()
                }
            };
            self.epochs = Some(CsvLog::create(&self.dir.join("epochs.csv"), &header, &rows)?);
            self.eval_names = names;
        }
        let (sum, n) = std::mem::take(&mut self.epoch_loss);
        let train_loss = if n > 0 { sum / n as f64 } else { f64::NAN };
        let mut row = vec![epoch.to_string(), step.to_string(), num(train_loss)];
        row.extend(eval.figures.iter().map(|(_, v)| num(*v)));
        row.push(format!("{seconds:.3}"));
        if let Some(log) = &mut self.epochs {
            log.row(&row)?;
        }
        self.eval_points.push(EvalPoint { epoch, step, figures: eval.figures.iter().map(|(_, v)| *v).collect() });
        Ok(train_loss)
    }

    /// Redraws loss.png (every logged loss and every test figure against the global step, except the
    /// scores) and, when the evaluations have IS or FID figures, scores.png (those against the epoch).
    pub fn plot(&self) -> Result<()> {
        let losses: Vec<(&str, Vec<(f64, f64)>)> = self
            .loss_names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), self.metric_points.iter().map(|(s, v)| (*s as f64, v[i])).collect()))
            .collect();
        let figure = |i: usize, x: fn(&EvalPoint) -> f64| -> Vec<(f64, f64)> {
            self.eval_points.iter().filter(|p| i < p.figures.len()).map(|p| (x(p), p.figures[i])).collect()
        };
        let mut test_names = Vec::new();
        let mut panels = Vec::new();
        for (i, name) in self.eval_names.iter().enumerate() {
            match score_panel(name, figure(i, |p| p.epoch as f64)) {
                Some(panel) => panels.push(panel),
                None => test_names.push((i, format!("test {name}"))),
            }
        }
        let tests: Vec<(&str, Vec<(f64, f64)>)> =
            test_names.iter().map(|(i, name)| (name.as_str(), figure(*i, |p| p.step as f64))).collect();
        save_loss_plot(&self.dir.join("loss.png"), &self.loss_unit, &losses, &tests)?;
        if !panels.is_empty() {
            save_scores_plot(&self.dir.join("scores.png"), &panels)?;
        }
        Ok(())
    }
}
