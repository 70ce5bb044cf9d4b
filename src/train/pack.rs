//! Trains several trials of one architecture together in one process (see
//! [`engine::PackedStep`]): one step per batch for all of them, while each member stays its own
//! run, with its own directory, data order, augmentation, learning-rate schedule, metrics,
//! checkpoint, resumable state and end. A member that diverges or is asked to stop leaves the
//! pack; the others go on.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::store::run_dir::RunDir;
use crate::train::augment::{Augmenter, PIXELS};
use crate::train::config::TrialConfig;
use crate::train::data::Normalizer;
use crate::train::data::batches::{Batch, EpochBatches};
use crate::train::engine::{PackMember, PackedStep};
use crate::train::ledger::{EpochTally, EvalSets, RunLedger, load_mnist};
use crate::train::model::Mlp;
use crate::train::optim::MultiStepLr;
use crate::train::trainer::REQUEST_POLL;
use crate::train::{Observer, device_name, resident_inputs, state, threads};
use crate::trial::{Objective, StopReason, TrialStatus, TrialSummary};

/// One trial of a pack.
pub struct PackedTrial<'a> {
    /// Its configuration.
    pub config: &'a TrialConfig,
    /// Its run directory (also where the orchestrator leaves its requests for it).
    pub run: &'a RunDir,
    /// What selects its best epoch.
    pub objective: &'a Objective,
    /// Continue from the state an earlier run saved in `run`, if any.
    pub resume: bool,
    /// Receives its progress.
    pub observer: &'a mut dyn Observer,
}

/// What trials must share to train in one pack: the architecture, the batch size, the epochs
/// and the data (they may differ in optimiser, schedule, seed and augmentation).
pub fn pack_key(config: &TrialConfig) -> String {
    format!(
        "{:?}|{}|{}|{:?}",
        config.model, config.batch_size, config.epochs, config.data
    )
}

/// The epoch a run in `run` would resume from (0: none saved).
pub fn resume_epoch(run: &RunDir) -> usize {
    state::saved_epoch(run).unwrap_or(0)
}

/// Trains `trials` together on `device`; returns each one's summary (or why it failed), in
/// order. Raising `stop` (a signal) stops them all, each with the reason its directory gives;
/// raising `look` makes the pack read its members' stop requests before the next step (it
/// also does every [`REQUEST_POLL`]).
pub fn train_pack(
    trials: Vec<PackedTrial>,
    device: &Device,
    stop: &AtomicBool,
    look: &AtomicBool,
) -> Vec<anyhow::Result<TrialSummary>> {
    let mut results: Vec<Option<anyhow::Result<TrialSummary>>> =
        trials.iter().map(|_| None).collect();
    let mut members = Vec::new();
    for (index, trial) in trials.into_iter().enumerate() {
        match RunLedger::open(
            trial.config,
            trial.run,
            trial.objective,
            &device_name(device),
            &crate::train::trainer::engine_label("packed", trial.config.blas, device),
            threads::get(),
        ) {
            Ok(ledger) => members.push(Member {
                index,
                trial,
                ledger,
                failed: None,
            }),
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    if let Err(e) = train_members(&mut members, device, stop, look) {
        // What broke the shared step broke it for every member still in it.
        let message = format!("{e:#}");
        for m in &mut members {
            if m.ledger.summary.status == TrialStatus::Running {
                m.failed = Some(anyhow::anyhow!("{message}"));
            }
        }
    }
    for m in members {
        let result = m.failed.map_or(Ok(()), Err);
        let out = m.ledger.finish(&result).and_then(|summary| {
            m.trial.observer.finished(&summary);
            result.map(|()| summary)
        });
        results[m.index] = Some(out);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("the trial did not run"))))
        .collect()
}

/// A trial in the pack.
struct Member<'a> {
    /// Its place in the caller's list.
    index: usize,
    trial: PackedTrial<'a>,
    ledger: RunLedger<'a>,
    failed: Option<anyhow::Error>,
}

/// A member's lane through one epoch: its batches and what it trained on so far.
struct Lane {
    member: usize,
    batches: mpsc::Receiver<Batch>,
    tally: EpochTally,
    lr: f64,
}

