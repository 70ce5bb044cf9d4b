//! The vocabulary every layer shares about a trial: where it stands ([`TrialStatus`]), what it
//! measured ([`Metrics`], named values per epoch), what the sweep optimises ([`Objective`]),
//! how it ended ([`TrialSummary`]); the events it reports while it runs are [`crate::events`].
//!
//! Metrics are data, not struct fields: the trainer reports `train_loss`, `test_acc` and
//! whatever else it measures, a user's program reports its own names, and every file, table
//! and chart carries the names it was given.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a trial stands, from `pending` to a final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Trained every epoch.
    Completed,
    /// Stopped early by the sweep's pruner because it was losing (final: it is not rerun).
    Pruned,
    /// The loss became non-finite (a result, not an accident: it is not retried).
    Diverged,
    /// Running now (or the orchestrator died while it ran).
    Running,
    /// Not started yet.
    Pending,
    /// Ran out of (GPU) memory; retried with fewer neighbours.
    Oom,
    /// Exceeded `--timeout-per-trial`.
    Timeout,
    /// Stopped by Ctrl-C, SIGTERM or scancel before it finished; it resumes.
    Interrupted,
    /// Crashed or exited with an error.
    Failed,
    /// Its pull worker stopped renewing its lease (killed, its node lost); another worker
    /// takes it up from its last finished epoch.
    Stale,
}

impl TrialStatus {
    /// Final statuses are kept when a sweep resumes; the others run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrialStatus::Completed | TrialStatus::Pruned | TrialStatus::Diverged
        )
    }

    /// True for trials that ended without a result and may be attempted again.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            TrialStatus::Failed
                | TrialStatus::Timeout
                | TrialStatus::Oom
                | TrialStatus::Interrupted
        )
    }

    /// The lowercase name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Completed => "completed",
            TrialStatus::Pruned => "pruned",
            TrialStatus::Diverged => "diverged",
            TrialStatus::Running => "running",
            TrialStatus::Pending => "pending",
            TrialStatus::Oom => "oom",
            TrialStatus::Timeout => "timeout",
            TrialStatus::Interrupted => "interrupted",
            TrialStatus::Failed => "failed",
            TrialStatus::Stale => "stale",
        }
    }

    /// The exit code of a trial process that ended with this status.
    pub fn exit_code(self) -> u8 {
        match self {
            TrialStatus::Completed | TrialStatus::Pruned => 0,
            TrialStatus::Diverged => EXIT_DIVERGED,
            TrialStatus::Interrupted => EXIT_INTERRUPTED,
            _ => 1,
        }
    }
}

impl fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Exit code of a diverged run.
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of an interrupted run (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Whether smaller or larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Smaller is better (losses, errors).
    Min,
    /// Larger is better (accuracies).
    Max,
}

impl Mode {
    /// The direction of a metric known by its name: `*acc*`/`*accuracy*` are maximised,
    /// `*loss*`/`*error*`/`*err` minimised; None for names that say nothing.
    pub fn infer(metric: &str) -> Option<Mode> {
        let m = metric.to_ascii_lowercase();
        if m.contains("acc") || m.contains("f1") || m.contains("auc") || m.contains("score") {
            Some(Mode::Max)
        } else if m.contains("loss")
            || m.contains("error")
            || m.ends_with("err")
            || m.contains("perplexity")
            || m.contains("mse")
            || m.contains("mae")
        {
            Some(Mode::Min)
        } else {
            None
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

/// What a sweep optimises: one named metric and its direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Objective {
    /// The metric's name, as the trial reports it.
    pub metric: String,
    /// Whether smaller or larger is better.
    pub mode: Mode,
}

impl Objective {
    /// An objective on `metric`, its direction given or inferred from the name.
    pub fn new(metric: &str, mode: Option<Mode>) -> Result<Self, String> {
        let mode = mode.or_else(|| Mode::infer(metric)).ok_or_else(|| {
            format!(
                "cannot tell whether `{metric}` should be minimised or maximised; add mode = \"min\" or mode = \"max\""
            )
        })?;
        Ok(Self {
            metric: metric.to_string(),
            mode,
        })
    }

    /// The study's default: the best test accuracy.
    pub fn test_acc() -> Self {
        Self {
            metric: "test_acc".into(),
            mode: Mode::Max,
        }
    }

    /// True when `a` is strictly better than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        match self.mode {
            Mode::Max => a > b,
            Mode::Min => a < b,
        }
    }

