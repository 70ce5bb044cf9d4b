//! The Slurm executor: trials go out as job arrays whose task `i` runs the trial on line `i`
//! of the array's task list (`sweep trial --list FILE --task i`). The orchestrator polls
//! `squeue` (no accounting needed), reads what each task writes in its trial directory, and
//! reports it like the local executor. Arrays never exceed the cluster's `MaxArraySize`: a
//! longer list is split into several arrays.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{ExecEvent, Executor, Interrupt, TrialJob, outcome_from_dir};
use crate::store::atomic;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::EVENTS_FILE;
use crate::trial::{StopReason, TrialStatus};

/// Settings of the Slurm executor (`sweep run --backend slurm`).
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// At most this many array tasks at once (`--array=...%P`).
    pub array_parallelism: Option<usize>,
    /// GPUs per task (`--gres=gpu:N`).
    pub gpus_per_trial: usize,
    /// CPUs per task (`--cpus-per-task`), also the trial's compute threads.
    pub cpus_per_trial: usize,
    /// Memory per task (`--mem`, e.g. 4G).
    pub mem: Option<String>,
    /// Time limit per task (`--time`, e.g. 2:00:00).
    pub time: Option<String>,
    /// Partition (`--partition`).
    pub partition: Option<String>,
    /// Extra `#SBATCH` arguments, verbatim.
    pub sbatch_args: Vec<String>,
    /// On Ctrl-C, cancel the job without asking.
    pub cancel_on_exit: bool,
    /// How often to poll squeue.
    pub poll: Duration,
    /// How long before its time limit Slurm warns a task (which then requeues itself).
    pub requeue_before: Duration,
    /// The `sweep` binary the tasks run (on a cluster: a path every node can see).
    pub exe: PathBuf,
}

/// The environment variable that tells a task how many seconds before its time limit to stop
/// and requeue itself.
pub const REQUEUE_BEFORE: &str = "SWEEP_REQUEUE_BEFORE";

/// A Slurm duration (`squeue`'s `%L`): `SS`, `MM:SS`, `HH:MM:SS` or `D-HH:MM:SS`; None for
/// `UNLIMITED`, `NOT_SET` and anything else.
pub fn parse_slurm_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, clock) = match s.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, s),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [s] => *s,
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(Duration::from_secs(days * 86400 + secs))
}

/// The time this Slurm job has left before its time limit (None: unlimited, or unknown).
pub fn time_left(job: &str) -> Option<Duration> {
    parse_slurm_duration(&slurm("squeue", &["-h", "-j", job, "-o", "%L"]).ok()?)
}

/// The file each task writes into its trial directory when it ends.
pub const TASK_FILE: &str = "slurm-task.json";

/// What a task records about itself (`sweep trial` writes it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    /// `SLURM_ARRAY_JOB_ID`.
    pub job: String,
    /// `SLURM_ARRAY_TASK_ID`.
    pub task: String,
    /// `SLURMD_NODENAME`.
    pub node: String,
    /// `CUDA_VISIBLE_DEVICES` as the task saw it.
    pub cuda_visible_devices: Option<String>,
    /// `SLURM_JOB_GPUS` as the task saw it.
    pub slurm_job_gpus: Option<String>,
    /// The device it trained on.
    pub device: String,
    /// Its exit code.
    pub exit_code: i32,
    /// The run's status.
    pub status: String,
}

impl TaskRecord {
    /// Reads the record a task left in `dir`.
    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(TASK_FILE)).ok()?).ok()
    }

    /// Writes it into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        atomic::write(
            &dir.join(TASK_FILE),
            serde_json::to_string_pretty(self)? + "\n",
        )
    }
}

/// One array submission: what `sbatch` gets.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayScript {
    /// The sbatch script.
    pub script: String,
    /// The task list: one trial directory per line, task `i` on line `i`.
    pub list: String,
}

