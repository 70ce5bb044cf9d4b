//! What an attempt's end means: the line that journals it, whether the trial gets another
//! attempt (the retry policy of `sweep::study::retry`), and whether the sweep must stop because
//! its failures will recur (`max_failures`).

use crate::exec::{TrialJob, TrialOutcome};
use crate::store::journal::Event;
use crate::store::record::StudyRecord;
use crate::store::run_dir::RunDir;
use crate::sweep::study::retry::{self, Ended, Failures};
use crate::sweep::study::unjournalled_epochs;
use crate::trial::TrialStatus;

/// The options an end is judged by.
#[derive(Debug, Clone, Copy)]
pub struct EndRules {
    /// Attempts after a failure or a timeout (`--retries`).
    pub retries: u32,
    /// Trials that may share a device (the start of out-of-memory halving).
    pub per_device: usize,
    /// Stop the sweep when its first this many trials fail the same way (0: never).
    pub max_failures: usize,
}

/// What an attempt's end means.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    /// The lines to journal: the epochs its directory holds that the journal lacks, how it
    /// ended, and the sweep's stop when it must halt.
    pub events: Vec<Event>,
    /// The trial's next attempt, when it gets one.
    pub retry: Option<TrialJob>,
    /// It ended without a result for good (failed, timed out, out of memory, after its
    /// retries).
    pub failed: bool,
    /// Why the sweep stops, when this end makes its first `max_failures` trials fail alike.
    pub halt: Option<String>,
}

