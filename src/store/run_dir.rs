//! The directory one training run writes: `config.toml`, `metrics.csv`, `best.safetensors`,
//! `summary.json`, and while it runs the state it resumes from. Every file is replaced
//! atomically, so a reader (or a crash) never sees a half-written one.
//!
//! The directory is also how an orchestrator talks to a running trial: it leaves a `stop`
//! file (with the reason) or a `threads` file there, and the trial reads them between steps.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::atomic;
use crate::trial::{EpochMetrics, Metrics, StopReason, TrialSummary};

/// Held by the trial process for as long as it runs, so that a new attempt waits for an
/// earlier one that is still ending (its orchestrator died and it is saving its state).
pub const TRIAL_LOCK_FILE: &str = "trial.lock";
/// The resolved configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// One row per epoch: `epoch` and every named value the trial reported.
pub const METRICS_FILE: &str = "metrics.csv";
/// Weights and BatchNorm statistics at the best epoch by the objective.
pub const CHECKPOINT_FILE: &str = "best.safetensors";
/// Status and best result.
pub const SUMMARY_FILE: &str = "summary.json";
/// The evaluation of the best checkpoint, cached by the report.
pub const EVAL_FILE: &str = "eval.json";
/// Full training state after a finished epoch (weights, BatchNorm statistics, momentum):
/// `state-<epoch>.safetensors`, named by the epoch so that the file `state.json` names is
/// never the one being written.
pub const STATE_TENSORS_PREFIX: &str = "state-";
/// What the state's tensors do not hold (epoch, best so far, the run's summary), and which
/// tensors file is current.
pub const STATE_META_FILE: &str = "state.json";
/// Left by the orchestrator to stop the trial; holds the reason.
pub const STOP_FILE: &str = "stop";
/// Left by the orchestrator to change the trial's compute threads; holds the count.
pub const THREADS_FILE: &str = "threads";

