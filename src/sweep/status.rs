//! `sweep status`: where a sweep stands (trial counts, running trials with their progress,
//! trials that ended without a result, its workers, disk use and the best so far), gathered
//! once as data ([`Status`]) and written as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::leaderboard::{Leaderboard, column_value};
use crate::store::record::StudyRecord;
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::{self, WorkerSettings};
use crate::text::{format_metric, human_duration};
use crate::trial::TrialStatus;

/// Where a sweep stands.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The sweep's name.
    pub name: String,
    /// Its folder.
    pub dir: String,
    /// Trials in the plan.
    pub trials: usize,
    /// Trials no longer in the spec (their results stay in the journal).
    pub retired: usize,
    /// What ranks the trials, in words.
    pub ranked_by: String,
    /// The metric that picks each trial's kept epoch (and that running trials show).
    pub metric: String,
    /// The adaptive sampler and how it chooses, in words, for a sweep that has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// Trials by who proposed them ("startup", "tpe", "gp"), for an adaptive sampler.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proposed: BTreeMap<String, usize>,
    /// "running", "not running", or "none (pull workers)".
    pub orchestrator: String,
    /// Trials in the plan by status.
    pub counts: BTreeMap<TrialStatus, usize>,
    /// Trials running now.
    pub running: Vec<Running>,
    /// Trials that ended without a result, and why.
    pub failed: Vec<Failed>,
    /// The pull workers, for a sweep made for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Workers>,
    /// Bytes on disk: everything, kept checkpoints (and how many), resumable states (and how
    /// many).
    pub disk: crate::store::sweep_dir::DiskUsage,
    /// The trial `best/` holds.
    pub best: Option<Best>,
    /// Why there is no best, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_best: Option<String>,
}

/// A running trial.
#[derive(Debug, Serialize)]
pub struct Running {
    pub trial: String,
    pub device: Option<String>,
    pub attempt: u32,
    /// Its last reported epoch, and the sweep's metric there.
    pub epoch: Option<usize>,
    pub value: Option<f64>,
}

/// A trial that ended without a result.
#[derive(Debug, Serialize)]
pub struct Failed {
    pub trial: String,
    pub status: TrialStatus,
    pub message: Option<String>,
}

/// The workers of a sweep made for them.
#[derive(Debug, Serialize)]
pub struct Workers {
    pub lease_seconds: f64,
    pub heartbeat_seconds: f64,
    /// Trials at a time in all.
    pub parallelism: usize,
    pub leases: Vec<Worker>,
}

/// One worker, by its lease.
#[derive(Debug, Serialize)]
pub struct Worker {
    pub host: String,
    pub pid: u32,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_seconds: f64,
    /// Its lease expired: its trials go to other workers.
    pub gone: bool,
    /// The trials the journal says it runs.
    pub running: Vec<String>,
}

/// The best trial so far.
#[derive(Debug, Serialize)]
pub struct Best {
    pub trial: String,
    /// The values that rank it, in words (`val_acc 98.5, train_seconds 120`).
    pub values: String,
    pub epoch: usize,
    /// Its searched values, `key=value`.
    pub params: Vec<String>,
    pub seconds: f64,
    /// How `best/` is chosen, in words.
    pub rule: String,
}

