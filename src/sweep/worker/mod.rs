//! Pull workers: processes that join a sweep in its results folder and run its trials until
//! none is left, with no orchestrator. Any scheduler that can start a process can start one
//! (Slurm arrays, PBS, LSF, Kubernetes, ssh), on one machine or many, over a filesystem they
//! all see.
//!
//! All coordination goes through the folder: each decision (take a trial, journal an epoch and
//! the pruner's verdict, journal an end) is made under the sweep's link-based lock on the
//! whole journal ([`SharedJournal`]). A worker renews its lease (`workers/<name>.json`) every
//! heartbeat; a trial whose worker's lease expires is journalled `stale` and taken up by
//! another worker, from its last finished epoch. A worker that finds its own trial taken from
//! it stops that trial. [`claim`] holds the rule for what to take next; [`locked`] what a worker
//! does under the lock; [`join`] makes a sweep for workers and checks that a worker may join
//! one.

mod claim;
pub mod join;
mod locked;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::events::TrialEvent;
use crate::exec::local::{LocalExecutor, LocalOptions};
use crate::exec::{ExecEvent, Executor, TrialJob, TrialOutcome};
use crate::leaderboard::Leaderboard;
use crate::store::journal::Event;
use crate::store::shared_journal::SharedJournal;
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::{self, Lease, WorkerSettings};
use crate::sweep::engine::{self, EndRules, LiveReport, Next, Publisher, Running};
use crate::sweep::plan::{Plan, PlannedTrial};
use crate::sweep::progress::{SweepProgress, Verbosity};
use crate::sweep::pruner::{Pruner, PrunerSpec};
use crate::sweep::sampler::Adaptive;
use crate::sweep::spec::SweepSpec;
use crate::sweep::study::retry::Failures;
use crate::sweep::study::{RunEnd, prepare_trial, watch_signals};
use crate::text::{count, display_value};
use crate::trial::{StopReason, TrialStatus};
use claim::Chooser;
use join::Joined;
use locked::{Decided, Looked, absorb_ends, decide, holds, lock_and_flush};

/// Options of a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Where its trials run: this machine's devices and slots.
    pub local: LocalOptions,
    /// Attempts after a failure or a timeout.
    pub retries: u32,
    /// Stop an attempt that runs longer than this.
    pub timeout: Option<Duration>,
    /// Draw live progress bars.
    pub terminal: bool,
    /// How much to print.
    pub verbosity: Verbosity,
    /// Republishes the report while the sweep runs.
    pub live_report: Option<LiveReport>,
    /// How often to look again when no trial is free to take.
    pub poll: Duration,
    /// Take at most this many trials, then leave.
    pub max_trials: Option<usize>,
}

/// What a worker did.
#[derive(Debug)]
pub struct WorkerReport {
    /// How it ended.
    pub end: RunEnd,
    /// The leaderboard when it left.
    pub leaderboard: Leaderboard,
    /// Attempts it ran.
    pub ran: usize,
    /// Trials it ran that ended without a result after their retries.
    pub failed: usize,
    /// The sweep has nothing left to run (this worker was the last to leave).
    pub finished: bool,
}

