//! The lcbench example (examples/lcbench/): a tiny TPE sweep of YAHPO Gym's surrogate through
//! `sweep run`, when a Python with `yahpo-gym` and `onnxruntime` is at hand
//! (`SWEEP_LCBENCH_PYTHON`; scripts/test.sh installs one and sets `SWEEP_REQUIRE_LCBENCH=1`).

mod common;

use std::path::PathBuf;

use common::*;

fn lcbench_python() -> Option<PathBuf> {
    let python = std::env::var_os("SWEEP_LCBENCH_PYTHON").map(PathBuf::from);
    let works = python.as_ref().is_some_and(|p| {
        std::process::Command::new(p)
            .args(["-c", "import yahpo_gym, onnxruntime"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if works {
        return python;
    }
    assert!(
        std::env::var("SWEEP_REQUIRE_LCBENCH").as_deref() != Ok("1"),
        "SWEEP_REQUIRE_LCBENCH=1 but SWEEP_LCBENCH_PYTHON={python:?} cannot import yahpo_gym"
    );
    eprintln!("skipped: set SWEEP_LCBENCH_PYTHON to a python with yahpo-gym and onnxruntime");
    None
}

#[test]
fn a_tiny_tpe_sweep_of_the_lcbench_surrogate_reports_what_the_surrogate_predicts() {
    let Some(python) = lcbench_python() else {
        return;
    };
    let dir = scratch("lcbench");
    let example = std::fs::read_to_string(root().join("examples/lcbench/sweep.toml")).unwrap();
    let spec = example
        .replace(
            "run = [\"python3\",",
            &format!("run = [\"{}\",", python.display()),
        )
        .replace("epochs = 52", "epochs = 5")
        .replace("samples = 40", "samples = 3");
    assert!(spec.contains("samples = 3") && spec.contains(&python.display().to_string()));
    let path = dir.join("lcbench.toml");
    std::fs::write(&path, spec).unwrap();
    let results = dir.join("results");
    let o = run_sweep(&path, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("lcbench");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(rows.len(), 4, "3 trials: {rows:?}");
    // Each trial's epochs are the surrogate's prediction for its parameters.
    let journal = journal(&root);
    for def in journal.iter().filter(|e| e["event"] == "trial") {
        let id = def["id"].as_str().unwrap();
        let epochs: Vec<f64> = journal
            .iter()
            .filter(|e| e["event"] == "epoch" && e["trial"] == id)
            .map(|e| e["metrics"]["val_accuracy"].as_f64().unwrap())
            .collect();
        if epochs.is_empty() {
            continue; // stopped before its first epoch
        }
        let check = format!(
            "import json, sys; sys.path.insert(0, 'examples/lcbench'); import lcbench\n\
             print(json.dumps([r['val_accuracy'] for r in lcbench.Surrogate('3945').curve({}, {})]))",
            def["params"],
            epochs.len()
        );
        let o = std::process::Command::new(&python)
            .current_dir(common::root())
            .args(["-c", &check])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let predicted: Vec<f64> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(epochs, predicted, "trial {id}");
        assert!(epochs.iter().all(|v| (0.0..=100.0).contains(v)));
    }
}

#[test]
fn the_lcbench_program_resumes_after_its_last_reported_epoch() {
    let Some(python) = lcbench_python() else {
        return;
    };
    let dir = scratch("lcbench-resume");
    let epochs_printed = |epochs: &str, resume: bool| -> Vec<u64> {
        let o = std::process::Command::new(&python)
            .current_dir(common::root())
            .args(["examples/lcbench/lcbench.py", "--epochs", epochs])
            .args([
                "--batch-size",
                "64",
                "--learning-rate",
                "0.01",
                "--max-dropout",
                "0.2",
            ])
            .args([
                "--max-units",
                "256",
                "--momentum",
                "0.9",
                "--num-layers",
                "3",
            ])
            .args(["--weight-decay", "0.001"])
            .env("SWEEP_TRIAL_DIR", &dir)
            .env("SWEEP_RESUME", if resume { "1" } else { "0" })
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(epochs_printed("3", false), [1, 2, 3]);
    assert_eq!(epochs_printed("5", true), [4, 5], "continues after epoch 3");
    assert_eq!(
        epochs_printed("2", false),
        [1, 2],
        "without SWEEP_RESUME it starts over"
    );
}
