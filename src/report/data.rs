//! The numbers the report's page draws, as one JSON document: the sweep's trials (parameters,
//! status, value, every epoch's metrics, the pruner's stop), the leaderboard's cells, every
//! axis with its scale and ticks (from the spec, by the rule in [`super::ticks`]), the
//! importances and the best trial's confusion matrix. `report.js` draws it with Plotly.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::ticks::{self, Scale};
use crate::leaderboard::{Leaderboard, Row};
use crate::pareto;
use crate::store::record::StudyRecord;
use crate::sweep::importance;
use crate::sweep::search::{Axis, Domain, Method};
use crate::sweep::spec::SearchFacts;
use crate::train::engine::EvalOutcome;
use crate::trial::{Mode, TrialStatus};

/// Everything the page draws.
#[derive(Debug, Serialize)]
pub struct ReportData {
    /// The sweep's name.
    pub name: String,
    /// The spec's `description`.
    pub description: Option<String>,
    /// The results folder.
    pub dir: String,
    /// When the page was written (local time).
    pub generated: String,
    /// While the sweep runs: how far it is.
    pub live: Option<Live>,
    /// The objective.
    pub metric: String,
    /// "max" or "min".
    pub mode: &'static str,
    /// The search method (`grid`, `random`, `list`, `tpe`), when the spec says.
    pub method: Option<String>,
    /// TPE's random start-up trials: trial numbers below it were drawn at random.
    pub startup: usize,
    /// The pruner, described.
    pub pruner: Option<String>,
    /// The adaptive sampler and how it chooses, described.
    pub sampler: Option<String>,
    /// The spec's search space, one `(key, domain as written)` per parameter.
    pub space: Vec<(String, String)>,
    /// Trials per status.
    pub counts: BTreeMap<&'static str, usize>,
    /// The sum of every trial's wall time, in seconds.
    pub trial_seconds: f64,
    /// The leaderboard's header and cells (as `leaderboard.csv` writes them, rounded).
    pub header: Vec<String>,
    /// The leaderboard's rows, aligned with [`ReportData::trials`].
    pub rows: Vec<Vec<String>>,
    /// The searched columns and how their axes are drawn.
    pub columns: Vec<ParamAxis>,
    /// Every trial, in leaderboard order.
    pub trials: Vec<TrialData>,
    /// The metrics the trials recorded, objective first.
    pub metrics: Vec<MetricInfo>,
    /// The epoch axis's ticks.
    pub epoch_ticks: Ticks,
    /// The trial-number axis's ticks.
    pub number_ticks: Ticks,
    /// ASHA's rungs (epochs), when it made decisions.
    pub rungs: Vec<usize>,
    /// PED-ANOVA importances, most important first.
    pub importance: Vec<(String, f64)>,
    /// Why there are no importances, or why to read them with care.
    pub importance_note: Option<String>,
    /// Completed trials (what importance and the contour use).
    pub completed: usize,
    /// The best trial's confusion matrix on the test set (built-in trainer).
    pub confusion: Option<Confusion>,
    /// The selection note, as HTML (which set chose the checkpoints and the ranking).
    pub selection_html: String,
    /// Several objectives: the front, each trial's values and the hypervolume history.
    pub pareto: Option<ParetoData>,
    /// With one objective: the constraints a feasible trial meets, as written.
    pub constraints: Vec<String>,
}

/// A running sweep's progress.
#[derive(Debug, Serialize)]
pub struct Live {
    /// Trials finished.
    pub finished: usize,
    /// Trials in the plan.
    pub total: usize,
}

/// Where an axis ticks, and what it writes there.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Ticks {
    /// Tick positions, in data units.
    pub vals: Vec<f64>,
    /// Their labels.
    pub text: Vec<String>,
}

impl Ticks {
    /// Ticks over [lo, hi] with `scale`.
    pub fn over(lo: f64, hi: f64, scale: Scale) -> Self {
        let vals = ticks::ticks(lo, hi, scale);
        let text = ticks::tick_labels(&vals);
        Self { vals, text }
    }
}

/// How a parameter's axis is drawn.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum AxisKind {
    /// Equal steps.
    Linear,
    /// Equal ratios.
    Log,
    /// Whole numbers.
    Integer,
    /// Distinct values (strings, booleans, arrays, or a mix), in the spec's order.
    Category,
}