/// Runs trials of the sweep `joined` until none is left (or Ctrl-C / SIGTERM).
pub fn work(joined: &Joined, opts: &WorkerOptions) -> anyhow::Result<WorkerReport> {
    let Joined {
        dir,
        spec,
        plan,
        settings,
        notes,
    } = joined;
    let interrupted = watch_signals()?;
    let name = workers::worker_name();
    let journal = SharedJournal::open(
        &dir.journal_file(),
        &dir.journal_lock_file(),
        settings.lease(),
    )?;
    let mut lease = Lease::mine(&name);
    lease.renew(dir, Vec::new())?;
    let record = journal.record();
    let total = match &plan.adaptive {
        Some(tpe) => tpe.budget.max(record.active().count()),
        None => record.active().count(),
    };
    let kept = record.active().filter(|t| t.status.is_final()).count();
    let progress = SweepProgress::new(total, kept, opts.terminal, opts.verbosity, &plan.objective);
    progress.println(&format!(
        "worker {name} joined {} ({} of {total} trials finished; {} at a time in all, lease {} s)",
        dir.root().display(),
        kept,
        settings.parallelism,
        settings.lease_seconds
    ));
    for n in notes {
        progress.println(n);
    }
    if let Some(warning) = oversubscribed(dir, settings, &opts.local, &name) {
        progress.println(&warning);
    }
    let mut worker = Worker {
        dir,
        spec,
        plan,
        settings,
        name,
        journal,
        lease,
        renewed: Instant::now(),
        pruner: plan.pruner.as_ref().map(PrunerSpec::build),
        adaptive: plan.adaptive.clone().map(|mut t| {
            t.parallelism = settings.parallelism;
            t
        }),
        asked: HashMap::new(),
        exec: LocalExecutor::new(opts.local.clone())?,
        running: Running::default(),
        waiting: Default::default(),
        taken: 0,
        lost: Default::default(),
        progress,
        failures: Failures::default(),
        opts,
        buffered: Vec::new(),
        ran: 0,
        failed: 0,
        publisher: Publisher::new(plan.keep_checkpoints, opts.live_report),
        stopping: false,
        seen: None,
    };
    let result = worker.drive(&interrupted);
    let end = match result {
        Ok(end) => end,
        Err(e) => {
            // The lease stays: the trials go stale once it expires, when these have stopped.
            worker.stop_all(StopReason::Interrupted);
            return Err(e);
        }
    };
    let (leaderboard, finished) = worker.leave(end)?;
    let lock = worker.journal.lock_stats();
    if lock.taken > 0 && opts.verbosity != Verbosity::Quiet {
        let mean = |d: Duration| d.as_secs_f64() * 1e3 / lock.taken as f64;
        worker.progress.println(&format!(
            "worker {}: ran {}; took the sweep's lock {}, waiting {:.2} ms and holding it \
             {:.2} ms on average",
            worker.name,
            count(worker.ran, "attempt"),
            count(lock.taken, "time"),
            mean(lock.waited),
            mean(lock.held)
        ));
    }
    worker.progress.finish();
    Ok(WorkerReport {
        end,
        leaderboard,
        ran: worker.ran,
        failed: worker.failed,
        finished,
    })
}

/// A warning when the live workers on this machine, this one included, would run more compute
/// threads at once than it has cores (each worker's default takes every core).
fn oversubscribed(
    dir: &SweepDir,
    settings: &WorkerSettings,
    local: &LocalOptions,
    me: &str,
) -> Option<String> {
    let host = crate::store::shared_lock::hostname();
    let others = workers::leases(dir)
        .iter()
        .filter(|l| l.worker != me && l.host == host && l.age() <= settings.lease())
        .count();
    let cores = crate::train::threads::available();
    let cpu_slots = if local.devices.contains(&crate::exec::slots::DeviceSpec::Cpu) {
        local.per_device
    } else {
        1
    };
    let threads = (others + 1) * cpu_slots * local.threads_per_trial;
    (others > 0 && threads > cores).then(|| {
        format!(
            "note: {others} other worker{} run on this machine; with this one's {} thread{} per \
             trial they ask for {threads} threads on {cores} cores. Give each worker a share with \
             --threads-per-trial",
            if others == 1 { "" } else { "s" },
            local.threads_per_trial,
            if local.threads_per_trial == 1 {
                ""
            } else {
                "s"
            },
        )
    })
}

/// Events that need no decision wait at most this long before they are journalled (starts, and
/// epochs when no pruner judges them).
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// How often the loop looks at signals and deadlines while trials run.
const TICK: Duration = Duration::from_millis(100);

