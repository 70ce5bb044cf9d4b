//! Trains one fully resolved `TrialConfig`: epochs of shuffled (augmented) batches, evaluation
//! after each, the best checkpoint kept. Knows nothing about sweeps.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;

use crate::store::run_dir::{EpochMetrics, RunDir, RunStatus, RunSummary};
use crate::train::augment::Augmenter;
use crate::train::config::{ModelConfig, TrialConfig};
use crate::train::data::batches::EpochBatches;
use crate::train::data::{Mnist, Normalizer};
use crate::train::engine::{self, TestSet};
use crate::train::model::Mlp;
use crate::train::optim::MultiStepLr;

/// Receives progress as training goes (progress bar, event stream, nothing).
pub trait Observer {
    /// Training is about to start.
    fn started(&mut self, _epochs: usize, _steps_per_epoch: usize, _summary: &RunSummary) {}
    /// A step of `epoch` (1-based) finished; `loss`/`acc` are the epoch's running means.
    fn step(&mut self, _epoch: usize, _step: usize, _loss: f64, _acc: f64) {}
    /// An epoch finished and was evaluated.
    fn epoch(&mut self, _epochs: usize, _metrics: &EpochMetrics, _summary: &RunSummary) {}
    /// The run ended.
    fn finished(&mut self, _summary: &RunSummary) {}
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
    /// The output directory.
    pub run: &'a RunDir,
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

/// Loads the test split of `config` onto `device`.
pub fn load_test_set(config: &TrialConfig, device: &Device) -> anyhow::Result<TestSet> {
    let data = &config.data;
    let mut test = crate::train::data::Split::read(&data.dir, "t10k").with_context(|| {
        format!(
            "cannot load the MNIST test set (data.dir = {})",
            data.dir.display()
        )
    })?;
    test.truncate(data.test_limit);
    TestSet::new(&test, &Normalizer::new(data.mean, data.std), device)
}

/// Trains `config`, writing everything into `ctx.run`; returns the final summary.
///
/// A diverged or interrupted run is not an error: its summary says so.
pub fn train(
    config: &TrialConfig,
    ctx: &TrainContext,
    observer: &mut dyn Observer,
) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let engine_kind = engine::resolve(config.engine, ctx.device)?;
    let mut summary = RunSummary {
        status: RunStatus::Running,
        best_test_acc: 0.0,
        best_epoch: 0,
        epochs_run: 0,
        seconds: 0.0,
        message: None,
        device: device_name(ctx.device),
        engine: format!("{engine_kind:?}").to_lowercase(),
        threads: crate::train::threads::get(),
    };
    ctx.run.write_config(config)?;
    ctx.run.write_summary(&summary)?;
    let result = train_epochs(config, ctx, engine_kind, &mut summary, started, observer);
    summary.seconds = round_ms(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        summary.status = RunStatus::Failed;
        summary.message = Some(format!("{e:#}"));
    }
    ctx.run.write_summary(&summary)?;
    observer.finished(&summary);
    result.map(|()| summary)
}

fn train_epochs(
    config: &TrialConfig,
    ctx: &TrainContext,
    engine_kind: crate::train::config::Engine,
    summary: &mut RunSummary,
    started: Instant,
    observer: &mut dyn Observer,
) -> anyhow::Result<()> {
    let data = &config.data;
    let mnist = Mnist::load(&data.dir, data.train_limit, data.test_limit)
        .with_context(|| format!("cannot load MNIST (data.dir = {})", data.dir.display()))?;
    let normalizer = Normalizer::new(data.mean, data.std);
    let test = TestSet::new(&mnist.test, &normalizer, ctx.device)?;
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
    let mut rows: Vec<EpochMetrics> = Vec::new();
    ctx.run.write_metrics(&rows)?;

    for epoch in 0..config.epochs {
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
        if epoch == 0 {
            observer.started(config.epochs, batches.count(), summary);
        }
        let (mut loss_sum, mut correct, mut seen, mut steps) = (0.0f64, 0usize, 0usize, 0usize);
        let stopped = batches.for_each(|batch| {
            if ctx.stop.load(Ordering::Relaxed) {
                return ControlFlow::Break(Stop::Interrupted);
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
            Some(Stop::Interrupted) => {
                summary.status = RunStatus::Interrupted;
                summary.message = Some(format!("interrupted during epoch {}", epoch + 1));
                return Ok(());
            }
            Some(Stop::Diverged(at)) => {
                summary.status = RunStatus::Diverged;
                summary.message = Some(format!(
                    "loss became non-finite at epoch {}, step {at} (lr {lr})",
                    epoch + 1
                ));
                return Ok(());
            }
        }

        let eval = engine::evaluate(&model, &test)?;
        let row = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            test_loss: eval.loss,
            test_acc: eval.accuracy,
            seconds: round_ms(epoch_start.elapsed().as_secs_f64()),
        };
        if !eval.loss.is_finite() {
            summary.status = RunStatus::Diverged;
            summary.message = Some(format!(
                "test loss became non-finite after epoch {}",
                epoch + 1
            ));
            return Ok(());
        }
        if row.test_acc > summary.best_test_acc || summary.best_epoch == 0 {
            ctx.run.save_checkpoint(&model)?;
            summary.best_test_acc = row.test_acc;
            summary.best_epoch = row.epoch;
        }
        rows.push(row);
        ctx.run.write_metrics(&rows)?;
        summary.epochs_run = epoch + 1;
        summary.seconds = round_ms(started.elapsed().as_secs_f64());
        ctx.run.write_summary(summary)?;
        observer.epoch(config.epochs, rows.last().expect("just pushed"), summary);
    }
    summary.status = RunStatus::Completed;
    Ok(())
}

/// Why an epoch stopped early.
enum Stop {
    Interrupted,
    Diverged(usize),
    Error(anyhow::Error),
}

/// Seconds rounded to the millisecond.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
