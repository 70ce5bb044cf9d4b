//! Command-line interface: argument parsing and dispatch; the work happens in the modules
//! each command calls.

mod sweep;
mod train;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::train::config::{Blas, Override};

/// Hyperparameter sweeps of MNIST MLPs with candle: describe a sweep in TOML, run every trial
/// on the CPU or GPUs, read the ranked leaderboard, rerun the winner.
#[derive(Debug, Parser)]
#[command(name = "sweep", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Compute threads of the commands that train or evaluate (train, eval, rerun, trial,
    /// bench), which also take it after their name [default: every core]. `run` and `worker`
    /// set each trial's with --threads-per-trial instead.
    #[arg(long, value_name = "N", env = "SWEEP_THREADS")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train one fully specified configuration (a TrialConfig TOML file).
    Train(train::TrainArgs),
    /// Evaluate a run's best checkpoint on its validation split and the test set: accuracy and confusion matrix.
    Eval(train::EvalArgs),
    /// Validate a sweep spec and print its trials, without running anything.
    Plan(sweep::PlanArgs),
    /// Run (or resume) a sweep: every trial, ranked leaderboard, best checkpoint.
    Run(sweep::RunArgs),
    /// Join a sweep as a pull worker: take trials from its folder and run them until none is
    /// left, with no orchestrator (start as many as you like, on any machines that see it).
    Worker(workers::WorkerArgs),
    /// Start pull workers on a scheduler (a Slurm job array) and return at once.
    Submit(workers::SubmitArgs),
    /// Show where a sweep stands: trial counts, running and failed trials, the best so far.
    Status(sweep::StatusArgs),
    /// Print a sweep's ranked leaderboard.
    Leaderboard(sweep::LeaderboardArgs),
    /// Stop running trials of a sweep (they end as pruned, keeping their best checkpoints);
    /// the sweep goes on with the others.
    Stop(sweep::StopArgs),
    /// Retrain a sweep's trial (the winner by default) from its exact configuration.
    Rerun(sweep::RerunArgs),
    /// Rebuild a sweep's journal state, leaderboard and best/ from its trial directories.
    Collect(sweep::CollectArgs),
    /// Export a sweep for other tools: an Optuna journal (optuna-dashboard) or a tidy CSV.
    Export(sweep::ExportArgs),
    /// Set aside the corrupt lines of a sweep's journal (keeping a backup) so that it can run again.
    Repair(sweep::RepairArgs),
    /// Write a sweep's report.html (leaderboard, curves, parameters, confusion matrix) and curves.svg.
    Report(sweep::ReportArgs),
    /// Run one prepared trial of a sweep (what the local executor and each Slurm task run).
    Trial(sweep::TrialArgs),
    /// Measure training speed against the step's matrix products, augmentation, evaluation, memory.
    Bench(BenchArgs),
    /// List the devices this binary can train on (CUDA devices, or why there are none).
    Devices,
}

