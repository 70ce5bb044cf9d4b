//! End-to-end tests of command trials: sweeping a user's own program (here
//! tests/programs/fake_train.py, standard-library Python) through the same engine as the
//! built-in trainer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn finished(root: &Path) -> Vec<serde_json::Value> {
    journal(root)
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .collect()
}

#[test]
fn a_command_sweep_ranks_on_what_the_program_reports_and_keeps_its_directory() {
    let dir = scratch("cmd-rank");
    // The program prints other lines too: only the prefixed ones are reports.
    let s = command_spec(
        &dir,
        "rank",
        r#""--lr", "{lr}", "--epochs", "3", "--prefix", "@sweep ""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.1, 0.5]",
    );
    let text_of = std::fs::read_to_string(&s).unwrap();
    std::fs::write(
        &s,
        text_of.replace("[params]", "prefix = \"@sweep \"\n[params]"),
    )
    .unwrap();
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("rank");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        &rows[0][..5],
        ["rank", "trial", "status", "val_acc", "best_epoch"]
    );
    let lrs: Vec<&str> = rows[1..].iter().map(|r| r[5].as_str()).collect();
    assert_eq!(lrs, ["0.1", "0.5", "0.001"], "the score peaks at lr = 0.1");
    // The other metrics the trials reported at their kept epoch follow the board's columns.
    assert_eq!(rows[0].last().unwrap(), "train_loss", "{:?}", rows[0]);
    assert_eq!(
        rows[1].last().unwrap(),
        "0.3333",
        "train_loss at the kept epoch 3"
    );
    let best = &rows[1][1];
    let trial = root.join("trials").join(best);
    // The parameters as JSON and TOML, the program's own files, and metrics.csv from its reports.
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trial.join("params.json")).unwrap()).unwrap();
    assert_eq!(params["lr"], 0.1);
    assert!(
        std::fs::read_to_string(trial.join("params.toml"))
            .unwrap()
            .contains("lr = 0.1")
    );
    assert_eq!(
        std::fs::read_to_string(trial.join("metrics.csv"))
            .unwrap()
            .lines()
            .next(),
        Some("epoch,val_acc,train_loss")
    );
    assert!(
        std::fs::read_to_string(trial.join("train.log"))
            .unwrap()
            .contains("training lr=0.1")
    );
    // best/ is a copy of the winner's directory, whatever the program wrote there.
    for f in [
        "checkpoint.json",
        "params.json",
        "metrics.csv",
        "summary.json",
    ] {
        assert!(root.join("best").join(f).is_file(), "best/{f}");
    }
    assert!(trial.join("trial.lock").is_file());
    assert!(
        !root.join("best/trial.lock").exists(),
        "best/ holds results, not the trial's lock"
    );
    // `status --format json` says the same for scripts.
    let o = run(sweep(&[
        "status",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["counts"]["completed"], 3);
    assert_eq!(status["best"]["trial"], best.as_str());
    assert_eq!(status["ranked_by"], "val_acc (max)");
    // A rerun runs the program again with the same parameters.
    let o = run(sweep(&["rerun", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("rerun of {best}: completed best val_acc")),
        "{out}"
    );
    // Any trial reruns by its id, not only the winner.
    let second = csv_rows(&root.join("leaderboard.csv"))[2][1].clone();
    let o = run(sweep(&[
        "rerun",
        root.to_str().unwrap(),
        "--trial",
        &second,
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("rerun of {second}: completed")),
        "{}",
        text(&o)
    );
    let o = run(sweep(&["rerun", root.to_str().unwrap(), "--trial", "nope"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("no trial nope"), "{}", text(&o));
}

#[test]
fn reruns_started_in_the_same_second_each_keep_their_own_directory() {
    let dir = scratch("cmd-reruns");
    let s = command_spec(
        &dir,
        "reruns",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("reruns");
    let lrs = ["0.2", "0.3", "0.4"];
    let children: Vec<_> = lrs
        .iter()
        .map(|lr| {
            let set = format!("lr={lr}");
            sweep(&["rerun", root.to_str().unwrap(), "--set", &set])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let mut seen: Vec<String> = std::fs::read_dir(root.join("reruns"))
        .unwrap()
        .map(|d| {
            let params = std::fs::read_to_string(d.unwrap().path().join("params.json")).unwrap();
            let v: serde_json::Value = serde_json::from_str(&params).unwrap();
            v["lr"].to_string()
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen, lrs,
        "three reruns, three directories, none overwritten"
    );
}

#[test]
fn a_command_rerun_counts_the_epochs_it_runs_and_refuses_a_key_the_trial_lacks() {
    let dir = scratch("cmd-rerun-set");
    let s = command_spec(
        &dir,
        "rs",
        r#""--lr", "{lr}", "--epochs", "{epochs}""#,
        "lr = 0.01\nepochs = 9",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("rs");
    let o = run(sweep(&[
        "rerun",
        root.to_str().unwrap(),
        "--set",
        "epochs=2",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("running the program for 2 epochs on cpu"),
        "{out}"
    );
    assert!(!out.contains("0 steps"), "{out}");
    assert!(out.contains("epoch   2/2"), "{out}");
    let o = run(sweep(&[
        "rerun",
        root.to_str().unwrap(),
        "--set",
        "lrr=0.5",
    ]));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("has no parameter `lrr`; its parameters are epochs, lr, seed"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_time_budget_starts_no_trial_after_it_lets_running_ones_finish_and_leaves_the_rest_pending() {
    let dir = scratch("cmd-budget");
    let s = command_spec(
        &dir,
        "budget",
        r#""--lr", "{lr}", "--epochs", "2", "--sleep", "0.4""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1, 0.2, 0.3, 0.4]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "1", "--timeout", "1s"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the time budget of 1s is spent: no new trial starts"),
        "{}",
        text(&o)
    );
    let root = results.join("budget");
    let ends = finished(&root);
    assert!(!ends.is_empty() && ends.len() < 4, "{ends:?}");
    assert!(
        ends.iter().all(|e| e["status"] == "completed"),
        "running trials finish: {ends:?}"
    );
    assert!(text(&o).contains("still pending"), "{}", text(&o));
    // The next run, without a budget, runs the rest.
    let o = run_sweep(&s, &results, &["--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(finished(&root).len(), 4);
}

#[test]
fn sweep_stop_ends_one_running_trial_as_pruned_and_the_sweep_goes_on() {
    let dir = scratch("cmd-stop");
    // The first trial holds after epoch 1 (until stopped); the second runs through.
    let s = command_spec(
        &dir,
        "stop",
        r#""--lr", "{lr}", "--epochs", "3", "--hold-after", "{hold}""#,
        "lr = 0.01\nhold = 0",
        "[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"stuck\"\nlr = 0.1\nhold = 1\n[[search.trials]]\nlabel = \"fine\"\nlr = 0.2",
    );
    let results = dir.join("results");
    let root = results.join("stop");
    let child = spawn_sweep(&s, &results, &["--per-device", "1", "--schedule", "plan"]);
    wait_for(
        "an epoch of the stuck trial",
        Duration::from_secs(60),
        || journal(&root).iter().any(|e| e["event"] == "epoch"),
    );
    let o = run(sweep(&["stop", root.to_str().unwrap(), "fine"]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("trial fine is pending, not running"),
        "{}",
        text(&o)
    );
    let o = run(sweep(&["stop", root.to_str().unwrap(), "stuck"]));
    assert!(o.status.success(), "{}", text(&o));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let ends = finished(&root);
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0]["status"], "pruned");
    assert!(
        ends[0]["message"]
            .as_str()
            .unwrap()
            .contains("stopped by `sweep stop` after epoch 1"),
        "{ends:?}"
    );
    assert_eq!(ends[1]["status"], "completed");
}

#[test]
fn a_program_may_append_its_metrics_to_metrics_csv_instead() {
    let dir = scratch("cmd-csv");
    let s = command_spec(
        &dir,
        "csv",
        r#""--lr", "{lr}", "--epochs", "3", "--report", "csv""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01, 0.1]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&results.join("csv/leaderboard.csv"));
    assert_eq!(rows[1][5], "0.1");
    assert_eq!(rows[1][4], "3", "best epoch 3");
}

#[test]
fn failures_timeouts_and_missing_metrics_are_recorded_with_what_went_wrong() {
    let dir = scratch("cmd-fail");
    let s = command_spec(
        &dir,
        "fail",
        r#""--lr", "0.1", "--epochs", "{epochs}", "--sleep", "{sleep}", "--fail-at", "{fail_at}", "--metric", "{reports}""#,
        "epochs = 3\nsleep = 0.0\nfail_at = 0\nreports = \"val_acc\"",
        "[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"crash\"\nfail_at = 2\n[[search.trials]]\nlabel = \"slow\"\nepochs = 100\nsleep = 1.0\n[[search.trials]]\nlabel = \"other metric\"\nreports = \"accuracy\"\n[[search.trials]]\nlabel = \"fine\"",
    );
    let results = dir.join("results");
    let start = std::time::Instant::now();
    let o = run_sweep(
        &s,
        &results,
        &["--timeout-per-trial", "3s", "--retries", "0"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the slow trial was cut off"
    );
    let root = results.join("fail");
    let by_label = |label: &str| {
        let id = journal(&root)
            .into_iter()
            .find(|e| e["event"] == "trial" && e["label"] == label)
            .unwrap()["id"]
            .clone();
        finished(&root)
            .into_iter()
            .find(|e| e["trial"] == id)
            .unwrap()
    };
    let crash = by_label("crash");
    assert_eq!(crash["status"], "failed");
    let message = crash["message"].as_str().unwrap();
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(
        message.contains("ValueError: the loss exploded"),
        "the log's tail: {message}"
    );
    assert_eq!(by_label("slow")["status"], "timeout");
    let other = by_label("other metric");
    assert_eq!(other["status"], "failed");
    assert!(
        other["message"].as_str().unwrap().contains(
            "never reports the sweep's metric `val_acc`: its 3 epochs reported accuracy, train_loss"
        ),
        "{other}"
    );
    assert_eq!(by_label("fine")["status"], "completed");
}

#[test]
fn a_program_that_validates_every_few_epochs_is_ranked_and_judged_on_those_epochs() {
    let dir = scratch("cmd-sparse");
    // val_acc every 2nd epoch, train_loss every epoch; epochs as 1.0, 2.0 (numpy's floats).
    let s = command_spec(
        &dir,
        "sparse",
        r#""--lr", "{lr}", "--epochs", "4", "--val-every", "2", "--float-epoch", "1""#,
        "lr = 0.01",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\n[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1, 0.0001, 0.001]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "1", "--schedule", "plan"]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("sparse");
    let j = journal(&root);
    let epochs = j.iter().filter(|e| e["event"] == "epoch").count();
    assert!(
        epochs >= 6,
        "every epoch journalled, with or without val_acc"
    );
    let decisions: Vec<u64> = j
        .iter()
        .filter(|e| e["event"] == "decision")
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert!(!decisions.is_empty());
    assert!(
        decisions.iter().all(|e| e % 2 == 0),
        "only epochs with val_acc are judged: {decisions:?}"
    );
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1][col("status")], "completed");
    assert_eq!(rows[1][col("lr")], "0.1");
    assert_eq!(rows[1][col("best_epoch")], "4");
    assert!(finished(&root).iter().all(|e| e["status"] != "failed"));
}

#[test]
fn a_pruned_command_trial_is_stopped() {
    let dir = scratch("cmd-prune");
    // One trial at a time: the best learning rate runs its 6 epochs first; the two worse ones
    // reach rung 1 below it and wait there (--hold-after 1) until the sweep stops them.
    let s = command_spec(
        &dir,
        "prune",
        r#""--lr", "{lr}", "--epochs", "6", "--hold-after", "{hold}""#,
        "lr = 0.01\nhold = 0",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\n[search]\nmethod = \"list\"\n[[search.trials]]\nlr = 0.1\n[[search.trials]]\nlr = 0.0001\nhold = 1\n[[search.trials]]\nlr = 0.00001\nhold = 1",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "1", "--schedule", "plan"]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("prune");
    let ends = finished(&root);
    let pruned: Vec<&serde_json::Value> = ends.iter().filter(|e| e["status"] == "pruned").collect();
    assert_eq!(pruned.len(), 2, "{ends:?}");
    for e in pruned {
        let trial = root.join("trials").join(e["trial"].as_str().unwrap());
        let s = summary(&trial);
        assert_eq!(s["status"], "pruned");
        assert!(s["epochs_run"].as_u64().unwrap() < 6, "stopped early: {s}");
        assert!(s["message"].as_str().unwrap().contains("pruned"), "{s}");
    }
}

#[test]
fn a_command_trial_run_again_after_an_interruption_gets_sweep_resume() {
    let dir = scratch("cmd-resume");
    let s = command_spec(
        &dir,
        "resume",
        r#""--lr", "{lr}", "--epochs", "8", "--hold-after", "3""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let root = results.join("resume");
    kill_sweep_after(&s, &results, &root, 3, "epoch");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let trial = only_trial(&root);
    let resumed = std::fs::read_to_string(trial.join("resumed.txt")).unwrap();
    assert!(resumed.starts_with("resumed at epoch"), "{resumed}");
    let epochs: Vec<String> = csv_rows(&trial.join("metrics.csv"))[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4", "5", "6", "7", "8"]);
}

#[test]
fn a_command_sweeps_report_shows_its_description_and_no_columns_it_lacks() {
    let dir = scratch("cmd-report");
    let s = command_spec(
        &dir,
        "rep",
        r#""--lr", "{lr}", "--epochs", "2""#,
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01, 0.1]",
    );
    let text_of = std::fs::read_to_string(&s).unwrap();
    std::fs::write(
        &s,
        text_of.replace(
            "metric = \"val_acc\"",
            "metric = \"val_acc\"\ndescription = \"lr & friends <on the fake trainer>\"",
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let Some(page) = render_report(&results.join("rep"), "") else {
        return;
    };
    assert!(
        page.dom
            .contains("lr &amp; friends &lt;on the fake trainer&gt;"),
        "the description, as text"
    );
    assert!(page.dom.contains("selected on the validation split"));
    assert!(
        !page.dom.contains("test_acc_at_best"),
        "no explanation of columns a command sweep does not have"
    );
}

#[test]
fn the_report_is_republished_while_the_sweep_runs_and_is_static_once_it_ends() {
    let dir = scratch("cmd-live");
    // The second trial waits after its first epoch until the test says go.
    let go = dir.join("go");
    let s = command_spec(
        &dir,
        "live",
        &format!(
            r#""--lr", "{{lr}}", "--epochs", "2", "--hold-after", "{{hold}}", "--hold-file", "{}""#,
            go.display()
        ),
        "hold = 0",
        "[search]\nmethod = \"list\"\n[[search.trials]]\nlr = 0.1\n[[search.trials]]\nlr = 0.01\nhold = 1",
    );
    let results = dir.join("results");
    let mut child = spawn_sweep(&s, &results, &["--per-device", "1", "--schedule", "plan"]);
    let report = results.join("live/report.html");
    wait_for("the live report", Duration::from_secs(60), || {
        std::fs::read_to_string(&report)
            .is_ok_and(|h| h.contains(r#""live":{"finished":1,"total":2}"#))
    });
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "the page reloads itself"
    );
    if let Some(page) = render_report(&results.join("live"), "") {
        assert!(page.dom.contains("running: 1 of 2 finished, updated "));
    }
    std::fs::write(&go, "").unwrap();
    assert!(child.wait().unwrap().success());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http-equiv=\"refresh\"") && html.contains(r#""live":null"#),
        "the final page is static"
    );
}
