//! Trains one fully resolved `TrialConfig`: epochs of shuffled (augmented) batches, evaluation
//! after each, the best checkpoint kept. Knows nothing about sweeps.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::Device;

use crate::store::run_dir::RunDir;
use crate::train::augment::Augmenter;
use crate::train::config::{ModelConfig, TrialConfig};
use crate::train::data::batches::EpochBatches;
use crate::train::data::{Mnist, Normalizer};
use crate::train::engine::{self, TestSet};
use crate::train::model::Mlp;
use crate::train::optim::MultiStepLr;
use crate::train::{state, threads};
use crate::trial::{EpochMetrics, Metrics, Objective, StopReason, TrialStatus, TrialSummary};

/// Receives progress as training goes (progress bar, event stream, nothing).
pub trait Observer {
    /// Training is about to start (at epoch `resumed_from + 1`).
    fn started(&mut self, _epochs: usize, _steps_per_epoch: usize, _summary: &TrialSummary) {}
    /// A step of `epoch` (1-based) finished; `loss`/`acc` are the epoch's running means.
    fn step(&mut self, _epoch: usize, _step: usize, _loss: f64, _acc: f64) {}
    /// An epoch finished and was evaluated.
    fn epoch(&mut self, _epochs: usize, _row: &EpochMetrics, _summary: &TrialSummary) {}
    /// The run ended.
    fn finished(&mut self, _summary: &TrialSummary) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Where and how to train.
pub struct TrainContext<'a> {
    /// The device.
    pub device: &'a Device,
    /// Set (by a signal handler) to stop training after the current step.
    pub stop: &'a AtomicBool,
    /// The output directory; also where the orchestrator leaves its requests.
    pub run: &'a RunDir,
    /// What selects the best epoch, whose checkpoint is kept.
    pub objective: &'a Objective,
    /// Continue from the state an earlier run of this configuration saved in `run`, if it
    /// holds one (else start from epoch 1).
    pub resume: bool,
}

/// The metrics the built-in trainer can report after an epoch, in `metrics.csv` order
/// (`val_*` only with a validation split).
pub const REPORTED_METRICS: [&str; 8] = [
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "seconds",
];

/// The metrics the trainer reports for `config`.
pub fn reported_metrics(config: &TrialConfig) -> Vec<&'static str> {
    REPORTED_METRICS
        .into_iter()
        .filter(|m| config.data.val_size > 0 || !m.starts_with("val_"))
        .collect()
}

/// The objective the trainer selects by when none is asked for: validation accuracy with a
/// validation split, else test accuracy (the study's protocol).
pub fn default_objective(config: &TrialConfig) -> Objective {
    if config.data.val_size > 0 {
        Objective::new("val_acc", None).expect("accuracies are maximised")
    } else {
        Objective::test_acc()
    }
}

/// Name of a device as the CLI and summaries spell it.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            _ => "cuda".into(),
        },
        _ => format!("{:?}", device.location()),
    }
}

/// Builds the model `config` describes and loads a checkpoint into it.
pub fn load_model(
    model: &ModelConfig,
    checkpoint: &std::path::Path,
    device: &Device,
) -> anyhow::Result<Mlp> {
    let mlp = Mlp::new(model, 0, device)?;
    mlp.load(checkpoint)?;
    Ok(mlp)
}

/// A set a trained model is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSplit {
    /// The training images `data.val_size` holds out.
    Val,
    /// The test images.
    Test,
}

impl EvalSplit {
    /// "val" or "test", as metric names begin.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Val => "val",
            EvalSplit::Test => "test",
        }
    }
}

/// Loads one evaluation set of `config` onto `device` (None: the config has no validation
/// split). The validation split is cut from the training set exactly as training cut it.
pub fn load_eval_set(
    config: &TrialConfig,
    split: EvalSplit,
    device: &Device,
) -> anyhow::Result<Option<TestSet>> {
    let data = &config.data;
    let normalizer = Normalizer::new(data.mean, data.std);
    let context = || format!("cannot load MNIST (data.dir = {})", data.dir.display());
    let images = match split {
        EvalSplit::Val if data.val_size == 0 => return Ok(None),
        EvalSplit::Val => {
            let train =
                crate::train::data::Split::read(&data.dir, "train").with_context(context)?;
            train.hold_out(data.val_size, data.split_seed)?.1
        }
        EvalSplit::Test => {
            let mut test =
                crate::train::data::Split::read(&data.dir, "t10k").with_context(context)?;
            test.truncate(data.test_limit);
            test
        }
    };
    Ok(Some(TestSet::new(&images, &normalizer, device)?))
}

