//! The retry policy, as decisions from data: whether a trial that ended gets another attempt,
//! and whether the sweep must stop because its failures will recur whatever it tries.

use crate::exec::{TrialJob, TrialOutcome};
use crate::store::record::StudyRecord;
use crate::trial::TrialStatus;

/// The next attempt of a trial after `outcome`, if it gets one. Out of memory halves the
/// trials allowed beside it on its device until it runs alone; only then, and for failures
/// and timeouts, attempts count against `retries`.
pub fn next_attempt(
    job: &TrialJob,
    outcome: &TrialOutcome,
    retries: u32,
    per_device: usize,
) -> Option<TrialJob> {
    let next = |cap: Option<usize>, failures: u32| TrialJob {
        attempt: job.attempt + 1,
        cap,
        failures,
        ..job.clone()
    };
    match outcome.status {
        // Out of memory in a pack: first a pack half as large.
        TrialStatus::Oom if job.pack.is_some_and(|p| p > 1) => Some(TrialJob {
            pack: job.pack.map(|p| p / 2),
            ..next(job.cap, job.failures)
        }),
        TrialStatus::Oom => {
            let cap = job.cap.unwrap_or(per_device);
            if cap > 1 {
                Some(next(Some(cap / 2), job.failures))
            } else if job.failures < retries {
                Some(next(Some(1), job.failures + 1))
            } else {
                None
            }
        }
        TrialStatus::Failed | TrialStatus::Timeout if job.failures < retries => {
            Some(next(job.cap, job.failures + 1))
        }
        _ => None,
    }
}

/// The cause of a failure, comparable across trials: its message, with the trial's own id and
/// parameter values (as a log line would print them) taken out. None for an end that is not a
/// failure with a cause (a result, an interruption, a timeout, out of memory).
fn cause(trial: &Ended, outcome: &TrialOutcome) -> Option<String> {
    (outcome.status == TrialStatus::Failed).then(|| {
        let mut message = outcome
            .message
            .as_deref()
            .unwrap_or("no message")
            .replace(trial.id, "<trial>");
        // Longest first, so that 0.01 is not taken out of 0.015.
        let mut values: Vec<&String> = trial.values.iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            message = message.replace(v.as_str(), "<value>");
        }
        message
    })
}

