//! The event protocol between a trial process (`sweep trial`) and its executor, in one place:
//! the event type, its writer (an observer of the trainer, or of a command trial's wrapper),
//! and its readers (the lines of a local trial's stdout, the `events.jsonl` a Slurm task
//! appends to). One JSON object per line, the same schema everywhere.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::atomic;
use crate::train::Observer;
use crate::trial::{EpochMetrics, TrialSummary};

/// One line of a trial's event stream: what `sweep trial` reports to the orchestrator, on
/// stdout for the local executor or appended to `events.jsonl` in the trial directory on Slurm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TrialEvent {
    /// The trial is set up and training begins (or resumes).
    Start {
        /// Trial id.
        trial: String,
        /// Epochs planned, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epochs: Option<usize>,
        /// Epochs already done by an earlier attempt, resumed from its saved state.
        #[serde(default)]
        resumed_from: usize,
        /// Where it runs ("cpu", "cuda:0").
        device: String,
        /// Training-step implementation, or "command".
        engine: String,
        /// Compute threads.
        threads: usize,
    },
    /// An epoch finished and was evaluated.
    Epoch {
        /// Trial id.
        trial: String,
        /// Epochs planned, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epochs: Option<usize>,
        /// This epoch's row.
        #[serde(flatten)]
        row: EpochMetrics,
    },
    /// The run ended; the same content as its summary.json.
    End {
        /// Trial id.
        trial: String,
        /// Final summary.
        #[serde(flatten)]
        summary: TrialSummary,
    },
}

impl TrialEvent {
    /// The trial the event is about.
    pub fn trial(&self) -> &str {
        match self {
            TrialEvent::Start { trial, .. }
            | TrialEvent::Epoch { trial, .. }
            | TrialEvent::End { trial, .. } => trial,
        }
    }

    /// The event as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }

    /// Parses one line; `None` for lines that are not events (e.g. stray output).
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim()).ok()
    }
}

/// The JSON event stream (see [`TrialEvent`]), one object per line: on stdout for the local
/// executor, or appended to a file for batch jobs, whose stdout nobody reads live (those also
/// get a line per epoch on stderr, for the job's log).
pub struct Events<W: Write> {
    out: W,
    echo: bool,
    trial: String,
}

impl Events<std::io::Stdout> {
    /// Events of trial `trial` on stdout.
    pub fn stdout(trial: &str) -> Self {
        Self {
            out: std::io::stdout(),
            echo: false,
            trial: trial.to_string(),
        }
    }
}

impl Events<std::fs::File> {
    /// Events of trial `trial` appended to `path`, with a line per epoch on stderr. A line
    /// left unterminated by an earlier run of the task (killed mid-write, then requeued) is
    /// moved to `events.torn` first, so no event is appended after a fragment.
    pub fn file(trial: &str, path: &std::path::Path) -> anyhow::Result<Self> {
        let (out, torn) = crate::store::jsonl::open_for_append(path)?;
        if let Some(torn) = torn {
            note!("{}", torn.describe(path));
        }
        Ok(Self {
            out,
            echo: true,
            trial: trial.to_string(),
        })
    }
}

