//! `sweep report`: one self-contained HTML page per sweep (leaderboard, learning curves,
//! parameters against the metric, the best trial's confusion matrix) and `curves.svg`.

mod charts;
pub mod export;
mod parallel;
pub mod ticks;

use std::fmt::Write;
use std::path::PathBuf;

use candle_core::Device;

pub use charts::MetricAxis;

use crate::store::atomic;
use crate::store::leaderboard::{Leaderboard, Row};
use crate::store::record::StudyRecord;
use crate::store::run_dir::{CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, RunDir};
use crate::store::sweep_dir::SweepDir;
use crate::sweep::importance;
use crate::train as trainer;
use crate::train::config::TrialConfig;
use crate::train::engine::{self, EvalOutcome};
use crate::trial::{EpochMetrics, TrialStatus};

/// One trial's curves, as charts draw them.
#[derive(Debug, Clone)]
pub struct TrialCurves {
    /// Legend name: the label if the trial has one, else its id.
    pub name: String,
    /// True for the leaderboard's winner.
    pub best: bool,
    /// True for a trial the pruner stopped: its curve ends where it was stopped, muted.
    pub pruned: bool,
    /// Its metrics so far.
    pub metrics: Vec<EpochMetrics>,
}

/// Where the report went.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// `report.html`.
    pub html: PathBuf,
    /// `curves.svg`.
    pub curves: PathBuf,
}

/// Writes `report.html` and `curves.svg` into the sweep directory (atomically); safe while
/// the sweep is still running.
pub fn write(dir: &SweepDir) -> anyhow::Result<ReportFiles> {
    write_page(dir, None)
}

/// Writes the report of a sweep still running, `finished` of `total` trials done: the page
/// reloads itself every 15 s and says how far the sweep is. `sweep run` republishes it as
/// trials end, and writes the final, static page when it ends.
pub fn write_live(dir: &SweepDir, finished: usize, total: usize) -> anyhow::Result<ReportFiles> {
    write_page(dir, Some((finished, total)))
}

fn write_page(dir: &SweepDir, live: Option<(usize, usize)>) -> anyhow::Result<ReportFiles> {
    let (record, board) = crate::sweep::study::leaderboard(dir)?;
    let curves: Vec<TrialCurves> = board
        .rows
        .iter()
        .map(|r| TrialCurves {
            name: r.label.clone().unwrap_or_else(|| r.trial.clone()),
            best: r.rank == Some(1),
            pruned: r.status == TrialStatus::Pruned,
            metrics: record
                .get(&r.trial)
                .map(|t| t.epochs.clone())
                .unwrap_or_default(),
        })
        .collect();
    let confusion = board
        .best()
        .and_then(|best| best_confusion(dir, &best.trial).ok());
    let html = html(dir, &record, &board, &curves, confusion.as_ref(), live)?;
    let files = ReportFiles {
        html: dir.root().join("report.html"),
        curves: dir.root().join("curves.svg"),
    };
    atomic::write(
        &files.curves,
        charts::curves(&curves, &board.objective.metric)?,
    )?;
    atomic::write(&files.html, html)?;
    Ok(files)
}

