//! The local executor: one `sweep trial DIR` child process per trial, at most `per_device` at
//! a time on each device. A single-threaded tokio runtime reads the children's event streams
//! (stdout) and waits for them; it makes progress only while the study waits in
//! [`Executor::next_event`], so the executor needs no locks.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::slots::{DeviceSpec, Slot, SlotPool};
use super::task::ORCHESTRATOR_PID;
use super::{ExecEvent, Executor, Interrupt, TrialJob, TrialOutcome, outcome_from_dir};
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::TRIAL_LOG_FILE;
use crate::trial::{StopReason, TrialEvent, TrialStatus};

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
    /// The `sweep` binary to run trials with.
    pub exe: PathBuf,
}

/// What a child's task tells the executor.
enum Message {
    /// A line of the child's event stream.
    Event(TrialEvent),
    /// The child exited.
    Exited {
        trial: String,
        status: Option<ExitStatus>,
    },
}

/// A signal for a child, delivered by the task that owns it (and knows whether it still runs).
enum Signal {
    Terminate,
    Kill,
}

struct Running {
    job: TrialJob,
    slot: Slot,
    started: Instant,
    signals: mpsc::UnboundedSender<Signal>,
    /// Why the orchestrator stopped it, and when to kill it if it has not exited by then.
    stopping: Option<(StopReason, Instant)>,
}

/// Child processes on this machine's CPU or GPUs.
pub struct LocalExecutor {
    runtime: tokio::runtime::Runtime,
    opts: LocalOptions,
    pool: SlotPool,
    running: HashMap<String, Running>,
    messages: mpsc::UnboundedReceiver<Message>,
    sender: mpsc::UnboundedSender<Message>,
    ready: VecDeque<ExecEvent>,
}

impl LocalExecutor {
    /// An executor with `per_device` slots on each of `opts.devices`.
    pub fn new(opts: LocalOptions) -> anyhow::Result<Self> {
        // One thread: children are spawned from the thread that runs the study, which outlives
        // them, so the parent-death signal they are given fires only when the orchestrator dies.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let (sender, messages) = mpsc::unbounded_channel();
        Ok(Self {
            runtime,
            pool: SlotPool::new(&opts.devices, opts.per_device),
            opts,
            running: HashMap::new(),
            messages,
            sender,
            ready: VecDeque::new(),
        })
    }

    fn spawn(&self, job: &TrialJob, slot: Slot) -> anyhow::Result<tokio::process::Child> {
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
        let mut cmd = tokio::process::Command::new(&self.opts.exe);
        cmd.arg("--threads")
            .arg(self.opts.threads_per_trial.to_string())
            .arg("trial")
            .arg(&job.dir)
            .arg("--events")
            .arg("stdout")
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
        // The trial asks the kernel to SIGTERM it when the orchestrator dies (see
        // `task::die_with_orchestrator`), so that a `kill -9`ed sweep leaves no orphaned
        // training behind. Asked there rather than in a fork hook here, spawning stays a cheap
        // posix_spawn.
        cmd.env(ORCHESTRATOR_PID, std::process::id().to_string());
        let _context = self.runtime.enter();
        cmd.spawn()
            .with_context(|| format!("cannot run {}", self.opts.exe.display()))
    }

    fn signal(&self, trial: &str, signal: Signal) {
        if let Some(r) = self.running.get(trial) {
            let _ = r.signals.send(signal);
        }
    }

    fn exited(&mut self, trial: String, status: Option<ExitStatus>) -> Option<ExecEvent> {
        let r = self.running.remove(&trial)?;
        self.pool.release(r.slot);
        let outcome = outcome_from_dir(
            &r.job.dir,
            &describe_exit(status.as_ref()),
            r.stopping.map(|(reason, _)| reason),
            r.started.elapsed().as_secs_f64(),
        );
        Some(ExecEvent::Ended { trial, outcome })
    }

    /// Kills the children that outlived their grace period after SIGTERM.
    fn kill_overdue(&mut self) {
        let now = Instant::now();
        let overdue: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.stopping.is_some_and(|(_, at)| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            self.signal(&id, Signal::Kill);
            if let Some(r) = self.running.get_mut(&id) {
                r.stopping = r.stopping.map(|(reason, _)| (reason, now + STOP_GRACE));
            }
        }
    }
}

