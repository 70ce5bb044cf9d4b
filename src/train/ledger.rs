//! What one training run writes as it goes, whoever trains it (alone, or packed with other
//! trials in one step): its configuration, summary, `metrics.csv`, best checkpoint and
//! resumable state, and the evaluation that turns an epoch into a metrics row.

use std::time::Instant;

use anyhow::Context;
use candle_core::Device;

use crate::store::run_dir::RunDir;
use crate::train::config::TrialConfig;
use crate::train::data::{Mnist, Normalizer};
use crate::train::engine::{self, TestSet};
use crate::train::model::Mlp;
use crate::train::state;
use crate::trial::{EpochMetrics, Metrics, Objective, StopReason, TrialStatus, TrialSummary};

/// The metrics the built-in trainer can report after an epoch, in `metrics.csv` order
/// (`val_*` only with a validation split).
pub const REPORTED_METRICS: [&str; 10] = [
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "params",
    "seconds",
    "train_seconds",
];

/// The metrics the trainer reports for `config`.
pub fn reported_metrics(config: &TrialConfig) -> Vec<&'static str> {
    REPORTED_METRICS
        .into_iter()
        .filter(|m| config.data.val_size > 0 || !m.starts_with("val_"))
        .collect()
}

/// The sets a model is evaluated on after every epoch.
pub struct EvalSets {
    /// The validation split, if the configuration holds one out.
    pub val: Option<TestSet>,
    /// The test set.
    pub test: TestSet,
}

impl EvalSets {
    /// The evaluation sets of `mnist` (loaded for the configuration) on `device`.
    pub fn new(mnist: &Mnist, normalizer: &Normalizer, device: &Device) -> anyhow::Result<Self> {
        Ok(Self {
            val: match &mnist.val {
                Some(v) => Some(TestSet::new(v, normalizer, device)?),
                None => None,
            },
            test: TestSet::new(&mnist.test, normalizer, device)?,
        })
    }
}

/// An epoch's training figures: summed per-sample loss, right predictions, samples seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochTally {
    /// Sum of the per-sample losses.
    pub loss_sum: f64,
    /// Right predictions.
    pub correct: usize,
    /// Samples trained on.
    pub seen: usize,
}

/// One run's files, kept up to date epoch by epoch.
pub struct RunLedger<'a> {
    run: &'a RunDir,
    config_toml: String,
    /// The summary so far.
    pub summary: TrialSummary,
    rows: Vec<EpochMetrics>,
    started: Instant,
    /// Seconds of earlier attempts of a resumed run.
    earlier: f64,
    /// Stopped by a pause: the state it resumes from outlives its final status.
    keep_state: bool,
}

impl<'a> RunLedger<'a> {
    /// Opens a run of `config` in `run`, selected by `objective`: checks that the trainer
    /// reports the objective's metric, then writes the configuration and a running summary.
    pub fn open(
        config: &TrialConfig,
        run: &'a RunDir,
        objective: &Objective,
        device: &str,
        engine: &str,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let reported = reported_metrics(config);
        if !reported.contains(&objective.metric.as_str()) {
            anyhow::bail!(
                "metric `{}`: the built-in trainer reports {} for this configuration{}",
                objective.metric,
                reported.join(", "),
                if objective.metric.starts_with("val_") {
                    " (val_* needs a validation split: set data.val_size)"
                } else {
                    ""
                }
            );
        }
        let config_toml = config.to_toml();
        let summary = TrialSummary::starting(objective.clone(), device, engine, threads);
        run.write_config(&config_toml)?;
        run.write_summary(&summary)?;
        Ok(Self {
            run,
            config_toml,
            summary,
            rows: Vec::new(),
            started,
            earlier: 0.0,
            keep_state: false,
        })
    }

    /// The run directory.
    pub fn run(&self) -> &RunDir {
        self.run
    }

    /// Restores into `model` the state an earlier attempt saved, if any (for this exact
    /// configuration); returns the epochs already done and the optimiser's momentum buffers
    /// to restore. Without a state, the run starts from epoch 0 and `metrics.csv` is emptied.
    pub fn resume(&mut self, model: &Mlp) -> anyhow::Result<(usize, Option<Vec<Vec<f32>>>)> {
        let Some(r) = state::load(self.run, &self.config_toml, model)? else {
            self.run.write_metrics(&[])?;
            return Ok((0, None));
        };
        // The summary so far, with where this attempt runs.
        let here = (
            self.summary.device.clone(),
            self.summary.engine.clone(),
            self.summary.threads,
        );
        self.summary = r.summary;
        (
            self.summary.device,
            self.summary.engine,
            self.summary.threads,
        ) = here;
        self.summary.status = TrialStatus::Running;
        self.summary.message = None;
        self.rows = self.run.read_metrics().unwrap_or_default();
        self.rows.retain(|row| row.epoch <= r.epoch);
        self.earlier = self.summary.seconds;
        self.run.write_metrics(&self.rows)?;
        Ok((r.epoch, Some(r.momentum)))
    }