fn label(record: &StudyRecord, id: &str) -> String {
    record
        .get(id)
        .and_then(|t| t.def.label.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The evaluation of a finished trial's best checkpoint is kept beside it ([`EVAL_FILE`]), so
/// that the report can be regenerated where the checkpoint is not (it is not published with
/// the results).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedEval {
    best_epoch: usize,
    #[serde(flatten)]
    outcome: EvalOutcome,
}

/// The confusion matrix of the best trial's checkpoint on the test set (CPU).
fn best_confusion(dir: &SweepDir, id: &str) -> anyhow::Result<EvalOutcome> {
    let run = RunDir::open(&dir.trial_dir(id))?;
    let summary = run.read_summary()?;
    let cache = run.file(EVAL_FILE);
    if let Some(cached) = std::fs::read_to_string(&cache)
        .ok()
        .and_then(|t| serde_json::from_str::<CachedEval>(&t).ok())
        .filter(|c| c.best_epoch == summary.best_epoch)
    {
        return Ok(cached.outcome);
    }
    let config = TrialConfig::load(&run.file(CONFIG_FILE), &[])?;
    let model = trainer::load_model(&config.model, &run.file(CHECKPOINT_FILE), &Device::Cpu)?;
    let test = trainer::load_eval_set(&config, trainer::EvalSplit::Test, &Device::Cpu)?
        .expect("every configuration has a test set");
    let outcome = engine::evaluate(&model, &test)?;
    if summary.status == TrialStatus::Completed {
        let cached = CachedEval {
            best_epoch: summary.best_epoch,
            outcome,
        };
        atomic::write(&cache, serde_json::to_string(&cached)? + "\n")?;
        return Ok(cached.outcome);
    }
    Ok(outcome)
}

/// The spec's `description`, from the copy of the spec the sweep last ran.
fn description(dir: &SweepDir) -> Option<String> {
    let text = std::fs::read_to_string(dir.spec_file()).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("description")?.as_str().map(String::from)
}

/// Which set selected the kept checkpoints and the ranking, and which set the numbers report.
fn selection_note(dir: &SweepDir, board: &Leaderboard) -> String {
    let metric = escape(&board.objective.metric);
    if metric.starts_with("val_") {
        let split = board
            .best()
            .and_then(|b| TrialConfig::load(&dir.trial_dir(&b.trial).join(CONFIG_FILE), &[]).ok())
            .map_or("the trials' own validation data".to_string(), |c| {
                format!(
                    "{} training images held out (data.val_size, split seed {})",
                    c.data.val_size, c.data.split_seed
                )
            });
        let test = if board.shows_test_acc {
            " The test set only reports: <code>test_acc_at_best</code> is the test accuracy of \
             the kept checkpoint, an honest estimate for new data; <code>best_test_acc</code>, \
             the best test accuracy over all epochs, is what selecting on the test set would \
             claim, and is optimistic."
        } else {
            ""
        };
        format!(
            "Trials are <b>selected on the validation split</b> ({split}): each keeps its checkpoint \
             of best <code>{metric}</code>, and the leaderboard ranks on it.{test}"
        )
    } else if metric.starts_with("test_") {
        format!(
            "Trials are <b>selected on the test set</b> (<code>{metric}</code>), as the study did: \
             the same images choose the epoch, rank the trials and report the accuracy, so the \
             numbers are optimistic for new data. Set <code>data.val_size</code> to select on a \
             validation split instead."
        )
    } else {
        format!("Trials are ranked by <code>{metric}</code>, as the trials report it.")
    }
}

/// Leaderboard rows shown before the rest are folded away.
const TOP_ROWS: usize = 20;
/// Points a parameter scatter draws at most: the best, then an even sample of the rest.
const SCATTER_POINTS: usize = 1000;

/// The ranked rows a scatter draws: every one up to [`SCATTER_POINTS`], else the best
/// [`charts::MAX_DRAWN`] and an even sample of the rest.
fn sample<'a, 'b>(ranked: &'a [(usize, &'b Row)]) -> impl Iterator<Item = &'a (usize, &'b Row)> {
    let keep_every = if ranked.len() <= SCATTER_POINTS {
        1
    } else {
        (ranked.len() - charts::MAX_DRAWN).div_ceil(SCATTER_POINTS - charts::MAX_DRAWN)
    };
    ranked
        .iter()
        .enumerate()
        .filter(move |(k, _)| {
            *k < charts::MAX_DRAWN || (k - charts::MAX_DRAWN).is_multiple_of(keep_every)
        })
        .map(|(_, r)| r)
}

