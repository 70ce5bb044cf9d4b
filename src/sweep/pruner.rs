//! Pruners stop losing trials early: after each epoch a trial reports, the study asks the
//! sweep's pruner whether it goes on. Two exist, as in Optuna and Ray Tune:
//!
//! - [`MedianPruner`] (Optuna's MedianPruner): stop a trial whose best value so far is worse
//!   than the median of the completed trials' values at the same epoch.
//! - [`Asha`] (asynchronous successive halving, Li et al. 2020, the stopping variant of Ray's
//!   ASHAScheduler, with Optuna's promotion rule): at rungs `grace_epochs · eta^k`, a trial
//!   goes on only if its value is among the best `max(1, n / eta)` of the `n` values recorded
//!   at that rung so far, its own included.
//!
//! Every decision is journalled with the numbers behind it; a decision already in the journal
//! is never made again, so a resumed sweep keeps the decisions it made.

use crate::store::journal::Decision;
use crate::store::record::{StudyRecord, TrialRecord};
use crate::text::format_metric;
use crate::trial::{Objective, TrialStatus};

/// The pruner a spec's `[prune]` section asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum PrunerSpec {
    /// `method = "median"`.
    Median(MedianPruner),
    /// `method = "asha"`.
    Asha(Asha),
}

impl PrunerSpec {
    /// The pruner itself.
    pub fn build(&self) -> Box<dyn Pruner> {
        match self {
            PrunerSpec::Median(m) => Box::new(m.clone()),
            PrunerSpec::Asha(a) => Box::new(a.clone()),
        }
    }

    /// The pruner and its settings, for people.
    pub fn describe(&self) -> String {
        match self {
            PrunerSpec::Median(m) => format!(
                "median (startup_trials {}, warmup_epochs {}, interval {})",
                m.startup_trials, m.warmup_epochs, m.interval
            ),
            PrunerSpec::Asha(a) => {
                format!("asha (grace_epochs {}, eta {})", a.grace_epochs, a.eta)
            }
        }
    }
}

/// Decides whether a trial goes on after an epoch.
pub trait Pruner {
    /// The decision about `trial` after it reported `epoch` (of `epochs` planned, when
    /// known), or None when this epoch is not a decision point.
    fn decide(
        &self,
        record: &StudyRecord,
        trial: &str,
        epoch: usize,
        epochs: Option<usize>,
    ) -> Option<Decision>;
}

/// Optuna's MedianPruner.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianPruner {
    /// No pruning until this many trials completed.
    pub startup_trials: usize,
    /// No pruning during a trial's first epochs.
    pub warmup_epochs: usize,
    /// Judge every `interval` epochs after the warm-up.
    pub interval: usize,
}

impl Default for MedianPruner {
    fn default() -> Self {
        Self {
            startup_trials: 5,
            warmup_epochs: 0,
            interval: 1,
        }
    }
}

/// Asynchronous successive halving (the stopping variant, as Ray's ASHAScheduler).
#[derive(Debug, Clone, PartialEq)]
pub struct Asha {
    /// The first rung, in epochs.
    pub grace_epochs: usize,
    /// The reduction factor: rungs are `eta` times apart and keep the top `1/eta`.
    pub eta: usize,
}

impl Default for Asha {
    fn default() -> Self {
        Self {
            grace_epochs: 1,
            eta: 3,
        }
    }
}

/// The objective's value of `t` at `epoch`.
fn value_at(objective: &Objective, t: &TrialRecord, epoch: usize) -> Option<f64> {
    t.epochs
        .iter()
        .find(|r| r.epoch == epoch)
        .and_then(|r| objective.value(&r.metrics))
}

/// The median of `values` (not empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Pruner for MedianPruner {
    fn decide(
        &self,
        record: &StudyRecord,
        trial: &str,
        epoch: usize,
        _epochs: Option<usize>,
    ) -> Option<Decision> {
        if epoch <= self.warmup_epochs
            || !(epoch - self.warmup_epochs).is_multiple_of(self.interval)
        {
            return None;
        }
        let completed = || {
            record
                .active()
                .filter(|t| t.status == TrialStatus::Completed && t.id() != trial)
        };
        if completed().count() < self.startup_trials.max(1) {
            return None;
        }
        let objective = &record.objective;
        let t = record.get(trial)?;
        let best = objective
            .best(
                &t.epochs
                    .iter()
                    .filter(|r| r.epoch <= epoch)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .and_then(|r| objective.value(&r.metrics))?;
        let mut others: Vec<f64> = completed()
            .filter_map(|o| value_at(objective, o, epoch))
            .collect();
        if others.is_empty() {
            return None;
        }
        let of = others.len();
        let bar = median(&mut others);
        let stop = objective.better(bar, best);
        let m = &objective.metric;
        let reason = format!(
            "best {m} so far {} is {} the median {} of {of} completed trials at epoch {epoch}",
            format_metric(best),
            if stop { "worse than" } else { "no worse than" },
            format_metric(bar)
        );
        Some(Decision {
            trial: trial.to_string(),
            epoch,
            pruner: "median".into(),
            value: best,
            rung: None,
            threshold: Some(bar),
            of,
            stop,
            reason,
        })
    }
}

impl Asha {
    /// The rungs below `epochs`: grace, grace·eta, grace·eta², ...
    pub fn rungs(&self, epochs: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut r = self.grace_epochs.max(1);
        while r < epochs {
            out.push(r);
            r = r.saturating_mul(self.eta.max(2));
        }
        out
    }
}

