//! What a new user trips on: a closed pipe, a failure that will always recur, reports the
//! program got slightly wrong. Each test failed before its fix.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::*;

#[test]
fn a_closed_pipe_stops_the_printing_not_the_sweep() {
    let dir = scratch("mistakes-pipe");
    let s = command_spec(
        &dir,
        "pipe",
        r#""--lr", "{lr}", "--epochs", "4""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01, 0.03, 0.1, 0.3, 0.5]",
    );
    let results = dir.join("results");
    // As `sweep run X 2>&1 | head -1`: read one line, then close the pipe.
    let mut child = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = [0u8; 1];
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the sweep ran to its end: {status}");
    let rows = csv_rows(&results.join("pipe/leaderboard.csv"));
    assert_eq!(rows.len(), 7);
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
}

#[test]
fn a_failure_every_trial_repeats_stops_the_sweep_after_max_failures_trials() {
    let dir = scratch("mistakes-halt");
    // The program reports `acc`, the spec ranks by `val_acc`: every trial fails alike.
    let s = command_spec(
        &dir,
        "halt",
        r#""--lr", "{lr}", "--epochs", "2", "--metric", "acc""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("the first 3 trials to end all failed the same way")
            && out.contains("never reports the sweep's metric `val_acc`"),
        "{out}"
    );
    let entries = journal(&results.join("halt"));
    let attempts = entries.iter().filter(|e| e["event"] == "started").count();
    assert!(attempts <= 5, "{attempts} attempts for 8 trials");
    let stopped: Vec<_> = entries.iter().filter(|e| e["event"] == "stopped").collect();
    assert_eq!(stopped.len(), 1);
    for e in entries.iter().filter(|e| e["event"] == "finished") {
        let m = e["message"].as_str().unwrap_or("");
        assert!(!m.contains("=== attempt"), "{m}");
    }
    // max_failures = 0 never stops: every trial is tried.
    let text_of = std::fs::read_to_string(&s).unwrap();
    std::fs::write(
        &s,
        text_of.replace("name = \"halt\"", "name = \"halt0\"\nmax_failures = 0"),
    )
    .unwrap();
    let o = run_sweep(&s, &results, &["--retries", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let entries = journal(&results.join("halt0"));
    let attempts = entries.iter().filter(|e| e["event"] == "started").count();
    assert_eq!(attempts, 8);
}

/// The failure message of the one trial of a sweep whose program prints `line` each epoch.
fn failure_of(name: &str, line: &str, extra_spec: &str) -> String {
    let dir = scratch(&format!("mistakes-{name}"));
    let program = dir.join("report.sh");
    std::fs::write(&program, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
    let spec = dir.join("s.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"{name}\"\nmetric = \"val_acc\"\n[command]\nrun = [\"sh\", \"{}\", \"{{x}}\"]\n{extra_spec}\n[search]\nmethod = \"grid\"\n[search.params]\nx = [1]\n",
            program.display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let o = run_sweep(&spec, &results, &["--retries", "0"]);
    let finished: Vec<_> = journal(&results.join(name))
        .into_iter()
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1, "{}", text(&o));
    format!(
        "{}: {}",
        finished[0]["status"].as_str().unwrap(),
        finished[0]["message"].as_str().unwrap_or("")
    )
}

#[test]
fn reports_the_program_got_wrong_are_named_in_the_failure() {
    let m = failure_of("noepoch", r#"{"val_acc": 97.1}"#, "");
    assert!(m.contains("without `epoch`"), "{m}");
    let m = failure_of("string", r#"{"epoch": 1, "val_acc": "97.1"}"#, "");
    assert!(
        m.contains(r#"`val_acc` was sent as the string "97.1", not a number"#),
        "{m}"
    );
    let m = failure_of(
        "prefix",
        r#"{"epoch": 1, "val_acc": 97.1}"#,
        "prefix = \"@sweep \"",
    );
    assert!(
        m.contains("after the prefix `@sweep `") && m.contains("without the prefix `@sweep `"),
        "{m}"
    );
    let m = failure_of("nan", r#"{"epoch": 1, "val_acc": NaN}"#, "");
    assert!(
        m.starts_with("diverged: "),
        "Python's NaN is a diverged value: {m}"
    );
}

#[test]
fn errors_blame_the_flag_or_the_folder_that_is_wrong_in_plain_words() {
    let dir = scratch("mistakes-words");
    let config = small_config(&dir, "");
    let o = run(sweep(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "optimizer.lrr=0.1",
    ]));
    assert!(
        text(&o).contains("--set optimizer.lrr=0.1: `optimizer.lrr`: unknown field `lrr`"),
        "{}",
        text(&o)
    );
    let o = run(sweep(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "epochs=1.5",
    ]));
    assert!(
        text(&o).contains("expected a whole number") && !text(&o).contains("usize"),
        "{}",
        text(&o)
    );
    // A sweep's results folder where a run or a spec was expected.
    let s = command_spec(
        &dir,
        "words",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(sweep(&["plan", s.to_str().unwrap()]));
    assert!(text(&o).contains("1 trial;"), "{}", text(&o));
    let root = results.join("words");
    let o = run(sweep(&["eval", root.to_str().unwrap()]));
    assert!(
        text(&o).contains(&format!("sweep eval {}", root.join("best").display())),
        "{}",
        text(&o)
    );
    let o = run(sweep(&["run", root.to_str().unwrap()]));
    assert!(
        text(&o).contains("a TOML file was expected")
            && text(&o).contains(&root.join("spec.toml").display().to_string()),
        "{}",
        text(&o)
    );
}

#[test]
fn progress_counts_the_whole_sweep_names_parameters_and_can_be_quiet_or_per_epoch() {
    let dir = scratch("mistakes-progress");
    let grid = command_spec(
        &dir,
        "grid",
        r#""--lr", "{lr}", "--epochs", "2""#,
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01, 0.1, 0.5]",
    );
    let results = dir.join("results");
    let o = run_sweep(&grid, &results, &["--max-trials", "2", "--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("(1/4)") && err.contains("[lr="), "{err}");
    assert!(!err.contains("epoch 1"), "no epoch lines by default: {err}");
    // A resume goes on counting.
    let o = run_sweep(
        &grid,
        &results,
        &["--per-device", "1", "--progress", "epochs"],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("(3/4)") && !err.contains("(1/4)"), "{err}");
    assert!(
        err.contains("started ") && err.contains("epoch 2 "),
        "{err}"
    );
    // Quiet: nothing per trial.
    let quiet = command_spec(
        &dir,
        "quiet",
        r#""--lr", "{lr}", "--epochs", "2""#,
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01]",
    );
    let o = run_sweep(&quiet, &results, &["--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success() && !err.contains("completed "), "{err}");
    // TPE counts up to its budget, not to the trials known when it started.
    let tpe = command_spec(
        &dir,
        "tpe",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "",
        "[search]\nmethod = \"tpe\"\nsamples = 4\nstartup = 2\n[search.params]\nlr = { log_uniform = [0.001, 1.0] }",
    );
    let o = run_sweep(&tpe, &results, &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("(4/4)") && !err.contains("/0)"), "{err}");
}

#[test]
fn an_interrupted_trial_is_reported_as_stopped_not_finished() {
    let dir = scratch("mistakes-stopped");
    let s = command_spec(
        &dir,
        "stop",
        r#""--lr", "{lr}", "--epochs", "5", "--hold-after", "1""#,
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01]",
    );
    let results = dir.join("results");
    let child = sweep(&[
        "run",
        s.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let root = results.join("stop");
    wait_for("an epoch", std::time::Duration::from_secs(60), || {
        journal(&root).iter().any(|e| e["event"] == "epoch")
    });
    let o = interrupt(child);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("stopped ") && err.contains("it resumes on the next run"),
        "{err}"
    );
    assert!(!err.contains("finished "), "{err}");
}

#[test]
fn a_corrected_metric_name_is_accepted_when_no_trial_kept_anything() {
    let dir = scratch("mistakes-metric");
    let s = command_spec(
        &dir,
        "metric",
        r#""--lr", "{lr}", "--epochs", "2", "--metric", "acc""#,
        "",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01, 0.1]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--retries", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    edit_spec(&s, "metric = \"val_acc\"", "metric = \"acc\"");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&results.join("metric/leaderboard.csv"));
    assert_eq!(rows[0][3], "acc");
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
    // Once trials kept results, another metric is refused and names the flag.
    edit_spec(&s, "metric = \"acc\"", "metric = \"train_loss\"");
    let o = run_sweep(&s, &results, &[]);
    assert!(
        !o.status.success() && text(&o).contains("--accept-changes"),
        "{}",
        text(&o)
    );
}

#[test]
fn help_shows_threads_only_where_something_trains_and_refuses_flags_that_contradict() {
    let help = |cmd: &str| text(&run(sweep(&[cmd, "--help"])));
    for cmd in ["run", "worker", "plan", "status", "leaderboard", "export"] {
        let h = help(cmd);
        assert!(
            !h.lines().any(|l| l.trim_start().starts_with("--threads ")),
            "{cmd}: {h}"
        );
    }
    for cmd in ["train", "eval", "rerun", "bench"] {
        assert!(help(cmd).contains("--threads <N>"), "{cmd}");
    }
    assert!(help("run").contains("its process's --threads"));
    assert!(help("worker").contains("workers x trials x threads"));
    assert!(help("submit").contains("--timeout-per-trial"));
    let o = run(sweep(&[
        "run",
        "sweeps/quick.toml",
        "--quiet",
        "--progress",
        "epochs",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot be used with"), "{}", text(&o));
    // Submit hands its timeout to every worker it starts.
    let dir = scratch("mistakes-submit");
    let o = run(sweep(&[
        "submit",
        "sweeps/quick.toml",
        "--slurm",
        "--workers",
        "2",
        "--timeout-per-trial",
        "2m",
        "--dry-run",
        "--results",
        dir.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("--timeout-per-trial 120s"),
        "{}",
        text(&o)
    );
}

#[test]
fn status_leaderboard_and_rerun_given_the_spec_find_its_results_or_say_where_they_would_be() {
    let dir = scratch("mistakes-spec-not-dir");
    let s = command_spec(
        &dir,
        "byspec",
        r#""--lr", "{lr}", "--epochs", "1""#,
        "lr = 0.01",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1]",
    );
    // Not run yet: the message says where its results would be.
    let o = run(sweep(&["status", s.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o)
            .contains("is the spec of sweep `byspec`, whose results would be in results/byspec"),
        "{}",
        text(&o)
    );
    // Run into results/ (the default) from a scratch directory: found from the spec.
    let o = run_sweep(&s, &dir.join("results"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    for args in [&["status"][..], &["leaderboard"], &["rerun"]] {
        let mut c = sweep(args);
        c.arg(&s).current_dir(&dir);
        let o = run(c);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
}
