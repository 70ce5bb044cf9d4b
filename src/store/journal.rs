//! `journal.jsonl`: an append-only log of trial state changes, each line flushed and fsynced,
//! so that a killed orchestrator loses nothing that had finished.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where a trial of a sweep stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Trained every epoch.
    Completed,
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
    /// Stopped by Ctrl-C / SIGTERM / scancel.
    Interrupted,
    /// Crashed or exited with an error.
    Failed,
}

impl TrialStatus {
    /// Final statuses are kept when a sweep is resumed; the others run again.
    pub fn is_final(self) -> bool {
        matches!(self, TrialStatus::Completed | TrialStatus::Diverged)
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Completed => "completed",
            TrialStatus::Diverged => "diverged",
            TrialStatus::Running => "running",
            TrialStatus::Pending => "pending",
            TrialStatus::Oom => "oom",
            TrialStatus::Timeout => "timeout",
            TrialStatus::Interrupted => "interrupted",
            TrialStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339 time of the change.
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// An orchestrator started (or resumed) the sweep.
    Sweep {
        /// Trials in the plan.
        trials: usize,
        /// Trials it is about to run.
        pending: usize,
        /// Backend ("local", "slurm").
        backend: String,
        /// Process id of the orchestrator.
        pid: u32,
    },
    /// A trial started.
    Started {
        /// Trial id.
        trial: String,
        /// 1-based attempt.
        attempt: u32,
        /// Device or Slurm job.
        device: String,
    },
    /// A trial ended.
    Finished {
        /// Trial id.
        trial: String,
        /// 1-based attempt.
        attempt: u32,
        /// How it ended.
        status: TrialStatus,
        /// Why, for anything but completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Best test accuracy it reached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best_test_acc: Option<f64>,
        /// Wall time of the attempt.
        seconds: f64,
    },
    /// Trials went to a batch system as one job (Slurm job array).
    Submitted {
        /// The batch system's job id.
        job: String,
        /// The trials, in array-task order.
        trials: Vec<String>,
    },
    /// The orchestrator stopped before every trial ran (Ctrl-C, SIGTERM).
    Stopped {
        /// Why.
        reason: String,
    },
}

/// The journal file, open for appending.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open journal {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one event, flushed and fsynced before returning.
    pub fn append(&mut self, event: Event) -> anyhow::Result<()> {
        let entry = Entry {
            time: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            event,
        };
        let mut line = serde_json::to_string(&entry)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}

/// Reads every entry; a torn last line (the writer was killed mid-write) is skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut entries = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => entries.push(e),
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => anyhow::bail!("{}:{}: corrupt journal line: {e}", path.display(), i + 1),
        }
    }
    Ok(entries)
}

/// Every batch job the journal records, newest first, with its trials.
pub fn submissions(entries: &[Entry]) -> Vec<(String, Vec<String>)> {
    entries
        .iter()
        .rev()
        .filter_map(|e| match &e.event {
            Event::Submitted { job, trials } => Some((job.clone(), trials.clone())),
            _ => None,
        })
        .collect()
}

/// What the journal says of one trial.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrialRecord {
    /// Latest status.
    pub status: Option<TrialStatus>,
    /// Attempts started.
    pub attempts: u32,
    /// Device of the latest attempt.
    pub device: Option<String>,
    /// Message of the latest finish.
    pub message: Option<String>,
}

/// Folds the entries into the latest record per trial.
pub fn replay(entries: &[Entry]) -> HashMap<String, TrialRecord> {
    let mut records: HashMap<String, TrialRecord> = HashMap::new();
    for e in entries {
        match &e.event {
            Event::Started {
                trial,
                attempt,
                device,
            } => {
                let r = records.entry(trial.clone()).or_default();
                r.status = Some(TrialStatus::Running);
                r.attempts = r.attempts.max(*attempt);
                r.device = Some(device.clone());
                r.message = None;
            }
            Event::Finished {
                trial,
                status,
                message,
                ..
            } => {
                let r = records.entry(trial.clone()).or_default();
                r.status = Some(*status);
                r.message = message.clone();
            }
            Event::Sweep { .. } | Event::Submitted { .. } | Event::Stopped { .. } => {}
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keeps_the_latest_state_and_skips_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("sweep-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Event::Started {
            trial: "a".into(),
            attempt: 1,
            device: "cpu".into(),
        })
        .unwrap();
        j.append(Event::Finished {
            trial: "a".into(),
            attempt: 1,
            status: TrialStatus::Failed,
            message: Some("boom".into()),
            best_test_acc: None,
            seconds: 1.0,
        })
        .unwrap();
        j.append(Event::Started {
            trial: "a".into(),
            attempt: 2,
            device: "cpu".into(),
        })
        .unwrap();
        j.append(Event::Started {
            trial: "b".into(),
            attempt: 1,
            device: "cpu".into(),
        })
        .unwrap();
        drop(j);
        // A writer killed mid-line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":\"x\",\"ev")
            .unwrap();
        let records = replay(&read(&path).unwrap());
        assert_eq!(records["a"].status, Some(TrialStatus::Running));
        assert_eq!(records["a"].attempts, 2);
        assert_eq!(records["b"].status, Some(TrialStatus::Running));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
