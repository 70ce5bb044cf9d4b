//! End-to-end tests of the sweep engine: plan, run, resume, kill -9, leaderboard, rerun.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Writes a sweep spec whose trials train on a small slice of MNIST.
fn spec(dir: &Path, name: &str, search: &str, extra_base: &str) -> PathBuf {
    let base = small_config(dir, &format!("{extra_base}\n"));
    let text = format!(
        "name = \"{name}\"\nmetric = \"test_acc\"\nbase = \"{}\"\n{search}\n",
        base.file_name().unwrap().to_str().unwrap()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn count(journal: &[serde_json::Value], event: &str, trial: &str) -> usize {
    journal
        .iter()
        .filter(|e| e["event"] == event && e["trial"] == trial)
        .count()
}

#[test]
fn grid_and_random_specs_expand_as_specified() {
    let dir = scratch("expand");
    let grid = spec(
        &dir,
        "g",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.1]\n\"epochs,schedule.milestones\" = [[2, []], [3, [1]]]\n\"schedule.name\" = [\"multistep\"]",
        "",
    );
    let o = run(sweep(&["plan", grid.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("4 trials"), "{out}");
    let random = spec(
        &dir,
        "r",
        "[search]\nmethod = \"random\"\nsamples = 6\nseed = 1\n[search.params]\n\"optimizer.lr\" = { log_uniform = [0.001, 0.1] }\n\"optimizer.momentum\" = [0.0, 0.9]",
        "",
    );
    let plan =
        |p: &Path| String::from_utf8(run(sweep(&["plan", p.to_str().unwrap()])).stdout).unwrap();
    let first = plan(&random);
    assert!(first.contains("6 trials"), "{first}");
    assert_eq!(first, plan(&random), "the same spec gives the same trials");
}

#[test]
fn a_sweep_ranks_its_trials_keeps_the_best_and_marks_divergence() {
    let dir = scratch("ranked");
    let s = spec(
        &dir,
        "ranked",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.001, 0.05, 1e9]",
        "",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("ranked");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        rows[0],
        [
            "rank",
            "trial",
            "status",
            "test_acc",
            "best_epoch",
            "optimizer.lr",
            "seconds",
            "device",
            "number",
            // What the trainer reported at the kept epoch besides the columns before.
            "lr",
            "train_loss",
            "train_acc",
            "test_loss",
            "params",
            "train_seconds"
        ]
    );
    assert_eq!(rows.len(), 4);
    assert_eq!((rows[1][0].as_str(), rows[2][0].as_str()), ("1", "2"));
    let acc = |r: &Vec<String>| r[3].parse::<f64>().unwrap();
    assert!(acc(&rows[1]) >= acc(&rows[2]), "ranked best first");
    assert_eq!(rows[3][2], "diverged");
    assert_eq!(rows[3][0], "", "a diverged trial has no rank");
    // best/ holds the winner.
    let best_id = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    assert_eq!(best_id.trim(), rows[1][1]);
    let trial_config =
        std::fs::read(root.join("trials").join(&rows[1][1]).join("config.toml")).unwrap();
    assert_eq!(
        std::fs::read(root.join("best/config.toml")).unwrap(),
        trial_config
    );
    assert!(root.join("best/best.safetensors").is_file());
    // The other formats agree on the order.
    let o = run(sweep(&[
        "leaderboard",
        root.to_str().unwrap(),
        "--format",
        "json",
        "--top",
        "1",
    ]));
    let board: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(board["rows"][0]["trial"], rows[1][1].as_str());
    let o = run(sweep(&[
        "leaderboard",
        root.to_str().unwrap(),
        "--format",
        "markdown",
    ]));
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .starts_with("| rank | trial |")
    );
    // `sweep run` wrote the report: the leaderboard, charts and the winner's confusion matrix.
    let html = std::fs::read_to_string(root.join("report.html")).unwrap();
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "self-contained: every script is inline"
    );
    if let Some(page) = render_report(&root, "") {
        for r in &rows[1..] {
            assert!(page.dom.contains(&r[1]), "report lists trial {}", r[1]);
        }
        for chart in ["history", "curves", "parallel", "confusion"] {
            assert!(
                page.charts.iter().any(|c| c == chart),
                "{chart}: {:?}",
                page.charts
            );
        }
    }
    assert!(
        std::fs::read_to_string(root.join("curves.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    let o = run(sweep(&["report", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    // Running it again keeps everything.
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 trials already finished, 0 to run"),
        "{}",
        text(&o)
    );
}

#[test]
fn rerun_retrains_the_winner_exactly() {
    let dir = scratch("rerun");
    let s = spec(
        &dir,
        "rr",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.02, 0.05]",
        "",
    );
    let results = dir.join("results");
    assert!(run_sweep(&s, &results, &[]).status.success());
    let root = results.join("rr");
    let o = run(sweep(&["rerun", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let reruns: Vec<PathBuf> = std::fs::read_dir(root.join("reruns"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(reruns.len(), 1);
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    let original = root.join("trials").join(best.trim());
    assert_eq!(
        metrics_without_time(&reruns[0]),
        metrics_without_time(&original)
    );
    let o = run(sweep(&["rerun", root.to_str().unwrap(), "--rank", "9"]));
    assert!(text(&o).contains("no trial has rank 9"), "{}", text(&o));
}

#[test]
fn concurrency_never_exceeds_the_slots() {
    let dir = scratch("slots");
    let s = spec(
        &dir,
        "slots",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02, 0.03, 0.04, 0.05]",
        "",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut running = 0i32;
    let mut peak = 0;
    for e in journal(&results.join("slots")) {
        match e["event"].as_str().unwrap() {
            "started" => running += 1,
            "finished" => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert_eq!(peak, 2, "two slots are used, never more");
}

#[test]
fn kill_9_mid_sweep_then_rerun_finishes_without_rerunning_finished_trials() {
    let dir = scratch("kill9");
    let s = spec(
        &dir,
        "k9",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02, 0.03, 0.04]",
        "",
    );
    // Slower trials so that the kill lands mid-sweep.
    std::fs::write(
        dir.join("trial.toml"),
        std::fs::read_to_string(dir.join("trial.toml"))
            .unwrap()
            .replace("epochs = 1", "epochs = 4"),
    )
    .unwrap();
    let results = dir.join("results");
    let root = results.join("k9");
    let mut child = spawn_sweep(&s, &results, &["--per-device", "1"]);
    let finished = |j: &[serde_json::Value]| -> Vec<String> {
        j.iter()
            .filter(|e| e["event"] == "finished")
            .map(|e| e["trial"].as_str().unwrap().to_string())
            .collect()
    };
    wait_for(
        "a finished trial and a started one",
        Duration::from_secs(120),
        || {
            let j = journal(&root);
            let done = finished(&j).len();
            done > 0 && j.iter().filter(|e| e["event"] == "started").count() > done
        },
    );
    let finished_first = finished(&journal(&root));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let o = run_sweep(&s, &results, &["--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&root);
    for id in &finished_first {
        assert_eq!(
            count(&j, "started", id),
            1,
            "finished trial {id} was not run again"
        );
    }
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 5);
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
}

#[test]
fn a_spec_that_grows_keeps_finished_trials_and_runs_only_the_new_ones() {
    let dir = scratch("grow");
    let s = spec(
        &dir,
        "gr",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02]",
        "",
    );
    let results = dir.join("results");
    let root = results.join("gr");
    assert!(run_sweep(&s, &results, &[]).status.success());
    let first: Vec<String> = csv_rows(&root.join("leaderboard.csv"))[1..]
        .iter()
        .map(|r| r[1].clone())
        .collect();
    // One more value, one value gone.
    edit_spec(&s, "[0.01, 0.02]", "[0.02, 0.03, 0.04]");
    // Removing a value with results is refused, with the flag that accepts it.
    let o = run_sweep(&s, &results, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 trial with results would leave the leaderboard")
            && text(&o).contains("--accept-changes"),
        "{}",
        text(&o)
    );
    assert_eq!(
        csv_rows(&root.join("leaderboard.csv")).len(),
        3,
        "nothing changed"
    );
    let o = run_sweep(&s, &results, &["--accept-changes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 trials added, 1 no longer in the spec"),
        "{}",
        text(&o)
    );
    let j = journal(&root);
    let kept = first
        .iter()
        .find(|id| {
            j.iter().any(|e| {
                e["event"] == "trial"
                    && e["id"] == id.as_str()
                    && e["params"]["optimizer.lr"] == 0.02
            })
        })
        .unwrap();
    assert_eq!(
        count(&j, "started", kept),
        1,
        "the finished trial is not run again"
    );
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 4, "3 trials of the spec: {rows:?}");
    let lrs: Vec<&str> = rows[1..].iter().map(|r| r[5].as_str()).collect();
    assert!(
        !lrs.contains(&"0.01"),
        "the retired trial left the leaderboard"
    );
    assert!(j.iter().any(|e| e["event"] == "retired"));
    // A changed base changes every id, and the message says so.
    std::fs::write(
        dir.join("trial.toml"),
        std::fs::read_to_string(dir.join("trial.toml"))
            .unwrap()
            .replace("momentum = 0.9", "momentum = 0.8"),
    )
    .unwrap();
    let o = run_sweep(&s, &results, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("every trial's id changed"),
        "{}",
        text(&o)
    );
    let o = run_sweep(&s, &results, &["--accept-changes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the spec changed every trial id"),
        "{}",
        text(&o)
    );
    // best/ follows the new leaderboard.
    let winner = &csv_rows(&root.join("leaderboard.csv"))[1][1];
    assert_eq!(
        std::fs::read_to_string(root.join("best/trial.txt"))
            .unwrap()
            .trim(),
        winner
    );
}

#[test]
fn an_invalid_spec_writes_nothing() {
    let dir = scratch("invalid");
    let s = spec(
        &dir,
        "inv",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, -1.0]",
        "",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("inv.toml:7"), "{}", text(&o));
    assert!(!results.exists(), "nothing is written for an invalid spec");
}

#[test]
fn repeats_add_mean_and_std_columns() {
    let dir = scratch("repeats");
    let s = spec(
        &dir,
        "rep",
        "repeats = 2\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.05]",
        "",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&results.join("rep/leaderboard.csv"));
    assert_eq!(rows.len(), 5, "2 configurations x 2 seeds");
    let h = &rows[0];
    let number = h.iter().position(|c| c == "number").unwrap();
    assert!(
        h[..=number].ends_with(&[
            "test_acc_mean".to_string(),
            "test_acc_std".to_string(),
            "n".to_string(),
            "number".to_string()
        ]),
        "{h:?}"
    );
    assert!(h.contains(&"seed".to_string()));
    // The two rows of the best configuration come first and share its mean.
    assert_eq!(rows[1][number - 3], rows[2][number - 3]);
    assert_eq!(rows[1][number - 1], "2");
}

#[test]
fn a_second_run_on_the_same_directory_is_refused_while_the_first_runs() {
    let dir = scratch("lock");
    // The first run's trial waits after its first epoch until the test says go.
    let go = dir.join("go");
    let s = command_spec(
        &dir,
        "lk",
        &format!(
            r#""--lr", "{{lr}}", "--epochs", "2", "--hold-after", "1", "--hold-file", "{}""#,
            go.display()
        ),
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01]",
    );
    let results = dir.join("results");
    let mut first = spawn_sweep(&s, &results, &[]);
    wait_for(
        "the first run's first epoch",
        Duration::from_secs(60),
        || {
            journal(&results.join("lk"))
                .iter()
                .any(|e| e["event"] == "epoch")
        },
    );
    let o = run_sweep(&s, &results, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("in use by another `sweep run`"),
        "{}",
        text(&o)
    );
    let status = run(sweep(&["status", results.join("lk").to_str().unwrap()]));
    assert!(
        text(&status).contains("orchestrator running"),
        "{}",
        text(&status)
    );
    std::fs::write(&go, "").unwrap();
    assert!(first.wait().unwrap().success());
}

#[test]
fn the_bad_spec_corpus_reports_file_line_and_key() {
    let corpus = root().join("tests/bad-specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for f in files {
        let text_of_spec = std::fs::read_to_string(&f).unwrap();
        let expect = text_of_spec
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", f.display()));
        let (location, message) = expect.split_once(": ").unwrap();
        let o = run(sweep(&["plan", f.to_str().unwrap()]));
        assert!(!o.status.success(), "{} was accepted", f.display());
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.contains(&format!("{location}:")),
            "{}: expected {location} in {err}",
            f.display()
        );
        assert!(
            err.contains(message),
            "{}: expected `{message}` in {err}",
            f.display()
        );
        // One mistake, one message: no second, misleading piece of advice beside it.
        assert!(
            !err.contains("problems:"),
            "{}: more than the expected problem in {err}",
            f.display()
        );
    }
}

#[test]
fn ctrl_c_stops_the_children_and_leaves_a_resumable_sweep() {
    let dir = scratch("sigint");
    let s = spec(
        &dir,
        "ci",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02, 0.03]",
        "",
    );
    std::fs::write(
        dir.join("trial.toml"),
        std::fs::read_to_string(dir.join("trial.toml"))
            .unwrap()
            .replace("epochs = 1", "epochs = 30"),
    )
    .unwrap();
    let results = dir.join("results");
    let root = results.join("ci");
    let child = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--per-device",
        "2",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_for(
        "both first trials to write an epoch",
        Duration::from_secs(120),
        || {
            let with_epoch = |e: &std::io::Result<std::fs::DirEntry>| {
                let p = e.as_ref().unwrap().path().join("metrics.csv");
                std::fs::read_to_string(p).is_ok_and(|t| t.lines().count() > 1)
            };
            std::fs::read_dir(root.join("trials"))
                .map_or(0, |d| d.filter(|e| with_epoch(e)).count())
                >= 2
        },
    );
    let out = interrupt(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = journal(&root);
    assert_eq!(
        j.iter().filter(|e| e["status"] == "interrupted").count(),
        2,
        "{j:?}"
    );
    assert!(j.iter().any(|e| e["event"] == "stopped"));
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(text(&status).contains("interrupted 2"), "{}", text(&status));
    assert!(text(&status).contains("orchestrator not running"));
}

#[test]
fn a_loss_metric_ranks_ascending_and_best_keeps_the_lowest_loss_checkpoint() {
    let dir = scratch("test-loss");
    let s = spec(
        &dir,
        "loss",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.003, 0.3]\nepochs = [4]",
        "",
    );
    edit_spec(&s, "metric = \"test_acc\"", "metric = \"test_loss\"");
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("loss");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        &rows[0][3..7],
        [
            "test_loss",
            "best_epoch",
            "test_acc_at_best",
            "best_test_acc"
        ]
    );
    let loss = |r: &Vec<String>| r[3].parse::<f64>().unwrap();
    assert!(loss(&rows[1]) <= loss(&rows[2]), "ascending: {rows:?}");
    // best/ holds the winner's checkpoint of its lowest test loss, not of its best accuracy.
    let best = root.join("best");
    let metrics = csv_rows(&best.join("metrics.csv"));
    let col = metrics[0].iter().position(|c| c == "test_loss").unwrap();
    let min_loss = metrics[1..]
        .iter()
        .map(|r| r[col].parse::<f64>().unwrap())
        .fold(f64::INFINITY, f64::min);
    let o = run(sweep(&["eval", best.to_str().unwrap(), "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        (eval["test"]["loss"].as_f64().unwrap() - min_loss).abs() < 1e-6,
        "{eval} vs the lowest loss {min_loss}"
    );
    assert_eq!(summary(&best)["objective"]["mode"], "min");
    // rerun prints a loss as a loss.
    let o = run(sweep(&["rerun", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let line = out.lines().find(|l| l.starts_with("rerun of")).unwrap();
    assert!(line.contains("best test_loss 0."), "{line}");
    assert!(!line.contains('%'), "a loss is no percentage: {line}");
}

#[test]
fn max_trials_leaves_the_rest_pending_and_exits_zero() {
    let dir = scratch("max-trials");
    let s = spec(
        &dir,
        "mt",
        "[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02, 0.03]",
        "",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--max-trials", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 trials still pending"), "{}", text(&o));
    let status = run(sweep(&["status", results.join("mt").to_str().unwrap()]));
    assert!(text(&status).contains("pending 2"), "{}", text(&status));
}

#[test]
fn out_of_memory_is_retried_with_half_the_neighbours_then_gives_up() {
    let dir = scratch("oom");
    let s = command_spec(
        &dir,
        "oom",
        r#""--lr", "{lr}", "--epochs", "2", "--sleep", "0.3", "--oom", "{oom}""#,
        "lr = 0.1\noom = 0",
        "[search]\nmethod = \"list\"\n[[search.trials]]\noom = 1\n[[search.trials]]\nlr = 0.05\n[[search.trials]]\nlr = 0.2",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "4", "--retries", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let j = journal(&results.join("oom"));
    let oom_id = j
        .iter()
        .find(|e| e["event"] == "trial" && e["params"]["oom"] == 1)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Caps per attempt: as many as --per-device allows, then 2, then alone; alone once more
    // for the one retry; then it gives up.
    let mut running = 0i64;
    let mut caps = Vec::new();
    for e in &j {
        match e["event"].as_str().unwrap() {
            "started" => {
                running += 1;
                if e["trial"] == oom_id.as_str() {
                    let cap = e["cap"].as_u64();
                    if let Some(c) = cap {
                        assert!(running <= c as i64, "{running} trials beside a cap of {c}");
                    }
                    caps.push(cap);
                }
            }
            "finished" => running -= 1,
            _ => {}
        }
    }
    assert_eq!(caps, [None, Some(2), Some(1), Some(1)]);
    let ends: Vec<&str> = j
        .iter()
        .filter(|e| e["event"] == "finished" && e["trial"] == oom_id.as_str())
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(ends, ["oom"; 4]);
    let last = j
        .iter()
        .rfind(|e| e["event"] == "finished" && e["trial"] == oom_id.as_str())
        .unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory"),
        "{last}"
    );
}

#[test]
fn a_sweep_with_a_validation_split_ranks_on_it_and_reports_the_honest_test_accuracy() {
    let dir = scratch("val-sweep");
    let s = spec(
        &dir,
        "val",
        "[set]\n\"data.val_size\" = 500\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.003, 0.05]\nepochs = [3]",
        "",
    );
    // No metric in the spec: a base with a validation split selects on it.
    edit_spec(&s, "metric = \"test_acc\"\n", "");
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("val");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        &rows[0][3..7],
        ["val_acc", "best_epoch", "test_acc_at_best", "best_test_acc"]
    );
    let v = |r: &Vec<String>, c: usize| r[c].parse::<f64>().unwrap();
    assert!(
        v(&rows[1], 3) >= v(&rows[2], 3),
        "ranked by val_acc: {rows:?}"
    );
    for r in &rows[1..] {
        assert!(
            v(r, 5) <= v(r, 6),
            "the honest estimate never beats the best over epochs"
        );
        let metrics = csv_rows(&root.join("trials").join(&r[1]).join("metrics.csv"));
        let epoch: usize = r[4].parse().unwrap();
        let at_best: f64 = metrics[epoch][7].parse().unwrap();
        assert!(
            (at_best - v(r, 5)).abs() < 0.006,
            "test_acc_at_best is the test accuracy at the chosen epoch"
        );
    }
    if let Some(page) = render_report(&root, "") {
        assert!(
            page.dom.contains("<b>selected on the validation split</b>"),
            "the report says which set selected"
        );
        assert!(
            page.dom.contains("test_acc_at_best"),
            "and explains the test columns"
        );
        assert!(page.charts.iter().any(|c| c == "confusion"));
    }
}

#[test]
fn a_trial_cut_off_by_kill_9_of_the_sweep_continues_from_its_last_epoch() {
    let dir = scratch("resume-sweep");
    let s = spec(
        &dir,
        "rs",
        "[set]\nepochs = 8\n\"data.train_limit\" = 8000\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.02]",
        "",
    );
    let results = dir.join("results");
    let root = results.join("rs");
    kill_sweep_after(&s, &results, &root, 3, "epoch");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&root);
    let id = j.iter().find(|e| e["event"] == "trial").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(count(&j, "started", &id), 2);
    // The second attempt's first epoch continues where the first left off.
    let second_start = j.iter().rposition(|e| e["event"] == "started").unwrap();
    let resumed_at = j[second_start..]
        .iter()
        .find(|e| e["event"] == "epoch")
        .unwrap()["epoch"]
        .as_u64()
        .unwrap();
    assert!(
        resumed_at > 1,
        "resumed at epoch {resumed_at}, not from scratch"
    );
    // And it ends exactly as an uninterrupted run of the same configuration.
    assert_ends_as_an_uninterrupted_run(&root.join("trials").join(&id), &dir.join("straight"));
}

/// Trains the trial's own `trial.toml` afresh into `straight` and checks that the trial,
/// however often it was stopped and resumed, recorded the same metrics.
fn assert_ends_as_an_uninterrupted_run(trial: &Path, straight: &Path) {
    let o = run(sweep(&[
        "train",
        trial.join("trial.toml").to_str().unwrap(),
        "--out",
        straight.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(metrics_without_time(trial), metrics_without_time(straight));
}

#[test]
fn asha_prunes_losing_trials_which_stay_final_and_rank_after_the_completed_ones() {
    let dir = scratch("asha");
    // Learning rates from hopeless to good; one trial at a time so that every rung decision is
    // made against the trials before it.
    let s = spec(
        &dir,
        "asha",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\n[set]\nepochs = 4\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.05, 0.00001, 0.02, 0.000003, 0.01]",
        "",
    );
    let results = dir.join("results");
    let root = results.join("asha");
    let o = run_sweep(&s, &results, &["--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&root);
    let decisions: Vec<&serde_json::Value> =
        j.iter().filter(|e| e["event"] == "decision").collect();
    assert!(!decisions.is_empty());
    assert!(
        decisions
            .iter()
            .all(|d| d["pruner"] == "asha" && d["rung"].is_u64())
    );
    let pruned: Vec<&str> = decisions
        .iter()
        .filter(|d| d["stop"] == true)
        .map(|d| d["trial"].as_str().unwrap())
        .collect();
    assert!(
        pruned.len() >= 2,
        "the two hopeless learning rates: {decisions:?}"
    );
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let statuses: Vec<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    let first_pruned = statuses.iter().position(|s| *s == "pruned").unwrap();
    assert!(
        statuses[..first_pruned].iter().all(|s| *s == "completed")
            && statuses[first_pruned..].iter().all(|s| *s == "pruned"),
        "completed trials first, then the pruned ones: {statuses:?}"
    );
    assert!(
        rows[1..].iter().all(|r| !r[0].is_empty()),
        "pruned trials are ranked too"
    );
    for id in &pruned {
        let s = summary(&root.join("trials").join(id));
        assert_eq!(s["status"], "pruned");
        assert!(s["epochs_run"].as_u64().unwrap() < 4);
        assert!(
            root.join("trials")
                .join(id)
                .join("best.safetensors")
                .is_file()
        );
    }
    // Pruned trials are final: a resume runs nothing and decides nothing new.
    let o = run_sweep(&s, &results, &[]);
    assert!(text(&o).contains("0 to run"), "{}", text(&o));
    let again = journal(&root);
    assert_eq!(
        again.iter().filter(|e| e["event"] == "decision").count(),
        decisions.len()
    );
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(
        text(&status).contains(&format!("pruned {}", pruned.len())),
        "{}",
        text(&status)
    );
}

#[test]
fn paused_asha_promotes_trials_which_resume_exactly_and_end_keeping_no_state() {
    let dir = scratch("asha-pause");
    // Learning rates from good to hopeless, in plan order, one at a time: the first trials
    // pause at rung 1 (fewer than eta there) and are promoted as worse ones arrive.
    let s = spec(
        &dir,
        "pause",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\npause = true\n[set]\nepochs = 4\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.05, 0.02, 0.01, 0.00001, 0.000003]",
        "",
    );
    let results = dir.join("results");
    let root = results.join("pause");
    let o = run_sweep(&s, &results, &["--per-device", "1", "--schedule", "plan"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("promoting"), "{}", text(&o));
    let j = journal(&root);
    let promoted: Vec<&str> = j
        .iter()
        .filter(|e| e["event"] == "promoted")
        .map(|e| e["trial"].as_str().unwrap())
        .collect();
    assert!(!promoted.is_empty());
    // Every epoch is trained once: a promoted trial resumes after its rung, never redoes one.
    let epochs = j.iter().filter(|e| e["event"] == "epoch").count();
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let recorded: usize = rows[1..]
        .iter()
        .map(|r| r[5].parse::<usize>().unwrap())
        .sum();
    assert_eq!(epochs, recorded, "{rows:?}");
    assert!(
        epochs < 5 * 4,
        "ASHA trained {epochs} of the grid's 20 epochs"
    );
    // At least one trial ran to its end, a promoted one, and it ended exactly as an
    // uninterrupted run of its configuration.
    let (winner, status) = (&rows[1][1], &rows[1][2]);
    assert_eq!(status, "completed", "{rows:?}");
    assert!(promoted.contains(&winner.as_str()), "{promoted:?} {rows:?}");
    assert_ends_as_an_uninterrupted_run(&root.join("trials").join(winner), &dir.join("straight"));
    // The sweep is over: the trials still paused keep no resumable state.
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(
        text(&status).contains("in 0 resumable states"),
        "{}",
        text(&status)
    );
}

#[test]
fn keep_checkpoints_keeps_only_the_best_trials_checkpoints_and_status_shows_the_disk() {
    let dir = scratch("keep");
    let s = spec(
        &dir,
        "keep",
        "keep_checkpoints = 2\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.001, 0.01, 0.05, 0.1]",
        "",
    );
    let results = dir.join("results");
    let root = results.join("keep");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let kept: Vec<bool> = rows[1..]
        .iter()
        .map(|r| {
            root.join("trials")
                .join(&r[1])
                .join("best.safetensors")
                .is_file()
        })
        .collect();
    assert_eq!(kept, [true, true, false, false], "the top 2 by the metric");
    assert!(root.join("best/best.safetensors").is_file());
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(
        text(&status).contains("in 2 kept checkpoints, 0.0 MB in 0 resumable states"),
        "{}",
        text(&status)
    );
}

/// A TPE sweep of fake_train.py over lr and momentum.
fn tpe_spec(dir: &Path, name: &str, samples: usize) -> PathBuf {
    common::tpe_spec(dir, name, (samples, 3, 5), 0.05)
}

#[test]
fn tpe_asks_for_the_same_trials_in_parallel_whatever_the_timing() {
    let dir = scratch("tpe-determinism");
    let s = tpe_spec(&dir, "tpe", 10);
    let mut sequences = Vec::new();
    for run_no in 0..2 {
        let results = dir.join(format!("results{run_no}"));
        let mut cmd = sweep(&[
            "run",
            s.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--per-device",
            "2",
        ]);
        // Epochs of random length: trials end in another order every run.
        cmd.env("FAKE_TRAIN_JITTER", "0.3");
        let o = run(cmd);
        assert!(o.status.success(), "{}", text(&o));
        let ids = asked(&results.join("tpe"));
        assert_eq!(ids.len(), 10);
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), 10, "no trial asked twice");
        sequences.push(ids);
    }
    assert_eq!(sequences[0], sequences[1]);
    // The plan shows the space and the budget.
    let o = run(sweep(&["plan", s.to_str().unwrap()]));
    assert!(
        text(&o).contains("tpe: 10 trials, the first 3 at random"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("lr: log_uniform [0.0001, 1.0]"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("trial i is drawn knowing trials 0..i-P")
            && text(&o).contains("--per-device 1"),
        "plan says how parallelism affects TPE: {}",
        text(&o)
    );
}

#[test]
fn a_tpe_sweep_killed_mid_way_resumes_without_losing_or_repeating_a_trial_and_can_grow() {
    let dir = scratch("tpe-resume");
    let s = tpe_spec(&dir, "tpe", 12);
    let results = dir.join("results");
    let root = results.join("tpe");
    kill_sweep_after(&s, &results, &root, 5, "finished");
    let before = asked(&root);
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let after = asked(&root);
    assert_eq!(after.len(), 12);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the trials asked before are kept"
    );
    let unique: std::collections::HashSet<&String> = after.iter().collect();
    assert_eq!(unique.len(), 12, "no trial asked twice");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 13);
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
    let j = journal(&root);
    for id in &after {
        assert_eq!(
            j.iter()
                .filter(|e| e["event"] == "finished"
                    && e["trial"] == id.as_str()
                    && e["status"] == "completed")
                .count(),
            1,
            "{id} completed once"
        );
    }
    // More samples: the sweep goes on where it stopped.
    edit_spec(&s, "samples = 12", "samples = 15");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let grown = asked(&root);
    assert_eq!(grown.len(), 15);
    assert_eq!(&grown[..12], &after[..]);
}

#[test]
fn a_gp_sweep_asks_the_same_trials_in_parallel_whatever_the_timing_and_after_kill_9() {
    let dir = scratch("gp-determinism");
    let s = tpe_spec(&dir, "gp", 10);
    std::fs::write(
        &s,
        std::fs::read_to_string(&s)
            .unwrap()
            .replace("method = \"tpe\"", "method = \"gp\"")
            .replace("startup = 3", "startup = 4"),
    )
    .unwrap();
    let straight = dir.join("straight");
    let mut cmd = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        straight.to_str().unwrap(),
        "--per-device",
        "2",
    ]);
    cmd.env("FAKE_TRAIN_JITTER", "0.3");
    let o = run(cmd);
    assert!(o.status.success(), "{}", text(&o));
    let want = asked(&straight.join("gp"));
    assert_eq!(want.len(), 10);
    // Who proposed each trial is journalled: the quasi-random start-up, then the GP.
    let by: Vec<String> = journal(&straight.join("gp"))
        .iter()
        .filter(|e| e["event"] == "trial")
        .map(|e| e["sampler"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(by[..4], ["startup"; 4]);
    assert_eq!(by[4..], ["gp"; 6]);
    let status = run(sweep(&["status", straight.join("gp").to_str().unwrap()]));
    assert!(
        text(&status).contains("sampler gp: 10 trials, the first 4 quasi-random")
            && text(&status).contains("so far: 6 gp, 4 startup"),
        "{}",
        text(&status)
    );
    // Killed with SIGKILL after 5 trials ended, then resumed: the same trials.
    let results = dir.join("killed");
    let root = results.join("gp");
    let mut child = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--per-device",
        "2",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    wait_for("5 finished", std::time::Duration::from_secs(120), || {
        journal(&root)
            .iter()
            .filter(|e| e["event"] == "finished")
            .count()
            >= 5
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let o = run_sweep(&s, &results, &["--per-device", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(asked(&root), want);
}

#[test]
fn the_longest_trial_starts_first_and_gets_the_core_a_finished_trial_frees() {
    let dir = scratch("balanced");
    // The long trial (2000 steps, seconds) must still be training when the short one (20
    // steps) ends and the orchestrator lends it the freed core (it looks every 250 ms).
    let search = "[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"short\"\n\
                  [[search.trials]]\nlabel = \"long\"\nepochs = 4\n\"data.train_limit\" = 50000";
    let s = spec(&dir, "balanced", search, "");
    let ids = |results: &Path| {
        let board = csv_rows(&results.join("balanced/leaderboard.csv"));
        let col = |name: &str| board[0].iter().position(|c| c == name).unwrap();
        let (trial, label) = (col("trial"), col("label"));
        let id = |l: &str| board.iter().find(|r| r[label] == l).unwrap()[trial].clone();
        (id("short"), id("long"))
    };

    let balanced = dir.join("balanced-results");
    let o = run_sweep(&s, &balanced, &["--per-device", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let (short, long) = ids(&balanced);
    let started: Vec<String> = journal(&balanced.join("balanced"))
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| e["trial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, [long.clone(), short], "longest first");
    let log = std::fs::read_to_string(
        balanced
            .join("balanced/trials")
            .join(&long)
            .join("train.log"),
    )
    .unwrap();
    assert!(log.contains("threads: 2 from step"), "{log}");

    // In plan order nobody lends a core, and the long trial's results are the same bits.
    let plan = dir.join("plan-results");
    let o = run_sweep(&s, &plan, &["--per-device", "2", "--schedule", "plan"]);
    assert!(o.status.success(), "{}", text(&o));
    let (_, long_in_plan) = ids(&plan);
    let trial = |root: &Path, id: &str| root.join("balanced/trials").join(id);
    let log = std::fs::read_to_string(trial(&plan, &long_in_plan).join("train.log")).unwrap();
    assert!(!log.contains("threads:"), "{log}");
    assert_eq!(
        metrics_without_time(&trial(&balanced, &long)),
        metrics_without_time(&trial(&plan, &long_in_plan))
    );
    assert_eq!(
        std::fs::read(trial(&balanced, &long).join("best.safetensors")).unwrap(),
        std::fs::read(trial(&plan, &long_in_plan).join("best.safetensors")).unwrap(),
        "a trial's weights do not depend on its thread count"
    );
}