/// A searched column's axis.
#[derive(Debug, Serialize, PartialEq)]
pub struct ParamAxis {
    /// The column (a dotted key, `label` or `seed`).
    pub name: String,
    /// Its scale.
    pub kind: AxisKind,
    /// The data range the axis spans (the spec's bounds where it has them).
    pub range: Option<(f64, f64)>,
    /// Its ticks (numeric axes).
    pub ticks: Ticks,
    /// Its categories, in order (category axes).
    pub categories: Vec<String>,
}

/// One recorded metric's axis.
#[derive(Debug, Serialize)]
pub struct MetricInfo {
    /// The metric.
    pub name: String,
    /// Log-scale ticks, when every value is positive (the page offers a log axis then).
    pub log_ticks: Option<Ticks>,
    /// Drawn on a log axis at first (losses).
    pub log_first: bool,
}

/// One trial.
#[derive(Debug, Serialize)]
pub struct TrialData {
    /// Its id.
    pub id: String,
    /// Its number: the order it entered the plan, from 0.
    pub number: usize,
    /// Its label, if it has one.
    pub label: Option<String>,
    /// Its status.
    pub status: &'static str,
    /// Its rank.
    pub rank: Option<usize>,
    /// The objective at its best epoch.
    pub value: Option<f64>,
    /// Drawn by an adaptive sampler's (quasi-)random start-up.
    pub startup: bool,
    /// Who proposed it ("startup", "tpe", "gp"), for an adaptive sampler's trial.
    pub by: Option<String>,
    /// Why it failed or stopped.
    pub message: Option<String>,
    /// Its values, aligned with [`ReportData::columns`]: numbers on numeric axes, text on
    /// category axes.
    pub values: Vec<Value>,
    /// The epochs it reported.
    pub epochs: Vec<usize>,
    /// Each metric's value at those epochs (null where it was not reported).
    pub series: BTreeMap<String, Vec<Option<f64>>>,
    /// Where and why the pruner stopped it.
    pub stop: Option<Stop>,
}

/// A pruner's stop.
#[derive(Debug, Serialize)]
pub struct Stop {
    /// The epoch it had reported.
    pub epoch: usize,
    /// The decision in words.
    pub reason: String,
}

/// A confusion matrix.
#[derive(Debug, Serialize)]
pub struct Confusion {
    /// The trial (label or id).
    pub trial: String,
    /// Test accuracy, percent.
    pub accuracy: f64,
    /// Correct predictions.
    pub correct: usize,
    /// Test images.
    pub total: usize,
    /// Rows are true classes, columns predictions.
    pub matrix: Vec<Vec<usize>>,
}

/// `v` to 6 significant digits: the page needs no more, and 1000 trials' curves stay small.
fn round6(v: f64) -> f64 {
    if !v.is_finite() || v == 0.0 {
        return v;
    }
    format!("{v:.5e}").parse().unwrap_or(v)
}

/// The axis of `column`: its scale from the spec (log exactly when log-uniform, or a list of
/// positive numbers spanning more than a factor of 10), categories for anything that is not a
/// number, and ticks over the spec's bounds or the values.
pub fn param_axis(column: &str, axes: &[Axis], values: &[&Value]) -> ParamAxis {
    let path: Vec<String> = column.split('.').map(String::from).collect();
    let domain = axes
        .iter()
        .find(|a| a.paths.contains(&path) && a.paths.len() == 1)
        .map(|a| &a.domain);
    let numbers: Option<Vec<f64>> = values.iter().map(|v| v.as_f64()).collect();
    let (scale, range) = match (domain, &numbers) {
        (Some(Domain::LogUniform(a, b)), _) => (Scale::Log, Some((*a, *b))),
        (Some(Domain::Uniform(a, b)), _) => (Scale::Linear, Some((*a, *b))),
        (Some(Domain::Int(a, b)), _) => (Scale::Integer, Some((*a as f64, *b as f64))),
        (_, Some(xs)) if !xs.is_empty() => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let scale = if lo > 0.0 && hi / lo > 10.0 {
                Scale::Log
            } else if xs.iter().all(|x| x.fract() == 0.0) {
                Scale::Integer
            } else {
                Scale::Linear
            };
            (scale, Some((lo, hi)))
        }
        _ => {
            let mut categories: Vec<String> = match domain {
                Some(Domain::Choice(points)) => points
                    .iter()
                    .filter_map(|p| p.first())
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .map(|v| category(&v))
                    .collect(),
                _ => Vec::new(),
            };
            for v in values {
                let c = category(v);
                if !categories.contains(&c) {
                    categories.push(c);
                }
            }
            return ParamAxis {
                name: column.to_string(),
                kind: AxisKind::Category,
                range: None,
                ticks: Ticks::default(),
                categories,
            };
        }
    };
    let kind = match scale {
        Scale::Log => AxisKind::Log,
        Scale::Integer => AxisKind::Integer,
        Scale::Linear => AxisKind::Linear,
    };
    ParamAxis {
        name: column.to_string(),
        kind,
        range,
        ticks: range.map_or_else(Ticks::default, |(lo, hi)| Ticks::over(lo, hi, scale)),
        categories: Vec::new(),
    }
}

