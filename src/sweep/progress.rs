//! Live progress of a sweep: on a terminal an overall bar plus one line per running trial
//! (its parameters, epoch, the sweep's metric, ETA); otherwise plain timestamped log lines,
//! one per trial that ends (or also one per epoch, or none).

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::TrialEvent;
use crate::exec::TrialOutcome;
use crate::text::{format_metric, human_duration};
use crate::trial::{Objective, TrialStatus};

/// How much `sweep run` prints while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// A live display on a terminal; elsewhere, a line per trial that ends.
    Trials,
    /// Also a line per epoch of every trial (off a terminal).
    Epochs,
    /// Only notes and errors; the leaderboard at the end.
    Quiet,
}

/// The sweep's progress display.
pub struct SweepProgress {
    terminal: Option<(MultiProgress, ProgressBar)>,
    verbosity: Verbosity,
    objective: Objective,
    total: usize,
    done: usize,
    failed: usize,
    pruned: usize,
    best: Option<(String, f64)>,
    running: HashMap<String, TrialLine>,
}

struct TrialLine {
    bar: Option<ProgressBar>,
    device: String,
    /// The searched values, as `lr=0.1 wd=1e-6`.
    params: String,
    epochs: Option<usize>,
    /// Epochs done when this attempt started (a resumed trial).
    resumed_from: usize,
    epoch: usize,
    started: std::time::Instant,
    value: Option<f64>,
    best: Option<f64>,
}

impl TrialLine {
    fn text(&self, id: &str, metric: &str) -> String {
        let id = if self.params.is_empty() {
            id.to_string()
        } else {
            format!("{id} [{}]", self.params)
        };
        if self.epoch == 0 {
            return format!("{id} on {:<7} starting", self.device);
        }
        let done = self.epoch.saturating_sub(self.resumed_from).max(1);
        let per_epoch = self.started.elapsed().as_secs_f64() / done as f64;
        let of = self.epochs.map_or(String::new(), |e| format!("/{e}"));
        let eta = self.epochs.map_or(String::new(), |e| {
            format!(
                "  eta {}",
                human_duration(per_epoch * e.saturating_sub(self.epoch) as f64)
            )
        });
        let show = |v: Option<f64>| v.map_or("-".to_string(), format_metric);
        format!(
            "{id} on {:<7} epoch {}{of}  {metric} {}  best {}{eta}",
            self.device,
            self.epoch,
            show(self.value),
            show(self.best),
        )
    }
}

fn stamp() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

impl SweepProgress {
    /// A display for a sweep of `total` trials of which `done` already ended (a resume),
    /// showing `objective`; a live display when `terminal` (and not quiet).
    pub fn new(
        total: usize,
        done: usize,
        terminal: bool,
        verbosity: Verbosity,
        objective: &Objective,
    ) -> Self {
        let terminal = (terminal && verbosity != Verbosity::Quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("trials [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            overall.enable_steady_tick(Duration::from_millis(500));
            (multi, overall)
        });
        let p = Self {
            terminal,
            verbosity,
            objective: objective.clone(),
            total,
            done,
            failed: 0,
            pruned: 0,
            best: None,
            running: HashMap::new(),
        };
        p.refresh_overall();
        p
    }

    /// Prints a line above the bars (or to stderr), whatever the verbosity: notes that matter.
    pub fn println(&self, line: &str) {
        match &self.terminal {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => note!("[{}] {line}", stamp()),
        }
    }

    fn refresh_overall(&self) {
        if let Some((_, overall)) = &self.terminal {
            overall.set_position(self.done as u64);
            let best = self.best.as_ref().map_or(String::new(), |(id, v)| {
                format!(
                    ", best {} {} ({id})",
                    self.objective.metric,
                    format_metric(*v)
                )
            });
            let pruned = if self.pruned > 0 {
                format!(", {} pruned", self.pruned)
            } else {
                String::new()
            };
            overall.set_message(format!(
                "{} running, {} failed{pruned}{best}",
                self.running.len(),
                self.failed
            ));
        }
    }

