//! The ranked leaderboard: one row per trial, best first, in CSV, Markdown or JSON.

use std::collections::HashMap;

use serde::Serialize;

use super::journal::{TrialRecord, TrialStatus};
use super::run_dir::RunDir;
use super::sweep_dir::SweepDir;
use crate::sweep::spec::{Metric, Plan};

/// One trial's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// 1-based rank among finished trials (None for trials without a result).
    pub rank: Option<usize>,
    /// Trial id.
    pub trial: String,
    /// Where it stands.
    pub status: TrialStatus,
    /// The ranking metric (best over epochs).
    pub metric: Option<f64>,
    /// Epoch of the best metric.
    pub best_epoch: Option<usize>,
    /// Searched values, aligned with [`Leaderboard::columns`].
    pub values: Vec<String>,
    /// Wall time of the run.
    pub seconds: Option<f64>,
    /// Where it ran.
    pub device: String,
    /// With repeats: mean, standard deviation and count of the metric over the configuration's
    /// finished seeds.
    pub group: Option<GroupStats>,
}

/// The metric over the seeds of one configuration.
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
    pub metric: Metric,
    /// Searched keys.
    pub columns: Vec<String>,
    /// Whether group statistics are shown (repeats > 1).
    pub repeats: bool,
    /// Ranked rows first, then the rest in plan order.
    pub rows: Vec<Row>,
}

impl Leaderboard {
    /// Builds the leaderboard from the plan, the trial states and the trial directories.
    pub fn build(dir: &SweepDir, plan: &Plan, states: &HashMap<String, TrialRecord>) -> Self {
        let metric = plan.metric;
        let mut rows: Vec<(String, Row)> = plan
            .trials
            .iter()
            .map(|t| {
                let state = states.get(&t.id);
                let status = state.and_then(|s| s.status).unwrap_or(TrialStatus::Pending);
                let summary = dir.trial_summary(&t.id);
                let (value, epoch) = match metric {
                    Metric::TestAcc => summary
                        .as_ref()
                        .filter(|s| s.best_epoch > 0)
                        .map_or((None, None), |s| {
                            (Some(s.best_test_acc), Some(s.best_epoch))
                        }),
                    Metric::TestLoss => best_loss(&dir.trial_dir(&t.id)),
                };
                let device = state
                    .and_then(|s| s.device.clone())
                    .or_else(|| summary.as_ref().map(|s| s.device.clone()))
                    .unwrap_or_default();
                let row = Row {
                    rank: None,
                    trial: t.id.clone(),
                    status,
                    metric: value,
                    best_epoch: epoch,
                    values: plan.columns.iter().map(|c| t.value(c)).collect(),
                    seconds: summary.as_ref().map(|s| s.seconds),
                    device,
                    group: None,
                };
                (t.group.clone(), row)
            })
            .collect();

        let repeats = plan.repeats > 1;
        if repeats {
            let mut by_group: HashMap<String, Vec<f64>> = HashMap::new();
            for (g, r) in &rows {
                if let (true, Some(v)) = (r.status == TrialStatus::Completed, r.metric) {
                    by_group.entry(g.clone()).or_default().push(v);
                }
            }
            for (g, r) in &mut rows {
                r.group = by_group.get(g).map(|v| stats(v));
            }
        }
        let better = |a: f64, b: f64| {
            if metric.maximise() {
                b.total_cmp(&a)
            } else {
                a.total_cmp(&b)
            }
        };
        let key = |r: &Row| {
            if repeats {
                r.group.map(|g| g.mean)
            } else {
                r.metric
            }
        };
        let mut ranked: Vec<Row> = Vec::new();
        let mut rest: Vec<Row> = Vec::new();
        for (_, r) in rows {
            if r.status == TrialStatus::Completed && key(&r).is_some() {
                ranked.push(r);
            } else {
                rest.push(r);
            }
        }
        ranked.sort_by(|a, b| {
            better(key(a).unwrap_or(f64::NAN), key(b).unwrap_or(f64::NAN))
                .then_with(|| better(a.metric.unwrap_or(f64::NAN), b.metric.unwrap_or(f64::NAN)))
        });
        for (i, r) in ranked.iter_mut().enumerate() {
            r.rank = Some(i + 1);
        }
        ranked.extend(rest);
        Self {
            metric,
            columns: plan.columns.clone(),
            repeats,
            rows: ranked,
        }
    }

