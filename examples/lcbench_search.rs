//! One search on YAHPO Gym's lcbench surrogate with sweep's own sampler and pruners, for
//! `bench/lcbench.py`, which starts it and answers its questions.
//!
//! It runs the code `sweep run` runs: the search space is parsed from
//! `examples/lcbench/sweep.toml` by sweep's spec parser, trials are asked from
//! `sweep::sweep::sampler::Tpe` (random search is the same sampler with every trial a start-up
//! trial), every epoch goes into a `StudyRecord` as the journal would put it, and the pruner
//! decides after each epoch as the study does. What it leaves out is the processes: one trial
//! at a time (or `--parallel` at once, ending in the order they started) and no clock, so a
//! run is exact and reproducible and takes a second instead of minutes. At one trial at a
//! time `sweep run examples/lcbench/sweep.toml` asks the same trials (bench/lcbench.py
//! `--check` compares them).
//!
//! The protocol, one JSON document per line: it writes `{"params": {...}, "from": a, "to": b}`
//! and reads the val_accuracy of those epochs as a list; after each trial it writes
//! `{"trial": i, "status": ..., "epochs": n, "value": v}` (v: the trial's best epoch), and
//! `{"done": true}` at the end.
//!
//! ```text
//! lcbench_search --method tpe|gp|auto|random --trials N [--pruner none|asha|median]
//!                [--epoch-budget E] [--parallel P] [--seed S] [--startup K]
//!                [--grace G] [--eta H] [--pause 0|1]   (ASHA's grace_epochs, eta, pause)
//!                [--objectives val_accuracy,time]
//! ```
//!
//! With `--objectives val_accuracy,time` a configuration is two numbers, its val_accuracy and
//! its time at epoch 52 (one request `{"params", "epoch": 52}`, answered `[acc, time]`), and
//! the search is multi-objective (maximise the first, minimise the second); after each trial
//! it writes `{"trial": i, "values": [acc, time]}`.
//!
//! ```text
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, Write};

use sweep::objectives::Objectives;
use sweep::store::journal::{Event, TrialDef};
use sweep::store::record::StudyRecord;
use sweep::sweep::next::Next;
use sweep::sweep::pruner::{Asha, MedianPruner, Promotion, Pruner};
use sweep::sweep::sampler::Adaptive;
use sweep::sweep::search::{Method, Point};
use sweep::trial::{EpochMetrics, Metrics, Mode, Objective, TrialStatus};

/// The surrogate's epochs.
const EPOCHS: usize = 52;
const METRIC: &str = "val_accuracy";

