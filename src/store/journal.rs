//! `journal.jsonl`: the append-only record of a study. Every trial enters it before it first
//! starts (`trial`), and every change after that is a line: started, each epoch's metrics, a
//! pruning decision, finished. State changes are fsynced before the orchestrator acts on them,
//! so a killed orchestrator loses nothing that had finished, and replaying the journal
//! (into a study record) gives back exactly the state it had.
//!
//! Durability policy: every append is one `write` of whole lines. Lines that would lose work
//! if lost (a trial entering the plan, an attempt's end, a stop decision, a submission, the
//! sweep's own start and stop) are flushed to the device (`fdatasync`) before the
//! orchestrator acts on them; per-epoch metrics and attempt starts are not, since the trial's
//! directory holds them too and a lost start only means the attempt counts as interrupted.
//! A torn last line (a crash mid-write) is moved to `journal.torn` before the next append
//! (see [`super::jsonl`]); readers skip a corrupt line with a warning, and writers refuse a
//! journal with one until `sweep repair` has run. Pull workers append through
//! [`super::shared_journal`], each append under the sweep's shared lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::atomic;
use super::jsonl::{self, BadLine, TornTail};

use crate::objectives::{Bound, Objectives};
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
    /// Who proposed it, for a trial an adaptive sampler asked for: "startup", "tpe" or "gp".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
}

/// The journal format this build writes. Journals without a `format` first line were written
/// before it was recorded and are read as format 1, whose records are the same.
pub const FORMAT: u32 = 2;

/// The oldest journal format this build can read.
const OLDEST_READABLE: u32 = 1;

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// The first line of a journal: which format it is written in, and by what.
    Format {
        /// The journal format ([`FORMAT`]).
        version: u32,
        /// The program that created the journal, e.g. `sweep 0.1.0`.
        written_by: String,
    },
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
        /// The adaptive sampler and how it chooses, in words, if the sweep has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sampler: Option<String>,
        /// Several objectives, with constraints and the selection rule (then `objective` is
        /// the one that picks each trial's kept epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        objectives: Option<Objectives>,
        /// With one objective: what a feasible trial meets.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        constraints: Vec<Bound>,
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
    /// The orchestrator stopped before every trial ran (Ctrl-C, SIGTERM), or a worker halted
    /// the sweep (`max_failures`); pull workers take no trial after one until the sweep is
    /// started again.
    Stopped {
        /// Why.
        reason: String,
    },
    /// The pruner judged a trial at a decision point.
    Decision(Decision),
    /// A trial ASHA had paused at a rung goes on (`[prune] pause = true`).
    Promoted {
        /// Trial id.
        trial: String,
        /// The rung (an epoch) it had paused at.
        rung: usize,
        /// Why, in words.
        reason: String,
    },
    /// A pull worker took a trial to run: it holds it while its lease lives.
    Claimed {
        /// Trial id.
        trial: String,
        /// 1-based attempt it starts.
        attempt: u32,
        /// The worker (`host-pid`).
        worker: String,
    },
    /// A trial's worker stopped renewing its lease; another worker may take it up.
    Stale {
        /// Trial id.
        trial: String,
        /// The worker that held it.
        worker: String,
        /// Why, in words.
        reason: String,
    },
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
    /// Opens (creating if needed) the journal at `path` for appending. A torn last line is
    /// moved aside first (returned, for the caller to say so); a journal with a corrupt line
    /// elsewhere is refused until `sweep repair` has run, so that nothing is appended to it.
    pub fn open(path: &Path) -> anyhow::Result<(Self, Option<TornTail>)> {
        let contents = read(path)?;
        if let Some(bad) = contents.corrupt().next() {
            return Err(refuse_corrupt(path, bad.line, &bad.error));
        }
        let (file, torn) = jsonl::open_for_append(path)?;
        let mut journal = Self {
            path: path.to_path_buf(),
            file,
        };
        if contents.entries.is_empty() && file_len(path)? == 0 {
            journal.append(&[Event::Format {
                version: FORMAT,
                written_by: format!("sweep {}", env!("CARGO_PKG_VERSION")),
            }])?;
        }
        Ok((journal, torn))
    }

    /// Appends events as one write; flushed to the device before returning when any is
    /// durable.
    pub fn append(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let text = lines(events)?;
        let durable = events.iter().any(Event::durable);
        jsonl::append(&mut self.file, &text)
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

/// The refusal of every writer (`sweep run`, a worker, a joining run) to append to a journal
/// with a corrupt line at `line`: nothing is written after it until `sweep repair` has set it
/// aside, so that no trial's record is silently lost from the sweep.
pub fn refuse_corrupt(path: &Path, line: usize, error: &str) -> anyhow::Error {
    let dir = path.parent().unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "{}:{line}: corrupt journal line ({error}); sweep will not append to a journal with a \
         corrupt line. Run `sweep repair {}` first: it keeps a backup, sets the bad lines aside \
         and says what it dropped; the next `sweep run` or `sweep worker` puts back the trials \
         they held",
        path.display(),
        dir.display()
    )
}

/// The journal lines of `events`, stamped with the time now.
pub fn lines(events: &[Event]) -> anyhow::Result<String> {
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
    Ok(text)
}

/// True when any of `events` must reach the device before its writer acts on it.
pub fn any_durable(events: &[Event]) -> bool {
    events.iter().any(Event::durable)
}

fn file_len(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len())
}

/// A journal as read back: its entries in order, and the lines that could not be read.
#[derive(Debug)]
pub struct Contents {
    /// Every entry that parsed.
    pub entries: Vec<Entry>,
    /// Lines that did not (a torn last line among them, marked as such).
    pub bad: Vec<BadLine>,
    /// The journal's format ([`FORMAT`]; 1 for journals without a format line).
    pub format: u32,
}

