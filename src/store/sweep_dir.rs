//! The on-disk layout of one sweep, `results/<name>/`:
//!
//! ```text
//! spec.toml          copy of the spec as last run
//! journal.jsonl      the study's append-only record: trials, attempts, epochs, decisions
//! trials/<id>/       trial.toml + trial.json (input), what the trial writes, train.log
//! leaderboard.csv    ranked trials
//! pareto.csv         with several objectives: the non-dominated feasible trials
//! best/              the winner's config, checkpoint, metrics and summary
//! reruns/            `sweep rerun` outputs
//! slurm/             submitted scripts, task lists and task logs (Slurm backend)
//! lock               held by the orchestrator while it runs
//! workers.json       a sweep pull workers run: its version, spec and lease settings
//! workers/<w>.json   each pull worker's lease: what it runs, its last heartbeat
//! journal.lock       taken by a pull worker for each decision (a link-based lock)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::atomic;
use super::journal;
use super::lock::{self, FileLock};
use super::record::StudyRecord;
use super::run_dir::{
    CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RunDir, STATE_TENSORS_PREFIX, STOP_FILE,
    SUMMARY_FILE, THREADS_FILE, TRIAL_LOCK_FILE,
};
use crate::trial::{TrialStatus, TrialSummary, TrialTask};

/// A built-in trial's input configuration inside its directory.
pub const TRIAL_INPUT_FILE: &str = "trial.toml";
/// A command trial's resolved parameters, as TOML.
pub const PARAMS_TOML_FILE: &str = "params.toml";
/// A command trial's resolved parameters, as JSON.
pub const PARAMS_JSON_FILE: &str = "params.json";
/// How to run the trial (`sweep trial` reads it).
pub const TRIAL_TASK_FILE: &str = "trial.json";
/// A trial's captured stderr.
pub const TRIAL_LOG_FILE: &str = "train.log";
/// The event stream of a trial run as a batch job (the local executor reads stdout instead).
pub const EVENTS_FILE: &str = "events.jsonl";

/// Bytes a sweep directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskUsage {
    /// Every file.
    pub total: u64,
    /// Trials' kept checkpoints (`best.safetensors`).
    pub checkpoints: u64,
    /// How many trials keep one.
    pub checkpoint_files: usize,
    /// Resumable states of unfinished trials.
    pub states: u64,
    /// How many trials have one.
    pub state_files: usize,
}

/// The directory of one sweep.
#[derive(Debug, Clone)]
pub struct SweepDir {
    root: PathBuf,
}

/// The orchestrator's exclusive hold on a sweep directory (released when dropped or when the
/// process dies, even by `kill -9`).
pub type Lock = FileLock;

impl SweepDir {
    /// The directory of sweep `name` under the results root.
    pub fn new(results: &Path, name: &str) -> Self {
        Self {
            root: results.join(name),
        }
    }

