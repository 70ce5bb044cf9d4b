//! What a trial process does because it runs in a Slurm array task: find the GPUs it was
//! given, stop before the job's time limit and requeue the task, and leave a record of how it
//! ended for the Slurm executor ([`crate::events::TaskRecord`]).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::env;
use crate::events::{REQUEUE_BEFORE, TaskRecord};
use crate::exec::slurm::client::{parse_duration, slurm};
use crate::trial::TrialStatus;

/// The GPUs Slurm assigned to this task: `CUDA_VISIBLE_DEVICES`, or else `SLURM_JOB_GPUS`
/// (set without a device cgroup).
pub(super) struct SlurmGpus {
    visible: Option<String>,
    job_gpus: Option<String>,
}

impl SlurmGpus {
    pub(super) fn from_env() -> Self {
        Self {
            visible: env("CUDA_VISIBLE_DEVICES"),
            job_gpus: env("SLURM_JOB_GPUS"),
        }
    }

    /// The device to train on when none is given: the first visible GPU, or when only
    /// SLURM_JOB_GPUS says which, that GPU by its index on the node (the process sees every
    /// GPU then, so nothing needs to be changed in its environment).
    pub(super) fn device(&self) -> String {
        if !candle_core::utils::cuda_is_available() {
            if let Some(ids) = self.visible.as_ref().or(self.job_gpus.as_ref()) {
                note!(
                    "GPU {ids} assigned, but this binary was built without CUDA: training on the CPU"
                );
            }
            return "cpu".into();
        }
        match (&self.visible, &self.job_gpus) {
            (Some(v), _) if v != "NoDevFiles" => "cuda:0".into(),
            (_, Some(ids)) => match ids
                .split(',')
                .next()
                .and_then(|i| i.trim().parse::<usize>().ok())
            {
                Some(i) => format!("cuda:{i}"),
                None => "cpu".into(),
            },
            _ => "cpu".into(),
        }
    }
}

/// The time this Slurm job has left before its time limit (None: unlimited, or unknown).
fn time_left(job: &str) -> Option<Duration> {
    parse_duration(&slurm("squeue", &["-h", "-j", job, "-o", "%L"]).ok()?)
}

/// Stops the trial (raising `stop` and `requeue`) `SWEEP_REQUEUE_BEFORE` seconds before this
/// Slurm job's time limit, as `squeue` tells it when the task starts; nothing without a limit.
/// (Slurm's own warning, `--signal`, reached requeued tasks right after they restarted, before
/// they could make progress.)
pub(super) fn watch_time_limit(stop: &Arc<AtomicBool>, requeue: &Arc<AtomicBool>) {
    let Some(job) = env("SLURM_JOB_ID") else {
        return;
    };
    let Some(left) = time_left(&job) else {
        return;
    };
    let margin = env(REQUEUE_BEFORE)
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(120), Duration::from_secs)
        // However short the limit, the trial keeps a quarter of it (at least 10 s) to make
        // progress in.
        .min(left.saturating_sub((left / 4).max(Duration::from_secs(10))));
    let (stop, requeue) = (Arc::clone(stop), Arc::clone(requeue));
    std::thread::spawn(move || {
        std::thread::sleep(left - margin);
        requeue.store(true, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
    });
}

/// How the task ends once its trial has: near the time limit (`requeue`) with the trial
/// interrupted, it requeues itself and leaves no record of an end (the task goes on later);
/// otherwise it writes its [`TaskRecord`] into `dir`.
pub(super) fn end(
    dir: &Path,
    result: &anyhow::Result<TrialStatus>,
    requeue: bool,
    gpus: SlurmGpus,
    device: String,
) -> anyhow::Result<()> {
    if requeue
        && matches!(result, Ok(TrialStatus::Interrupted))
        && let Some(job) = env("SLURM_JOB_ID")
    {
        match Command::new("scontrol").args(["requeue", &job]).status() {
            Ok(s) if s.success() => {
                note!(
                    "near the time limit: requeued job {job} to continue from the last finished epoch"
                );
                return Ok(());
            }
            other => {
                note!("near the time limit, and `scontrol requeue {job}` failed ({other:?})")
            }
        }
    }
    let status = result.as_ref().map_or(TrialStatus::Failed, |s| *s);
    TaskRecord {
        job: env("SLURM_ARRAY_JOB_ID").unwrap_or_default(),
        task: env("SLURM_ARRAY_TASK_ID").unwrap_or_default(),
        node: env("SLURMD_NODENAME").unwrap_or_default(),
        cuda_visible_devices: gpus.visible,
        slurm_job_gpus: gpus.job_gpus,
        device,
        exit_code: i32::from(status.exit_code()),
        status: status.to_string(),
    }
    .write(dir)
}
