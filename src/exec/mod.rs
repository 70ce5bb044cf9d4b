//! Runs trials somewhere and reports what happens: the local executor (CPU/GPU slots, one
//! child process per trial) and the Slurm executor (one job array). Knows nothing about neural
//! networks: a trial is a directory with a `trial.toml`, and `sweep train --events` reports
//! its progress as JSON lines.

pub mod local;
pub mod progress;
pub mod slots;
pub mod slurm;

use std::path::{Path, PathBuf};

use crate::store::journal::TrialStatus;
use crate::store::run_dir::{RunDir, RunStatus};
use crate::store::sweep_dir::TRIAL_LOG_FILE;
use crate::trial::TrialEvent;

/// One attempt at one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialJob {
    /// Trial id.
    pub id: String,
    /// Position in the plan.
    pub index: usize,
    /// The trial directory (holds `trial.toml`; the run writes its files here).
    pub dir: PathBuf,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Most trials that may share its device, itself included (lowered after an OOM).
    pub cap: usize,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialOutcome {
    /// The status to record.
    pub status: TrialStatus,
    /// Why, when it did not complete.
    pub message: Option<String>,
    /// Best test accuracy reached.
    pub best_test_acc: Option<f64>,
    /// Wall time of the attempt.
    pub seconds: f64,
}

/// Receives what an executor sees, as it happens.
pub trait TrialSink {
    /// An attempt started on `device`.
    fn started(&mut self, job: &TrialJob, device: &str) -> anyhow::Result<()>;
    /// The trial reported progress.
    fn event(&mut self, job: &TrialJob, event: &TrialEvent);
    /// An attempt ended.
    fn finished(&mut self, job: &TrialJob, outcome: &TrialOutcome) -> anyhow::Result<()>;
    /// The jobs went to a batch system as job `id` (Slurm).
    fn submitted(&mut self, _id: &str, _jobs: &[TrialJob]) -> anyhow::Result<()> {
        Ok(())
    }
    /// Something worth telling the user.
    fn message(&mut self, _text: &str) {}
}

/// How the executor run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every job ran to a final outcome (or ran out of retries).
    Drained,
    /// Stopped by Ctrl-C or SIGTERM; unfinished trials are left for a resume.
    Interrupted,
    /// The orchestrator stopped following; the trials keep running elsewhere (Slurm).
    Detached,
}

/// What the executor should do with a job after an attempt.
pub fn retry_decision(job: &TrialJob, outcome: &TrialOutcome, retries: u32) -> Option<TrialJob> {
    let next = |cap| TrialJob {
        attempt: job.attempt + 1,
        cap,
        ..job.clone()
    };
    match outcome.status {
        // Give an out-of-memory trial more room before counting it as a failure.
        TrialStatus::Oom if job.cap > 1 => Some(next(job.cap / 2)),
        TrialStatus::Oom | TrialStatus::Failed | TrialStatus::Timeout if job.attempt <= retries => {
            Some(next(job.cap))
        }
        _ => None,
    }
}

/// The outcome of a finished child, read from what it left in its directory.
///
/// `exit` describes how the process ended (for crashes), `timed_out`/`cancelled` say whether
/// we stopped it.
pub fn outcome_from_dir(
    dir: &Path,
    exit: &str,
    timed_out: bool,
    cancelled: bool,
    seconds: f64,
) -> TrialOutcome {
    let summary = RunDir::open(dir).ok().and_then(|d| d.read_summary().ok());
    let best = summary
        .as_ref()
        .filter(|s| s.best_epoch > 0)
        .map(|s| s.best_test_acc);
    let log_tail = tail(&dir.join(TRIAL_LOG_FILE), 5);
    let oom = |text: &str| {
        let t = text.to_ascii_lowercase();
        t.contains("out of memory") || t.contains("out_of_memory")
    };
    let (status, message) = match summary.as_ref().map(|s| s.status) {
        Some(RunStatus::Completed) => (TrialStatus::Completed, None),
        Some(RunStatus::Diverged) => (TrialStatus::Diverged, summary.and_then(|s| s.message)),
        _ if timed_out => (
            TrialStatus::Timeout,
            Some("exceeded --timeout-per-trial".to_string()),
        ),
        _ if cancelled => (
            TrialStatus::Interrupted,
            Some("stopped by the orchestrator".to_string()),
        ),
        Some(RunStatus::Interrupted) => (TrialStatus::Interrupted, summary.and_then(|s| s.message)),
        Some(RunStatus::Failed) => {
            let m = summary.and_then(|s| s.message).unwrap_or_default();
            if oom(&m) || oom(&log_tail) {
                (TrialStatus::Oom, Some(m))
            } else {
                (TrialStatus::Failed, Some(m))
            }
        }
        _ => {
            let status = if oom(&log_tail) {
                TrialStatus::Oom
            } else {
                TrialStatus::Failed
            };
            let mut m = format!("{exit} without a final summary");
            if !log_tail.is_empty() {
                m.push_str(&format!("; log ends: {}", log_tail.replace('\n', " | ")));
            }
            (status, Some(m))
        }
    };
    TrialOutcome {
        status,
        message,
        best_test_acc: best,
        seconds,
    }
}

/// The last `n` non-empty lines of a text file ("" if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempt: u32, cap: usize) -> TrialJob {
        TrialJob {
            id: "t".into(),
            index: 0,
            dir: PathBuf::from("/nonexistent"),
            attempt,
            cap,
        }
    }

    fn outcome(status: TrialStatus) -> TrialOutcome {
        TrialOutcome {
            status,
            message: None,
            best_test_acc: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn failures_are_retried_up_to_the_limit_and_results_never() {
        assert_eq!(
            retry_decision(&job(1, 2), &outcome(TrialStatus::Failed), 1).map(|j| j.attempt),
            Some(2)
        );
        assert_eq!(
            retry_decision(&job(2, 2), &outcome(TrialStatus::Failed), 1),
            None
        );
        assert_eq!(
            retry_decision(&job(1, 2), &outcome(TrialStatus::Completed), 5),
            None
        );
        assert_eq!(
            retry_decision(&job(1, 2), &outcome(TrialStatus::Diverged), 5),
            None
        );
        assert_eq!(
            retry_decision(&job(1, 2), &outcome(TrialStatus::Interrupted), 5),
            None
        );
    }

    #[test]
    fn out_of_memory_halves_the_neighbours_before_it_counts_as_a_failure() {
        let j = retry_decision(&job(1, 4), &outcome(TrialStatus::Oom), 0).unwrap();
        assert_eq!((j.attempt, j.cap), (2, 2));
        let j = retry_decision(&j, &outcome(TrialStatus::Oom), 0).unwrap();
        assert_eq!(j.cap, 1);
        assert_eq!(retry_decision(&j, &outcome(TrialStatus::Oom), 0), None);
    }

    #[test]
    fn a_cuda_out_of_memory_in_the_log_is_recorded_as_oom() {
        let dir = std::env::temp_dir().join(format!("sweep-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(TRIAL_LOG_FILE),
            "epoch 1\nError: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")\n",
        )
        .unwrap();
        let o = outcome_from_dir(&dir, "exited with code 1", false, false, 3.0);
        assert_eq!(o.status, TrialStatus::Oom);
        assert!(o.message.unwrap().contains("OUT_OF_MEMORY"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_child_that_left_no_summary_is_a_failure_with_its_exit() {
        let o = outcome_from_dir(
            Path::new("/nonexistent"),
            "killed by signal 9",
            false,
            false,
            1.0,
        );
        assert_eq!(o.status, TrialStatus::Failed);
        assert!(o.message.unwrap().contains("signal 9"));
    }
}