/// A trial's searched values as a program would print them (`0.01`, `adam`).
pub fn param_values(record: &StudyRecord, trial: &str) -> Vec<String> {
    record
        .get(trial)
        .map(|t| {
            t.def
                .params
                .values()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A trial that ended: its id and its searched values as text.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    /// Trial id.
    pub id: &'a str,
    /// Its parameter values, as a program would print them (`0.01`, `adam`).
    pub values: &'a [String],
}

/// How the trials of one `sweep run` ended, in order: what tells a failure that will recur
/// (the same cause from different parameters) from bad luck.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    /// Each trial's first end in this run: its id, its failure cause if it failed, and its
    /// message as the trial gave it.
    first_ends: Vec<(String, Option<String>, Option<String>)>,
}

impl Failures {
    /// Records how an attempt of `trial` ended.
    pub fn record(&mut self, trial: Ended, outcome: &TrialOutcome) {
        if outcome.status == TrialStatus::Interrupted
            || self.first_ends.iter().any(|(t, _, _)| t == trial.id)
        {
            return;
        }
        self.first_ends.push((
            trial.id.to_string(),
            cause(&trial, outcome),
            outcome.message.clone(),
        ));
    }

    /// Whether another trial already failed with the cause `trial` just failed with: a retry
    /// would only repeat it.
    pub fn seen_elsewhere(&self, trial: Ended, outcome: &TrialOutcome) -> bool {
        let Some(cause) = cause(&trial, outcome) else {
            return false;
        };
        self.first_ends
            .iter()
            .any(|(t, c, _)| t != trial.id && c.as_ref() == Some(&cause))
    }

    /// The reason to stop the sweep, when the first `max` trials to end all failed with one
    /// cause (`max` = 0: never).
    pub fn halt(&self, max: usize) -> Option<String> {
        if max == 0 || self.first_ends.len() < max {
            return None;
        }
        let (trial, first, message) = &self.first_ends[0];
        let first = first.as_ref()?;
        // Quoted as the first trial said it, not with its values taken out.
        let quoted = message.as_deref().unwrap_or(first);
        self.first_ends[..max]
            .iter()
            .all(|(_, c, _)| c.as_ref() == Some(first))
            .then(|| {
                format!(
                    "stopped: the first {max} trials to end all failed the same way, so every \
                     trial would. Trial {trial}: {quoted}. Fix the cause and run the same \
                     command again (the spec's `max_failures` sets how many identical failures \
                     stop a sweep; 0 never stops)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn job(cap: Option<usize>, failures: u32) -> TrialJob {
        TrialJob {
            failures,
            cap,
            ..TrialJob::new("t", PathBuf::from("/nonexistent"), 1)
        }
    }

    fn outcome(status: TrialStatus) -> TrialOutcome {
        TrialOutcome {
            status,
            message: None,
            best: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn failures_are_retried_up_to_the_limit_and_results_never() {
        let failed = outcome(TrialStatus::Failed);
        assert_eq!(
            next_attempt(&job(None, 0), &failed, 1, 2).map(|j| (j.attempt, j.failures)),
            Some((2, 1))
        );
        assert_eq!(next_attempt(&job(None, 1), &failed, 1, 2), None);
        for status in [
            TrialStatus::Completed,
            TrialStatus::Diverged,
            TrialStatus::Pruned,
            TrialStatus::Interrupted,
        ] {
            assert_eq!(next_attempt(&job(None, 0), &outcome(status), 5, 2), None);
        }
    }

    #[test]
    fn out_of_memory_halves_the_neighbours_then_counts_against_the_retries() {
        let oom = outcome(TrialStatus::Oom);
        let a = next_attempt(&job(None, 0), &oom, 1, 4).unwrap();
        assert_eq!((a.cap, a.failures), (Some(2), 0), "4 per device -> 2");
        let b = next_attempt(&a, &oom, 1, 4).unwrap();
        assert_eq!((b.cap, b.failures), (Some(1), 0), "2 -> alone");
        let c = next_attempt(&b, &oom, 1, 4).unwrap();
        assert_eq!((c.cap, c.failures), (Some(1), 1), "alone, one retry");
        assert_eq!(next_attempt(&c, &oom, 1, 4), None, "then it gives up");
        assert_eq!(c.attempt, 4);
    }

    #[test]
    fn a_pack_out_of_memory_is_retried_half_as_large_before_anything_else() {
        let oom = outcome(TrialStatus::Oom);
        let packed = TrialJob {
            pack: Some(8),
            ..job(None, 0)
        };
        let a = next_attempt(&packed, &oom, 1, 1).unwrap();
        assert_eq!((a.pack, a.cap, a.failures), (Some(4), None, 0));
        let b = next_attempt(&a, &oom, 1, 1).unwrap();
        let c = next_attempt(&b, &oom, 1, 1).unwrap();
        assert_eq!((c.pack, c.failures), (Some(1), 0), "8 -> 4 -> 2 -> alone");
        let d = next_attempt(&c, &oom, 1, 1).unwrap();
        assert_eq!((d.cap, d.failures), (Some(1), 1), "alone, one retry");
        assert_eq!(next_attempt(&d, &oom, 1, 1), None);
    }

    fn failed(message: &str) -> TrialOutcome {
        TrialOutcome {
            message: Some(message.into()),
            ..outcome(TrialStatus::Failed)
        }
    }

    fn t(id: &'static str) -> Ended<'static> {
        Ended { id, values: &[] }
    }

    #[test]
    fn the_sweep_stops_when_its_first_trials_all_fail_the_same_way() {
        let mut f = Failures::default();
        let missing = "the program exited with code 2; log ends: can't open file 'ux/trian.py'";
        f.record(t("5e5d816f"), &failed(missing));
        assert!(
            !f.seen_elsewhere(t("5e5d816f"), &failed(missing)),
            "the first is bad luck"
        );
        f.record(t("1edf3a25"), &failed(missing));
        assert!(
            f.seen_elsewhere(t("1edf3a25"), &failed(missing)),
            "the second is not retried"
        );
        assert_eq!(f.halt(3), None, "two of three");
        f.record(t("5e5d816f"), &failed(missing));
        assert_eq!(f.halt(3), None, "a retry of the same trial does not count");
        f.record(t("dd008f29"), &failed(missing));
        let why = f.halt(3).expect("three trials, one cause");
        assert!(
            why.contains("first 3 trials") && why.contains("trian.py"),
            "{why}"
        );
        assert_eq!(f.halt(0), None, "0 never stops");
    }

    #[test]
    fn different_causes_a_success_or_an_interruption_keep_the_sweep_going() {
        let mut f = Failures::default();
        f.record(
            t("5e5d816f"),
            &failed("exited with code 1 in trial 5e5d816f"),
        );
        f.record(
            t("1edf3a25"),
            &failed("exited with code 1 in trial 1edf3a25"),
        );
        assert!(
            f.seen_elsewhere(
                t("1edf3a25"),
                &failed("exited with code 1 in trial 1edf3a25")
            ),
            "the trial's id is not part of the cause"
        );
        f.record(t("dd008f29"), &outcome(TrialStatus::Completed));
        assert_eq!(f.halt(3), None, "a success among the first three");
        let mut g = Failures::default();
        g.record(t("5e5d816f"), &outcome(TrialStatus::Interrupted));
        g.record(t("5e5d816f"), &failed("x"));
        g.record(t("1edf3a25"), &failed("y"));
        g.record(t("dd008f29"), &failed("x"));
        assert_eq!(g.halt(3), None, "two causes");
        assert!(g.halt(1).is_some());
    }

    #[test]
    fn a_failure_that_prints_the_trials_own_values_is_still_one_cause() {
        let mut f = Failures::default();
        let values = |v: &str| vec![v.to_string()];
        let (a, b) = (values("0.001"), values("0.0015"));
        let log = |v: &str| {
            failed(&format!(
                "no `val_acc`; log ends: training lr={v} for 2 epochs"
            ))
        };
        f.record(
            Ended {
                id: "5e5d816f",
                values: &a,
            },
            &log("0.001"),
        );
        assert!(f.seen_elsewhere(
            Ended {
                id: "1edf3a25",
                values: &b
            },
            &log("0.0015")
        ));
        f.record(
            Ended {
                id: "1edf3a25",
                values: &b,
            },
            &log("0.0015"),
        );
        f.record(
            Ended {
                id: "9c0ffee0",
                values: &values("0.002"),
            },
            &log("0.002"),
        );
        let why = f.halt(3).expect("one cause");
        assert!(
            why.contains("Trial 5e5d816f: no `val_acc`; log ends: training lr=0.001 for 2 epochs")
                && !why.contains("<value>"),
            "one real message is quoted: {why}"
        );
    }
}
