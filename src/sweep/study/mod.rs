//! A study ties a sweep together: it syncs the plan with the journal, journals each trial
//! before it starts, starts trials on an executor as slots free, relays their events to the
//! journal and the progress display, stops trials that run past their time, retries failures,
//! and keeps the leaderboard and `best/` current. This file is the loop; beside it are what a
//! resumed sweep does first ([`resume`]), the retry policy ([`retry`]), publishing
//! ([`publish`]) and the Slurm dry run ([`slurm`]).

mod propose;
mod publish;
mod resume;
pub mod retry;
mod slurm;

pub(crate) use propose::{propose, rebuild_asked};
pub use publish::{collect, leaderboard};
pub(crate) use resume::{catch_up, restore_missing, unjournalled_epochs};
pub use slurm::slurm_scripts;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::plan::{Plan, PlannedTrial, TrialInput};
use super::pruner::{Pruner, PrunerSpec};
use super::sampler::Adaptive;
use super::schedule::{self, Schedule};
use super::spec::SweepSpec;
use crate::events::TrialEvent;
use crate::exec::local::{LocalExecutor, LocalOptions};
use crate::exec::slurm::{SlurmExecutor, SlurmOptions};
use crate::exec::{ExecEvent, Executor, Interrupt, TrialJob, TrialOutcome};
use crate::leaderboard::Leaderboard;
use crate::store::journal::{Event, Journal};
use crate::store::record::StudyRecord;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::{PARAMS_JSON_FILE, PARAMS_TOML_FILE, SweepDir, TRIAL_INPUT_FILE};
use crate::sweep::checks::load_plan;
use crate::sweep::engine::{self, EndRules, LiveReport, Next, Publisher, Running};
use crate::sweep::progress::{SweepProgress, Verbosity};
use crate::text::count;
use crate::text::display_value;
use crate::trial::{CommandTask, StopReason, TrialStatus, TrialTask};
use resume::unfinished_submissions;
use retry::Failures;

/// Where trials run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Child processes on this machine's CPU or GPUs.
    Local(LocalOptions),
    /// Job arrays on a Slurm cluster.
    Slurm(SlurmOptions),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::Slurm(_) => "slurm",
        }
    }
}

/// Options of `sweep run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The results root (the sweep goes in `<results>/<name>/`).
    pub results: PathBuf,
    /// Where trials run.
    pub backend: Backend,
    /// Run at most this many of the unfinished trials.
    pub max_trials: Option<usize>,
    /// Stop a trial that runs longer than this (all its attempts' time counts per attempt).
    pub timeout: Option<Duration>,
    /// The run's time budget: no trial starts after it; those running finish.
    pub budget: Option<Duration>,
    /// Attempts after a failure, a timeout, or an out-of-memory error at one trial per device.
    pub retries: u32,
    /// Draw live progress bars (stderr is a terminal).
    pub terminal: bool,
    /// How much to print while running.
    pub verbosity: Verbosity,
    /// Accept a spec change that takes finished trials off the leaderboard.
    pub accept_changes: bool,
    /// Republishes the report while the sweep runs (`finished`, `total`), at most every
    /// [`engine::LIVE_REPORT_EVERY`]; None: no live report.
    pub live_report: Option<LiveReport>,
    /// A line describing where the trials run, shown once the spec is valid.
    pub banner: Option<String>,
    /// The order trials start in, and whether free cores go to running trials.
    pub schedule: Schedule,
    /// Train up to this many compatible built-in trials together in one process (1: alone).
    pub pack: usize,
}

/// How a study run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every trial it started ran to an end (final, or out of retries).
    Drained,
    /// Stopped by Ctrl-C or SIGTERM; unfinished trials are left for a resume.
    Interrupted,
    /// The orchestrator stopped following; the trials keep running elsewhere (Slurm).
    Detached,
    /// Stopped because its first trials all failed the same way (`max_failures`).
    Halted,
}

/// What a `sweep run` did.
#[derive(Debug)]
pub struct RunReport {
    /// The sweep directory.
    pub dir: SweepDir,
    /// How it ended.
    pub end: RunEnd,
    /// The leaderboard at the end.
    pub leaderboard: Leaderboard,
    /// Trials that ended without a result (failed, timed out, out of memory) after retries.
    pub failed: usize,
    /// Trials of the plan not run yet (`--max-trials`, or an interruption).
    pub pending: usize,
}

