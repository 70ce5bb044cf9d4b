//! The local executor: one `sweep train --events` child process per trial, at most
//! `per_device` at a time on each device, driven by a single-threaded tokio runtime.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};

use super::slots::{DeviceSpec, Slot, SlotPool};
use super::{RunEnd, TrialJob, TrialOutcome, TrialSink, outcome_from_dir, retry_decision};
use crate::store::sweep_dir::{TRIAL_INPUT_FILE, TRIAL_LOG_FILE};
use crate::trial::TrialEvent;

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Settings of the local executor.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Devices to use.
    pub devices: Vec<DeviceSpec>,
    /// Trials at a time per device.
    pub per_device: usize,
    /// Compute threads of each trial.
    pub threads_per_trial: usize,
    /// Kill a trial after this long.
    pub timeout: Option<Duration>,
    /// Extra attempts for a failed or timed-out trial.
    pub retries: u32,
    /// The `sweep` binary to run trials with.
    pub exe: PathBuf,
}

/// Runs `jobs` to completion (or until Ctrl-C/SIGTERM), reporting to `sink`.
pub fn run(
    jobs: Vec<TrialJob>,
    opts: &LocalOptions,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<RunEnd> {
    // One thread: children are spawned from the main thread, which outlives them, so the
    // parent-death signal they are given fires only when the orchestrator itself dies.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(drive(jobs, opts, sink))
}

async fn drive(
    jobs: Vec<TrialJob>,
    opts: &LocalOptions,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<RunEnd> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut pool = SlotPool::new(&opts.devices, opts.per_device);
    let mut queue: VecDeque<TrialJob> = jobs.into();
    let mut running = tokio::task::JoinSet::new();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<(String, TrialEvent)>();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut jobs_by_id = std::collections::HashMap::new();
    let mut stopping = false;

    loop {
        while !stopping && let Some(cap) = queue.front().map(|j| j.cap) {
            let Some(slot) = pool.acquire(cap) else { break };
            let job = queue.pop_front().expect("front exists");
            sink.started(&job, &slot.device.to_string())?;
            jobs_by_id.insert(job.id.clone(), job.clone());
            running.spawn(run_child(
                job,
                slot,
                opts.clone(),
                event_tx.clone(),
                cancel_rx.clone(),
            ));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let (job, slot, outcome) = joined.expect("set is not empty").context("trial task panicked")?;
                pool.release(slot);
                // Deliver progress that arrived before the exit.
                while let Ok((id, ev)) = event_rx.try_recv() {
                    if let Some(j) = jobs_by_id.get(&id) {
                        sink.event(j, &ev);
                    }
                }
                sink.finished(&job, &outcome)?;
                if !stopping && let Some(next) = retry_decision(&job, &outcome, opts.retries) {
                    queue.push_back(next);
                }
            }
            Some((id, ev)) = event_rx.recv() => {
                if let Some(j) = jobs_by_id.get(&id) {
                    sink.event(j, &ev);
                }
            }
            _ = sigint.recv(), if !stopping => {
                stopping = true;
                let _ = cancel_tx.send(true);
            }
            _ = sigterm.recv(), if !stopping => {
                stopping = true;
                let _ = cancel_tx.send(true);
            }
        }
    }
    Ok(if stopping {
        RunEnd::Interrupted
    } else {
        RunEnd::Drained
    })
}

/// Runs one attempt in a child process and reads its outcome from the trial directory.
async fn run_child(
    job: TrialJob,
    slot: Slot,
    opts: LocalOptions,
    events: mpsc::UnboundedSender<(String, TrialEvent)>,
    mut cancel: watch::Receiver<bool>,
) -> (TrialJob, Slot, TrialOutcome) {
    let started = Instant::now();
    let outcome = match spawn(&job, slot, &opts) {
        Err(e) => TrialOutcome {
            status: crate::store::journal::TrialStatus::Failed,
            message: Some(format!("cannot start the trial: {e:#}")),
            best_test_acc: None,
            seconds: 0.0,
        },
        Ok(mut child) => {
            let stdout = child.stdout.take().expect("stdout is piped");
            let id = job.id.clone();
            let reader = tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(ev) = TrialEvent::parse(&line) {
                        let _ = events.send((id.clone(), ev));
                    }
                }
            });
            let timeout = opts.timeout.unwrap_or(Duration::MAX);
            let deadline = tokio::time::sleep(timeout.min(Duration::from_secs(100 * 365 * 86400)));
            tokio::pin!(deadline);
            let (mut timed_out, mut cancelled) = (false, false);
            let status = tokio::select! {
                s = child.wait() => s,
                _ = &mut deadline => { timed_out = true; stop(&mut child).await }
                _ = async { let _ = cancel.wait_for(|c| *c).await; } => { cancelled = true; stop(&mut child).await }
            };
            let _ = reader.await;
            let exit = describe_exit(status.as_ref().ok());
            outcome_from_dir(
                &job.dir,
                &exit,
                timed_out,
                cancelled,
                started.elapsed().as_secs_f64(),
            )
        }
    };
    (job, slot, outcome)
}

fn spawn(job: &TrialJob, slot: Slot, opts: &LocalOptions) -> anyhow::Result<tokio::process::Child> {
    let log_path = job.dir.join(TRIAL_LOG_FILE);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    writeln!(
        log,
        "=== attempt {} on {} at {} ===",
        job.attempt,
        slot.device,
        chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    )?;
    let mut cmd = tokio::process::Command::new(&opts.exe);
    cmd.arg("--threads")
        .arg(opts.threads_per_trial.to_string())
        .arg("train")
        .arg(job.dir.join(TRIAL_INPUT_FILE))
        .arg("--out")
        .arg(&job.dir)
        .arg("--overwrite")
        .arg("--events")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    match slot.device {
        DeviceSpec::Cpu => {
            cmd.arg("--device").arg("cpu");
        }
        DeviceSpec::Cuda(i) => {
            cmd.arg("--device")
                .arg("cuda:0")
                .env("CUDA_VISIBLE_DEVICES", i.to_string());
        }
    }
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGTERM the child when
    // the orchestrator dies, so that a `kill -9`ed sweep leaves no orphaned training behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot run {}", opts.exe.display()))
}

/// SIGTERM (the trial saves its state and exits), then SIGKILL after a grace period.
async fn stop(child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(s) => s,
        Err(_) => {
            child.start_kill()?;
            child.wait().await
        }
    }
}

fn describe_exit(status: Option<&ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "could not be waited for".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "ended".into(),
        },
    }
}
