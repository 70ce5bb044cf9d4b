//! One search of a function the parent computes, with sweep's own adaptive samplers, for
//! `bench/gp.py`: the synthetic functions (Branin, Hartmann-6, a noisy 4-D one) that compare
//! sweep's GP and TPE with Optuna's samplers in the same run.
//!
//! It asks `sweep::sweep::sampler::Adaptive` for trials as `sweep run` does, journals each into
//! a `StudyRecord` as completed with the value the parent gives, and minimises. `--parallel P`
//! asks P trials before the first of them ends (they end in the order they were asked).
//!
//! The protocol, one JSON document per line: it writes `{"params": [x1, x2, ...]}` and reads
//! the value (with `--constraints K`, the value and K constraint values, space-separated,
//! each met when <= 0); after the last trial it writes `{"done": true, "seconds_per_ask":
//! [...]}` (the wall time of each ask, for the cost goals).
//!
//! ```text
//! blackbox_search --method tpe|gp|auto|random --trials N --space "uniform:-5:10,uniform:0:15"
//!                 [--seed S] [--parallel P] [--startup K] [--constraints K]
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::time::Instant;

use sweep::store::journal::{Event, TrialDef};
use sweep::store::record::StudyRecord;
use sweep::sweep::next::Next;
use sweep::sweep::sampler::Adaptive;
use sweep::sweep::search::{Axis, Method};
use sweep::trial::{EpochMetrics, Metrics, Mode, Objective, TrialStatus};

fn main() {
    if let Err(e) = run() {
        eprintln!("blackbox_search: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut method = Method::Tpe;
    let (mut random, mut trials, mut seed, mut parallel) = (false, 40usize, 0u64, 1usize);
    let mut startup: Option<usize> = None;
    let mut constraints = 0usize;
    let mut axes: Vec<Axis> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--method" => {
                (method, random) = match value.as_str() {
                    "tpe" => (Method::Tpe, false),
                    "gp" => (Method::Gp, false),
                    "auto" => (Method::Auto, false),
                    "random" => (Method::Tpe, true),
                    m => return Err(format!("--method {m}")),
                }
            }
            "--trials" => trials = number(&value)?,
            "--seed" => seed = number(&value)? as u64,
            "--parallel" => parallel = number(&value)?.max(1),
            "--startup" => startup = Some(number(&value)?),
            "--constraints" => constraints = number(&value)?,
            "--space" => {
                for (i, dim) in value.split(',').enumerate() {
                    let parts: Vec<&str> = dim.split(':').collect();
                    let text = match parts.as_slice() {
                        [kind, lo, hi] => format!("v = {{ {kind} = [{lo}, {hi}] }}"),
                        _ => return Err(format!("--space {dim}: kind:lo:hi")),
                    };
                    let t: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
                    axes.push(
                        Axis::parse(&format!("x{i}"), &t["v"], Method::Random).map_err(|e| e.1)?,
                    );
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let objective = Objective::new("value", Some(Mode::Min))?;
    let sampler = Adaptive {
        method,
        axes,
        objective: objective.clone(),
        objectives: None,
        constraints: (0..constraints)
            .map(|k| sweep::objectives::Bound::parse(&format!("c{k} <= 0"), false))
            .collect::<Result<_, _>>()?,
        budget: trials,
        startup: if random {
            trials
        } else {
            startup.unwrap_or_else(|| match method {
                Method::Tpe => sweep::sweep::spec::default_startup(trials),
                _ => sweep::sweep::spec::default_gp_startup(trials),
            })
        },
        seed,
        parallelism: parallel,
    };
    let mut record = StudyRecord::default();
    record.objective = objective;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut running: VecDeque<(String, Vec<f64>)> = VecDeque::new();
    let mut seconds = Vec::new();
    for index in 0..trials {
        let started = Instant::now();
        let point = loop {
            match sampler.ask(&record, index, 0) {
                Next::Run(p) => break p,
                Next::Wait => {
                    let (id, v) = running.pop_front().ok_or("waits with nothing running")?;
                    end(&mut record, &id, &v);
                }
                Next::Done(_) => return Err("done early".into()),
            }
        };
        seconds.push(started.elapsed().as_secs_f64());
        let values: Vec<f64> = point
            .values
            .iter()
            .map(|a| {
                a.value
                    .as_float()
                    .or_else(|| a.value.as_integer().map(|i| i as f64))
                    .unwrap_or(f64::NAN)
            })
            .collect();
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
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({ "params": values })).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let line = lines
            .next()
            .ok_or("the parent closed stdin")?
            .map_err(|e| e.to_string())?;
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse::<f64>().map_err(|e| format!("{line}: {e}")))
            .collect::<Result<_, _>>()?;
        if v.len() != 1 + constraints {
            return Err(format!(
                "{line}: expected the value and {constraints} constraints"
            ));
        }
        running.push_back((id, v));
        while running.len() >= parallel {
            let (id, v) = running.pop_front().expect("not empty");
            end(&mut record, &id, &v);
        }
    }
    println!(
        "{}",
        serde_json::json!({ "done": true, "seconds_per_ask": seconds })
    );
    Ok(())
}

/// Trial `id` completes with `values` (its value, then its constraints c0, c1, ...) at its
/// one epoch.
fn end(record: &mut StudyRecord, id: &str, values: &[f64]) {
    let metrics = values[1..]
        .iter()
        .enumerate()
        .fold(Metrics::new().with("value", values[0]), |m, (k, c)| {
            m.with(&format!("c{k}"), *c)
        });
    record.apply(&Event::Epoch {
        trial: id.to_string(),
        row: EpochMetrics { epoch: 1, metrics },
    });
    record.apply(&Event::Finished {
        trial: id.to_string(),
        attempt: 1,
        status: TrialStatus::Completed,
        message: None,
        seconds: 0.0,
        best: None,
    });
}
