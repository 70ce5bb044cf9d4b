//! `sweep rerun`: trains one of a sweep's trials again (the winner by default) from its exact
//! configuration, into `reruns/` of the sweep directory.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::store::leaderboard::Leaderboard;
use crate::store::run_dir::{CONFIG_FILE, RunDir};
use crate::store::sweep_dir::SweepDir;
use crate::train::config::{Override, TrialConfig};
use crate::train::{self as trainer, Observer, TrainContext};
use crate::trial::TrialSummary;

/// What to rerun and how.
pub struct Rerun<'a> {
    /// Which trial: its rank on the leaderboard (1 = the winner).
    pub rank: usize,
    /// Overrides of its configuration (a seed, for instance).
    pub overrides: &'a [Override],
    /// The training device.
    pub device: &'a candle_core::Device,
    /// Set by a signal handler to stop training.
    pub stop: &'a AtomicBool,
}

/// What a rerun produced.
pub struct RerunResult {
    /// The trial rerun.
    pub trial: String,
    /// Its original best value and epoch.
    pub original: (Option<f64>, Option<usize>),
    /// The rerun's directory.
    pub out: PathBuf,
    /// How the rerun ended.
    pub summary: TrialSummary,
}

/// Retrains trial `rerun.rank` of the sweep in `dir`, reporting progress to `observer`.
pub fn rerun(
    dir: &SweepDir,
    rerun: &Rerun,
    observer: &mut dyn Observer,
) -> anyhow::Result<RerunResult> {
    let record = dir.load_record(dir.is_locked())?;
    let board = Leaderboard::build(&record);
    let row = board.by_rank(rerun.rank).with_context(|| {
        let ranked = board.rows.iter().filter(|r| r.rank.is_some()).count();
        format!(
            "{}: no trial has rank {} ({ranked} trials are ranked)",
            dir.root().display(),
            rerun.rank
        )
    })?;
    let source = dir.trial_dir(&row.trial).join(CONFIG_FILE);
    let config = TrialConfig::load(&source, rerun.overrides)?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let out = dir.reruns_dir().join(format!("{}-{stamp}", row.trial));
    let run = RunDir::create(&out, false)?;
    eprintln!(
        "rerunning trial {} (rank {}, {} {}) from {} into {}",
        row.trial,
        rerun.rank,
        board.objective.metric,
        row.value.map_or("-".into(), crate::trial::format_metric),
        source.display(),
        out.display()
    );
    let ctx = TrainContext {
        device: rerun.device,
        stop: rerun.stop,
        run: &run,
        objective: &board.objective,
        resume: false,
    };
    let summary = trainer::train(&config, &ctx, observer)?;
    Ok(RerunResult {
        trial: row.trial.clone(),
        original: (row.value, row.best_epoch),
        out,
        summary,
    })
}