    /// The winner.
    pub fn best(&self) -> Option<&Row> {
        self.rows.first().filter(|r| r.rank == Some(1))
    }

    /// The row of rank `rank` (1-based).
    pub fn by_rank(&self, rank: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.rank == Some(rank))
    }

    /// Column names, in order.
    pub fn header(&self) -> Vec<String> {
        let m = self.metric.name();
        let mut h: Vec<String> = ["rank", "trial", "status", m, "best_epoch"]
            .map(String::from)
            .to_vec();
        h.extend(self.columns.iter().cloned());
        h.extend(["seconds".to_string(), "device".to_string()]);
        if self.repeats {
            h.extend([format!("{m}_mean"), format!("{m}_std"), "n".to_string()]);
        }
        h
    }

    /// Every row as text cells aligned with [`Leaderboard::header`].
    pub fn cells(&self) -> Vec<Vec<String>> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        self.rows
            .iter()
            .map(|r| {
                let mut c = vec![
                    opt(r.rank.map(|x| x.to_string())),
                    r.trial.clone(),
                    r.status.to_string(),
                    opt(r.metric.map(|x| format!("{x:.2}"))),
                    opt(r.best_epoch.map(|x| x.to_string())),
                ];
                c.extend(r.values.iter().cloned());
                c.push(opt(r.seconds.map(|x| format!("{x:.1}"))));
                c.push(r.device.clone());
                if self.repeats {
                    c.push(opt(r.group.map(|g| format!("{:.3}", g.mean))));
                    c.push(opt(r.group.map(|g| format!("{:.3}", g.std))));
                    c.push(opt(r.group.map(|g| g.n.to_string())));
                }
                c
            })
            .collect()
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.rows.truncate(n);
    }
}

/// Lowest test loss over a run's epochs.
fn best_loss(trial_dir: &std::path::Path) -> (Option<f64>, Option<usize>) {
    let Ok(rows) = RunDir::open(trial_dir).and_then(|d| d.read_metrics()) else {
        return (None, None);
    };
    rows.iter()
        .min_by(|a, b| a.test_loss.total_cmp(&b.test_loss))
        .map_or((None, None), |r| (Some(r.test_loss), Some(r.epoch)))
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

/// An output format for the leaderboard.
pub trait Exporter {
    /// The leaderboard in this format.
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String>;
}

/// Comma-separated values with a header row.
pub struct Csv;
/// A GitHub-flavoured Markdown table.
pub struct Markdown;
/// A JSON object with the header and rows.
pub struct Json;

impl Exporter for Csv {
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(board.header())?;
        for row in board.cells() {
            w.write_record(row)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

impl Exporter for Markdown {
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String> {
        let line = |cells: &[String]| {
            format!(
                "| {} |",
                cells
                    .iter()
                    .map(|c| c.replace('|', "\\|"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        };
        let header = board.header();
        let mut out = vec![line(&header), format!("|{}", " --- |".repeat(header.len()))];
        out.extend(board.cells().iter().map(|c| line(c)));
        Ok(out.join("\n") + "\n")
    }
}

impl Exporter for Json {
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(board)? + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_statistics_use_the_sample_standard_deviation() {
        let s = stats(&[99.0, 99.2, 99.4]);
        assert!((s.mean - 99.2).abs() < 1e-9);
        assert!((s.std - 0.2).abs() < 1e-9);
        assert_eq!(stats(&[98.0]).std, 0.0);
    }
}
