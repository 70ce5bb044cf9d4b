//! Pruners stop losing trials early: after each epoch a trial reports, the study asks the
//! sweep's pruner whether it goes on. Two exist, as in Optuna and Ray Tune:
//!
//! - [`MedianPruner`] (Optuna's MedianPruner): stop a trial whose best value so far is worse
//!   than the median of the completed trials' values at the same epoch.
//! - [`Asha`] (asynchronous successive halving, Li et al. 2020, the stopping variant of Ray's
//!   ASHAScheduler, with Optuna's promotion rule): at rungs `grace_epochs · eta^k`, a trial
//!   goes on only if its value is among the best `max(1, n / eta)` of the `n` values recorded
//!   at that rung so far, its own included. With `pause = true` it is Li et al.'s
//!   promotion-based ASHA instead: a trial outside the best `n / eta` pauses at its rung
//!   (keeping its saved state), and goes on later, when a slot frees, once enough trials have
//!   reached the rung to place it among the best (see [`Pruner::promotion`]).
//!
//! Every decision is journalled with the numbers behind it; a decision already in the journal
//! is never made again, so a resumed sweep keeps the decisions it made.

use std::collections::BTreeMap;

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
            PrunerSpec::Asha(a) => format!(
                "asha (grace_epochs {}, eta {}{})",
                a.grace_epochs,
                a.eta,
                if a.pause { ", pause" } else { "" }
            ),
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

    /// Whether a trial this pruner stops only pauses: it keeps its saved state, and
    /// [`Pruner::promotion`] may let it go on later.
    fn pauses(&self) -> bool {
        false
    }

    /// The line said when this pruner stops `d.trial`: "pruning ... at epoch E: why" (or
    /// "pausing", when it pauses).
    fn stop_line(&self, d: &Decision) -> String {
        let verb = if self.pauses() { "pausing" } else { "pruning" };
        format!("{verb} {} at epoch {}: {}", d.trial, d.epoch, d.reason)
    }

    /// A paused trial that should go on now, before any new trial starts; None when there is
    /// none. `last`: nothing else is left to run or running, so the best paused trial at the
    /// highest rung goes on unless some trial already ran to its end (a sweep ends with at
    /// least one fully trained trial).
    fn promotion(&self, _record: &StudyRecord, _last: bool) -> Option<Promotion> {
        None
    }
}

/// A paused trial going on from the rung it paused at.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// Trial id.
    pub trial: String,
    /// The rung (an epoch) it paused at.
    pub rung: usize,
    /// Why, in words.
    pub reason: String,
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
    /// Promotion-based ASHA: a trial outside the top pauses and may be promoted later,
    /// instead of stopping for good.
    pub pause: bool,
}

