//! Executors run trials somewhere and say what happens: [`local::LocalExecutor`] (CPU/GPU
//! slots on this machine, one child process per trial or per pack of trials) and
//! [`slurm::SlurmExecutor`] (job arrays on a Slurm cluster). Both implement [`Executor`]:
//! start a trial, stream its events, stop one trial with a reason, learn how it ended. They
//! know nothing about neural networks (this module does not import `train`): a trial is a
//! directory, and `sweep trial DIR` ([`crate::trial_process`]) runs it and reports
//! [`TrialEvent`]s ([`crate::events`]) in one schema everywhere.

pub mod local;
pub mod slots;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::TrialEvent;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::TRIAL_LOG_FILE;
use crate::trial::{Metrics, StopReason, TrialStatus};

/// One attempt at one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialJob {
    /// Trial id.
    pub id: String,
    /// The trial directory (holds its input; the run writes its files here).
    pub dir: PathBuf,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Attempts of this run that counted against `--retries`.
    pub failures: u32,
    /// Most trials that may share its device, itself included (None: as many as the
    /// executor allows; lowered after an out-of-memory failure).
    pub cap: Option<usize>,
    /// Most trials it may be packed with, itself included (None: as many as `--pack` allows;
    /// halved after an out-of-memory failure in a pack).
    pub pack: Option<usize>,
}