    /// Orders values best first (NaN last).
    pub fn cmp(&self, a: f64, b: f64) -> std::cmp::Ordering {
        let key = |v: f64| {
            if v.is_nan() {
                f64::INFINITY
            } else if self.mode == Mode::Max {
                -v
            } else {
                v
            }
        };
        key(a).total_cmp(&key(b))
    }

    /// The metric's value in `metrics`, if reported and finite.
    pub fn value(&self, metrics: &Metrics) -> Option<f64> {
        metrics.get(&self.metric).filter(|v| v.is_finite())
    }

    /// The best epoch of a curve by this objective (the earliest of equal values).
    pub fn best<'a>(&self, epochs: &'a [EpochMetrics]) -> Option<&'a EpochMetrics> {
        let mut best: Option<(&EpochMetrics, f64)> = None;
        for e in epochs {
            if let Some(v) = self.value(&e.metrics)
                && best.is_none_or(|(_, b)| self.better(v, b))
            {
                best = Some((e, v));
            }
        }
        best.map(|(e, _)| e)
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.metric, self.mode.name())
    }
}

/// Named values, in the order they were reported (a JSON object on the wire).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(Vec<(String, f64)>);

impl Metrics {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Sets `name` (appended if new, replaced in place otherwise).
    pub fn set(&mut self, name: &str, value: f64) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// `self` with `name` set: for building rows in one expression.
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.set(name, value);
        self
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// (name, value) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, f64)> for Metrics {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        let mut m = Metrics::new();
        for (n, v) in iter {
            m.set(&n, v);
        }
        m
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            // JSON has no NaN or infinity: a diverged value travels as null.
            if v.is_finite() {
                map.serialize_entry(n, v)?;
            } else {
                map.serialize_entry(n, &Option::<f64>::None)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of named numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metrics, A::Error> {
                let mut m = Metrics::new();
                while let Some((k, v)) = map.next_entry::<String, Option<f64>>()? {
                    m.set(&k, v.unwrap_or(f64::NAN));
                }
                Ok(m)
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// One epoch's row: its number (1-based) and what was measured after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// The values, in the order the trial reported them.
    pub metrics: Metrics,
}

impl EpochMetrics {
    /// The value of `name` at this epoch.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name)
    }
}

/// How a trial run ended (or that it has not yet): `summary.json`, and the `end` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    /// Where it stands.
    pub status: TrialStatus,
    /// What went wrong or why it stopped, for anything but completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What selects the best epoch (and its checkpoint).
    pub objective: Objective,
    /// The best epoch by the objective (0 before the first epoch).
    pub best_epoch: usize,
    /// Everything measured at the best epoch.
    #[serde(default)]
    pub best: Metrics,
    /// Epochs completed.
    pub epochs_run: usize,
    /// Wall time so far, earlier attempts of a resumed run included.
    pub seconds: f64,
    /// Where it ran ("cpu", "cuda:0").
    #[serde(default)]
    pub device: String,
    /// The training-step implementation (built-in trainer) or "command".
    #[serde(default)]
    pub engine: String,
    /// Compute threads.
    #[serde(default)]
    pub threads: usize,
}

impl TrialSummary {
    /// A summary of a run that has just started.
    pub fn starting(objective: Objective, device: &str, engine: &str, threads: usize) -> Self {
        Self {
            status: TrialStatus::Running,
            message: None,
            objective,
            best_epoch: 0,
            best: Metrics::new(),
            epochs_run: 0,
            seconds: 0.0,
            device: device.to_string(),
            engine: engine.to_string(),
            threads,
        }
    }

    /// The objective's value at the best epoch.
    pub fn best_value(&self) -> Option<f64> {
        (self.best_epoch > 0)
            .then(|| self.objective.value(&self.best))
            .flatten()
    }

    /// Records an epoch; returns true when it is the new best (its checkpoint should be kept).
    pub fn record(&mut self, row: &EpochMetrics) -> bool {
        self.epochs_run = row.epoch;
        let value = self.objective.value(&row.metrics);
        let improved = match (value, self.best_value()) {
            (Some(v), Some(b)) => self.objective.better(v, b),
            (Some(_), None) => true,
            (None, _) => self.best_epoch == 0,
        };
        if improved {
            self.best_epoch = row.epoch;
            self.best = row.metrics.clone();
        }
        improved
    }
}

/// How `sweep trial` runs a trial: `trial.json`, written by the study beside the trial's
/// `trial.toml` (its configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialTask {
    /// Trial id.
    pub id: String,
    /// What selects the best epoch and its checkpoint.
    pub objective: Objective,
    /// 1-based attempt; a later attempt resumes what an earlier one saved.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The user's program, for a command trial (None: the built-in trainer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandTask>,
    /// The other metrics the sweep reads (further objectives, constraints, `select`): a
    /// command trial whose program ends without ever reporting one of them fails, naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
}

