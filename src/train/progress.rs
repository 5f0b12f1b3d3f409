//! What a run shows while it trains: an indicatif bar (loss, images/s, ETA) on a terminal, or plain
//! log lines (with `--quiet`, or when stdout is a file or a pipe).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Plain mode prints at most one progress line per this interval (plus the first one), so a fast GPU
/// logging every few milliseconds does not flood a log file.
const PLAIN_INTERVAL: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    target: u64,
    epochs: u64,
    steps_per_epoch: u64,
    last_line: Option<Instant>,
    /// Step and time of the first loss report, the origin of the plain-mode ETA (it leaves out the
    /// first step's pipeline compilation).
    origin: Option<(u64, Instant)>,
}

impl Progress {
    /// A display for steps `start..target` of a run of `epochs` epochs.
    pub fn new(quiet: bool, start: u64, target: u64, epochs: u64, steps_per_epoch: u64) -> Progress {
        let bar = (!quiet && std::io::stdout().is_terminal()).then(|| {
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(target), ProgressDrawTarget::stdout())
                .with_style(style)
                .with_position(start)
        });
        let p = Progress { bar, target, epochs, steps_per_epoch, last_line: None, origin: None };
        p.set_prefix(start);
        p
    }

    /// Prints a line above the bar (or plainly).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }

    fn set_prefix(&self, step: u64) {
        if let Some(b) = &self.bar {
            b.set_prefix(format!("epoch {}/{}", epoch_of(step, self.steps_per_epoch), self.epochs));
        }
    }

    /// `step` training steps have been submitted.
    pub fn stepped(&self, step: u64) {
        if let Some(b) = &self.bar {
            b.set_position(step);
            self.set_prefix(step);
        }
    }

    /// Forgets the rate measured so far (the first step includes compiling every pipeline).
    pub fn reset_eta(&self) {
        if let Some(b) = &self.bar {
            b.reset_eta();
        }
    }

    /// A loss report for the steps up to `step`.
    pub fn losses(&mut self, step: u64, names: &[String], values: &[f32], images_per_s: f64) {
        let now = Instant::now();
        let origin = *self.origin.get_or_insert((step, now));
        let losses: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("{n} {}", fmt_loss(*v))).collect();
        if let Some(b) = &self.bar {
            b.set_message(format!("{} | {:.0} img/s", losses.join(" "), images_per_s));
            return;
        }
        if self.last_line.is_some_and(|t| now - t < PLAIN_INTERVAL) {
            return;
        }
        self.last_line = Some(now);
        let done = step.saturating_sub(origin.0);
        let eta = if done > 0 && step < self.target {
            let per_step = (now - origin.1).as_secs_f64() / done as f64;
            format!(" | ETA {}", fmt_duration(per_step * (self.target - step) as f64))
        } else {
            String::new()
        };
        println!(
            "epoch {}/{} step {step}/{} | {} | {:.0} img/s{eta}",
            epoch_of(step, self.steps_per_epoch),
            self.epochs,
            self.target,
            losses.join(" "),
            images_per_s
        );
    }

    /// Removes the bar (the lines printed above it stay).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The 1-based epoch that step number `step` (1-based, as counted after it ran) belongs to.
pub fn epoch_of(step: u64, steps_per_epoch: u64) -> u64 {
    step.saturating_sub(1) / steps_per_epoch.max(1) + 1
}

/// Four significant digits: losses range from ~0.01 (GAN) to ~300 nats (VAE).
pub fn fmt_loss(v: f32) -> String {
    let a = v.abs();
    if !v.is_finite() || a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// "3h 05m", "12m 40s", "8.2s".
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}
