//! `sweep status`: where a sweep stands, as text: trial counts, running trials with their
//! progress, trials that ended without a result, and the best so far.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::leaderboard::{Leaderboard, column_value};
use crate::store::record::StudyRecord;
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::{self, WorkerSettings};
use crate::text::format_metric;
use crate::text::human_duration;
use crate::trial::TrialStatus;

/// The workers of a sweep: who, where, their last heartbeat, what they run (by the journal: a
/// trial another worker took up or finished is not listed under a worker that is gone).
fn write_workers(
    out: &mut String,
    dir: &SweepDir,
    settings: &WorkerSettings,
    record: &StudyRecord,
) -> std::fmt::Result {
    let leases = workers::leases(dir);
    let live = leases
        .iter()
        .filter(|l| l.age() <= settings.lease())
        .count();
    writeln!(
        out,
        "  workers: {live} live, {} gone (lease {}, heartbeat {}; {} trials at a time in all)",
        leases.len() - live,
        human_duration(settings.lease_seconds),
        human_duration(settings.heartbeat_seconds),
        settings.parallelism
    )?;
    for l in &leases {
        let expired = if l.age() > settings.lease() {
            " (lease expired: its trials go to other workers)"
        } else {
            ""
        };
        let trials: Vec<&String> = l
            .trials
            .iter()
            .filter(|id| {
                record.get(id).is_some_and(|t| {
                    t.status == TrialStatus::Running && t.worker.as_deref() == Some(&l.worker)
                })
            })
            .collect();
        writeln!(
            out,
            "    {} pid {}: last heartbeat {} ago{expired}, {}",
            l.host,
            l.pid,
            human_duration(l.age().as_secs_f64()),
            if trials.is_empty() {
                "idle".to_string()
            } else {
                format!(
                    "running {}",
                    trials
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )?;
    }
    Ok(())
}

/// The status report of the sweep in `dir` (safe while it runs).
pub fn report(dir: &SweepDir) -> anyhow::Result<String> {
    let workers = WorkerSettings::read(dir)?;
    let orchestrator = dir.is_locked();
    // Workers mark the trials of workers gone as stale themselves: the journal stands as is.
    let record = dir.load_record(orchestrator || workers.is_some())?;
    let board = Leaderboard::build(&record);
    let mut out = String::new();
    let retired = record.trials.len() - record.active().count();
    writeln!(
        out,
        "sweep {} ({}): {}{}, ranked by {}, orchestrator {}",
        record.name,
        dir.root().display(),
        crate::text::count(record.active().count(), "trial"),
        if retired > 0 {
            format!(" ({retired} more no longer in the spec)")
        } else {
            String::new()
        },
        crate::objectives::ranking(&record.objective, record.objectives.as_ref()),
        match (&workers, orchestrator) {
            (Some(_), _) => "none (pull workers)",
            (None, true) => "running",
            (None, false) => "not running",
        }
    )?;
    if let Some(settings) = &workers {
        write_workers(&mut out, dir, settings, &record)?;
    }
    let mut counts: BTreeMap<TrialStatus, usize> = BTreeMap::new();
    for t in record.active() {
        *counts.entry(t.status).or_default() += 1;
    }
    let line: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    writeln!(out, "  {}", line.join(", "))?;
    let metric = &record.objective.metric;
    for t in record.active() {
        match t.status {
            TrialStatus::Running => {
                let progress = t.last().map_or("starting".to_string(), |r| {
                    let value = record
                        .objective
                        .value(&r.metrics)
                        .map_or("-".into(), format_metric);
                    format!("epoch {} {metric} {value}", r.epoch)
                });
                writeln!(
                    out,
                    "  running {} on {} (attempt {}): {progress}",
                    t.id(),
                    t.device.as_deref().unwrap_or("?"),
                    t.attempts
                )?;
            }
            s if s.is_failure() => {
                writeln!(
                    out,
                    "  {s} {}: {}",
                    t.id(),
                    t.message.as_deref().unwrap_or("")
                )?;
            }
            _ => {}
        }
    }
    let disk = dir.disk_usage();
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
    if let Some(best) = board.best() {
        let t = record
            .get(&best.trial)
            .expect("the leaderboard lists known trials");
        let cells: Vec<String> = record
            .columns
            .iter()
            .map(|c| (c, column_value(t, c)))
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        writeln!(
            out,
            "  best: {} {} at epoch {} ({}) in {}, by {}",
            best.trial,
            board.describe_values(best),
            best.best_epoch.unwrap_or(0),
            cells.join(" "),
            human_duration(best.seconds.unwrap_or(0.0)),
            board.best_rule()
        )?;
    } else if let Some(why) = board.why_no_best() {
        writeln!(out, "  best: none ({why})")?;
    }
    Ok(out)
}
