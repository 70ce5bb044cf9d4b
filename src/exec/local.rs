//! The local executor: one `sweep trial DIR` child process per trial (or one `sweep trial
//! DIR...` for a pack of trials trained together), at most `per_device` processes at a time on
//! each device. A single-threaded tokio runtime reads the children's event streams
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
use super::{ExecEvent, Executor, Interrupt, TrialJob, TrialOutcome, outcome_from_dir};
use crate::events::TrialEvent;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::TRIAL_LOG_FILE;
use crate::trial::{StopReason, TrialStatus};

/// The environment variable through which the local executor tells a trial its pid.
pub const ORCHESTRATOR_PID: &str = "SWEEP_ORCHESTRATOR_PID";

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
        process: u64,
        status: Option<ExitStatus>,
    },
}

/// A signal for a child, delivered by the task that owns it (and knows whether it still runs).
enum Signal {
    Terminate,
    Kill,
    /// SIGUSR1: a pack's process reads its trials' stop requests now.
    Look,
}

/// A trial running in a child process.
struct Running {
    job: TrialJob,
    /// The process it runs in.
    process: u64,
    started: Instant,
    /// Why the orchestrator stopped it, and when to kill its process if it has not ended by
    /// then.
    stopping: Option<(StopReason, Instant)>,
}

/// A child process: one trial, or a pack of trials trained together.
struct Process {
    slot: Slot,
    /// Its trials that have not ended yet, the first one's directory receiving the thread
    /// requests.
    trials: Vec<String>,
    /// Trials it started with.
    packed: usize,
    /// The compute threads it has been asked to use.
    threads: usize,
    started: Instant,
    signals: mpsc::UnboundedSender<Signal>,
}

