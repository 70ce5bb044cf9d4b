//! What a pull worker takes next. Decided under the sweep's lock, from the whole journal, by
//! the same rules the orchestrator of `sweep run` follows: a paused trial ASHA promotes
//! first, then trials to go on (stale, interrupted), then trials not started (in plan order,
//! or the seeded random order when a pruner is on), then a new trial from TPE, asked with the
//! index and parallelism that make its asks the same as one orchestrator's.

use std::time::Duration;

use crate::exec::TrialJob;
use crate::store::journal::Event;
use crate::store::record::{StudyRecord, TrialRecord};
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::Lease;
use crate::sweep::engine::Next;
use crate::sweep::plan::{Plan, PlannedTrial};
use crate::sweep::pruner::Pruner;
use crate::sweep::sampler::Adaptive;
use crate::sweep::schedule::pruning_key;
use crate::sweep::spec::SweepSpec;
use crate::sweep::study::propose;
use crate::text::human_duration;
use crate::trial::TrialStatus;

/// An attempt a worker takes: it runs once `events` (its claim, and what led to it) are
/// journalled.
pub(super) struct Claim {
    pub job: TrialJob,
    pub events: Vec<Event>,
    /// A trial the sampler just asked for (the others are in the plan or the journal).
    pub asked: Option<Box<PlannedTrial>>,
}

/// The rules a worker picks its next trial by.
pub(super) struct Chooser<'a> {
    pub spec: &'a SweepSpec,
    pub plan: &'a Plan,
    pub pruner: Option<&'a dyn Pruner>,
    pub adaptive: Option<&'a Adaptive>,
    pub dir: &'a SweepDir,
    /// This worker's name.
    pub worker: &'a str,
}

impl Chooser<'_> {
    /// The next attempt to run, given the journal as it stands (with stale trials marked).
    pub fn next(&self, record: &StudyRecord) -> Next<Claim> {
        if let Some(why) = &record.stopped {
            return Done(Some(format!("the sweep was stopped: {why}")));
        }
        if let Some(next) = self.promotion(record, false) {
            return next;
        }
        if let Some(t) = self.resumable(record) {
            return self.claim(t, Vec::new());
        }
        let running = record.count(TrialStatus::Running);
        if let Some(sampler) = self.adaptive {
            if running >= sampler.parallelism {
                return Wait;
            }
            match self.ask(sampler, record) {
                Run(claim) => return Run(claim),
                Wait if running > 0 => return Wait,
                Wait => {
                    return Done(Some(format!(
                        "{}: the trials it learns from did not end; start a worker again to go on",
                        sampler.method.name()
                    )));
                }
                Done(Some(why)) => return Done(Some(why)),
                // Its budget is spent: a paused trial may still go on.
                Done(None) => {}
            }
        }
        if running > 0 {
            return Wait;
        }
        self.promotion(record, true).unwrap_or(Done(None))
    }

    /// The trial to go on with or start: a stale or interrupted one first, then one not
    /// started yet.
    fn resumable<'r>(&self, record: &'r StudyRecord) -> Option<&'r TrialRecord> {
        let mut open: Vec<&TrialRecord> = record
            .active()
            .filter(|t| {
                matches!(
                    t.status,
                    TrialStatus::Stale | TrialStatus::Interrupted | TrialStatus::Pending
                )
            })
            .collect();
        if self.pruner.is_some() {
            open.sort_by_cached_key(|t| pruning_key(self.spec.search_seed, t.id()));
        }
        open.sort_by_key(|t| t.status == TrialStatus::Pending);
        open.first().copied()
    }

    /// A paused trial ASHA promotes, claimed (see [`Pruner::promotion`]).
    fn promotion(&self, record: &StudyRecord, last: bool) -> Option<Next<Claim>> {
        let p = self.pruner?.promotion(record, last)?;
        let t = record.get(&p.trial)?;
        let promoted = Event::Promoted {
            trial: p.trial.clone(),
            rung: p.rung,
            reason: p.reason,
        };
        Some(self.claim(t, vec![promoted]))
    }

    /// Claims the next attempt of `t`, after `before`.
    fn claim(&self, t: &TrialRecord, mut before: Vec<Event>) -> Next<Claim> {
        let job = self.job(t.id(), t.attempts + 1);
        before.push(Event::Claimed {
            trial: job.id.clone(),
            attempt: job.attempt,
            worker: self.worker.to_string(),
        });
        Run(Claim {
            job,
            events: before,
            asked: None,
        })
    }

    fn job(&self, id: &str, attempt: u32) -> TrialJob {
        TrialJob::new(id, self.dir.trial_dir(id), attempt)
    }

    /// Asks the adaptive sampler for the next trial number, as the orchestrator does.
    fn ask(&self, sampler: &Adaptive, record: &StudyRecord) -> Next<Claim> {
        let planned = match propose(sampler, self.spec, self.plan, record) {
            Ok(Run(planned)) => planned,
            Ok(Wait) => return Wait,
            Ok(Done(why)) => return Done(why),
            Err(e) => return Done(Some(format!("{}: {e:#}", sampler.method.name()))),
        };
        let job = self.job(&planned.id, 1);
        let events = vec![
            Event::Trial(planned.def()),
            Event::Claimed {
                trial: planned.id.clone(),
                attempt: 1,
                worker: self.worker.to_string(),
            },
        ];
        Run(Claim {
            job,
            events,
            asked: Some(planned),
        })
    }
}