struct Options {
    /// The adaptive method (random search: TPE with every trial a start-up trial).
    method: Method,
    random: bool,
    trials: usize,
    pruner: Option<Choice>,
    epoch_budget: usize,
    parallel: usize,
    seed: u64,
    startup: Option<usize>,
    grace: usize,
    eta: usize,
    pause: bool,
    /// Maximise val_accuracy and minimise time, both at epoch 52 (multi-objective TPE).
    two_objectives: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        method: Method::Tpe,
        random: false,
        trials: 40,
        pruner: None,
        epoch_budget: usize::MAX,
        parallel: 1,
        seed: 0,
        startup: None,
        grace: Asha::default().grace_epochs,
        eta: Asha::default().eta,
        pause: false,
        two_objectives: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--method" => {
                (o.method, o.random) = match value.as_str() {
                    "tpe" => (Method::Tpe, false),
                    "gp" => (Method::Gp, false),
                    "auto" => (Method::Auto, false),
                    "random" => (Method::Tpe, true),
                    m => return Err(format!("--method {m}: tpe, gp, auto or random")),
                }
            }
            "--trials" => o.trials = number(&value)?,
            "--pruner" => {
                o.pruner = match value.as_str() {
                    "none" => None,
                    "asha" => Some(Choice::Asha(Asha::default())),
                    "median" => Some(Choice::Median(MedianPruner::default())),
                    p => return Err(format!("--pruner {p}: none, asha or median")),
                }
            }
            "--epoch-budget" => o.epoch_budget = number(&value)?,
            "--parallel" => o.parallel = number(&value)?.max(1),
            "--seed" => o.seed = number(&value)? as u64,
            "--startup" => o.startup = Some(number(&value)?),
            "--grace" => o.grace = number(&value)?,
            "--eta" => o.eta = number(&value)?,
            "--pause" => o.pause = number(&value)? == 1,
            "--objectives" => {
                o.two_objectives = match value.as_str() {
                    "val_accuracy" => false,
                    "val_accuracy,time" => true,
                    v => {
                        return Err(format!(
                            "--objectives {v}: val_accuracy or val_accuracy,time"
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if let Some(Choice::Asha(a)) = &mut o.pruner {
        a.grace_epochs = o.grace;
        a.eta = o.eta;
        a.pause = o.pause;
    }
    if o.pruner.is_some() && o.parallel > 1 {
        return Err("a pruner runs one trial at a time here".into());
    }
    Ok(o)
}

/// Asks the parent for the val_accuracy of epochs `from..=to` of a trial.
fn curve(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    params: &serde_json::Value,
    from: usize,
    to: usize,
) -> Result<Vec<f64>, String> {
    let ask = serde_json::json!({ "params": params, "from": from, "to": to });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ask}")
        .and_then(|_| out.flush())
        .map_err(|e| e.to_string())?;
    let line = lines
        .next()
        .ok_or("the parent closed stdin")?
        .map_err(|e| e.to_string())?;
    let values: Vec<f64> = serde_json::from_str(&line).map_err(|e| format!("{line}: {e}"))?;
    if values.len() != to + 1 - from {
        return Err(format!(
            "asked epochs {from}-{to}, got {} values",
            values.len()
        ));
    }
    Ok(values)
}

fn say(value: serde_json::Value) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")
        .and_then(|_| out.flush())
        .map_err(|e| e.to_string())
}

fn finish(record: &mut StudyRecord, trial: &str, status: TrialStatus) {
    record.apply(&Event::Finished {
        trial: trial.to_string(),
        attempt: 1,
        status,
        message: None,
        seconds: 0.0,
        best: None,
    });
}

fn epoch(record: &mut StudyRecord, trial: &str, epoch: usize, value: f64) {
    record.apply(&Event::Epoch {
        trial: trial.to_string(),
        row: EpochMetrics {
            epoch,
            metrics: Metrics::new().with(METRIC, value),
        },
    });
}

fn main() -> Result<(), String> {
    let o = options()?;
    let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lcbench/sweep.toml");
    let source = sweep::train::config::SourceFile::read(std::path::Path::new(spec_path))
        .map_err(|e| format!("{e:#}"))?;
    let axes = sweep::sweep::spec::SearchFacts::read(&source)
        .map_err(|e| format!("{e:#}"))?
        .axes;
    if axes.len() != 7 {
        return Err(format!("{spec_path}: expected 7 searched keys"));
    }
    let objective = Objective::new(METRIC, Some(Mode::Max))?;
    let objectives = o.two_objectives.then(|| Objectives {
        objectives: vec![
            objective.clone(),
            Objective::new("time", Some(Mode::Min)).expect("a mode"),
        ],
        constraints: Vec::new(),
        select: None,
    });
    let tpe = Adaptive {
        method: o.method,
        axes,
        objective: objective.clone(),
        objectives: objectives.clone(),
        constraints: Vec::new(),
        budget: o.trials,
        startup: if o.random {
            o.trials
        } else {
            o.startup.unwrap_or_else(|| match o.method {
                Method::Tpe => sweep::sweep::spec::default_startup(o.trials),
                _ => sweep::sweep::spec::default_gp_startup(o.trials),
            })
        },
        seed: o.seed,
        parallelism: o.parallel,
    };
    let mut record = StudyRecord::default();
    record.objective = objective;
    record.objectives = objectives;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    if o.two_objectives {
        return two_objectives(&tpe, &mut record, &mut lines, o.trials);
    }
    let mut used = 0usize;
    // Trials that ran but have not "ended" yet (with --parallel): they end in start order.
    let mut running: VecDeque<(String, usize, Vec<f64>)> = VecDeque::new();
    let end = |record: &mut StudyRecord, (id, index, values): (String, usize, Vec<f64>)| {
        for (k, v) in values.iter().enumerate() {
            epoch(record, &id, k + 1, *v);
        }
        finish(record, &id, TrialStatus::Completed);
        let best = values.iter().copied().fold(f64::MIN, f64::max);
        say(
            serde_json::json!({"trial": index, "status": "completed", "epochs": values.len(), "value": best}),
        )
    };
    for index in 0..o.trials {
        if used >= o.epoch_budget {
            break;
        }
        let point = loop {
            match tpe.ask(&record, index, 0) {
                Next::Run(p) => break p,
                Next::Wait => {
                    let oldest = running.pop_front().ok_or("TPE waits for no trial")?;
                    end(&mut record, oldest)?;
                }
                Next::Done(_) => return Err("the budget ended early".into()),
            }
        };
        let (id, params) = enter(&mut record, index, &point);
        let Some(pruner) = &o.pruner else {
            // Full length: the whole curve, ended when its turn comes.
            let take = EPOCHS.min(o.epoch_budget - used);
            let values = curve(&mut lines, &params, 1, take)?;
            used += take;
            if take < EPOCHS {
                say(serde_json::json!({"trial": index, "status": "cut", "epochs": take}))?;
                break;
            }
            running.push_back((id, index, values));
            if running.len() >= o.parallel {
                let oldest = running.pop_front().expect("a running trial");
                end(&mut record, oldest)?;
            }
            continue;
        };
        // With a pruner, paused trials it promotes go first (ASHA with `pause`).
        promote(
            &mut record,
            &mut lines,
            pruner,
            false,
            &mut used,
            o.epoch_budget,
        )?;
        if used >= o.epoch_budget {
            break;
        }
        let status = run_trial(
            &mut record,
            &mut lines,
            pruner,
            (&id, index, &params),
            0,
            &mut used,
            o.epoch_budget,
        )?;
        if status == "cut" {
            break;
        }
    }
    // Nothing new to start: paused trials the pruner still promotes.
    if let Some(pruner) = &o.pruner {
        promote(
            &mut record,
            &mut lines,
            pruner,
            true,
            &mut used,
            o.epoch_budget,
        )?;
    }
    while let Some(t) = running.pop_front() {
        end(&mut record, t)?;
    }
    say(serde_json::json!({"done": true, "epochs": used}))
}

/// Enters trial `index` at `point` into the record, as the journal would; its id and its
/// parameters as the parent reads them.
fn enter(record: &mut StudyRecord, index: usize, point: &Point) -> (String, serde_json::Value) {
    let id = format!("t{index}");
    record.apply(&Event::Trial(TrialDef {
        index,
        id: id.clone(),
        group: id.clone(),
        label: None,
        params: point
            .values
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect(),
        sampler: None,
    }));
    let params = json_params(point.values.iter().map(|a| (&a.key, &a.value)));
    (id, params)
}

/// The multi-objective search: each trial is its val_accuracy and time at epoch 52.
fn two_objectives(
    tpe: &Adaptive,
    record: &mut StudyRecord,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    trials: usize,
) -> Result<(), String> {
    for index in 0..trials {
        let point = match tpe.ask(record, index, 0) {
            Next::Run(p) => p,
            Next::Wait | Next::Done(_) => return Err("one trial at a time never waits".into()),
        };
        let (id, params) = enter(record, index, &point);
        let ask = serde_json::json!({ "params": params, "epoch": EPOCHS });
        say(ask)?;
        let line = lines
            .next()
            .ok_or("the parent closed stdin")?
            .map_err(|e| e.to_string())?;
        let values: [f64; 2] = serde_json::from_str(&line).map_err(|e| format!("{line}: {e}"))?;
        record.apply(&Event::Epoch {
            trial: id.clone(),
            row: EpochMetrics {
                epoch: EPOCHS,
                metrics: Metrics::new()
                    .with(METRIC, values[0])
                    .with("time", values[1]),
            },
        });
        finish(record, &id, TrialStatus::Completed);
        say(serde_json::json!({"trial": index, "values": values}))?;
    }
    say(serde_json::json!({"done": true}))
}

/// Runs trial `index` (`id`, with `params`) with a pruner from epoch `reached + 1`, epoch by
/// epoch, asking for the curve up to the next decision, until it ends, is pruned (or
/// paused) or the epoch budget runs out ("cut"); reports it and returns its status.
fn run_trial(
    record: &mut StudyRecord,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    pruner: &Choice,
    (id, index, params): (&str, usize, &serde_json::Value),
    mut reached: usize,
    used: &mut usize,
    budget: usize,
) -> Result<&'static str, String> {
    let (mut best, mut status) = (f64::MIN, "cut");
    if let Some(t) = record.get(id) {
        for row in &t.epochs {
            best = best.max(row.metrics.get(METRIC).unwrap_or(f64::MIN));
        }
    }
    let mut pending: VecDeque<f64> = VecDeque::new();
    while reached < EPOCHS && *used < budget {
        if pending.is_empty() {
            let to = pruner
                .next_decision(reached)
                .min(reached + (budget - *used));
            pending.extend(curve(lines, params, reached + 1, to)?);
        }
        let value = pending.pop_front().expect("a value");
        reached += 1;
        *used += 1;
        best = best.max(value);
        epoch(record, id, reached, value);
        if let Some(d) = pruner.pruner().decide(record, id, reached, Some(EPOCHS)) {
            let stop = d.stop;
            record.apply(&Event::Decision(d));
            if stop {
                finish(record, id, TrialStatus::Pruned);
                status = "pruned";
                break;
            }
        }
    }
    if reached == EPOCHS {
        finish(record, id, TrialStatus::Completed);
        status = "completed";
    }
    say(serde_json::json!({"trial": index, "status": status, "epochs": reached, "value": best}))?;
    Ok(status)
}

/// Continues the paused trials the pruner promotes, one after another, while the epoch
/// budget lasts (`last`: nothing new is left to start; see `Pruner::promotion`).
fn promote(
    record: &mut StudyRecord,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    pruner: &Choice,
    last: bool,
    used: &mut usize,
    budget: usize,
) -> Result<(), String> {
    while *used < budget
        && let Some(p) = pruner.pruner().promotion(record, last)
    {
        continue_trial(record, lines, pruner, &p, used, budget)?;
    }
    Ok(())
}

/// Continues a paused trial the pruner promotes, from the rung it paused at.
fn continue_trial(
    record: &mut StudyRecord,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    pruner: &Choice,
    p: &Promotion,
    used: &mut usize,
    budget: usize,
) -> Result<(), String> {
    let t = record.get(&p.trial).ok_or("promoted an unknown trial")?;
    let index = t.def.index;
    let params = json_params(&t.def.params);
    record.apply(&Event::Promoted {
        trial: p.trial.clone(),
        rung: p.rung,
        reason: p.reason.clone(),
    });
    let id = p.trial.clone();
    run_trial(
        record,
        lines,
        pruner,
        (&id, index, &params),
        p.rung,
        used,
        budget,
    )?;
    Ok(())
}

/// A trial's parameters as the parent reads them (numbers only).
fn json_params<'a>(
    values: impl IntoIterator<Item = (&'a String, &'a toml::Value)>,
) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .into_iter()
            .map(|(k, v)| {
                let v = v.as_float().or(v.as_integer().map(|i| i as f64));
                (k.clone(), serde_json::json!(v))
            })
            .collect(),
    )
}

/// The pruner of a run, as the spec's `[prune]` section would give it (defaults).
enum Choice {
    Asha(Asha),
    Median(MedianPruner),
}

impl Choice {
    fn pruner(&self) -> &dyn Pruner {
        match self {
            Choice::Asha(a) => a,
            Choice::Median(m) => m,
        }
    }

    /// The next epoch after `reached` at which it may stop a trial: the curve is fetched up to
    /// there in one request.
    fn next_decision(&self, reached: usize) -> usize {
        match self {
            Choice::Asha(a) => a
                .rungs(EPOCHS)
                .into_iter()
                .find(|&r| r > reached)
                .unwrap_or(EPOCHS),
            Choice::Median(_) => reached + 1,
        }
    }
}