impl Pruner for Asha {
    fn decide(
        &self,
        record: &StudyRecord,
        trial: &str,
        epoch: usize,
        epochs: Option<usize>,
    ) -> Option<Decision> {
        // A trial whose epochs are unknown (a command trial without an `epochs` parameter)
        // has rungs all the way up.
        let epochs = epochs.unwrap_or(usize::MAX);
        if !self.rungs(epochs.min(epoch + 1)).contains(&epoch) {
            return None;
        }
        let objective = &record.objective;
        let value = value_at(objective, record.get(trial)?, epoch)?;
        let mut recorded: Vec<f64> = record
            .trials
            .iter()
            .filter(|t| t.id() != trial)
            .flat_map(|t| t.decisions.iter())
            .filter(|d| d.pruner == "asha" && d.rung == Some(epoch))
            .map(|d| d.value)
            .collect();
        let of = recorded.len();
        // Optuna's promotion rule: the trial goes on if it is among the best
        // max(1, n / eta) of the n values at this rung, its own included. Until eta trials
        // have reached a rung that means being the best so far: Ray's percentile of the others
        // alone let most of the first trials through, and a grid started in sorted order (each
        // trial the best yet) through entirely.
        recorded.push(value);
        recorded.sort_by(|a, b| objective.cmp(*a, *b));
        let keep = (recorded.len() / self.eta.max(2)).max(1);
        let cutoff = (of > 0).then(|| recorded[keep - 1]);
        let stop = cutoff.is_some_and(|c| objective.better(c, value));
        let m = &objective.metric;
        let reason = match cutoff {
            None => format!("first trial at rung {epoch}: it goes on"),
            Some(c) => format!(
                "{m} {} at rung {epoch} is {} the best {keep} of {} (the top 1/{}; cutoff {})",
                format_metric(value),
                if stop { "outside" } else { "among" },
                recorded.len(),
                self.eta,
                format_metric(c)
            ),
        };
        Some(Decision {
            trial: trial.to_string(),
            epoch,
            pruner: "asha".into(),
            value,
            rung: Some(epoch),
            threshold: cutoff,
            of,
            stop,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;

    /// A study of trials with the given accuracy curves and statuses.
    fn study(curves: &[(&str, &[f64], TrialStatus)]) -> StudyRecord {
        let mut s = Study::new();
        for (id, curve, status) in curves {
            s.trial(id, &[]).curve(id, "test_acc", curve);
            if *status != TrialStatus::Running {
                s.ended(id, *status);
            }
        }
        s.build()
    }

    #[test]
    fn the_median_pruner_stops_a_trial_whose_best_is_below_the_median_at_its_epoch() {
        use TrialStatus::*;
        let r = study(&[
            ("a", &[90.0, 95.0, 97.0], Completed),
            ("b", &[91.0, 96.0, 98.0], Completed),
            ("c", &[92.0, 94.0, 96.0], Completed),
            ("slow", &[89.0, 93.0], Running),
            ("fine", &[91.5, 95.5], Running),
        ]);
        let p = MedianPruner {
            startup_trials: 3,
            warmup_epochs: 1,
            interval: 1,
        };
        assert_eq!(p.decide(&r, "slow", 1, None), None, "warm-up");
        let d = p.decide(&r, "slow", 2, None).unwrap();
        assert!(d.stop, "93 < median(95, 96, 94) = 95: {}", d.reason);
        assert_eq!((d.threshold, d.of), (Some(95.0), 3));
        let d = p.decide(&r, "fine", 2, None).unwrap();
        assert!(!d.stop, "95.5 >= 95");
        let strict = MedianPruner {
            startup_trials: 4,
            ..p.clone()
        };
        assert_eq!(
            strict.decide(&r, "slow", 2, None),
            None,
            "3 of 4 startup trials"
        );
        let sparse = MedianPruner {
            interval: 2,
            warmup_epochs: 0,
            ..p
        };
        assert_eq!(
            sparse.decide(&r, "slow", 1, None),
            None,
            "not a decision epoch"
        );
        assert!(sparse.decide(&r, "slow", 2, None).is_some());
    }

    #[test]
    fn asha_rungs_grow_by_eta_and_keep_the_top_third() {
        let asha = Asha {
            grace_epochs: 1,
            eta: 3,
        };
        assert_eq!(asha.rungs(15), [1, 3, 9]);
        assert_eq!(asha.rungs(9), [1, 3]);
        assert_eq!(
            Asha {
                grace_epochs: 2,
                eta: 2
            }
            .rungs(16),
            [2, 4, 8]
        );
        // Trials arrive at rung 1 one after another; each is judged with those before it.
        let curves: [(&str, &[f64]); 6] = [
            ("t1", &[90.0]),
            ("t2", &[85.0]),
            ("t3", &[95.0]),
            ("t4", &[92.0]),
            ("t5", &[96.0]),
            ("t6", &[80.0]),
        ];
        let mut s = Study::new();
        let mut stops = Vec::new();
        for (id, curve) in curves {
            s.trial(id, &[]).curve(id, "test_acc", curve);
            let d = asha.decide(&s.0, id, 1, Some(15)).unwrap();
            stops.push(d.stop);
            s.0.apply(&crate::store::journal::Event::Decision(d));
        }
        let r = s.build();
        // The best max(1, n/3) of the n values so far: t1 first, on; t2 85 is not the best of
        // 2, stop; t3 95 the best of 3, on; t4 92 not the best of 4 (95), stop; t5 96 the best
        // of 5, on; t6 80 not in the best 2 of 6 (96, 95), stop.
        assert_eq!(stops, [false, true, false, true, false, true]);
        assert_eq!(asha.decide(&r, "t1", 2, Some(15)), None, "2 is no rung");
    }
}
