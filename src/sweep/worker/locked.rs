//! What a worker does under the sweep's lock: journal the events that waited for it, mark the
//! trials of gone workers stale, and take the next trial; and the checks behind them (who
//! holds a trial, which attempt ends tell a failure that recurs).

use std::time::Instant;

use anyhow::Context;

use super::claim::{Chooser, Claim, expired};
use crate::exec::{TrialJob, TrialOutcome};
use crate::store::journal::Event;
use crate::store::record::StudyRecord;
use crate::store::run_dir::RunDir;
use crate::store::shared_journal::{AttemptEnd, Locked, SharedJournal};
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::{self, Lease, WorkerSettings};
use crate::sweep::engine::Next;
use crate::sweep::plan::{Plan, PlannedTrial};
use crate::sweep::sampler::Adaptive;
use crate::sweep::spec::SweepSpec;
use crate::sweep::study::retry::{Ended, Failures, param_values};
use crate::sweep::study::{rebuild_asked, unjournalled_epochs};
use crate::text::count;
use crate::trial::TrialStatus;

/// Takes the lock and journals the events that were waiting for it, but for trials `worker`
/// no longer holds (another worker took them up).
pub(super) fn lock_and_flush<'j>(
    journal: &'j mut SharedJournal,
    buffered: &mut Vec<(Instant, Event)>,
    worker: &str,
) -> anyhow::Result<Locked<'j>> {
    let mut held = journal.lock()?;
    let events: Vec<Event> = buffered
        .drain(..)
        .map(|(_, e)| e)
        .filter(|e| match e {
            Event::Started { trial, .. } | Event::Epoch { trial, .. } => {
                holds(held.record(), trial, worker)
            }
            _ => true,
        })
        .collect();
    held.append(&events)?;
    Ok(held)
}

/// What [`decide`] took: an attempt, claimed in the journal, and the trial it runs.
pub(super) type Decided = Next<(TrialJob, Box<PlannedTrial>)>;

/// What a worker reads of the folder besides the journal: the leases and the sweep's spec hash.
/// Read again at most every heartbeat, and always before a trial is called stale.
pub(super) struct Looked {
    at: Instant,
    leases: Vec<Lease>,
    spec_sha256: Option<String>,
}

impl Looked {
    fn now(dir: &SweepDir) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            leases: workers::leases(dir),
            spec_sha256: WorkerSettings::read(dir)?.map(|s| s.spec_sha256),
        })
    }
}

/// Under the lock: journals the trials of gone workers as stale, picks the next attempt by the
/// chooser's rules and journals its claim. Returns it, with lines worth saying. `seen` keeps
/// what was last read of the leases and settings (each file read is a round trip on NFS).
pub(super) fn decide(
    held: &mut Locked,
    chooser: &Chooser,
    settings: &WorkerSettings,
    mine: &[&str],
    seen: &mut Option<Looked>,
) -> anyhow::Result<(Decided, Vec<String>)> {
    let mut notes = Vec::new();
    let dir = chooser.dir;
    let recent = seen
        .as_ref()
        .is_some_and(|s| s.at.elapsed() < settings.heartbeat());
    if !recent {
        *seen = Some(Looked::now(dir)?);
    }
    let looked = seen.as_ref().expect("just read");
    if looked.spec_sha256.as_deref() != Some(settings.spec_sha256.as_str()) {
        let why = "the sweep's spec changed (sweep run --workers-only); start the worker again to \
                   run the new one";
        return Ok((Next::Done(Some(why.into())), notes));
    }
    // A trial under no worker is the orphan of a killed `sweep run`, unless one runs now.
    let orphans = held
        .record()
        .active()
        .any(|t| t.status == TrialStatus::Running && t.worker.is_none());
    let orchestrator = orphans && dir.is_locked();
    let stale_now = |leases: &[Lease], held: &Locked| {
        expired(
            held.record(),
            leases,
            settings.lease(),
            (chooser.worker, mine),
            orchestrator,
            &|id| held.claim_age(id),
        )
    };
    let mut stale = stale_now(&looked.leases, held);
    if !stale.is_empty() && recent {
        // Called stale on leases read earlier: read them again before acting on it.
        *seen = Some(Looked::now(dir)?);
        stale = stale_now(&seen.as_ref().expect("just read").leases, held);
    }
    for e in &stale {
        if let Event::Stale { trial, reason, .. } = e {
            notes.push(format!("{trial} is stale: {reason}"));
        }
    }
    held.append(&stale)?;
    let Claim {
        job,
        mut events,
        asked,
    } = match chooser.next(held.record()) {
        Next::Run(claim) => claim,
        Next::Wait => return Ok((Next::Wait, notes)),
        Next::Done(why) => return Ok((Next::Done(why), notes)),
    };
    // A trial taken up from a killed worker may have finished epochs that worker had not
    // journalled yet (it buffers them): they are journalled from its metrics.csv first.
    if let Some(t) = held.record().get(&job.id)
        && let Ok(run) = RunDir::open(&job.dir)
    {
        let lost = unjournalled_epochs(&run, t);
        if !lost.is_empty() {
            notes.push(format!(
                "{}: journalled {} its last worker finished but had not journalled",
                job.id,
                count(lost.len(), "epoch")
            ));
        }
        events.splice(0..0, lost);
    }
    held.append(&events)?;
    let planned = match asked {
        Some(p) => p,
        None => Box::new(
            resolve(
                chooser.spec,
                chooser.plan,
                chooser.adaptive,
                held.record(),
                &job.id,
            )
            .with_context(|| format!("trial {} is in the journal but not in the plan", job.id))?,
        ),
    };
    if events.iter().any(|e| matches!(e, Event::Promoted { .. })) {
        notes.push(format!("promoting {} (attempt {})", job.id, job.attempt));
    } else if job.attempt > 1 {
        notes.push(format!(
            "taking up {} (attempt {}) from its last finished epoch",
            job.id, job.attempt
        ));
    }
    Ok((Next::Run((job, planned)), notes))
}

/// Feeds attempt ends read from the journal (every worker's) to `failures`.
pub(super) fn absorb_ends(failures: &mut Failures, ends: Vec<AttemptEnd>, record: &StudyRecord) {
    for end in ends {
        let values = param_values(record, &end.trial);
        let outcome = TrialOutcome {
            status: end.status,
            message: end.message,
            best: None,
            seconds: 0.0,
        };
        failures.record(
            Ended {
                id: &end.trial,
                values: &values,
            },
            &outcome,
        );
    }
}

/// True when the journal says `worker` holds `trial` (claimed it last, and it runs).
pub(super) fn holds(record: &StudyRecord, trial: &str, worker: &str) -> bool {
    record
        .get(trial)
        .is_some_and(|t| t.status == TrialStatus::Running && t.worker.as_deref() == Some(worker))
}

/// The planned trial behind a journalled one: from the plan, or (asked by TPE) resolved again
/// from its values.
fn resolve(
    spec: &SweepSpec,
    plan: &Plan,
    adaptive: Option<&Adaptive>,
    record: &StudyRecord,
    id: &str,
) -> Option<PlannedTrial> {
    if let Some(p) = plan.trials.iter().find(|t| t.id == id) {
        return Some(p.clone());
    }
    rebuild_asked(spec, plan, adaptive?, &record.get(id)?.def)
}
