//! `sweep plan`, `run`, `status`, `leaderboard` and `rerun`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::{parse_override, train::EXIT_INTERRUPTED};
use crate::exec::RunEnd;
use crate::exec::local::LocalOptions;
use crate::exec::progress::human_duration;
use crate::exec::slots::{DeviceSpec, parse_device_list};
use crate::exec::slurm::{SlurmOptions, TaskRecord};
use crate::store::journal::TrialStatus;
use crate::store::leaderboard::{Csv, Exporter, Json, Leaderboard, Markdown};
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::SweepDir;
use crate::sweep::study::{self, Backend, RunOptions};
use crate::train::config::{Override, TrialConfig};
use crate::train::{self as trainer, TrainContext, progress};

/// Exit code of a sweep in which some trials failed (after retries).
const EXIT_TRIALS_FAILED: u8 = 2;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep spec (TOML).
    spec: PathBuf,
}

/// `sweep plan`.
pub fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (spec, plan) = study::plan(&args.spec)?;
    if let Some(d) = &spec.description {
        println!("{d}");
    }
    println!("{}", plan.table());
    let dup = if plan.duplicates > 0 {
        format!(" ({} duplicate draws dropped)", plan.duplicates)
    } else {
        String::new()
    };
    println!(
        "{} trials{dup}; results go to results/{}/ (ranked by {})",
        plan.trials.len(),
        plan.name,
        plan.metric.name()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep spec (TOML). Running it again resumes: finished trials are kept.
    spec: PathBuf,
    /// Results root; the sweep goes to <DIR>/<name>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Devices: auto (every CUDA device, else the CPU), cpu, or a list like cuda:0,cuda:1.
    #[arg(long, default_value = "auto", value_name = "DEVICES")]
    devices: String,
    /// Trials at a time per device [default: CPU cores / threads per trial on the CPU, 1 per GPU].
    #[arg(long, value_name = "N")]
    per_device: Option<usize>,
    /// Compute threads per trial.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads_per_trial: usize,
    /// Run at most N of the unfinished trials, then stop.
    #[arg(long, value_name = "N")]
    max_trials: Option<usize>,
    /// Stop a trial that runs longer than this (e.g. 90s, 30m, 2h, 1h30m) and record a timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout_per_trial: Option<Duration>,
    /// Extra attempts for a trial that crashes or times out (local backend).
    #[arg(long, default_value_t = 1, value_name = "N")]
    retries: u32,
    /// Where trials run: local child processes, or one Slurm job array.
    #[arg(long, value_enum, default_value = "local")]
    backend: BackendName,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// Backends of `sweep run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// Child processes on this machine (CPU or GPUs).
    Local,
    /// One Slurm job array (`sbatch --array`); trials run on the cluster.
    Slurm,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Slurm backend (--backend slurm)")]
struct SlurmArgs {
    /// At most P array tasks at once (--array=...%P).
    #[arg(long, value_name = "P")]
    array_parallelism: Option<usize>,
    /// GPUs per trial (--gres=gpu:N).
    #[arg(long, default_value_t = 0, value_name = "N")]
    gpus_per_trial: usize,
    /// CPUs per trial (--cpus-per-task), also its compute threads.
    #[arg(long, default_value_t = 1, value_name = "N")]
    cpus_per_trial: usize,
    /// Memory per trial (--mem), e.g. 4G.
    #[arg(long, value_name = "SIZE")]
    mem: Option<String>,
    /// Time limit per trial (--time), e.g. 2:00:00.
    #[arg(long, value_name = "LIMIT")]
    time: Option<String>,
    /// Partition (--partition).
    #[arg(long, value_name = "NAME")]
    partition: Option<String>,
    /// An extra #SBATCH argument, verbatim (repeatable), e.g. --sbatch-arg=--qos=high.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Print the generated sbatch script and submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// On Ctrl-C, cancel the job (scancel) without asking.
    #[arg(long)]
    cancel_on_exit: bool,
    /// How often to poll squeue (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    poll: Duration,
}

/// Parses "90", "90s", "30m", "2h", "1h30m", "500ms".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration like 90s, 30m, 2h or 1h30m");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if let Some(ms) = s.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
        return Ok(Duration::from_millis(ms));
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
    Ok(Duration::from_secs(total))
}

