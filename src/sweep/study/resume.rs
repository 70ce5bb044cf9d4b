//! Resuming a sweep: the journal's plan brought in line with the spec, trials an adaptive
//! sampler asked for rebuilt, the ends of trials that finished while nobody journalled them
//! collected from their directories, and earlier Slurm jobs handed to the executor to follow.

use std::collections::HashMap;

use super::super::plan::{Plan, PlannedTrial};
use super::super::sampler::Adaptive;
use super::super::spec::SweepSpec;
use crate::exec::TrialJob;
use crate::store::journal::{self, Event};
use crate::store::record::{StudyRecord, TrialRecord};
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
    let mut events = match &plan.adaptive {
        Some(tpe) => rebuild_asked(spec, plan, tpe, record, &mut trials, notes),
        None => sync_plan(record, plan, notes),
    };
    let command = plan.command.is_some();
    if let Some(why) = spec_change::refusal(record, &plan.objective, &events, command) {
        if !accept_changes {
            bail!("{}: {why}", dir.root().display());
        }
        notes.push(format!("{} accepted: {why}", spec_change::ACCEPT_FLAG));
    }
    dir.write_spec(spec.source.text())?;
    events.extend(collect_ended(dir, record, |_| true));
    Ok((events, trials))
}

/// The journal events that make the journal's plan the spec's: new trials enter, trials the
/// spec no longer has are retired (their results stay in the journal). `notes` says what
/// changed, for the user.
fn sync_plan(record: &StudyRecord, plan: &Plan, notes: &mut Vec<String>) -> Vec<Event> {
    let mut events = Vec::new();
    let planned: std::collections::HashSet<&str> =
        plan.trials.iter().map(|t| t.id.as_str()).collect();
    let mut added = 0;
    let mut numbers = Numbers::of(record);
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
                def.index = numbers.take(def.index);
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
                "the spec changed every trial id ({}, or a value every trial shares, changed): {added} new trials; the {} earlier trials leave the leaderboard and stay in the journal",
                if plan.command.is_some() { "the command line" } else { "the base configuration" },
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

/// The numbers trials entering the plan take: a plan trial keeps its place in the plan when no
/// journalled trial has that number (a trial whose line was lost to corruption comes back as
/// it was), else it takes one past the largest number so far. Numbers stay unique either way.
struct Numbers {
    taken: std::collections::HashSet<usize>,
    next: usize,
}

impl Numbers {
    fn of(record: &StudyRecord) -> Self {
        let taken: std::collections::HashSet<usize> =
            record.trials.iter().map(|t| t.def.index).collect();
        let next = taken.iter().max().map_or(0, |m| m + 1);
        Self { taken, next }
    }

    fn take(&mut self, wanted: usize) -> usize {
        let n = if self.taken.contains(&wanted) {
            self.next
        } else {
            wanted
        };
        self.taken.insert(n);
        self.next = self.next.max(n + 1);
        n
    }
}

/// Journal events that put back the plan's trials the journal lacks (their lines were lost to
/// corruption and set aside by `sweep repair`), with what their directories show of any run
/// that ended: what joining a sweep made for workers journals, so that no plan trial is lost
/// from the sweep. Trials an adaptive sampler asks for are not in the plan: a lost one is asked
/// again.
pub(crate) fn restore_missing(dir: &SweepDir, plan: &Plan, record: &StudyRecord) -> Vec<Event> {
    let mut numbers = Numbers::of(record);
    let mut events: Vec<Event> = plan
        .trials
        .iter()
        .filter(|t| record.get(&t.id).is_none())
        .map(|t| {
            let mut def = t.def();
            def.index = numbers.take(def.index);
            Event::Trial(def)
        })
        .collect();
    if events.is_empty() {
        return events;
    }
    let mut restored = record.clone();
    let ids: Vec<String> = events
        .iter()
        .map(|e| {
            restored.apply(e);
            match e {
                Event::Trial(def) => def.id.clone(),
                _ => unreachable!("only trial events"),
            }
        })
        .collect();
    events.extend(collect_ended(dir, &restored, |id| {
        ids.iter().any(|i| i == id)
    }));
    events
}

/// The trials an adaptive sampler asked for in earlier runs, resolved again from the values
/// the journal holds (into `trials`), so that unfinished ones can run again; those the spec
/// no longer resolves to the same id (its base changed) are retired.
fn rebuild_asked(
    spec: &SweepSpec,
    plan: &Plan,
    tpe: &Adaptive,
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

/// Journal events for what trials did while nobody journalled it (their orchestrator or
/// worker was killed, or they ran detached on Slurm), from their directories: the epochs
/// `metrics.csv` holds beyond the journal's last, and, for runs that ended, their start when
/// that was lost too and how they ended. Only the trials `wanted` accepts are looked at.
pub(super) fn collect_ended(
    dir: &SweepDir,
    record: &StudyRecord,
    wanted: impl Fn(&str) -> bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    for t in record.active() {
        if t.status.is_final() || !wanted(t.id()) {
            continue;
        }
        let Ok(run) = RunDir::open(&dir.trial_dir(t.id())) else {
            continue;
        };
        let summary = run.read_summary().ok().filter(|s| s.status.is_final());
        // Its start was lost too (killed before that line was whole): where it ran is in its
        // summary, and the leaderboard's device column must not come back empty.
        if let Some(summary) = &summary
            && t.device.is_none()
            && !summary.device.is_empty()
        {
            events.push(Event::Started {
                trial: t.id().to_string(),
                attempt: t.attempts.max(1),
                device: summary.device.clone(),
                cap: None,
            });
        }
        events.extend(unjournalled_epochs(&run, t));
        let Some(summary) = summary else { continue };
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

/// The epochs a trial's `metrics.csv` holds after the last one its journal has: finished by a
/// process killed before it journalled them (a pull worker journals epochs up to 2 s late).
/// Only the tail is taken: a row the journal has is never journalled twice, since an epoch
/// journalled again would replace the epochs after it.
pub(crate) fn unjournalled_epochs(run: &RunDir, t: &TrialRecord) -> Vec<Event> {
    let last = t.last().map_or(0, |r| r.epoch);
    run.read_metrics()
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.epoch > last)
        .map(|row| Event::Epoch {
            trial: t.id().to_string(),
            row,
        })
        .collect()
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
                    Some(TrialJob::new(id, dir.trial_dir(id), t.attempts.max(1)))
                })
                .collect();
            (array, jobs)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;

    #[test]
    fn a_trial_entering_the_plan_keeps_its_place_when_free_else_takes_a_new_unique_number() {
        let mut study = Study::new();
        study.trial("a", &[]).trial("b", &[]).trial("c", &[]);
        let mut record = study.build();
        // Trial b's line was lost: record holds numbers 0 and 2.
        record.trials.retain(|t| t.id() != "b");
        let mut numbers = Numbers::of(&record);
        assert_eq!(numbers.take(1), 1, "b comes back as number 1");
        assert_eq!(numbers.take(2), 3, "2 is c's: the next unused");
        assert_eq!(numbers.take(0), 4);
        assert_eq!(numbers.take(9), 9);
        assert_eq!(numbers.take(5), 5);
        assert_eq!(numbers.take(5), 10);
    }
}