    /// A line of progress: printed unless quiet.
    fn progress_line(&self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.println(line);
        }
    }

    /// An attempt started; `params` are its searched values (`lr=0.1 wd=1e-6`).
    pub fn started(&mut self, id: &str, params: &str, device: &str, attempt: u32) {
        let bar = self.terminal.as_ref().map(|(multi, _)| {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        let line = TrialLine {
            bar,
            device: device.to_string(),
            params: params.to_string(),
            epochs: None,
            resumed_from: 0,
            epoch: 0,
            started: std::time::Instant::now(),
            value: None,
            best: None,
        };
        if let Some(b) = &line.bar {
            b.set_message(line.text(id, &self.objective.metric));
        }
        self.running.insert(id.to_string(), line);
        let again = if attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        if self.terminal.is_none() && self.verbosity == Verbosity::Epochs {
            let params = if params.is_empty() {
                String::new()
            } else {
                format!(" [{params}]")
            };
            self.println(&format!("started {id}{params} on {device}{again}"));
        }
        self.refresh_overall();
    }

    /// A trial reported progress.
    pub fn event(&mut self, event: &TrialEvent) {
        let id = event.trial();
        let Some(line) = self.running.get_mut(id) else {
            return;
        };
        match event {
            TrialEvent::Start {
                epochs,
                resumed_from,
                ..
            } => {
                line.epochs = *epochs;
                line.resumed_from = *resumed_from;
                line.epoch = *resumed_from;
                line.started = std::time::Instant::now();
            }
            TrialEvent::Epoch { epochs, row, .. } => {
                line.epochs = epochs.or(line.epochs);
                line.epoch = row.epoch;
                line.value = self.objective.value(&row.metrics);
                if let Some(v) = line.value
                    && line.best.is_none_or(|b| self.objective.better(v, b))
                {
                    line.best = Some(v);
                }
            }
            TrialEvent::End { .. } => {}
        }
        let text = line.text(id, &self.objective.metric);
        match &line.bar {
            Some(b) => b.set_message(text),
            None if matches!(event, TrialEvent::Epoch { .. })
                && self.verbosity == Verbosity::Epochs =>
            {
                self.println(&text)
            }
            None => {}
        }
    }

    /// An attempt ended; `best` is the sweep's best result so far (None: unchanged).
    pub fn finished(
        &mut self,
        id: &str,
        outcome: &TrialOutcome,
        will_retry: bool,
        best: Option<(String, f64)>,
    ) {
        let params = self
            .running
            .get(id)
            .map(|l| l.params.clone())
            .unwrap_or_default();
        if let Some(line) = self.running.remove(id)
            && let (Some((multi, _)), Some(bar)) = (&self.terminal, line.bar)
        {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
        if !will_retry {
            self.done += 1;
            match outcome.status {
                TrialStatus::Pruned => self.pruned += 1,
                TrialStatus::Interrupted => self.done -= 1,
                s if !s.is_final() => self.failed += 1,
                _ => {}
            }
        }
        if best.is_some() {
            self.best = best;
        }
        let value = outcome.best.as_ref().and_then(|b| self.objective.value(b));
        let why = outcome.message.as_deref().unwrap_or("");
        let because = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        let (verb, result) = match (outcome.status, value) {
            (TrialStatus::Completed, Some(v)) => (
                "completed",
                format!(", best {} {}", self.objective.metric, format_metric(v)),
            ),
            (TrialStatus::Interrupted, _) => {
                ("stopped", format!("{because}; it resumes on the next run"))
            }
            (status, _) => (status.name(), because),
        };
        let retry = if will_retry { " - will retry" } else { "" };
        let params = if params.is_empty() {
            String::new()
        } else {
            format!(" [{params}]")
        };
        self.progress_line(&format!(
            "{verb} {id}{params} ({}/{}) in {}{result}{retry}",
            self.done,
            self.total,
            human_duration(outcome.seconds)
        ));
        self.refresh_overall();
    }

    /// Sets the counts of ended trials to the whole sweep's (a pull worker learns of the trials
    /// other workers ended from the journal).
    pub fn sync(&mut self, done: usize, failed: usize, pruned: usize) {
        (self.done, self.failed, self.pruned) = (done, failed, pruned);
        self.refresh_overall();
    }

    /// Removes the bars.
    pub fn finish(&mut self) {
        if let Some((multi, overall)) = &self.terminal {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}