/// Runs (or resumes) the sweep in `spec_path`.
pub fn run(spec_path: &Path, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let (spec, plan) = load_plan(spec_path)?;
    let dir = SweepDir::new(&opts.results, &plan.name);
    let _lock = dir.lock()?;
    // Opened first: a torn last line is set aside before the record is read.
    let mut journal = dir.open_journal()?;
    // The journal as written: trials whose runs ended unjournalled are journalled below.
    let mut record = dir.read_record()?;
    let mut notes = Vec::new();
    let (mut events, trials) =
        catch_up(&spec, &plan, &dir, &record, opts.accept_changes, &mut notes)?;
    for e in &events {
        record.apply(e);
    }
    let interrupted = watch_signals()?;
    let mut running = Running::default();
    let exec: Box<dyn Executor> = match &opts.backend {
        Backend::Local(o) => Box::new(LocalExecutor::new(o.clone())?),
        Backend::Slurm(o) => {
            let mut slurm = SlurmExecutor::new(&plan.name, dir.root(), o.clone())?;
            // Trials of an earlier job that Slurm still has queued or running are followed,
            // not submitted again.
            for job in slurm.reattach(unfinished_submissions(&dir, &record)?) {
                running.start(job);
            }
            Box::new(slurm)
        }
    };
    let mut queue: VecDeque<TrialJob> = record
        .active()
        .filter(|t| !t.status.is_final() && !running.contains(t.id()))
        .map(|t| TrialJob::new(t.id(), dir.trial_dir(t.id()), t.attempts + 1))
        .collect();
    // With a pruner, trials start in a seeded random order (`--schedule plan` keeps the plan's).
    if plan.pruner.is_some() && opts.schedule == Schedule::Balanced {
        schedule::shuffle_for_pruning(queue.make_contiguous(), spec.search_seed);
    }
    let unfinished = queue.len();
    if let Some(n) = opts.max_trials {
        queue.truncate(n);
    }
    let slots = exec.parallelism();
    if opts.schedule == Schedule::Balanced {
        let ids = running.ids();
        let busy: Vec<&str> = ids.iter().map(String::as_str).collect();
        schedule::order(queue.make_contiguous(), &busy, &trials, &record, slots);
    }
    let kept = record.active().filter(|t| t.status.is_final()).count();
    let ran = queue.len() + running.len();
    let sweep = engine::sweep_event(&plan, ran, opts.backend.name());
    record.apply(&sweep);
    events.insert(0, sweep);
    journal.append(&events)?;
    // Progress counts the whole sweep: finished trials of earlier runs are already done, and
    // an adaptive sweep runs up to its budget.
    let total = match &plan.adaptive {
        Some(_) => engine::total_trials(&plan, &record),
        None => kept + unfinished + running.len(),
    };
    let progress = SweepProgress::new(total, kept, opts.terminal, opts.verbosity, &plan.objective);
    if let Some(b) = &opts.banner {
        progress.println(b);
    }
    for n in &notes {
        progress.println(n);
    }
    if kept > 0 {
        progress.println(&format!(
            "resuming {}: {} already finished, {ran} to run",
            plan.name,
            count(kept, "trial")
        ));
    }
    if queue.len() < unfinished {
        progress.println(&format!(
            "--max-trials {}: {} pending for a later run",
            queue.len(),
            count(unfinished - queue.len(), "trial")
        ));
    }
    let adaptive = plan.adaptive.clone().map(|mut tpe| {
        tpe.parallelism = exec.parallelism().unwrap_or(4);
        tpe
    });
    let mut study = Study {
        dir: dir.clone(),
        pruner: plan.pruner.as_ref().map(PrunerSpec::build),
        trials,
        adaptive,
        asked: 0,
        max_trials: opts.max_trials,
        deadline: opts.budget.map(|b| (Instant::now() + b, b)),
        budget_spent: false,
        spec: &spec,
        plan: &plan,
        journal,
        record,
        exec,
        progress,
        retries: opts.retries,
        timeout: opts.timeout,
        running,
        queue,
        schedule: opts.schedule,
        pack: opts.pack,
        failed: 0,
        publisher: Publisher::new(plan.keep_checkpoints, opts.live_report),
        failures: Failures::default(),
        halted: None,
    };
    study.publish(true)?;
    let end = match study.drive(&interrupted)? {
        RunEnd::Drained if study.halted.is_some() => RunEnd::Halted,
        end => end,
    };
    if end == RunEnd::Interrupted {
        study.log(Event::Stopped {
            reason: "interrupted (Ctrl-C or SIGTERM); run the same command again to resume".into(),
        })?;
    }
    let pending = study.record.count(TrialStatus::Pending);
    if end == RunEnd::Drained && pending == 0 {
        let pauses = study.pruner.as_ref().is_some_and(|p| p.pauses());
        engine::discard_paused_states(&study.dir, &study.record, pauses);
    }
    let leaderboard = study.publish(true)?.expect("a forced publication happens");
    study.progress.finish();
    Ok(RunReport {
        dir,
        end,
        leaderboard,
        failed: study.failed,
        pending,
    })
}