struct Worker<'a> {
    dir: &'a SweepDir,
    spec: &'a SweepSpec,
    plan: &'a Plan,
    settings: &'a WorkerSettings,
    name: String,
    journal: SharedJournal,
    lease: Lease,
    renewed: Instant,
    pruner: Option<Box<dyn Pruner>>,
    adaptive: Option<Adaptive>,
    /// Trials TPE asked for (by any worker), resolved again from their values.
    asked: HashMap<String, PlannedTrial>,
    exec: LocalExecutor,
    running: Running,
    /// Next attempts (retries) waiting for room on their device (an out-of-memory retry may
    /// run with fewer neighbours).
    waiting: VecDeque<TrialJob>,
    /// Trials taken (claimed) so far, for `--max-trials`.
    taken: usize,
    /// Running trials another worker took up (their leases expired here): nothing more of
    /// them is journalled.
    lost: std::collections::HashSet<String>,
    progress: SweepProgress,
    failures: Failures,
    opts: &'a WorkerOptions,
    /// Events waiting for the next locked append, and since when.
    buffered: Vec<(Instant, Event)>,
    ran: usize,
    failed: usize,
    publisher: Publisher,
    /// Ctrl-C or SIGTERM came: no new trial starts.
    stopping: bool,
    /// The leases and settings as last read.
    seen: Option<Looked>,
}

