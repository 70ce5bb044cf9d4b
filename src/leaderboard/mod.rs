//! The ranking policy: the leaderboard, one row per trial of the plan, best first, by one
//! objective (with repeats, by their mean) or by Pareto rank under constraints, and the trial
//! `best/` holds (the first, a `select` rule's choice, or the knee of the front). It is built
//! from the study's record alone (no trial file is read), so that rebuilding it stays cheap for
//! sweeps of thousands of trials. Its columns and formats (CSV, Markdown, JSON) are `table`'s.

mod table;

pub use table::{Csv, Exporter, Json, Markdown};

use std::collections::HashMap;

use serde::Serialize;

use crate::objectives::{Bound, Objectives};
use crate::pareto::{self, Point};
use crate::store::record::{StudyRecord, TrialRecord};
use crate::text::display_value;
use crate::text::format_metric;
use crate::trial::{Metrics, Objective, TrialStatus};

/// The study's own number, shown next to any other objective: the best test accuracy.
const TEST_ACC: &str = "test_acc";

/// One trial's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// 1-based rank (None for trials without a result).
    pub rank: Option<usize>,
    /// Trial id.
    pub trial: String,
    /// The trial's number: the order in which trials entered the plan (asked, for TPE), from 0.
    pub number: usize,
    /// A human name, if the plan gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where it stands.
    pub status: TrialStatus,
    /// The objective's value at the best epoch.
    pub value: Option<f64>,
    /// The best epoch by the objective.
    pub best_epoch: Option<usize>,
    /// Test accuracy at that epoch: the honest estimate when another metric selected it.
    pub test_acc_at_best: Option<f64>,
    /// The best test accuracy over all epochs (the study's number).
    pub best_test_acc: Option<f64>,
    /// Epochs run.
    pub epochs: usize,
    /// The objective's value at the last epoch run.
    pub last_value: Option<f64>,
    /// The plan's columns as text, aligned with [`Leaderboard::columns`].
    #[serde(skip)]
    pub values: Vec<String>,
    /// The trial's parameters by name, with their types (numbers as numbers).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Wall time spent on it.
    pub seconds: Option<f64>,
    /// Where it ran last.
    pub device: String,
    /// Repeats of one configuration share a group.
    #[serde(skip)]
    pub group: String,
    /// With repeats: the objective over the configuration's finished seeds.
    pub group_stats: Option<GroupStats>,
    /// Everything the trial reported at its kept epoch.
    pub metrics: Option<Metrics>,
    /// With several objectives: each objective's value at the kept epoch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objective_values: Vec<Option<f64>>,
    /// With several objectives: the non-dominated rank among the trials of its tier
    /// (1: on the front).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pareto_rank: Option<usize>,
    /// With constraints: by how much it exceeds them (0: feasible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<f64>,
}

impl Row {
    /// Whether it meets the sweep's constraints (always, without any).
    pub fn feasible(&self) -> bool {
        self.violation.is_none_or(|v| v <= 0.0)
    }
}

/// The objective over the seeds of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupStats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for a single seed).
    pub std: f64,
    /// Seeds with a result.
    pub n: usize,
}

/// All trials of a sweep, ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leaderboard {
    /// What ranks the trials.
    pub objective: Objective,
    /// The plan's columns (searched keys, label, seed).
    pub columns: Vec<String>,
    /// Whether group statistics are shown (repeats > 1).
    pub repeats: bool,
    /// Whether the test-accuracy columns are shown (another metric ranks, and trials report
    /// test accuracy).
    pub shows_test_acc: bool,
    /// Whether the epochs run and the last value are shown (the sweep prunes).
    pub shows_progress: bool,
    /// Ranked rows first, then the rest in plan order.
    pub rows: Vec<Row>,
    /// Several objectives, their constraints and the rule for `best/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Objectives>,
    /// With one objective: what a feasible trial meets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Bound>,
    /// The trial `best/` holds: the first row when it completed, or with several objectives
    /// the trial the rule (or the knee of the front) picks.
    #[serde(rename = "best")]
    pub best_trial: Option<String>,
    /// Why no trial is selected, when the rule finds none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_selection: Option<String>,
}

