//! The Slurm executor: trials go out as job arrays whose task `i` runs the trial on line `i`
//! of the array's task list (`sweep trial --list FILE --task i`). The orchestrator polls
//! `squeue` (no accounting needed), reads what each task writes in its trial directory, and
//! reports it like the local executor. Arrays never exceed the cluster's `MaxArraySize`: a
//! longer list is split into several arrays. The Slurm commands are called in `client`, the
//! scripts written in `script`; what a task does inside its job is `trial_process`'s.

pub(crate) mod client;
mod script;

pub use client::submit;
pub use script::{ArrayScript, worker_script};

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{ExecEvent, Executor, Interrupt, TrialJob, outcome_from_dir};
use crate::events::{TASK_FILE, TaskRecord};
use crate::store::atomic;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::EVENTS_FILE;
use crate::trial::{StopReason, TrialStatus};
use client::{is_active, max_array_size, slurm, task_states};
use script::script;

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