/// The sbatch script of an array of `tasks` tasks whose task list is `list_path`, to start
/// after job `after` ends (when given).
pub fn script(
    name: &str,
    sweep_dir: &Path,
    list_path: &Path,
    tasks: usize,
    after: Option<&str>,
    opts: &SlurmOptions,
) -> String {
    let mut array = match tasks {
        1 => "0".to_string(),
        n => format!("0-{}", n - 1),
    };
    if let Some(p) = opts.array_parallelism {
        array.push_str(&format!("%{p}"));
    }
    let log = sweep_dir.join("slurm").join("%A_%a.out");
    let mut lines = header(&format!("sweep-{name}"), &array, &log, opts);
    if let Some(job) = after {
        lines.push(format!("#SBATCH --dependency=afterany:{job}"));
    }
    lines.push(format!(
        "# Task i trains the trial whose directory is on line i (from 0) of {}.",
        list_path.display()
    ));
    lines.push(format!(
        "export {REQUEUE_BEFORE}={}",
        opts.requeue_before.as_secs().max(1)
    ));
    lines.push(format!(
        "exec {} --threads {} trial --list {} --task \"$SLURM_ARRAY_TASK_ID\" --events file",
        shell_quote(&opts.exe.display().to_string()),
        opts.cpus_per_trial,
        shell_quote(&list_path.display().to_string())
    ));
    lines.join("\n") + "\n"
}

/// The `#SBATCH` lines every script of a sweep shares: the job, its array, resources, log, and
/// requeueing (preempted, or near its time limit, a task is requeued; its log keeps every run).
fn header(job_name: &str, array: &str, log: &Path, opts: &SlurmOptions) -> Vec<String> {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={job_name}"),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --cpus-per-task={}", opts.cpus_per_trial),
        format!("#SBATCH --output={}", log.display()),
    ];
    if opts.gpus_per_trial > 0 {
        lines.push(format!("#SBATCH --gres=gpu:{}", opts.gpus_per_trial));
    }
    if let Some(m) = &opts.mem {
        lines.push(format!("#SBATCH --mem={m}"));
    }
    if let Some(t) = &opts.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if let Some(p) = &opts.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    lines.push("#SBATCH --requeue".to_string());
    lines.push("#SBATCH --open-mode=append".to_string());
    for a in &opts.sbatch_args {
        lines.push(format!("#SBATCH {a}"));
    }
    lines
}