impl TrialJob {
    /// A fresh attempt `attempt` of trial `id` in `dir`: no failure counted yet, no cap on its
    /// neighbours or its pack.
    pub fn new(id: &str, dir: PathBuf, attempt: u32) -> Self {
        Self {
            id: id.to_string(),
            dir,
            attempt,
            failures: 0,
            cap: None,
            pack: None,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialOutcome {
    /// The status to record.
    pub status: TrialStatus,
    /// Why, when it did not complete.
    pub message: Option<String>,
    /// What the trial reported at its best epoch.
    pub best: Option<Metrics>,
    /// Wall time of the attempt.
    pub seconds: f64,
}

/// What an executor reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    /// An attempt started on `device`.
    Started {
        /// Trial id.
        trial: String,
        /// Where it runs.
        device: String,
    },
    /// A running trial reported progress.
    Progress(TrialEvent),
    /// An attempt ended.
    Ended {
        /// Trial id.
        trial: String,
        /// How.
        outcome: TrialOutcome,
    },
    /// Trials went to a batch system as job `job` (Slurm).
    Submitted {
        /// The batch system's job id.
        job: String,
        /// The trials.
        trials: Vec<String>,
    },
    /// Something worth telling the user.
    Message(String),
    /// Nothing happened before the timeout.
    Tick,
}

/// What an executor does when the sweep is interrupted (Ctrl-C, SIGTERM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Its trials are stopping; their `Ended` events follow.
    Stopping,
    /// Its trials keep running elsewhere; the orchestrator stops following them (Slurm).
    Detached,
}

/// Runs trials and reports what happens to them.
pub trait Executor {
    /// True when a trial that tolerates at most `cap` trials on its device could start now.
    fn room_for(&self, cap: Option<usize>) -> bool;
    /// Trials that may share one device (the cap an out-of-memory retry halves).
    fn per_device(&self) -> usize;
    /// How many trials it runs at once (None: as many as it is given, the batch system
    /// queues the rest).
    fn parallelism(&self) -> Option<usize>;
    /// Starts an attempt of each trial of `group` (their directories already hold their
    /// input): one trial, or several built-in trials of one architecture trained together in
    /// one process (a pack; the local executor only).
    fn start(&mut self, group: Vec<TrialJob>) -> anyhow::Result<()>;
    /// Stops one running trial for `reason`; its `Ended` event follows.
    fn stop(&mut self, trial: &str, reason: StopReason) -> anyhow::Result<()>;
    /// Lends the cores of free slots to the trials running beside them when `idle` (nothing
    /// waits to start), or takes them back; the trials change their thread count between
    /// steps. Only CPU slots have cores to lend.
    fn lend_idle_cores(&mut self, idle: bool) -> anyhow::Result<()>;
    /// Reacts to Ctrl-C or SIGTERM of the orchestrator.
    fn interrupt(&mut self) -> anyhow::Result<Interrupt>;
    /// The next thing that happens, or [`ExecEvent::Tick`] after `timeout`.
    fn next_event(&mut self, timeout: Duration) -> anyhow::Result<ExecEvent>;
}

/// True when a log or message says the GPU ran out of memory.
fn mentions_oom(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("out of memory") || t.contains("out_of_memory")
}

/// The outcome of an attempt, read from what it left in its directory.
///
/// `exit` describes how the process ended (for crashes); `stopped` is the reason the
/// orchestrator stopped it, if it did.
pub fn outcome_from_dir(
    dir: &Path,
    exit: &str,
    stopped: Option<StopReason>,
    seconds: f64,
) -> TrialOutcome {
    let summary = RunDir::open(dir).ok().and_then(|d| d.read_summary().ok());
    let best = summary
        .as_ref()
        .filter(|s| s.best_epoch > 0)
        .map(|s| s.best.clone());
    let log_tail = tail(&dir.join(TRIAL_LOG_FILE), 5);
    let message = summary.as_ref().and_then(|s| s.message.clone());
    let (status, message) = match summary.as_ref().map(|s| s.status) {
        Some(s @ (TrialStatus::Completed | TrialStatus::Diverged | TrialStatus::Pruned)) => {
            (s, message)
        }
        _ if stopped.is_some() => {
            let reason = stopped.expect("checked");
            (reason.status(), Some(reason.why().to_string()))
        }
        Some(TrialStatus::Interrupted) => (TrialStatus::Interrupted, message),
        Some(TrialStatus::Failed) => {
            let mut m = message.unwrap_or_default();
            let status = if mentions_oom(&m) || mentions_oom(&log_tail) {
                TrialStatus::Oom
            } else {
                TrialStatus::Failed
            };
            if !log_tail.is_empty() && !m.contains(log_tail.lines().last().unwrap_or("")) {
                m.push_str(&format!("; log ends: {}", log_tail.replace('\n', " | ")));
            }
            (status, Some(m))
        }
        _ => {
            let status = if mentions_oom(&log_tail) {
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
        best,
        seconds,
    }
}

/// The last `n` non-empty lines of a trial's log ("" if unreadable), without the
/// `=== attempt N ===` headers the executor writes between attempts.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            let header = l.starts_with("=== attempt ") && l.ends_with(" ===");
            !(l.trim().is_empty() || header)
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuda_out_of_memory_in_the_log_is_recorded_as_oom() {
        let dir = std::env::temp_dir().join(format!("sweep-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(TRIAL_LOG_FILE),
            "epoch 1\nError: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")\n",
        )
        .unwrap();
        let o = outcome_from_dir(&dir, "exited with code 1", None, 3.0);
        assert_eq!(o.status, TrialStatus::Oom);
        assert!(o.message.unwrap().contains("OUT_OF_MEMORY"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_child_that_left_no_summary_is_a_failure_with_its_exit() {
        let o = outcome_from_dir(Path::new("/nonexistent"), "killed by signal 9", None, 1.0);
        assert_eq!(o.status, TrialStatus::Failed);
        assert!(o.message.unwrap().contains("signal 9"));
    }

    #[test]
    fn a_trial_the_orchestrator_stopped_ends_with_the_reason() {
        let o = outcome_from_dir(
            Path::new("/nonexistent"),
            "killed by signal 9",
            Some(StopReason::Pruned),
            1.0,
        );
        assert_eq!(o.status, TrialStatus::Pruned);
        let o = outcome_from_dir(
            Path::new("/nonexistent"),
            "killed by signal 9",
            Some(StopReason::Timeout),
            1.0,
        );
        assert_eq!(o.status, TrialStatus::Timeout);
    }
}