/// Evaluates a run's kept checkpoint (`best.safetensors`, with its `config.toml`) on `splits`;
/// a split the configuration lacks is left out.
pub fn evaluate_checkpoint(
    run: &RunDir,
    splits: &[EvalSplit],
    device: &Device,
) -> anyhow::Result<Vec<(EvalSplit, engine::EvalOutcome)>> {
    use crate::store::run_dir::{CHECKPOINT_FILE, CONFIG_FILE};
    let config = TrialConfig::load(&run.file(CONFIG_FILE), &[])?;
    let model = load_model(&config.model, &run.file(CHECKPOINT_FILE), device)?;
    let mut out = Vec::new();
    for &split in splits {
        if let Some(set) = load_eval_set(&config, split, device)? {
            out.push((split, engine::evaluate(&model, &set)?));
        }
    }
    Ok(out)
}

/// Trains `config`, writing everything into `ctx.run`; returns the final summary.
///
/// A diverged, stopped or interrupted run is not an error: its summary says so.
pub fn train(
    config: &TrialConfig,
    ctx: &TrainContext,
    observer: &mut dyn Observer,
) -> anyhow::Result<TrialSummary> {
    let started = Instant::now();
    let reported = reported_metrics(config);
    if !reported.contains(&ctx.objective.metric.as_str()) {
        anyhow::bail!(
            "metric `{}`: the built-in trainer reports {} for this configuration{}",
            ctx.objective.metric,
            reported.join(", "),
            if ctx.objective.metric.starts_with("val_") {
                " (val_* needs a validation split: set data.val_size)"
            } else {
                ""
            }
        );
    }
    let engine_kind = engine::resolve(config.engine, ctx.device)?;
    let mut summary = TrialSummary::starting(
        ctx.objective.clone(),
        &device_name(ctx.device),
        &format!("{engine_kind:?}").to_lowercase(),
        threads::get(),
    );
    ctx.run.write_config(&config.to_toml())?;
    ctx.run.write_summary(&summary)?;
    let mut clock = RunClock {
        started,
        earlier: 0.0,
    };
    let result = train_epochs(config, ctx, engine_kind, &mut summary, &mut clock, observer);
    summary.seconds = clock.seconds();
    if let Err(e) = &result {
        summary.status = TrialStatus::Failed;
        summary.message = Some(format!("{e:#}"));
    }
    ctx.run.write_summary(&summary)?;
    if summary.status.is_final() {
        state::remove(ctx.run);
    }
    observer.finished(&summary);
    result.map(|()| summary)
}

/// How often a running trial looks for the orchestrator's requests in its directory.
const REQUEST_POLL: Duration = Duration::from_millis(250);