impl Default for Asha {
    fn default() -> Self {
        Self {
            grace_epochs: 1,
            eta: 3,
            pause: false,
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
        // Only an epoch that reported the metric is judged (a program may validate every few
        // epochs).
        value_at(objective, t, epoch)?;
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
        recorded.push(value);
        recorded.sort_by(|a, b| objective.cmp(*a, *b));
        let m = &objective.metric;
        let eta = self.eta.max(2);
        let (stop, cutoff, reason) = if self.pause {
            // Promotion-based: the best n / eta go on (none until eta trials have arrived);
            // the others pause, and go on later if the trials still to come rank below them.
            let keep = recorded.len() / eta;
            let better = recorded
                .iter()
                .filter(|&&v| objective.better(v, value))
                .count();
            let stop = better >= keep;
            let cutoff = (keep > 0).then(|| recorded[keep - 1]);
            let reason = format!(
                "{m} {} at rung {epoch} is {} of {} ({}): {}",
                format_metric(value),
                ordinal(better + 1),
                recorded.len(),
                match keep {
                    0 => format!("fewer than {eta} trials here, none goes on yet"),
                    k => format!("the best {k} go on"),
                },
                if stop { "it pauses" } else { "it goes on" }
            );
            (stop, cutoff, reason)
        } else {
            // Optuna's promotion rule: the trial goes on if it is among the best
            // max(1, n / eta) of the n values at this rung, its own included. Until eta trials
            // have reached a rung that means being the best so far: Ray's percentile of the
            // others alone let most of the first trials through, and a grid started in sorted
            // order (each trial the best yet) through entirely.
            let keep = (recorded.len() / eta).max(1);
            let cutoff = (of > 0).then(|| recorded[keep - 1]);
            let stop = cutoff.is_some_and(|c| objective.better(c, value));
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
            (stop, cutoff, reason)
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

    fn pauses(&self) -> bool {
        self.pause
    }

    fn promotion(&self, record: &StudyRecord, last: bool) -> Option<Promotion> {
        if !self.pause {
            return None;
        }
        let objective = &record.objective;
        // Each rung's values, best first, with the trial that reached it.
        let mut rungs: BTreeMap<usize, Vec<(&TrialRecord, f64)>> = BTreeMap::new();
        for t in record.active() {
            for d in t.decisions.iter().filter(|d| d.pruner == "asha") {
                if let Some(rung) = d.rung {
                    rungs.entry(rung).or_default().push((t, d.value));
                }
            }
        }
        for entries in rungs.values_mut() {
            entries.sort_by(|a, b| objective.cmp(a.1, b.1));
        }
        // ASHA's order: the highest rung first.
        for (&rung, entries) in rungs.iter().rev() {
            let keep = entries.len() / self.eta.max(2);
            if let Some((i, (t, v))) = entries
                .iter()
                .enumerate()
                .take(keep)
                .find(|(_, (t, _))| paused_at(t, rung))
            {
                return Some(Promotion {
                    trial: t.id().to_string(),
                    rung,
                    reason: format!(
                        "{} {} at rung {rung} is now {} of {}, and the best {keep} go on",
                        objective.metric,
                        format_metric(*v),
                        ordinal(i + 1),
                        entries.len()
                    ),
                });
            }
        }
        let completed = record.active().any(|t| t.status == TrialStatus::Completed);
        if !last || completed {
            return None;
        }
        let (&rung, entries) = rungs
            .iter()
            .rev()
            .find(|(rung, entries)| entries.iter().any(|(t, _)| paused_at(t, **rung)))?;
        let (t, v) = entries.iter().find(|(t, _)| paused_at(t, rung))?;
        Some(Promotion {
            trial: t.id().to_string(),
            rung,
            reason: format!(
                "no trial has run to its end and none is left to start; {} {} is the best \
                 paused at rung {rung}",
                objective.metric,
                format_metric(*v)
            ),
        })
    }
}

/// Whether `t` is paused at `rung`: ASHA stopped it there and has not promoted it since.
fn paused_at(t: &TrialRecord, rung: usize) -> bool {
    t.status == TrialStatus::Pruned
        && !t.promotions.contains(&rung)
        && t.decisions
            .iter()
            .max_by_key(|d| d.epoch)
            .is_some_and(|d| d.stop && d.pruner == "asha" && d.rung == Some(rung))
}

/// 1st, 2nd, 3rd, 4th, ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
            pause: false,
        };
        assert_eq!(asha.rungs(15), [1, 3, 9]);
        assert_eq!(asha.rungs(9), [1, 3]);
        assert_eq!(
            Asha {
                grace_epochs: 2,
                eta: 2,
                pause: false,
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

    #[test]
    fn paused_asha_promotes_the_best_n_over_eta_of_a_rung_and_finishes_one_trial() {
        use crate::store::journal::Event;
        let asha = Asha {
            grace_epochs: 1,
            eta: 3,
            pause: true,
        };
        let mut s = Study::new();
        // Arrives at rung 1, is judged, and (if told to stop) ends paused.
        let arrive = |s: &mut Study, id: &str, acc: f64| {
            s.trial(id, &[]).curve(id, "test_acc", &[acc]);
            let d = asha.decide(&s.0, id, 1, Some(9)).unwrap();
            let stop = d.stop;
            s.0.apply(&Event::Decision(d));
            if stop {
                s.ended(id, TrialStatus::Pruned);
            }
            stop
        };
        // Fewer than eta trials at the rung: every one pauses and none is promotable.
        assert!(arrive(&mut s, "a", 90.0));
        assert!(arrive(&mut s, "b", 95.0));
        assert_eq!(asha.promotion(&s.0, false), None);
        // The third makes n / eta = 1: it is not the best, so it pauses, and b is promoted.
        assert!(arrive(&mut s, "c", 80.0));
        let p = asha.promotion(&s.0, false).unwrap();
        assert_eq!((p.trial.as_str(), p.rung), ("b", 1), "{}", p.reason);
        s.0.apply(&Event::Promoted {
            trial: p.trial,
            rung: p.rung,
            reason: p.reason,
        });
        assert_eq!(s.0.get("b").unwrap().status, TrialStatus::Pending);
        // b goes on and pauses alone at rung 3; rung 1 has promoted its one.
        s.epoch("b", 2, &[("test_acc", 96.0)])
            .epoch("b", 3, &[("test_acc", 97.0)]);
        let d = asha.decide(&s.0, "b", 3, Some(9)).unwrap();
        assert!(d.stop, "alone at rung 3: {}", d.reason);
        s.0.apply(&Event::Decision(d));
        s.ended("b", TrialStatus::Pruned);
        assert_eq!(asha.promotion(&s.0, false), None);
        // A fourth trial, the best at rung 1 (1 of 4 go on), goes straight on.
        assert!(!arrive(&mut s, "d", 99.0));
        // Nothing else to run and no trial ran to its end: the best paused at the highest
        // rung goes on; once a trial completed, nothing more.
        let p = asha.promotion(&s.0, true).unwrap();
        assert_eq!((p.trial.as_str(), p.rung), ("b", 3), "{}", p.reason);
        s.ended("d", TrialStatus::Completed);
        assert_eq!(asha.promotion(&s.0, true), None);
    }
}