/// Resolves `--devices auto|cpu|cuda:...` against what this binary and machine offer.
fn resolve_devices(arg: &str) -> anyhow::Result<Vec<DeviceSpec>> {
    let cuda = crate::devices::cuda();
    if arg == "auto" {
        let gpus = cuda.devices();
        return Ok(if gpus.is_empty() {
            vec![DeviceSpec::Cpu]
        } else {
            gpus.iter().map(|d| DeviceSpec::Cuda(d.index)).collect()
        });
    }
    let devices = parse_device_list(arg).map_err(|e| anyhow::anyhow!("--devices {arg}: {e}"))?;
    for d in &devices {
        if let DeviceSpec::Cuda(i) = d {
            match &cuda {
                crate::devices::Cuda::NotBuilt => {
                    bail!(
                        "--devices {arg}: this binary was built without CUDA (see scripts/build-cuda.sh)"
                    )
                }
                crate::devices::Cuda::NoDevice(why) => {
                    bail!("--devices {arg}: no CUDA device: {why}")
                }
                crate::devices::Cuda::Devices(list) if !list.iter().any(|g| g.index == *i) => {
                    bail!(
                        "--devices {arg}: there is no {d} (this machine has {} CUDA devices)",
                        list.len()
                    )
                }
                _ => {}
            }
        }
    }
    Ok(devices)
}

/// `sweep run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let devices = resolve_devices(&args.devices)?;
    if args.threads_per_trial == 0 {
        bail!("--threads-per-trial must be at least 1");
    }
    let per_device = match (args.per_device, devices[0]) {
        (Some(0), _) => bail!("--per-device must be at least 1"),
        (Some(n), _) => n,
        (None, DeviceSpec::Cpu) => {
            (crate::train::threads::available() / args.threads_per_trial).max(1)
        }
        (None, DeviceSpec::Cuda(_)) => 1,
    };
    let exe = std::env::current_exe().context("cannot find the sweep binary")?;
    let backend = match args.backend {
        BackendName::Local => Backend::Local(LocalOptions {
            devices: devices.clone(),
            per_device,
            threads_per_trial: args.threads_per_trial,
            timeout: args.timeout_per_trial,
            retries: args.retries,
            exe,
        }),
        BackendName::Slurm => {
            let s = args.slurm;
            if s.cpus_per_trial == 0 {
                bail!("--cpus-per-trial must be at least 1");
            }
            let slurm = SlurmOptions {
                array_parallelism: s.array_parallelism,
                gpus_per_trial: s.gpus_per_trial,
                cpus_per_trial: s.cpus_per_trial,
                mem: s.mem,
                time: s.time,
                partition: s.partition,
                sbatch_args: s.sbatch_args,
                cancel_on_exit: s.cancel_on_exit,
                poll: s.poll,
                exe,
            };
            if s.dry_run {
                print!(
                    "{}",
                    study::slurm_script(&args.spec, &args.results, &slurm)?
                );
                return Ok(ExitCode::SUCCESS);
            }
            Backend::Slurm(slurm)
        }
    };
    let banner = matches!(backend, Backend::Local(_)).then(|| {
        let names: Vec<String> = devices.iter().map(ToString::to_string).collect();
        format!(
            "running on {} ({per_device} trial{} per device, {} thread{} each)",
            names.join(", "),
            if per_device == 1 { "" } else { "s" },
            args.threads_per_trial,
            if args.threads_per_trial == 1 { "" } else { "s" },
        )
    });
    let opts = RunOptions {
        results: args.results,
        backend,
        max_trials: args.max_trials,
        terminal: std::io::stderr().is_terminal(),
        banner,
    };
    let report = study::run(&args.spec, &opts)?;
    finish_report(&report.dir, &report.leaderboard, report.end)
}

/// Prints the end-of-run summary (and writes the HTML report) and chooses the exit code.
fn finish_report(dir: &SweepDir, board: &Leaderboard, end: RunEnd) -> anyhow::Result<ExitCode> {
    let mut top = board.clone();
    top.truncate(10);
    println!("{}", crate::store::text_table(&top.header(), &top.cells()));
    let unfinished = board.rows.iter().filter(|r| !r.status.is_final()).count();
    println!("\nleaderboard: {}", dir.leaderboard_file().display());
    match crate::report::write(dir) {
        Ok(files) => println!("report: {}", files.html.display()),
        Err(e) => eprintln!("warning: no report: {e:#}"),
    }
    if let Some(best) = board.best() {
        println!(
            "best: {} ({} {:.2}) -> {}/  (rerun it: sweep rerun {})",
            best.trial,
            board.metric.name(),
            best.metric.unwrap_or(f64::NAN),
            dir.best_dir().display(),
            dir.root().display()
        );
    }
    Ok(match end {
        RunEnd::Detached => ExitCode::from(EXIT_INTERRUPTED),
        RunEnd::Interrupted => {
            eprintln!(
                "interrupted: {unfinished} trials unfinished; run the same command again to resume"
            );
            ExitCode::from(EXIT_INTERRUPTED)
        }
        RunEnd::Drained if unfinished > 0 => {
            eprintln!(
                "{unfinished} trials did not finish (see `sweep status {}`)",
                dir.root().display()
            );
            ExitCode::from(EXIT_TRIALS_FAILED)
        }
        RunEnd::Drained => ExitCode::SUCCESS,
    })
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
}