/// Child processes on this machine's CPU or GPUs.
pub struct LocalExecutor {
    runtime: tokio::runtime::Runtime,
    opts: LocalOptions,
    pool: SlotPool,
    running: HashMap<String, Running>,
    processes: HashMap<u64, Process>,
    next_process: u64,
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
            processes: HashMap::new(),
            next_process: 0,
            messages,
            sender,
            ready: VecDeque::new(),
        })
    }

    fn spawn(&self, group: &[TrialJob], slot: Slot) -> anyhow::Result<tokio::process::Child> {
        let leader = &group[0];
        let log_path = leader.dir.join(TRIAL_LOG_FILE);
        let header = format!(
            "=== attempt {} on {} at {}{} ===",
            leader.attempt,
            slot.device,
            chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            if group.len() > 1 {
                format!(
                    ", packed with {}",
                    crate::text::count(group.len() - 1, "other trial")
                )
            } else {
                String::new()
            }
        );
        let open_log = |path: &std::path::Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))
        };
        let mut log = open_log(&log_path)?;
        writeln!(log, "{header}")?;
        // The pack's process logs into its first trial's log; the others point there.
        for job in &group[1..] {
            writeln!(
                open_log(&job.dir.join(TRIAL_LOG_FILE))?,
                "=== attempt {} on {}: trained in a pack; its log is {} ===",
                job.attempt,
                slot.device,
                log_path.display()
            )?;
        }
        let mut cmd = tokio::process::Command::new(&self.opts.exe);
        cmd.arg("--threads")
            .arg(self.opts.threads_per_trial.to_string())
            .arg("trial")
            .args(group.iter().map(|j| &j.dir))
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
        // `trial_process::die_with_orchestrator`), so that a `kill -9`ed sweep leaves no orphaned
        // training behind. Asked there rather than in a fork hook here, spawning stays a cheap
        // posix_spawn.
        cmd.env(ORCHESTRATOR_PID, std::process::id().to_string());
        let _context = self.runtime.enter();
        cmd.spawn()
            .with_context(|| format!("cannot run {}", self.opts.exe.display()))
    }

    fn signal(&self, process: u64, signal: Signal) {
        if let Some(p) = self.processes.get(&process) {
            let _ = p.signals.send(signal);
        }
    }

    /// A trial ended: its outcome, read from its directory (`exit` tells how its process
    /// ended, if it did).
    fn ended(&mut self, trial: &str, exit: &str) -> Option<ExecEvent> {
        let r = self.running.remove(trial)?;
        if let Some(p) = self.processes.get_mut(&r.process) {
            p.trials.retain(|t| t != trial);
        }
        let outcome = outcome_from_dir(
            &r.job.dir,
            exit,
            r.stopping.map(|(reason, _)| reason),
            r.started.elapsed().as_secs_f64(),
        );
        Some(ExecEvent::Ended {
            trial: trial.to_string(),
            outcome,
        })
    }

    /// A process exited: its slot is free, and its trials that had not ended end now.
    fn exited(&mut self, process: u64, status: Option<ExitStatus>) {
        let Some(p) = self.processes.remove(&process) else {
            return;
        };
        self.pool.release(p.slot);
        let exit = describe_exit(status.as_ref());
        for trial in p.trials {
            if let Some(e) = self.ended(&trial, &exit) {
                self.ready.push_back(e);
            }
        }
    }

    /// Kills the processes of trials that outlived their grace period after a stop request.
    fn kill_overdue(&mut self) {
        let now = Instant::now();
        let overdue: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.stopping.is_some_and(|(_, at)| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            let Some(r) = self.running.get_mut(&id) else {
                continue;
            };
            r.stopping = r.stopping.map(|(reason, _)| (reason, now + STOP_GRACE));
            let process = r.process;
            self.signal(process, Signal::Kill);
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

    fn lend_idle_cores(&mut self, idle: bool) -> anyhow::Result<()> {
        let mut cpu: Vec<u64> = self
            .processes
            .iter()
            .filter(|(_, p)| {
                p.slot.device == DeviceSpec::Cpu
                    && p.trials
                        .iter()
                        .any(|t| self.running.get(t).is_some_and(|r| r.stopping.is_none()))
            })
            .map(|(&id, _)| id)
            .collect();
        if cpu.is_empty() {
            return Ok(());
        }
        // The cores the CPU's slots stand for, shared out evenly (the longest-running
        // processes get the remainder) while nothing waits; each slot's own share otherwise.
        let base = self.opts.threads_per_trial;
        let budget = self.opts.per_device * base;
        cpu.sort_by_key(|id| self.processes[id].started);
        let n = cpu.len();
        for (k, id) in cpu.iter().enumerate() {
            let want = if idle {
                (budget / n + usize::from(k < budget % n)).max(base)
            } else {
                base
            };
            let p = self.processes.get_mut(id).expect("listed above");
            if p.threads != want {
                let leader = &self.running[&p.trials[0]].job.dir;
                RunDir::open(leader)?.request_threads(want)?;
                p.threads = want;
            }
        }
        Ok(())
    }

    fn start(&mut self, group: Vec<TrialJob>) -> anyhow::Result<()> {
        anyhow::ensure!(!group.is_empty(), "no trial to start");
        // A new trial needs its cores back.
        self.lend_idle_cores(false)?;
        let cap = group
            .iter()
            .filter_map(|j| j.cap)
            .min()
            .unwrap_or(self.opts.per_device);
        let Some(slot) = self.pool.acquire(cap) else {
            anyhow::bail!("no free slot for trial {}", group[0].id);
        };
        let child = match self.spawn(&group, slot) {
            Ok(c) => c,
            Err(e) => {
                self.pool.release(slot);
                for job in group {
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
                }
                return Ok(());
            }
        };
        let process = self.next_process;
        self.next_process += 1;
        let (signals, signal_rx) = mpsc::unbounded_channel();
        self.runtime
            .spawn(follow(process, child, self.sender.clone(), signal_rx));
        let now = Instant::now();
        self.processes.insert(
            process,
            Process {
                slot,
                trials: group.iter().map(|j| j.id.clone()).collect(),
                packed: group.len(),
                threads: self.opts.threads_per_trial,
                started: now,
                signals,
            },
        );
        for job in group {
            self.ready.push_back(ExecEvent::Started {
                trial: job.id.clone(),
                device: slot.device.to_string(),
            });
            self.running.insert(
                job.id.clone(),
                Running {
                    job,
                    process,
                    started: now,
                    stopping: None,
                },
            );
        }
        Ok(())
    }

    fn stop(&mut self, trial: &str, reason: StopReason) -> anyhow::Result<()> {
        let Some(r) = self.running.get_mut(trial) else {
            return Ok(());
        };
        if r.stopping.is_some() {
            return Ok(());
        }
        // The reason goes in the trial's directory; a process of one trial is sent SIGTERM to
        // look now, a pack's process SIGUSR1 (it goes on with its other trials).
        RunDir::open(&r.job.dir)?.request_stop(reason)?;
        r.stopping = Some((reason, Instant::now() + STOP_GRACE));
        let process = r.process;
        let packed = self.processes.get(&process).is_some_and(|p| p.packed > 1);
        self.signal(
            process,
            if packed {
                Signal::Look
            } else {
                Signal::Terminate
            },
        );
        Ok(())
    }

    fn interrupt(&mut self) -> anyhow::Result<Interrupt> {
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.stop(&id, StopReason::Interrupted)?;
        }
        let processes: Vec<u64> = self.processes.keys().copied().collect();
        for p in processes {
            self.signal(p, Signal::Terminate);
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
                Ok(Some(Message::Event(e))) => {
                    // A trial of a pack ends when it says so; the process goes on with the
                    // others. A process of one trial ends with the trial.
                    if let TrialEvent::End { trial, .. } = &e
                        && let Some(r) = self.running.get(trial)
                        && self.processes.get(&r.process).is_some_and(|p| p.packed > 1)
                    {
                        let trial = trial.clone();
                        if let Some(ended) = self.ended(&trial, "ended in its pack") {
                            self.ready.push_back(ended);
                        }
                    }
                    return Ok(ExecEvent::Progress(e));
                }
                Ok(Some(Message::Exited { process, status })) => self.exited(process, status),
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
    process: u64,
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
                Signal::Look => {
                    if let Some(pid) = child.id() {
                        // SAFETY: as above; a pack's process handles SIGUSR1.
                        unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
                    }
                }
            },
        }
    };
    // Every event the child wrote is delivered before its exit (unless something it left
    // behind still holds the pipe open).
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let _ = out.send(Message::Exited { process, status });
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
