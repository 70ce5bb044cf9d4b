//! What a study's journal says, folded into one record per trial. The running study keeps this
//! record in memory and applies each event as it journals it; `status`, `leaderboard` and a
//! resumed sweep replay the journal into the same record.

use std::collections::HashMap;

use super::journal::{Decision, Entry, Event, TrialDef};
use crate::objectives::{Bound, Objectives};
use crate::trial::{EpochMetrics, Metrics, Objective, TrialStatus};

/// One trial as the journal knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    /// Its definition.
    pub def: TrialDef,
    /// False once the trial left the plan (its results stay, off the leaderboard).
    pub active: bool,
    /// Latest status.
    pub status: TrialStatus,
    /// Attempts started.
    pub attempts: u32,
    /// Device of the latest attempt.
    pub device: Option<String>,
    /// Neighbour cap of the latest attempt.
    pub cap: Option<usize>,
    /// Message of the latest finish.
    pub message: Option<String>,
    /// Wall time of every finished attempt.
    pub seconds: f64,
    /// Every epoch reported so far (a restarted attempt replaces the epochs it redoes).
    pub epochs: Vec<EpochMetrics>,
    /// What the trial itself reported at its best epoch (when it ended with a summary).
    pub reported_best: Option<Metrics>,
    /// The pruner's decisions about it, in order.
    pub decisions: Vec<Decision>,
    /// The rungs ASHA promoted it from after pausing it there.
    pub promotions: Vec<usize>,
    /// The pull worker that last claimed it.
    pub worker: Option<String>,
}

impl TrialRecord {
    fn new(def: TrialDef) -> Self {
        Self {
            def,
            active: true,
            status: TrialStatus::Pending,
            attempts: 0,
            device: None,
            cap: None,
            message: None,
            seconds: 0.0,
            epochs: Vec::new(),
            reported_best: None,
            decisions: Vec::new(),
            promotions: Vec::new(),
            worker: None,
        }
    }

    /// The trial id.
    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Appends an epoch row, dropping rows of that epoch and later that an earlier attempt
    /// reported (a trial that restarts from scratch reports them again).
    pub fn push_epoch(&mut self, row: EpochMetrics) {
        self.epochs.retain(|r| r.epoch < row.epoch);
        self.epochs.push(row);
    }

    /// The best epoch by `objective`.
    pub fn best(&self, objective: &Objective) -> Option<&EpochMetrics> {
        objective.best(&self.epochs)
    }

    /// The last epoch reported.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }

    /// The largest value of `metric` over the epochs (e.g. the best test accuracy), with its
    /// epoch.
    pub fn peak(&self, metric: &str) -> Option<(f64, usize)> {
        self.epochs
            .iter()
            .filter_map(|r| {
                r.get(metric)
                    .filter(|v| v.is_finite())
                    .map(|v| (v, r.epoch))
            })
            .fold(None, |acc: Option<(f64, usize)>, (v, e)| match acc {
                Some((b, _)) if b >= v => acc,
                _ => Some((v, e)),
            })
    }
}

/// A study as its journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRecord {
    /// The sweep's name.
    pub name: String,
    /// What ranks the trials.
    pub objective: Objective,
    /// Seeds per configuration.
    pub repeats: usize,
    /// The plan's columns.
    pub columns: Vec<String>,
    /// Trials the plan holds (or the budget of an adaptive sampler).
    pub planned: usize,
    /// The pruner, described, if the sweep has one.
    pub pruner: Option<String>,
    /// The adaptive sampler and how it chooses, described, if the sweep has one.
    pub sampler: Option<String>,
    /// Several objectives, when the sweep has them (`objective` is then the one that picks
    /// each trial's kept epoch).
    pub objectives: Option<Objectives>,
    /// With one objective: what a feasible trial meets.
    pub constraints: Vec<Bound>,
    /// Every trial ever planned, in plan order.
    pub trials: Vec<TrialRecord>,
    /// Why the sweep stopped, when its last start was followed by a stop.
    pub stopped: Option<String>,
    by_id: HashMap<String, usize>,
}

