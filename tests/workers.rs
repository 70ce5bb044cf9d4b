//! End-to-end tests of pull workers (`sweep worker`): many processes run one sweep through its
//! results folder, with no orchestrator.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use common::*;

/// `sweep worker TARGET EXTRA...`, started in the background, its output captured.
fn spawn_worker(target: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["worker", target.to_str().unwrap()];
    args.extend_from_slice(extra);
    sweep(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn make_for_workers(spec: &Path, results: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--workers-only",
    ];
    args.extend_from_slice(extra);
    let o = run(sweep(&args));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is ready for workers"), "{}", text(&o));
}

/// Journal events named `event`, per trial.
fn per_trial(root: &Path, event: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for e in journal(root).iter().filter(|e| e["event"] == event) {
        *n.entry(e["trial"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    n
}

/// A TPE sweep of fake_train.py over lr and momentum.
fn tpe_spec(dir: &Path, samples: usize) -> PathBuf {
    common::tpe_spec(dir, "tpe", (samples, 5, 11), 0.02)
}

#[test]
fn four_workers_run_each_trial_of_a_tpe_sweep_once_and_ask_what_one_orchestrator_would() {
    let dir = scratch("workers-four");
    let s = tpe_spec(&dir, 40);
    let results = dir.join("results");
    let root = results.join("tpe");
    make_for_workers(&s, &results, &["--parallelism", "4"]);
    let workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(&root, &["--threads-per-trial", "1"]))
        .collect();
    let outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", text(o));
    }
    // Every trial was claimed, started and finished exactly once.
    let ids = asked(&root);
    assert_eq!(ids.len(), 40);
    for event in ["claimed", "finished"] {
        let n = per_trial(&root, event);
        assert_eq!(n.len(), 40, "{event}");
        assert!(n.values().all(|&c| c == 1), "{event} more than once: {n:?}");
    }
    // Every worker took part (4 workers, 40 trials).
    let claimants: std::collections::HashSet<String> = journal(&root)
        .iter()
        .filter(|e| e["event"] == "claimed")
        .map(|e| e["worker"].as_str().unwrap().to_string())
        .collect();
    assert!(claimants.len() >= 2, "{claimants:?}");
    // The leaderboard is complete.
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 41);
    let status = rows[0].iter().position(|c| c == "status").unwrap();
    assert!(rows[1..].iter().all(|r| r[status] == "completed"));
    // The same trials as one orchestrator running 4 at a time.
    let alone = dir.join("alone");
    let o = run_sweep(&s, &alone, &["--devices", "cpu", "--per-device", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ids, asked(&alone.join("tpe")));
    // Workers leave no lease behind.
    let left = std::fs::read_dir(root.join("workers")).unwrap().count();
    assert_eq!(left, 0);
}

#[test]
fn two_workers_racing_for_the_last_trial_give_it_to_exactly_one() {
    let dir = scratch("workers-race");
    let s = command_spec(
        &dir,
        "one",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    for round in 0..3 {
        let results = dir.join(format!("results{round}"));
        let root = results.join("one");
        make_for_workers(&s, &results, &[]);
        let a = spawn_worker(&root, &[]);
        let b = spawn_worker(&root, &[]);
        for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            assert!(o.status.success(), "{}", text(&o));
        }
        let claims = per_trial(&root, "claimed");
        assert_eq!(
            claims.values().sum::<usize>(),
            1,
            "round {round}: {claims:?}"
        );
        assert_eq!(per_trial(&root, "finished").values().sum::<usize>(), 1);
    }
}

/// The epochs the metrics.csv of the sweep's first trial directory holds (0 before it has one).
fn epochs_in_metrics_csv(root: &Path) -> usize {
    let Some(Ok(trial)) = std::fs::read_dir(root.join("trials"))
        .ok()
        .and_then(|mut d| d.next())
    else {
        return 0;
    };
    std::fs::read_to_string(trial.path().join("metrics.csv"))
        .map_or(0, |m| m.lines().count().saturating_sub(1))
}

/// A grid sweep of one built-in trial long enough to be killed mid-way (8 epochs).
fn long_builtin_spec(dir: &Path) -> PathBuf {
    let base = small_config(dir, "");
    let text = std::fs::read_to_string(&base)
        .unwrap()
        .replace("epochs = 1", "epochs = 8")
        .replace("train_limit = 2000", "train_limit = 20000");
    std::fs::write(&base, text).unwrap();
    let path = dir.join("long.toml");
    std::fs::write(
        &path,
        "name = \"long\"\nbase = \"trial.toml\"\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.02]\n",
    )
    .unwrap();
    path
}

#[test]
fn a_worker_killed_mid_trial_leaves_it_stale_and_another_finishes_it_from_its_last_epoch() {
    let dir = scratch("workers-kill");
    let s = long_builtin_spec(&dir);
    let results = dir.join("results");
    let root = results.join("long");
    make_for_workers(&s, &results, &["--lease", "3s", "--heartbeat", "1s"]);
    let mut first = spawn_worker(&root, &[]);
    // Kill -9 once the trial finished 3 epochs (its metrics.csv says so: the worker journals
    // epochs up to 2 s late, and a fast machine trains all 8 within that).
    wait_for("3 epochs", Duration::from_secs(120), || {
        epochs_in_metrics_csv(&root) >= 3
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let killed_at = std::time::Instant::now();
    let second = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let out = text(&second);
    assert!(out.contains("is stale: its worker"), "{out}");
    assert!(out.contains("from its last finished epoch"), "{out}");
    // The trial was marked stale once, claimed by two workers, and completed once.
    let j = journal(&root);
    let id = asked(&root).remove(0);
    let stale: Vec<&serde_json::Value> = j.iter().filter(|e| e["event"] == "stale").collect();
    assert_eq!(stale.len(), 1);
    let claims: Vec<&serde_json::Value> = j.iter().filter(|e| e["event"] == "claimed").collect();
    assert_eq!(claims.len(), 2);
    assert_ne!(claims[0]["worker"], claims[1]["worker"]);
    assert_eq!(claims[1]["attempt"], 2);
    let stale_at = j.iter().position(|e| e["event"] == "stale").unwrap();
    let second_claim = j.iter().rposition(|e| e["event"] == "claimed").unwrap();
    assert!(stale_at < second_claim, "taken up only once marked stale");
    // Taken up only once the lease (3 s) had expired.
    assert!(killed_at.elapsed() >= Duration::from_secs(2));
    let resumed_at = j[second_claim..]
        .iter()
        .find(|e| e["event"] == "epoch")
        .unwrap()["epoch"]
        .as_u64()
        .unwrap();
    assert!(
        resumed_at > 1,
        "resumed at epoch {resumed_at}, not from scratch"
    );
    let finished: Vec<&serde_json::Value> = j.iter().filter(|e| e["event"] == "finished").collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], "completed");
    // The same metrics as an uninterrupted run of its configuration.
    let trial = root.join("trials").join(&id);
    let straight = dir.join("straight");
    let o = run(sweep(&[
        "train",
        trial.join("trial.toml").to_str().unwrap(),
        "--out",
        straight.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        metrics_without_time(&trial),
        metrics_without_time(&straight)
    );
}

#[test]
fn sweep_run_joins_a_sweep_made_for_workers_as_one_more_worker() {
    let dir = scratch("workers-mixed");
    let s = command_spec(
        &dir,
        "mixed",
        r#""--lr", "{lr}", "--epochs", "2", "--sleep", "0.05""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9]",
    );
    let results = dir.join("results");
    let root = results.join("mixed");
    make_for_workers(&s, &results, &[]);
    let worker = spawn_worker(&root, &[]);
    let o = run_sweep(&s, &results, &["--devices", "cpu", "--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let w = worker.wait_with_output().unwrap();
    assert!(w.status.success(), "{}", text(&w));
    let finished = per_trial(&root, "finished");
    assert_eq!(finished.len(), 8);
    assert!(finished.values().all(|&n| n == 1));
    let claimants: std::collections::HashSet<String> = journal(&root)
        .iter()
        .filter(|e| e["event"] == "claimed")
        .map(|e| e["worker"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(claimants.len(), 2, "both took trials: {claimants:?}");
}

#[test]
fn status_shows_each_worker_with_its_heartbeat_and_trial() {
    let dir = scratch("workers-status");
    let hold = dir.join("release");
    let s = command_spec(
        &dir,
        "held",
        &format!(
            r#""--lr", "{{lr}}", "--epochs", "2", "--hold-after", "1", "--hold-file", "{}""#,
            hold.display()
        ),
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let root = results.join("held");
    make_for_workers(&s, &results, &["--heartbeat", "1s"]);
    let worker = spawn_worker(&root, &[]);
    wait_for("the trial to run", Duration::from_secs(60), || {
        std::fs::read_dir(root.join("workers"))
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"trials\":[\""))
                })
            })
            .unwrap_or(false)
    });
    let o = run(sweep(&["status", root.to_str().unwrap()]));
    let out = text(&o);
    // Commands that rewrite the journal wait until the workers have left.
    let repair = run(sweep(&["repair", root.to_str().unwrap()]));
    std::fs::write(&hold, "").unwrap();
    assert!(!repair.status.success());
    assert!(
        text(&repair).contains("would race the pull workers"),
        "{}",
        text(&repair)
    );
    let w = worker.wait_with_output().unwrap();
    assert!(w.status.success(), "{}", text(&w));
    assert!(out.contains("orchestrator none (pull workers)"), "{out}");
    assert!(out.contains("workers: 1 live, 0 gone"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" pid ") && l.contains("last heartbeat") && l.contains("running ")),
        "{out}"
    );
}

#[test]
fn workers_refuse_what_they_cannot_join_and_say_why() {
    let dir = scratch("workers-refuse");
    let s = command_spec(
        &dir,
        "r",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    // A folder with no sweep says how to make one.
    let empty = dir.join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(sweep(&["worker", empty.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no sweep in") && text(&o).contains("sweep run --workers-only SPEC"),
        "{}",
        text(&o)
    );
    // A sweep `sweep run` drives is not one for workers.
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(sweep(&["worker", results.join("r").to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is a sweep `sweep run` drives"),
        "{}",
        text(&o)
    );
    // Given the spec instead of the folder, it refuses alike, and converts nothing.
    let o = run(sweep(&[
        "worker",
        s.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is a sweep `sweep run` drives") && text(&o).contains("--workers-only"),
        "{}",
        text(&o)
    );
    assert!(!results.join("r").join("workers.json").exists());
    // A worker given a changed spec refuses to join.
    let pulled = dir.join("pulled");
    make_for_workers(&s, &pulled, &[]);
    let text_before = std::fs::read_to_string(&s).unwrap();
    std::fs::write(&s, text_before.replace("lr = [0.1]", "lr = [0.1, 0.2]")).unwrap();
    let o = run(sweep(&[
        "worker",
        s.to_str().unwrap(),
        "--results",
        pulled.to_str().unwrap(),
    ]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("the spec changed since the sweep was made"),
        "{}",
        text(&o)
    );
    std::fs::write(&s, &text_before).unwrap();
    // A worker of another sweep version refuses to join.
    let settings = pulled.join("r").join("workers.json");
    let json = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        json.replace(
            &format!("\"sweep_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
            "\"sweep_version\": \"0.0.1\"",
        ),
    )
    .unwrap();
    let o = run(sweep(&["worker", pulled.join("r").to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("was made by sweep 0.0.1")
            && text(&o).contains("must be the same version"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_failure_every_trial_repeats_stops_all_workers() {
    let dir = scratch("workers-halt");
    // The program reports `acc`, the spec ranks by `val_acc`: every trial fails alike.
    let s = command_spec(
        &dir,
        "broken",
        r#""--lr", "{lr}", "--epochs", "2", "--metric", "acc""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01, 0.02, 0.03]",
    );
    let results = dir.join("results");
    let root = results.join("broken");
    make_for_workers(&s, &results, &[]);
    let workers: Vec<Child> = (0..2).map(|_| spawn_worker(&root, &[])).collect();
    let outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap())
        .collect();
    let j = journal(&root);
    let stopped: Vec<&serde_json::Value> = j.iter().filter(|e| e["event"] == "stopped").collect();
    assert_eq!(stopped.len(), 1, "{j:?}");
    assert!(
        stopped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("all failed the same way"),
        "{stopped:?}"
    );
    let ended = per_trial(&root, "finished").len();
    assert!(
        ended < 8,
        "the workers stopped taking trials: {ended} of 12 ran"
    );
    for o in &outputs {
        let out = text(o);
        assert!(
            out.contains("the sweep was stopped") || out.contains("all failed the same way"),
            "{out}"
        );
    }
    assert!(outputs.iter().any(|o| o.status.code() == Some(2)));
    // Started again (the cause fixed, say), workers take trials again.
    let claims = |root: &Path| per_trial(root, "claimed").values().sum::<usize>();
    let before = claims(&root);
    make_for_workers(&s, &results, &[]);
    let again = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(claims(&root) > before, "{}", text(&again));
}

/// Cuts the journal line of the trial numbered `index` short: a corrupt line mid-journal.
fn corrupt_trial_line(root: &Path, index: u64) -> String {
    let path = root.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut id = String::new();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            if e["event"] == "trial" && e["index"] == index {
                id = e["id"].as_str().unwrap().to_string();
                l[..60].to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    id
}

#[test]
fn workers_refuse_a_corrupt_journal_line_and_repair_puts_the_lost_trial_back_with_its_number() {
    let dir = scratch("workers-corrupt");
    // Trial 1 (lr = 0.1) wins: losing it would report the wrong best/.
    let s = command_spec(
        &dir,
        "c",
        r#""--lr", "{lr}", "--epochs", "2""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.1, 0.01]",
    );
    let results = dir.join("results");
    let root = results.join("c");
    make_for_workers(&s, &results, &[]);
    let lost = corrupt_trial_line(&root, 1);
    let before = std::fs::read_to_string(root.join("journal.jsonl")).unwrap();
    // A worker, and `sweep run` joining, refuse to write through it, and write nothing.
    let w = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(!w.status.success(), "{}", text(&w));
    assert!(
        text(&w).contains("journal.jsonl:4: corrupt journal line")
            && text(&w).contains("sweep repair"),
        "{}",
        text(&w)
    );
    for extra in [&["--workers-only"][..], &[]] {
        let o = run_sweep(&s, &results, extra);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("corrupt journal line"), "{}", text(&o));
    }
    assert_eq!(
        std::fs::read_to_string(root.join("journal.jsonl")).unwrap(),
        before,
        "nothing appended after a corrupt line"
    );
    let o = run(sweep(&["repair", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    // The next worker puts the trial back, under its own number, and runs it.
    let w = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(w.status.success(), "{}", text(&w));
    assert!(
        text(&w).contains("1 trial of the plan missing"),
        "{}",
        text(&w)
    );
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 4, "all three trials ranked: {rows:?}");
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1][col("trial")], lost, "the lost trial is the winner");
    let mut numbers: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r[col("number")].as_str())
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["0", "1", "2"]);
    let best = std::fs::read_to_string(root.join("best").join("params.json")).unwrap();
    assert!(best.contains("0.1"), "{best}");
}

#[test]
fn a_trial_line_lost_to_corruption_comes_back_under_sweep_run_with_a_unique_number() {
    let dir = scratch("run-corrupt");
    let s = command_spec(
        &dir,
        "c",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.1, 0.01]",
    );
    let results = dir.join("results");
    let root = results.join("c");
    // Only trial 0 runs; then trial 1's line is damaged and repaired away.
    let o = run_sweep(&s, &results, &["--max-trials", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    corrupt_trial_line(&root, 1);
    let o = run_sweep(&s, &results, &[]);
    assert!(text(&o).contains("corrupt journal line"), "{}", text(&o));
    assert!(
        run(sweep(&["repair", root.to_str().unwrap()]))
            .status
            .success()
    );
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let number = rows[0].iter().position(|c| c == "number").unwrap();
    let mut numbers: Vec<&str> = rows[1..].iter().map(|r| r[number].as_str()).collect();
    numbers.sort();
    assert_eq!(numbers, ["0", "1", "2"]);
}

#[test]
fn epochs_a_killed_worker_had_not_journalled_are_collected_and_journalled_before_resuming() {
    let dir = scratch("workers-buffer");
    let go = dir.join("go");
    let s = command_spec(
        &dir,
        "buf",
        &format!(
            r#""--lr", "{{lr}}", "--epochs", "3", "--hold-after", "1", "--hold-file", "{}""#,
            go.display()
        ),
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let root = results.join("buf");
    make_for_workers(&s, &results, &["--lease", "2s", "--heartbeat", "500ms"]);
    let mut first = spawn_worker(&root, &[]);
    // Epoch 1 is in metrics.csv; the worker holds its journal line for up to 2 s: kill it then.
    wait_for("epoch 1 in metrics.csv", Duration::from_secs(60), || {
        epochs_in_metrics_csv(&root) >= 1
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let epochs = |root: &Path| -> Vec<u64> {
        journal(root)
            .iter()
            .filter(|e| e["event"] == "epoch")
            .map(|e| e["epoch"].as_u64().unwrap())
            .collect()
    };
    assert!(epochs(&root).is_empty(), "killed inside the buffer window");
    // `sweep collect` (once the lease expired) journals it from the trial's directory...
    std::thread::sleep(Duration::from_millis(2500));
    let o = run(sweep(&["collect", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&root), [1]);
    // ...and so does the worker that takes the trial up, once, before it resumes at epoch 2.
    let j = root.join("journal.jsonl");
    let full = std::fs::read_to_string(&j).unwrap();
    let without: Vec<&str> = full
        .lines()
        .filter(|l| !l.contains("\"event\":\"epoch\""))
        .collect();
    std::fs::write(&j, without.join("\n") + "\n").unwrap();
    std::fs::write(&go, "").unwrap();
    let second = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("journalled 1 epoch its last worker finished"),
        "{}",
        text(&second)
    );
    assert_eq!(epochs(&root), [1, 2, 3]);
    // The killed worker's lease went with the sweep's end: status lists no worker running it.
    assert_eq!(std::fs::read_dir(root.join("workers")).unwrap().count(), 0);
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(!text(&status).contains("running "), "{}", text(&status));
    let o = run(sweep(&[
        "export",
        root.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        csv_rows(&root.join("epochs.csv")).len(),
        4,
        "a row per epoch"
    );
}

#[test]
fn a_worker_retries_times_out_halves_neighbours_after_oom_and_takes_at_most_max_trials() {
    let dir = scratch("workers-rules");
    let s = command_spec(
        &dir,
        "rules",
        r#""--lr", "{lr}", "--epochs", "{epochs}", "--sleep", "{sleep}", "--fail-at", "{fail_at}", "--oom", "{oom}""#,
        "lr = 0.1\nepochs = 2\nsleep = 0.0\nfail_at = 0\noom = 0",
        "[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"crash\"\nfail_at = 2\n[[search.trials]]\nlabel = \"slow\"\nepochs = 100\nsleep = 1.0\n[[search.trials]]\nlabel = \"oom\"\noom = 1\n[[search.trials]]\nlabel = \"fine\"\n",
    );
    // max_failures = 0: three failures of three kinds must not stop this sweep.
    let text_of = std::fs::read_to_string(&s).unwrap();
    std::fs::write(
        &s,
        text_of.replace("[command]", "max_failures = 0\n[command]"),
    )
    .unwrap();
    let results = dir.join("results");
    let root = results.join("rules");
    make_for_workers(&s, &results, &[]);
    // First a worker that takes two trials and leaves.
    let w = spawn_worker(
        &root,
        &[
            "--devices",
            "cpu",
            "--per-device",
            "2",
            "--max-trials",
            "2",
            "--retries",
            "1",
            "--timeout-per-trial",
            "3s",
        ],
    )
    .wait_with_output()
    .unwrap();
    assert!(
        text(&w).contains("--max-trials 2: this worker took its trials and leaves"),
        "{}",
        text(&w)
    );
    let j = journal(&root);
    let claimed: std::collections::HashSet<&str> = j
        .iter()
        .filter(|e| e["event"] == "claimed")
        .map(|e| e["trial"].as_str().unwrap())
        .collect();
    assert_eq!(claimed.len(), 2, "two trials taken: {claimed:?}");
    // Then one that runs the rest.
    let w = spawn_worker(
        &root,
        &[
            "--devices",
            "cpu",
            "--per-device",
            "2",
            "--retries",
            "1",
            "--timeout-per-trial",
            "3s",
        ],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(w.status.code(), Some(2), "trials failed: {}", text(&w));
    let j = journal(&root);
    let id_of = |label: &str| {
        j.iter()
            .find(|e| e["event"] == "trial" && e["label"] == label)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ends = |label: &str| -> Vec<serde_json::Value> {
        let id = id_of(label);
        j.iter()
            .filter(|e| e["event"] == "finished" && e["trial"] == id.as_str())
            .cloned()
            .collect()
    };
    // A crash is retried once.
    let crash = ends("crash");
    assert_eq!(crash.len(), 2, "{crash:?}");
    assert!(crash.iter().all(|e| e["status"] == "failed"));
    // A trial past its time is stopped and recorded as a timeout (and retried once).
    let slow = ends("slow");
    assert!(
        !slow.is_empty() && slow.iter().all(|e| e["status"] == "timeout"),
        "{slow:?}"
    );
    // Out of memory: first with half the neighbours (2 per device -> 1), then against the
    // retries.
    let oom = ends("oom");
    assert_eq!(oom.len(), 3, "{oom:?}");
    assert!(oom.iter().all(|e| e["status"] == "oom"));
    let oom_id = id_of("oom");
    let caps: Vec<serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "started" && e["trial"] == oom_id.as_str())
        .map(|e| e["cap"].clone())
        .collect();
    assert_eq!(caps[1..], [1, 1], "retried alone on its device: {caps:?}");
    assert_eq!(ends("fine")[0]["status"], "completed");
}

#[test]
fn a_worker_prunes_and_pauses_as_sweep_run_does_without_slurm() {
    let dir = scratch("workers-prune");
    // As tests/command.rs's pruned trial: the best runs its 6 epochs first; the two worse ones
    // reach rung 1 below it and wait there (--hold-after 1) until stopped.
    let s = command_spec(
        &dir,
        "prune",
        r#""--lr", "{lr}", "--epochs", "6", "--hold-after", "{hold}""#,
        "lr = 0.01\nhold = 0",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\npause = true\n[search]\nmethod = \"list\"\n[[search.trials]]\nlr = 0.1\n[[search.trials]]\nlr = 0.0001\nhold = 1\n[[search.trials]]\nlr = 0.00001\nhold = 1",
    );
    let results = dir.join("results");
    let root = results.join("prune");
    make_for_workers(&s, &results, &[]);
    let w = spawn_worker(&root, &["--devices", "cpu", "--per-device", "1"])
        .wait_with_output()
        .unwrap();
    assert!(w.status.success(), "{}", text(&w));
    let j = journal(&root);
    // The worker takes the trials in the pruner's seeded order: the worse two pause at rung 1
    // (journalled decisions), and the best completes (promoted if it was paused too).
    let stops = |id: &str| {
        j.iter()
            .filter(|e| e["event"] == "decision" && e["stop"] == true && e["trial"] == id)
            .count()
    };
    let ids: Vec<(String, f64)> = j
        .iter()
        .filter(|e| e["event"] == "trial")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["params"]["lr"].as_f64().unwrap(),
            )
        })
        .collect();
    for (id, lr) in &ids {
        if *lr < 0.01 {
            assert_eq!(stops(id), 1, "{id} paused at rung 1");
        }
    }
    assert!(text(&w).contains("pausing "), "{}", text(&w));
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1][col("status")], "completed");
    assert_eq!(rows[1][col("lr")], "0.1");
}