/// A table of the leaderboard's rows `range` (cells as [`Leaderboard::cells`] gives them).
fn leaderboard_table(
    h: &mut String,
    board: &Leaderboard,
    cells: &[Vec<String>],
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let header = board.header();
    let left = |j: usize| (1..3).contains(&j) || board.columns.contains(&header[j]);
    writeln!(h, "<div class=\"wide\"><table><thead><tr>")?;
    for (j, c) in header.iter().enumerate() {
        let class = if left(j) { " class=\"l\"" } else { "" };
        write!(h, "<th{class}>{}</th>", escape(c))?;
    }
    writeln!(h, "</tr></thead><tbody>")?;
    for i in range {
        let (row, cells) = (&board.rows[i], &cells[i]);
        let best = row.rank == Some(1) && i == 0;
        let class = match row.status {
            _ if best => " class=\"best\"",
            TrialStatus::Pruned => " class=\"pruned\"",
            _ => "",
        };
        write!(h, "<tr{class}>")?;
        for (j, c) in cells.iter().enumerate() {
            let class = if left(j) { " class=\"l\"" } else { "" };
            if j == 1 {
                let colour = charts::colour_hex(i, best);
                write!(
                    h,
                    "<td{class}><span class=\"swatch\" style=\"background:{colour}\"></span>{}</td>",
                    escape(c)
                )?;
            } else {
                write!(h, "<td{class}>{}</td>", escape(c))?;
            }
        }
        writeln!(h, "</tr>")?;
    }
    writeln!(h, "</tbody></table></div>")?;
    Ok(())
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Drops the XML prologue-free SVG's fixed size so it scales with the page.
fn inline_svg(svg: &str) -> String {
    svg.replacen("<svg width=", "<svg class=\"chart\" width=", 1)
}

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1340px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: .9rem; margin: .5rem 0 1.5rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; } td.l, th.l { text-align: left; }
tr.best td { font-weight: 600; background: #fff8d6; } tr.pruned td { color: #888; }
details { margin: 0 0 1.5rem; } summary { cursor: pointer; color: #345; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } svg.chart { max-width: 100%; height: auto; border: 1px solid #eee; }
#logerr:checked ~ .linear { display: none; } #logerr:not(:checked) ~ .logerror { display: none; }
.wide { overflow-x: auto; } .confusion td { text-align: center; min-width: 2.6rem; } .note { color: #666; font-size: .9rem; }
"#;

fn html(
    dir: &SweepDir,
    record: &StudyRecord,
    board: &Leaderboard,
    curves: &[TrialCurves],
    confusion: Option<&EvalOutcome>,
    live: Option<(usize, usize)>,
) -> anyhow::Result<String> {
    let mut h = String::new();
    let name = escape(&record.name);
    let metric = board.objective.metric.as_str();
    let finished = board.rows.iter().filter(|r| r.status.is_final()).count();
    writeln!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    )?;
    writeln!(
        h,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    if live.is_some() {
        writeln!(h, "<meta http-equiv=\"refresh\" content=\"15\">")?;
    }
    writeln!(
        h,
        "<title>sweep report: {name}</title><style>{STYLE}</style></head><body>"
    )?;
    writeln!(h, "<h1>Sweep <code>{name}</code></h1>")?;
    if let Some((finished, total)) = live {
        writeln!(
            h,
            "<p class=\"live\"><b>running: {finished} of {total} finished, updated {}</b> (this page reloads itself every 15 s)</p>",
            chrono::Local::now().format("%H:%M:%S")
        )?;
    }
    writeln!(
        h,
        "<p class=\"sub\">{} trials, {finished} finished &middot; ranked by {metric} &middot; {} &middot; generated {}</p>",
        board.rows.len(),
        escape(&dir.root().display().to_string()),
        chrono::Local::now().format("%Y-%m-%d %H:%M")
    )?;

    if let Some(d) = description(dir) {
        writeln!(h, "<p>{}</p>", escape(&d))?;
    }
    writeln!(h, "<p>{}</p>", selection_note(dir, board))?;

    // Leaderboard: the top rows, every row behind a details element.
    writeln!(h, "<h2>Leaderboard</h2>")?;
    let cells = board.cells();
    leaderboard_table(&mut h, board, &cells, 0..TOP_ROWS.min(board.rows.len()))?;
    if board.rows.len() > TOP_ROWS {
        writeln!(
            h,
            "<details><summary>all {} trials</summary>",
            board.rows.len()
        )?;
        leaderboard_table(&mut h, board, &cells, TOP_ROWS..board.rows.len())?;
        writeln!(h, "</details>")?;
    }

    curves_section(&mut h, board, curves)?;
    let spec = std::fs::read_to_string(dir.spec_file()).unwrap_or_default();
    parameters_section(&mut h, board, &export::spec_axes(&spec))?;
    if let (Some(best), Some(c)) = (board.best(), confusion) {
        confusion_section(&mut h, &label(record, &best.trial), c)?;
    }
    writeln!(
        h,
        "<p class=\"note\">Generated by <code>sweep report</code>; regenerate at any time with <code>sweep report {}</code>.</p>",
        escape(&dir.root().display().to_string())
    )?;
    writeln!(h, "</body></html>")?;
    Ok(h)
}

/// Learning curves of the sweep's metric (on a log-error scale where that separates them)
/// and of the training loss.
fn curves_section(
    h: &mut String,
    board: &Leaderboard,
    curves: &[TrialCurves],
) -> anyhow::Result<()> {
    let metric = board.objective.metric.as_str();
    writeln!(h, "<h2>Learning curves</h2>")?;
    let axis = MetricAxis::for_metric(metric);
    writeln!(h, "<div class=\"charts\">")?;
    if axis == MetricAxis::LogError {
        writeln!(
            h,
            "<div><input type=\"checkbox\" id=\"logerr\" checked> <label for=\"logerr\">error on a log scale (separates the last tenths of a percent)</label>"
        )?;
        writeln!(
            h,
            "<div class=\"logerror\">{}</div>",
            inline_svg(&charts::metric(curves, metric, MetricAxis::LogError)?)
        )?;
        writeln!(
            h,
            "<div class=\"linear\">{}</div></div>",
            inline_svg(&charts::metric(curves, metric, MetricAxis::Linear)?)
        )?;
    } else {
        writeln!(
            h,
            "<div>{}</div>",
            inline_svg(&charts::metric(curves, metric, axis)?)
        )?;
    }
    if curves
        .iter()
        .any(|c| c.metrics.iter().any(|m| m.get("train_loss").is_some()))
    {
        writeln!(
            h,
            "<div>{}</div>",
            inline_svg(&charts::metric(curves, "train_loss", MetricAxis::Log)?)
        )?;
    }
    let drawn = curves.iter().filter(|c| !c.metrics.is_empty()).count();
    writeln!(
        h,
        "</div><p class=\"note\">The winner is the thick black line; the next best are in colour (the leaderboard's swatches), the rest faint grey. Pruned trials are faint and end where they were stopped.{}</p>",
        if drawn > charts::MAX_DRAWN {
            format!(
                " The {} lowest-ranked trials are not drawn.",
                drawn - charts::MAX_DRAWN
            )
        } else {
            String::new()
        }
    )?;

    Ok(())
}

/// Parameter importance, parallel coordinates and one scatter per searched parameter.
fn parameters_section(
    h: &mut String,
    board: &Leaderboard,
    axes: &[crate::sweep::search::Axis],
) -> anyhow::Result<()> {
    let metric = board.objective.metric.as_str();
    let ranked: Vec<(usize, &Row)> = board
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.rank.is_some() && r.value.is_some())
        .collect();
    let completed: Vec<(Vec<String>, f64)> = ranked
        .iter()
        .filter(|(_, r)| r.status == TrialStatus::Completed)
        .map(|(_, r)| (r.values.clone(), r.value.unwrap_or(f64::NAN)))
        .collect();
    let searched: Vec<String> = board
        .columns
        .iter()
        .filter(|c| *c != "label" || board.columns.len() == 1)
        .cloned()
        .collect();
    if !searched.is_empty() && !ranked.is_empty() {
        writeln!(h, "<h2>Which parameters mattered</h2>")?;
        let positions: Vec<usize> = searched
            .iter()
            .map(|c| board.columns.iter().position(|x| x == c).expect("a column"))
            .collect();
        let subset: Vec<(Vec<String>, f64)> = completed
            .iter()
            .map(|(v, x)| (positions.iter().map(|&p| v[p].clone()).collect(), *x))
            .collect();
        let importances = importance::ped_anova(&searched, &subset, &board.objective);
        if importances.is_empty() {
            writeln!(
                h,
                "<p class=\"note\">Parameter importance needs at least {} completed trials ({} so far).</p>",
                importance::MIN_TRIALS,
                completed.len()
            )?;
        } else {
            writeln!(
                h,
                "<div>{}</div><p class=\"note\">PED-ANOVA (Watanabe et al. 2023, Optuna's default): how differently each parameter is distributed among the best 10 % of the {} completed trials than among all of them.</p>",
                parallel::importance_bars(&importances),
                completed.len()
            )?;
        }
        let lines: Vec<parallel::Line> = ranked
            .iter()
            .map(|(i, r)| parallel::Line {
                cells: &r.values,
                value: r.value.unwrap_or(f64::NAN),
                position: *i,
                best: r.rank == Some(1),
            })
            .collect();
        writeln!(
            h,
            "<div class=\"wide\">{}</div><p class=\"note\">Every ranked trial as a line through its parameters and its {metric}; the winner black, the next best in colour.</p>",
            parallel::chart(&board.columns, metric, &lines)
        )?;

        writeln!(
            h,
            "<h2>Searched parameters against {metric}</h2><div class=\"charts\">"
        )?;
        for (c, column) in board.columns.iter().enumerate() {
            let points: Vec<(String, f64, usize, bool)> = sample(&ranked)
                .filter(|(_, r)| !r.values[c].is_empty() || column == "label")
                .map(|(i, r)| {
                    (
                        r.values[c].clone(),
                        r.value.unwrap_or(f64::NAN),
                        *i,
                        r.rank == Some(1),
                    )
                })
                .collect();
            let distinct: std::collections::BTreeSet<&str> =
                points.iter().map(|p| p.0.as_str()).collect();
            if distinct.len() < 2 {
                continue; // a value every ranked trial shares says nothing about the metric
            }
            writeln!(
                h,
                "<div>{}</div>",
                inline_svg(&charts::scatter(
                    column,
                    &points,
                    metric,
                    scale_of(column, axes, &points)
                )?)
            )?;
        }
        writeln!(h, "</div>")?;
    }

    Ok(())
}

/// How a parameter's axis maps its values, from the spec: log exactly when it is log-uniform,
/// or a list of positive numbers spanning more than a factor of 10; whole numbers for `int`
/// and lists of whole numbers; else linear.
fn scale_of(
    column: &str,
    axes: &[crate::sweep::search::Axis],
    points: &[(String, f64, usize, bool)],
) -> ticks::Scale {
    use crate::sweep::search::Domain;
    let path: Vec<String> = column.split('.').map(String::from).collect();
    match axes
        .iter()
        .find(|a| a.paths.contains(&path))
        .map(|a| &a.domain)
    {
        Some(Domain::LogUniform(..)) => return ticks::Scale::Log,
        Some(Domain::Uniform(..)) => return ticks::Scale::Linear,
        Some(Domain::Int(..)) => return ticks::Scale::Integer,
        _ => {}
    }
    let numbers: Vec<f64> = points.iter().filter_map(|p| p.0.parse().ok()).collect();
    let (lo, hi) = numbers
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if lo > 0.0 && hi / lo > 10.0 {
        ticks::Scale::Log
    } else if !numbers.is_empty() && numbers.iter().all(|x| x.fract() == 0.0) {
        ticks::Scale::Integer
    } else {
        ticks::Scale::Linear
    }
}

/// The best checkpoint's confusion matrix on the test set.
fn confusion_section(h: &mut String, best: &str, c: &EvalOutcome) -> anyhow::Result<()> {
    writeln!(
        h,
        "<h2>Best trial <code>{}</code>: confusion matrix</h2><p class=\"sub\">best checkpoint on the test set: {:.2}% ({}/{}); rows are true digits, columns predictions</p>",
        escape(best),
        c.accuracy,
        c.correct,
        c.total
    )?;
    let max_off = c
        .confusion
        .iter()
        .enumerate()
        .flat_map(|(t, row)| {
            row.iter()
                .enumerate()
                .filter(move |(p, _)| *p != t)
                .map(|(_, v)| *v)
        })
        .max()
        .unwrap_or(1)
        .max(1);
    write!(h, "<table class=\"confusion\"><tr><th></th>")?;
    for p in 0..c.confusion.len() {
        write!(h, "<th>{p}</th>")?;
    }
    writeln!(h, "</tr>")?;
    for (t, row) in c.confusion.iter().enumerate() {
        write!(h, "<tr><th>{t}</th>")?;
        for (p, v) in row.iter().enumerate() {
            let bg = if p == t {
                "#dff0d8".to_string()
            } else {
                let a = (*v as f64 / max_off as f64).sqrt();
                format!("rgba(217,83,79,{a:.2})")
            };
            write!(h, "<td style=\"background:{bg}\">{v}</td>")?;
        }
        writeln!(h, "</tr>")?;
    }
    writeln!(h, "</table>")?;
    Ok(())
}