impl Worker<'_> {
    fn drive(&mut self, interrupted: &AtomicBool) -> anyhow::Result<RunEnd> {
        let mut look_at = Instant::now();
        loop {
            if !self.stopping && interrupted.load(Ordering::Relaxed) {
                self.stopping = true;
                self.progress
                    .println("stopping: the trials this worker runs go back to the sweep");
                self.stop_all(StopReason::Interrupted);
            }
            self.heartbeat()?;
            if self
                .buffered
                .first()
                .is_some_and(|(t, _)| t.elapsed() >= FLUSH_EVERY)
            {
                drop(lock_and_flush(
                    &mut self.journal,
                    &mut self.buffered,
                    &self.name,
                )?);
            }
            self.start_waiting()?;
            if !self.stopping && self.waiting.is_empty() && Instant::now() >= look_at {
                look_at = Instant::now() + self.opts.poll;
                while self.exec.room_for(None) && self.may_take() {
                    match self.take()? {
                        Next::Run(()) => continue,
                        Next::Wait => break,
                        Next::Done(why) => {
                            if self.running.is_empty() {
                                if let Some(why) = why {
                                    self.progress.println(&why);
                                }
                                return Ok(RunEnd::Drained);
                            }
                            break;
                        }
                    }
                }
            }
            if self.stopping && self.running.is_empty() {
                return Ok(RunEnd::Interrupted);
            }
            if !self.may_take() && self.running.is_empty() && self.waiting.is_empty() {
                self.progress.println(&format!(
                    "--max-trials {}: this worker took its trials and leaves",
                    self.taken
                ));
                return Ok(RunEnd::Drained);
            }
            self.stop_overdue();
            let wait = if self.running.is_empty() {
                look_at.saturating_duration_since(Instant::now()).max(TICK)
            } else {
                TICK
            };
            let event = self.exec.next_event(wait)?;
            if let Some(next) = self.handle(event)? {
                look_at = next;
            }
        }
    }

    /// Takes the next trial under the lock and starts it.
    fn take(&mut self) -> anyhow::Result<Next<()>> {
        let mut held = lock_and_flush(&mut self.journal, &mut self.buffered, &self.name)?;
        let ids = held_ids(&self.running, &self.waiting);
        let mine: Vec<&str> = ids.iter().map(String::as_str).collect();
        let chooser = Chooser {
            spec: self.spec,
            plan: self.plan,
            pruner: self.pruner.as_deref(),
            adaptive: self.adaptive.as_ref(),
            dir: self.dir,
            worker: &self.name,
        };
        let (decided, notes) = decide(&mut held, &chooser, self.settings, &mine, &mut self.seen)?;
        drop(held);
        self.launch(decided, notes)
    }

    /// Says what [`decide`] noted and starts the trial it took, if any.
    fn launch(&mut self, decided: Decided, notes: Vec<String>) -> anyhow::Result<Next<()>> {
        for n in &notes {
            self.progress.println(n);
        }
        Ok(match decided {
            Next::Run((job, planned)) => {
                self.asked.insert(job.id.clone(), *planned);
                self.taken += 1;
                self.start(job)?;
                Next::Run(())
            }
            Next::Wait => Next::Wait,
            Next::Done(why) => Next::Done(why),
        })
    }

    /// True while `--max-trials` lets this worker take another trial.
    fn may_take(&self) -> bool {
        self.opts.max_trials.is_none_or(|n| self.taken < n)
    }

    /// Starts the retries that wait, as room on their device allows.
    fn start_waiting(&mut self) -> anyhow::Result<()> {
        while let Some(cap) = self.waiting.front().map(|j| j.cap)
            && self.exec.room_for(cap)
        {
            let job = self.waiting.pop_front().expect("a front");
            self.start(job)?;
        }
        Ok(())
    }

    fn start(&mut self, job: TrialJob) -> anyhow::Result<()> {
        let planned = &self.asked[&job.id];
        prepare_trial(self.dir, self.plan, planned, &job)?;
        self.running.start(job.clone());
        self.ran += 1;
        self.exec.start(vec![job])?;
        self.renew()
    }

    /// Renews the lease when a heartbeat is due, and stops trials taken from this worker.
    fn heartbeat(&mut self) -> anyhow::Result<()> {
        if self.renewed.elapsed() < self.settings.heartbeat() {
            return Ok(());
        }
        self.renew()?;
        self.journal.refresh()?;
        let lost: Vec<String> = self
            .running
            .ids()
            .into_iter()
            .filter(|id| !self.lost.contains(id) && !holds(self.journal.record(), id, &self.name))
            .collect();
        for id in lost {
            self.lose(&id);
        }
        Ok(())
    }

    fn renew(&mut self) -> anyhow::Result<()> {
        self.renewed = Instant::now();
        self.lease
            .renew(self.dir, held_ids(&self.running, &self.waiting))
    }

    /// Stops a trial another worker took over; nothing more of it is journalled.
    fn lose(&mut self, id: &str) {
        self.progress.println(&format!(
            "{id} was taken from this worker (its lease expired); stopping it here"
        ));
        self.lost.insert(id.to_string());
        self.stop(id, StopReason::Interrupted);
    }

    fn stop(&mut self, id: &str, reason: StopReason) {
        if self.running.ask_stop(id)
            && let Err(e) = self.exec.stop(id, reason)
        {
            self.progress
                .println(&format!("warning: cannot stop {id}: {e:#}"));
        }
    }

    fn stop_all(&mut self, reason: StopReason) {
        for id in self.running.ids() {
            self.stop(&id, reason);
        }
    }

    fn stop_overdue(&mut self) {
        let Some(limit) = self.opts.timeout else {
            return;
        };
        for id in self.running.overdue(limit) {
            self.stop(&id, StopReason::Timeout);
        }
    }

    /// Handles one executor event; returns when to look for work again, if sooner.
    fn handle(&mut self, event: ExecEvent) -> anyhow::Result<Option<Instant>> {
        match event {
            ExecEvent::Tick | ExecEvent::Submitted { .. } => {}
            ExecEvent::Message(m) => self.progress.println(&m),
            ExecEvent::Started { trial, device } => {
                let Some(a) = self.running.began(&trial) else {
                    return Ok(None);
                };
                let (attempt, cap) = (a.job.attempt, a.job.cap);
                self.buffered.push((
                    Instant::now(),
                    Event::Started {
                        trial: trial.clone(),
                        attempt,
                        device: format!("{}/{device}", self.name),
                        cap,
                    },
                ));
                let params = self.params(&trial);
                self.progress.started(&trial, &params, &device, attempt);
            }
            ExecEvent::Progress(e) => {
                self.progress.event(&e);
                if let TrialEvent::Epoch {
                    trial, row, epochs, ..
                } = e
                    && let Some(a) = self.running.get(&trial)
                    && !self.lost.contains(&trial)
                {
                    let judge = self.pruner.is_some() && !a.stopping;
                    let epoch = Event::Epoch {
                        trial: trial.clone(),
                        row: row.clone(),
                    };
                    if judge {
                        self.epoch_judged(&trial, epoch, row.epoch, epochs)?;
                    } else {
                        self.buffered.push((Instant::now(), epoch));
                    }
                }
            }
            ExecEvent::Ended { trial, outcome } => {
                self.ended(trial, outcome)?;
                return Ok(Some(Instant::now()));
            }
        }
        Ok(None)
    }

    /// Journals an epoch and the pruner's decision on it, under the lock; stops the trial when
    /// the pruner says so.
    fn epoch_judged(
        &mut self,
        trial: &str,
        epoch_event: Event,
        epoch: usize,
        epochs: Option<usize>,
    ) -> anyhow::Result<()> {
        let mut held = lock_and_flush(&mut self.journal, &mut self.buffered, &self.name)?;
        if !holds(held.record(), trial, &self.name) {
            drop(held);
            self.lose(trial);
            return Ok(());
        }
        held.append(&[epoch_event])?;
        let pruner = self.pruner.as_deref().expect("judged only with a pruner");
        let epochs = epochs.or_else(|| self.asked.get(trial).and_then(|p| p.input.epochs()));
        let judgement = engine::judge(pruner, held.record(), trial, epoch, epochs);
        if let Some(d) = judgement.decision {
            held.append(&[Event::Decision(d)])?;
        }
        drop(held);
        if let Some(line) = &judgement.say {
            self.progress.println(line);
        }
        if let Some(how) = judgement.stop {
            self.stop(trial, how);
        }
        Ok(())
    }

    /// Journals an attempt's end (see [`engine::conclude`]), retries it here when the policy
    /// says so, and republishes.
    fn ended(&mut self, trial: String, outcome: TrialOutcome) -> anyhow::Result<()> {
        let Some(attempt) = self.running.end(&trial) else {
            return Ok(());
        };
        let job = attempt.job;
        if self.lost.remove(&trial) {
            self.progress
                .println(&format!("{trial} stopped here; another worker runs it"));
            return self.renew();
        }
        let mut held = lock_and_flush(&mut self.journal, &mut self.buffered, &self.name)?;
        if !holds(held.record(), &trial, &self.name) {
            drop(held);
            self.progress.println(&format!(
                "{trial} ended here after another worker took it up"
            ));
            return self.renew();
        }
        // How every worker's trials ended so far tells a failure that will recur.
        absorb_ends(&mut self.failures, held.take_ends(), held.record());
        let rules = EndRules {
            retries: self.opts.retries,
            per_device: self.exec.per_device(),
            max_failures: self.plan.max_failures,
        };
        let end = engine::conclude(
            &job,
            &outcome,
            &mut self.failures,
            held.record(),
            rules,
            self.stopping,
        );
        let mut events = end.events.clone();
        if let Some(next) = &end.retry {
            events.push(Event::Claimed {
                trial: trial.clone(),
                attempt: next.attempt,
                worker: self.name.clone(),
            });
        } else if end.failed {
            self.failed += 1;
        }
        held.append(&events)?;
        let record = held.record();
        let failed_now = record
            .active()
            .filter(|t| t.status.is_failure() && t.status != TrialStatus::Interrupted)
            .count();
        let finished_now = record.active().filter(|t| t.status.is_final()).count();
        self.progress.sync(
            finished_now + failed_now,
            failed_now,
            record.count(TrialStatus::Pruned),
        );
        let board = self.publisher.ended(self.dir, held.record(), false)?;
        // The next trial is taken under the same hold: one lock per trial, not two.
        let next = if end.retry.is_none()
            && end.halt.is_none()
            && !self.stopping
            && self.opts.max_trials.is_none_or(|n| self.taken < n)
            && self.exec.room_for(None)
        {
            let ids = held_ids(&self.running, &self.waiting);
            let mine: Vec<&str> = ids.iter().map(String::as_str).collect();
            let chooser = Chooser {
                spec: self.spec,
                plan: self.plan,
                pruner: self.pruner.as_deref(),
                adaptive: self.adaptive.as_ref(),
                dir: self.dir,
                worker: &self.name,
            };
            Some(decide(
                &mut held,
                &chooser,
                self.settings,
                &mine,
                &mut self.seen,
            )?)
        } else {
            None
        };
        drop(held);
        let best = board
            .as_ref()
            .and_then(|b| b.best().and_then(|r| r.value.map(|v| (r.trial.clone(), v))));
        self.progress
            .finished(&trial, &outcome, end.retry.is_some(), best);
        if let Some(reason) = &end.halt {
            self.progress.println(reason);
            self.stop_all(StopReason::Interrupted);
        }
        if board.is_some() {
            self.republish_report();
        }
        if let Some(next) = end.retry {
            self.waiting.push_back(next);
            self.start_waiting()?;
            return self.renew();
        }
        if let Some((decided, notes)) = next {
            self.launch(decided, notes)?;
        }
        self.renew()
    }

    /// Rewrites the live report when it is due (see [`Publisher::live_report`]).
    fn republish_report(&mut self) {
        let record = self.journal.record();
        let finished = record.active().filter(|t| t.status.is_final()).count();
        let total = engine::total_trials(self.plan, record);
        if let Some(warning) = self.publisher.live_report(self.dir, finished, total) {
            self.progress.println(&warning);
        }
    }

    /// The searched values of a trial, for the progress lines.
    fn params(&self, trial: &str) -> String {
        self.journal.record().get(trial).map_or(String::new(), |t| {
            t.def
                .params
                .iter()
                .filter(|(k, _)| k.as_str() != "seed" || self.plan.repeats > 1)
                .map(|(k, v)| format!("{k}={}", display_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Leaves the sweep: journals what waits, publishes the leaderboard, and, when nothing is
    /// left to run anywhere, drops the states of paused trials no one will promote. Returns the
    /// leaderboard and whether the sweep is finished.
    fn leave(&mut self, end: RunEnd) -> anyhow::Result<(Leaderboard, bool)> {
        let held = lock_and_flush(&mut self.journal, &mut self.buffered, &self.name)?;
        let record = held.record();
        let finished = end == RunEnd::Drained
            && !record.active().any(|t| {
                matches!(
                    t.status,
                    TrialStatus::Running
                        | TrialStatus::Pending
                        | TrialStatus::Stale
                        | TrialStatus::Interrupted
                )
            });
        if finished {
            let pauses = self.pruner.as_ref().is_some_and(|p| p.pauses());
            engine::discard_paused_states(self.dir, record, pauses);
        }
        let board = engine::publish(self.dir, record, self.plan.keep_checkpoints)?;
        if finished {
            // The leases of workers killed on the way name trials long finished elsewhere.
            for gone in workers::leases(self.dir)
                .iter()
                .filter(|l| l.age() > self.settings.lease())
            {
                gone.end(self.dir);
            }
        }
        drop(held);
        self.lease.end(self.dir);
        Ok((board, finished))
    }
}

/// The trials a worker holds: those it runs, and those whose next attempt it claimed and waits
/// to start (an out-of-memory retry waiting for room). Neither is another worker's to take up,
/// nor left behind by an earlier worker of its name.
fn held_ids(running: &Running, waiting: &VecDeque<TrialJob>) -> Vec<String> {
    let mut ids = running.ids();
    ids.extend(waiting.iter().map(|j| j.id.clone()));
    ids
}
