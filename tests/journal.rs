//! The journal survives what a crash does to it: a torn last line, a corrupt line in the
//! middle, and `sweep run` killed with SIGKILL at any moment.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A command sweep of `trials` instant trials (a shell script that prints 8 epochs at once),
/// so that a sweep writes many journal records in about a second.
fn instant_spec(dir: &Path, name: &str, trials: usize) -> PathBuf {
    let script = dir.join("instant.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor e in 1 2 3 4 5 6 7 8; do\n  echo \"{\\\"epoch\\\": $e, \\\"val_acc\\\": $1.$e, \\\"train_loss\\\": 0.$e}\"\ndone\n",
    )
    .unwrap();
    let values: Vec<String> = (1..=trials).map(|x| x.to_string()).collect();
    let text = format!(
        "name = \"{name}\"\nmetric = \"val_acc\"\n[command]\nrun = [\"sh\", \"{}\", \"{{x}}\"]\n\
         [params]\nx = 1\n[search]\nmethod = \"grid\"\n[search.params]\nx = [{}]\n",
        script.display(),
        values.join(", ")
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The leaderboard without the columns that hold wall time.
fn board_without_time(root: &Path) -> Vec<Vec<String>> {
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let keep: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.contains("seconds") && !h.contains("time"))
        .map(|(i, _)| i)
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_torn_last_line_is_set_aside_before_a_grown_sweep_appends_and_nothing_is_lost() {
    let dir = scratch("journal-torn");
    let spec = instant_spec(&dir, "torn", 4);
    let results = dir.join("results");
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("torn");
    let journal_path = root.join("journal.jsonl");
    let fragment = r#"{"time":"2026-11-29T01:00:00.000+00:00","event":"finished","trial":"abc"#;
    append(&journal_path, fragment);

    // Readers tolerate the torn line.
    for cmd in ["status", "leaderboard", "report"] {
        let o = run(sweep(&[cmd, root.to_str().unwrap()]));
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }

    // The spec grows by one value: the run sets the fragment aside, then appends.
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("x = [1, 2, 3, 4]", "x = [1, 2, 3, 4, 5]"),
    )
    .unwrap();
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("were moved to") && text(&o).contains("journal.torn"),
        "the run says it set the torn line aside: {}",
        text(&o)
    );
    let kept = std::fs::read_to_string(root.join("journal.torn")).unwrap();
    assert!(kept.contains(fragment), "{kept}");
    // Every line of the journal is whole and parses.
    let body = std::fs::read_to_string(&journal_path).unwrap();
    assert!(body.ends_with('\n'));
    for (i, line) in body.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
    }
    let entries = journal(&root);
    assert_eq!(
        entries[0]["event"], "format",
        "the first line is the format"
    );
    let started = entries.iter().filter(|e| e["event"] == "started").count();
    assert_eq!(started, 5, "the grown trial ran once, the others not again");
    let o = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 6, "five trials ranked: {rows:?}");
    assert!(rows[1..].iter().all(|r| r[2] == "completed"), "{rows:?}");
}

#[test]
fn a_corrupt_line_in_the_middle_is_skipped_by_readers_refused_by_run_and_repaired() {
    let dir = scratch("journal-corrupt");
    let spec = instant_spec(&dir, "corrupt", 3);
    let results = dir.join("results");
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("corrupt");
    let journal_path = root.join("journal.jsonl");
    let before = board_without_time(&root);
    // Corrupt the last trial's `finished` line in place.
    let body = std::fs::read_to_string(&journal_path).unwrap();
    let mut lines: Vec<String> = body.lines().map(String::from).collect();
    let victim = lines
        .iter()
        .rposition(|l| l.contains("\"event\":\"finished\""))
        .unwrap();
    lines[victim] = lines[victim][..40].to_string() + "#garbage#";
    lines.push(body.lines().last().unwrap().to_string()); // so the bad line is not the last
    std::fs::write(&journal_path, lines.join("\n") + "\n").unwrap();
    let line_no = format!("journal.jsonl:{}", victim + 1);

    for cmd in ["status", "report"] {
        let o = run(sweep(&[cmd, root.to_str().unwrap()]));
        assert!(o.status.success(), "{cmd}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&line_no) && err.contains("skipped a corrupt line"),
            "{cmd} warns about {line_no}: {err}"
        );
    }

    let o = run_sweep(&spec, &results, &[]);
    assert!(!o.status.success(), "run must refuse");
    let err = text(&o);
    assert!(
        err.contains(&line_no) && err.contains("sweep repair"),
        "run names the line and `sweep repair`: {err}"
    );
    assert!(!err.contains("older sweep"), "{err}");

    let o = run(sweep(&["repair", root.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("dropped line {}", victim + 1)),
        "{}",
        text(&o)
    );
    let backups: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "one backup of the old journal");
    assert_eq!(
        std::fs::read_to_string(backups[0].path()).unwrap(),
        lines.join("\n") + "\n"
    );
    assert!(
        std::fs::read_to_string(root.join("journal.quarantine"))
            .unwrap()
            .contains("#garbage#")
    );

    // The sweep resumes: the trial whose end was lost is read back from its directory.
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    assert_eq!(board_without_time(&root), before);
}