fn train_members(
    members: &mut [Member],
    device: &Device,
    stop: &AtomicBool,
    look: &AtomicBool,
) -> anyhow::Result<()> {
    let Some(first) = members.first() else {
        return Ok(());
    };
    let config = first.trial.config;
    let key = pack_key(config);
    if let Some(m) = members.iter().find(|m| pack_key(m.trial.config) != key) {
        anyhow::bail!(
            "trial in {} cannot share a step with the one in {}: packed trials need the same \
             model, batch size, epochs and data",
            m.trial.run.path().display(),
            first.trial.run.path().display()
        );
    }
    let configs: Vec<&TrialConfig> = members.iter().map(|m| m.trial.config).collect();
    let data = &config.data;
    let mnist = load_mnist(config)?;
    let normalizer = Normalizer::new(data.mean, data.std);
    let sets = EvalSets::new(&mnist, &normalizer, device)?;
    let augmenters: Vec<Option<Augmenter>> = configs
        .iter()
        .map(|c| c.effective_augment().map(Augmenter::new))
        .collect();
    let schedules: Vec<MultiStepLr> = configs
        .iter()
        .map(|c| MultiStepLr::from_config(c))
        .collect();
    // Without augmentation on a GPU, the training set lives there and batches are gathered.
    let resident = if !device.is_cpu() && augmenters.iter().all(Option::is_none) {
        Some(resident_inputs(&mnist, &normalizer, device)?)
    } else {
        None
    };

    let (models, mut step, first_epoch) = start_members(members, &configs, device)?;
    // The members still in the pack, in the pack's order.
    let mut active: Vec<usize> = (0..members.len()).collect();
    let mut last_poll = Instant::now();

    for epoch in first_epoch..config.epochs {
        let epoch_start = Instant::now();
        let plans: Vec<EpochBatches> = active
            .iter()
            .map(|&i| EpochBatches {
                split: &mnist.train,
                batch_size: config.batch_size,
                normalizer: &normalizer,
                augmenter: augmenters[i].as_ref(),
                seed: configs[i].seed,
                epoch,
                drop_single_sample_batch: config.model.batch_norm,
                fill_inputs: resident.is_none(),
            })
            .collect();
        let steps = plans.first().map_or(0, EpochBatches::count);
        if epoch == first_epoch {
            for &i in &active {
                let m = &mut members[i];
                m.trial
                    .observer
                    .started(config.epochs, steps, &m.ledger.summary);
            }
        }
        let lanes = std::thread::scope(|scope| -> anyhow::Result<Vec<Lane>> {
            let mut lanes: Vec<Lane> = Vec::new();
            for (plan, &member) in plans.iter().zip(&active) {
                let (tx, rx) = mpsc::sync_channel::<Batch>(2);
                scope.spawn(move || {
                    plan.for_each(|b| match tx.send(b.clone()) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()), // the member left the pack
                    })
                });
                lanes.push(Lane {
                    member,
                    batches: rx,
                    tally: EpochTally::default(),
                    lr: schedules[member].lr_at(epoch),
                });
            }
            for done in 1..=steps {
                // Requests: a signal stops every member; a stop file, the member it names.
                let signalled = stop.load(Ordering::Relaxed);
                let looked = look.swap(false, Ordering::Relaxed);
                if signalled || looked || last_poll.elapsed() >= REQUEST_POLL {
                    last_poll = Instant::now();
                    take_requests(members, &mut step, &mut lanes, signalled, epoch, done)?;
                }
                if lanes.is_empty() {
                    break;
                }
                let batches = lanes
                    .iter()
                    .map(|l| l.batches.recv())
                    .collect::<Result<Vec<Batch>, _>>()
                    .map_err(|_| anyhow::anyhow!("a member's batches ended early"))?;
                let (inputs, labels) = stacked(&batches, resident.as_ref(), device)?;
                let lrs: Vec<f64> = lanes.iter().map(|l| l.lr).collect();
                let outcomes = step
                    .step(&inputs, &labels, &lrs)
                    .map_err(|e| e.context(format!("training failed in epoch {}", epoch + 1)))?;
                let mut keep = Vec::with_capacity(lanes.len());
                for ((lane, outcome), batch) in lanes.iter_mut().zip(outcomes).zip(&batches) {
                    let m = &mut members[lane.member];
                    if !outcome.loss_sum.is_finite() {
                        m.ledger.diverged(epoch, done, lane.lr);
                        keep.push(false);
                        continue;
                    }
                    keep.push(true);
                    let t = &mut lane.tally;
                    t.loss_sum += outcome.loss_sum;
                    t.correct += outcome.correct;
                    t.seen += batch.len();
                    m.trial.observer.step(
                        epoch + 1,
                        done,
                        t.loss_sum / t.seen as f64,
                        100.0 * t.correct as f64 / t.seen as f64,
                    );
                }
                leave(&mut step, &mut lanes, &keep)?;
            }
            Ok(lanes)
        })?;

        // Each member alone: evaluated, recorded, checkpointed.
        active = record_epoch(
            members,
            &models,
            &lanes,
            &mut step,
            &sets,
            epoch,
            epoch_start,
        )?;
        if active.is_empty() {
            return Ok(());
        }
    }
    for &i in &active {
        members[i].ledger.completed();
    }
    Ok(())
}

