//! A sweep's results in formats other tools open: an Optuna JournalStorage log (which
//! `optuna.load_study` and optuna-dashboard read) and a tidy CSV, one row per trial and epoch,
//! for pandas or R.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::store::journal::{Entry, Event};
use crate::store::record::{StudyRecord, TrialRecord};
use crate::sweep::search::{Axis, Domain};
use crate::trial::{Mode, TrialStatus};

/// Who wrote the log's records, as Optuna's journal names its workers.
const WORKER: &str = "sweep-export";

/// Optuna's trial states (`optuna.trial.TrialState`).
fn optuna_state(status: TrialStatus) -> u8 {
    match status {
        TrialStatus::Running => 0,
        TrialStatus::Completed => 1,
        TrialStatus::Pruned => 2,
        TrialStatus::Pending | TrialStatus::Interrupted | TrialStatus::Stale => 4,
        _ => 3,
    }
}

/// A parameter's distribution, as Optuna writes it (`distribution_to_json`).
#[derive(Debug, Clone, PartialEq)]
enum Distribution {
    Float { low: f64, high: f64, log: bool },
    Int { low: i64, high: i64 },
    Categorical(Vec<Value>),
}

impl Distribution {
    fn to_json(&self) -> String {
        let (name, attributes) = match self {
            Distribution::Float { low, high, log } => (
                "FloatDistribution",
                json!({"low": low, "high": high, "log": log, "step": null}),
            ),
            Distribution::Int { low, high } => (
                "IntDistribution",
                json!({"low": low, "high": high, "log": false, "step": 1}),
            ),
            Distribution::Categorical(choices) => {
                ("CategoricalDistribution", json!({ "choices": choices }))
            }
        };
        json!({"name": name, "attributes": attributes}).to_string()
    }