/// `sweep status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let (plan, states, board) = study::leaderboard(&dir)?;
    let alive = dir.is_locked();
    println!(
        "sweep {} ({}): {} trials, orchestrator {}",
        plan.name,
        dir.root().display(),
        plan.trials.len(),
        if alive { "running" } else { "not running" }
    );
    let mut counts: std::collections::BTreeMap<TrialStatus, usize> = Default::default();
    for r in states.values() {
        *counts
            .entry(r.status.unwrap_or(TrialStatus::Pending))
            .or_default() += 1;
    }
    let line: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("  {}", line.join(", "));
    for t in &plan.trials {
        let r = &states[&t.id];
        match r.status {
            Some(TrialStatus::Running) => {
                let progress = RunDir::open(&dir.trial_dir(&t.id))
                    .and_then(|d| d.read_metrics())
                    .ok()
                    .and_then(|m| m.last().cloned())
                    .map_or("starting".to_string(), |m| {
                        format!(
                            "epoch {}/{} test {:.2}%",
                            m.epoch, t.config.epochs, m.test_acc
                        )
                    });
                println!(
                    "  running {} on {} (attempt {}): {progress}",
                    t.id,
                    r.device.as_deref().unwrap_or("?"),
                    r.attempts
                );
            }
            Some(
                s @ (TrialStatus::Failed
                | TrialStatus::Timeout
                | TrialStatus::Oom
                | TrialStatus::Interrupted),
            ) => {
                println!("  {s} {}: {}", t.id, r.message.as_deref().unwrap_or(""));
            }
            _ => {}
        }
    }
    if let Some(best) = board.best() {
        let cells: Vec<String> = board
            .columns
            .iter()
            .zip(&best.values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        println!(
            "  best: {} {} {:.2} at epoch {} ({}) in {}",
            best.trial,
            board.metric.name(),
            best.metric.unwrap_or(f64::NAN),
            best.best_epoch.unwrap_or(0),
            cells.join(" "),
            human_duration(best.seconds.unwrap_or(0.0))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Output formats of `sweep leaderboard`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// Comma-separated values (the leaderboard.csv format).
    Csv,
    /// A Markdown table.
    Markdown,
    /// JSON.
    Json,
}

#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
    /// Show only the best N trials.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `sweep leaderboard`.
pub fn leaderboard(args: LeaderboardArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let (_, _, mut board) = study::leaderboard(&dir)?;
    if let Some(n) = args.top {
        board.truncate(n);
    }
    let text = match args.format {
        Format::Table => crate::store::text_table(&board.header(), &board.cells()) + "\n",
        Format::Csv => Csv.serialize(&board)?,
        Format::Markdown => Markdown.serialize(&board)?,
        Format::Json => Json.serialize(&board)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
    /// Which trial: its rank on the leaderboard.
    #[arg(long, default_value_t = 1, value_name = "N")]
    rank: usize,
    /// Train with this seed instead of the trial's.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Override a key, as in `sweep train --set` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    overrides: Vec<Override>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: String,
}

/// `sweep rerun`.
pub fn rerun(args: RerunArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let (_, _, board) = study::leaderboard(&dir)?;
    let row = board.by_rank(args.rank).with_context(|| {
        let ranked = board.rows.iter().filter(|r| r.rank.is_some()).count();
        format!(
            "{}: no trial has rank {} ({ranked} trials are ranked)",
            dir.root().display(),
            args.rank
        )
    })?;
    let source = dir
        .trial_dir(&row.trial)
        .join(crate::store::run_dir::CONFIG_FILE);
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(Override::new("seed", toml::Value::Integer(seed as i64)));
    }
    let config = TrialConfig::load(&source, &overrides)?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let out = dir.reruns_dir().join(format!("{}-{stamp}", row.trial));
    let run = RunDir::create(&out, false)?;
    eprintln!(
        "rerunning trial {} (rank {}, {} {:.2}) from {} into {}",
        row.trial,
        args.rank,
        board.metric.name(),
        row.metric.unwrap_or(f64::NAN),
        source.display(),
        out.display()
    );
    let device = super::parse_device(&args.device)?;
    let stop = super::stop_on_signals()?;
    let mut observer = progress::for_stderr();
    let ctx = TrainContext {
        device: &device,
        stop: &stop,
        run: &run,
    };
    let summary = trainer::train(&config, &ctx, observer.as_mut())?;
    println!(
        "rerun: {} best test accuracy {:.2}% at epoch {} (original {:.2}% at epoch {})",
        summary.status,
        summary.best_test_acc,
        summary.best_epoch,
        row.metric.unwrap_or(f64::NAN),
        row.best_epoch.unwrap_or(0)
    );
    Ok(
        if summary.status == crate::store::run_dir::RunStatus::Completed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A sweep directory (results/<name>); it may still be running.
    dir: PathBuf,
}

/// `sweep report`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let files = crate::report::write(&dir)?;
    println!("{}\n{}", files.html.display(), files.curves.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
}

/// `sweep collect`.
pub fn collect(args: CollectArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let (board, learnt) = study::collect(&dir)?;
    eprintln!(
        "collected {learnt} trial result{} into the journal",
        if learnt == 1 { "" } else { "s" }
    );
    finish_report(&dir, &board, RunEnd::Drained)
}

#[derive(Debug, Args)]
pub struct TrialArgs {
    /// A sweep directory (results/<name>) prepared by `sweep run`.
    dir: PathBuf,
    /// The trial's index in the plan (a Slurm array task id).
    #[arg(long, value_name = "I")]
    index: usize,
}

/// `sweep trial`: trains trial `index` of a sweep, as a Slurm array task does.
pub fn trial(args: TrialArgs) -> anyhow::Result<ExitCode> {
    let dir = SweepDir::open(&args.dir)?;
    let plan = dir.read_plan()?;
    let trial = plan.trials.get(args.index).with_context(|| {
        format!(
            "{}: the plan has {} trials, no index {}",
            dir.root().display(),
            plan.trials.len(),
            args.index
        )
    })?;
    let trial_dir = dir.trial_dir(&trial.id);
    let run = RunDir::create(&trial_dir, true)?;
    let _ = std::fs::remove_file(trial_dir.join(crate::exec::slurm::TASK_FILE));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (visible, job_gpus) = (env("CUDA_VISIBLE_DEVICES"), env("SLURM_JOB_GPUS"));
    // Slurm exports the GPUs it assigned; without a device cgroup only SLURM_JOB_GPUS may be set.
    let assigned = visible
        .clone()
        .or(job_gpus.clone())
        .filter(|v| v != "NoDevFiles");
    let device = match &assigned {
        Some(ids) if candle_core::utils::cuda_is_available() => {
            if visible.is_none() {
                // SAFETY: single-threaded at this point; CUDA is not initialised yet.
                unsafe { std::env::set_var("CUDA_VISIBLE_DEVICES", ids) };
            }
            super::parse_device("cuda:0")?
        }
        Some(ids) => {
            eprintln!(
                "GPU {ids} assigned, but this binary was built without CUDA: training on the CPU"
            );
            candle_core::Device::Cpu
        }
        None => candle_core::Device::Cpu,
    };
    let config = TrialConfig::load(
        &trial_dir.join(crate::store::sweep_dir::TRIAL_INPUT_FILE),
        &[],
    )?;
    let stop = super::stop_on_signals()?;
    let mut observer =
        progress::Events::file(&trial_dir.join(crate::store::sweep_dir::EVENTS_FILE))?;
    let ctx = TrainContext {
        device: &device,
        stop: &stop,
        run: &run,
    };
    let result = trainer::train(&config, &ctx, &mut observer);
    let (status, code) = match &result {
        Ok(s) => (s.status.to_string(), super::train::exit_code(s.status)),
        Err(_) => ("failed".to_string(), 1),
    };
    TaskRecord {
        job: env("SLURM_ARRAY_JOB_ID").unwrap_or_default(),
        task: env("SLURM_ARRAY_TASK_ID").unwrap_or_default(),
        node: env("SLURMD_NODENAME").unwrap_or_default(),
        cuda_visible_devices: visible,
        slurm_job_gpus: job_gpus,
        device: crate::train::device_name(&device),
        exit_code: i32::from(code),
        status,
    }
    .write(&trial_dir)?;
    result?;
    Ok(ExitCode::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10m5").is_err());
    }
}
