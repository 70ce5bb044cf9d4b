//! End-to-end tests of the Slurm backend against a real Slurm (scripts/slurm-test-cluster.sh).
//!
//! Without a cluster these tests print why and pass, unless SWEEP_REQUIRE_SLURM=1 (as in CI),
//! where a missing cluster is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The tests share one small cluster: run them one at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

fn cluster_available() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false);
    if !up {
        let msg =
            "no Slurm cluster answers `sinfo` (start one with `scripts/slurm-test-cluster.sh up`)";
        if std::env::var("SWEEP_REQUIRE_SLURM").as_deref() == Ok("1") {
            panic!("{msg}, and SWEEP_REQUIRE_SLURM=1");
        }
        eprintln!("SKIPPED: {msg}");
    }
    up
}

/// A list sweep over the given trial tables, its base training a small slice of MNIST.
fn list_spec(dir: &Path, name: &str, epochs: usize, trials: &[&str]) -> PathBuf {
    let base = small_config(dir, "");
    let text = std::fs::read_to_string(&base)
        .unwrap()
        .replace("epochs = 1", &format!("epochs = {epochs}"));
    std::fs::write(&base, text.replace("hidden = [128, 128]", "hidden = [64]")).unwrap();
    let mut s = format!("name = \"{name}\"\nbase = \"trial.toml\"\n[search]\nmethod = \"list\"\n");
    for t in trials {
        s.push_str(&format!("[[search.trials]]\n{t}\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, s).unwrap();
    path
}

fn slurm_run(spec: &Path, results: &Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--backend",
        "slurm",
        "--poll",
        "200ms",
    ];
    args.extend_from_slice(extra);
    sweep(&args)
}

fn queue_empty(job: &str) -> bool {
    let out = Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%i"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn a_four_trial_sweep_runs_as_one_array_two_at_a_time_and_records_a_failed_task() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-four");
    // One trial reads a data directory whose training images are truncated: it fails.
    let broken = dir.join("broken-mnist");
    std::fs::create_dir_all(&broken).unwrap();
    for f in [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(root().join("data/mnist").join(f), broken.join(f)).unwrap();
    }
    std::fs::write(
        broken.join("train-images-idx3-ubyte"),
        [0u8, 0, 8, 3, 0, 0, 0, 9],
    )
    .unwrap();
    let spec = list_spec(
        &dir,
        "four",
        2,
        &[
            "\"optimizer.lr\" = 0.005",
            "\"optimizer.lr\" = 0.05",
            &format!("\"data.dir\" = \"{}\"", broken.display()),
            "\"optimizer.lr\" = 0.02",
        ],
    );
    let results = dir.join("results");
    let start = Instant::now();
    let o = common::run(slurm_run(
        &spec,
        &results,
        &["--array-parallelism", "2", "--gpus-per-trial", "1"],
    ));
    let wall = start.elapsed();
    eprintln!("4-trial Slurm sweep: {:.1} s wall", wall.as_secs_f64());
    assert_eq!(o.status.code(), Some(2), "one trial failed: {}", text(&o));
    let root = results.join("four");
    // The first submission is the whole sweep (a second one retries the failed trial).
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    let script = std::fs::read_to_string(&scripts[0]).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    assert!(script.contains("#SBATCH --gres=gpu:1"), "{script}");

    let rows = csv_rows(&root.join("leaderboard.csv"))[1..].to_vec();
    assert_eq!(rows.len(), 4);
    let ranked: Vec<&Vec<String>> = rows.iter().filter(|r| !r[0].is_empty()).collect();
    assert_eq!(ranked.len(), 3);
    let acc = |r: &Vec<String>| r[3].parse::<f64>().unwrap();
    assert!(
        acc(ranked[0]) >= acc(ranked[1]) && acc(ranked[1]) >= acc(ranked[2]),
        "{rows:?}"
    );
    assert_eq!(rows[3][2], "failed");
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    assert_eq!(best.trim(), ranked[0][1]);
    let failed = journal(&root)
        .into_iter()
        .find(|e| e["event"] == "finished" && e["status"] == "failed")
        .expect("the failure is journalled");
    assert!(
        failed["message"].as_str().unwrap().contains("truncated"),
        "{failed}"
    );

    // Every task recorded the GPU Slurm gave it; two ran side by side on GPUs 0 and 1.
    let gpus: std::collections::BTreeSet<String> = std::fs::read_dir(root.join("trials"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path().join("slurm-task.json");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            v["cuda_visible_devices"].as_str().map(String::from)
        })
        .collect();
    assert_eq!(gpus.into_iter().collect::<Vec<_>>(), ["0", "1"]);
}

#[test]
fn ctrl_c_cancels_the_job_and_a_rerun_submits_only_unfinished_trials() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-cancel");
    let spec = list_spec(
        &dir,
        "cancel",
        3,
        &[
            "\"optimizer.lr\" = 0.01",
            "\"optimizer.lr\" = 0.02",
            "\"optimizer.lr\" = 0.03",
        ],
    );
    let results = dir.join("results");
    let root = results.join("cancel");
    let child = slurm_run(
        &spec,
        &results,
        &["--array-parallelism", "1", "--cancel-on-exit"],
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Let the first trial finish and the second start, then interrupt.
    wait_for(
        "the first trial to finish",
        Duration::from_secs(120),
        || journal(&root).iter().any(|e| e["event"] == "finished"),
    );
    let out = interrupt(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = journal(&root);
    let job = j.iter().find(|e| e["event"] == "submitted").unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(queue_empty(&job), "the job was cancelled");
    let done: Vec<String> = j
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
        .map(|e| e["trial"].as_str().unwrap().to_string())
        .collect();
    assert!(!done.is_empty() && done.len() < 3, "{j:?}");

    let o = common::run(slurm_run(&spec, &results, &["--array-parallelism", "2"]));
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&root);
    let submissions: Vec<&serde_json::Value> =
        j.iter().filter(|e| e["event"] == "submitted").collect();
    assert_eq!(submissions.len(), 2);
    let resubmitted: Vec<&str> = submissions[1]["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        resubmitted.len(),
        3 - done.len(),
        "only unfinished trials are submitted again"
    );
    assert!(resubmitted.iter().all(|t| !done.iter().any(|d| d == t)));
    assert!(
        csv_rows(&root.join("leaderboard.csv"))[1..]
            .to_vec()
            .iter()
            .all(|r| r[2] == "completed")
    );
}

#[test]
fn a_detached_sweep_is_gathered_by_collect() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-collect");
    let spec = list_spec(
        &dir,
        "detach",
        15,
        &["\"optimizer.lr\" = 0.01", "\"optimizer.lr\" = 0.02"],
    );
    let results = dir.join("results");
    let root = results.join("detach");
    let child = slurm_run(&spec, &results, &["--array-parallelism", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the job to be submitted", Duration::from_secs(60), || {
        journal(&root).iter().any(|e| e["event"] == "submitted")
    });
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("leaving Slurm job"), "{err}");
    let job = journal(&root)
        .iter()
        .find(|e| e["event"] == "submitted")
        .unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(
        "the detached job to finish",
        Duration::from_secs(120),
        || queue_empty(&job),
    );
    let o = common::run(sweep(&["collect", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("leaderboard.csv"))[1..].to_vec();
    assert!(rows.iter().all(|r| r[2] == "completed"), "{rows:?}");
    assert!(root.join("best/best.safetensors").is_file());
}

#[test]
fn stopping_one_of_two_slurm_tasks_leaves_the_other_to_finish() {
    use sweep::events::TrialEvent;
    use sweep::exec::slurm::{SlurmExecutor, SlurmOptions};
    use sweep::exec::{ExecEvent, Executor};
    use sweep::trial::{StopReason, TrialStatus};
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-stop-one");
    let sweep_dir = dir.join("stop-one");
    let trials = sweep_dir.join("trials");
    let mut exec = SlurmExecutor::new(
        "stop-one",
        &sweep_dir,
        SlurmOptions {
            array_parallelism: None,
            gpus_per_trial: 0,
            cpus_per_trial: 1,
            mem: None,
            time: None,
            partition: None,
            sbatch_args: vec![],
            cancel_on_exit: true,
            poll: Duration::from_millis(200),
            requeue_before: Duration::from_secs(120),
            exe: env!("CARGO_BIN_EXE_sweep").into(),
        },
    )
    .unwrap();
    exec.start(vec![prepared_trial(&trials, "long", 500)])
        .unwrap();
    exec.start(vec![prepared_trial(&trials, "short", 3)])
        .unwrap();
    let mut submitted = 0;
    let ended = drive(&mut exec, 2, |exec, e| match e {
        ExecEvent::Submitted { trials, .. } => submitted += trials.len(),
        ExecEvent::Progress(TrialEvent::Epoch { trial, .. }) if trial == "long" => {
            exec.stop("long", StopReason::Pruned).unwrap();
        }
        _ => {}
    });
    assert_eq!(submitted, 2, "one array of two tasks");
    assert_eq!(
        ended["long"].status,
        TrialStatus::Pruned,
        "{:?}",
        ended["long"]
    );
    assert_eq!(
        ended["short"].status,
        TrialStatus::Completed,
        "{:?}",
        ended["short"]
    );
    assert_eq!(summary(&trials.join("short"))["epochs_run"], 3);
    assert!(
        summary(&trials.join("long"))["epochs_run"]
            .as_u64()
            .unwrap()
            < 500
    );
}

#[test]
fn a_sweep_longer_than_max_array_size_goes_out_as_several_arrays() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let limit: usize = String::from_utf8(
        Command::new("scontrol")
            .args(["show", "config"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .find(|l| l.starts_with("MaxArraySize"))
    .and_then(|l| l.split('=').nth(1))
    .map(|v| v.trim().parse().unwrap())
    .unwrap();
    let n = limit + 2;
    let dir = scratch("slurm-split");
    let lrs: Vec<String> = (0..n)
        .map(|i| format!("\"optimizer.lr\" = {}", 0.001 * (i + 1) as f64))
        .collect();
    let lrs: Vec<&str> = lrs.iter().map(String::as_str).collect();
    let spec = list_spec(&dir, "split", 1, &lrs);
    let results = dir.join("results");
    let o = common::run(slurm_run(&spec, &results, &["--array-parallelism", "2"]));
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("split");
    let j = journal(&root);
    let arrays: Vec<usize> = j
        .iter()
        .filter(|e| e["event"] == "submitted")
        .map(|e| e["trials"].as_array().unwrap().len())
        .collect();
    assert_eq!(arrays, [limit, 2], "split at MaxArraySize = {limit}");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), n + 1);
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
    // The second array waits for the first, so that --array-parallelism 2 holds across both.
    let scripts: Vec<String> = std::fs::read_dir(root.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        scripts
            .iter()
            .filter(|s| s.contains("#SBATCH --dependency=afterany:"))
            .count(),
        1,
        "{scripts:?}"
    );
}

#[test]
fn squeue_failing_for_a_while_does_not_stop_the_sweep() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-flaky");
    // An squeue that fails its first three calls, then is the real one.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = String::from_utf8(Command::new("which").arg("squeue").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let counter = dir.join("calls");
    let fake = bin.join("squeue");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}\n\
             if [ \"$n\" -lt 3 ]; then echo 'slurm_load_jobs error: Socket timed out' >&2; exit 1; fi\n\
             exec {real} \"$@\"\n",
            c = counter.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = list_spec(&dir, "flaky", 1, &["\"optimizer.lr\" = 0.01"]);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = slurm_run(&spec, &dir.join("results"), &[]);
    cmd.env("PATH", path);
    let o = common::run(cmd);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("squeue failed, trying again"),
        "{}",
        text(&o)
    );
    assert!(
        std::fs::read_to_string(&counter)
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
            > 3
    );
}