/// A value's text on a category axis (strings bare, everything else as JSON writes it).
fn category(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A multi-objective sweep's trade-offs, for the Pareto scatter and the hypervolume history.
#[derive(Debug, Serialize)]
pub struct ParetoData {
    /// Each objective's metric and mode ("max" or "min").
    pub objectives: Vec<(String, &'static str)>,
    /// The constraints, as written.
    pub constraints: Vec<String>,
    /// How `best/` is chosen.
    pub rule: String,
    /// The trial `best/` holds.
    pub best: Option<String>,
    /// Every ranked trial with all objective values.
    pub points: Vec<ParetoPoint>,
    /// The hypervolume's reference point, in the objectives' units (the worst feasible
    /// completed value of each, a tenth of its range further).
    pub reference: Vec<f64>,
    /// After each completed feasible trial (by trial number): the hypervolume of the front so
    /// far, as a fraction of the final front's (empty when there are too many trials).
    pub hypervolume: Vec<(usize, f64)>,
}

/// One trial on the Pareto scatter.
#[derive(Debug, Serialize)]
pub struct ParetoPoint {
    /// Its index in the page's trials.
    pub trial: usize,
    /// One value per objective.
    pub values: Vec<f64>,
    /// Non-dominated rank within its tier (1: the front).
    pub rank: usize,
    /// Meets the constraints.
    pub feasible: bool,
    /// Completed (else pruned).
    pub completed: bool,
}

/// Hypervolume histories are computed up to this many completed trials with 2 objectives,
/// and up to a tenth of it with more (their cost grows with a cube of the trials).
const MAX_HYPERVOLUME_TRIALS: usize = 2000;

/// The Pareto data of `board`, when it ranks by several objectives.
fn pareto_data(board: &Leaderboard) -> Option<ParetoData> {
    let o = board.objectives.as_ref()?;
    let sign: Vec<f64> = o
        .objectives
        .iter()
        .map(|x| if x.mode == Mode::Max { -1.0 } else { 1.0 })
        .collect();
    let points: Vec<ParetoPoint> = board
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let values: Vec<f64> = r.objective_values.iter().copied().collect::<Option<_>>()?;
            Some(ParetoPoint {
                trial: i,
                values: values.into_iter().map(round6).collect(),
                rank: r.pareto_rank?,
                feasible: r.feasible(),
                completed: r.status == TrialStatus::Completed,
            })
        })
        .collect();
    // Completed feasible trials by number, as losses.
    let mut done: Vec<(usize, Vec<f64>)> = points
        .iter()
        .filter(|p| p.feasible && p.completed)
        .map(|p| {
            let loss = p.values.iter().zip(&sign).map(|(v, s)| v * s).collect();
            (board.rows[p.trial].number, loss)
        })
        .collect();
    done.sort_by_key(|(n, _)| *n);
    let losses: Vec<Vec<f64>> = done.iter().map(|(_, l)| l.clone()).collect();
    let (reference, hypervolume) = if losses.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let reference = pareto::nadir_reference(&losses);
        let limit = if o.objectives.len() == 2 {
            MAX_HYPERVOLUME_TRIALS
        } else {
            MAX_HYPERVOLUME_TRIALS / 10
        };
        let history = if done.len() <= limit {
            let total = pareto::hypervolume(&losses, &reference);
            (1..=done.len())
                .map(|k| {
                    let hv = pareto::hypervolume(&losses[..k], &reference);
                    let share = if total > 0.0 { round6(hv / total) } else { 1.0 };
                    (done[k - 1].0, share)
                })
                .collect()
        } else {
            Vec::new()
        };
        let reference = reference
            .iter()
            .zip(&sign)
            .map(|(r, s)| round6(r * s))
            .collect();
        (reference, history)
    };
    Some(ParetoData {
        objectives: o
            .objectives
            .iter()
            .map(|x| (x.metric.clone(), x.mode.name()))
            .collect(),
        constraints: o.constraints.iter().map(ToString::to_string).collect(),
        rule: board.best_rule(),
        best: board.best().map(|b| b.trial.clone()),
        points,
        reference,
        hypervolume,
    })
}