impl Executor for LocalExecutor {
    fn room_for(&self, cap: Option<usize>) -> bool {
        self.pool.has_room(cap.unwrap_or(self.opts.per_device))
    }

    fn per_device(&self) -> usize {
        self.opts.per_device
    }

    fn parallelism(&self) -> Option<usize> {
        Some(self.pool.capacity())
    }

    fn start(&mut self, job: TrialJob) -> anyhow::Result<()> {
        let Some(slot) = self.pool.acquire(job.cap.unwrap_or(self.opts.per_device)) else {
            anyhow::bail!("no free slot for trial {}", job.id);
        };
        let child = match self.spawn(&job, slot) {
            Ok(c) => c,
            Err(e) => {
                self.pool.release(slot);
                self.ready.push_back(ExecEvent::Started {
                    trial: job.id.clone(),
                    device: slot.device.to_string(),
                });
                self.ready.push_back(ExecEvent::Ended {
                    trial: job.id,
                    outcome: TrialOutcome {
                        status: TrialStatus::Failed,
                        message: Some(format!("cannot start the trial: {e:#}")),
                        best: None,
                        seconds: 0.0,
                    },
                });
                return Ok(());
            }
        };
        let (signals, signal_rx) = mpsc::unbounded_channel();
        self.runtime.spawn(follow(
            job.id.clone(),
            child,
            self.sender.clone(),
            signal_rx,
        ));
        self.ready.push_back(ExecEvent::Started {
            trial: job.id.clone(),
            device: slot.device.to_string(),
        });
        self.running.insert(
            job.id.clone(),
            Running {
                job,
                slot,
                started: Instant::now(),
                signals,
                stopping: None,
            },
        );
        Ok(())
    }

    fn stop(&mut self, trial: &str, reason: StopReason) -> anyhow::Result<()> {
        let Some(r) = self.running.get_mut(trial) else {
            return Ok(());
        };
        if r.stopping.is_some() {
            return Ok(());
        }
        // The reason goes in the trial's directory; SIGTERM makes it look now.
        RunDir::open(&r.job.dir)?.request_stop(reason)?;
        r.stopping = Some((reason, Instant::now() + STOP_GRACE));
        self.signal(trial, Signal::Terminate);
        Ok(())
    }

    fn interrupt(&mut self) -> anyhow::Result<Interrupt> {
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.stop(&id, StopReason::Interrupted)?;
        }
        Ok(Interrupt::Stopping)
    }

    fn next_event(&mut self, timeout: Duration) -> anyhow::Result<ExecEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Ok(e);
            }
            let received = self
                .runtime
                .block_on(async { tokio::time::timeout(timeout, self.messages.recv()).await });
            match received {
                Ok(Some(Message::Event(e))) => return Ok(ExecEvent::Progress(e)),
                Ok(Some(Message::Exited { trial, status })) => {
                    if let Some(e) = self.exited(trial, status) {
                        return Ok(e);
                    }
                }
                Ok(None) => anyhow::bail!("the executor's message channel closed"),
                Err(_) => {
                    self.kill_overdue();
                    return Ok(ExecEvent::Tick);
                }
            }
        }
    }
}

/// Owns one child: forwards its event stream, delivers signals while it runs, reports its exit.
async fn follow(
    trial: String,
    mut child: tokio::process::Child,
    out: mpsc::UnboundedSender<Message>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let events = out.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(ev) = TrialEvent::parse(&line) {
                let _ = events.send(Message::Event(ev));
            }
        }
    });
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            Some(signal) = signals.recv() => match signal {
                Signal::Terminate => {
                    if let Some(pid) = child.id() {
                        // SAFETY: signalling our own child, which has not been reaped yet.
                        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                    }
                }
                Signal::Kill => {
                    let _ = child.start_kill();
                }
            },
        }
    };
    // Every event the child wrote is delivered before its exit (unless something it left
    // behind still holds the pipe open).
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let _ = out.send(Message::Exited { trial, status });
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
