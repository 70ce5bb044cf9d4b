//! `sweep worker` and `sweep submit --workers`: pull workers and how to start them. `sweep run`
//! on a sweep made for workers joins it as one more worker (see `sweep::worker`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::{EXIT_TRIALS_FAILED, ProgressName, parse_duration, print_results};
use crate::exec::local::LocalOptions;
use crate::exec::slots::{DeviceSpec, resolve_devices};
use crate::exec::slurm::{self, SlurmOptions};
use crate::sweep::study::RunEnd;
use crate::sweep::worker::join::{self, Joined, NewSweep};
use crate::sweep::worker::{self, WorkerOptions};
use crate::text::count;
use crate::trial::EXIT_INTERRUPTED;

/// How the workers of a new sweep share it.
#[derive(Debug, Clone, Args)]
#[command(
    next_help_heading = "A new sweep's settings (kept in workers.json; joining takes them from there)"
)]
pub struct WorkerSweepArgs {
    /// Trials at a time in all, which TPE's asks assume (they are the same as one `sweep run`
    /// with this many trials at a time) [default: 4; submit: --workers].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// A worker that has not renewed its lease for this long is taken as gone: its trial is
    /// marked stale and another worker takes it up from its last finished epoch.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub lease: Duration,
    /// How often a worker renews its lease.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub heartbeat: Duration,
}

impl WorkerSweepArgs {
    /// How to make the sweep under `results`; `update` applies a changed spec (accepting a
    /// change that takes trials with results off the leaderboard when `accept_changes`).
    pub fn new_sweep(
        &self,
        results: &Path,
        parallelism: Option<usize>,
        update: bool,
        accept_changes: bool,
    ) -> NewSweep {
        NewSweep {
            results: results.to_path_buf(),
            parallelism: self.parallelism.map(|p| p as usize).or(parallelism),
            lease: self.lease,
            heartbeat: self.heartbeat,
            accept_changes,
            update,
        }
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A sweep folder made for workers (results/NAME), or a spec (TOML): the first worker
    /// given a spec makes the sweep, later ones join it.
    target: PathBuf,
    /// Results root, for a spec; the sweep goes to <DIR>/<name>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Devices: auto (every CUDA device, else the CPU), cpu, or a list like cuda:0,cuda:1.
    #[arg(long, default_value = "auto", value_name = "DEVICES")]
    devices: String,
    /// Trials this worker runs at a time per device.
    #[arg(long, default_value_t = 1, value_name = "N")]
    per_device: usize,
    /// Compute threads per trial [default: this machine's cores / this worker's trials at a
    /// time]. Several workers on one machine each take the default: give each a share, so
    /// that workers x trials x threads stays within the cores (a worker says so when it finds
    /// others on its machine).
    #[arg(long, value_name = "N")]
    threads_per_trial: Option<usize>,
    /// Extra attempts for a trial that crashes or times out (made by the worker that saw it).
    #[arg(long, default_value_t = 1, value_name = "N")]
    retries: u32,
    /// Stop an attempt that runs longer than this and record a timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout_per_trial: Option<Duration>,
    /// Take at most N trials (new, retried or taken up), then leave when they end.
    #[arg(long, value_name = "N")]
    max_trials: Option<usize>,
    /// How often to look again when no trial is free (others run the rest).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    poll: Duration,
    /// Print no progress, only notes and errors.
    #[arg(long, short, conflicts_with = "progress")]
    quiet: bool,
    /// Off a terminal: a line per trial that ends (trials), or also per start and epoch.
    #[arg(long, value_enum, default_value = "trials", value_name = "LINES")]
    progress: ProgressName,
    #[command(flatten)]
    sweep: WorkerSweepArgs,
}

/// `sweep worker`.
pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let local = local_options(&args.devices, args.per_device, args.threads_per_trial)?;
    let joined = if args.target.is_file() {
        join::create(
            &args.target,
            &args.sweep.new_sweep(&args.results, None, false, false),
        )?
    } else {
        join::join(&args.target)?
    };
    let verbosity = args.progress.verbosity(args.quiet);
    let opts = WorkerOptions {
        local,
        retries: args.retries,
        timeout: args.timeout_per_trial,
        terminal: std::io::stderr().is_terminal(),
        verbosity,
        live_report: Some(|dir, finished, total| {
            crate::report::write_live(dir, finished, total).map(|_| ())
        }),
        poll: args.poll,
        max_trials: args.max_trials,
    };
    run_worker(&joined, &opts)
}