#[test]
fn a_slurm_trial_past_its_timeout_is_stopped_and_retried() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-timeout");
    let spec = list_spec(&dir, "slow", 2000, &["\"optimizer.lr\" = 0.01"]);
    let results = dir.join("results");
    let o = common::run(slurm_run(
        &spec,
        &results,
        &["--timeout-per-trial", "2s", "--retries", "1"],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let j = journal(&results.join("slow"));
    let ends: Vec<&str> = j
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        ends,
        ["timeout", "timeout"],
        "one attempt and one retry: {j:?}"
    );
    assert_eq!(j.iter().filter(|e| e["event"] == "submitted").count(), 2);
}

#[test]
fn a_trial_longer_than_its_time_limit_finishes_over_requeues_with_the_same_metrics() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-requeue");
    // 30 to 45 s of training, by machine; a one-minute limit, stopped 50 s before it: slices of
    // about 10 s, though Slurm may send the signal early (sbatch(1): by up to 60 s), so how many
    // requeues a machine sees varies. One is enough to show a resumed trial ends as an uninterrupted one.
    let base = small_config(&dir, "");
    let config = std::fs::read_to_string(&base)
        .unwrap()
        .replace("epochs = 1", "epochs = 220")
        .replace("train_limit = 2000", "train_limit = 10000")
        .replace("hidden = [128, 128]", "hidden = [256, 256]");
    std::fs::write(&base, config).unwrap();
    let spec = dir.join("rq.toml");
    std::fs::write(
        &spec,
        "name = \"rq\"\nbase = \"trial.toml\"\n[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"long\"\n",
    )
    .unwrap();
    let results = dir.join("results");
    let child = slurm_run(&spec, &results, &["--time", "1", "--requeue-before", "50s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Meanwhile, the same configuration without interruption.
    let straight = dir.join("straight");
    let o = common::run(sweep(&[
        "train",
        base.to_str().unwrap(),
        "--out",
        straight.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("rq");
    let trial = only_trial(&root);
    let log: String = std::fs::read_dir(root.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let requeues = log.matches("requeued job").count();
    assert!(requeues >= 1, "{requeues} requeues:\n{log}");
    assert_eq!(summary(&trial)["status"], "completed");
    assert_eq!(
        metrics_without_time(&trial),
        metrics_without_time(&straight)
    );
    let j = journal(&root);
    assert_eq!(
        j.iter().filter(|e| e["event"] == "finished").count(),
        1,
        "one attempt, however many requeues"
    );
}

#[test]
fn a_tpe_command_sweep_on_slurm_submits_trials_as_they_are_asked_and_ranks_them() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-tpe");
    let spec = dir.join("tpe.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"tpe\"\nmetric = \"val_acc\"\n[command]\nrun = [\"python3\", \"{}\", \"--lr\", \"{{lr}}\", \"--epochs\", \"2\"]\n[params]\nlr = 0.01\n[search]\nmethod = \"tpe\"\nsamples = 6\nstartup = 2\nseed = 1\n[search.params]\nlr = {{ log_uniform = [0.0001, 1.0] }}\n",
            root().join("tests/programs/fake_train.py").display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let o = common::run(slurm_run(&spec, &results, &["--array-parallelism", "2"]));
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&results.join("tpe"));
    let asked = j.iter().filter(|e| e["event"] == "trial").count();
    assert_eq!(asked, 6);
    let submissions = j.iter().filter(|e| e["event"] == "submitted").count();
    assert!(
        submissions >= 3,
        "trials go out as they are asked: {submissions} submissions"
    );
    // Never more than 2 trials in flight.
    let mut running = 0i32;
    for e in &j {
        match e["event"].as_str().unwrap() {
            "started" => running += 1,
            "finished" => running -= 1,
            _ => {}
        }
        assert!(running <= 2, "{j:?}");
    }
    let rows = csv_rows(&results.join("tpe/leaderboard.csv"));
    assert_eq!(rows.len(), 7);
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
    // A command sweep on Slurm ranks on what the program reported.
    assert_eq!(rows[0][3], "val_acc");
    let values: Vec<f64> = rows[1..].iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
}

/// The Slurm array task a process runs in, from its environment.
fn array_task_of(pid: u64) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("SLURM_ARRAY_TASK_ID=").map(String::from))
}

#[test]
fn submitted_workers_run_a_tpe_sweep_with_asha_to_the_end_and_survive_a_cancelled_one() {
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_available() {
        return;
    }
    let dir = scratch("slurm-workers");
    // Every trial holds after epoch 2 until `release` exists: the cancelled worker surely runs one.
    let release = dir.join("release");
    let spec = dir.join("pulled.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"pulled\"\nmetric = \"val_acc\"\n[command]\nrun = [\"python3\", \"{}\", \"--lr\", \"{{lr}}\", \"--epochs\", \"4\", \"--sleep\", \"0.2\", \"--hold-after\", \"2\", \"--hold-file\", \"{}\"]\n[params]\nlr = 0.01\n[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\n[search]\nmethod = \"tpe\"\nsamples = 10\nstartup = 3\nseed = 2\n[search.params]\nlr = {{ log_uniform = [0.0001, 1.0] }}\n",
            root().join("tests/programs/fake_train.py").display(),
            release.display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let root = results.join("pulled");
    let o = common::run(sweep(&[
        "submit",
        spec.to_str().unwrap(),
        "--slurm",
        "--workers",
        "2",
        "--results",
        results.to_str().unwrap(),
        "--heartbeat",
        "1s",
        "--lease",
        "5s",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let job = out
        .split("as Slurm job ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a job id")
        .to_string();
    // `submit` returns at once: the workers run the sweep with no orchestrator.
    assert!(journal(&root).iter().all(|e| e["event"] != "finished"));
    // Both workers hold a trial: cancel one of them.
    let busy = || -> Vec<serde_json::Value> {
        std::fs::read_dir(root.join("workers"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .filter(|l| l["trials"].as_array().is_some_and(|t| !t.is_empty()))
                    .collect()
            })
            .unwrap_or_default()
    };
    // A trial ASHA let go on at epoch 2 stays held there until `release` exists.
    let held_on = |lease: &serde_json::Value| {
        let trial = &lease["trials"][0];
        journal(&root).iter().any(|e| {
            e["event"] == "decision"
                && e["trial"] == *trial
                && e["epoch"] == 2
                && e["stop"] == false
        })
    };
    let mut chosen = None;
    wait_for("a worker holding a trial", Duration::from_secs(120), || {
        chosen = busy().into_iter().find(|l| held_on(l));
        chosen.is_some()
    });
    let lease = chosen.unwrap();
    let trial = lease["trials"][0].as_str().unwrap().to_string();
    let worker = lease["worker"].as_str().unwrap().to_string();
    let task = array_task_of(lease["pid"].as_u64().unwrap()).expect("a worker in an array task");
    let c = Command::new("scancel")
        .arg(format!("{job}_{task}"))
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    wait_for(
        "the cancelled trial to go back",
        Duration::from_secs(60),
        || {
            journal(&root).iter().any(|e| {
                e["event"] == "finished"
                    && e["trial"] == trial.as_str()
                    && e["status"] == "interrupted"
            })
        },
    );
    std::fs::write(&release, "").unwrap();
    wait_for("the job to end", Duration::from_secs(240), || {
        queue_empty(&job)
    });
    // Every trial ended, ranked, with none left running.
    let j = journal(&root);
    let asked = j.iter().filter(|e| e["event"] == "trial").count();
    assert_eq!(asked, 10, "{j:?}");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 11);
    let status = rows[0].iter().position(|c| c == "status").unwrap();
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[status] == "completed" || r[status] == "pruned"),
        "{rows:?}"
    );
    assert!(
        rows[1..].iter().any(|r| r[status] == "pruned"),
        "ASHA pruned some: {rows:?}"
    );
    // The cancelled worker's trial went back to the sweep and finished under the other one.
    let claims: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "claimed" && e["trial"] == trial.as_str())
        .collect();
    assert!(claims.len() >= 2, "{claims:?}");
    assert_eq!(claims[0]["worker"], worker.as_str());
    assert_ne!(claims.last().unwrap()["worker"], worker.as_str());
    let last = j
        .iter()
        .rev()
        .find(|e| e["event"] == "finished" && e["trial"] == trial.as_str())
        .unwrap();
    assert!(
        last["status"] == "completed" || last["status"] == "pruned",
        "{last:?}"
    );
    let o = common::run(sweep(&["status", root.to_str().unwrap()]));
    assert!(
        text(&o).contains("orchestrator none (pull workers)"),
        "{}",
        text(&o)
    );
}