/// The sbatch script of `workers` pull workers of the sweep in `sweep_dir` (`sweep submit
/// --workers`): an array whose every task runs `sweep worker` with `worker_args`, from
/// `workdir`.
pub fn worker_script(
    name: &str,
    sweep_dir: &Path,
    workdir: &Path,
    workers: usize,
    worker_args: &[String],
    opts: &SlurmOptions,
) -> String {
    let mut array = match workers {
        1 => "0".to_string(),
        n => format!("0-{}", n - 1),
    };
    if let Some(p) = opts.array_parallelism {
        array.push_str(&format!("%{p}"));
    }
    let log = sweep_dir.join("slurm").join("worker-%A_%a.out");
    let mut lines = header(&format!("sweep-{name}-workers"), &array, &log, opts);
    lines.push(
        "# Every task is a pull worker: it takes trials from the sweep until none is left.".into(),
    );
    lines.push(format!(
        "cd {}",
        shell_quote(&workdir.display().to_string())
    ));
    let mut command = vec![
        shell_quote(&opts.exe.display().to_string()),
        "--threads".into(),
        opts.cpus_per_trial.to_string(),
        "worker".into(),
        shell_quote(&sweep_dir.display().to_string()),
        "--threads-per-trial".into(),
        opts.cpus_per_trial.to_string(),
    ];
    command.extend(worker_args.iter().map(|a| shell_quote(a)));
    lines.push(format!("exec {}", command.join(" ")));
    lines.join("\n") + "\n"
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs a Slurm client command and returns its stdout.
fn slurm(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{cmd}`: is Slurm installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits a script; returns the array job id.
pub fn submit(script_path: &Path) -> anyhow::Result<String> {
    let out = slurm(
        "sbatch",
        &["--parsable", &script_path.display().to_string()],
    )?;
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed `{}`, not a job id", out.trim());
    }
    Ok(id)
}

/// The cluster's `MaxArraySize` (an array's task ids must stay below it); Slurm's default 1001
/// when `scontrol` does not say.
pub fn max_array_size() -> usize {
    slurm("scontrol", &["show", "config"])
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.trim_start().starts_with("MaxArraySize"))
                .and_then(|l| l.split('=').nth(1))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .filter(|&n| n > 0)
        .unwrap_or(1001)
}

/// The state and node of every task of `job` that squeue still lists (finished ones stay
/// listed for the cluster's MinJobAge).
pub fn task_states(job: &str) -> anyhow::Result<HashMap<usize, (String, String)>> {
    let out = slurm(
        "squeue",
        &["-h", "-r", "-t", "all", "-j", job, "-o", "%K|%T|%N"],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let task = f.next()?.trim().parse().ok()?;
            let state = f.next()?.trim().to_string();
            let node = f.next().unwrap_or("").trim().to_string();
            Some((task, (state, node)))
        })
        .collect())
}

/// True for the squeue states of a task that has not ended.
pub fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "REQUEUE_FED"
            | "REQUEUE_HOLD"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
    )
}

/// How long squeue may keep failing before the orchestrator gives up (a controller restart
/// or a busy cluster makes single calls fail).
const SQUEUE_PATIENCE: Duration = Duration::from_secs(120);

/// One trial's array task, while the orchestrator follows it.
struct Task {
    job: TrialJob,
    array: String,
    index: usize,
    started: Option<Instant>,
    reported_lines: usize,
    missing_polls: u32,
    stopping: Option<StopReason>,
}

/// Job arrays on a Slurm cluster.
pub struct SlurmExecutor {
    name: String,
    sweep_dir: PathBuf,
    opts: SlurmOptions,
    max_array: Option<usize>,
    queued: Vec<TrialJob>,
    tasks: HashMap<String, Task>,
    ready: VecDeque<ExecEvent>,
    last_poll: Option<Instant>,
    /// Since when squeue has been failing, and its last error.
    squeue_failing: Option<(Instant, String)>,
    /// The last array submitted, which a later one waits for when parallelism is capped.
    last_array: Option<String>,
}

impl SlurmExecutor {
    /// An executor submitting the trials of sweep `name` (whose directory is `sweep_dir`).
    pub fn new(name: &str, sweep_dir: &Path, opts: SlurmOptions) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_string(),
            sweep_dir: std::path::absolute(sweep_dir)?,
            opts,
            max_array: None,
            queued: Vec::new(),
            tasks: HashMap::new(),
            ready: VecDeque::new(),
            last_poll: None,
            squeue_failing: None,
            last_array: None,
        })
    }

    /// Follows trials that an earlier orchestrator submitted and Slurm still has queued or
    /// running: `(array job, task index, job)`.
    /// Follows the tasks of earlier jobs that Slurm still has queued or running, instead of
    /// submitting their trials again. `submitted` lists jobs newest first, each with the
    /// unfinished trial of every array task (None for one that finished); returns the trials
    /// now followed (a trial in two jobs is followed in the newest).
    pub fn reattach(&mut self, submitted: Vec<(String, Vec<Option<TrialJob>>)>) -> Vec<TrialJob> {
        let mut taken = std::collections::HashSet::new();
        let mut followed = Vec::new();
        for (array, jobs) in submitted {
            // An unknown (long finished) job id makes squeue fail: nothing to follow there.
            let Ok(states) = task_states(&array) else {
                continue;
            };
            let tasks: Vec<(usize, TrialJob)> = jobs
                .into_iter()
                .enumerate()
                .filter_map(|(index, job)| Some((index, job?)))
                .filter(|(index, job)| {
                    states.get(index).is_some_and(|(s, _)| is_active(s))
                        && taken.insert(job.id.clone())
                })
                .collect();
            if !tasks.is_empty() {
                followed.extend(tasks.iter().map(|(_, job)| job.clone()));
                self.attach(&array, tasks);
            }
        }
        followed
    }

    fn attach(&mut self, array: &str, tasks: Vec<(usize, TrialJob)>) {
        self.ready.push_back(ExecEvent::Message(format!(
            "following Slurm job {array} ({} tasks still queued or running)",
            tasks.len()
        )));
        for (index, job) in tasks {
            self.tasks.insert(
                job.id.clone(),
                Task {
                    job,
                    array: array.to_string(),
                    index,
                    started: None,
                    reported_lines: 0,
                    missing_polls: 0,
                    stopping: None,
                },
            );
        }
    }

    /// The scripts that submitting `jobs` would send, without submitting (for `--dry-run`).
    pub fn scripts(&mut self, jobs: &[TrialJob]) -> Vec<ArrayScript> {
        let chunk = self.chunk_size();
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        jobs.chunks(chunk)
            .enumerate()
            .map(|(k, part)| {
                let list_path = self
                    .sweep_dir
                    .join("slurm")
                    .join(format!("tasks-{stamp}-{k}.txt"));
                let after = (k > 0 && self.opts.array_parallelism.is_some())
                    .then(|| format!("<job id of array {k}>"));
                ArrayScript {
                    script: script(
                        &self.name,
                        &self.sweep_dir,
                        &list_path,
                        part.len(),
                        after.as_deref(),
                        &self.opts,
                    ),
                    list: task_list(part),
                }
            })
            .collect()
    }

    fn chunk_size(&mut self) -> usize {
        *self.max_array.get_or_insert_with(max_array_size)
    }

    /// Submits the queued trials as arrays of at most `MaxArraySize` tasks. With
    /// `--array-parallelism`, each array waits for the previous one, so that the cap holds
    /// across arrays.
    fn submit_queued(&mut self) -> anyhow::Result<()> {
        let jobs = std::mem::take(&mut self.queued);
        let chunk = self.chunk_size();
        let slurm_dir = self.sweep_dir.join("slurm");
        std::fs::create_dir_all(&slurm_dir)
            .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S%.3f");
        for (k, part) in jobs.chunks(chunk).enumerate() {
            let list_path = slurm_dir.join(format!("tasks-{stamp}-{k}.txt"));
            let script_path = slurm_dir.join(format!("submit-{stamp}-{k}.sh"));
            let after = self
                .opts
                .array_parallelism
                .and(self.last_array.as_deref())
                .filter(|job| self.tasks.values().any(|t| t.array == *job));
            let text = script(
                &self.name,
                &self.sweep_dir,
                &list_path,
                part.len(),
                after,
                &self.opts,
            );
            atomic::write(&list_path, task_list(part))?;
            atomic::write(&script_path, &text)?;
            let array = submit(&script_path)?;
            self.ready.push_back(ExecEvent::Submitted {
                job: array.clone(),
                trials: part.iter().map(|j| j.id.clone()).collect(),
            });
            self.ready.push_back(ExecEvent::Message(format!(
                "submitted Slurm job {array}: {} tasks, script {}",
                part.len(),
                script_path.display()
            )));
            for (index, job) in part.iter().enumerate() {
                self.tasks.insert(
                    job.id.clone(),
                    Task {
                        job: job.clone(),
                        array: array.clone(),
                        index,
                        started: None,
                        reported_lines: 0,
                        missing_polls: 0,
                        stopping: None,
                    },
                );
            }
            self.last_array = Some(array);
        }
        Ok(())
    }

    /// squeue for `array`, tolerating failures for a while.
    fn states(&mut self, array: &str) -> anyhow::Result<Option<HashMap<usize, (String, String)>>> {
        match task_states(array) {
            Ok(s) => {
                self.squeue_failing = None;
                Ok(Some(s))
            }
            Err(e) => {
                let since = self
                    .squeue_failing
                    .get_or_insert_with(|| (Instant::now(), String::new()));
                since.1 = format!("{e:#}");
                if since.0.elapsed() > SQUEUE_PATIENCE {
                    bail!(
                        "squeue has failed for {} s; giving up: {e:#}",
                        SQUEUE_PATIENCE.as_secs()
                    );
                }
                self.ready.push_back(ExecEvent::Message(format!(
                    "squeue failed, trying again at the next poll: {e:#}"
                )));
                Ok(None)
            }
        }
    }

    /// Reads squeue and the trial directories; queues what changed.
    fn poll(&mut self) -> anyhow::Result<()> {
        self.last_poll = Some(Instant::now());
        let mut arrays: Vec<String> = self.tasks.values().map(|t| t.array.clone()).collect();
        arrays.sort();
        arrays.dedup();
        for array in arrays {
            let Some(states) = self.states(&array)? else {
                return Ok(());
            };
            let ids: Vec<String> = self
                .tasks
                .iter()
                .filter(|(_, t)| t.array == array)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                let t = self.tasks.get_mut(&id).expect("listed above");
                let state = states.get(&t.index);
                let active = state.is_some_and(|(s, _)| is_active(s));
                let running = state.is_some_and(|(s, _)| s != "PENDING");
                let ran = || RunDir::open(&t.job.dir).is_ok_and(|d| d.read_summary().is_ok());
                if t.started.is_none() && (running || (state.is_none() && ran())) {
                    t.started = Some(Instant::now());
                    let node = state.map_or("", |(_, n)| n.as_str());
                    self.ready.push_back(ExecEvent::Started {
                        trial: id.clone(),
                        device: format!("slurm:{array}_{}@{node}", t.index),
                    });
                }
                if t.started.is_some() {
                    report_events(t, &mut self.ready);
                }
                if active {
                    t.missing_polls = 0;
                    continue;
                }
                if state.is_none() && TaskRecord::read(&t.job.dir).is_none() {
                    // Just submitted and not listed yet, or long gone without a trace.
                    t.missing_polls += 1;
                    if t.missing_polls < 10 {
                        continue;
                    }
                }
                let mut t = self.tasks.remove(&id).expect("listed above");
                let state = state.map_or("gone from the queue", |(s, _)| s.as_str());
                let exit = match TaskRecord::read(&t.job.dir) {
                    Some(r) => format!("task exited with code {}", r.exit_code),
                    None => format!("Slurm task ended ({state}) without writing {TASK_FILE}"),
                };
                let stopped = t
                    .stopping
                    .or((state == "TIMEOUT").then_some(StopReason::Timeout))
                    .or((state == "CANCELLED").then_some(StopReason::Interrupted));
                let seconds = t.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                let mut outcome = outcome_from_dir(&t.job.dir, &exit, stopped, seconds);
                if state == "OUT_OF_MEMORY" && !outcome.status.is_final() {
                    outcome.status = TrialStatus::Oom;
                }
                if t.started.is_none() {
                    self.ready.push_back(ExecEvent::Started {
                        trial: id.clone(),
                        device: format!("slurm:{array}_{}", t.index),
                    });
                }
                report_events(&mut t, &mut self.ready);
                self.ready
                    .push_back(ExecEvent::Ended { trial: id, outcome });
            }
        }
        Ok(())
    }

    fn arrays(&self) -> Vec<String> {
        let mut a: Vec<String> = self.tasks.values().map(|t| t.array.clone()).collect();
        a.sort();
        a.dedup();
        a
    }
}

/// One trial directory per line.
fn task_list(jobs: &[TrialJob]) -> String {
    jobs.iter()
        .map(|j| {
            let dir = std::path::absolute(&j.dir).unwrap_or_else(|_| j.dir.clone());
            dir.display().to_string() + "\n"
        })
        .collect()
}

/// Queues the events a task appended to its `events.jsonl` since the last poll.
fn report_events(t: &mut Task, out: &mut VecDeque<ExecEvent>) {
    let (events, lines) =
        crate::events::read_appended(&t.job.dir.join(EVENTS_FILE), t.reported_lines);
    t.reported_lines = lines;
    out.extend(events.into_iter().map(ExecEvent::Progress));
}

impl Executor for SlurmExecutor {
    fn room_for(&self, _cap: Option<usize>) -> bool {
        // Slurm queues everything; --array-parallelism throttles inside each array.
        true
    }

    fn per_device(&self) -> usize {
        1
    }

    fn parallelism(&self) -> Option<usize> {
        self.opts.array_parallelism
    }

    fn lend_idle_cores(&mut self, _idle: bool) -> anyhow::Result<()> {
        Ok(()) // a task has the CPUs Slurm gave it
    }

    fn start(&mut self, group: Vec<TrialJob>) -> anyhow::Result<()> {
        anyhow::ensure!(
            group.len() == 1,
            "the Slurm backend runs one trial per array task, not packs"
        );
        for job in group {
            // A task appends to events.jsonl; a new attempt starts a new stream.
            let _ = std::fs::remove_file(job.dir.join(EVENTS_FILE));
            let _ = std::fs::remove_file(job.dir.join(TASK_FILE));
            self.queued.push(job);
        }
        Ok(())
    }

    fn stop(&mut self, trial: &str, reason: StopReason) -> anyhow::Result<()> {
        let Some(t) = self.tasks.get_mut(trial) else {
            return Ok(());
        };
        if t.stopping.is_some() {
            return Ok(());
        }
        t.stopping = Some(reason);
        RunDir::open(&t.job.dir)?.request_stop(reason)?;
        let target = format!("{}_{}", t.array, t.index);
        if let Err(e) = slurm("scancel", &[&target]) {
            self.ready
                .push_back(ExecEvent::Message(format!("cannot stop {trial}: {e:#}")));
        }
        Ok(())
    }

    fn interrupt(&mut self) -> anyhow::Result<Interrupt> {
        let arrays = self.arrays();
        if arrays.is_empty() {
            return Ok(Interrupt::Stopping);
        }
        if should_cancel(&self.opts, &arrays) {
            for t in self.tasks.values_mut() {
                t.stopping = Some(StopReason::Interrupted);
            }
            for array in &arrays {
                slurm("scancel", &[array])?;
            }
            self.ready.push_back(ExecEvent::Message(format!(
                "cancelled Slurm job {}; waiting for its tasks to stop",
                arrays.join(", ")
            )));
            Ok(Interrupt::Stopping)
        } else {
            self.ready.push_back(ExecEvent::Message(format!(
                "leaving Slurm job {} running; `sweep collect {}` gathers its results, `scancel {}` stops it",
                arrays.join(", "),
                self.sweep_dir.display(),
                arrays.join(" ")
            )));
            Ok(Interrupt::Detached)
        }
    }

    fn next_event(&mut self, timeout: Duration) -> anyhow::Result<ExecEvent> {
        if !self.queued.is_empty() {
            self.submit_queued()?;
        }
        if let Some(e) = self.ready.pop_front() {
            return Ok(e);
        }
        let due = self.last_poll.map_or(Duration::ZERO, |at| {
            self.opts.poll.saturating_sub(at.elapsed())
        });
        if due > timeout {
            std::thread::sleep(timeout);
            return Ok(ExecEvent::Tick);
        }
        std::thread::sleep(due);
        if !self.tasks.is_empty() {
            self.poll()?;
        } else {
            self.last_poll = Some(Instant::now());
        }
        Ok(self.ready.pop_front().unwrap_or(ExecEvent::Tick))
    }
}

/// Whether to cancel `jobs` after Ctrl-C: yes with --cancel-on-exit, else ask on a terminal.
fn should_cancel(opts: &SlurmOptions, jobs: &[String]) -> bool {
    if opts.cancel_on_exit {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!(
        "\nCancel Slurm job {} (scancel)? Otherwise it keeps running. [y/N] ",
        jobs.join(", ")
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_requests_what_the_options_say() {
        let opts = SlurmOptions {
            array_parallelism: Some(2),
            gpus_per_trial: 1,
            cpus_per_trial: 4,
            mem: Some("8G".into()),
            time: Some("1:00:00".into()),
            partition: Some("gpu".into()),
            sbatch_args: vec!["--qos=high".into()],
            cancel_on_exit: false,
            poll: Duration::from_secs(1),
            requeue_before: Duration::from_secs(90),
            exe: PathBuf::from("/opt/sweep/bin/sweep"),
        };
        let s = script(
            "lr",
            Path::new("/scratch/results/lr"),
            Path::new("/scratch/results/lr/slurm/tasks-1.txt"),
            4,
            Some("77"),
            &opts,
        );
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --mem=8G",
            "#SBATCH --time=1:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --dependency=afterany:77",
            "#SBATCH --qos=high",
            "#SBATCH --requeue",
            "export SWEEP_REQUEUE_BEFORE=90",
            "#SBATCH --output=/scratch/results/lr/slurm/%A_%a.out",
            "exec /opt/sweep/bin/sweep --threads 4 trial --list /scratch/results/lr/slurm/tasks-1.txt --task \"$SLURM_ARRAY_TASK_ID\" --events file",
        ] {
            assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
        }
    }

    #[test]
    fn a_worker_script_runs_sweep_worker_in_every_task_from_the_sweeps_directory() {
        let opts = SlurmOptions {
            array_parallelism: None,
            gpus_per_trial: 0,
            cpus_per_trial: 2,
            mem: Some("4G".into()),
            time: None,
            partition: None,
            sbatch_args: vec![],
            cancel_on_exit: false,
            poll: Duration::from_secs(2),
            requeue_before: Duration::from_secs(120),
            exe: PathBuf::from("/opt/sweep"),
        };
        let script = worker_script(
            "tpe",
            Path::new("/scratch/results/tpe"),
            Path::new("/home/me/project dir"),
            3,
            &["--retries".into(), "1".into()],
            &opts,
        );
        let lines: Vec<&str> = script.lines().collect();
        for want in [
            "#SBATCH --job-name=sweep-tpe-workers",
            "#SBATCH --array=0-2",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=4G",
            "#SBATCH --output=/scratch/results/tpe/slurm/worker-%A_%a.out",
            "cd '/home/me/project dir'",
            "exec /opt/sweep --threads 2 worker /scratch/results/tpe --threads-per-trial 2 --retries 1",
        ] {
            assert!(lines.contains(&want), "{want} in:\n{script}");
        }
    }

    #[test]
    fn slurm_durations_parse_in_its_formats() {
        let d = |s| parse_slurm_duration(s).map(|d| d.as_secs());
        assert_eq!(d("0:43"), Some(43));
        assert_eq!(d("1:02:03"), Some(3723));
        assert_eq!(d("2-01:00:00"), Some(2 * 86400 + 3600));
        assert_eq!(d("59"), Some(59));
        assert_eq!(d("UNLIMITED"), None);
        assert_eq!(d("INVALID"), None);
    }
}