impl Default for StudyRecord {
    fn default() -> Self {
        Self {
            name: String::new(),
            objective: Objective::test_acc(),
            repeats: 1,
            columns: Vec::new(),
            planned: 0,
            pruner: None,
            sampler: None,
            objectives: None,
            constraints: Vec::new(),
            trials: Vec::new(),
            stopped: None,
            by_id: HashMap::new(),
        }
    }
}

impl StudyRecord {
    /// Replays journal entries.
    pub fn replay(entries: &[Entry]) -> Self {
        let mut r = Self::default();
        for e in entries {
            r.apply(&e.event);
        }
        r
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Sweep {
                name,
                objective,
                repeats,
                columns,
                trials,
                pruner,
                sampler,
                objectives,
                constraints,
                ..
            } => {
                self.constraints = constraints.clone();
                self.pruner = pruner.clone();
                self.sampler = sampler.clone();
                self.objectives = objectives.clone();
                self.name = name.clone();
                self.objective = objective.clone();
                self.repeats = *repeats;
                self.columns = columns.clone();
                self.planned = *trials;
                self.stopped = None;
            }
            Event::Trial(def) => match self.by_id.get(&def.id) {
                Some(&i) => {
                    let t = &mut self.trials[i];
                    t.active = true;
                    t.def.params = def.params.clone();
                    t.def.label = def.label.clone();
                }
                None => {
                    self.by_id.insert(def.id.clone(), self.trials.len());
                    self.trials.push(TrialRecord::new(def.clone()));
                }
            },
            Event::Retired { trials, .. } => {
                for id in trials {
                    if let Some(t) = self.get_mut(id) {
                        t.active = false;
                    }
                }
            }
            Event::Started {
                trial,
                attempt,
                device,
                cap,
            } => {
                if let Some(t) = self.get_mut(trial) {
                    t.status = TrialStatus::Running;
                    t.attempts = t.attempts.max(*attempt);
                    t.device = Some(device.clone());
                    t.cap = *cap;
                    t.message = None;
                }
            }
            Event::Epoch { trial, row } => {
                if let Some(t) = self.get_mut(trial) {
                    t.push_epoch(row.clone());
                }
            }
            Event::Finished {
                trial,
                status,
                message,
                seconds,
                best,
                ..
            } => {
                if let Some(t) = self.get_mut(trial) {
                    t.status = *status;
                    t.message = message.clone();
                    t.seconds += seconds;
                    if best.is_some() {
                        t.reported_best = best.clone();
                    }
                }
            }
            Event::Decision(d) => {
                if let Some(t) = self.get_mut(&d.trial) {
                    t.decisions.retain(|x| x.epoch != d.epoch);
                    t.decisions.push(d.clone());
                }
            }
            Event::Promoted { trial, rung, .. } => {
                if let Some(t) = self.get_mut(trial) {
                    t.status = TrialStatus::Pending;
                    t.message = None;
                    if !t.promotions.contains(rung) {
                        t.promotions.push(*rung);
                    }
                }
            }
            Event::Claimed {
                trial,
                attempt,
                worker,
            } => {
                if let Some(t) = self.get_mut(trial) {
                    t.status = TrialStatus::Running;
                    t.attempts = t.attempts.max(*attempt);
                    t.worker = Some(worker.clone());
                    t.message = None;
                }
            }
            Event::Stale { trial, reason, .. } => {
                if let Some(t) = self.get_mut(trial) {
                    t.status = TrialStatus::Stale;
                    t.message = Some(reason.clone());
                }
            }
            Event::Stopped { reason } => self.stopped = Some(reason.clone()),
            Event::Format { .. } | Event::Submitted { .. } => {}
        }
    }

    /// The trial with `id`.
    pub fn get(&self, id: &str) -> Option<&TrialRecord> {
        self.by_id.get(id).map(|&i| &self.trials[i])
    }

    /// The trial with `id`, mutably.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut TrialRecord> {
        self.by_id.get(id).map(|&i| &mut self.trials[i])
    }

    /// The number the next trial to enter the plan takes: the lowest no trial has. That is the
    /// count of trials, unless a trial's line was lost to a corrupt journal line: then its
    /// number is taken again, so that numbers stay unique and an adaptive sampler asks the lost
    /// trial again.
    pub fn next_index(&self) -> usize {
        let taken: std::collections::HashSet<usize> =
            self.trials.iter().map(|t| t.def.index).collect();
        (0..).find(|i| !taken.contains(i)).expect("a free number")
    }

    /// The trials still in the plan.
    pub fn active(&self) -> impl Iterator<Item = &TrialRecord> {
        self.trials.iter().filter(|t| t.active)
    }

    /// Trials in the plan by status.
    pub fn count(&self, status: TrialStatus) -> usize {
        self.active().filter(|t| t.status == status).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, index: usize) -> Event {
        Event::Trial(TrialDef {
            index,
            id: id.into(),
            group: id.into(),
            label: None,
            params: Default::default(),
            sampler: None,
        })
    }

    fn epoch(trial: &str, epoch: usize, acc: f64) -> Event {
        Event::Epoch {
            trial: trial.into(),
            row: EpochMetrics {
                epoch,
                metrics: Metrics::new().with("test_acc", acc),
            },
        }
    }

    #[test]
    fn replay_keeps_the_latest_state_and_a_restarted_attempts_epochs() {
        let started = |attempt| Event::Started {
            trial: "a".into(),
            attempt,
            device: "cpu".into(),
            cap: Some(2),
        };
        let events = [
            def("a", 0),
            def("b", 1),
            started(1),
            epoch("a", 1, 90.0),
            epoch("a", 2, 92.0),
            Event::Finished {
                trial: "a".into(),
                attempt: 1,
                status: TrialStatus::Failed,
                message: Some("boom".into()),
                seconds: 1.5,
                best: None,
            },
            started(2),
            epoch("a", 1, 91.0),
            Event::Retired {
                trials: vec!["b".into()],
                reason: "spec changed".into(),
            },
        ];
        let mut r = StudyRecord::default();
        for e in &events {
            r.apply(e);
        }
        let a = r.get("a").unwrap();
        assert_eq!(
            (a.status, a.attempts, a.seconds),
            (TrialStatus::Running, 2, 1.5)
        );
        assert_eq!(a.epochs.len(), 1, "the restart replaced epochs 1 and 2");
        assert_eq!(a.epochs[0].get("test_acc"), Some(91.0));
        assert!(!r.get("b").unwrap().active);
        assert_eq!(r.active().count(), 1);
        r.apply(&def("b", 1));
        assert!(
            r.get("b").unwrap().active,
            "a trial back in the plan is active again"
        );
    }

    #[test]
    fn the_next_number_is_the_lowest_no_trial_has() {
        let mut r = StudyRecord::default();
        assert_eq!(r.next_index(), 0);
        r.apply(&def("a", 0));
        r.apply(&def("c", 2));
        assert_eq!(
            r.next_index(),
            1,
            "trial 1's line was lost: its number is free"
        );
        r.apply(&def("b", 1));
        assert_eq!(r.next_index(), 3);
    }

    #[test]
    fn peaks_and_bests_follow_the_epochs() {
        let mut r = StudyRecord::default();
        for e in [
            def("a", 0),
            epoch("a", 1, 97.0),
            epoch("a", 2, 98.0),
            epoch("a", 3, 97.5),
        ] {
            r.apply(&e);
        }
        let a = r.get("a").unwrap();
        assert_eq!(a.peak("test_acc"), Some((98.0, 2)));
        assert_eq!(a.best(&Objective::test_acc()).unwrap().epoch, 2);
        assert_eq!(a.last().unwrap().epoch, 3);
        assert_eq!(a.peak("val_acc"), None);
    }
}