    /// The value's internal representation (a float, an int, or a categorical index).
    fn internal(&self, value: &toml::Value) -> Option<Value> {
        match self {
            Distribution::Float { .. } => number(value).map(|v| json!(v)),
            Distribution::Int { .. } => value.as_integer().map(|v| json!(v)),
            Distribution::Categorical(choices) => {
                let v = choice(value);
                choices.iter().position(|c| *c == v).map(|i| json!(i))
            }
        }
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// A value as an Optuna categorical choice: numbers, booleans and strings as they are, other
/// values (lists, tables) as the text a spec would write.
fn choice(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => json!(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        other => json!(crate::text::display_value(other)),
    }
}

/// A trial's parameters, its label (list trials) among them.
fn values(t: &TrialRecord) -> BTreeMap<String, toml::Value> {
    let mut v = t.def.params.clone();
    if let Some(label) = &t.def.label {
        v.insert("label".into(), toml::Value::String(label.clone()));
    }
    v
}

/// The distribution of every parameter column: from the spec's axes where it names one,
/// else a categorical over the values the trials took.
fn distributions(record: &StudyRecord, axes: &[Axis]) -> BTreeMap<String, Distribution> {
    let mut out = BTreeMap::new();
    let all: Vec<BTreeMap<String, toml::Value>> = record.active().map(values).collect();
    let columns: BTreeSet<&String> = all
        .iter()
        .flat_map(|v| v.keys())
        .filter(|c| c.as_str() != "seed" || record.repeats > 1)
        .collect();
    for column in columns {
        let path: Vec<String> = column.split('.').map(String::from).collect();
        let axis = axes
            .iter()
            .find_map(|a| a.paths.iter().position(|p| *p == path).map(|i| (a, i)));
        let d = match axis.map(|(a, i)| (&a.domain, i)) {
            Some((Domain::Uniform(a, b), _)) => Distribution::Float {
                low: *a,
                high: *b,
                log: false,
            },
            Some((Domain::LogUniform(a, b), _)) => Distribution::Float {
                low: *a,
                high: *b,
                log: true,
            },
            Some((Domain::Int(a, b), _)) => Distribution::Int { low: *a, high: *b },
            Some((Domain::Choice(points), i)) => {
                let mut choices: Vec<Value> = Vec::new();
                for p in points {
                    let c = choice(&p[i]);
                    if !choices.contains(&c) {
                        choices.push(c);
                    }
                }
                Distribution::Categorical(choices)
            }
            None => {
                let mut choices: Vec<Value> = Vec::new();
                for t in &all {
                    if let Some(v) = t.get(column) {
                        let c = choice(v);
                        if !choices.contains(&c) {
                            choices.push(c);
                        }
                    }
                }
                Distribution::Categorical(choices)
            }
        };
        out.insert(column.to_string(), d);
    }
    out
}

/// When each trial first started and last finished, from the journal's own times.
fn times(entries: &[Entry]) -> HashMap<&str, (Option<&str>, Option<&str>)> {
    let mut out: HashMap<&str, (Option<&str>, Option<&str>)> = HashMap::new();
    for e in entries {
        match &e.event {
            Event::Started { trial, .. } => {
                out.entry(trial).or_default().0.get_or_insert(&e.time);
            }
            Event::Finished { trial, .. } => out.entry(trial).or_default().1 = Some(&e.time),
            _ => {}
        }
    }
    out
}

/// The sweep as an Optuna JournalStorage log: one study (named after the sweep, with its
/// direction), then one `CREATE_TRIAL` record per trial in the order trials entered the plan,
/// with its parameters and their distributions, its state, its value, its value at every
/// epoch, and its sweep id, directory and status as user attributes.
pub fn optuna_journal(
    record: &StudyRecord,
    entries: &[Entry],
    axes: &[Axis],
    trial_dir: impl Fn(&str) -> String,
) -> String {
    let objective = &record.objective;
    let direction = |o: &crate::trial::Objective| match o.mode {
        Mode::Min => 1,
        Mode::Max => 2,
    };
    let directions: Vec<u8> = match &record.objectives {
        Some(o) => o.objectives.iter().map(direction).collect(),
        None => vec![direction(objective)],
    };
    let mut lines = vec![
        json!({"op_code": 0, "worker_id": WORKER, "study_name": record.name, "directions": directions})
            .to_string(),
    ];
    let dists = distributions(record, axes);
    let times = times(entries);
    let mut trials: Vec<&TrialRecord> = record.active().collect();
    trials.sort_by_key(|t| t.def.index);
    for t in trials {
        let mut params = serde_json::Map::new();
        let mut distributions = serde_json::Map::new();
        let trial_values = values(t);
        for (column, d) in &dists {
            if let Some(internal) = trial_values.get(column).and_then(|v| d.internal(v)) {
                params.insert(column.clone(), internal);
                distributions.insert(column.clone(), json!(d.to_json()));
            }
        }
        let intermediate: serde_json::Map<String, Value> = t
            .epochs
            .iter()
            .filter_map(|r| {
                let v = objective.value(&r.metrics)?;
                v.is_finite().then(|| (r.epoch.to_string(), json!(v)))
            })
            .collect();
        let value = match t.status {
            TrialStatus::Completed => t.best(objective).and_then(|b| objective.value(&b.metrics)),
            TrialStatus::Pruned => t.last().and_then(|b| objective.value(&b.metrics)),
            _ => None,
        }
        .filter(|v| v.is_finite());
        // Several objectives: every value at the kept epoch (completed trials only, as Optuna
        // keeps them), and the constraints as Optuna's samplers record them (<= 0: met).
        let several = record.objectives.as_ref().map(|o| {
            let kept = t.best(objective).map(|b| &b.metrics);
            let values: Option<Vec<f64>> = kept.and_then(|m| {
                o.objectives
                    .iter()
                    .map(|x| x.value(m))
                    .collect::<Option<Vec<f64>>>()
            });
            let constraints: Option<Vec<f64>> = kept.and_then(|m| {
                o.constraints
                    .iter()
                    .map(|c| c.signed_excess(m))
                    .collect::<Option<Vec<f64>>>()
            });
            (
                values.filter(|_| t.status == TrialStatus::Completed),
                constraints,
            )
        });
        let value = if several.is_some() { None } else { value };
        let has_values = value.is_some() || several.as_ref().is_some_and(|(v, _)| v.is_some());
        let state = match (t.status, has_values) {
            // Optuna has no completed trial without a value.
            (TrialStatus::Completed, false) => 3,
            (s, _) => optuna_state(s),
        };
        let (start, end) = times.get(t.id()).copied().unwrap_or_default();
        let mut user_attrs = json!({
            "sweep_trial": t.id(),
            "trial_dir": trial_dir(t.id()),
            "sweep_status": t.status.name(),
        });
        if let Some(m) = &t.message {
            user_attrs["message"] = json!(m);
        }
        let mut line = json!({
            "op_code": 4,
            "worker_id": WORKER,
            "study_id": 0,
            "datetime_start": if state == 4 { None } else { start.or(end) },
            "state": state,
            "params": params,
            "distributions": distributions,
            "user_attrs": user_attrs,
            // Optuna keeps no intermediate values for several objectives.
            "intermediate_values": if several.is_some() { serde_json::Map::new() } else { intermediate },
        });
        if let Some(v) = value {
            line["values"] = json!([v]);
        }
        // One objective's constraints, recorded as for several.
        let single: Option<Vec<f64>> = t.best(objective).and_then(|b| {
            record
                .constraints
                .iter()
                .map(|c| c.signed_excess(&b.metrics))
                .collect()
        });
        if let Some(c) = single.filter(|c| !c.is_empty()) {
            line["system_attrs"] = json!({ "constraints": c });
        }
        if let Some((values, constraints)) = several {
            if let Some(v) = values {
                line["values"] = json!(v);
            }
            if let Some(c) = constraints.filter(|c| !c.is_empty()) {
                line["system_attrs"] = json!({ "constraints": c });
            }
        }
        if matches!(state, 1..=3) {
            line["datetime_complete"] = json!(end.or(start));
        }
        lines.push(line.to_string());
    }
    lines.join("\n") + "\n"
}

/// One row per trial and epoch: the trial, its number, status and parameters, then every
/// metric it reported, at full precision (a trial with no epoch gets one row without metrics).
pub fn tidy_csv(record: &StudyRecord) -> anyhow::Result<String> {
    let trials: Vec<&TrialRecord> = record.active().collect();
    let params: BTreeSet<&String> = trials.iter().flat_map(|t| t.def.params.keys()).collect();
    let mut metrics: Vec<String> = Vec::new();
    for t in &trials {
        for r in &t.epochs {
            for name in r.metrics.names() {
                if !metrics.iter().any(|m| m == name) {
                    metrics.push(name.to_string());
                }
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = ["trial", "number", "status", "epoch"]
        .map(String::from)
        .to_vec();
    header.extend(params.iter().map(|p| p.to_string()));
    header.extend(metrics.iter().cloned());
    w.write_record(&header)?;
    for t in trials {
        let head = |epoch: String| {
            let mut row = vec![
                t.id().to_string(),
                t.def.index.to_string(),
                t.status.to_string(),
                epoch,
            ];
            row.extend(params.iter().map(|p| {
                t.def
                    .params
                    .get(*p)
                    .map(crate::text::display_value)
                    .unwrap_or_default()
            }));
            row
        };
        if t.epochs.is_empty() {
            let mut row = head(String::new());
            row.extend(metrics.iter().map(|_| String::new()));
            w.write_record(&row)?;
        }
        for r in &t.epochs {
            let mut row = head(r.epoch.to_string());
            row.extend(
                metrics
                    .iter()
                    .map(|m| r.metrics.get(m).map_or(String::new(), |v| v.to_string())),
            );
            w.write_record(&row)?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