fn first_attempt() -> u32 {
    1
}

/// A command trial: the user's program, which reports its metrics as JSON lines on stdout or
/// appends them to `metrics.csv` in its trial directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandTask {
    /// The program and its arguments, placeholders already filled in.
    pub argv: Vec<String>,
    /// The command as the spec writes it, with its `{placeholders}` (to run the trial again
    /// elsewhere, as `sweep rerun` does).
    #[serde(default)]
    pub template: Vec<String>,
    /// Only stdout lines starting with this carry metrics (None: every line that is a JSON
    /// object with an `epoch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when the program is stopped.
    pub grace_seconds: f64,
    /// Epochs planned, when the parameters say (for progress and ETA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
}

/// Why the orchestrator stops one trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The pruner judged it a loser.
    Pruned,
    /// It ran past `--timeout-per-trial`.
    Timeout,
    /// The sweep is being interrupted (Ctrl-C); the trial resumes later.
    Interrupted,
    /// ASHA paused it at a rung (`[prune] pause = true`): it ends as pruned but keeps the
    /// state it resumes from, in case it is promoted later.
    Paused,
    /// A person asked for it (`sweep stop`): it ends as pruned, keeping its best checkpoint.
    User,
}

impl StopReason {
    /// The status a trial stopped for this reason ends with.
    pub fn status(self) -> TrialStatus {
        match self {
            StopReason::Pruned | StopReason::Paused | StopReason::User => TrialStatus::Pruned,
            StopReason::Timeout => TrialStatus::Timeout,
            StopReason::Interrupted => TrialStatus::Interrupted,
        }
    }

    /// Why the trial stopped, in words.
    pub fn why(self) -> &'static str {
        match self {
            StopReason::Pruned => "pruned by the sweep",
            StopReason::Paused => "paused at a rung by the sweep",
            StopReason::Timeout => "stopped at its time limit",
            StopReason::Interrupted => "interrupted",
            StopReason::User => "stopped by `sweep stop`",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An epoch's row with lr, test_loss and test_acc, for tests.
    pub(crate) fn row(epoch: usize, acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            metrics: Metrics::new()
                .with("lr", 0.01)
                .with("test_loss", 1.0 / acc)
                .with("test_acc", acc),
        }
    }

    #[test]
    fn non_finite_values_travel_as_null_and_come_back_as_nan() {
        let m = Metrics::new().with("train_loss", f64::NAN).with("a", 1.0);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"train_loss":null,"a":1.0}"#);
        let back: Metrics = serde_json::from_str(&text).unwrap();
        assert!(back.get("train_loss").unwrap().is_nan());
    }

    #[test]
    fn directions_are_inferred_from_known_names_or_must_be_given() {
        assert_eq!(Mode::infer("test_acc"), Some(Mode::Max));
        assert_eq!(Mode::infer("val_accuracy"), Some(Mode::Max));
        assert_eq!(Mode::infer("test_loss"), Some(Mode::Min));
        assert_eq!(Mode::infer("top1_error"), Some(Mode::Min));
        assert_eq!(Mode::infer("reward"), None);
        assert!(Objective::new("reward", None).is_err());
        assert_eq!(
            Objective::new("reward", Some(Mode::Max)).unwrap().mode,
            Mode::Max
        );
    }

    #[test]
    fn the_best_epoch_follows_the_objective() {
        let curve = [row(1, 97.0), row(2, 98.5), row(3, 98.5), row(4, 98.0)];
        let acc = Objective::test_acc();
        assert_eq!(acc.best(&curve).unwrap().epoch, 2, "earliest of equals");
        let loss = Objective::new("test_loss", None).unwrap();
        assert_eq!(loss.best(&curve).unwrap().epoch, 2);
        let mut s = TrialSummary::starting(loss, "cpu", "fused", 1);
        let kept: Vec<bool> = curve.iter().map(|r| s.record(r)).collect();
        assert_eq!(kept, [true, true, false, false]);
        assert_eq!(s.best_epoch, 2);
        assert!((s.best_value().unwrap() - 1.0 / 98.5).abs() < 1e-12);
        let mut ordered = [1.0, f64::NAN, 3.0, 2.0];
        ordered.sort_by(|a, b| acc.cmp(*a, *b));
        assert_eq!(&ordered[..3], &[3.0, 2.0, 1.0]);
        assert!(ordered[3].is_nan());
    }
}