/// Writes a trial's input files and its task (`trial.json`) into its directory, ready for
/// `sweep trial` to run the attempt `job` names.
pub(crate) fn prepare_trial(
    dir: &SweepDir,
    plan: &Plan,
    planned: &PlannedTrial,
    job: &TrialJob,
) -> anyhow::Result<()> {
    let (inputs, command) = match &planned.input {
        TrialInput::Builtin(config) => (vec![(TRIAL_INPUT_FILE, config.to_toml())], None),
        TrialInput::Command(params) => {
            let cmd = plan
                .command
                .as_ref()
                .context("a command trial in a plan without a command")?;
            let trial_dir = std::path::absolute(dir.trial_dir(&job.id))?;
            let inputs = vec![
                (PARAMS_TOML_FILE, planned.input.to_toml()),
                (
                    PARAMS_JSON_FILE,
                    serde_json::to_string_pretty(params)? + "\n",
                ),
            ];
            let task = CommandTask {
                argv: cmd.render(params, &trial_dir, &job.id),
                template: cmd.run.clone(),
                prefix: cmd.prefix.clone(),
                grace_seconds: cmd.grace_seconds,
                epochs: planned.input.epochs(),
            };
            (inputs, Some(task))
        }
    };
    let read: Vec<&str> = match &plan.objectives {
        Some(o) => o.metrics(),
        None => plan.constraints.iter().map(|c| c.metric.as_str()).collect(),
    };
    let mut required: Vec<String> = read
        .into_iter()
        .filter(|m| *m != plan.objective.metric)
        .map(String::from)
        .collect();
    required.sort_unstable();
    required.dedup();
    let task = TrialTask {
        id: job.id.clone(),
        objective: plan.objective.clone(),
        attempt: job.attempt,
        command,
        required,
    };
    let trial_dir = dir.prepare_trial(&task, &inputs)?;
    RunDir::open(&trial_dir)?.clear_requests();
    Ok(())
}

/// SIGINT and SIGTERM set the returned flag instead of ending the process.
pub(crate) fn watch_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("cannot install signal handler")?;
    }
    Ok(flag)
}

/// The state of one `sweep run` while it drives its executor.
struct Study<'a> {
    dir: SweepDir,
    pruner: Option<Box<dyn Pruner>>,
    spec: &'a SweepSpec,
    plan: &'a Plan,
    /// Every trial this run may start, by id (a TPE sweep's grow as they are asked for).
    trials: HashMap<String, PlannedTrial>,
    /// The adaptive sampler (TPE), asked for a new trial whenever a slot is free; None once it
    /// is done, and for grid, random and list sweeps, whose trials are all known up front.
    adaptive: Option<Adaptive>,
    /// New trials asked for in this run (for `--max-trials`).
    asked: usize,
    /// Start at most this many trials in this run.
    max_trials: Option<usize>,
    /// No trial starts after this instant (`--timeout`), and the budget it came from.
    deadline: Option<(Instant, Duration)>,
    /// The time budget is spent: nothing new starts, paused trials stay paused.
    budget_spent: bool,
    journal: Journal,
    record: StudyRecord,
    exec: Box<dyn Executor>,
    progress: SweepProgress,
    retries: u32,
    timeout: Option<Duration>,
    /// Attempts running now.
    running: Running,
    queue: VecDeque<TrialJob>,
    schedule: Schedule,
    /// Most trials per pack.
    pack: usize,
    /// Trials that ended without a result after their last attempt.
    failed: usize,
    /// When the leaderboard, `best/` and the live report are written again.
    publisher: Publisher,
    /// How trials ended in this run, to tell a failure that will recur.
    failures: Failures,
    /// Why the sweep stopped early, once it has.
    halted: Option<String>,
}

