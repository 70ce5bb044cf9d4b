//! `sweep rerun`: trains one of a sweep's trials again (the winner by default) from its exact
//! configuration (or, for a command trial, with its exact parameters), into `reruns/` of the
//! sweep directory.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};

use super::spec::{CommandSpec, param_paths};
use crate::leaderboard::Leaderboard;
use crate::store::atomic;
use crate::store::run_dir::{CONFIG_FILE, RunDir};
use crate::store::sweep_dir::{PARAMS_JSON_FILE, PARAMS_TOML_FILE, SweepDir};
use crate::train::config::overrides::get_path;
use crate::train::config::{Override, SourceFile, TrialConfig, apply_overrides};
use crate::train::{self as trainer, Observer, TrainContext};
use crate::trial::{CommandTask, TrialSummary, TrialTask};

/// What to rerun and how.
pub struct Rerun<'a> {
    /// Which trial.
    pub which: Which,
    /// Overrides of its configuration (a seed, for instance).
    pub overrides: &'a [Override],
    /// The training device (`cpu`, `cuda:N`).
    pub device: &'a str,
    /// Set by a signal handler to stop training.
    pub stop: &'a AtomicBool,
}

/// Which trial a rerun retrains.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    /// The trial of this rank on the leaderboard (1 = the winner).
    Rank(usize),
    /// The trial with this id (or label), ranked or not.
    Trial(String),
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

/// Runs a command trial's program again, with its parameters (and the overrides), into a new
/// rerun directory; returns the directory and how the run ended.
fn rerun_command(
    dir: &SweepDir,
    trial_dir: &std::path::Path,
    task: &TrialTask,
    cmd: &CommandTask,
    rerun: &Rerun,
    observer: &mut dyn Observer,
) -> anyhow::Result<(PathBuf, TrialSummary)> {
    let source = trial_dir.join(PARAMS_TOML_FILE);
    let params = SourceFile::read(&source)?;
    let mut table = params.table()?;
    // A key the trial's parameters lack would reach the program nowhere: refuse it.
    if let Some(o) = rerun
        .overrides
        .iter()
        .find(|o| get_path(&table, &o.path).is_none())
    {
        let mut keys = param_paths(&table);
        keys.sort();
        bail!(
            "--set {}: trial {} has no parameter `{}`; its parameters are {} ({})",
            o,
            task.id,
            o.key(),
            keys.join(", "),
            source.display()
        );
    }
    apply_overrides(&mut table, rerun.overrides).map_err(|e| params.error_at(&e.0, e.1))?;
    let out = std::path::absolute(dir.new_rerun_dir(&task.id)?)?;
    atomic::write(&out.join(PARAMS_TOML_FILE), toml::to_string(&table)?)?;
    atomic::write(
        &out.join(PARAMS_JSON_FILE),
        serde_json::to_string_pretty(&table)? + "\n",
    )?;
    let spec = CommandSpec {
        run: cmd.template.clone(),
        prefix: cmd.prefix.clone(),
        grace_seconds: cmd.grace_seconds,
        params: table.clone(),
    };
    let rerun_task = TrialTask {
        command: Some(CommandTask {
            argv: spec.render(&table, &out, &task.id),
            // `--set epochs=N` changes how many epochs the progress counts.
            epochs: crate::sweep::plan::TrialInput::Command(table.clone()).epochs(),
            ..cmd.clone()
        }),
        attempt: 1,
        ..task.clone()
    };
    note!(
        "running trial {} again with the parameters in {} (the command: {}) into {}",
        task.id,
        source.display(),
        spec.render(&table, &out, &task.id).join(" "),
        out.display()
    );
    let status = crate::trial_process::command::run(
        &out,
        &rerun_task,
        rerun_task.command.as_ref().expect("set above"),
        rerun.device,
        rerun.stop,
        observer,
    )?;
    let mut summary = RunDir::open(&out)?.read_summary()?;
    summary.status = status;
    Ok((out, summary))
}

/// Retrains trial `rerun.which` of the sweep in `dir`, reporting progress to `observer`.
pub fn rerun(
    dir: &SweepDir,
    rerun: &Rerun,
    observer: &mut dyn Observer,
) -> anyhow::Result<RerunResult> {
    let record = dir.load_record(dir.is_driven())?;
    let board = Leaderboard::build(&record);
    let row = match &rerun.which {
        Which::Rank(rank) => board.by_rank(*rank).with_context(|| {
            let ranked = board.rows.iter().filter(|r| r.rank.is_some()).count();
            format!(
                "{}: no trial has rank {rank} ({ranked} trials are ranked)",
                dir.root().display()
            )
        })?,
        Which::Trial(id) => board
            .rows
            .iter()
            .find(|r| r.trial == *id || r.label.as_deref() == Some(id.as_str()))
            .with_context(|| {
                format!(
                    "{}: no trial {id}; `sweep leaderboard {}` lists its {} trials",
                    dir.root().display(),
                    dir.root().display(),
                    board.rows.len()
                )
            })?,
    };
    let trial_dir = dir.trial_dir(&row.trial);
    let task = crate::trial_process::read_task(&trial_dir)?;
    if let Some(cmd) = &task.command {
        let (out, summary) = rerun_command(dir, &trial_dir, &task, cmd, rerun, observer)?;
        return Ok(RerunResult {
            trial: row.trial.clone(),
            original: (row.value, row.best_epoch),
            out,
            summary,
        });
    }
    let source = trial_dir.join(CONFIG_FILE);
    let config = TrialConfig::load(&source, rerun.overrides)?;
    let out = dir.new_rerun_dir(&row.trial)?;
    let run = RunDir::create(&out, false)?;
    let device = crate::devices::open(rerun.device)?;
    note!(
        "rerunning trial {} (rank {}, {} {}) from {} into {}",
        row.trial,
        row.rank.map_or("none".into(), |r| r.to_string()),
        board.objective.metric,
        row.value.map_or("-".into(), crate::text::format_metric),
        source.display(),
        out.display()
    );
    let ctx = TrainContext {
        device: &device,
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