/// A row's place in a single-objective board: (tier, violation, the objective's value or its
/// configuration's mean).
type RankKey = (u8, f64, Option<f64>);

/// Ranked statuses, in the order their groups are listed: completed trials, then pruned ones.
fn tier(status: TrialStatus) -> Option<u8> {
    match status {
        TrialStatus::Completed => Some(0),
        TrialStatus::Pruned => Some(1),
        _ => None,
    }
}

impl Leaderboard {
    /// Builds the leaderboard of the trials still in the plan.
    pub fn build(record: &StudyRecord) -> Self {
        if let Some(objectives) = &record.objectives {
            return Self::build_pareto(record, objectives);
        }
        let objective = record.objective.clone();
        let mut rows: Vec<Row> = record.active().map(|t| row(record, t)).collect();
        if !record.constraints.is_empty() {
            for r in &mut rows {
                r.violation = r
                    .metrics
                    .as_ref()
                    .map(|m| crate::objectives::violation(&record.constraints, m));
            }
        }
        let repeats = record.repeats > 1;
        if repeats {
            let mut by_group: HashMap<String, Vec<f64>> = HashMap::new();
            for r in &rows {
                if let (TrialStatus::Completed, Some(v)) = (r.status, r.value) {
                    by_group.entry(r.group.clone()).or_default().push(v);
                }
            }
            for r in &mut rows {
                r.group_stats = by_group.get(&r.group).map(|v| stats(v));
            }
        }
        let (ranked, rest): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| tier(r.status).is_some() && r.value.is_some());
        // With repeats a configuration ranks by the mean over its completed seeds (its best
        // tier first), and its seeds follow each other, best first; without repeats every
        // trial is a configuration of its own.
        let mut groups: HashMap<String, (u8, Option<f64>)> = HashMap::new();
        for r in &ranked {
            let t = tier(r.status).expect("ranked rows have a tier");
            let mean = if repeats && t == 0 {
                r.group_stats.map(|g| g.mean)
            } else {
                r.value
            };
            let entry = groups.entry(r.group.clone()).or_insert((t, mean));
            if t < entry.0 {
                *entry = (t, mean);
            } else if t == entry.0 && !repeats {
                entry.1 = mean;
            }
        }
        // Within a tier, trials that meet the constraints first, then the others by how much
        // they miss them (constraints do not combine with repeats).
        let key = |r: &Row| {
            if repeats {
                let (t, mean) = groups[&r.group];
                (t, 0.0, mean)
            } else {
                (
                    tier(r.status).unwrap_or(u8::MAX),
                    r.violation.unwrap_or(0.0),
                    r.value,
                )
            }
        };
        let mut keyed: Vec<(RankKey, Row)> = ranked.into_iter().map(|r| (key(&r), r)).collect();
        keyed.sort_by(|(ka, ra), (kb, rb)| {
            ka.0.cmp(&kb.0)
                .then_with(|| ka.1.total_cmp(&kb.1))
                .then_with(|| objective.cmp(ka.2.unwrap_or(f64::NAN), kb.2.unwrap_or(f64::NAN)))
                .then_with(|| ra.group.cmp(&rb.group))
                .then_with(|| tier(ra.status).cmp(&tier(rb.status)))
                .then_with(|| {
                    objective.cmp(ra.value.unwrap_or(f64::NAN), rb.value.unwrap_or(f64::NAN))
                })
        });
        let mut ranked: Vec<Row> = keyed.into_iter().map(|(_, r)| r).collect();
        let mut rank = 0;
        for i in 0..ranked.len() {
            if i == 0 || !repeats || ranked[i].group != ranked[i - 1].group {
                rank += 1;
            }
            ranked[i].rank = Some(rank);
        }
        let shows_test_acc =
            objective.metric != TEST_ACC && ranked.iter().any(|r| r.best_test_acc.is_some());
        ranked.extend(rest);
        let shows_progress =
            record.pruner.is_some() || ranked.iter().any(|r| r.status == TrialStatus::Pruned);
        Self {
            objective,
            columns: record.columns.clone(),
            repeats,
            shows_test_acc,
            shows_progress,
            best_trial: ranked
                .first()
                .filter(|r| r.rank == Some(1) && r.status == TrialStatus::Completed && r.feasible())
                .map(|r| r.trial.clone()),
            rows: ranked,
            objectives: None,
            constraints: record.constraints.clone(),
            no_selection: None,
        }
    }

    /// The leaderboard of a sweep with several objectives: completed trials first, then
    /// pruned ones; within each, feasible trials by non-dominated rank (ties by the first
    /// objective), then infeasible ones by how much they violate the constraints. `best/` is
    /// the trial the `select` rule picks, else the knee of the feasible front.
    fn build_pareto(record: &StudyRecord, objectives: &Objectives) -> Self {
        let objective = record.objective.clone();
        let mut rows: Vec<Row> = record.active().map(|t| row(record, t)).collect();
        for r in &mut rows {
            let point = r.metrics.as_ref().and_then(|m| objectives.point(m));
            if let (Some(m), Some(p)) = (&r.metrics, &point) {
                r.objective_values = objectives.objectives.iter().map(|o| o.value(m)).collect();
                r.violation = Some(p.violation);
            }
        }
        let (mut ranked, rest): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| tier(r.status).is_some() && r.violation.is_some());
        for t in [0, 1] {
            let members: Vec<usize> = (0..ranked.len())
                .filter(|&i| tier(ranked[i].status) == Some(t))
                .collect();
            let points: Vec<Point> = members
                .iter()
                .filter_map(|&i| ranked[i].metrics.as_ref().and_then(|m| objectives.point(m)))
                .collect();
            for (&i, r) in members.iter().zip(pareto::ranks(&points)) {
                ranked[i].pareto_rank = Some(r);
            }
        }
        ranked.sort_by(|a, b| {
            tier(a.status)
                .cmp(&tier(b.status))
                .then(b.feasible().cmp(&a.feasible()))
                .then(
                    a.violation
                        .unwrap_or(0.0)
                        .total_cmp(&b.violation.unwrap_or(0.0)),
                )
                .then(a.pareto_rank.cmp(&b.pareto_rank))
                .then_with(|| {
                    objective.cmp(a.value.unwrap_or(f64::NAN), b.value.unwrap_or(f64::NAN))
                })
                .then(a.number.cmp(&b.number))
        });
        for (i, r) in ranked.iter_mut().enumerate() {
            r.rank = Some(i + 1);
        }
        // best/: the rule's choice among the feasible completed trials, else the knee of
        // their front.
        let candidates: Vec<(usize, &Metrics)> = ranked
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == TrialStatus::Completed && r.feasible())
            .filter_map(|(i, r)| r.metrics.as_ref().map(|m| (i, m)))
            .collect();
        let (selected, no_selection) = match &objectives.select {
            Some(rule) => {
                let mode = |m: &str| {
                    objectives
                        .objectives
                        .iter()
                        .find(|o| o.metric == m)
                        .map(|o| o.mode)
                };
                match rule.choose(&candidates, &mode) {
                    Ok(&i) => (Some(i), None),
                    Err(why) => (None, Some(why)),
                }
            }
            None => {
                let front: Vec<usize> = candidates
                    .iter()
                    .map(|(i, _)| *i)
                    .filter(|&i| ranked[i].pareto_rank == Some(1))
                    .collect();
                let losses: Vec<Vec<f64>> = front
                    .iter()
                    .filter_map(|&i| {
                        ranked[i]
                            .metrics
                            .as_ref()
                            .and_then(|m| objectives.point(m))
                            .map(|p| p.losses)
                    })
                    .collect();
                match pareto::knee(&losses) {
                    Some(k) => (Some(front[k]), None),
                    None => (
                        None,
                        Some("no feasible trial has completed yet".to_string()),
                    ),
                }
            }
        };
        let shows_test_acc = objectives.objectives.iter().all(|o| o.metric != TEST_ACC)
            && ranked.iter().any(|r| r.best_test_acc.is_some());
        let best_trial = selected.map(|i| ranked[i].trial.clone());
        ranked.extend(rest);
        let shows_progress =
            record.pruner.is_some() || ranked.iter().any(|r| r.status == TrialStatus::Pruned);
        Self {
            objective,
            columns: record.columns.clone(),
            repeats: false,
            shows_test_acc,
            shows_progress,
            rows: ranked,
            objectives: Some(objectives.clone()),
            constraints: Vec::new(),
            best_trial,
            no_selection,
        }
    }

    /// The winner: the first row, or with several objectives the trial the selection rule
    /// (or the knee of the front) picks.
    pub fn best(&self) -> Option<&Row> {
        let id = self.best_trial.as_deref()?;
        self.rows.iter().find(|r| r.trial == id)
    }

    /// Why there is no winner, in words (None when there is one): no trial completed, a
    /// metric the objectives, constraints or rule read that no completed trial reports (with
    /// those they do report), or the rule's own reason.
    pub fn why_no_best(&self) -> Option<String> {
        if self.best().is_some() {
            return None;
        }
        let completed: Vec<&Metrics> = self
            .rows
            .iter()
            .filter(|r| r.status == TrialStatus::Completed)
            .filter_map(|r| r.metrics.as_ref())
            .collect();
        if completed.is_empty() {
            return Some("no trial has completed yet".into());
        }
        let read = match &self.objectives {
            Some(o) => o.metrics(),
            None => std::iter::once(self.objective.metric.as_str())
                .chain(self.constraints.iter().map(|c| c.metric.as_str()))
                .collect(),
        };
        let unreported: Vec<String> = read
            .iter()
            .filter(|m| completed.iter().all(|c| c.get(m).is_none()))
            .map(|m| format!("`{m}`"))
            .collect();
        if !unreported.is_empty() {
            let mut reported: Vec<&str> = Vec::new();
            for name in completed.iter().flat_map(|c| c.names()) {
                if !reported.contains(&name) {
                    reported.push(name);
                }
            }
            return Some(format!(
                "no completed trial reports {}, which the sweep's objectives, constraints or \
                 select read; they report {}",
                unreported.join(", "),
                reported.join(", ")
            ));
        }
        Some(
            self.no_selection.clone().unwrap_or_else(|| {
                "no feasible completed trial: each violates a constraint".into()
            }),
        )
    }

    /// The values that rank `row`, as `val_acc 98.5, train_seconds 120`.
    pub fn describe_values(&self, row: &Row) -> String {
        match &self.objectives {
            Some(o) => o
                .objectives
                .iter()
                .zip(&row.objective_values)
                .map(|(x, v)| format!("{} {}", x.metric, v.map_or("-".into(), format_metric)))
                .collect::<Vec<_>>()
                .join(", "),
            None => format!(
                "{} {}",
                self.objective.metric,
                row.value.map_or("-".into(), format_metric)
            ),
        }
    }

    /// How `best/` is chosen, for people: the objective, or the selection rule.
    pub fn best_rule(&self) -> String {
        match &self.objectives {
            Some(o) => o.describe_selection(),
            None if self.constraints.is_empty() => format!(
                "the best {} ({})",
                self.objective.metric,
                self.objective.mode.name()
            ),
            None => format!(
                "the best {} ({}) among the trials that meet the constraints",
                self.objective.metric,
                self.objective.mode.name()
            ),
        }
    }

    /// The non-dominated feasible completed trials (several objectives; empty otherwise),
    /// as a leaderboard of their own (`pareto.csv`).
    pub fn front(&self) -> Leaderboard {
        let mut front = self.clone();
        front.rows.retain(|r| {
            r.status == TrialStatus::Completed && r.feasible() && r.pareto_rank == Some(1)
        });
        if self.objectives.is_none() {
            front.rows.clear();
        }
        front.best_trial = None;
        front
    }

    /// The row of rank `rank` (1-based).
    pub fn by_rank(&self, rank: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.rank == Some(rank))
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.rows.truncate(n);
    }
}