/// Concludes attempt `job` ending with `outcome`, given how trials ended so far (`failures`,
/// which learns this end) and the record. `stopping`: the sweep is being interrupted, so no
/// new attempt starts. A failure another trial already had will recur: it gets no retry.
///
/// Epochs in the trial's `metrics.csv` after the journal's last come first: an attempt that
/// resumes a trial whose epochs an earlier process finished unrelayed (the orphan of a killed
/// `sweep run`, a killed worker's buffer) reports only its end, and the sampler and the
/// leaderboard must see what the trial reached.
pub fn conclude(
    job: &TrialJob,
    outcome: &TrialOutcome,
    failures: &mut Failures,
    record: &StudyRecord,
    rules: EndRules,
    stopping: bool,
) -> Conclusion {
    let values = retry::param_values(record, &job.id);
    let ended = Ended {
        id: &job.id,
        values: &values,
    };
    let recurs = failures.seen_elsewhere(ended, outcome);
    failures.record(ended, outcome);
    let next = if stopping || recurs {
        None
    } else {
        retry::next_attempt(job, outcome, rules.retries, rules.per_device)
    };
    let failed =
        next.is_none() && outcome.status.is_failure() && outcome.status != TrialStatus::Interrupted;
    // A sweep already stopped (by this process, or another worker) is not stopped again.
    let halt = match record.stopped {
        None => failures.halt(rules.max_failures),
        Some(_) => None,
    };
    let mut events: Vec<Event> = match (record.get(&job.id), RunDir::open(&job.dir)) {
        (Some(t), Ok(run)) => unjournalled_epochs(&run, t),
        _ => Vec::new(),
    };
    events.push(Event::Finished {
        trial: job.id.clone(),
        attempt: job.attempt,
        status: outcome.status,
        message: outcome.message.clone(),
        seconds: crate::train::round_ms(outcome.seconds),
        best: outcome.best.clone(),
    });
    if let Some(reason) = &halt {
        events.push(Event::Stopped {
            reason: reason.clone(),
        });
    }
    Conclusion {
        events,
        retry: if halt.is_some() { None } else { next },
        failed,
        halt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;

    const RULES: EndRules = EndRules {
        retries: 1,
        per_device: 4,
        max_failures: 3,
    };

    fn outcome(status: TrialStatus, message: &str) -> TrialOutcome {
        TrialOutcome {
            status,
            message: Some(message.into()),
            best: None,
            seconds: 1.0,
        }
    }

    fn study(ids: &[&str]) -> StudyRecord {
        let mut s = Study::new();
        for id in ids {
            s.trial(id, &[]);
        }
        s.build()
    }

    fn job(id: &str) -> TrialJob {
        TrialJob::new(id, "/nonexistent".into(), 1)
    }

    #[test]
    fn a_failure_is_retried_once_and_journalled_each_time() {
        let record = study(&["a"]);
        let mut failures = Failures::default();
        let crash = outcome(TrialStatus::Failed, "exit 1");
        let c = conclude(&job("a"), &crash, &mut failures, &record, RULES, false);
        assert!(matches!(
            &c.events[..],
            [Event::Finished {
                status: TrialStatus::Failed,
                ..
            }]
        ));
        let retry = c.retry.expect("one retry");
        assert_eq!((retry.attempt, retry.failures, c.failed), (2, 1, false));
        let c = conclude(&retry, &crash, &mut failures, &record, RULES, false);
        assert_eq!((c.retry, c.failed), (None, true), "out of retries");
        // Interrupting: no new attempt.
        let c = conclude(
            &job("a"),
            &crash,
            &mut Failures::default(),
            &record,
            RULES,
            true,
        );
        assert_eq!(c.retry, None);
    }

    #[test]
    fn epochs_the_trial_directory_holds_beyond_the_journal_are_journalled_before_the_end() {
        use crate::trial::{EpochMetrics, Metrics};
        let dir = std::env::temp_dir().join(format!("sweep-conclude-{}", std::process::id()));
        let run = RunDir::create(&dir, true).unwrap();
        let row = |epoch, v| EpochMetrics {
            epoch,
            metrics: Metrics::new().with("val_acc", v),
        };
        run.write_metrics(&[row(1, 85.0), row(2, 87.5)]).unwrap();
        // The journal has epoch 1; epoch 2 was finished by a process nobody relayed, and the
        // attempt that resumed the trial reported only its end.
        let mut s = Study::new();
        s.trial("a", &[]).epoch("a", 1, &[("val_acc", 85.0)]);
        let record = s.build();
        let done = outcome(TrialStatus::Completed, "done");
        let job = TrialJob::new("a", dir.clone(), 2);
        let c = conclude(&job, &done, &mut Failures::default(), &record, RULES, false);
        assert!(
            matches!(
                &c.events[..],
                [Event::Epoch { row, .. }, Event::Finished { .. }] if row.epoch == 2
                    && row.get("val_acc") == Some(87.5)
            ),
            "{:?}",
            c.events
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn out_of_memory_halves_the_neighbours_before_it_counts() {
        let record = study(&["a"]);
        let oom = outcome(TrialStatus::Oom, "CUDA out of memory");
        let c = conclude(
            &job("a"),
            &oom,
            &mut Failures::default(),
            &record,
            RULES,
            false,
        );
        let next = c.retry.unwrap();
        assert_eq!((next.cap, next.failures), (Some(2), 0), "4 per device -> 2");
    }

    #[test]
    fn the_first_trials_failing_alike_halt_the_sweep_once() {
        let mut record = study(&["5e5d816f", "1edf3a25", "dd008f29", "9c0ffee0"]);
        let mut failures = Failures::default();
        let same = outcome(TrialStatus::Failed, "no such file train.py");
        let a = conclude(
            &job("5e5d816f"),
            &same,
            &mut failures,
            &record,
            RULES,
            false,
        );
        assert!(a.retry.is_some(), "the first is bad luck");
        let b = conclude(
            &job("1edf3a25"),
            &same,
            &mut failures,
            &record,
            RULES,
            false,
        );
        assert_eq!(b.retry, None, "the second is not retried: it recurs");
        let c = conclude(
            &job("dd008f29"),
            &same,
            &mut failures,
            &record,
            RULES,
            false,
        );
        let why = c.halt.clone().expect("three alike");
        assert!(why.contains("first 3 trials"), "{why}");
        assert!(matches!(c.events.last(), Some(Event::Stopped { .. })));
        for e in &c.events {
            record.apply(e);
        }
        let d = conclude(
            &job("9c0ffee0"),
            &same,
            &mut failures,
            &record,
            RULES,
            false,
        );
        assert_eq!(d.halt, None, "a sweep already stopped is not stopped again");
    }
}