/// Gathers the status of the sweep in `dir` (safe while it runs).
pub fn gather(dir: &SweepDir) -> anyhow::Result<Status> {
    let settings = WorkerSettings::read(dir)?;
    let orchestrator = dir.is_locked();
    // Workers mark the trials of workers gone as stale themselves: the journal stands as is.
    let record = dir.load_record(orchestrator || settings.is_some())?;
    let board = Leaderboard::build(&record);
    let mut counts = BTreeMap::new();
    for t in record.active() {
        *counts.entry(t.status).or_default() += 1;
    }
    let running = record
        .active()
        .filter(|t| t.status == TrialStatus::Running)
        .map(|t| Running {
            trial: t.id().to_string(),
            device: t.device.clone(),
            attempt: t.attempts,
            epoch: t.last().map(|r| r.epoch),
            value: t.last().and_then(|r| record.objective.value(&r.metrics)),
        })
        .collect();
    let failed = record
        .active()
        .filter(|t| t.status.is_failure())
        .map(|t| Failed {
            trial: t.id().to_string(),
            status: t.status,
            message: t.message.clone(),
        })
        .collect();
    let best = board.best().map(|b| {
        let t = record
            .get(&b.trial)
            .expect("the leaderboard lists known trials");
        Best {
            trial: b.trial.clone(),
            values: board.describe_values(b),
            epoch: b.best_epoch.unwrap_or(0),
            params: record
                .columns
                .iter()
                .map(|c| (c, column_value(t, c)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(c, v)| format!("{c}={v}"))
                .collect(),
            seconds: b.seconds.unwrap_or(0.0),
            rule: board.best_rule(),
        }
    });
    let mut proposed = BTreeMap::new();
    for t in record.active() {
        if let Some(by) = &t.def.sampler {
            *proposed.entry(by.clone()).or_default() += 1;
        }
    }
    Ok(Status {
        sampler: record.sampler.clone(),
        proposed,
        name: record.name.clone(),
        dir: dir.root().display().to_string(),
        trials: record.active().count(),
        retired: record.trials.len() - record.active().count(),
        ranked_by: crate::objectives::ranking(
            &record.objective,
            record.objectives.as_ref(),
            &record.constraints,
        ),
        metric: record.objective.metric.clone(),
        orchestrator: match (&settings, orchestrator) {
            (Some(_), _) => "none (pull workers)",
            (None, true) => "running",
            (None, false) => "not running",
        }
        .into(),
        counts,
        running,
        failed,
        workers: settings.map(|s| workers_of(dir, &s, &record)),
        disk: dir.disk_usage(),
        no_best: board.why_no_best(),
        best,
    })
}

/// The workers of a sweep, by their leases (a trial another worker took up or finished is not
/// listed under a worker that is gone).
fn workers_of(dir: &SweepDir, settings: &WorkerSettings, record: &StudyRecord) -> Workers {
    let leases = workers::leases(dir)
        .into_iter()
        .map(|l| Worker {
            running: l
                .trials
                .iter()
                .filter(|id| {
                    record.get(id).is_some_and(|t| {
                        t.status == TrialStatus::Running && t.worker.as_deref() == Some(&l.worker)
                    })
                })
                .cloned()
                .collect(),
            heartbeat_age_seconds: l.age().as_secs_f64(),
            gone: l.age() > settings.lease(),
            host: l.host,
            pid: l.pid,
        })
        .collect();
    Workers {
        lease_seconds: settings.lease_seconds,
        heartbeat_seconds: settings.heartbeat_seconds,
        parallelism: settings.parallelism,
        leases,
    }
}

impl Status {
    /// The status as text, for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out).expect("writing to a String");
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "sweep {} ({}): {}{}, ranked by {}, orchestrator {}",
            self.name,
            self.dir,
            crate::text::count(self.trials, "trial"),
            if self.retired > 0 {
                format!(" ({} more no longer in the spec)", self.retired)
            } else {
                String::new()
            },
            self.ranked_by,
            self.orchestrator
        )?;
        if let Some(sampler) = &self.sampler {
            let so_far: Vec<String> = self
                .proposed
                .iter()
                .map(|(by, n)| format!("{n} {by}"))
                .collect();
            writeln!(
                out,
                "  sampler {sampler}{}",
                if so_far.is_empty() {
                    String::new()
                } else {
                    format!(" (so far: {})", so_far.join(", "))
                }
            )?;
        }
        if let Some(w) = &self.workers {
            let live = w.leases.iter().filter(|l| !l.gone).count();
            writeln!(
                out,
                "  workers: {live} live, {} gone (lease {}, heartbeat {}; {} trials at a time in all)",
                w.leases.len() - live,
                human_duration(w.lease_seconds),
                human_duration(w.heartbeat_seconds),
                w.parallelism
            )?;
            for l in &w.leases {
                writeln!(
                    out,
                    "    {} pid {}: last heartbeat {} ago{}, {}",
                    l.host,
                    l.pid,
                    human_duration(l.heartbeat_age_seconds),
                    if l.gone {
                        " (lease expired: its trials go to other workers)"
                    } else {
                        ""
                    },
                    if l.running.is_empty() {
                        "idle".to_string()
                    } else {
                        format!("running {}", l.running.join(", "))
                    }
                )?;
            }
        }
        let line: Vec<String> = self
            .counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        writeln!(out, "  {}", line.join(", "))?;
        let metric = &self.metric;
        for r in &self.running {
            let progress = r.epoch.map_or("starting".to_string(), |e| {
                format!(
                    "epoch {e} {metric} {}",
                    r.value.map_or("-".into(), format_metric)
                )
            });
            writeln!(
                out,
                "  running {} on {} (attempt {}): {progress}",
                r.trial,
                r.device.as_deref().unwrap_or("?"),
                r.attempt
            )?;
        }
        for f in &self.failed {
            writeln!(
                out,
                "  {} {}: {}",
                f.status,
                f.trial,
                f.message.as_deref().unwrap_or("")
            )?;
        }
        let disk = &self.disk;
        let mb = |b: u64| b as f64 / 1e6;
        writeln!(
            out,
            "  disk: {:.1} MB ({:.1} MB in {} kept checkpoints, {:.1} MB in {} resumable states)",
            mb(disk.total),
            mb(disk.checkpoints),
            disk.checkpoint_files,
            mb(disk.states),
            disk.state_files
        )?;
        match (&self.best, &self.no_best) {
            (Some(b), _) => writeln!(
                out,
                "  best: {} {} at epoch {} ({}) in {}, by {}",
                b.trial,
                b.values,
                b.epoch,
                b.params.join(" "),
                human_duration(b.seconds),
                b.rule
            ),
            (None, Some(why)) => writeln!(out, "  best: none ({why})"),
            (None, None) => Ok(()),
        }
    }
}