/// A run's output directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Opens an existing run directory for reading.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.is_dir() {
            bail!("{}: no such run directory", path.display());
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Creates `path` for a new run. An existing run there is refused unless `overwrite`,
    /// which removes its files (other files, such as a sweep's trial log, stay).
    pub fn create(path: &Path, overwrite: bool) -> anyhow::Result<Self> {
        let dir = Self {
            path: path.to_path_buf(),
        };
        let mut existing: Vec<_> = [
            CONFIG_FILE,
            METRICS_FILE,
            CHECKPOINT_FILE,
            SUMMARY_FILE,
            EVAL_FILE,
            STATE_META_FILE,
        ]
        .iter()
        .map(|f| path.join(f))
        .filter(|p| p.exists())
        .collect();
        existing.extend(dir.state_tensor_files());
        if !existing.is_empty() {
            if !overwrite {
                bail!(
                    "{} already holds a run; choose another --out, pass --overwrite, or --resume it",
                    path.display()
                );
            }
            for p in existing {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of one of the run's files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.toml`.
    pub fn write_config(&self, toml: &str) -> anyhow::Result<()> {
        atomic::write(&self.file(CONFIG_FILE), toml)
    }

    /// Rewrites `metrics.csv` with every epoch so far: a column per name, in the order the
    /// names first appeared.
    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> anyhow::Result<()> {
        atomic::write(&self.file(METRICS_FILE), metrics_csv(rows))
    }

    /// Saves the best checkpoint; `save` writes it to the temporary path it is given.
    pub fn save_checkpoint(
        &self,
        save: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        atomic::produce(&self.file(CHECKPOINT_FILE), save)
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &TrialSummary) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(summary)?;
        text.push('\n');
        atomic::write(&self.file(SUMMARY_FILE), text)
    }

    /// Reads `summary.json`.
    pub fn read_summary(&self) -> anyhow::Result<TrialSummary> {
        let p = self.file(SUMMARY_FILE);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid run summary", p.display()))
    }

    /// Reads `metrics.csv`.
    pub fn read_metrics(&self) -> anyhow::Result<Vec<EpochMetrics>> {
        let p = self.file(METRICS_FILE);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        parse_metrics_csv(&text).with_context(|| format!("{}: malformed metrics", p.display()))
    }

    /// Every `state-<epoch>.safetensors` in the directory.
    pub fn state_tensor_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(STATE_TENSORS_PREFIX) && n.ends_with(".safetensors")
                })
            })
            .collect()
    }

    /// Asks the running trial to stop, for `reason`.
    pub fn request_stop(&self, reason: StopReason) -> anyhow::Result<()> {
        atomic::write(
            &self.file(STOP_FILE),
            serde_json::to_string(&reason)? + "\n",
        )
    }

    /// The reason the orchestrator asked this trial to stop, if it did.
    pub fn stop_request(&self) -> Option<StopReason> {
        let text = std::fs::read_to_string(self.file(STOP_FILE)).ok()?;
        serde_json::from_str(text.trim()).ok()
    }

    /// Asks the running trial to train with `threads` compute threads from its next step.
    pub fn request_threads(&self, threads: usize) -> anyhow::Result<()> {
        atomic::write(&self.file(THREADS_FILE), format!("{threads}\n"))
    }

    /// The thread count the orchestrator asked for, if any.
    pub fn threads_request(&self) -> Option<usize> {
        std::fs::read_to_string(self.file(THREADS_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
    }

    /// Removes the orchestrator's requests (before an attempt starts).
    pub fn clear_requests(&self) {
        for f in [STOP_FILE, THREADS_FILE] {
            let _ = std::fs::remove_file(self.file(f));
        }
    }
}

/// The rows as CSV text: `epoch`, then every name in order of first appearance; a value a row
/// lacks is an empty cell.
pub fn metrics_csv(rows: &[EpochMetrics]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        for n in r.metrics.names() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut out = String::from("epoch");
    for n in &names {
        out.push(',');
        out.push_str(&csv_field(n));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&r.epoch.to_string());
        for n in &names {
            out.push(',');
            if let Some(v) = r.metrics.get(n) {
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Parses what [`metrics_csv`] writes (or a user's program appends): a header with `epoch`
/// and names, then one row per epoch.
pub fn parse_metrics_csv(text: &str) -> anyhow::Result<Vec<EpochMetrics>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(|h| h.trim().into()).collect();
    let epoch_col = header
        .iter()
        .position(|h| h == "epoch")
        .context("the header has no `epoch` column")?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let cell = |c: usize| record.get(c).map(str::trim).unwrap_or("");
        // `3.0`, as pandas or a division writes it, is epoch 3.
        let epoch: usize = cell(epoch_col)
            .parse::<usize>()
            .ok()
            .or_else(|| {
                let f: f64 = cell(epoch_col).parse().ok()?;
                (f >= 0.0 && f.fract() == 0.0 && f < 1e15).then_some(f as usize)
            })
            .with_context(|| format!("row {}: `epoch` is not a whole number", i + 1))?;
        let mut metrics = Metrics::new();
        for (c, name) in header.iter().enumerate() {
            if c == epoch_col || cell(c).is_empty() {
                continue;
            }
            let v: f64 = cell(c)
                .parse()
                .with_context(|| format!("row {}: `{name}` is not a number", i + 1))?;
            metrics.set(name, v);
        }
        rows.push(EpochMetrics { epoch, metrics });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_round_trip_with_a_column_per_reported_name() {
        let dir = std::env::temp_dir().join(format!("sweep-rundir-{}", std::process::id()));
        let run = RunDir::create(&dir, false).unwrap();
        let row = |epoch, extra: Option<f64>| {
            let mut m = Metrics::new()
                .with("lr", 0.01)
                .with("train_loss", 0.25)
                .with("test_acc", 96.25);
            if let Some(v) = extra {
                m.set("val_acc", v);
            }
            EpochMetrics { epoch, metrics: m }
        };
        let rows = vec![row(1, None), row(2, Some(97.5))];
        run.write_metrics(&rows).unwrap();
        let text = std::fs::read_to_string(run.file(METRICS_FILE)).unwrap();
        assert_eq!(
            text,
            "epoch,lr,train_loss,test_acc,val_acc\n1,0.01,0.25,96.25,\n2,0.01,0.25,96.25,97.5\n"
        );
        assert_eq!(run.read_metrics().unwrap(), rows);
        assert!(
            RunDir::create(&dir, false).is_err(),
            "an existing run is not overwritten"
        );
        assert!(RunDir::create(&dir, true).is_ok());
        assert!(!run.file(METRICS_FILE).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_and_thread_requests_are_files_the_trial_reads() {
        let dir = std::env::temp_dir().join(format!("sweep-control-{}", std::process::id()));
        let run = RunDir::create(&dir, true).unwrap();
        assert_eq!(run.stop_request(), None);
        run.request_stop(StopReason::Pruned).unwrap();
        assert_eq!(run.stop_request(), Some(StopReason::Pruned));
        run.request_threads(2).unwrap();
        assert_eq!(run.threads_request(), Some(2));
        run.clear_requests();
        assert_eq!((run.stop_request(), run.threads_request()), (None, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_users_metrics_file_with_gaps_parses() {
        let rows = parse_metrics_csv("val_acc,epoch\n90.5,1\n,2\n").unwrap();
        assert_eq!(rows[0].get("val_acc"), Some(90.5));
        assert_eq!(rows[1].epoch, 2);
        assert!(rows[1].metrics.is_empty());
        assert!(parse_metrics_csv("acc\n1\n").is_err());
        assert!(parse_metrics_csv("epoch,acc\n1,x\n").is_err());
    }
}