fn row(record: &StudyRecord, t: &TrialRecord) -> Row {
    let objective = &record.objective;
    let best = t.best(objective);
    Row {
        rank: None,
        trial: t.def.id.clone(),
        number: t.def.index,
        label: t.def.label.clone(),
        status: t.status,
        value: best.and_then(|b| objective.value(&b.metrics)),
        best_epoch: best.map(|b| b.epoch),
        test_acc_at_best: best.and_then(|b| b.get(TEST_ACC)),
        best_test_acc: t.peak(TEST_ACC).map(|p| p.0),
        epochs: t.last().map_or(0, |r| r.epoch),
        last_value: t.last().and_then(|r| objective.value(&r.metrics)),
        values: record.columns.iter().map(|c| column_value(t, c)).collect(),
        params: t
            .def
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
            .collect(),
        seconds: (t.seconds > 0.0).then_some(t.seconds),
        device: t.device.clone().unwrap_or_default(),
        group: t.def.group.clone(),
        group_stats: None,
        metrics: best.map(|b| b.metrics.clone()),
        objective_values: Vec::new(),
        pareto_rank: None,
        violation: None,
    }
}

/// A trial's value in one of the plan's columns, as a person would write it.
pub fn column_value(t: &TrialRecord, column: &str) -> String {
    if column == "label" {
        return t.def.label.clone().unwrap_or_default();
    }
    t.def
        .params
        .get(column)
        .map(display_value)
        .unwrap_or_default()
}

