//! The directory one training run writes: `config.toml`, `metrics.csv`, `best.safetensors`,
//! `summary.json`. Every file is replaced atomically, so a reader (or a crash) never sees a
//! half-written one.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::atomic;
use crate::train::config::TrialConfig;
use crate::train::model::Mlp;

/// The resolved configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// One row per epoch.
pub const METRICS_FILE: &str = "metrics.csv";
/// Weights and BatchNorm statistics at the best test accuracy so far.
pub const CHECKPOINT_FILE: &str = "best.safetensors";
/// Status and best result.
pub const SUMMARY_FILE: &str = "summary.json";

/// One row of `metrics.csv`; accuracies in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Mean training loss (BatchNorm in train mode, as the model trained).
    pub train_loss: f64,
    /// Training accuracy over the epoch.
    pub train_acc: f64,
    /// Mean test loss (eval mode).
    pub test_loss: f64,
    /// Test accuracy (eval mode).
    pub test_acc: f64,
    /// Wall time of the epoch, training and evaluation.
    pub seconds: f64,
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still training (or killed without a chance to say otherwise).
    Running,
    /// Every epoch ran.
    Completed,
    /// The loss became NaN or infinite.
    Diverged,
    /// Stopped by SIGINT/SIGTERM.
    Interrupted,
    /// An error stopped it.
    Failed,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        write!(f, "{}", s.as_str().unwrap_or("?"))
    }
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// How the run ended.
    pub status: RunStatus,
    /// Best test accuracy over the epochs run (percent; 0 before the first epoch).
    pub best_test_acc: f64,
    /// Epoch of the best test accuracy (0 before the first epoch).
    pub best_epoch: usize,
    /// Epochs completed.
    pub epochs_run: usize,
    /// Wall time so far.
    pub seconds: f64,
    /// What went wrong, for diverged, interrupted and failed runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where it ran ("cpu", "cuda:0").
    #[serde(default)]
    pub device: String,
    /// The training-step implementation.
    #[serde(default)]
    pub engine: String,
    /// Compute threads.
    #[serde(default)]
    pub threads: usize,
}

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
        // eval.json caches an evaluation of the old checkpoint (see the report).
        let existing: Vec<_> = [
            CONFIG_FILE,
            METRICS_FILE,
            CHECKPOINT_FILE,
            SUMMARY_FILE,
            "eval.json",
        ]
        .iter()
        .map(|f| path.join(f))
        .filter(|p| p.exists())
        .collect();
        if !existing.is_empty() {
            if !overwrite {
                bail!(
                    "{} already holds a run; choose another --out or pass --overwrite",
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
    pub fn write_config(&self, config: &TrialConfig) -> anyhow::Result<()> {
        atomic::write(&self.file(CONFIG_FILE), config.to_toml())
    }

    /// Rewrites `metrics.csv` with every epoch so far.
    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> anyhow::Result<()> {
        atomic::write_with(&self.file(METRICS_FILE), |out| {
            let mut w = csv::Writer::from_writer(out);
            if rows.is_empty() {
                w.write_record([
                    "epoch",
                    "lr",
                    "train_loss",
                    "train_acc",
                    "test_loss",
                    "test_acc",
                    "seconds",
                ])?;
            }
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
            Ok(())
        })
    }

    /// Saves the model as the best checkpoint.
    pub fn save_checkpoint(&self, model: &Mlp) -> anyhow::Result<()> {
        atomic::produce(&self.file(CHECKPOINT_FILE), |tmp| model.save(tmp))
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &RunSummary) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(summary)?;
        text.push('\n');
        atomic::write(&self.file(SUMMARY_FILE), text)
    }

    /// Reads `config.toml`.
    pub fn read_config(&self) -> anyhow::Result<TrialConfig> {
        TrialConfig::load(&self.file(CONFIG_FILE), &[])
    }

    /// Reads `summary.json`.
    pub fn read_summary(&self) -> anyhow::Result<RunSummary> {
        let p = self.file(SUMMARY_FILE);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid run summary", p.display()))
    }

    /// Reads `metrics.csv`.
    pub fn read_metrics(&self) -> anyhow::Result<Vec<EpochMetrics>> {
        let p = self.file(METRICS_FILE);
        let mut r =
            csv::Reader::from_path(&p).with_context(|| format!("cannot read {}", p.display()))?;
        r.deserialize()
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: malformed metrics", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_round_trip_with_the_documented_header() {
        let dir = std::env::temp_dir().join(format!("sweep-rundir-{}", std::process::id()));
        let run = RunDir::create(&dir, false).unwrap();
        let row = EpochMetrics {
            epoch: 1,
            lr: 0.01,
            train_loss: 0.25,
            train_acc: 92.5,
            test_loss: 0.125,
            test_acc: 96.25,
            seconds: 1.5,
        };
        run.write_metrics(std::slice::from_ref(&row)).unwrap();
        let text = std::fs::read_to_string(run.file(METRICS_FILE)).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds"
        );
        assert_eq!(run.read_metrics().unwrap(), vec![row]);
        assert!(
            RunDir::create(&dir, false).is_err(),
            "an existing run is not overwritten"
        );
        assert!(RunDir::create(&dir, true).is_ok());
        assert!(!run.file(METRICS_FILE).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