    /// The sweep directory at `root`, whether or not it holds a sweep yet.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// An existing sweep directory (it must hold a journal).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = Self {
            root: root.to_path_buf(),
        };
        if !dir.journal_file().is_file() {
            bail!(
                "{} is not a sweep directory (no journal.jsonl); `sweep run SPEC` creates one",
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

    /// `journal.jsonl`.
    pub fn journal_file(&self) -> PathBuf {
        self.root.join("journal.jsonl")
    }

    /// `leaderboard.csv`.
    pub fn leaderboard_file(&self) -> PathBuf {
        self.root.join("leaderboard.csv")
    }

    /// `pareto.csv`: the non-dominated feasible trials of a sweep with several objectives.
    pub fn pareto_file(&self) -> PathBuf {
        self.root.join("pareto.csv")
    }

    /// `best/`.
    pub fn best_dir(&self) -> PathBuf {
        self.root.join("best")
    }

    /// `reruns/`.
    pub fn reruns_dir(&self) -> PathBuf {
        self.root.join("reruns")
    }

    /// Makes a new, empty directory for a rerun of `trial`: `reruns/<trial>-<YYYYMMDD-HHMMSS>`,
    /// with `-2`, `-3`... when reruns started in the same second. The directory is claimed by
    /// creating it, so concurrent reruns never share one.
    pub fn new_rerun_dir(&self, trial: &str) -> anyhow::Result<PathBuf> {
        let reruns = self.reruns_dir();
        std::fs::create_dir_all(&reruns)
            .with_context(|| format!("cannot create {}", reruns.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        for n in 1.. {
            let name = match n {
                1 => format!("{trial}-{stamp}"),
                n => format!("{trial}-{stamp}-{n}"),
            };
            let path = reruns.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        unreachable!("an unbounded range")
    }

    /// `slurm/`.
    pub fn slurm_dir(&self) -> PathBuf {
        self.root.join("slurm")
    }

    /// `workers.json`: present in a sweep pull workers run.
    pub fn workers_file(&self) -> PathBuf {
        self.root.join("workers.json")
    }

    /// `workers/`: one lease file per pull worker.
    pub fn workers_dir(&self) -> PathBuf {
        self.root.join("workers")
    }

    /// `journal.lock`: the lock pull workers take to append to the journal.
    pub fn journal_lock_file(&self) -> PathBuf {
        self.root.join("journal.lock")
    }

    /// `trials/<id>/`.
    pub fn trial_dir(&self, id: &str) -> PathBuf {
        self.root.join("trials").join(id)
    }

    fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Takes the sweep's lock, failing if another orchestrator holds it.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.lock_file();
        let Some(lock) = lock::try_lock(&path)? else {
            bail!(
                "{} is in use by another `sweep run` (lock {} is held); wait for it or stop it first",
                self.root.display(),
                path.display()
            );
        };
        std::fs::write(&path, format!("{}\n", std::process::id()))?;
        Ok(lock)
    }

    /// True when an orchestrator holds the lock now. Only asks: it never takes the lock, so it
    /// cannot make a starting `sweep run` fail.
    pub fn is_locked(&self) -> bool {
        lock::is_held(&self.lock_file())
    }

    /// True when an orchestrator holds the sweep now, or pull workers run it (they mark the
    /// trials of workers gone as stale themselves): the journal's running trials are then
    /// taken as running.
    pub fn is_driven(&self) -> bool {
        self.is_locked() || self.workers_file().is_file()
    }

    /// Keeps a copy of the spec as run.
    pub fn write_spec(&self, text: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        atomic::write(&self.spec_file(), text)
    }

    /// Writes a trial's input files (its configuration, or its parameters) and how to run it
    /// (`trial.json`) into `trials/<id>/`; input files already there are kept, so a resumed
    /// trial finds what it started with.
    pub fn prepare_trial(
        &self,
        task: &TrialTask,
        inputs: &[(&str, String)],
    ) -> anyhow::Result<PathBuf> {
        let dir = self.trial_dir(&task.id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // Inputs the study can write again: renamed into place without an fsync each.
        for (name, text) in inputs {
            let input = dir.join(name);
            if !input.is_file() {
                atomic::replace(&input, text)?;
            }
        }
        atomic::replace(
            &dir.join(TRIAL_TASK_FILE),
            serde_json::to_string_pretty(task)? + "\n",
        )?;
        Ok(dir)
    }

    /// The study exactly as its journal tells it.
    /// A corrupt line is skipped with a warning on stderr that names it.
    pub fn read_record(&self) -> anyhow::Result<StudyRecord> {
        let path = self.journal_file();
        let contents = journal::read(&path)?;
        for bad in contents.corrupt() {
            note!(
                "warning: {}; `sweep repair {}` sets it aside",
                bad.describe(&path),
                self.root.display()
            );
        }
        Ok(StudyRecord::replay(&contents.entries))
    }

    /// Opens the journal for appending: a torn last line is moved to `journal.torn` (said in
    /// one line on stderr), and a journal with a corrupt line is refused until
    /// `sweep repair` has run.
    pub fn open_journal(&self) -> anyhow::Result<journal::Journal> {
        let path = self.journal_file();
        let (journal, torn) = journal::Journal::open(&path)?;
        if let Some(torn) = torn {
            note!("{}", torn.describe(&path));
        }
        Ok(journal)
    }

    /// The study as its journal tells it, corrected by what the trial directories show: a
    /// trial journalled as running whose run ended counts as ended (the orchestrator died
    /// before journalling it, or it ran detached on Slurm), and one still running counts as
    /// interrupted unless an orchestrator holds the lock.
    pub fn load_record(&self, orchestrator_alive: bool) -> anyhow::Result<StudyRecord> {
        let mut record = self.read_record()?;
        for t in &mut record.trials {
            if t.status != TrialStatus::Running {
                continue;
            }
            let run = RunDir::open(&self.trial_dir(&t.def.id)).ok();
            let summary = run.as_ref().and_then(|r| r.read_summary().ok());
            if let Some(s) = summary.filter(|s| s.status.is_final()) {
                t.status = s.status;
                t.message = s.message.clone();
                if let Ok(rows) = run.as_ref().map_or(Ok(Vec::new()), RunDir::read_metrics) {
                    t.epochs = rows;
                }
            } else if !orchestrator_alive {
                t.status = TrialStatus::Interrupted;
            }
        }
        Ok(record)
    }

    /// The summary a trial's run wrote, if any.
    pub fn trial_summary(&self, id: &str) -> Option<TrialSummary> {
        RunDir::open(&self.trial_dir(id)).ok()?.read_summary().ok()
    }

    /// Makes `best/` a copy of trial `id`'s results (each file atomic): for a built-in trial
    /// its config, checkpoint, metrics and summary; for a command trial every file it wrote.
    pub fn publish_best(&self, id: &str) -> anyhow::Result<()> {
        let src = self.trial_dir(id);
        let best = self.best_dir();
        if !src.join(TRIAL_INPUT_FILE).is_file() {
            return self.publish_best_directory(id);
        }
        std::fs::create_dir_all(&best)
            .with_context(|| format!("cannot create {}", best.display()))?;
        for f in [CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE] {
            let from = src.join(f);
            if from.is_file() {
                atomic::copy(&from, &best.join(f))?;
            } else {
                let _ = std::fs::remove_file(best.join(f));
            }
        }
        atomic::write(&best.join("trial.txt"), format!("{id}\n"))
    }

    /// A command trial's `best/`: its whole directory, whatever the program wrote there,
    /// copied beside `best/` and then swapped in.
    fn publish_best_directory(&self, id: &str) -> anyhow::Result<()> {
        let best = self.best_dir();
        let staging = self.root.join(format!(".best.new-{}", std::process::id()));
        let old = self.root.join(format!(".best.old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        copy_tree(&self.trial_dir(id), &staging, CONTROL_FILES)?;
        atomic::write(&staging.join("trial.txt"), format!("{id}\n"))?;
        if best.exists() {
            std::fs::rename(&best, &old)
                .with_context(|| format!("cannot move {} aside", best.display()))?;
        }
        std::fs::rename(&staging, &best).with_context(|| {
            format!("cannot rename {} to {}", staging.display(), best.display())
        })?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Removes the kept checkpoints of the trials in `ids` (`best/` keeps its own copy).
    pub fn drop_checkpoints<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        for id in ids {
            let _ = std::fs::remove_file(self.trial_dir(id).join(CHECKPOINT_FILE));
        }
    }

    /// How much disk the sweep uses, and on what.
    pub fn disk_usage(&self) -> DiskUsage {
        let mut usage = DiskUsage::default();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.filter_map(Result::ok) {
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(e.path());
                    continue;
                }
                let size = meta.len();
                usage.total += size;
                let name = e.file_name().to_string_lossy().into_owned();
                let in_trial = dir.parent().is_some_and(|p| p.ends_with("trials"));
                if in_trial && name == CHECKPOINT_FILE {
                    usage.checkpoints += size;
                    usage.checkpoint_files += 1;
                } else if in_trial && name.starts_with(STATE_TENSORS_PREFIX) {
                    usage.states += size;
                    usage.state_files += 1;
                }
            }
        }
        usage
    }

    /// Removes `best/` (the leaderboard has no winner): renamed aside first, so that a reader
    /// never sees half of it.
    pub fn clear_best(&self) -> anyhow::Result<()> {
        let best = self.best_dir();
        if !best.exists() {
            return Ok(());
        }
        let aside = self
            .root
            .join(format!(".best.removed-{}", std::process::id()));
        std::fs::rename(&best, &aside)
            .with_context(|| format!("cannot move {} aside", best.display()))?;
        std::fs::remove_dir_all(&aside)
            .with_context(|| format!("cannot remove {}", aside.display()))
    }

    /// The trial `best/` currently holds.
    pub fn best_trial(&self) -> Option<String> {
        std::fs::read_to_string(self.best_dir().join("trial.txt"))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// The files a trial directory holds to control a running trial, not results: `best/` leaves
/// them out.
const CONTROL_FILES: &[&str] = &[TRIAL_LOCK_FILE, STOP_FILE, THREADS_FILE];

/// Copies the files under `from` into a new directory `to`, but those named in `skip` at its
/// top.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst, &[])?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_locked_sees_the_lock_without_taking_it() {
        let root = std::env::temp_dir().join(format!("sweep-lock-{}", std::process::id()));
        let dir = SweepDir { root: root.clone() };
        assert!(!dir.is_locked());
        let lock = dir.lock().unwrap();
        assert!(dir.is_locked());
        assert!(dir.lock().is_err(), "a second orchestrator is refused");
        for _ in 0..3 {
            assert!(dir.is_locked(), "probing leaves the lock where it is");
        }
        drop(lock);
        assert!(!dir.is_locked());
        let again = dir.lock();
        assert!(again.is_ok(), "probes never hold the lock");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
