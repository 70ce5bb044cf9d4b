//! Packed trials: several built-in trials of one architecture trained together in one process,
//! each still its own trial (directory, metrics, checkpoint, events, end).

mod common;

use common::*;
use sweep::events::TrialEvent;
use sweep::exec::local::{LocalExecutor, LocalOptions};
use sweep::exec::slots::DeviceSpec;
use sweep::exec::{ExecEvent, Executor};
use sweep::trial::{StopReason, TrialStatus};

#[test]
fn stopping_one_trial_of_a_pack_leaves_the_others_training() {
    let dir = scratch("pack-stop-one");
    let mut exec = LocalExecutor::new(LocalOptions {
        devices: vec![DeviceSpec::Cpu],
        per_device: 1,
        threads_per_trial: 1,
        exe: env!("CARGO_BIN_EXE_sweep").into(),
    })
    .unwrap();
    let pack: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| prepared_trial(&dir, id, 8))
        .collect();
    exec.start(pack).unwrap();
    assert!(!exec.room_for(None), "the pack takes the one slot");
    let mut last_epoch = std::collections::HashMap::new();
    let ended = drive(&mut exec, 3, |exec, e| {
        if let ExecEvent::Progress(TrialEvent::Epoch { trial, row, .. }) = e {
            last_epoch.insert(trial.clone(), row.epoch);
            match (trial.as_str(), row.epoch) {
                ("b", 1) => exec.stop("b", StopReason::Pruned).unwrap(),
                ("a", 3) => exec.stop("a", StopReason::Timeout).unwrap(),
                _ => {}
            }
        }
    });
    assert_eq!(ended["b"].status, TrialStatus::Pruned, "{:?}", ended["b"]);
    assert_eq!(ended["a"].status, TrialStatus::Timeout, "{:?}", ended["a"]);
    assert_eq!(
        ended["c"].status,
        TrialStatus::Completed,
        "{:?}",
        ended["c"]
    );
    assert_eq!(last_epoch["c"], 8);
    assert!(last_epoch["b"] < 8 && last_epoch["a"] < 8, "{last_epoch:?}");
    for (id, status) in [("a", "timeout"), ("b", "pruned"), ("c", "completed")] {
        let s = summary(&dir.join(id));
        assert_eq!(s["status"], status, "{id}: {s}");
        assert!(
            s["engine"].as_str().unwrap().starts_with("packed"),
            "{}",
            s["engine"]
        );
        assert!(dir.join(id).join("best.safetensors").is_file(), "{id}");
    }
    // Its trials ended as they said so; the slot frees when the process exits.
    wait_for(
        "the pack's process to exit",
        std::time::Duration::from_secs(30),
        || {
            exec.next_event(std::time::Duration::from_millis(50))
                .unwrap();
            exec.room_for(None)
        },
    );
}

/// Reads a trial's metrics.csv as (column, value) rows.
fn metric(run: &std::path::Path, column: &str) -> Vec<f64> {
    let rows = csv_rows(&run.join("metrics.csv"));
    let i = rows[0].iter().position(|c| c == column).unwrap();
    rows[1..].iter().map(|r| r[i].parse().unwrap()).collect()
}

#[test]
fn a_packed_sweep_trains_each_trial_as_it_trains_alone() {
    let dir = scratch("pack-sweep");
    let base = small_config(&dir, "");
    let spec_text = format!(
        "name = \"packed\"\nmetric = \"test_acc\"\nbase = \"{}\"\n[set]\nepochs = 3\n\"augment.rotation\" = 10.0\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.05, 1e9]\n\"augment.strength\" = [0.0, 1.0]\n",
        base.file_name().unwrap().to_str().unwrap()
    );
    let spec = dir.join("packed.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let (packed, alone) = (dir.join("packed-results"), dir.join("alone-results"));
    let run_with = |results: &std::path::Path, extra: &[&str]| {
        let o = run_sweep(&spec, results, extra);
        assert!(o.status.success(), "{}", text(&o));
    };
    run_with(&packed, &["--pack", "6", "--per-device", "1"]);
    run_with(&alone, &["--per-device", "2"]);

    let root = packed.join("packed");
    let j = journal(&root);
    let started: Vec<&str> = j
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| e["trial"].as_str().unwrap())
        .collect();
    assert_eq!(started.len(), 6, "every trial starts once");
    let first_end = j.iter().position(|e| e["event"] == "finished").unwrap();
    let last_start = j.iter().rposition(|e| e["event"] == "started").unwrap();
    assert!(last_start < first_end, "the six trials ran together");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let status = rows[0].iter().position(|c| c == "status").unwrap();
    let diverged = rows[1..].iter().filter(|r| r[status] == "diverged").count();
    assert_eq!(diverged, 2, "lr 1e9 diverges, with and without rotation");
    let packed_logs = started
        .iter()
        .filter(|id| {
            std::fs::read_to_string(root.join("trials").join(id).join("train.log"))
                .unwrap()
                .contains("trained in a pack")
        })
        .count();
    assert_eq!(packed_logs, 5, "the pack's other trials point to its log");

    for id in started {
        let (p, a) = (
            root.join("trials").join(id),
            alone.join("packed/trials").join(id),
        );
        let s = summary(&p);
        if s["status"] == "diverged" {
            assert_eq!(summary(&a)["status"], "diverged");
            continue;
        }
        assert_eq!(s["status"], "completed", "{id}: {s}");
        assert!(
            s["engine"].as_str().unwrap().starts_with("packed"),
            "{}",
            s["engine"]
        );
        assert!(p.join("best.safetensors").is_file());
        // The packed step (candle ops) and the fused CPU step differ only by float rounding.
        for (x, y) in metric(&p, "train_loss")
            .iter()
            .zip(metric(&a, "train_loss"))
        {
            assert!(
                (x - y).abs() < 2e-3,
                "{id}: train_loss {x} packed, {y} alone"
            );
        }
        for (x, y) in metric(&p, "test_acc").iter().zip(metric(&a, "test_acc")) {
            assert!((x - y).abs() <= 0.5, "{id}: test_acc {x} packed, {y} alone");
        }
    }
}

#[test]
fn packs_are_refused_on_slurm_and_need_a_positive_size() {
    let dir = scratch("pack-refused");
    let s = small_config(&dir, "");
    let spec = dir.join("s.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"s\"\nbase = \"{}\"\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.01, 0.02]\n",
            s.display()
        ),
    )
    .unwrap();
    let o = run(sweep(&[
        "run",
        spec.to_str().unwrap(),
        "--backend",
        "slurm",
        "--pack",
        "2",
    ]));
    assert!(!o.status.success());
    assert!(text(&o).contains("local backend only"), "{}", text(&o));
    let o = run(sweep(&["run", spec.to_str().unwrap(), "--pack", "0"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("--pack"), "{}", text(&o));
}