/// How often the study looks at signals and deadlines while waiting for its executor.
const TICK: Duration = Duration::from_millis(100);

impl Study<'_> {
    /// Journals an event and applies it to the in-memory record.
    fn log(&mut self, event: Event) -> anyhow::Result<()> {
        self.log_only(&event)
    }

    /// Journals `event` (borrowed) and applies it to the in-memory record.
    fn log_only(&mut self, event: &Event) -> anyhow::Result<()> {
        self.journal.append(std::slice::from_ref(event))?;
        self.record.apply(event);
        Ok(())
    }

    /// Starts queued trials while the executor has room; then follows them until none runs.
    fn drive(&mut self, interrupted: &AtomicBool) -> anyhow::Result<RunEnd> {
        let mut stopping = false;
        loop {
            self.spend_budget();
            // ASHA's order: a paused trial that may go on comes before any new one.
            let promoting = !stopping && self.halted.is_none() && !self.budget_spent;
            while promoting && self.promote(false)? {}
            while !stopping
                && let Some(cap) = self.queue.front().map(|j| j.cap)
                && self.exec.room_for(cap)
            {
                let group = self.next_group();
                self.start(group)?;
            }
            while !stopping && self.queue.is_empty() && self.ask()? {}
            // Nothing waits to start: the free slots' cores go to the trials still running.
            self.exec.lend_idle_cores(
                self.schedule == Schedule::Balanced && !stopping && self.queue.is_empty(),
            )?;
            if self.running.is_empty()
                && (stopping || (self.queue.is_empty() && self.adaptive.is_none()))
            {
                if promoting && self.promote(true)? {
                    continue;
                }
                break;
            }
            if !stopping && interrupted.load(Ordering::Relaxed) {
                stopping = true;
                if self.exec.interrupt()? == Interrupt::Detached {
                    self.drain_ready()?;
                    return Ok(RunEnd::Detached);
                }
            }
            if let Some(limit) = self.timeout {
                for id in self.running.overdue(limit) {
                    self.stop(&id, StopReason::Timeout)?;
                }
            }
            let event = self.exec.next_event(TICK)?;
            self.handle(event, stopping)?;
        }
        Ok(if stopping {
            RunEnd::Interrupted
        } else {
            RunEnd::Drained
        })
    }

    /// Once the time budget is spent, nothing new starts: the queue stays pending for a later
    /// run, the sampler is asked no more, and paused trials stay paused.
    fn spend_budget(&mut self) {
        let Some((at, budget)) = self.deadline else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.deadline = None;
        let waiting = self.queue.len();
        self.queue.clear();
        self.adaptive = None;
        let why = format!(
            "the time budget of {} is spent: no new trial starts ({} pending for a later run); \
             {} running finish",
            crate::text::human_duration(budget.as_secs_f64()),
            waiting,
            count(self.running.len(), "trial")
        );
        self.progress.println(&why);
        self.budget_spent = true;
    }

    /// Handles what the executor has already queued (messages before detaching).
    fn drain_ready(&mut self) -> anyhow::Result<()> {
        loop {
            match self.exec.next_event(Duration::ZERO)? {
                ExecEvent::Tick => return Ok(()),
                e => self.handle(e, true)?,
            }
        }
    }

    /// Asks the adaptive sampler for a new trial if a slot is free, journals it and starts it;
    /// false when there is none to start now (no slot, the sampler waits for a trial it learns
    /// from, or it is done).
    fn ask(&mut self) -> anyhow::Result<bool> {
        let Some(tpe) = &self.adaptive else {
            return Ok(false);
        };
        if self.running.len() >= tpe.parallelism || !self.exec.room_for(None) {
            return Ok(false);
        }
        if self.max_trials.is_some_and(|n| self.asked >= n) {
            self.adaptive = None;
            return Ok(false);
        }
        let planned = match propose(tpe, self.spec, self.plan, &self.record)? {
            Next::Run(planned) => *planned,
            Next::Wait if self.running.is_empty() => {
                self.progress.println(&format!(
                    "{}: the trials it learns from did not end; run the sweep again to go on",
                    tpe.method.name()
                ));
                self.adaptive = None;
                return Ok(false);
            }
            Next::Wait => return Ok(false),
            Next::Done(why) => {
                if let Some(why) = why {
                    self.progress.println(&why);
                }
                self.adaptive = None;
                return Ok(false);
            }
        };
        self.log(Event::Trial(planned.def()))?;
        let job = TrialJob::new(&planned.id, self.dir.trial_dir(&planned.id), 1);
        self.trials.insert(planned.id.clone(), planned);
        self.asked += 1;
        self.start(vec![job])?;
        Ok(true)
    }

    /// Takes the next trial to start off the queue, with the queued trials that can share its
    /// step (same pack key) up to the pack size.
    fn next_group(&mut self) -> Vec<TrialJob> {
        let job = self.queue.pop_front().expect("the caller saw a front");
        let limit = job.pack.unwrap_or(self.pack).min(self.pack);
        let Some(key) = self.pack_key(&job).filter(|_| limit > 1) else {
            return vec![job];
        };
        let mut group = vec![job];
        let mut i = 0;
        while i < self.queue.len() && group.len() < limit {
            if self.pack_key(&self.queue[i]).as_ref() == Some(&key) {
                group.extend(self.queue.remove(i));
            } else {
                i += 1;
            }
        }
        let n = group.len();
        for j in &mut group {
            j.pack = Some(n);
        }
        group
    }

    /// What a queued trial must share with others to be packed with them: its configuration's
    /// pack key and the epoch it resumes from (None: a command trial, never packed).
    fn pack_key(&self, job: &TrialJob) -> Option<String> {
        let config = self.trials.get(&job.id)?.config()?;
        let epoch = RunDir::open(&job.dir).map_or(0, |r| crate::train::pack::resume_epoch(&r));
        Some(format!("{}|{epoch}", crate::train::pack::pack_key(config)))
    }

    /// Prepares the directories of `group` and starts it (one trial, or a pack).
    fn start(&mut self, group: Vec<TrialJob>) -> anyhow::Result<()> {
        for job in &group {
            self.prepare(job)?;
        }
        self.exec.start(group)
    }

    /// Writes a trial's input and task into its directory and follows its attempt.
    fn prepare(&mut self, job: &TrialJob) -> anyhow::Result<()> {
        let planned = self
            .trials
            .get(job.id.as_str())
            .with_context(|| format!("trial {} is in the journal but not in the plan", job.id))?;
        prepare_trial(&self.dir, self.plan, planned, job)?;
        self.running.start(job.clone());
        Ok(())
    }

    /// Asks the pruner about a trial that reported `epoch` (see [`engine::judge`]); journals
    /// its decision and stops the trial when it says so.
    fn judge(&mut self, trial: &str, epoch: usize, epochs: Option<usize>) -> anyhow::Result<()> {
        let Some(pruner) = &self.pruner else {
            return Ok(());
        };
        let epochs = epochs.or_else(|| self.trials.get(trial).and_then(|t| t.input.epochs()));
        let judgement = engine::judge(pruner.as_ref(), &self.record, trial, epoch, epochs);
        if let Some(line) = &judgement.say {
            self.progress.println(line);
        }
        if let Some(d) = judgement.decision {
            self.log(Event::Decision(d))?;
        }
        if let Some(how) = judgement.stop {
            self.stop(trial, how)?;
        }
        Ok(())
    }

    /// Starts a paused trial the pruner promotes, if there is one and room for it; false
    /// otherwise. `last`: nothing else is left to run (see [`Pruner::promotion`]).
    fn promote(&mut self, last: bool) -> anyhow::Result<bool> {
        let Some(pruner) = &self.pruner else {
            return Ok(false);
        };
        if !self.exec.room_for(None) {
            return Ok(false);
        }
        let Some(p) = pruner.promotion(&self.record, last) else {
            return Ok(false);
        };
        let Some(t) = self.record.get(&p.trial) else {
            return Ok(false);
        };
        let job = TrialJob::new(&p.trial, self.dir.trial_dir(&p.trial), t.attempts + 1);
        self.progress.println(&format!(
            "promoting {} from rung {}: {}",
            p.trial, p.rung, p.reason
        ));
        self.log(Event::Promoted {
            trial: p.trial,
            rung: p.rung,
            reason: p.reason,
        })?;
        self.start(vec![job])?;
        Ok(true)
    }

    /// Asks the executor to stop a running trial (once).
    /// A stop that cannot be asked is said, as a worker says it: the trial runs on, and its
    /// end is journalled when it comes.
    fn stop(&mut self, trial: &str, reason: StopReason) -> anyhow::Result<()> {
        if self.running.ask_stop(trial)
            && let Err(e) = self.exec.stop(trial, reason)
        {
            self.progress
                .println(&format!("warning: cannot stop {trial}: {e:#}"));
        }
        Ok(())
    }

    fn handle(&mut self, event: ExecEvent, stopping: bool) -> anyhow::Result<()> {
        match event {
            ExecEvent::Tick => {}
            ExecEvent::Message(m) => self.progress.println(&m),
            ExecEvent::Submitted { job, trials } => self.log(Event::Submitted { job, trials })?,
            ExecEvent::Started { trial, device } => {
                let Some(a) = self.running.began(&trial) else {
                    return Ok(());
                };
                let (attempt, cap) = (a.job.attempt, a.job.cap);
                self.log(Event::Started {
                    trial: trial.clone(),
                    attempt,
                    device: device.clone(),
                    cap,
                })?;
                let params = self.record.get(&trial).map_or(String::new(), |t| {
                    t.def
                        .params
                        .iter()
                        .filter(|(k, _)| k.as_str() != "seed" || self.plan.repeats > 1)
                        .map(|(k, v)| format!("{k}={}", display_value(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                self.progress.started(&trial, &params, &device, attempt);
            }
            ExecEvent::Progress(e) => {
                self.progress.event(&e);
                if let TrialEvent::Epoch {
                    trial, row, epochs, ..
                } = &e
                    && self.running.contains(trial)
                {
                    self.log(Event::Epoch {
                        trial: trial.clone(),
                        row: row.clone(),
                    })?;
                    if self.running.get(trial).is_some_and(|a| !a.stopping) {
                        self.judge(trial, row.epoch, *epochs)?;
                    }
                }
            }
            ExecEvent::Ended { trial, outcome } => self.ended(trial, outcome, stopping)?,
        }
        Ok(())
    }

    fn ended(
        &mut self,
        trial: String,
        outcome: TrialOutcome,
        stopping: bool,
    ) -> anyhow::Result<()> {
        let Some(engine::Attempt { job, .. }) = self.running.end(&trial) else {
            return Ok(());
        };
        let rules = EndRules {
            retries: self.retries,
            per_device: self.exec.per_device(),
            max_failures: self.plan.max_failures,
        };
        let end = engine::conclude(
            &job,
            &outcome,
            &mut self.failures,
            &self.record,
            rules,
            stopping || self.halted.is_some(),
        );
        for e in &end.events {
            self.log_only(e)?;
        }
        let will_retry = end.retry.is_some();
        if let Some(next) = end.retry {
            self.queue.push_back(next);
        } else if end.failed {
            self.failed += 1;
        }
        let board = self.publish(false)?;
        // What the trial measured refines the expected costs of those still waiting (as often
        // as the leaderboard is written, so that the cost stays linear in the trials).
        if board.is_some() && self.schedule == Schedule::Balanced {
            let ids = self.running.ids();
            let busy: Vec<&str> = ids.iter().map(String::as_str).collect();
            schedule::order(
                self.queue.make_contiguous(),
                &busy,
                &self.trials,
                &self.record,
                self.exec.parallelism(),
            );
        }
        if board.is_some() {
            self.republish_report();
        }
        let best = board.and_then(|b| b.best().and_then(|r| r.value.map(|v| (r.trial.clone(), v))));
        self.progress.finished(&trial, &outcome, will_retry, best);
        if let Some(reason) = end.halt {
            self.halt(reason)?;
        }
        Ok(())
    }

    /// Rewrites the live report when it is due (see [`Publisher::live_report`]).
    fn republish_report(&mut self) {
        let finished = self.record.active().filter(|t| t.status.is_final()).count();
        let total = engine::total_trials(self.plan, &self.record);
        if let Some(warning) = self.publisher.live_report(&self.dir, finished, total) {
            self.progress.println(&warning);
        }
    }

    /// Stops the sweep for `reason`: nothing new starts, running trials are stopped (to be
    /// resumed by the next run), and the reason is journalled and shown.
    /// The `Stopped` line is journalled with the end that decided it (see
    /// [`engine::conclude`]).
    fn halt(&mut self, reason: String) -> anyhow::Result<()> {
        self.progress.println(&reason);
        self.queue.clear();
        self.adaptive = None;
        for id in self.running.ids() {
            self.stop(&id, StopReason::Interrupted)?;
        }
        self.halted = Some(reason);
        Ok(())
    }
}
