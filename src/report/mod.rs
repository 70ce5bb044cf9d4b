//! `sweep report`: one self-contained, interactive HTML page per sweep (drawn with the
//! embedded Plotly.js from the numbers [`data`] gathers) and `curves.svg`, a static picture
//! of the learning curves.

mod charts;
mod data;
pub mod export;
mod page;
pub mod ticks;

use std::path::PathBuf;

use candle_core::Device;

use crate::leaderboard::Leaderboard;
use crate::store::atomic;
use crate::store::run_dir::{CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, RunDir};
use crate::store::sweep_dir::SweepDir;
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
            best: board.best().is_some_and(|b| b.trial == r.trial),
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
    let report = data::build(data::Inputs {
        dir: dir.root().display().to_string(),
        record: &record,
        board: &board,
        spec: crate::sweep::spec::SearchFacts::of_saved(&dir.spec_file()),
        confusion: confusion.as_ref(),
        selection_html: selection_note(dir, &board),
        live,
    });
    let html = page::render(&report)?;
    let files = ReportFiles {
        html: dir.root().join("report.html"),
        curves: dir.root().join("curves.svg"),
    };
    atomic::write(
        &files.curves,
        charts::curves(&curves, &board.objective.metric)?,
    )?;
    if let Some(svg) = pareto_svg(&board)? {
        atomic::write(&dir.root().join("pareto.svg"), svg)?;
    }
    atomic::write(&files.html, html)?;
    Ok(files)
}

/// `pareto.svg` of a sweep with several objectives: its first two objectives, every completed
/// trial with both values.
fn pareto_svg(board: &Leaderboard) -> anyhow::Result<Option<String>> {
    let Some(o) = &board.objectives else {
        return Ok(None);
    };
    let best = board.best().map(|b| b.trial.as_str());
    let dots: Vec<charts::ParetoDot> = board
        .rows
        .iter()
        .filter(|r| r.status == TrialStatus::Completed)
        .filter_map(|r| {
            let x = r.objective_values.first().copied().flatten()?;
            let y = r.objective_values.get(1).copied().flatten()?;
            Some(charts::ParetoDot {
                x,
                y,
                front: r.feasible() && r.pareto_rank == Some(1),
                infeasible: !r.feasible(),
                best: Some(r.trial.as_str()) == best,
            })
        })
        .collect();
    let name = |k: usize| o.objectives[k].to_string();
    let caption = format!(
        "{} completed trials, {} on the front",
        dots.len(),
        dots.iter().filter(|d| d.front).count()
    );
    charts::pareto(&dots, &name(0), &name(1), &caption).map(Some)
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

/// Which set selected the kept checkpoints and the ranking, and which set the numbers report.
fn selection_note(dir: &SweepDir, board: &Leaderboard) -> String {
    let metric = page::escape(&board.objective.metric);
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
