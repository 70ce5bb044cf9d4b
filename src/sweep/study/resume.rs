//! Resuming a sweep: the journal's plan brought in line with the spec, trials an adaptive
//! sampler asked for rebuilt, the ends of trials that finished while nobody journalled them
//! collected from their directories, and earlier Slurm jobs handed to the executor to follow.

use std::collections::HashMap;

use super::super::plan::{Plan, PlannedTrial};
use super::super::sampler::Tpe;
use super::super::spec::SweepSpec;
use crate::exec::TrialJob;
use crate::store::journal::{self, Event};
use crate::store::record::StudyRecord;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::SweepDir;
use crate::sweep::spec_change;
use crate::text::count;

use anyhow::bail;

/// What a run must journal before it starts anything: the plan synced with the spec (a change
/// that would lose finished work is refused unless `accept_changes`; see
/// [`crate::sweep::spec_change`]), and the ends of trials that finished unjournalled. Returns
/// those events and the planned trials by id; the spec is saved once the change is accepted.
pub(crate) fn catch_up(
    spec: &SweepSpec,
    plan: &Plan,
    dir: &SweepDir,
    record: &StudyRecord,
    accept_changes: bool,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<Event>, HashMap<String, PlannedTrial>)> {
    let mut trials: HashMap<String, PlannedTrial> = plan
        .trials
        .iter()
        .map(|t| (t.id.clone(), t.clone()))
        .collect();
    let mut events = match &plan.tpe {
        Some(tpe) => rebuild_asked(spec, plan, tpe, record, &mut trials, notes),
        None => sync_plan(record, plan, notes),
    };
    if let Some(why) = spec_change::refusal(record, &plan.objective, &events) {
        if !accept_changes {
            bail!("{}: {why}", dir.root().display());
        }
        notes.push(format!("{} accepted: {why}", spec_change::ACCEPT_FLAG));
    }
    dir.write_spec(spec.source.text())?;
    events.extend(collect_ended(dir, record));
    Ok((events, trials))
}

/// The journal events that make the journal's plan the spec's: new trials enter, trials the
/// spec no longer has are retired (their results stay in the journal). `notes` says what
/// changed, for the user.
fn sync_plan(record: &StudyRecord, plan: &Plan, notes: &mut Vec<String>) -> Vec<Event> {
    let mut events = Vec::new();
    let planned: std::collections::HashSet<&str> =
        plan.trials.iter().map(|t| t.id.as_str()).collect();
    let (mut added, mut new) = (0, 0);
    for t in &plan.trials {
        let known = record.get(&t.id);
        if known.is_some_and(|k| k.active && k.def.params == t.params && k.def.label == t.label) {
            continue;
        }
        let mut def = t.def();
        match known {
            Some(k) => {
                def.index = k.def.index;
                added += usize::from(!k.active);
            }
            None => {
                def.index = record.trials.len() + new;
                new += 1;
                added += 1;
            }
        }
        events.push(Event::Trial(def));
    }
    let retired: Vec<String> = record
        .active()
        .filter(|t| !planned.contains(t.id()))
        .map(|t| t.id().to_string())
        .collect();
    if record.trials.is_empty() {
        return events;
    }
    if !retired.is_empty() {
        let kept_any = record.active().any(|t| planned.contains(t.id()));
        notes.push(if kept_any {
            format!(
                "the spec changed: {} added, {} no longer in the spec (they leave the leaderboard; their results stay in the journal)",
                count(added, "trial"),
                retired.len()
            )
        } else {
            format!(
                "the spec changed every trial id (the base configuration, or a value every trial shares, changed): {added} new trials; the {} earlier trials leave the leaderboard and stay in the journal",
                retired.len()
            )
        });
        events.push(Event::Retired {
            trials: retired,
            reason: "no longer in the spec".into(),
        });
    } else if added > 0 {
        notes.push(format!(
            "the spec grew: {} added; finished trials are kept",
            count(added, "trial")
        ));
    }
    events
}

/// The trials an adaptive sampler asked for in earlier runs, resolved again from the values
/// the journal holds (into `trials`), so that unfinished ones can run again; those the spec
/// no longer resolves to the same id (its base changed) are retired.
fn rebuild_asked(
    spec: &SweepSpec,
    plan: &Plan,
    tpe: &Tpe,
    record: &StudyRecord,
    trials: &mut HashMap<String, PlannedTrial>,
    notes: &mut Vec<String>,
) -> Vec<Event> {
    let mut stale = Vec::new();
    for t in record.active() {
        match super::rebuild_asked(spec, plan, tpe, &t.def) {
            Some(p) => {
                trials.insert(p.id.clone(), p);
            }
            None => stale.push(t.id().to_string()),
        }
    }
    if stale.is_empty() {
        return Vec::new();
    }
    notes.push(format!(
        "the spec changed: {} asked for before no longer belong to it (they leave the leaderboard; their results stay in the journal)",
        count(stale.len(), "trial")
    ));
    vec![Event::Retired {
        trials: stale,
        reason: "no longer in the spec".into(),
    }]
}

/// Journal events for trials whose runs ended while no orchestrator journalled them (it was
/// killed, or they ran detached on Slurm): their start when that was lost too, their epochs
/// and how they ended, from their directories.
pub(super) fn collect_ended(dir: &SweepDir, record: &StudyRecord) -> Vec<Event> {
    let mut events = Vec::new();
    for t in record.active() {
        if t.status.is_final() {
            continue;
        }
        let Ok(run) = RunDir::open(&dir.trial_dir(t.id())) else {
            continue;
        };
        let Ok(summary) = run.read_summary() else {
            continue;
        };
        if !summary.status.is_final() {
            continue;
        }
        // Its start was lost too (killed before that line was whole): where it ran is in its
        // summary, and the leaderboard's device column must not come back empty.
        if t.device.is_none() && !summary.device.is_empty() {
            events.push(Event::Started {
                trial: t.id().to_string(),
                attempt: t.attempts.max(1),
                device: summary.device.clone(),
                cap: None,
            });
        }
        for row in run.read_metrics().unwrap_or_default() {
            if !t.epochs.contains(&row) {
                events.push(Event::Epoch {
                    trial: t.id().to_string(),
                    row,
                });
            }
        }
        events.push(Event::Finished {
            trial: t.id().to_string(),
            attempt: t.attempts.max(1),
            status: summary.status,
            message: Some(
                summary
                    .message
                    .clone()
                    .unwrap_or_else(|| "collected from the trial directory".into()),
            ),
            seconds: summary.seconds,
            best: (summary.best_epoch > 0).then(|| summary.best.clone()),
        });
    }
    events
}

/// The trials of earlier Slurm jobs (the last 8 submitted) that have not finished, by array
/// task index, for the Slurm executor to follow if they are still queued or running.
pub(super) fn unfinished_submissions(
    dir: &SweepDir,
    record: &StudyRecord,
) -> anyhow::Result<Vec<(String, Vec<Option<TrialJob>>)>> {
    let entries = journal::read(&dir.journal_file())?.entries;
    Ok(journal::submissions(&entries)
        .into_iter()
        .take(8)
        .map(|(array, trials)| {
            let jobs = trials
                .iter()
                .map(|id| {
                    let t = record.get(id).filter(|t| !t.status.is_final())?;
                    Some(TrialJob {
                        id: id.clone(),
                        dir: dir.trial_dir(id),
                        attempt: t.attempts.max(1),
                        failures: 0,
                        cap: None,
                        pack: None,
                    })
                })
                .collect();
            (array, jobs)
        })
        .collect())
}