/// The inputs [`build`] reads.
pub struct Inputs<'a> {
    /// The sweep's folder, as text.
    pub dir: String,
    /// The journal, folded.
    pub record: &'a StudyRecord,
    /// Its leaderboard.
    pub board: &'a Leaderboard,
    /// What the spec copy says.
    pub spec: SearchFacts,
    /// The best trial's evaluation on the test set.
    pub confusion: Option<&'a EvalOutcome>,
    /// The selection note, as HTML.
    pub selection_html: String,
    /// While the sweep runs: finished and total trials.
    pub live: Option<(usize, usize)>,
}

/// Builds the page's data.
pub fn build(inputs: Inputs<'_>) -> ReportData {
    let Inputs {
        dir,
        record,
        board,
        spec,
        confusion,
        selection_html,
        live,
    } = inputs;
    let columns = searched_columns(board);
    let axes: Vec<ParamAxis> = columns
        .iter()
        .map(|(c, _)| {
            let values: Vec<&Value> = board
                .rows
                .iter()
                .filter_map(|r| param_value(r, c))
                .collect();
            param_axis(c, &spec.axes, &values)
        })
        .collect();
    let trials: Vec<TrialData> = board
        .rows
        .iter()
        .map(|r| trial_data(record, r, &columns, &axes, &spec))
        .collect();
    let mut counts = BTreeMap::new();
    for r in &board.rows {
        *counts.entry(r.status.name()).or_insert(0) += 1;
    }
    let max_epoch = trials
        .iter()
        .flat_map(|t| t.epochs.last())
        .max()
        .copied()
        .unwrap_or(1);
    let (importance, importance_note, completed) = importances(board, &columns);
    ReportData {
        name: record.name.clone(),
        description: spec.description.clone(),
        dir,
        generated: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        live: live.map(|(finished, total)| Live { finished, total }),
        metric: board.objective.metric.clone(),
        mode: board.objective.mode.name(),
        method: spec.method.map(|m| m.name().to_string()),
        startup: spec.startup,
        pruner: record.pruner.clone(),
        sampler: record.sampler.clone(),
        space: spec.space,
        counts,
        trial_seconds: board.rows.iter().filter_map(|r| r.seconds).sum(),
        header: board.header(),
        rows: board.cells(),
        columns: axes,
        metrics: metric_axes(board, &trials),
        epoch_ticks: Ticks::over(1.0, max_epoch.max(1) as f64, Scale::Integer),
        number_ticks: Ticks::over(
            0.0,
            board.rows.iter().map(|r| r.number).max().unwrap_or(0) as f64,
            Scale::Integer,
        ),
        rungs: rungs(record),
        trials,
        importance,
        importance_note,
        completed,
        confusion: confusion.and_then(|c| {
            board.best().map(|b| Confusion {
                trial: b.label.clone().unwrap_or_else(|| b.trial.clone()),
                accuracy: round6(c.accuracy),
                correct: c.correct,
                total: c.total,
                matrix: c
                    .confusion
                    .iter()
                    .map(|r| r.iter().map(|&v| v as usize).collect())
                    .collect(),
            })
        }),
        selection_html,
        pareto: pareto_data(board),
        constraints: board.constraints.iter().map(ToString::to_string).collect(),
    }
}

/// The columns the page draws, with their index in the leaderboard's columns: every searched
/// one (`label` only when it is the only one).
fn searched_columns(board: &Leaderboard) -> Vec<(String, usize)> {
    board
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| *c != "label" || board.columns.len() == 1)
        .map(|(j, c)| (c.clone(), j))
        .collect()
}