/// Runs a worker on a joined sweep and says how it ended.
pub fn run_worker(joined: &Joined, opts: &WorkerOptions) -> anyhow::Result<ExitCode> {
    let report = worker::work(joined, opts)?;
    let dir = &joined.dir;
    if report.finished {
        print_results(dir, &report.leaderboard);
    } else if report.end == RunEnd::Drained {
        say!(
            "this worker ran {}; other workers run the rest (sweep status {})",
            count(report.ran, "attempt"),
            dir.root().display()
        );
    }
    Ok(match report.end {
        RunEnd::Interrupted => {
            note!(
                "interrupted: this worker's trials went back to the sweep; other workers (or \
                 this command again) take them up"
            );
            ExitCode::from(EXIT_INTERRUPTED)
        }
        _ if report.failed > 0 => {
            note!(
                "{} failed here (see `sweep status {}`)",
                count(report.failed, "trial"),
                dir.root().display()
            );
            ExitCode::from(EXIT_TRIALS_FAILED)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// The local slots of a worker.
pub fn local_options(
    devices: &str,
    per_device: usize,
    threads_per_trial: Option<usize>,
) -> anyhow::Result<LocalOptions> {
    if per_device == 0 {
        bail!("--per-device must be at least 1");
    }
    let devices = resolve_devices(devices)?;
    let cpu_slots = if devices.contains(&DeviceSpec::Cpu) {
        per_device
    } else {
        1
    };
    let threads = match threads_per_trial {
        Some(0) => bail!("--threads-per-trial must be at least 1"),
        Some(n) => n,
        None => (crate::train::threads::available() / cpu_slots).max(1),
    };
    Ok(LocalOptions {
        devices,
        per_device,
        threads_per_trial: threads,
        exe: std::env::current_exe().context("cannot find the sweep binary")?,
    })
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The sweep spec (TOML).
    spec: PathBuf,
    /// Submit the workers as one Slurm job array (the only scheduler `submit` knows; see the
    /// README for PBS, LSF, Kubernetes and ssh).
    #[arg(long)]
    slurm: bool,
    /// Workers to start (array tasks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    workers: u32,
    /// Results root (on a filesystem every node sees); the sweep goes to <DIR>/<name>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// CPUs per worker (--cpus-per-task), also each trial's compute threads.
    #[arg(long, default_value_t = 1, value_name = "N")]
    cpus_per_worker: usize,
    /// GPUs per worker (--gres=gpu:N).
    #[arg(long, default_value_t = 0, value_name = "N")]
    gpus_per_worker: usize,
    /// Memory per worker (--mem), e.g. 4G.
    #[arg(long, value_name = "SIZE")]
    mem: Option<String>,
    /// Time limit per worker (--time), e.g. 2:00:00.
    #[arg(long, value_name = "LIMIT")]
    time: Option<String>,
    /// Partition (--partition).
    #[arg(long, value_name = "NAME")]
    partition: Option<String>,
    /// An extra #SBATCH argument, verbatim (repeatable), e.g. --sbatch-arg=--qos=high.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Extra attempts for a trial that crashes or times out.
    #[arg(long, default_value_t = 1, value_name = "N")]
    retries: u32,
    /// Each worker stops an attempt that runs longer than this and records a timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout_per_trial: Option<Duration>,
    /// Print the sbatch script and submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Accept a spec change that takes trials with results off the leaderboard.
    #[arg(long)]
    accept_changes: bool,
    #[command(flatten)]
    sweep: WorkerSweepArgs,
}

/// `sweep submit`.
pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if !args.slurm {
        bail!(
            "sweep submit needs a scheduler: --slurm (elsewhere start `sweep worker DIR` yourself; \
             the README shows PBS, LSF, Kubernetes and ssh)"
        );
    }
    if args.cpus_per_worker == 0 {
        bail!("--cpus-per-worker must be at least 1");
    }
    let workers = args.workers as usize;
    let opts = SlurmOptions {
        array_parallelism: None,
        gpus_per_trial: args.gpus_per_worker,
        cpus_per_trial: args.cpus_per_worker,
        mem: args.mem,
        time: args.time,
        partition: args.partition,
        sbatch_args: args.sbatch_args,
        cancel_on_exit: false,
        poll: Duration::from_secs(2),
        requeue_before: Duration::from_secs(120),
        exe: std::env::current_exe().context("cannot find the sweep binary")?,
    };
    let mut worker_args = vec![
        "--retries".to_string(),
        args.retries.to_string(),
        "--devices".into(),
        if args.gpus_per_worker > 0 {
            "auto"
        } else {
            "cpu"
        }
        .into(),
    ];
    if let Some(t) = args.timeout_per_trial {
        worker_args.extend([
            "--timeout-per-trial".to_string(),
            format!("{}s", t.as_secs()),
        ]);
    }
    if args.dry_run {
        // Nothing is made: the script as it would be submitted.
        let (_, plan) = crate::sweep::checks::load_plan(&args.spec)?;
        let root = std::path::absolute(&args.results)?.join(&plan.name);
        let workdir = std::env::current_dir().context("cannot read the current directory")?;
        say_raw!(
            "{}",
            slurm::worker_script(&plan.name, &root, &workdir, workers, &worker_args, &opts)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let joined = join::create(
        &args.spec,
        &args
            .sweep
            .new_sweep(&args.results, Some(workers), true, args.accept_changes),
    )?;
    for n in &joined.notes {
        note!("{n}");
    }
    let dir = &joined.dir;
    let script = slurm::worker_script(
        &joined.plan.name,
        dir.root(),
        &joined.settings.workdir,
        workers,
        &worker_args,
        &opts,
    );
    let slurm_dir = dir.slurm_dir();
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    let path = slurm_dir.join(format!(
        "workers-{}.sbatch",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ));
    crate::store::atomic::write(&path, &script)?;
    let job = slurm::submit(&path)?;
    say!(
        "submitted {} as Slurm job {job} ({}); they run the sweep to the end with no orchestrator",
        count(workers, "worker"),
        path.display()
    );
    say!(
        "watch it: sweep status {}   (logs: {}/worker-{job}_*.out)",
        dir.root().display(),
        slurm_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// True when the sweep of `spec` under `results` is one that workers run.
pub fn is_worker_sweep(spec: &Path, results: &Path) -> anyhow::Result<bool> {
    let name = crate::sweep::spec::SweepSpec::load(spec)?.name;
    let dir = crate::store::sweep_dir::SweepDir::new(results, &name);
    Ok(crate::store::workers::WorkerSettings::read(&dir)?.is_some())
}

/// Where `sweep run` leaves a sweep made for workers.
pub fn made_for_workers(joined: &Joined) {
    for n in &joined.notes {
        note!("{n}");
    }
    say!(
        "{} is ready for workers ({} at a time in all, lease {} s, heartbeat {} s); start each \
         with:\n  sweep worker {}",
        joined.dir.root().display(),
        joined.settings.parallelism,
        joined.settings.lease_seconds,
        joined.settings.heartbeat_seconds,
        joined.dir.root().display()
    );
}