/// Builds each member's model (resumed from its saved state when it has one) and the packed
/// step over them; returns the models, the step and the epoch they all start from.
fn start_members(
    members: &mut [Member],
    configs: &[&TrialConfig],
    device: &Device,
) -> anyhow::Result<(Vec<Mlp>, PackedStep, usize)> {
    let mut models = Vec::new();
    let mut momenta = Vec::new();
    let mut starts = Vec::new();
    for (m, c) in members.iter_mut().zip(configs) {
        let model = Mlp::new(&c.model, c.seed, device)?;
        let (epoch, momentum) = if m.trial.resume {
            m.ledger.resume(&model)?
        } else {
            m.trial.run.write_metrics(&[])?;
            (0, None)
        };
        models.push(model);
        momenta.push(momentum);
        starts.push(epoch);
    }
    let first_epoch = starts[0];
    if starts.iter().any(|&e| e != first_epoch) {
        anyhow::bail!(
            "packed trials must resume from the same epoch, and these saved {starts:?}; run them \
             apart"
        );
    }
    let entering: Vec<PackMember> = models
        .iter()
        .zip(momenta)
        .zip(configs)
        .map(|((model, momentum), c)| PackMember {
            model,
            optimizer: &c.optimizer,
            momentum,
        })
        .collect();
    let step = PackedStep::new(&entering)?;
    drop(entering);
    Ok((models, step, first_epoch))
}

/// Acts on the requests waiting between two steps: a signal stops every member, a stop file
/// the member it names (both leave the pack), and a new thread count applies to the pack.
fn take_requests(
    members: &mut [Member],
    step: &mut PackedStep,
    lanes: &mut Vec<Lane>,
    signalled: bool,
    epoch: usize,
    done: usize,
) -> anyhow::Result<()> {
    let mut keep = Vec::with_capacity(lanes.len());
    for lane in lanes.iter() {
        let m = &mut members[lane.member];
        let request = m.trial.run.stop_request();
        match (request, signalled) {
            (Some(reason), _) => m.ledger.stopped(reason, epoch),
            (None, true) => m.ledger.stopped(StopReason::Interrupted, epoch),
            (None, false) => {}
        }
        keep.push(m.ledger.summary.status == TrialStatus::Running);
    }
    leave(step, lanes, &keep)?;
    if let Some(n) = members[0].trial.run.threads_request()
        && n != threads::get()
    {
        note!(
            "threads: {} from step {done} of epoch {}",
            threads::set(n),
            epoch + 1
        );
    }
    Ok(())
}

/// Evaluates, records and checkpoints each member after an epoch; returns the members still
/// in the pack (one that diverged or was stopped leaves it).
fn record_epoch(
    members: &mut [Member],
    models: &[Mlp],
    lanes: &[Lane],
    step: &mut PackedStep,
    sets: &EvalSets,
    epoch: usize,
    epoch_start: Instant,
) -> anyhow::Result<Vec<usize>> {
    let mut keep = Vec::with_capacity(lanes.len());
    for (k, lane) in lanes.iter().enumerate() {
        let m = &mut members[lane.member];
        let model = &models[lane.member];
        step.write_member(k, model)?;
        let row = m
            .ledger
            .evaluate(model, epoch, lane.lr, lane.tally, sets, epoch_start)?;
        let Some(row) = row else {
            keep.push(false);
            continue;
        };
        m.ledger.record(row, model, step.member_momentum(k)?)?;
        let row = m.ledger.last().expect("just recorded");
        m.trial
            .observer
            .epoch(m.trial.config.epochs, row, &m.ledger.summary);
        keep.push(true);
    }
    step.retain(&keep)?;
    Ok(lanes
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| l.member)
        .collect())
}

/// Drops the lanes whose `keep` flag is false from the pack (their producers stop when their
/// receivers go).
fn leave(step: &mut PackedStep, lanes: &mut Vec<Lane>, keep: &[bool]) -> anyhow::Result<()> {
    if keep.iter().all(|&k| k) {
        return Ok(());
    }
    step.retain(keep)?;
    let mut flags = keep.iter();
    lanes.retain(|_| *flags.next().expect("one flag per lane"));
    Ok(())
}

/// The members' batches as `[K, B, 784]` inputs and `[K, B]` labels on `device` (gathered
/// from the device-resident training set when there is one).
fn stacked(
    batches: &[Batch],
    resident: Option<&Tensor>,
    device: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let (k, b) = (batches.len(), batches[0].len());
    let labels: Vec<u32> = batches
        .iter()
        .flat_map(|x| x.labels.iter().copied())
        .collect();
    let labels = Tensor::from_vec(labels, (k, b), device)?;
    let inputs = match resident {
        Some(all) => {
            let ids: Vec<u32> = batches
                .iter()
                .flat_map(|x| x.indices.iter().copied())
                .collect();
            all.index_select(&Tensor::from_vec(ids, k * b, device)?, 0)?
                .reshape((k, b, PIXELS))?
        }
        None => {
            let mut pixels = Vec::with_capacity(k * b * PIXELS);
            for x in batches {
                pixels.extend_from_slice(&x.inputs);
            }
            Tensor::from_vec(pixels, (k, b, PIXELS), device)?
        }
    };
    Ok((inputs, labels))
}