#[test]
fn a_trial_that_ran_while_its_start_was_lost_is_collected_with_its_device() {
    // `sweep run` killed after a trial ran but before its start reached the journal whole
    // (the torn line is set aside): resuming collects the trial from its directory.
    let dir = scratch("journal-lost-start");
    let spec = instant_spec(&dir, "lost", 3);
    let results = dir.join("results");
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("lost");
    let before = board_without_time(&root);
    let device = before[0].iter().position(|h| h == "device").unwrap();
    assert!(before[1..].iter().all(|r| r[device] == "cpu"), "{before:?}");

    // Drop everything the journal says of the last trial after it entered the plan.
    let path = root.join("journal.jsonl");
    let body = std::fs::read_to_string(&path).unwrap();
    let last = journal(&root)
        .iter()
        .rev()
        .find(|e| e["event"] == "started")
        .map(|e| e["trial"].as_str().unwrap().to_string())
        .unwrap();
    let kept: Vec<&str> = body
        .lines()
        .filter(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            e["trial"] != last.as_str() || e["event"] == "trial"
        })
        .collect();
    assert!(kept.len() < body.lines().count());
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let metrics = root.join("trials").join(&last).join("metrics.csv");
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let written = modified(&metrics);

    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(board_without_time(&root), before);
    // Collected, not run again: its metrics file is untouched and its end says so.
    assert_eq!(modified(&metrics), written);
    let ends: Vec<String> = journal(&root)
        .iter()
        .filter(|e| e["event"] == "finished" && e["trial"] == last.as_str())
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ends, ["collected from the trial directory"]);
}

/// A seeded sequence of delays, so that a failure can be replayed.
fn delays(n: usize, max: Duration) -> Vec<Duration> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            max.mul_f64((state % 10_000) as f64 / 10_000.0)
        })
        .collect()
}

#[test]
fn a_sweep_killed_at_thirty_random_moments_always_resumes_to_the_uninterrupted_leaderboard() {
    let dir = scratch("journal-kill");
    let spec = instant_spec(&dir, "kill", 12);
    let reference = dir.join("reference");
    let started = std::time::Instant::now();
    let o = run_sweep(&spec, &reference, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let uninterrupted = started.elapsed();
    let expected = board_without_time(&reference.join("kill"));
    assert_eq!(expected.len(), 13);

    for (i, delay) in delays(30, uninterrupted).into_iter().enumerate() {
        let results = dir.join(format!("run-{i}"));
        let mut child = spawn_sweep(&spec, &results, &[]);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let root = results.join("kill");
        // Every other time, also cut the journal inside its last line, as a crash mid-write
        // would have.
        let path = root.join("journal.jsonl");
        if i % 2 == 1
            && let Ok(body) = std::fs::read(&path)
            && body.len() > 2
        {
            let last_start = body[..body.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let cut = last_start + (body.len() - 1 - last_start) / 2;
            std::fs::write(&path, &body[..cut]).unwrap();
        }
        let o = run_sweep(&spec, &results, &[]);
        assert!(
            o.status.success(),
            "kill {i} after {delay:?}: rerun failed: {}",
            text(&o)
        );
        assert_eq!(
            board_without_time(&root),
            expected,
            "kill {i} after {delay:?}"
        );
        // Every trial's metrics, epoch by epoch, as the uninterrupted run's.
        for row in &expected[1..] {
            let metrics = |r: &Path| {
                std::fs::read_to_string(r.join("trials").join(&row[1]).join("metrics.csv")).unwrap()
            };
            assert_eq!(
                metrics(&root),
                metrics(&reference.join("kill")),
                "kill {i}: trial {}",
                row[1]
            );
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("kill {i}: {e}: {line}"));
        }
        let _ = std::fs::remove_dir_all(&results);
    }
}

#[test]
fn a_slurm_task_requeued_after_a_torn_event_appends_after_the_last_whole_event() {
    // The task side of events.jsonl: the same writer as the journal's.
    let dir = scratch("journal-events");
    let job = prepared_trial(&dir, "evts", 1);
    let events = job.dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"event\":\"start\",\"trial\":\"evts\",\"device\":\"cpu\",\"engine\":\"fused\",\"threads\":1}\n{\"event\":\"epo",
    )
    .unwrap();
    let o = run(sweep(&[
        "trial",
        job.dir.to_str().unwrap(),
        "--events",
        "file",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let body = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(lines.len() >= 3, "{body}");
    assert!(
        std::fs::read_to_string(job.dir.join("events.torn"))
            .unwrap()
            .contains("{\"event\":\"epo")
    );
}
