//! How `sweep train` shows progress: a bar on a terminal, a line per epoch otherwise (the JSON
//! event stream for the sweep executor is [`crate::events`]).

use indicatif::{ProgressBar, ProgressStyle};

use super::Observer;
use crate::text::format_metric;
use crate::trial::{EpochMetrics, TrialSummary};

/// A progress bar per epoch on stderr.
pub struct Bar {
    bar: Option<ProgressBar>,
    epochs: usize,
    steps: usize,
}

impl Bar {
    /// A bar (drawn only when stderr is a terminal).
    pub fn new() -> Self {
        Self {
            bar: None,
            epochs: 0,
            steps: 0,
        }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Bar {
    fn started(&mut self, epochs: usize, steps_per_epoch: usize, s: &TrialSummary) {
        self.epochs = epochs;
        self.steps = steps_per_epoch;
        note!("{}", started_line(epochs, steps_per_epoch, s));
    }

    fn step(&mut self, epoch: usize, step: usize, loss: f64, acc: f64) {
        let epochs = self.epochs;
        let steps = self.steps as u64;
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(steps);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta} left)")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        if step == 1 {
            bar.reset();
            bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        }
        bar.set_position(step as u64);
        if step.is_multiple_of(20) {
            bar.set_message(format!("loss {loss:.4} acc {acc:.2}%"));
        }
    }

    fn epoch(&mut self, epochs: usize, m: &EpochMetrics, s: &TrialSummary) {
        let line = epoch_line(epochs, m, s);
        match &self.bar {
            Some(bar) => bar.println(line),
            None => note!("{line}"),
        }
    }

    fn finished(&mut self, s: &TrialSummary) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        note!("{}", finish_line(s));
    }
}

/// A progress bar when stderr is a terminal, else a line per epoch.
pub fn for_stderr() -> Box<dyn Observer> {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Box::new(Bar::new())
    } else {
        Box::new(Lines)
    }
}

/// One line per epoch on stderr (for logs and pipes).
pub struct Lines;

impl Observer for Lines {
    fn started(&mut self, epochs: usize, steps: usize, s: &TrialSummary) {
        Bar::new().started(epochs, steps, s);
    }

    fn epoch(&mut self, epochs: usize, m: &EpochMetrics, s: &TrialSummary) {
        note!("{}", epoch_line(epochs, m, s));
    }

    fn finished(&mut self, s: &TrialSummary) {
        note!("{}", finish_line(s));
    }
}

/// The first line of a run: what trains, for how long, where. A command trial has no steps
/// sweep knows of, and its epochs only when its parameters say (0: unknown).
pub fn started_line(epochs: usize, steps_per_epoch: usize, s: &TrialSummary) -> String {
    let threads = format!(
        "{} thread{}",
        s.threads,
        if s.threads == 1 { "" } else { "s" }
    );
    match (epochs, steps_per_epoch) {
        (0, _) => format!("running the program on {} ({threads})", s.device),
        (e, 0) => format!(
            "running the program for {e} epochs on {} ({threads})",
            s.device
        ),
        (e, n) => format!(
            "training {e} epochs x {n} steps on {} ({} engine, {threads})",
            s.device, s.engine
        ),
    }
}

/// One epoch as a log line: every value the trial reported, then the best so far.
pub fn epoch_line(epochs: usize, m: &EpochMetrics, s: &TrialSummary) -> String {
    let mut line = match epochs {
        0 => format!("epoch {:>3}", m.epoch),
        n => format!("epoch {:>3}/{n}", m.epoch),
    };
    for (name, v) in m.metrics.iter() {
        match name {
            // Constant, or time (shown once at the end of the line).
            "seconds" | "train_seconds" | "params" => {}
            "lr" => line.push_str(&format!("  lr {v}")),
            _ => line.push_str(&format!("  {name} {}", format_metric(v))),
        }
    }
    if let Some(best) = s.best_value() {
        line.push_str(&format!(
            "  best {} {} (epoch {})",
            s.objective.metric,
            format_metric(best),
            s.best_epoch
        ));
    }
    if let Some(secs) = m.get("seconds") {
        line.push_str(&format!("  {secs:.1}s"));
    }
    line
}

/// The last line of a run.
pub fn finish_line(s: &TrialSummary) -> String {
    let mut line = format!("{}: ", s.status);
    match s.best_value() {
        Some(v) => line.push_str(&format!(
            "best {} {} at epoch {}",
            s.objective.metric,
            format_metric(v),
            s.best_epoch
        )),
        None => line.push_str("no finished epoch"),
    }
    line.push_str(&format!(" ({} epochs, {:.1}s)", s.epochs_run, s.seconds));
    if let Some(m) = &s.message {
        line.push_str(&format!(" - {m}"));
    }
    line
}
