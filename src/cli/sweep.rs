//! `sweep plan`, `run`, `status`, `leaderboard`, `rerun`, `collect`, `report` and `trial`:
//! their arguments, and the calls they make.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::text::count;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::workers::{self, WorkerSweepArgs};
use super::{EXIT_TRIALS_FAILED, ProgressName, parse_duration, parse_override, print_results};
use crate::exec::local::LocalOptions;
use crate::exec::slots::{DeviceSpec, resolve_devices};
use crate::exec::slurm::SlurmOptions;
use crate::leaderboard::{Csv, Exporter, Json, Markdown};
use crate::store::sweep_dir::SweepDir;
use crate::sweep::rerun::{self, Rerun, Which};
use crate::sweep::schedule::Schedule;
use crate::sweep::study::{self, Backend, RunEnd, RunOptions};
use crate::text::format_metric;
use crate::train::config::Override;
use crate::train::progress;
use crate::trial::EXIT_INTERRUPTED;
use crate::trial_process::{self, EventsTo};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep spec (TOML).
    spec: PathBuf,
}

/// `sweep plan`.
pub fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (spec, plan) = crate::sweep::checks::load_plan(&args.spec)?;
    if let Some(d) = &spec.description {
        say!("{d}");
    }
    if let Some(adaptive) = &plan.adaptive {
        say!(
            "{}; asked for one at a time as slots free (seed {}), over",
            adaptive.describe(),
            adaptive.seed
        );
        for a in &adaptive.axes {
            say!("  {}", a.describe());
        }
        say!(
            "results go to results/{}/ (ranked by {})",
            plan.name,
            plan.ranking()
        );
        if let Some(p) = &plan.pruner {
            say!("pruned by {}", p.describe());
        }
        let cores = crate::train::threads::available();
        say!(
            "parallelism: {} learns from finished trials only, so with P trials at a time trial \
             i is drawn knowing trials 0..i-P. On the CPU `run` starts one trial per core ({cores} \
             here); `--per-device 1` lets each trial learn from every one before it: slower, and \
             on small budgets often better",
            adaptive.method.name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    say!("{}", plan.table());
    let dup = if plan.duplicates > 0 {
        format!(" ({} duplicate draws dropped)", plan.duplicates)
    } else {
        String::new()
    };
    say!(
        "{}{dup}; results go to results/{}/ (ranked by {})",
        count(plan.trials.len(), "trial"),
        plan.name,
        plan.ranking()
    );
    if let Some(p) = &plan.pruner {
        say!("pruned by {}", p.describe());
    }
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
    /// Compute threads per trial (its process's --threads).
    #[arg(long, default_value_t = 1, value_name = "N")]
    threads_per_trial: usize,
    /// Run at most N of the unfinished trials, then stop.
    #[arg(long, value_name = "N")]
    max_trials: Option<usize>,
    /// A time budget for this run (e.g. 2h, 90m): no trial starts after it, and those
    /// running finish; the rest stay pending for the next run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Stop an attempt that runs longer than this (e.g. 90s, 30m, 2h, 1h30m) and record a
    /// timeout (on Slurm, counted from when the task starts running).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout_per_trial: Option<Duration>,
    /// Extra attempts for a trial that crashes or times out (an out-of-memory trial is first
    /// retried with half as many neighbours on its GPU, down to none, before these count).
    #[arg(long, default_value_t = 1, value_name = "N")]
    retries: u32,
    /// Where trials run: local child processes, or one Slurm job array.
    #[arg(long, value_enum, default_value = "local")]
    backend: BackendName,
    /// The order trials start in.
    #[arg(long, value_enum, default_value = "balanced")]
    schedule: ScheduleName,
    /// Train up to N built-in trials that share the model, batch size, epochs and data in one
    /// process per slot, with batched matrix products (for GPUs, where one small trial leaves
    /// most of the device idle); a pack that runs out of memory is retried half as large.
    /// Local backend only.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pack: u16,
    /// Accept a spec change that takes trials with results off the leaderboard (a value
    /// removed, a shared value such as `epochs` changed, another metric); without it such a
    /// change is refused and says what it would remove.
    #[arg(long)]
    accept_changes: bool,
    /// Print no progress, only notes, errors and the final leaderboard.
    #[arg(long, short, conflicts_with = "progress")]
    quiet: bool,
    /// Off a terminal: a line per trial that ends (trials), or also per start and epoch
    /// (epochs). On a terminal a live display is drawn either way.
    #[arg(long, value_enum, default_value = "trials", value_name = "LINES")]
    progress: ProgressName,
    /// Make the sweep one that pull workers run (`sweep worker DIR`), and run nothing. A later
    /// `sweep run` of it joins as one more worker, with the live display.
    #[arg(long)]
    workers_only: bool,
    #[command(flatten)]
    workers: WorkerSweepArgs,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// Schedules of `sweep run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleName {
    /// Longest expected trial first, reordered so that the slots end together; when nothing
    /// waits, the cores of free CPU slots go to the trials still running (their thread count
    /// changes between steps; their results do not).
    Balanced,
    /// Plan order; every trial keeps its slot's threads.
    Plan,
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
    /// A task with a time limit (--time) stops this long before it and requeues itself
    /// (--requeue), to continue from its last finished epoch.
    #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = parse_duration)]
    requeue_before: Duration,
    /// How often to poll squeue (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    poll: Duration,
}

/// `sweep run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.threads_per_trial == 0 {
        bail!("--threads-per-trial must be at least 1");
    }
    let exe = std::env::current_exe().context("cannot find the sweep binary")?;
    let mut banner = None;
    let backend = match args.backend {
        BackendName::Local => {
            let devices = resolve_devices(&args.devices)?;
            let per_device = match (args.per_device, devices[0]) {
                (Some(0), _) => bail!("--per-device must be at least 1"),
                (Some(n), _) => n,
                (None, DeviceSpec::Cpu) => {
                    (crate::train::threads::available() / args.threads_per_trial).max(1)
                }
                (None, DeviceSpec::Cuda(_)) => 1,
            };
            let names: Vec<String> = devices.iter().map(ToString::to_string).collect();
            let unit = if args.pack > 1 {
                format!(
                    "pack{} of up to {} trials",
                    if per_device == 1 { "" } else { "s" },
                    args.pack
                )
            } else {
                format!("trial{}", if per_device == 1 { "" } else { "s" })
            };
            let mut text = format!(
                "running on {} ({per_device} {unit} per device, {} thread{} each)",
                names.join(", "),
                args.threads_per_trial,
                if args.threads_per_trial == 1 { "" } else { "s" },
            );
            if args.pack > 1 && devices.contains(&DeviceSpec::Cpu) {
                text.push_str(
                    "\nnote: --pack trains with candle ops; on the CPU the one-trial fused step \
                     is about 3x faster (see the README), packs pay off on GPUs",
                );
            }
            banner = Some(text);
            Backend::Local(LocalOptions {
                devices,
                per_device,
                threads_per_trial: args.threads_per_trial,
                exe,
            })
        }
        BackendName::Slurm => {
            let s = &args.slurm;
            if s.cpus_per_trial == 0 {
                bail!("--cpus-per-trial must be at least 1");
            }
            if s.array_parallelism == Some(0) {
                bail!("--array-parallelism must be at least 1");
            }
            if args.pack > 1 {
                bail!(
                    "--pack {}: packs run on the local backend only (a Slurm array task runs one trial)",
                    args.pack
                );
            }
            let slurm = SlurmOptions {
                array_parallelism: s.array_parallelism,
                gpus_per_trial: s.gpus_per_trial,
                cpus_per_trial: s.cpus_per_trial,
                mem: s.mem.clone(),
                time: s.time.clone(),
                partition: s.partition.clone(),
                sbatch_args: s.sbatch_args.clone(),
                cancel_on_exit: s.cancel_on_exit,
                poll: s.poll,
                requeue_before: s.requeue_before,
                exe,
            };
            if s.dry_run {
                for a in study::slurm_scripts(&args.spec, &args.results, &slurm)? {
                    say_raw!("{}", a.script);
                    say!("# task list:");
                    for line in a.list.lines() {
                        say!("#   {line}");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            Backend::Slurm(slurm)
        }
    };
    if args.workers_only || workers::is_worker_sweep(&args.spec, &args.results)? {
        return run_as_worker(args, backend);
    }
    let opts = RunOptions {
        results: args.results,
        backend,
        max_trials: args.max_trials,
        timeout: args.timeout_per_trial,
        budget: args.timeout,
        retries: args.retries,
        terminal: std::io::stderr().is_terminal(),
        accept_changes: args.accept_changes,
        live_report: Some(|dir, finished, total| {
            crate::report::write_live(dir, finished, total).map(|_| ())
        }),
        verbosity: args.progress.verbosity(args.quiet),
        banner,
        schedule: match args.schedule {
            ScheduleName::Balanced => Schedule::Balanced,
            ScheduleName::Plan => Schedule::Plan,
        },
        pack: usize::from(args.pack),
    };
    let report = study::run(&args.spec, &opts)?;
    print_results(&report.dir, &report.leaderboard);
    Ok(match report.end {
        RunEnd::Detached => ExitCode::from(EXIT_INTERRUPTED),
        RunEnd::Interrupted => {
            let unfinished = report
                .leaderboard
                .rows
                .iter()
                .filter(|r| !r.status.is_final())
                .count();
            note!(
                "interrupted: {} unfinished; run the same command again to resume",
                count(unfinished, "trial")
            );
            ExitCode::from(EXIT_INTERRUPTED)
        }
        RunEnd::Halted => ExitCode::from(EXIT_TRIALS_FAILED),
        RunEnd::Drained if report.failed > 0 => {
            note!(
                "{} failed (see `sweep status {}`)",
                count(report.failed, "trial"),
                report.dir.root().display()
            );
            ExitCode::from(EXIT_TRIALS_FAILED)
        }
        RunEnd::Drained => {
            if report.pending > 0 {
                note!(
                    "{} still pending; run the same command again to run them",
                    count(report.pending, "trial")
                );
            }
            ExitCode::SUCCESS
        }
    })
}

/// `sweep run` of a sweep made for workers: makes it (`--workers-only`), or joins it as one
/// more worker with the live display.
fn run_as_worker(args: RunArgs, backend: Backend) -> anyhow::Result<ExitCode> {
    if args.timeout.is_some() {
        bail!(
            "--timeout (a time budget) is for a sweep `sweep run` drives; a sweep made for \
             workers ends when its workers do: stop them (Ctrl-C or SIGTERM) when time is up"
        );
    }
    let Backend::Local(local) = backend else {
        bail!(
            "a sweep made for workers runs on Slurm through `sweep submit {} --slurm --workers N`",
            args.spec.display()
        );
    };
    let new = args
        .workers
        .new_sweep(&args.results, None, true, args.accept_changes);
    let joined = crate::sweep::worker::join::create(&args.spec, &new)?;
    if args.pack > 1 {
        note!(
            "note: --pack {} is ignored: a sweep made for workers trains one trial per process",
            args.pack
        );
    }
    if args.workers_only {
        workers::made_for_workers(&joined);
        return Ok(ExitCode::SUCCESS);
    }
    let opts = crate::sweep::worker::WorkerOptions {
        local,
        retries: args.retries,
        timeout: args.timeout_per_trial,
        terminal: std::io::stderr().is_terminal(),
        verbosity: args.progress.verbosity(args.quiet),
        live_report: Some(|dir, finished, total| {
            crate::report::write_live(dir, finished, total).map(|_| ())
        }),
        poll: Duration::from_secs(1),
        max_trials: args.max_trials,
    };
    workers::run_worker(&joined, &opts)
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A sweep directory (results/<name>), or its spec.
    dir: PathBuf,
    /// text, for people; json, for scripts and dashboards.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    format: StatusFormat,
}

/// Output formats of `sweep status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFormat {
    /// Lines for people.
    Text,
    /// One JSON object: counts, running and failed trials, workers, disk use, the best.
    Json,
}

/// `sweep status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = open_sweep(&args.dir)?;
    let status = crate::sweep::status::gather(&dir)?;
    match args.format {
        StatusFormat::Text => say_raw!("{}", status.text()),
        StatusFormat::Json => say!("{}", serde_json::to_string_pretty(&status)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// A sweep directory (results/<name>), or its spec.
    dir: PathBuf,
    /// The running trials to stop, by id or label.
    #[arg(required = true, value_name = "TRIAL")]
    trials: Vec<String>,
}

/// `sweep stop`.
pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    let dir = open_sweep(&args.dir)?;
    for id in crate::sweep::stop::stop(&dir, &args.trials)? {
        say!(
            "asked {id} to stop: it ends as pruned at its next step or report, keeping its best \
             checkpoint"
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
    let dir = open_sweep(&args.dir)?;
    let (_, mut board) = study::leaderboard(&dir)?;
    let holds = match (board.best(), board.why_no_best()) {
        (Some(b), _) => format!("best/ holds {}, by {}", b.trial, board.best_rule()),
        (None, Some(why)) => format!("best: none ({why})"),
        (None, None) => String::new(),
    };
    if let Some(n) = args.top {
        board.truncate(n);
    }
    let text = match args.format {
        Format::Table => {
            crate::text::text_table(&board.header(), &board.cells()) + "\n" + &holds + "\n"
        }
        Format::Csv => Csv.serialize(&board)?,
        Format::Markdown => Markdown.serialize(&board)?,
        Format::Json => Json.serialize(&board)?,
    };
    say_raw!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    #[command(flatten)]
    pub threads: super::Threads,
    /// A sweep directory (results/<name>).
    dir: PathBuf,
    /// Which trial: its rank on the leaderboard.
    #[arg(long, default_value_t = 1, value_name = "N")]
    rank: usize,
    /// Which trial: its id (or label), ranked or not, instead of --rank.
    #[arg(long, value_name = "ID", conflicts_with = "rank")]
    trial: Option<String>,
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
    let dir = open_sweep(&args.dir)?;
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(Override::new("seed", toml::Value::Integer(seed as i64)));
    }
    let stop = super::stop_on_signals()?;
    let mut observer = progress::for_stderr();
    let result = rerun::rerun(
        &dir,
        &Rerun {
            which: match args.trial {
                Some(id) => Which::Trial(id),
                None => Which::Rank(args.rank),
            },
            overrides: &overrides,
            device: &args.device,
            stop: &stop,
        },
        observer.as_mut(),
    )?;
    let s = &result.summary;
    let show = |v: Option<f64>| v.map_or("-".into(), format_metric);
    say!(
        "rerun of {}: {} best {} {} at epoch {} (original {} at epoch {}) in {}",
        result.trial,
        s.status,
        s.objective.metric,
        show(s.best_value()),
        s.best_epoch,
        show(result.original.0),
        result.original.1.unwrap_or(0),
        result.out.display()
    );
    Ok(ExitCode::from(s.status.exit_code()))
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A sweep directory (results/<name>); it may still be running.
    dir: PathBuf,
    /// optuna: an Optuna JournalStorage log (optuna.load_study, optuna-dashboard); csv: one
    /// row per trial and epoch with every parameter and metric, for pandas or R.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Where to write it [default: DIR/optuna-journal.log or DIR/epochs.csv].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Formats of `sweep export`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// Optuna's JournalStorage log.
    Optuna,
    /// A tidy CSV, one row per trial and epoch.
    Csv,
}

/// `sweep export`.
pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    use crate::report::export;
    let dir = open_sweep(&args.dir)?;
    let record = dir.load_record(dir.is_driven())?;
    let (text, default_name) = match args.format {
        ExportFormat::Optuna => {
            let entries = crate::store::journal::read(&dir.journal_file())?.entries;
            let axes = crate::sweep::spec::SearchFacts::of_saved(&dir.spec_file()).axes;
            let trial_dir = |id: &str| {
                let d = dir.trial_dir(id);
                std::path::absolute(&d).unwrap_or(d).display().to_string()
            };
            let text = export::optuna_journal(&record, &entries, &axes, trial_dir);
            (text, "optuna-journal.log")
        }
        ExportFormat::Csv => (export::tidy_csv(&record)?, "epochs.csv"),
    };
    let out = args.out.unwrap_or_else(|| dir.root().join(default_name));
    crate::store::atomic::write(&out, text)?;
    say!("{}", out.display());
    if matches!(args.format, ExportFormat::Optuna) {
        note!(
            "open it with: optuna-dashboard {}   (or in Python: optuna.load_study(study_name={:?}, storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend({:?}))))",
            out.display(),
            record.name,
            out.display().to_string()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A sweep directory (results/<name>); it may still be running.
    dir: PathBuf,
}

/// `sweep report`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = open_sweep(&args.dir)?;
    let files = crate::report::write(&dir)?;
    say!("{}\n{}", files.html.display(), files.curves.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
}

/// `sweep collect`.
pub fn collect(args: CollectArgs) -> anyhow::Result<ExitCode> {
    let dir = open_sweep(&args.dir)?;
    let (board, learnt) = study::collect(&dir)?;
    note!(
        "collected {learnt} trial result{} into the journal",
        if learnt == 1 { "" } else { "s" }
    );
    print_results(&dir, &board);
    let failed = board.rows.iter().filter(|r| r.status.is_failure()).count();
    Ok(if failed > 0 {
        ExitCode::from(EXIT_TRIALS_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// A sweep directory (results/<name>).
    dir: PathBuf,
}

/// `sweep repair`: drops the journal lines that cannot be read, after a backup, and says which.
pub fn repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let dir = open_sweep(&args.dir)?;
    crate::store::workers::refuse_while_live(&dir, "`sweep repair`")?;
    let _lock = dir.lock()?;
    let path = dir.journal_file();
    let report = crate::store::journal::repair(&path)?;
    if report.dropped.is_empty() {
        say!(
            "{}: all {} records read back; nothing to repair",
            path.display(),
            report.kept
        );
        return Ok(ExitCode::SUCCESS);
    }
    for bad in &report.dropped {
        let what = if bad.torn {
            "an unterminated last line".to_string()
        } else {
            format!("a corrupt line ({})", bad.error)
        };
        say!(
            "dropped line {} ({} bytes): {what}",
            bad.line,
            bad.text.len()
        );
    }
    say!(
        "{}: kept {} records, dropped {} line{}; the old journal is in {}, the dropped lines in \
         {}. The next `sweep run` (or `sweep worker`, for a sweep made for workers) puts back \
         the plan's trials the dropped lines held, with what their directories show, and runs \
         again what did not end.",
        path.display(),
        report.kept,
        report.dropped.len(),
        if report.dropped.len() == 1 { "" } else { "s" },
        report.backup.display(),
        report.quarantine.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["dirs", "list"])))]
pub struct TrialArgs {
    #[command(flatten)]
    pub threads: super::Threads,
    /// A trial directory (results/<sweep>/trials/<id>) prepared by `sweep run`; several
    /// trials of one architecture, batch size, epochs and data train together as a pack.
    #[arg(value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// A task list written by the Slurm backend: one trial directory per line.
    #[arg(long, value_name = "FILE", requires = "task")]
    list: Option<PathBuf>,
    /// Which line of --list (from 0): the Slurm array task id.
    #[arg(long, value_name = "I")]
    task: Option<usize>,
    /// Where the event stream goes: stdout (local executor) or events.jsonl in the trial
    /// directory (batch jobs).
    #[arg(long, value_enum, default_value = "stdout")]
    events: EventsArg,
    /// Device: cpu, cuda or cuda:N [default: the GPU Slurm assigned, else cpu].
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

/// Where `sweep trial` reports.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EventsArg {
    /// One JSON object per line on stdout.
    Stdout,
    /// Appended to events.jsonl in the trial directory.
    File,
}

/// `sweep trial`: runs one prepared trial, as the local executor and each Slurm task do.
pub fn trial(args: TrialArgs) -> anyhow::Result<ExitCode> {
    let events = match args.events {
        EventsArg::Stdout => EventsTo::Stdout,
        EventsArg::File => EventsTo::File,
    };
    let stop = super::stop_on_signals()?;
    let status = match (args.dirs.as_slice(), &args.list, args.task) {
        ([dir], _, _) => trial_process::run(dir, events, args.device.as_deref(), &stop)?,
        ([], Some(list), Some(i)) => {
            let dir = trial_process::dir_from_list(list, i)?;
            trial_process::run(&dir, events, args.device.as_deref(), &stop)?
        }
        ([], _, _) => bail!("give a trial directory, or --list FILE --task I"),
        (dirs, _, _) => {
            // SIGUSR1: the orchestrator left a stop request for one of the pack's trials.
            let look = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, look.clone())
                .context("cannot install signal handler")?;
            trial_process::run_pack(dirs, events, args.device.as_deref(), &stop, &look)?
        }
    };
    Ok(ExitCode::from(status.exit_code()))
}

/// The sweep a command names: its folder, or its spec (then `results/<name>`, the default
/// `--results` of `sweep run`).
fn open_sweep(path: &Path) -> anyhow::Result<SweepDir> {
    if !path.is_file() {
        return SweepDir::open(path);
    }
    let name = crate::sweep::spec::SweepSpec::load(path)
        .with_context(|| {
            format!(
                "{} is a file, not a sweep folder; read as a spec (to find its results), it \
                 has a problem",
                path.display()
            )
        })?
        .name;
    let root = Path::new("results").join(&name);
    SweepDir::open(&root).with_context(|| {
        format!(
            "{} is the spec of sweep `{name}`, whose results would be in {} (run it with `sweep \
             run {}`, or name the folder it ran into)",
            path.display(),
            root.display(),
            path.display()
        )
    })
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