fn devices() -> anyhow::Result<ExitCode> {
    let cpu_name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    say!(
        "cpu: {} cores available ({cpu_name})",
        crate::train::threads::available()
    );
    match crate::devices::cuda() {
        crate::devices::Cuda::NotBuilt => {
            say!("cuda: cpu only: built without cuda (see scripts/build-cuda.sh)")
        }
        crate::devices::Cuda::NoDevice(why) => say!("cuda: no CUDA device found ({why})"),
        crate::devices::Cuda::Devices(list) => {
            for d in list {
                say!(
                    "cuda:{}: {} ({:.1} GiB)",
                    d.index,
                    d.name,
                    d.memory_bytes as f64 / (1u64 << 30) as f64
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    #[command(flatten)]
    threads: Threads,
    /// Timed training steps.
    #[arg(long, default_value_t = 200, value_name = "N")]
    steps: usize,
    /// Directory with the MNIST IDX files.
    #[arg(long, default_value = "data/mnist", value_name = "DIR")]
    data_dir: PathBuf,
    /// Also time one full epoch without and with strong augmentation.
    #[arg(long)]
    epoch: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also time the step's products with MKL: the path of its libmkl_rt (the pip `mkl`
    /// wheel puts it in the venv's lib/). A path that does not load is an error.
    #[arg(long, value_name = "LIBMKL_RT")]
    mkl: Option<PathBuf>,
    /// Who computes the products in the timed step and epoch: sweep's kernels, or a vendor
    /// BLAS as a trial config's `blas` key asks (MKL from --mkl when given, else found as
    /// training finds it).
    #[arg(long, value_enum, default_value = "sweep", value_name = "NAME")]
    blas: Blas,
    /// Also time PyTorch (the step's products, a step, and with --epoch an epoch) with this
    /// Python, which must have torch [default: python3 on the PATH, skipped without torch].
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let report = crate::bench::run(&crate::bench::BenchOptions {
        steps: args.steps.max(1),
        data_dir: args.data_dir,
        epoch: args.epoch,
        mkl: args.mkl,
        blas: args.blas,
        python: args.python,
    })?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say_raw!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--threads` of a command that trains or evaluates, after its name (it wins over the one
/// before the command's name and over `SWEEP_THREADS`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Threads {
    /// Compute threads for training and evaluation [default: every core, or SWEEP_THREADS].
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<usize>,
}

impl Command {
    /// The `--threads` given after the command's name, for the commands that take one.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Train(a) => a.threads.threads,
            Command::Eval(a) => a.threads.threads,
            Command::Rerun(a) => a.threads.threads,
            Command::Trial(a) => a.threads.threads,
            Command::Bench(a) => a.threads.threads,
            _ => None,
        }
    }
}

/// Exit code of a command that ran into an error.
const EXIT_ERROR: u8 = 1;

/// Entry point of the `sweep` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::train::threads::init(cli.command.threads().or(cli.threads));
    if let Err(e) = crate::train::cpu::family::check_env() {
        note!("error: {e:#}");
        return ExitCode::from(EXIT_ERROR);
    }
    let result = match cli.command {
        Command::Train(args) => train::train(args),
        Command::Eval(args) => train::eval(args),
        Command::Plan(args) => sweep::plan(args),
        Command::Run(args) => sweep::run(args),
        Command::Status(args) => sweep::status(args),
        Command::Worker(args) => workers::worker(args),
        Command::Submit(args) => workers::submit(args),
        Command::Leaderboard(args) => sweep::leaderboard(args),
        Command::Rerun(args) => sweep::rerun(args),
        Command::Stop(args) => sweep::stop(args),
        Command::Collect(args) => sweep::collect(args),
        Command::Export(args) => sweep::export(args),
        Command::Repair(args) => sweep::repair(args),
        Command::Report(args) => sweep::report(args),
        Command::Trial(args) => sweep::trial(args),
        Command::Bench(args) => bench(args),
        Command::Devices => devices(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            note!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A flag that SIGINT and SIGTERM set, so that training stops after its current step and
/// saves its state.
fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .context("cannot install signal handler")?;
    }
    Ok(stop)
}

// The vocabulary `sweep run`, `sweep worker` and `sweep submit` share.

/// Exit code of a sweep in which some trials failed (after retries).
pub const EXIT_TRIALS_FAILED: u8 = 2;

/// What `sweep run` prints off a terminal.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProgressName {
    /// A line per trial that ends, with its parameters and result.
    Trials,
    /// Also a line per trial that starts and per epoch.
    Epochs,
}

impl ProgressName {
    /// How much a run prints, with `--quiet` or not.
    pub fn verbosity(self, quiet: bool) -> crate::sweep::progress::Verbosity {
        use crate::sweep::progress::Verbosity;
        match (quiet, self) {
            (true, _) => Verbosity::Quiet,
            (false, ProgressName::Epochs) => Verbosity::Epochs,
            (false, ProgressName::Trials) => Verbosity::Trials,
        }
    }
}

/// Parses "90", "90s", "30m", "2h", "1h30m", "500ms".
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{s}` is not a duration like 90s, 30m, 2h or 1h30m");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    if let Some(ms) = s.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
        return Ok(std::time::Duration::from_millis(ms));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Prints the top of the leaderboard and where the results are, and writes the HTML report.
pub fn print_results(
    dir: &crate::store::sweep_dir::SweepDir,
    board: &crate::leaderboard::Leaderboard,
) {
    let mut top = board.clone();
    top.truncate(10);
    say!("{}", crate::text::text_table(&top.header(), &top.cells()));
    if board.rows.len() > 10 {
        say!("... {} more rows", board.rows.len() - 10);
    }
    say!("\nleaderboard: {}", dir.leaderboard_file().display());
    match crate::report::write(dir) {
        Ok(files) => say!("report: {}", files.html.display()),
        Err(e) => note!("warning: no report: {e:#}"),
    }
    if board.objectives.is_some() {
        say!(
            "pareto front: {} ({})",
            dir.pareto_file().display(),
            crate::text::count(board.front().rows.len(), "trial")
        );
    }
    match board.best() {
        Some(best) => say!(
            "best: {} ({}) by {} -> {}/  (rerun it: sweep rerun {}; any trial: --trial ID)",
            best.trial,
            board.describe_values(best),
            board.best_rule(),
            dir.best_dir().display(),
            dir.root().display()
        ),
        None => {
            if let Some(why) = board.why_no_best() {
                say!("best: none ({why})");
            }
        }
    }
}

/// Parses `--set key=value`.
fn parse_override(s: &str) -> Result<Override, String> {
    s.parse()
}

/// A default output directory under `results/runs/` named by the current time.
fn timestamped_run_dir() -> PathBuf {
    PathBuf::from("results/runs").join(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
}
