//! The trial process, `sweep trial`: the one entry point that runs a trial everywhere, on a local slot and inside
//! a Slurm array task alike. It reads the trial directory's `trial.json` (how to run it) and
//! `trial.toml` (its configuration), runs the built-in trainer or the user's program, and
//! reports [`crate::events::TrialEvent`]s on stdout or into `events.jsonl`. Everything here
//! runs in that process, not in the orchestrator.

pub mod command;
mod slurm_task;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::events::{Events, TASK_FILE};
use crate::exec::local::ORCHESTRATOR_PID;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::{EVENTS_FILE, TRIAL_INPUT_FILE, TRIAL_TASK_FILE};
use crate::train::config::TrialConfig;
use crate::train::pack::{PackedTrial, train_pack};
use crate::train::{self as trainer, Observer, TrainContext};
use crate::trial::{TrialStatus, TrialTask};

/// Where a trial process sends its event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsTo {
    /// Stdout, read live by the local executor.
    Stdout,
    /// `events.jsonl` in the trial directory, polled by the Slurm executor.
    File,
}

/// The trial directory on line `task` (from 0) of a Slurm array's task list.
pub fn dir_from_list(list: &Path, task: usize) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read task list {}", list.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .get(task)
        .map(|l| PathBuf::from(l.trim()))
        .with_context(|| {
            format!(
                "{}: the list has {} trials, no task {task}",
                list.display(),
                lines.len()
            )
        })
}

/// Reads a trial directory's `trial.json`.
pub fn read_task(dir: &Path) -> anyhow::Result<TrialTask> {
    let path = dir.join(TRIAL_TASK_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {} a trial directory?)",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid trial task", path.display()))
}

/// A non-empty environment variable.
fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Makes this trial process end (SIGTERM, which saves its state) when the orchestrator that
/// started it dies, even by `kill -9`; exits at once if it is already gone.
fn die_with_orchestrator() {
    let Some(pid) = env(ORCHESTRATOR_PID).and_then(|p| p.parse::<i32>().ok()) else {
        return;
    };
    // SAFETY: prctl and getppid only concern this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != pid {
            std::process::exit(i32::from(crate::trial::EXIT_INTERRUPTED));
        }
    }
}

/// Runs the trial in `dir` and returns how it ended (its exit code says the same).
///
/// In a Slurm task with a time limit, the trial stops `SWEEP_REQUEUE_BEFORE` seconds before it
/// and requeues the task, which continues from its last finished epoch.
pub fn run(
    dir: &Path,
    events: EventsTo,
    device: Option<&str>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<TrialStatus> {
    die_with_orchestrator();
    let _only_attempt = hold_trial(dir)?;
    let task = read_task(dir)?;
    let in_slurm = env("SLURM_ARRAY_JOB_ID").is_some();
    let requeue = Arc::new(AtomicBool::new(false));
    if in_slurm {
        slurm_task::watch_time_limit(stop, &requeue);
    }
    let gpus = slurm_task::SlurmGpus::from_env();
    let device = device.map_or_else(|| gpus.device(), str::to_string);
    let mut observer = match events {
        EventsTo::Stdout => Box::new(Events::stdout(&task.id)) as Box<dyn Observer>,
        EventsTo::File => Box::new(Events::file(&task.id, &dir.join(EVENTS_FILE))?),
    };
    if in_slurm {
        let _ = std::fs::remove_file(dir.join(TASK_FILE));
    }
    let result = match &task.command {
        Some(cmd) => command::run(dir, &task, cmd, &device, stop, observer.as_mut()),
        None => train_builtin(dir, &task, &device, stop, observer.as_mut()),
    };
    if in_slurm {
        slurm_task::end(dir, &result, requeue.load(Ordering::Relaxed), gpus, device)?;
    }
    result
}

/// Takes the trial directory's lock for this process's lifetime. An earlier attempt whose
/// orchestrator died may still be stopping there (it got SIGTERM and is saving its state, or
/// stopping its program): two attempts must never write one directory at once.
fn hold_trial(dir: &Path) -> anyhow::Result<crate::store::lock::FileLock> {
    use crate::store::lock;
    use crate::store::run_dir::TRIAL_LOCK_FILE;
    let path = dir.join(TRIAL_LOCK_FILE);
    if let Some(held) = lock::try_lock(&path)? {
        return Ok(held);
    }
    note!(
        "{}: waiting for an earlier attempt of this trial to end",
        dir.display()
    );
    lock::lock_waiting(&path)
}

/// Runs the built-in trials in `dirs` as one pack (see [`crate::train::pack`]); returns the
/// first status among them that is not final, else completed. `look` is raised when a stop
/// request for one of them waits in its directory.
pub fn run_pack(
    dirs: &[PathBuf],
    events: EventsTo,
    device: Option<&str>,
    stop: &Arc<AtomicBool>,
    look: &AtomicBool,
) -> anyhow::Result<TrialStatus> {
    die_with_orchestrator();
    let device = crate::devices::open(device.unwrap_or("cpu"))?;
    let mut tasks = Vec::new();
    for dir in dirs {
        let task = read_task(dir)?;
        anyhow::ensure!(
            task.command.is_none(),
            "{}: a command trial cannot be packed (only built-in trials train together)",
            dir.display()
        );
        let config = TrialConfig::load(&dir.join(TRIAL_INPUT_FILE), &[])?;
        let (run, resume) = attempt_run_dir(dir)?;
        let observer: Box<dyn Observer> = match events {
            EventsTo::Stdout => Box::new(Events::stdout(&task.id)),
            EventsTo::File => Box::new(Events::file(&task.id, &dir.join(EVENTS_FILE))?),
        };
        tasks.push((task, config, run, resume, observer));
    }
    let trials: Vec<PackedTrial> = tasks
        .iter_mut()
        .map(|(task, config, run, resume, observer)| PackedTrial {
            config,
            run,
            objective: &task.objective,
            resume: *resume,
            observer: observer.as_mut(),
        })
        .collect();
    let mut status = TrialStatus::Completed;
    for (dir, result) in dirs.iter().zip(train_pack(trials, &device, stop, look)) {
        let s = match result {
            Ok(summary) => summary.status,
            Err(e) => {
                note!("{}: {e:#}", dir.display());
                TrialStatus::Failed
            }
        };
        if !s.is_final() && status.is_final() {
            status = s;
        }
    }
    Ok(status)
}

/// The run directory of a trial's attempt, and whether it resumes: an attempt after an
/// interruption continues from the state the last one saved; otherwise it starts afresh.
fn attempt_run_dir(dir: &Path) -> anyhow::Result<(RunDir, bool)> {
    let earlier = RunDir::open(dir)?;
    if crate::train::state::exists(&earlier) {
        Ok((earlier, true))
    } else {
        Ok((RunDir::create(dir, true)?, false))
    }
}

fn train_builtin(
    dir: &Path,
    task: &TrialTask,
    device: &str,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> anyhow::Result<TrialStatus> {
    let config = TrialConfig::load(&dir.join(TRIAL_INPUT_FILE), &[])?;
    let device = crate::devices::open(device)?;
    let (run, resume) = attempt_run_dir(dir)?;
    let ctx = TrainContext {
        device: &device,
        stop,
        run: &run,
        objective: &task.objective,
        resume,
    };
    Ok(trainer::train(&config, &ctx, observer)?.status)
}