fn train_epochs(
    config: &TrialConfig,
    ctx: &TrainContext,
    engine_kind: crate::train::config::Engine,
    summary: &mut TrialSummary,
    clock: &mut RunClock,
    observer: &mut dyn Observer,
) -> anyhow::Result<()> {
    let data = &config.data;
    let mnist = Mnist::load(data)
        .with_context(|| format!("cannot load MNIST (data.dir = {})", data.dir.display()))?;
    let normalizer = Normalizer::new(data.mean, data.std);
    let test = TestSet::new(&mnist.test, &normalizer, ctx.device)?;
    let val = match &mnist.val {
        Some(v) => Some(TestSet::new(v, &normalizer, ctx.device)?),
        None => None,
    };
    let augmenter = config.effective_augment().map(Augmenter::new);
    let model = Mlp::new(&config.model, config.seed, ctx.device)?;
    // On a GPU without augmentation the whole normalised training set lives on the device and
    // batches are gathered there; with augmentation they are prepared on the CPU and uploaded.
    let resident = if !ctx.device.is_cpu() && augmenter.is_none() {
        let inputs = normalizer.split(&mnist.train);
        Some(candle_core::Tensor::from_vec(
            inputs,
            (mnist.train.len(), crate::train::augment::PIXELS),
            ctx.device,
        )?)
    } else {
        None
    };
    let fill_inputs = resident.is_none();
    let mut step = engine::build(engine_kind, &model, config, resident)?;
    let schedule = MultiStepLr::from_config(config);
    let config_toml = config.to_toml();
    let resumed = if ctx.resume {
        state::load(ctx.run, &config_toml, &model, step.as_mut())?
    } else {
        None
    };
    let (first_epoch, mut rows) = match resumed {
        Some(r) => {
            // The summary so far, with where this attempt runs.
            let here = (
                summary.device.clone(),
                summary.engine.clone(),
                summary.threads,
            );
            *summary = r.summary;
            (summary.device, summary.engine, summary.threads) = here;
            summary.status = TrialStatus::Running;
            summary.message = None;
            let mut rows = ctx.run.read_metrics().unwrap_or_default();
            rows.retain(|row| row.epoch <= r.epoch);
            clock.earlier = summary.seconds;
            (r.epoch, rows)
        }
        None => (0, Vec::new()),
    };
    ctx.run.write_metrics(&rows)?;
    let mut last_poll = Instant::now();

    for epoch in first_epoch..config.epochs {
        let epoch_start = Instant::now();
        let lr = schedule.lr_at(epoch);
        let batches = EpochBatches {
            split: &mnist.train,
            batch_size: config.batch_size,
            normalizer: &normalizer,
            augmenter: augmenter.as_ref(),
            seed: config.seed,
            epoch,
            drop_single_sample_batch: config.model.batch_norm,
            fill_inputs,
        };
        if epoch == first_epoch {
            observer.started(config.epochs, batches.count(), summary);
        }
        let (mut loss_sum, mut correct, mut seen, mut steps) = (0.0f64, 0usize, 0usize, 0usize);
        let stopped = batches.for_each(|batch| {
            if ctx.stop.load(Ordering::Relaxed) {
                return ControlFlow::Break(Stop::Requested(
                    ctx.run.stop_request().unwrap_or(StopReason::Interrupted),
                ));
            }
            if last_poll.elapsed() >= REQUEST_POLL {
                last_poll = Instant::now();
                if let Some(reason) = ctx.run.stop_request() {
                    return ControlFlow::Break(Stop::Requested(reason));
                }
            }
            let outcome = match step.step(batch, lr) {
                Ok(o) => o,
                Err(e) => return ControlFlow::Break(Stop::Error(e)),
            };
            steps += 1;
            if !outcome.loss_sum.is_finite() {
                return ControlFlow::Break(Stop::Diverged(steps));
            }
            loss_sum += outcome.loss_sum;
            correct += outcome.correct;
            seen += batch.len();
            observer.step(
                epoch + 1,
                steps,
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
            );
            ControlFlow::Continue(())
        });
        match stopped {
            None => {}
            Some(Stop::Error(e)) => {
                return Err(e.context(format!("training failed in epoch {}", epoch + 1)));
            }
            Some(Stop::Requested(reason)) => {
                summary.status = reason.status();
                summary.message =
                    Some(format!("{} during epoch {}", stopped_by(reason), epoch + 1));
                return Ok(());
            }
            Some(Stop::Diverged(at)) => {
                summary.status = TrialStatus::Diverged;
                summary.message = Some(format!(
                    "loss became non-finite at epoch {}, step {at} (lr {lr})",
                    epoch + 1
                ));
                return Ok(());
            }
        }

        let mut metrics = Metrics::new()
            .with("lr", lr)
            .with("train_loss", loss_sum / seen.max(1) as f64)
            .with("train_acc", 100.0 * correct as f64 / seen.max(1) as f64);
        for (name, set) in [("val", val.as_ref()), ("test", Some(&test))] {
            let Some(set) = set else { continue };
            let eval = engine::evaluate(&model, set)?;
            if !eval.loss.is_finite() {
                summary.status = TrialStatus::Diverged;
                summary.message = Some(format!(
                    "{name} loss became non-finite after epoch {}",
                    epoch + 1
                ));
                return Ok(());
            }
            metrics.set(&format!("{name}_loss"), eval.loss);
            metrics.set(&format!("{name}_acc"), eval.accuracy);
        }
        metrics.set("seconds", round_ms(epoch_start.elapsed().as_secs_f64()));
        let row = EpochMetrics {
            epoch: epoch + 1,
            metrics,
        };
        if summary.record(&row) {
            ctx.run.save_checkpoint(|tmp| model.save(tmp))?;
        }
        rows.push(row);
        ctx.run.write_metrics(&rows)?;
        summary.seconds = clock.seconds();
        ctx.run.write_summary(summary)?;
        state::save(
            ctx.run,
            &config_toml,
            &model,
            step.as_ref(),
            epoch + 1,
            summary,
        )?;
        observer.epoch(config.epochs, rows.last().expect("just pushed"), summary);
    }
    summary.status = TrialStatus::Completed;
    Ok(())
}

/// How a stop request reads in a message.
fn stopped_by(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Pruned => "pruned by the sweep",
        StopReason::Timeout => "stopped at its time limit",
        StopReason::Interrupted => "interrupted",
    }
}

/// The wall time of a run, earlier attempts of a resumed run included.
struct RunClock {
    started: Instant,
    earlier: f64,
}

impl RunClock {
    fn seconds(&self) -> f64 {
        round_ms(self.earlier + self.started.elapsed().as_secs_f64())
    }
}

/// Why an epoch stopped early.
enum Stop {
    Requested(StopReason),
    Diverged(usize),
    Error(anyhow::Error),
}

/// Seconds rounded to the millisecond.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