fn stats(v: &[f64]) -> GroupStats {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    GroupStats {
        mean,
        std: var.sqrt(),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;
    use crate::trial::Mode;

    /// A sweep maximising acc and minimising secs, with `secs <= 100` and a rule.
    fn two_objectives(select: Option<&str>) -> Objectives {
        Objectives {
            objectives: vec![
                Objective::new("acc", Some(Mode::Max)).unwrap(),
                Objective::new("secs", Some(Mode::Min)).unwrap(),
            ],
            constraints: vec![crate::objectives::Bound::parse("secs <= 100", false).unwrap()],
            select: select.map(|s| crate::objectives::Selection::parse(s).unwrap()),
        }
    }

    fn pareto_study(
        objectives: Objectives,
        trials: &[(&str, TrialStatus, f64, f64)],
    ) -> Leaderboard {
        let mut s = Study::with_objectives(objectives);
        for (id, status, acc, secs) in trials {
            s.trial(id, &[])
                .epoch(id, 1, &[("acc", *acc), ("secs", *secs)])
                .ended(id, *status);
        }
        Leaderboard::build(&s.build())
    }

    #[test]
    fn several_objectives_rank_by_pareto_front_then_violation_and_pick_the_knee() {
        use TrialStatus::*;
        let board = pareto_study(
            two_objectives(None),
            &[
                ("slow", Completed, 99.4, 90.0),
                ("knee", Completed, 99.3, 30.0),
                ("fast", Completed, 98.0, 10.0),
                ("worse", Completed, 98.0, 40.0),
                ("too-slow", Completed, 99.9, 150.0),
                ("pruned", Pruned, 99.95, 5.0),
                ("failed", Failed, 0.0, 0.0),
            ],
        );
        let order: Vec<&str> = board.rows.iter().map(|r| r.trial.as_str()).collect();
        // The front (tie broken by acc), the dominated one, the infeasible one, then the
        // pruned tier, then the unranked.
        assert_eq!(
            order,
            [
                "slow", "knee", "fast", "worse", "too-slow", "pruned", "failed"
            ]
        );
        let ranks: Vec<Option<usize>> = board.rows.iter().map(|r| r.pareto_rank).collect();
        assert_eq!(ranks[..5], [Some(1), Some(1), Some(1), Some(2), Some(3)]);
        assert_eq!(board.rows[4].violation, Some(50.0));
        assert!(!board.rows[4].feasible());
        assert_eq!(board.best().unwrap().trial, "knee");
        let front: Vec<String> = board.front().rows.iter().map(|r| r.trial.clone()).collect();
        assert_eq!(front, ["slow", "knee", "fast"]);
        assert_eq!(
            &board.header()[..8],
            [
                "rank",
                "trial",
                "status",
                "acc",
                "secs",
                "pareto_rank",
                "feasible",
                "violation"
            ]
        );
        let cells = board.cells();
        assert_eq!(cells[4][5..8], ["3", "false", "50.00"]);
    }

    #[test]
    fn without_a_winner_the_board_says_why_naming_a_metric_no_trial_reports() {
        use TrialStatus::*;
        let mut typo = two_objectives(None);
        typo.constraints = vec![crate::objectives::Bound::parse("param <= 5", false).unwrap()];
        let board = pareto_study(typo, &[("a", Completed, 99.0, 3.0)]);
        let why = board.why_no_best().unwrap();
        assert!(
            why.contains("no completed trial reports `param`") && why.contains("report acc, secs"),
            "{why}"
        );
        let board = pareto_study(two_objectives(None), &[("a", Running, 99.0, 3.0)]);
        assert_eq!(board.why_no_best().unwrap(), "no trial has completed yet");
        let board = pareto_study(two_objectives(None), &[("a", Completed, 99.0, 300.0)]);
        assert!(board.why_no_best().unwrap().contains("feasible"));
        let board = pareto_study(two_objectives(None), &[("a", Completed, 99.0, 3.0)]);
        assert_eq!(board.why_no_best(), None);
    }

    #[test]
    fn a_select_rule_chooses_best_and_says_when_nothing_qualifies() {
        use TrialStatus::*;
        let trials = [
            ("slow", Completed, 99.4, 90.0),
            ("knee", Completed, 99.3, 30.0),
            ("fast", Completed, 98.0, 10.0),
        ];
        let board = pareto_study(
            two_objectives(Some("min secs where acc >= best - 0.1")),
            &trials,
        );
        assert_eq!(board.best().unwrap().trial, "knee");
        assert!(
            board
                .best_rule()
                .contains("min secs where acc >= best - 0.1")
        );
        let none = pareto_study(two_objectives(Some("max acc where secs <= 5")), &trials);
        assert!(none.best().is_none());
        assert!(
            none.no_selection
                .as_deref()
                .unwrap()
                .contains("no feasible completed trial")
        );
        // Every trial violates the constraint: ranked by violation, nothing selected.
        let infeasible = pareto_study(
            two_objectives(None),
            &[("a", Completed, 99.0, 300.0), ("b", Completed, 90.0, 120.0)],
        );
        let order: Vec<&str> = infeasible.rows.iter().map(|r| r.trial.as_str()).collect();
        assert_eq!(order, ["b", "a"]);
        assert!(infeasible.best().is_none());
        assert!(infeasible.front().rows.is_empty());
    }

    #[test]
    fn group_statistics_use_the_sample_standard_deviation() {
        let s = stats(&[99.0, 99.2, 99.4]);
        assert!((s.mean - 99.2).abs() < 1e-9);
        assert!((s.std - 0.2).abs() < 1e-9);
        assert_eq!(stats(&[98.0]).std, 0.0);
    }

    /// (id, status, (test_loss, test_acc) per epoch).
    type Trial<'a> = (&'a str, TrialStatus, &'a [(f64, f64)]);

    fn study(objective: Objective, trials: &[Trial]) -> StudyRecord {
        grouped_study(objective, trials, |id| id.to_string(), 1)
    }

    fn grouped_study(
        objective: Objective,
        trials: &[Trial],
        group: impl Fn(&str) -> String,
        repeats: usize,
    ) -> StudyRecord {
        let mut s = Study::ranked_by(objective, repeats);
        for (id, status, curve) in trials {
            let rows: Vec<Vec<(&str, f64)>> = curve
                .iter()
                .map(|(loss, acc)| vec![("test_loss", *loss), ("test_acc", *acc)])
                .collect();
            s.trial_in_group(id, &group(id), &[])
                .epochs(id, &rows)
                .ended(id, *status);
        }
        s.build()
    }

    #[test]
    fn with_repeats_configurations_rank_by_their_mean_not_their_luckiest_seed() {
        use TrialStatus::*;
        let record = grouped_study(
            Objective::test_acc(),
            &[
                ("a0", Completed, &[(0.1, 99.0)]),
                ("a1", Completed, &[(0.1, 98.0)]),
                ("b0", Completed, &[(0.1, 99.2)]),
                ("b1", Completed, &[(0.1, 97.0)]),
                ("b2", Failed, &[]),
            ],
            |id| id[..1].to_string(),
            2,
        );
        let board = Leaderboard::build(&record);
        let rows: Vec<(&str, Option<usize>, Option<usize>)> = board
            .rows
            .iter()
            .map(|r| (r.trial.as_str(), r.rank, r.group_stats.map(|g| g.n)))
            .collect();
        assert_eq!(
            rows,
            [
                ("a0", Some(1), Some(2)),
                ("a1", Some(1), Some(2)),
                ("b0", Some(2), Some(2)),
                ("b1", Some(2), Some(2)),
                ("b2", None, Some(2)),
            ]
        );
        assert_eq!(board.best().unwrap().trial, "a0");
        assert!((board.rows[0].group_stats.unwrap().mean - 98.5).abs() < 1e-9);
    }

    #[test]
    fn a_loss_ranks_ascending_and_pruned_trials_follow_completed_ones() {
        use TrialStatus::*;
        let record = study(
            Objective::new("test_loss", Some(Mode::Min)).unwrap(),
            &[
                ("high", Completed, &[(0.5, 90.0), (0.3, 97.0)]),
                ("low", Completed, &[(0.2, 96.0), (0.25, 98.0)]),
                ("pruned", Pruned, &[(0.1, 99.0)]),
                ("nan", Diverged, &[]),
            ],
        );
        let board = Leaderboard::build(&record);
        let order: Vec<(&str, Option<usize>)> = board
            .rows
            .iter()
            .map(|r| (r.trial.as_str(), r.rank))
            .collect();
        assert_eq!(
            order,
            [
                ("low", Some(1)),
                ("high", Some(2)),
                ("pruned", Some(3)),
                ("nan", None)
            ]
        );
        let best = board.best().unwrap();
        assert_eq!((best.value, best.best_epoch), (Some(0.2), Some(1)));
        assert_eq!(best.test_acc_at_best, Some(96.0), "the honest number");
        assert_eq!(best.best_test_acc, Some(98.0), "the study's number");
        assert!(board.shows_test_acc);
        assert_eq!(
            &board.header()[3..7],
            [
                "test_loss",
                "best_epoch",
                "test_acc_at_best",
                "best_test_acc"
            ]
        );
        assert_eq!(board.cells()[0][3], "0.2000");
    }
}
