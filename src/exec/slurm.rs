//! The Slurm executor: the trials go out as one job array whose task `i` runs
//! `sweep trial DIR --index i`; the orchestrator polls `squeue` (no accounting needed), reads
//! what each task wrote in its trial directory, and reports it like the local executor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{RunEnd, TrialJob, TrialSink, outcome_from_dir};
use crate::store::atomic;
use crate::store::journal::TrialStatus;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::EVENTS_FILE;
use crate::trial::TrialEvent;

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
    /// The `sweep` binary the tasks run (on a cluster: a path every node can see).
    pub exe: PathBuf,
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

/// The job-array script for `indices` of the sweep in `sweep_dir`.
pub fn script(name: &str, sweep_dir: &Path, indices: &[usize], opts: &SlurmOptions) -> String {
    let mut array = compress_ranges(indices);
    if let Some(p) = opts.array_parallelism {
        array.push_str(&format!("%{p}"));
    }
    let log_dir = sweep_dir.join("slurm");
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=sweep-{name}"),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --cpus-per-task={}", opts.cpus_per_trial),
        format!("#SBATCH --output={}/%A_%a.out", log_dir.display()),
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
    for a in &opts.sbatch_args {
        lines.push(format!("#SBATCH {a}"));
    }
    lines.push(format!(
        "# Task i trains trial i of {}/plan.json into {}/trials/<id>/.",
        sweep_dir.display(),
        sweep_dir.display()
    ));
    lines.push(format!(
        "exec {} --threads {} trial {} --index \"$SLURM_ARRAY_TASK_ID\"",
        shell_quote(&opts.exe.display().to_string()),
        opts.cpus_per_trial,
        shell_quote(&sweep_dir.display().to_string())
    ));
    lines.join("\n") + "\n"
}

/// "0-3,7,9-10" for [0, 1, 2, 3, 7, 9, 10].
pub fn compress_ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
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
fn submit(script_path: &Path) -> anyhow::Result<String> {
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
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
    )
}

/// Per-task bookkeeping while polling.
struct Tracked {
    job: TrialJob,
    started: Option<Instant>,
    reported_events: usize,
    missing_polls: u32,
}