/// A row's value of `column`, typed (numbers as numbers).
fn param_value<'a>(row: &'a Row, column: &str) -> Option<&'a Value> {
    row.params.get(column).filter(|v| !v.is_null())
}

fn trial_data(
    record: &StudyRecord,
    row: &Row,
    columns: &[(String, usize)],
    axes: &[ParamAxis],
    spec: &SearchFacts,
) -> TrialData {
    let t = record.get(&row.trial);
    let epochs = t.map(|t| t.epochs.as_slice()).unwrap_or_default();
    let names: BTreeSet<&str> = epochs.iter().flat_map(|e| e.metrics.names()).collect();
    let series = names
        .into_iter()
        .map(|m| {
            let ys = epochs
                .iter()
                .map(|e| e.get(m).filter(|v| v.is_finite()).map(round6))
                .collect();
            (m.to_string(), ys)
        })
        .collect();
    let values = columns
        .iter()
        .zip(axes)
        .map(|((c, _), axis)| match axis.kind {
            AxisKind::Category => match param_value(row, c) {
                Some(v) => Value::String(category(v)),
                None if c == "label" => Value::String(row.label.clone().unwrap_or_default()),
                None => Value::Null,
            },
            _ => param_value(row, c).cloned().unwrap_or(Value::Null),
        })
        .collect();
    let stop = t
        .and_then(|t| t.decisions.iter().rev().find(|d| d.stop))
        .filter(|_| row.status == TrialStatus::Pruned)
        .map(|d| Stop {
            epoch: d.epoch,
            reason: d.reason.clone(),
        });
    TrialData {
        id: row.trial.clone(),
        number: row.number,
        label: row.label.clone(),
        status: row.status.name(),
        rank: row.rank,
        value: row.value.map(round6),
        startup: match t.and_then(|t| t.def.sampler.as_deref()) {
            Some(by) => by == "startup",
            None => spec.method.is_some_and(Method::adaptive) && row.number < spec.startup,
        },
        by: t.and_then(|t| t.def.sampler.clone()),
        message: t.and_then(|t| t.message.clone()),
        values,
        epochs: epochs.iter().map(|e| e.epoch).collect(),
        series,
        stop,
    }
}

/// Every recorded metric, the objective first, with log ticks where all values are positive.
fn metric_axes(board: &Leaderboard, trials: &[TrialData]) -> Vec<MetricInfo> {
    let mut names: Vec<&str> = trials
        .iter()
        .flat_map(|t| t.series.keys().map(String::as_str))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by_key(|n| *n != board.objective.metric);
    names
        .into_iter()
        .map(|name| {
            let ys: Vec<f64> = trials
                .iter()
                .flat_map(|t| t.series.get(name).into_iter().flatten().flatten())
                .copied()
                .collect();
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let positive = !ys.is_empty() && lo > 0.0;
            let lower = name.to_ascii_lowercase();
            MetricInfo {
                name: name.to_string(),
                log_ticks: positive.then(|| Ticks::over(lo, hi, Scale::Log)),
                log_first: positive
                    && (lower.contains("loss")
                        || lower.contains("cross_entropy")
                        || lower == "lr"
                        || Mode::infer(name) == Some(Mode::Min) && hi / lo > 10.0),
            }
        })
        .collect()
}