/// Study records built event by event, for the tests of everything that reads one (the
/// pruner, the sampler, the scheduler, the leaderboard, the spec-change rule).
#[cfg(test)]
pub mod fixture {
    use super::StudyRecord;
    use crate::objectives::Objectives;
    use crate::store::journal::{Event, TrialDef};
    use crate::trial::{EpochMetrics, Metrics, Objective, TrialStatus};

    /// A record being built.
    #[derive(Default)]
    pub struct Study(pub StudyRecord);

    impl Study {
        /// An empty record with no sweep line (objective test_acc).
        pub fn new() -> Self {
            Self::default()
        }

        /// A record of sweep `s` ranked by `objective`, with `repeats` seeds per configuration.
        pub fn ranked_by(objective: Objective, repeats: usize) -> Self {
            let mut s = Self::new();
            s.0.apply(&Event::Sweep {
                name: "s".into(),
                objective,
                repeats,
                columns: vec![],
                trials: 0,
                pending: 0,
                backend: "local".into(),
                pid: 1,
                pruner: None,
                sampler: None,
                objectives: None,
                constraints: Vec::new(),
            });
            s
        }

        /// A record of a sweep with several objectives (the first picks the kept epoch).
        pub fn with_objectives(objectives: Objectives) -> Self {
            let mut s = Self::ranked_by(objectives.objectives[0].clone(), 1);
            s.0.objectives = Some(objectives);
            s
        }