    /// The metrics row of 0-based `epoch` trained at `lr`: the training figures, then `model`
    /// evaluated on `sets`. None when an evaluation loss is not finite (the summary then says
    /// the run diverged).
    pub fn evaluate(
        &mut self,
        model: &Mlp,
        epoch: usize,
        lr: f64,
        tally: EpochTally,
        sets: &EvalSets,
        epoch_start: Instant,
    ) -> anyhow::Result<Option<EpochMetrics>> {
        let seen = tally.seen.max(1) as f64;
        let mut metrics = Metrics::new()
            .with("lr", lr)
            .with("train_loss", tally.loss_sum / seen)
            .with("train_acc", 100.0 * tally.correct as f64 / seen);
        for (name, set) in [("val", sets.val.as_ref()), ("test", Some(&sets.test))] {
            let Some(set) = set else { continue };
            let eval = engine::evaluate(model, set)?;
            if !eval.loss.is_finite() {
                self.summary.status = TrialStatus::Diverged;
                self.summary.message = Some(format!(
                    "{name} loss became non-finite after epoch {}",
                    epoch + 1
                ));
                return Ok(None);
            }
            metrics.set(&format!("{name}_loss"), eval.loss);
            metrics.set(&format!("{name}_acc"), eval.accuracy);
        }
        metrics.set("params", model.parameter_count() as f64);
        metrics.set("seconds", round_ms(epoch_start.elapsed().as_secs_f64()));
        // The run's wall time so far, earlier attempts of a resumed run included: what
        // training to this epoch cost (an objective or constraint of a sweep).
        metrics.set("train_seconds", self.seconds());
        Ok(Some(EpochMetrics {
            epoch: epoch + 1,
            metrics,
        }))
    }

    /// Records a finished epoch: the checkpoint when it is the best so far, `metrics.csv`, the
    /// summary, and the resumable state (`model` and the optimiser's `momentum`).
    pub fn record(
        &mut self,
        row: EpochMetrics,
        model: &Mlp,
        momentum: Vec<Vec<f32>>,
    ) -> anyhow::Result<()> {
        if self.summary.record(&row) {
            self.run.save_checkpoint(|tmp| model.save(tmp))?;
        }
        let epoch = row.epoch;
        self.rows.push(row);
        self.run.write_metrics(&self.rows)?;
        self.summary.seconds = self.seconds();
        self.run.write_summary(&self.summary)?;
        state::save(
            self.run,
            &self.config_toml,
            model,
            momentum,
            epoch,
            &self.summary,
        )
    }

    /// The last epoch recorded.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.rows.last()
    }

    /// The run stopped at the orchestrator's request during 0-based `epoch`.
    pub fn stopped(&mut self, reason: StopReason, epoch: usize) {
        self.summary.status = reason.status();
        self.summary.message = Some(format!("{} during epoch {}", reason.why(), epoch + 1));
        self.keep_state = reason == StopReason::Paused;
    }

    /// The training loss became non-finite at `step` of 0-based `epoch`.
    pub fn diverged(&mut self, epoch: usize, step: usize, lr: f64) {
        self.summary.status = TrialStatus::Diverged;
        self.summary.message = Some(format!(
            "loss became non-finite at epoch {}, step {step} (lr {lr})",
            epoch + 1
        ));
    }

    /// Every epoch ran.
    pub fn completed(&mut self) {
        self.summary.status = TrialStatus::Completed;
    }

    /// Ends the run as `result` says (an error fails it) and writes the final summary; a run
    /// with a final status keeps no resumable state.
    pub fn finish(mut self, result: &anyhow::Result<()>) -> anyhow::Result<TrialSummary> {
        self.summary.seconds = self.seconds();
        if let Err(e) = result {
            self.summary.status = TrialStatus::Failed;
            self.summary.message = Some(format!("{e:#}"));
        }
        self.run.write_summary(&self.summary)?;
        if self.summary.status.is_final() && !self.keep_state {
            state::remove(self.run);
        }
        Ok(self.summary)
    }

    /// The run's wall time, earlier attempts of a resumed run included.
    fn seconds(&self) -> f64 {
        round_ms(self.earlier + self.started.elapsed().as_secs_f64())
    }
}

/// Loads the data `config` trains on, naming the directory when it cannot.
pub fn load_mnist(config: &TrialConfig) -> anyhow::Result<Mnist> {
    let data = &config.data;
    Mnist::load(data)
        .with_context(|| format!("cannot load MNIST (data.dir = {})", data.dir.display()))
}

/// Seconds rounded to the millisecond.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