/// Submits `jobs` as one array (or attaches to `attach`: a job id with tasks still queued or
/// running from an earlier orchestrator) and follows them until every task ended.
pub fn run(
    name: &str,
    sweep_dir: &Path,
    jobs: Vec<TrialJob>,
    attach: Option<(String, Vec<TrialJob>)>,
    opts: &SlurmOptions,
    sink: &mut dyn TrialSink,
) -> anyhow::Result<RunEnd> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handler")?;
    }
    // (job id, tasks) groups to follow.
    let mut groups: Vec<(String, BTreeMap<usize, Tracked>)> = Vec::new();
    let track = |jobs: Vec<TrialJob>| -> BTreeMap<usize, Tracked> {
        jobs.into_iter()
            .map(|job| {
                (
                    job.index,
                    Tracked {
                        job,
                        started: None,
                        reported_events: 0,
                        missing_polls: 0,
                    },
                )
            })
            .collect()
    };
    if let Some((job_id, attached)) = attach {
        sink.message(&format!(
            "following Slurm job {job_id} ({} tasks still queued or running)",
            attached.len()
        ));
        groups.push((job_id, track(attached)));
    }
    if !jobs.is_empty() {
        let indices: Vec<usize> = jobs.iter().map(|j| j.index).collect();
        let text = script(name, sweep_dir, &indices, opts);
        let slurm_dir = sweep_dir.join("slurm");
        std::fs::create_dir_all(&slurm_dir)
            .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let path = slurm_dir.join(format!("submit-{stamp}.sh"));
        atomic::write(&path, &text)?;
        let job_id = submit(&path)?;
        sink.submitted(&job_id, &jobs)?;
        sink.message(&format!(
            "submitted Slurm job {job_id}: {} tasks (--array={}), script {}",
            jobs.len(),
            compress_ranges(&indices),
            path.display()
        ));
        groups.push((job_id, track(jobs)));
    }

    let mut cancelling: HashSet<String> = HashSet::new();
    loop {
        let mut open = 0;
        for (job_id, tasks) in &mut groups {
            if tasks.is_empty() {
                continue;
            }
            let states = task_states(job_id)?;
            let mut done = Vec::new();
            for (index, t) in tasks.iter_mut() {
                let state = states.get(index);
                let active = state.is_some_and(|(s, _)| is_active(s));
                let running = state.is_some_and(|(s, _)| s != "PENDING");
                if t.started.is_none()
                    && (running
                        || (state.is_none()
                            && RunDir::open(&t.job.dir).is_ok_and(|d| d.read_summary().is_ok())))
                {
                    t.started = Some(Instant::now());
                    let node = state.map_or("", |(_, n)| n.as_str());
                    sink.started(&t.job, &format!("slurm:{job_id}_{index}@{node}"))?;
                }
                if t.started.is_some() {
                    report_epochs(t, sink);
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
                done.push(*index);
            }
            for index in done {
                let mut t = tasks.remove(&index).expect("listed above");
                let state = states
                    .get(&index)
                    .map(|(s, _)| s.as_str())
                    .unwrap_or("gone from the queue");
                let exit = match TaskRecord::read(&t.job.dir) {
                    Some(r) => format!("task exited with code {}", r.exit_code),
                    None => format!("Slurm task ended ({state}) without writing {TASK_FILE}"),
                };
                let seconds = t.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                let mut outcome = outcome_from_dir(
                    &t.job.dir,
                    &exit,
                    state == "TIMEOUT",
                    state == "CANCELLED" || cancelling.contains(job_id.as_str()),
                    seconds,
                );
                if state == "OUT_OF_MEMORY" && !outcome.status.is_final() {
                    outcome.status = TrialStatus::Oom;
                }
                if t.started.is_none() {
                    sink.started(&t.job, &format!("slurm:{job_id}_{index}"))?;
                }
                report_epochs(&mut t, sink);
                sink.finished(&t.job, &outcome)?;
            }
            open += tasks.len();
        }
        if open == 0 {
            break;
        }
        if stop.swap(false, Ordering::Relaxed) {
            let active: Vec<String> = groups
                .iter()
                .filter(|(_, t)| !t.is_empty())
                .map(|(j, _)| j.clone())
                .collect();
            if should_cancel(opts, &active) {
                for job in &active {
                    slurm("scancel", &[job])?;
                    cancelling.insert(job.clone());
                }
                sink.message(&format!(
                    "cancelled Slurm job {}; waiting for its tasks to stop",
                    active.join(", ")
                ));
            } else {
                sink.message(&format!(
                    "leaving Slurm job {} running; `sweep collect {}` gathers its results, `scancel {}` stops it",
                    active.join(", "),
                    sweep_dir.display(),
                    active.join(" ")
                ));
                return Ok(RunEnd::Detached);
            }
        }
        std::thread::sleep(opts.poll);
    }
    Ok(if cancelling.is_empty() {
        RunEnd::Drained
    } else {
        RunEnd::Interrupted
    })
}

/// Delivers the events a task appended to its `events.jsonl` since the last poll.
fn report_epochs(t: &mut Tracked, sink: &mut dyn TrialSink) {
    let Ok(text) = std::fs::read_to_string(t.job.dir.join(EVENTS_FILE)) else {
        return;
    };
    // Only complete lines: the task may be writing the last one.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in complete.lines().skip(t.reported_events) {
        if let Some(event) = TrialEvent::parse(line) {
            sink.event(&t.job, &event);
        }
        t.reported_events += 1;
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
    fn array_ranges_are_compressed() {
        assert_eq!(compress_ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(compress_ranges(&[7, 0, 2, 1, 9, 10]), "0-2,7,9-10");
        assert_eq!(compress_ranges(&[5]), "5");
    }

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
            exe: PathBuf::from("/opt/sweep/bin/sweep"),
        };
        let s = script("lr", Path::new("/scratch/results/lr"), &[0, 1, 2, 3], &opts);
        for line in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --mem=8G",
            "#SBATCH --time=1:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --qos=high",
            "#SBATCH --output=/scratch/results/lr/slurm/%A_%a.out",
            "exec /opt/sweep/bin/sweep --threads 4 trial /scratch/results/lr --index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
        }
    }
}