        /// Trial `id` enters the plan (its own group) with `params`.
        pub fn trial(&mut self, id: &str, params: &[(&str, toml::Value)]) -> &mut Self {
            self.trial_in_group(id, id, params)
        }

        /// Trial `id` of configuration `group` enters the plan with `params`.
        pub fn trial_in_group(
            &mut self,
            id: &str,
            group: &str,
            params: &[(&str, toml::Value)],
        ) -> &mut Self {
            let index = self.0.trials.len();
            self.0.apply(&Event::Trial(TrialDef {
                index,
                id: id.to_string(),
                group: group.to_string(),
                label: None,
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                sampler: None,
            }));
            self
        }

        /// Trial `id` reports one epoch per entry of `rows` (epochs from 1), each the named
        /// values given.
        pub fn epochs(&mut self, id: &str, rows: &[Vec<(&str, f64)>]) -> &mut Self {
            for (e, row) in rows.iter().enumerate() {
                self.epoch(id, e + 1, row);
            }
            self
        }

        /// Trial `id` reports `values` at epoch `epoch`.
        pub fn epoch(&mut self, id: &str, epoch: usize, values: &[(&str, f64)]) -> &mut Self {
            let metrics = values
                .iter()
                .fold(Metrics::new(), |m, (name, v)| m.with(name, *v));
            self.0.apply(&Event::Epoch {
                trial: id.to_string(),
                row: EpochMetrics { epoch, metrics },
            });
            self
        }

        /// Trial `id` reports `metric` = each of `values`, one per epoch.
        pub fn curve(&mut self, id: &str, metric: &str, values: &[f64]) -> &mut Self {
            let rows: Vec<Vec<(&str, f64)>> = values.iter().map(|v| vec![(metric, *v)]).collect();
            self.epochs(id, &rows)
        }

        /// Trial `id`'s first attempt ends with `status`.
        pub fn ended(&mut self, id: &str, status: TrialStatus) -> &mut Self {
            self.0.apply(&Event::Finished {
                trial: id.to_string(),
                attempt: 1,
                status,
                message: None,
                seconds: 1.0,
                best: None,
            });
            self
        }

        /// The record.
        pub fn build(&self) -> StudyRecord {
            self.0.clone()
        }
    }
}
