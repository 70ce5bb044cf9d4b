//! The leaderboard as a table: its columns and cells, and the formats it is written in.

use super::Leaderboard;
use crate::text::format_metric;

impl Leaderboard {
    /// Column names, in order.
    pub fn header(&self) -> Vec<String> {
        let m = self.objective.metric.as_str();
        let mut h: Vec<String> = ["rank", "trial", "status"].map(String::from).to_vec();
        match &self.objectives {
            Some(o) => {
                h.extend(o.objectives.iter().map(|x| x.metric.clone()));
                h.extend(["pareto_rank", "feasible", "violation"].map(String::from));
            }
            None => {
                h.push(m.to_string());
                if !self.constraints.is_empty() {
                    h.extend(["feasible", "violation"].map(String::from));
                }
            }
        }
        h.push("best_epoch".to_string());
        if self.shows_test_acc {
            h.extend(["test_acc_at_best".to_string(), "best_test_acc".to_string()]);
        }
        if self.shows_progress {
            h.extend(["epochs".to_string(), format!("last_{m}")]);
        }
        h.extend(self.columns.iter().cloned());
        h.extend(["seconds".to_string(), "device".to_string()]);
        if self.repeats {
            h.extend([format!("{m}_mean"), format!("{m}_std"), "n".to_string()]);
        }
        h.push("number".to_string());
        h
    }

    /// The metrics the trials reported at their kept epoch that no column of
    /// [`Leaderboard::header`] shows (nor shares a name with), in the order first reported.
    pub fn other_metrics(&self) -> Vec<String> {
        let header = self.header();
        let mut names: Vec<String> = Vec::new();
        for m in self.rows.iter().filter_map(|r| r.metrics.as_ref()) {
            for name in m.names() {
                if !header.iter().any(|h| h == name) && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names
    }

    /// Every row as text cells aligned with [`Leaderboard::header`], values rounded for
    /// reading.
    pub fn cells(&self) -> Vec<Vec<String>> {
        self.cells_with(format_metric)
    }

    /// Every row as text cells aligned with [`Leaderboard::header`], values at full precision
    /// (the shortest text that reads back as the same number), for files other tools read.
    pub fn cells_exact(&self) -> Vec<Vec<String>> {
        self.cells_with(|v| v.to_string())
    }

    fn cells_with(&self, format: fn(f64) -> String) -> Vec<Vec<String>> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let value = |v: Option<f64>| opt(v.map(format));
        self.rows
            .iter()
            .map(|r| {
                let mut c = vec![
                    opt(r.rank.map(|x| x.to_string())),
                    r.trial.clone(),
                    r.status.to_string(),
                ];
                match &self.objectives {
                    Some(o) => {
                        c.extend(
                            (0..o.objectives.len())
                                .map(|k| value(r.objective_values.get(k).copied().flatten())),
                        );
                        c.push(opt(r.pareto_rank.map(|x| x.to_string())));
                    }
                    None => c.push(value(r.value)),
                }
                if self.objectives.is_some() || !self.constraints.is_empty() {
                    c.push(if r.violation.is_some() {
                        r.feasible().to_string()
                    } else {
                        String::new()
                    });
                    c.push(value(r.violation));
                }
                c.push(opt(r.best_epoch.map(|x| x.to_string())));
                if self.shows_test_acc {
                    c.push(value(r.test_acc_at_best));
                    c.push(value(r.best_test_acc));
                }
                if self.shows_progress {
                    c.push(r.epochs.to_string());
                    c.push(value(r.last_value));
                }
                c.extend(r.values.iter().cloned());
                c.push(opt(r.seconds.map(|x| format!("{x:.1}"))));
                c.push(r.device.clone());
                if self.repeats {
                    c.push(value(r.group_stats.map(|g| g.mean)));
                    c.push(value(r.group_stats.map(|g| g.std)));
                    c.push(opt(r.group_stats.map(|g| g.n.to_string())));
                }
                c.push(r.number.to_string());
                c
            })
            .collect()
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
    /// The board's columns, then every other metric the trials reported at their kept epoch
    /// (as Optuna's user attributes), at full precision.
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let extra = board.other_metrics();
        let mut header = board.header();
        header.extend(extra.iter().cloned());
        w.write_record(header)?;
        for (mut cells, row) in board.cells_exact().into_iter().zip(&board.rows) {
            cells.extend(extra.iter().map(|m| {
                row.metrics
                    .as_ref()
                    .and_then(|x| x.get(m))
                    .map_or(String::new(), |v| v.to_string())
            }));
            w.write_record(cells)?;
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
    /// The board as one object: what ranks it (`ranked_by`, in words), the trial `best/` holds
    /// (`best`), and each row marked `best` and, with constraints, whether it is `feasible`;
    /// with several objectives, each row's `objective_values` by metric.
    fn serialize(&self, board: &Leaderboard) -> anyhow::Result<String> {
        let mut value = serde_json::to_value(board)?;
        value["ranked_by"] = crate::objectives::ranking(
            &board.objective,
            board.objectives.as_ref(),
            &board.constraints,
        )
        .into();
        if let Some(rows) = value["rows"].as_array_mut() {
            for (json, row) in rows.iter_mut().zip(&board.rows) {
                json["best"] = (board.best_trial.as_deref() == Some(row.trial.as_str())).into();
                if row.violation.is_some() {
                    json["feasible"] = row.feasible().into();
                }
                let Some(o) = &board.objectives else { continue };
                let labelled: serde_json::Map<String, serde_json::Value> = o
                    .objectives
                    .iter()
                    .zip(&row.objective_values)
                    .map(|(x, v)| (x.metric.clone(), (*v).into()))
                    .collect();
                json["objective_values"] = labelled.into();
            }
        }
        Ok(serde_json::to_string_pretty(&value)? + "\n")
    }
}