/// The rungs ASHA judged trials at.
fn rungs(record: &StudyRecord) -> Vec<usize> {
    record
        .trials
        .iter()
        .flat_map(|t| t.decisions.iter().filter_map(|d| d.rung))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// PED-ANOVA over the completed trials: the importances, or why there are none, and how many
/// trials were completed.
fn importances(
    board: &Leaderboard,
    columns: &[(String, usize)],
) -> (Vec<(String, f64)>, Option<String>, usize) {
    let names: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
    let completed: Vec<(Vec<String>, f64)> = board
        .rows
        .iter()
        .filter(|r| r.status == TrialStatus::Completed)
        .filter_map(|r| {
            let v = r.value?;
            Some((
                columns.iter().map(|(_, j)| r.values[*j].clone()).collect(),
                v,
            ))
        })
        .collect();
    let n = completed.len();
    if names.is_empty() {
        return (Vec::new(), Some("Nothing was searched.".into()), n);
    }
    let found = importance::ped_anova(&names, &completed, &board.objective);
    let note = if found.is_empty() {
        Some(if n < importance::MIN_TRIALS {
            format!(
                "Parameter importance needs at least {} completed trials ({n} so far).",
                importance::MIN_TRIALS
            )
        } else {
            "Every searched parameter took a single value among the completed trials.".into()
        })
    } else if n < importance::FEW_TRIALS {
        Some(format!(
            "With {n} completed trials the best group is {} trials: read these importances \
             as a rough guide.",
            ((n as f64 * 0.1).ceil() as usize).max(2)
        ))
    } else {
        None
    };
    (
        found
            .into_iter()
            .map(|i| (i.column, round6(i.share)))
            .collect(),
        note,
        n,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn axis(column: &str, spec: &str, values: &[Value]) -> ParamAxis {
        let spec = format!(
            "name = \"axes\"\n[search]\nmethod = \"random\"\nsamples = 4\n[search.params]\n{spec}"
        );
        let source =
            crate::train::config::SourceFile::parse(std::path::Path::new("spec.toml"), spec)
                .unwrap();
        let axes = SearchFacts::read(&source).unwrap().axes;
        param_axis(column, &axes, &values.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_log_uniform_parameter_gets_a_log_axis_over_its_bounds() {
        let a = axis(
            "optimizer.lr",
            "\"optimizer.lr\" = { log_uniform = [1e-4, 1e-2] }",
            &[json!(0.002), json!(0.003)],
        );
        assert_eq!(a.kind, AxisKind::Log);
        assert_eq!(a.range, Some((1e-4, 1e-2)));
        assert_eq!(a.ticks.text, ["1e-4", "3e-4", "0.001", "0.003", "0.01"]);
    }

    #[test]
    fn a_uniform_parameter_stays_linear_even_when_its_values_span_decades() {
        let a = axis(
            "optimizer.momentum",
            "\"optimizer.momentum\" = { uniform = [0.0, 0.99] }",
            &[json!(0.0187), json!(0.989)],
        );
        assert_eq!(a.kind, AxisKind::Linear);
        assert_eq!(a.ticks.vals, [0.0, 0.2, 0.4, 0.6, 0.8]);
    }

    #[test]
    fn integer_parameters_and_lists_of_whole_numbers_tick_at_whole_numbers() {
        let a = axis("epochs", "epochs = { int = [1, 3] }", &[json!(1), json!(3)]);
        assert_eq!(a.kind, AxisKind::Integer);
        assert_eq!(a.ticks.text, ["1", "2", "3"]);
        let b = axis("batch", "batch = [50, 100, 200]", &[json!(50), json!(200)]);
        assert_eq!(b.kind, AxisKind::Integer);
    }

    #[test]
    fn a_list_of_numbers_spanning_more_than_ten_times_is_log() {
        let a = axis(
            "optimizer.lr",
            "\"optimizer.lr\" = [0.001, 0.01, 0.1]",
            &[json!(0.001), json!(0.01), json!(0.1)],
        );
        assert_eq!(a.kind, AxisKind::Log);
        assert_eq!(a.ticks.text, ["0.001", "0.003", "0.01", "0.03", "0.1"]);
        let b = axis("wd", "wd = [0.01, 0.05]", &[json!(0.01), json!(0.05)]);
        assert_eq!(b.kind, AxisKind::Linear);
    }

    #[test]
    fn strings_booleans_and_arrays_get_categories_in_the_specs_order() {
        let a = axis(
            "model.norm",
            "\"model.norm\" = [\"none\", \"batch\"]",
            &[json!("batch"), json!("none")],
        );
        assert_eq!(a.kind, AxisKind::Category);
        assert_eq!(a.categories, ["none", "batch"]);
        let b = axis("flag", "flag = [true, false]", &[json!(false), json!(true)]);
        assert_eq!(b.kind, AxisKind::Category);
        assert_eq!(b.categories, ["true", "false"]);
        let c = axis(
            "schedule.milestones",
            "\"schedule.milestones\" = [[20, 35], [25, 45]]",
            &[json!([25, 45])],
        );
        assert_eq!(c.kind, AxisKind::Category);
        assert_eq!(c.categories, ["[20,35]", "[25,45]"]);
    }

    #[test]
    fn values_are_rounded_to_six_significant_digits() {
        assert_eq!(round6(0.123456789), 0.123457);
        assert_eq!(round6(98.76543219), 98.7654);
        assert!(round6(f64::NAN).is_nan());
    }
}
