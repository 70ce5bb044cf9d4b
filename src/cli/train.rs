//! `sweep train` and `sweep eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{parse_device, parse_override, timestamped_run_dir};
use crate::store::run_dir::{CHECKPOINT_FILE, RunDir, RunStatus};
use crate::train::config::{Override, TrialConfig};
use crate::train::engine::{self, EvalOutcome};
use crate::train::model::CLASSES;
use crate::train::{self as trainer, Observer, TrainContext, progress};

/// Exit code of a diverged run.
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of an interrupted run (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The trial configuration (see sweeps/examples/ and the README's TrialConfig reference).
    config: PathBuf,
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
}

/// `sweep train`.
pub fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = TrialConfig::load(&args.config, &args.overrides)?;
    let device = parse_device(&args.device)?;
    let out = args.out.unwrap_or_else(timestamped_run_dir);
    let run = RunDir::create(&out, args.overwrite)?;
    let stop = super::stop_on_signals()?;
    let mut observer: Box<dyn Observer> = if args.events {
        Box::new(progress::Events::stdout())
    } else {
        progress::for_stderr()
    };
    if !args.events {
        eprintln!("run directory: {}", out.display());
    }
    let ctx = TrainContext {
        device: &device,
        stop: &stop,
        run: &run,
    };
    let summary = trainer::train(&config, &ctx, observer.as_mut())?;
    Ok(ExitCode::from(exit_code(summary.status)))
}

/// The exit code of a run that ended with `status`.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Diverged => EXIT_DIVERGED,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
        RunStatus::Running | RunStatus::Failed => 1,
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory written by `sweep train` (config.toml + best.safetensors).
    run_dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: String,
}

#[derive(Serialize)]
struct EvalReport<'a> {
    run_dir: &'a std::path::Path,
    recorded_best_test_acc: Option<f64>,
    #[serde(flatten)]
    outcome: &'a EvalOutcome,
}

/// `sweep eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::open(&args.run_dir)?;
    let config = run.read_config()?;
    let device = parse_device(&args.device)?;
    let model = trainer::load_model(&config.model, &run.file(CHECKPOINT_FILE), &device)?;
    let test = trainer::load_test_set(&config, &device)?;
    let outcome = engine::evaluate(&model, &test)?;
    let recorded = run.read_summary().ok().map(|s| s.best_test_acc);
    if args.json {
        let report = EvalReport {
            run_dir: &args.run_dir,
            recorded_best_test_acc: recorded,
            outcome: &outcome,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "test accuracy {:.2}% ({}/{}), loss {:.4}",
            outcome.accuracy, outcome.correct, outcome.total, outcome.loss
        );
        if let Some(r) = recorded {
            println!("recorded best test accuracy {r:.2}%");
        }
        println!("{}", confusion_table(&outcome));
    }
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