use Next::{Done, Run, Wait};

/// `Stale` events for the trials whose worker's lease has expired: journalled as running by a
/// worker whose lease file is older than `lease`, or missing while the claim is older than
/// `lease` (a folder listing on NFS may lag behind a new file by a minute). A trial running
/// under no worker (a `sweep run` that was killed) is stale when no orchestrator holds the
/// sweep. `mine`: the trials this worker, `me`, runs; one claimed under its name that it does
/// not run was claimed by an earlier process with the same name (a pid reused after a reboot).
/// `claim_age`: how long ago a trial was claimed.
pub(super) fn expired(
    record: &StudyRecord,
    leases: &[Lease],
    lease: Duration,
    (me, mine): (&str, &[&str]),
    orchestrator_alive: bool,
    claim_age: &dyn Fn(&str) -> Option<Duration>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for t in record.active() {
        if t.status != TrialStatus::Running {
            continue;
        }
        let reason = match t.worker.as_deref() {
            Some(w) if w == me && mine.contains(&t.id()) => continue,
            Some(w) if w == me => format!("an earlier worker named {w} left it running"),
            Some(w) => match leases.iter().find(|l| l.worker == w) {
                Some(l) if l.age() <= lease => continue,
                Some(l) => format!(
                    "its worker {w} last renewed its lease {} ago (the lease is {})",
                    human_duration(l.age().as_secs_f64()),
                    human_duration(lease.as_secs_f64())
                ),
                None if claim_age(t.id()).is_some_and(|age| age <= lease) => continue,
                None => format!("its worker {w} left without ending it"),
            },
            None if orchestrator_alive => continue,
            None => "no worker or orchestrator runs it".to_string(),
        };
        events.push(Event::Stale {
            trial: t.id().to_string(),
            worker: t.worker.clone().unwrap_or_default(),
            reason,
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;
    use crate::store::shared_lock::now_ms;

    fn lease(worker: &str, age: Duration) -> Lease {
        let mut l = Lease::mine(worker);
        l.heartbeat_ms = now_ms() - age.as_millis() as u64;
        l
    }

    fn claimed(study: &mut Study, id: &str, worker: Option<&str>) {
        study.trial(id, &[]);
        let event = match worker {
            Some(w) => Event::Claimed {
                trial: id.into(),
                attempt: 1,
                worker: w.into(),
            },
            None => Event::Started {
                trial: id.into(),
                attempt: 1,
                device: "cpu".into(),
                cap: None,
            },
        };
        study.0.apply(&event);
    }

    fn stale_ids(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Stale { trial, .. } => trial.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_trial_goes_stale_when_its_workers_lease_expires_or_its_worker_is_gone() {
        let mut study = Study::new();
        claimed(&mut study, "live", Some("a-1"));
        claimed(&mut study, "expired", Some("b-2"));
        claimed(&mut study, "gone", Some("c-3"));
        claimed(&mut study, "new", Some("d-4"));
        claimed(&mut study, "mine", Some("me-9"));
        claimed(&mut study, "reused", Some("me-9"));
        claimed(&mut study, "orchestrated", None);
        let leases = [
            lease("a-1", Duration::from_secs(10)),
            lease("b-2", Duration::from_secs(400)),
        ];
        let record = study.build();
        let lease_time = Duration::from_secs(300);
        // d-4's lease is not listed yet (a lagging folder listing), but its claim is recent.
        let claim_age = |id: &str| match id {
            "new" => Some(Duration::from_secs(10)),
            _ => Some(Duration::from_secs(900)),
        };
        let me = ("me-9", &["mine"][..]);
        let stale = expired(&record, &leases, lease_time, me, true, &claim_age);
        assert_eq!(stale_ids(&stale), ["expired", "gone", "reused"]);
        // With no orchestrator alive, a trial no worker claimed is stale too.
        let stale = expired(&record, &leases, lease_time, me, false, &claim_age);
        assert_eq!(
            stale_ids(&stale),
            ["expired", "gone", "reused", "orchestrated"]
        );
    }
}
