//! A study ties a sweep together: spec → plan → results directory → executor, recording every
//! state change in the journal and keeping the leaderboard and `best/` current.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::exec::progress::SweepProgress;
use crate::exec::{RunEnd, TrialJob, TrialOutcome, TrialSink, local, retry_decision, slurm};
use crate::store::atomic;
use crate::store::journal::{self, Event, Journal, TrialRecord, TrialStatus};
use crate::store::leaderboard::{Csv, Exporter, Leaderboard};
use crate::store::run_dir::RunStatus;
use crate::store::sweep_dir::SweepDir;
use crate::sweep::spec::{Plan, SweepSpec};
use crate::trial::TrialEvent;

/// Where trials run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Child processes on this machine's CPU or GPUs.
    Local(local::LocalOptions),
    /// One Slurm job array.
    Slurm(slurm::SlurmOptions),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::Slurm(_) => "slurm",
        }
    }

    /// Attempts after the first (a Slurm sweep is retried by running it again).
    fn retries(&self) -> u32 {
        match self {
            Backend::Local(o) => o.retries,
            Backend::Slurm(_) => 0,
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
    /// Draw live progress bars (stderr is a terminal).
    pub terminal: bool,
    /// A line describing where the trials run, shown once the spec is valid.
    pub banner: Option<String>,
}

/// What a `sweep run` did.
#[derive(Debug)]
pub struct RunReport {
    /// The sweep directory.
    pub dir: SweepDir,
    /// How the executor ended.
    pub end: RunEnd,
    /// The leaderboard at the end.
    pub leaderboard: Leaderboard,
}

/// Loads and expands a spec, failing on any invalid trial before anything is written.
pub fn plan(spec_path: &Path) -> anyhow::Result<(SweepSpec, Plan)> {
    let spec = SweepSpec::load(spec_path)?;
    let plan = spec.plan()?;
    let missing: BTreeSet<String> = plan
        .trials
        .iter()
        .map(|t| &t.config.data.dir)
        .filter(|d| !d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    if !missing.is_empty() {
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        bail!(
            "{}: data.dir {} does not exist (relative paths are taken from the current directory, {cwd})",
            spec_path.display(),
            missing.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok((spec, plan))
}

/// Runs (or resumes) the sweep in `spec_path`.
pub fn run(spec_path: &Path, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let (spec, plan) = plan(spec_path)?;
    let dir = SweepDir::new(&opts.results, &plan.name);
    let _lock = dir.lock()?;
    dir.prepare(&plan, spec.source.text())?;
    let states = dir.trial_states(&plan, false)?;
    let kept = plan
        .trials
        .iter()
        .filter(|t| states[&t.id].status.is_some_and(TrialStatus::is_final))
        .count();
    let mut todo: Vec<TrialJob> = plan
        .trials
        .iter()
        .filter(|t| !states[&t.id].status.is_some_and(TrialStatus::is_final))
        .map(|t| TrialJob {
            id: t.id.clone(),
            index: t.index,
            dir: dir.trial_dir(&t.id),
            attempt: states[&t.id].attempts + 1,
            cap: usize::MAX,
        })
        .collect();
    // Trials of an earlier Slurm job that are still queued or running are followed, not
    // submitted again.
    let attach = match &opts.backend {
        Backend::Slurm(_) => still_queued(&dir, &mut todo)?,
        Backend::Local(_) => None,
    };
    if let Some(n) = opts.max_trials {
        todo.truncate(n);
    }
    let mut journal = Journal::open(&dir.journal_file())?;
    journal.append(Event::Sweep {
        trials: plan.trials.len(),
        pending: todo.len(),
        backend: opts.backend.name().into(),
        pid: std::process::id(),
    })?;
    let ran = todo.len() + attach.as_ref().map_or(0, |(_, a)| a.len());
    let mut recorder = Recorder {
        progress: SweepProgress::new(ran, opts.terminal),
        dir: dir.clone(),
        plan: plan.clone(),
        journal,
        states,
        retries: opts.backend.retries(),
    };
    if let Some(b) = &opts.banner {
        recorder.progress.println(b);
    }
    if kept > 0 {
        recorder.progress.println(&format!(
            "resuming {}: {kept} trials already finished, {ran} to run",
            plan.name
        ));
    }
    recorder.publish()?;
    let end = match &opts.backend {
        Backend::Local(o) => local::run(todo, o, &mut recorder)?,
        Backend::Slurm(o) => {
            let root = std::path::absolute(dir.root())?;
            slurm::run(&plan.name, &root, todo, attach, o, &mut recorder)?
        }
    };
    if end == RunEnd::Interrupted {
        recorder.journal.append(Event::Stopped {
            reason: "interrupted (Ctrl-C or SIGTERM); run the same command again to resume".into(),
        })?;
    }
    let leaderboard = recorder.publish()?;
    recorder.progress.finish();
    Ok(RunReport {
        dir,
        end,
        leaderboard,
    })
}

/// The sbatch script `sweep run --backend slurm` would submit for this spec now (the trials
/// not yet finished), without writing or submitting anything.
pub fn slurm_script(
    spec_path: &Path,
    results: &Path,
    opts: &slurm::SlurmOptions,
) -> anyhow::Result<String> {
    let (_, plan) = plan(spec_path)?;
    let dir = SweepDir::new(results, &plan.name);
    let indices: Vec<usize> = if dir.plan_file().is_file() {
        let states = dir.trial_states(&plan, dir.is_locked())?;
        plan.trials
            .iter()
            .filter(|t| {
                !states
                    .get(&t.id)
                    .and_then(|r| r.status)
                    .is_some_and(TrialStatus::is_final)
            })
            .map(|t| t.index)
            .collect()
    } else {
        plan.trials.iter().map(|t| t.index).collect()
    };
    if indices.is_empty() {
        anyhow::bail!(
            "nothing to submit: every trial of {} has finished (see `sweep leaderboard {}`)",
            plan.name,
            dir.root().display()
        );
    }
    let root = std::path::absolute(dir.root())?;
    Ok(slurm::script(&plan.name, &root, &indices, opts))
}

/// Removes from `todo` the trials that an earlier Slurm job of this sweep still has queued or
/// running, and returns that job with them.
fn still_queued(
    dir: &SweepDir,
    todo: &mut Vec<TrialJob>,
) -> anyhow::Result<Option<(String, Vec<TrialJob>)>> {
    let entries = journal::read(&dir.journal_file())?;
    for (job, trials) in journal::submissions(&entries).into_iter().take(3) {
        // An unknown (long finished) job id makes squeue fail: nothing to follow there.
        let Ok(states) = slurm::task_states(&job) else {
            continue;
        };
        let active: Vec<usize> = states
            .iter()
            .filter(|(_, (state, _))| slurm::is_active(state))
            .map(|(task, _)| *task)
            .collect();
        let (attached, rest): (Vec<TrialJob>, Vec<TrialJob>) = std::mem::take(todo)
            .into_iter()
            .partition(|j| active.contains(&j.index) && trials.contains(&j.id));
        *todo = rest;
        if !attached.is_empty() {
            return Ok(Some((job, attached)));
        }
    }
    Ok(None)
}

/// The current leaderboard of a sweep directory (safe while a run is in progress).
pub fn leaderboard(
    dir: &SweepDir,
) -> anyhow::Result<(Plan, HashMap<String, TrialRecord>, Leaderboard)> {
    let plan = dir.read_plan()?;
    let states = dir.trial_states(&plan, dir.is_locked())?;
    let board = Leaderboard::build(dir, &plan, &states);
    Ok((plan, states, board))
}

/// Rebuilds a sweep's journal state, leaderboard and `best/` from its trial directories
/// (after trials ran detached on Slurm, or were copied in from elsewhere). Returns the
/// leaderboard and how many trials' states the journal learnt.
pub fn collect(dir: &SweepDir) -> anyhow::Result<(Leaderboard, usize)> {
    let _lock = dir.lock()?;
    let plan = dir.read_plan()?;
    let recorded = journal::replay(&journal::read(&dir.journal_file())?);
    let mut journal = Journal::open(&dir.journal_file())?;
    let mut learnt = 0;
    for t in &plan.trials {
        let Some(summary) = dir.trial_summary(&t.id) else {
            continue;
        };
        let status = match summary.status {
            RunStatus::Completed => TrialStatus::Completed,
            RunStatus::Diverged => TrialStatus::Diverged,
            RunStatus::Failed => TrialStatus::Failed,
            RunStatus::Interrupted => TrialStatus::Interrupted,
            // A run that never wrote its end: it died (or still runs, elsewhere).
            RunStatus::Running => continue,
        };
        let known = recorded.get(&t.id);
        if known.and_then(|r| r.status) == Some(status) {
            continue;
        }
        journal.append(Event::Finished {
            trial: t.id.clone(),
            attempt: known.map_or(1, |r| r.attempts.max(1)),
            status,
            message: Some(
                summary
                    .message
                    .clone()
                    .unwrap_or_else(|| "collected from the trial directory".into()),
            ),
            best_test_acc: (summary.best_epoch > 0).then_some(summary.best_test_acc),
            seconds: summary.seconds,
        })?;
        learnt += 1;
    }
    let states = dir.trial_states(&plan, false)?;
    let recorder = Recorder {
        progress: SweepProgress::new(0, false),
        dir: dir.clone(),
        plan,
        journal,
        states,
        retries: 0,
    };
    Ok((recorder.publish()?, learnt))
}

/// Journals, displays and publishes what the executor reports.
struct Recorder {
    progress: SweepProgress,
    dir: SweepDir,
    plan: Plan,
    journal: Journal,
    states: HashMap<String, TrialRecord>,
    retries: u32,
}

impl Recorder {
    /// Rewrites leaderboard.csv and, when the winner changed, best/.
    fn publish(&self) -> anyhow::Result<Leaderboard> {
        let board = Leaderboard::build(&self.dir, &self.plan, &self.states);
        atomic::write(&self.dir.leaderboard_file(), Csv.serialize(&board)?)?;
        if let Some(best) = board.best()
            && self.dir.best_trial().as_deref() != Some(best.trial.as_str())
        {
            self.dir.publish_best(&best.trial)?;
        }
        Ok(board)
    }
}

impl TrialSink for Recorder {
    fn submitted(&mut self, id: &str, jobs: &[TrialJob]) -> anyhow::Result<()> {
        self.journal.append(Event::Submitted {
            job: id.to_string(),
            trials: jobs.iter().map(|j| j.id.clone()).collect(),
        })
    }

    fn message(&mut self, text: &str) {
        self.progress.println(text);
    }

    fn started(&mut self, job: &TrialJob, device: &str) -> anyhow::Result<()> {
        self.journal.append(Event::Started {
            trial: job.id.clone(),
            attempt: job.attempt,
            device: device.to_string(),
        })?;
        let r = self.states.entry(job.id.clone()).or_default();
        r.status = Some(TrialStatus::Running);
        r.attempts = job.attempt;
        r.device = Some(device.to_string());
        self.progress.started(&job.id, device, job.attempt);
        Ok(())
    }

    fn event(&mut self, job: &TrialJob, event: &TrialEvent) {
        self.progress.event(&job.id, event);
    }

    fn finished(&mut self, job: &TrialJob, outcome: &TrialOutcome) -> anyhow::Result<()> {
        self.journal.append(Event::Finished {
            trial: job.id.clone(),
            attempt: job.attempt,
            status: outcome.status,
            message: outcome.message.clone(),
            best_test_acc: outcome.best_test_acc,
            seconds: crate::train::round_ms(outcome.seconds),
        })?;
        let r = self.states.entry(job.id.clone()).or_default();
        r.status = Some(outcome.status);
        r.message = outcome.message.clone();
        let board = self.publish()?;
        let best = board
            .best()
            .and_then(|b| b.metric.map(|m| (b.trial.clone(), m)));
        let will_retry = retry_decision(job, outcome, self.retries).is_some();
        self.progress.finished(&job.id, outcome, will_retry, best);
        Ok(())
    }
}
