//! The sbatch scripts of a sweep: arrays of trials (`sweep run --backend slurm`) and arrays
//! of pull workers (`sweep submit --workers`).

use std::path::Path;

use super::SlurmOptions;
use crate::events::REQUEUE_BEFORE;

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
    let log = sweep_dir.join("slurm").join("%A_%a.out");
    let mut lines = header(&format!("sweep-{name}"), tasks, &log, opts);
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

/// The `#SBATCH` lines every script of a sweep shares: the job, its array of `tasks` tasks
/// (at most `array_parallelism` at once), resources, log, and requeueing (preempted, or near
/// its time limit, a task is requeued; its log keeps every run).
fn header(job_name: &str, tasks: usize, log: &Path, opts: &SlurmOptions) -> Vec<String> {
    let mut array = match tasks {
        1 => "0".to_string(),
        n => format!("0-{}", n - 1),
    };
    if let Some(p) = opts.array_parallelism {
        array.push_str(&format!("%{p}"));
    }
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
    let log = sweep_dir.join("slurm").join("worker-%A_%a.out");
    let mut lines = header(&format!("sweep-{name}-workers"), workers, &log, opts);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

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
}