impl Contents {
    /// Corrupt lines: bad lines other than a torn last one.
    pub fn corrupt(&self) -> impl Iterator<Item = &BadLine> {
        self.bad.iter().filter(|b| !b.torn)
    }
}

/// Reads a journal (an absent one is empty). Lines that do not parse are returned apart, never
/// an error: one bad line does not make a sweep unreadable. A journal in a format this build
/// cannot read is an error that names the format.
pub fn read(path: &Path) -> anyhow::Result<Contents> {
    let lines = jsonl::read::<Entry>(path)?;
    let format = match lines.records.first() {
        Some((
            _,
            Entry {
                event: Event::Format { version, .. },
                ..
            },
        )) => *version,
        _ => 1,
    };
    if format > FORMAT {
        bail!(
            "{} is a journal of format {format}, written by a newer sweep; this sweep ({}) reads \
             formats {OLDEST_READABLE} to {FORMAT}: upgrade sweep to read it",
            path.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
    if format < OLDEST_READABLE {
        bail!(
            "{} is a journal of format {format}, written by an older sweep that this one ({}) \
             cannot read; run the sweep again under a new name",
            path.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(Contents {
        entries: lines.records.into_iter().map(|(_, e)| e).collect(),
        bad: lines.bad,
        format,
    })
}

/// What [`repair`] did.
#[derive(Debug)]
pub struct Repair {
    /// The journal as it was before.
    pub backup: PathBuf,
    /// Where the dropped lines were set aside.
    pub quarantine: PathBuf,
    /// The lines dropped.
    pub dropped: Vec<BadLine>,
    /// Records kept.
    pub kept: usize,
}

/// Rewrites the journal at `path` without the lines that do not parse: the old journal is
/// copied to a backup first, the dropped lines are appended to `journal.quarantine` with
/// their line numbers, and the new journal replaces the old one atomically. A journal with
/// nothing to drop is left alone (`dropped` is empty).
pub fn repair(path: &Path) -> anyhow::Result<Repair> {
    let contents = read(path)?;
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let backup = path.with_extension(format!("jsonl.bak-{stamp}"));
    let quarantine = path.with_extension("quarantine");
    let kept = contents.entries.len();
    if contents.bad.is_empty() {
        return Ok(Repair {
            backup,
            quarantine,
            dropped: Vec::new(),
            kept,
        });
    }
    std::fs::copy(path, &backup)
        .with_context(|| format!("cannot back {} up to {}", path.display(), backup.display()))?;
    let mut set_aside = std::fs::read_to_string(&quarantine).unwrap_or_default();
    for bad in &contents.bad {
        set_aside.push_str(&format!(
            "# {stamp}: line {} of {} ({})\n{}\n",
            bad.line,
            path.display(),
            if bad.torn { "torn" } else { &bad.error },
            bad.text
        ));
    }
    atomic::write(&quarantine, set_aside)?;
    let mut text = String::new();
    for entry in &contents.entries {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    atomic::write(path, text)?;
    Ok(Repair {
        backup,
        quarantine,
        dropped: contents.bad,
        kept,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sweep-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("journal.jsonl")
    }

    fn stopped(reason: &str) -> Event {
        Event::Stopped {
            reason: reason.into(),
        }
    }

    #[test]
    fn a_new_journal_starts_with_its_format_and_reads_back_in_order() {
        let path = scratch("order");
        let (mut j, torn) = Journal::open(&path).unwrap();
        assert_eq!(torn, None);
        j.append(&[stopped("a"), stopped("b")]).unwrap();
        drop(j);
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&[stopped("c")]).unwrap();
        let c = read(&path).unwrap();
        assert_eq!(c.format, FORMAT);
        assert!(c.bad.is_empty());
        let events: Vec<&Event> = c.entries.iter().map(|e| &e.event).collect();
        assert!(matches!(events[0], Event::Format { version, .. } if *version == FORMAT));
        assert_eq!(events[1..], [&stopped("a"), &stopped("b"), &stopped("c")]);
    }

    #[test]
    fn a_corrupt_line_is_skipped_by_readers_refused_by_writers_and_repaired() {
        let path = scratch("repair");
        let (mut j, _) = Journal::open(&path).unwrap();
        j.append(&[stopped("a")]).unwrap();
        drop(j);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"time\": 3, garbage\n");
        std::fs::write(&path, &text).unwrap();
        // A whole record after the bad line puts it in the middle.
        let record = text.lines().nth(1).unwrap().to_string();
        text.push_str(&record);
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let c = read(&path).unwrap();
        assert_eq!(c.entries.len(), 3, "format, a, and a again");
        assert_eq!(c.corrupt().map(|b| b.line).collect::<Vec<_>>(), [3]);
        let refused = Journal::open(&path).err().unwrap().to_string();
        assert!(
            refused.contains("journal.jsonl:3") && refused.contains("sweep repair"),
            "{refused}"
        );
        let r = repair(&path).unwrap();
        assert_eq!((r.kept, r.dropped.len()), (3, 1));
        assert!(r.backup.is_file() && r.quarantine.is_file());
        assert!(read(&path).unwrap().bad.is_empty());
        assert!(Journal::open(&path).is_ok());
        assert!(
            repair(&path).unwrap().dropped.is_empty(),
            "nothing left to repair"
        );
    }

    #[test]
    fn a_journal_of_a_newer_format_is_refused_by_name() {
        let path = scratch("newer");
        std::fs::write(
            &path,
            "{\"time\":\"t\",\"event\":\"format\",\"version\":99,\"written_by\":\"sweep 9\"}\n",
        )
        .unwrap();
        let e = read(&path).err().unwrap().to_string();
        assert!(e.contains("format 99") && e.contains("newer"), "{e}");
    }
}
