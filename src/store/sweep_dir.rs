//! The on-disk layout of one sweep, `results/<name>/`:
//!
//! ```text
//! spec.toml          copy of the spec as run
//! plan.json          the expanded trials (ids, searched values, configs)
//! journal.jsonl      append-only trial state changes
//! trials/<id>/       trial.toml (input) + what `sweep train` writes + train.log
//! leaderboard.csv    ranked trials, rewritten after every finished trial
//! best/              config.toml, best.safetensors, metrics.csv of the current winner
//! reruns/            `sweep rerun` outputs
//! lock               held (flock) by the orchestrator while it runs
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::atomic;
use super::journal::{self, TrialRecord, TrialStatus};
use super::run_dir::{
    CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunDir, RunStatus, RunSummary, SUMMARY_FILE,
};
use crate::sweep::spec::Plan;

/// A trial's input configuration inside its directory.
pub const TRIAL_INPUT_FILE: &str = "trial.toml";
/// A trial's captured stderr.
pub const TRIAL_LOG_FILE: &str = "train.log";
/// The event stream of a trial run as a batch job (the local executor reads stdout instead).
pub const EVENTS_FILE: &str = "events.jsonl";

/// The directory of one sweep.
#[derive(Debug, Clone)]
pub struct SweepDir {
    root: PathBuf,
}

/// The orchestrator's exclusive hold on a sweep directory (released when dropped or when the
/// process dies, even by `kill -9`).
pub struct Lock {
    _file: File,
}

impl SweepDir {
    /// The directory of sweep `name` under the results root.
    pub fn new(results: &Path, name: &str) -> Self {
        Self {
            root: results.join(name),
        }
    }

    /// An existing sweep directory (it must hold a plan).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = Self {
            root: root.to_path_buf(),
        };
        if !dir.plan_file().is_file() {
            bail!(
                "{} is not a sweep directory (no plan.json); `sweep run SPEC` creates one",
                root.display()
            );
        }
        Ok(dir)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `spec.toml`.
    pub fn spec_file(&self) -> PathBuf {
        self.root.join("spec.toml")
    }

    /// `plan.json`.
    pub fn plan_file(&self) -> PathBuf {
        self.root.join("plan.json")
    }

    /// `journal.jsonl`.
    pub fn journal_file(&self) -> PathBuf {
        self.root.join("journal.jsonl")
    }

    /// `leaderboard.csv`.
    pub fn leaderboard_file(&self) -> PathBuf {
        self.root.join("leaderboard.csv")
    }

    /// `best/`.
    pub fn best_dir(&self) -> PathBuf {
        self.root.join("best")
    }

    /// `reruns/`.
    pub fn reruns_dir(&self) -> PathBuf {
        self.root.join("reruns")
    }

    /// `trials/<id>/`.
    pub fn trial_dir(&self, id: &str) -> PathBuf {
        self.root.join("trials").join(id)
    }

    /// Takes the sweep's lock, failing if another orchestrator holds it.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            bail!(
                "{} is in use by another `sweep run` (lock {} is held); wait for it or stop it first",
                self.root.display(),
                path.display()
            );
        }
        file.set_len(0)?;
        std::fs::write(&path, format!("{}\n", std::process::id()))?;
        Ok(Lock { _file: file })
    }

    /// Writes the spec copy, the plan and every trial's input config; if the directory already
    /// holds a plan, it must be the same trials (a resume) or this is refused.
    pub fn prepare(&self, plan: &Plan, spec_text: &str) -> anyhow::Result<()> {
        if self.plan_file().is_file() {
            let old = self.read_plan()?;
            let old_ids: Vec<&str> = old.trials.iter().map(|t| t.id.as_str()).collect();
            let new_ids: Vec<&str> = plan.trials.iter().map(|t| t.id.as_str()).collect();
            if old_ids != new_ids || old.metric != plan.metric {
                let added = new_ids.iter().filter(|i| !old_ids.contains(i)).count();
                let removed = old_ids.iter().filter(|i| !new_ids.contains(i)).count();
                bail!(
                    "{} already holds a different sweep named `{}` ({added} trials added, {removed} removed{}); \
                     give the changed spec another name, use another --results directory, or delete {}",
                    self.root.display(),
                    plan.name,
                    if old.metric != plan.metric {
                        ", metric changed"
                    } else {
                        ""
                    },
                    self.root.display()
                );
            }
        } else {
            std::fs::create_dir_all(&self.root)
                .with_context(|| format!("cannot create {}", self.root.display()))?;
            atomic::write(&self.spec_file(), spec_text)?;
            atomic::write(
                &self.plan_file(),
                serde_json::to_string_pretty(plan)? + "\n",
            )?;
        }
        for t in &plan.trials {
            let dir = self.trial_dir(&t.id);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let input = dir.join(TRIAL_INPUT_FILE);
            if !input.is_file() {
                atomic::write(&input, t.config.to_toml())?;
            }
        }
        Ok(())
    }

    /// Reads `plan.json`.
    pub fn read_plan(&self) -> anyhow::Result<Plan> {
        let p = self.plan_file();
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a valid plan", p.display()))
    }

    /// The summary a trial's run wrote, if any.
    pub fn trial_summary(&self, id: &str) -> Option<RunSummary> {
        RunDir::open(&self.trial_dir(id)).ok()?.read_summary().ok()
    }

    /// Every trial's current state: the journal's record, corrected by what the trial
    /// directory shows (a trial whose run completed counts as completed even if the
    /// orchestrator died before journalling it; one journalled as running is not running
    /// unless an orchestrator holds the lock).
    pub fn trial_states(
        &self,
        plan: &Plan,
        orchestrator_alive: bool,
    ) -> anyhow::Result<HashMap<String, TrialRecord>> {
        let mut records = journal::replay(&journal::read(&self.journal_file())?);
        for t in &plan.trials {
            let r = records.entry(t.id.clone()).or_default();
            let from_dir = self.trial_summary(&t.id).map(|s| s.status);
            let status = match (r.status, from_dir) {
                (_, Some(RunStatus::Completed)) => TrialStatus::Completed,
                (_, Some(RunStatus::Diverged)) => TrialStatus::Diverged,
                (Some(TrialStatus::Running), _) if !orchestrator_alive => TrialStatus::Interrupted,
                (Some(s), _) => s,
                (None, _) => TrialStatus::Pending,
            };
            r.status = Some(status);
        }
        Ok(records)
    }

    /// True when an orchestrator holds the lock now.
    pub fn is_locked(&self) -> bool {
        let Ok(file) = File::options().write(true).open(self.root.join("lock")) else {
            return false;
        };
        // SAFETY: flock on a file descriptor we own; released again at once.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            false
        } else {
            true
        }
    }

    /// Makes `best/` a copy of trial `id`'s config, checkpoint and metrics (each file atomic).
    pub fn publish_best(&self, id: &str) -> anyhow::Result<()> {
        let best = self.best_dir();
        std::fs::create_dir_all(&best)
            .with_context(|| format!("cannot create {}", best.display()))?;
        let src = self.trial_dir(id);
        for f in [CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE] {
            atomic::copy(&src.join(f), &best.join(f))?;
        }
        atomic::write(&best.join("trial.txt"), format!("{id}\n"))
    }

    /// The trial `best/` currently holds.
    pub fn best_trial(&self) -> Option<String> {
        std::fs::read_to_string(self.best_dir().join("trial.txt"))
            .ok()
            .map(|s| s.trim().to_string())
    }
}