impl<W: Write> Events<W> {
    fn emit(&mut self, event: TrialEvent) {
        // One write of the whole line, so a kill leaves at most an unterminated last line.
        // A closed stdout (the executor went away) must not stop training.
        let line = event.to_line() + "\n";
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

impl<W: Write> Observer for Events<W> {
    fn started(&mut self, epochs: usize, steps_per_epoch: usize, s: &TrialSummary) {
        if self.echo {
            crate::train::progress::Lines.started(epochs, steps_per_epoch, s);
        }
        self.emit(TrialEvent::Start {
            trial: self.trial.clone(),
            epochs: (epochs > 0).then_some(epochs),
            resumed_from: s.epochs_run,
            device: s.device.clone(),
            engine: s.engine.clone(),
            threads: s.threads,
        });
    }

    fn epoch(&mut self, epochs: usize, m: &EpochMetrics, s: &TrialSummary) {
        if self.echo {
            crate::train::progress::Lines.epoch(epochs, m, s);
        }
        self.emit(TrialEvent::Epoch {
            trial: self.trial.clone(),
            epochs: (epochs > 0).then_some(epochs),
            row: m.clone(),
        });
    }

    fn finished(&mut self, s: &TrialSummary) {
        if self.echo {
            crate::train::progress::Lines.finished(s);
        }
        self.emit(TrialEvent::End {
            trial: self.trial.clone(),
            summary: s.clone(),
        });
    }
}

/// The events a task appended to `path` after its first `seen` complete lines: the new events,
/// and how many complete lines the file has now. A line being written (no newline yet) waits
/// for the next read; a complete line that is not an event is skipped with a warning.
pub fn read_appended(path: &Path, seen: usize) -> (Vec<TrialEvent>, usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (Vec::new(), seen);
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut events = Vec::new();
    let mut lines = seen;
    for line in complete.lines().skip(seen) {
        lines += 1;
        match TrialEvent::parse(line) {
            Some(event) => events.push(event),
            // Skipped, never fatal: the trial's own files still tell how it ended.
            None if !line.trim().is_empty() => note!(
                "warning: {}:{lines}: skipped a line that is not an event",
                path.display()
            ),
            None => {}
        }
    }
    (events, lines)
}

// What a Slurm task and its executor share besides the events: the margin before the time
// limit it is told, and the record it leaves when it ends.

/// The environment variable that tells a task how many seconds before its time limit to stop
/// and requeue itself.
pub const REQUEUE_BEFORE: &str = "SWEEP_REQUEUE_BEFORE";

/// The file each task writes into its trial directory when it ends.
pub const TASK_FILE: &str = "slurm-task.json";

/// What a task records about itself (`sweep trial` writes it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    /// `SLURM_ARRAY_JOB_ID`.
    pub job: String,
    /// `SLURM_ARRAY_TASK_ID`.
    pub task: String,
    /// `SLURMD_NODENAME`.
    pub node: String,
    /// `CUDA_VISIBLE_DEVICES` as the task saw it.
    pub cuda_visible_devices: Option<String>,
    /// `SLURM_JOB_GPUS` as the task saw it.
    pub slurm_job_gpus: Option<String>,
    /// The device it trained on.
    pub device: String,
    /// Its exit code.
    pub exit_code: i32,
    /// The run's status.
    pub status: String,
}

impl TaskRecord {
    /// Reads the record a task left in `dir`.
    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(TASK_FILE)).ok()?).ok()
    }

    /// Writes it into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        atomic::write(
            &dir.join(TASK_FILE),
            serde_json::to_string_pretty(self)? + "\n",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::tests::row;
    use crate::trial::{Objective, TrialStatus};

    #[test]
    fn events_round_trip_through_one_json_line_keeping_metric_order() {
        let summary = TrialSummary {
            best_epoch: 1,
            best: row(1, 97.0).metrics,
            epochs_run: 3,
            seconds: 30.0,
            status: TrialStatus::Completed,
            ..TrialSummary::starting(Objective::test_acc(), "cpu", "fused", 1)
        };
        let events = [
            TrialEvent::Start {
                trial: "ab12cd34".into(),
                epochs: Some(3),
                resumed_from: 0,
                device: "cpu".into(),
                engine: "fused".into(),
                threads: 1,
            },
            TrialEvent::Epoch {
                trial: "ab12cd34".into(),
                epochs: Some(3),
                row: row(1, 97.0),
            },
            TrialEvent::End {
                trial: "ab12cd34".into(),
                summary,
            },
        ];
        for e in events {
            let line = e.to_line();
            assert!(!line.contains('\n'));
            assert_eq!(TrialEvent::parse(&line), Some(e));
        }
        let line = TrialEvent::Epoch {
            trial: "t".into(),
            epochs: None,
            row: row(2, 98.0),
        }
        .to_line();
        assert!(
            line.contains(r#""epoch":2,"metrics":{"lr":0.01,"test_loss":"#),
            "{line}"
        );
        assert_eq!(TrialEvent::parse("warning: something"), None);
    }
}
