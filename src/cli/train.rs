//! `sweep train` and `sweep eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{parse_override, timestamped_run_dir};
use crate::store::run_dir::RunDir;
use crate::train::EvalSplit;
use crate::train::config::{Override, TrialConfig};
use crate::train::cpu::kernels::Products;
use crate::train::engine::EvalOutcome;
use crate::train::model::CLASSES;
use crate::train::{self as trainer, Observer, TrainContext, progress};
use crate::trial::{Mode, Objective};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["config", "resume"])))]
pub struct TrainArgs {
    #[command(flatten)]
    pub threads: super::Threads,
    /// The trial configuration (see sweeps/examples/ and the README's TrialConfig reference).
    config: Option<PathBuf>,
    /// Continue an interrupted run in DIR from its last finished epoch (with the configuration
    /// and metric it started with).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "overwrite", "overrides"])]
    resume: Option<PathBuf>,
    /// Output directory [default: results/runs/<timestamp>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace a run already in --out.
    #[arg(long)]
    overwrite: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: String,
    /// Override a key of the config by its dotted path, e.g. --set optimizer.lr=0.1 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    overrides: Vec<Override>,
    /// Print one JSON event per line on stdout (start, each epoch, end) instead of a progress bar.
    #[arg(long)]
    events: bool,
    /// The metric that selects the kept checkpoint (best.safetensors) [default: val_acc with
    /// a validation split, else test_acc].
    #[arg(long, value_name = "NAME")]
    metric: Option<String>,
    /// Whether the metric is minimised or maximised [default: from its name].
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<ModeArg>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Min => Mode::Min,
            ModeArg::Max => Mode::Max,
        }
    }
}

/// `sweep train`.
pub fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let (config, out, run, earlier) = match (&args.config, &args.resume) {
        (_, Some(dir)) => {
            let run = RunDir::open(dir)?;
            if !trainer::state::exists(&run) {
                anyhow::bail!(
                    "{}: nothing to resume (no {}): the run ended, or never finished an epoch",
                    dir.display(),
                    crate::store::run_dir::STATE_META_FILE
                );
            }
            let config = TrialConfig::load(&run.file(crate::store::run_dir::CONFIG_FILE), &[])?;
            let earlier = run.read_summary().ok().map(|s| s.objective);
            (config, dir.clone(), run, earlier)
        }
        (Some(path), None) => {
            let config = TrialConfig::load(path, &args.overrides)?;
            // A vendor BLAS this machine lacks fails here, before the run directory is made.
            Products::load(config.blas).map_err(|e| {
                anyhow::anyhow!(
                    "{}: blas = \"{}\": {e:#}",
                    path.display(),
                    config.blas.name()
                )
            })?;
            let out = args.out.clone().unwrap_or_else(timestamped_run_dir);
            let run = RunDir::create(&out, args.overwrite)?;
            (config, out, run, None)
        }
        (None, None) => anyhow::bail!("give a configuration, or --resume DIR"),
    };
    let objective = match (&args.metric, earlier) {
        (Some(m), _) => Objective::new(m, args.mode.map(Mode::from))
            .map_err(|e| anyhow::anyhow!("--metric: {e}"))?,
        (None, Some(o)) => o,
        (None, None) => trainer::default_objective(&config),
    };
    let device = crate::devices::open(&args.device)?;
    let stop = super::stop_on_signals()?;
    let name = out
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let mut observer: Box<dyn Observer> = if args.events {
        Box::new(crate::events::Events::stdout(&name))
    } else {
        progress::for_stderr()
    };
    if !args.events {
        note!("run directory: {}", out.display());
    }
    let ctx = TrainContext {
        device: &device,
        stop: &stop,
        run: &run,
        objective: &objective,
        resume: args.resume.is_some(),
    };
    let summary = trainer::train(&config, &ctx, observer.as_mut())?;
    Ok(ExitCode::from(summary.status.exit_code()))
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub threads: super::Threads,
    /// A run directory written by `sweep train` or a sweep's trial (config.toml +
    /// best.safetensors).
    run_dir: PathBuf,
    /// Evaluate on one set only [default: the validation split, if the run has one, and the
    /// test set].
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: String,
}

/// `--split`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    /// The training images held out by data.val_size.
    Val,
    /// The test set.
    Test,
}

#[derive(Serialize)]
struct EvalReport<'a> {
    run_dir: &'a std::path::Path,
    /// The epoch whose checkpoint was kept, and what was measured then.
    best_epoch: Option<usize>,
    recorded: Option<crate::trial::Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    val: Option<&'a EvalOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<&'a EvalOutcome>,
}

/// `sweep eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.run_dir.join("journal.jsonl").is_file() {
        anyhow::bail!(
            "{} is a sweep, not a run: evaluate its winner with `sweep eval {}`, or a trial with \
             `sweep eval {}/trials/<id>`",
            args.run_dir.display(),
            args.run_dir.join("best").display(),
            args.run_dir.display()
        );
    }
    let run = RunDir::open(&args.run_dir)?;
    let device = crate::devices::open(&args.device)?;
    let splits = match args.split {
        Some(SplitArg::Val) => vec![EvalSplit::Val],
        Some(SplitArg::Test) => vec![EvalSplit::Test],
        None => vec![EvalSplit::Val, EvalSplit::Test],
    };
    let results = trainer::evaluate_checkpoint(&run, &splits, &device)?;
    if results.is_empty() {
        anyhow::bail!(
            "{}: this run has no validation split (data.val_size is 0)",
            args.run_dir.display()
        );
    }
    let summary = run.read_summary().ok();
    let get = |s: EvalSplit| results.iter().find(|(x, _)| *x == s).map(|(_, o)| o);
    if args.json {
        let report = EvalReport {
            run_dir: &args.run_dir,
            best_epoch: summary.as_ref().map(|s| s.best_epoch),
            recorded: summary.as_ref().map(|s| s.best.clone()),
            val: get(EvalSplit::Val),
            test: get(EvalSplit::Test),
        };
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = &summary {
        say!(
            "checkpoint of epoch {} (kept by {})",
            s.best_epoch,
            s.objective
        );
    }
    for (split, o) in &results {
        let name = split.name();
        say_raw!(
            "{name} accuracy {:.2}% ({}/{}), loss {:.4}",
            o.accuracy,
            o.correct,
            o.total,
            o.loss
        );
        match summary
            .as_ref()
            .and_then(|s| s.best.get(&format!("{name}_acc")))
        {
            Some(r) => say!("  (recorded at that epoch: {r:.2}%)"),
            None => say!(),
        }
    }
    let (split, last) = results.last().expect("not empty");
    say!("{} set {}", split.name(), confusion_table(last));
    Ok(ExitCode::SUCCESS)
}

/// The confusion matrix as text: rows are true digits, columns predictions.
fn confusion_table(o: &EvalOutcome) -> String {
    let mut s = String::from("confusion matrix (rows: true digit, columns: predicted)\n     ");
    for p in 0..CLASSES {
        s.push_str(&format!("{p:>6}"));
    }
    for (t, row) in o.confusion.iter().enumerate() {
        s.push_str(&format!("\n{t:>4} "));
        for c in row {
            s.push_str(&format!("{c:>6}"));
        }
    }
    s
}
