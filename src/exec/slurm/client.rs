//! The Slurm command client: `sbatch`, `squeue` and `scontrol`, called and their output read.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// A Slurm duration (`squeue`'s `%L`): `SS`, `MM:SS`, `HH:MM:SS` or `D-HH:MM:SS`; None for
/// `UNLIMITED`, `NOT_SET` and anything else.
pub fn parse_duration(s: &str) -> Option<Duration> {
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

/// Runs a Slurm client command and returns its stdout.
pub(crate) fn slurm(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_durations_parse_in_its_formats() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("0:43"), Some(43));
        assert_eq!(d("1:02:03"), Some(3723));
        assert_eq!(d("2-01:00:00"), Some(2 * 86400 + 3600));
        assert_eq!(d("59"), Some(59));
        assert_eq!(d("UNLIMITED"), None);
        assert_eq!(d("INVALID"), None);
    }
}
