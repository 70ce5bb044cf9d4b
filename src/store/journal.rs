//! `journal.jsonl`: the append-only record of a study. Every trial enters it before it first
//! starts (`trial`), and every change after that is a line: started, each epoch's metrics, a
//! pruning decision, finished. State changes are fsynced before the orchestrator acts on them,
//! so a killed orchestrator loses nothing that had finished, and replaying the journal
//! (into a study record) gives back exactly the state it had.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::trial::{EpochMetrics, Metrics, Objective, TrialStatus};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339 time of the change.
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A trial as the plan defines it: what it is called and which values it searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialDef {
    /// Position in the plan (0-based), in the order trials were asked for.
    pub index: usize,
    /// Short stable hash of the resolved configuration.
    pub id: String,
    /// Hash of the configuration without its seed: repeats of one configuration share it.
    pub group: String,
    /// A human name (list trials may give one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The value of every column of the plan (searched keys and the seed).
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// An orchestrator started (or resumed) the sweep.
    Sweep {
        /// The sweep's name.
        name: String,
        /// What ranks the trials.
        objective: Objective,
        /// Seeds per configuration.
        repeats: usize,
        /// The plan's columns: searched keys (and `label`, `seed`).
        columns: Vec<String>,
        /// Trials in the plan (the budget, for an adaptive sampler).
        trials: usize,
        /// Trials it is about to run.
        pending: usize,
        /// Backend ("local", "slurm").
        backend: String,
        /// Process id of the orchestrator.
        pid: u32,
        /// The pruner and its settings, if the sweep has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pruner: Option<String>,
    },
    /// A trial entered the plan.
    Trial(TrialDef),
    /// Trials left the plan (the spec changed); their results stay in this journal.
    Retired {
        /// Their ids.
        trials: Vec<String>,
        /// Why.
        reason: String,
    },
    /// An attempt started.
    Started {
        /// Trial id.
        trial: String,
        /// 1-based attempt.
        attempt: u32,
        /// Device or Slurm task.
        device: String,
        /// Most trials that may share its device, itself included.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<usize>,
    },
    /// An epoch finished and was evaluated.
    Epoch {
        /// Trial id.
        trial: String,
        /// Its row.
        #[serde(flatten)]
        row: EpochMetrics,
    },
    /// An attempt ended.
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
        /// Wall time of the attempt.
        seconds: f64,
        /// Everything measured at its best epoch, as the trial reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best: Option<Metrics>,
    },
    /// Trials went to a batch system as one job (a Slurm job array).
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
    /// The pruner judged a trial at a decision point.
    Decision(Decision),
}

/// A pruner's judgement of one trial at one epoch: whether it goes on, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Trial id.
    pub trial: String,
    /// The epoch it had reported.
    pub epoch: usize,
    /// "median" or "asha".
    pub pruner: String,
    /// The value judged: the best so far (median) or the value at the rung (ASHA).
    pub value: f64,
    /// ASHA's rung (an epoch), for ASHA decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<usize>,
    /// The bar it was held against (the median, or the rung's cutoff); None when no other
    /// trial had reached this point yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// How many other trials the bar comes from.
    pub of: usize,
    /// Stop the trial.
    pub stop: bool,
    /// The decision in words.
    pub reason: String,
}

impl Event {
    /// Events worth an fsync before the orchestrator goes on. Not per-epoch metrics (the trial
    /// directory holds them too) nor the start of an attempt (a trial whose start is lost
    /// runs again, as an interrupted one would).
    fn durable(&self) -> bool {
        match self {
            Event::Epoch { .. } | Event::Started { .. } => false,
            // A decision to go on changes nothing yet; a stop is acted upon.
            Event::Decision(d) => d.stop,
            _ => true,
        }
    }
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

    /// Appends events as one write; fsynced before returning when any is durable.
    pub fn append(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let mut text = String::new();
        for event in events {
            let entry = Entry {
                time: time.clone(),
                event: event.clone(),
            };
            text.push_str(&serde_json::to_string(&entry)?);
            text.push('\n');
        }
        let durable = events.iter().any(Event::durable);
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            })
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
            Err(e) => anyhow::bail!(
                "{}:{}: corrupt journal line ({e}); a journal written by an older sweep must be \
                 run again under a new name",
                path.display(),
                i + 1
            ),
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
