//! Trains one fully resolved `TrialConfig`: epochs of shuffled (augmented) batches, evaluation
//! after each, the best checkpoint kept. Knows nothing about sweeps.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::Device;

use crate::store::run_dir::RunDir;
use crate::train::augment::Augmenter;
use crate::train::config::{Blas, ModelConfig, TrialConfig};
use crate::train::cpu::kernels::Products;
use crate::train::data::batches::EpochBatches;
use crate::train::data::{Mnist, Normalizer};
use crate::train::engine::{self, TestSet};
use crate::train::ledger::{EpochTally, EvalSets, RunLedger, load_mnist};
use crate::train::model::Mlp;
use crate::train::optim::MultiStepLr;
use crate::train::threads;
use crate::trial::{EpochMetrics, Objective, StopReason, TrialSummary};

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
    let engine_kind = engine::resolve(config.engine, ctx.device)?;
    let engine_name = engine_label(
        &format!("{engine_kind:?}").to_lowercase(),
        config.blas,
        ctx.device,
    );
    let mut ledger = RunLedger::open(
        config,
        ctx.run,
        ctx.objective,
        &device_name(ctx.device),
        &engine_name,
        threads::get(),
    )?;
    let result = train_epochs(config, ctx, engine_kind, &mut ledger, observer);
    let summary = ledger.finish(&result)?;
    observer.finished(&summary);
    result.map(|()| summary)
}

/// The engine as a run's summary records it, with what computed its products on the CPU: the
/// vendor BLAS (`fused (blas mkl)`), or the family of sweep's own kernels (`fused (avx512
/// kernels)`), since two kernel families compute different bits. On a GPU, the engine alone.
pub(crate) fn engine_label(engine: &str, blas: Blas, device: &Device) -> String {
    match (blas, device.is_cpu()) {
        (_, false) => engine.to_string(),
        (Blas::Sweep, true) => format!(
            "{engine} ({} kernels)",
            crate::train::cpu::family::current().name()
        ),
        (blas, true) => format!("{engine} (blas {})", blas.name()),
    }
}

/// How often a running trial looks for the orchestrator's requests in its directory.
pub(crate) const REQUEST_POLL: Duration = Duration::from_millis(250);

fn train_epochs(
    config: &TrialConfig,
    ctx: &TrainContext,
    engine_kind: crate::train::config::Engine,
    ledger: &mut RunLedger,
    observer: &mut dyn Observer,
) -> anyhow::Result<()> {
    let data = &config.data;
    let mnist = load_mnist(config)?;
    let normalizer = Normalizer::new(data.mean, data.std);
    let sets = EvalSets::new(&mnist, &normalizer, ctx.device)?;
    let augmenter = config.effective_augment().map(Augmenter::new);
    let model = Mlp::new(&config.model, config.seed, ctx.device)?;
    // On a GPU without augmentation the whole normalised training set lives on the device and
    // batches are gathered there; with augmentation they are prepared on the CPU and uploaded.
    let resident = if !ctx.device.is_cpu() && augmenter.is_none() {
        Some(resident_inputs(&mnist, &normalizer, ctx.device)?)
    } else {
        None
    };
    let fill_inputs = resident.is_none();
    let mut step = engine::build(engine_kind, &model, config, resident)?;
    if let Products::Vendor(lib) = Products::load(config.blas)? {
        note!("matrix products: {}", lib.config.trim());
    }
    let schedule = MultiStepLr::from_config(config);
    let first_epoch = if ctx.resume {
        let (epoch, momentum) = ledger.resume(&model)?;
        if let Some(m) = momentum {
            step.set_momentum(m)?;
        }
        epoch
    } else {
        ctx.run.write_metrics(&[])?;
        0
    };
    let mut last_poll = Instant::now();
    let mut pace = Pace::new();

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
            observer.started(config.epochs, batches.count(), &ledger.summary);
        }
        let mut tally = EpochTally::default();
        let mut steps = 0usize;
        pace.epoch_started();
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
                if let Some(n) = ctx.run.threads_request() {
                    pace.switch(n, epoch + 1, steps);
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
            tally.loss_sum += outcome.loss_sum;
            tally.correct += outcome.correct;
            tally.seen += batch.len();
            observer.step(
                epoch + 1,
                steps,
                tally.loss_sum / tally.seen as f64,
                100.0 * tally.correct as f64 / tally.seen as f64,
            );
            ControlFlow::Continue(())
        });
        match stopped {
            None => {}
            Some(Stop::Error(e)) => {
                return Err(e.context(format!("training failed in epoch {}", epoch + 1)));
            }
            Some(Stop::Requested(reason)) => {
                ledger.stopped(reason, epoch);
                return Ok(());
            }
            Some(Stop::Diverged(at)) => {
                ledger.diverged(epoch, at, lr);
                return Ok(());
            }
        }
        let Some(row) = ledger.evaluate(&model, epoch, lr, tally, &sets, epoch_start)? else {
            return Ok(());
        };
        ledger.record(row, &model, step.momentum()?)?;
        let row = ledger.last().expect("just recorded");
        observer.epoch(config.epochs, row, &ledger.summary);
    }
    ledger.completed();
    Ok(())
}

/// The normalised training set as one `[n x 784]` tensor on `device` (batches are then
/// gathered there by index).
pub fn resident_inputs(
    mnist: &Mnist,
    normalizer: &Normalizer,
    device: &Device,
) -> anyhow::Result<candle_core::Tensor> {
    let inputs = normalizer.split(&mnist.train);
    Ok(candle_core::Tensor::from_vec(
        inputs,
        (mnist.train.len(), crate::train::augment::PIXELS),
        device,
    )?)
}

/// Follows the compute threads the orchestrator asks for, and how fast steps go with each
/// count: a switch is logged (on stderr, the trial's log) with the pace before it and, a few
/// seconds later, the pace after it.
struct Pace {
    since: Instant,
    steps_before: usize,
    /// The pace after the last switch is still to be logged.
    pending: bool,
}

impl Pace {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            steps_before: 0,
            pending: false,
        }
    }

    fn epoch_started(&mut self) {
        self.since = Instant::now();
        self.steps_before = 0;
    }

    /// The steps per second since the last switch (or the epoch's start).
    fn rate(&self, steps: usize) -> f64 {
        (steps - self.steps_before) as f64 / self.since.elapsed().as_secs_f64().max(1e-9)
    }

    /// Applies a requested thread count at step `steps` of `epoch`.
    fn switch(&mut self, requested: usize, epoch: usize, steps: usize) {
        let before = threads::get();
        if requested == before {
            if self.pending && self.since.elapsed() >= Duration::from_secs(3) {
                self.pending = false;
                note!(
                    "threads: {:.1} steps/s with {before} threads",
                    self.rate(steps)
                );
            }
            return;
        }
        let rate = self.rate(steps);
        let now = threads::set(requested);
        if now == before {
            return; // no more cores than it has
        }
        let pace = if steps > self.steps_before {
            format!(", at {rate:.1} steps/s")
        } else {
            String::new() // no step yet at the old count
        };
        note!("threads: {now} from step {steps} of epoch {epoch} (was {before}{pace})");
        self.since = Instant::now();
        self.steps_before = steps;
        self.pending = true;
    }
}

/// Why an epoch stopped early.
enum Stop {
    Requested(StopReason),
    Diverged(usize),
    Error(anyhow::Error),
}
