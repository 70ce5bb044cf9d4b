//! `sweep export`: the Optuna journal that Optuna itself loads, and the tidy CSV.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A python with Optuna: $SWEEP_OPTUNA_PYTHON, or the venv scripts/test.sh makes.
fn optuna_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("SWEEP_OPTUNA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/optuna-venv/bin/python"));
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import optuna"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(candidate);
    }
    assert!(
        std::env::var("SWEEP_REQUIRE_OPTUNA").is_err(),
        "SWEEP_REQUIRE_OPTUNA is set and {} cannot import optuna",
        candidate.display()
    );
    eprintln!("SKIPPED: no python with optuna (scripts/test.sh makes target/optuna-venv)");
    None
}

/// Loads `log` with Optuna and prints, per trial: number, state, params, values,
/// intermediate values and the sweep's id, as JSON; then the best trial's sweep id.
const LOAD: &str = r#"
import json, sys, optuna
storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(sys.argv[1]))
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
rows = [{"number": t.number, "state": t.state.name, "params": t.params, "values": t.values,
         "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
         "trial": t.user_attrs["sweep_trial"], "dir": t.user_attrs["trial_dir"]} for t in study.trials]
print(json.dumps({"trials": rows, "best": study.best_trial.user_attrs["sweep_trial"],
                  "direction": study.direction.name}))
"#;

fn load(python: &Path, log: &Path, name: &str) -> serde_json::Value {
    let o = std::process::Command::new(python)
        .args(["-c", LOAD, log.to_str().unwrap(), name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn optuna_loads_the_export_with_the_journals_trials_states_values_and_curves() {
    let Some(python) = optuna_python() else {
        return;
    };
    let dir = scratch("export-optuna");
    let root = mixed_sweep(&dir);
    let o = run(sweep(&[
        "export",
        root.to_str().unwrap(),
        "--format",
        "optuna",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("optuna-dashboard"), "{}", text(&o));
    let study = load(&python, &root.join("optuna-journal.log"), "mixed");
    assert_eq!(study["direction"], "MAXIMIZE");
    let trials = study["trials"].as_array().unwrap();
    let journal = journal(&root);
    let defs: Vec<&serde_json::Value> = journal.iter().filter(|e| e["event"] == "trial").collect();
    assert_eq!(trials.len(), defs.len());
    let states: Vec<&str> = trials
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["COMPLETE", "PRUNED", "FAIL"]);
    for (t, def) in trials.iter().zip(&defs) {
        assert_eq!(t["trial"], def["id"]);
        assert_eq!(t["params"]["lr"], def["params"]["lr"]);
        assert!(Path::new(t["dir"].as_str().unwrap()).is_dir());
        // Every epoch the journal has, as an intermediate value.
        let epochs: Vec<(String, f64)> = journal
            .iter()
            .filter(|e| e["event"] == "epoch" && e["trial"] == def["id"])
            .map(|e| {
                (
                    e["epoch"].to_string(),
                    e["metrics"]["val_acc"].as_f64().unwrap(),
                )
            })
            .collect();
        let got: Vec<(String, f64)> = t["intermediate"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        assert_eq!(got, epochs, "{}", def["id"]);
    }
    let best_value = trials[0]["values"][0].as_f64().unwrap();
    assert_eq!(best_value, 98.75, "lr 0.1, epoch 4: 100 - 5/4");
    let board = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(study["best"].as_str().unwrap(), board[1][1]);

    // A TPE sweep's continuous parameters keep their distributions.
    let tpe = command_spec(
        &dir,
        "tpe",
        r#""--lr", "{lr}", "--epochs", "2""#,
        "",
        "[search]\nmethod = \"tpe\"\nsamples = 5\nstartup = 2\n[search.params]\nlr = { log_uniform = [0.0001, 1.0] }",
    );
    let results = dir.join("results");
    assert!(run_sweep(&tpe, &results, &[]).status.success());
    let out = dir.join("tpe.log");
    let o = run(sweep(&[
        "export",
        results.join("tpe").to_str().unwrap(),
        "--format",
        "optuna",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(
        log.contains(r#"\"log\":true"#) && log.contains("FloatDistribution"),
        "{log}"
    );
    let study = load(&python, &out, "tpe");
    assert_eq!(study["trials"].as_array().unwrap().len(), 5);
}

/// Loads a multi-objective export and prints its directions, each trial's values and
/// constraints, and the sweep ids of Optuna's Pareto front.
const LOAD_FRONT: &str = r#"
import json, sys, optuna
storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(sys.argv[1]))
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
print(json.dumps({"directions": [d.name for d in study.directions],
                  "values": {t.user_attrs["sweep_trial"]: t.values for t in study.trials},
                  "constraints": {t.user_attrs["sweep_trial"]: t.system_attrs.get("constraints") for t in study.trials},
                  "front": sorted(t.user_attrs["sweep_trial"] for t in study.best_trials)}))
"#;

/// A grid sweep of fake_train.py over `lrs`, reporting cost = 0.1 / lr, ranked as `header`
/// (the spec's lines before [command]) says, run and exported for Optuna; its directory.
fn exported_fake_train_sweep(dir: &Path, name: &str, header: &str, lrs: &str) -> PathBuf {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            "name = \"{name}\"\n{header}\n[command]\nrun = [\"python3\", \"{}\", \"--lr\", \"{{lr}}\", \"--epochs\", \"2\", \"--cost\", \"1\"]\n[search]\nmethod = \"grid\"\n[search.params]\nlr = [{lrs}]\n",
            root().join("tests/programs/fake_train.py").display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let o = run_sweep(&spec, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join(name);
    let o = run(sweep(&[
        "export",
        root.to_str().unwrap(),
        "--format",
        "optuna",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    root
}

#[test]
fn optuna_reads_several_objectives_and_finds_the_same_front() {
    let Some(python) = optuna_python() else {
        return;
    };
    let root = exported_fake_train_sweep(
        &scratch("export-mo"),
        "mo",
        "objectives = [{ metric = \"val_acc\", mode = \"max\" }, { metric = \"cost\", mode = \"min\" }]\nconstraints = [\"cost <= 5\"]",
        "0.001, 0.01, 0.1, 0.3, 1.0",
    );
    let o = std::process::Command::new(&python)
        .args([
            "-c",
            LOAD_FRONT,
            root.join("optuna-journal.log").to_str().unwrap(),
            "mo",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let study: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        study["directions"],
        serde_json::json!(["MAXIMIZE", "MINIMIZE"])
    );
    let rows = csv_rows(&root.join("leaderboard.csv"));
    for r in &rows[1..] {
        let values = &study["values"][&r[1]];
        assert_eq!(values[0].as_f64().unwrap(), r[3].parse::<f64>().unwrap());
        assert_eq!(values[1].as_f64().unwrap(), r[4].parse::<f64>().unwrap());
        let c = study["constraints"][&r[1]][0].as_f64().unwrap();
        assert_eq!(
            c <= 0.0,
            r[6] == "true",
            "Optuna's sign convention: {c} {r:?}"
        );
    }
    let mut front: Vec<String> = csv_rows(&root.join("pareto.csv"))[1..]
        .iter()
        .map(|r| r[1].clone())
        .collect();
    front.sort();
    assert_eq!(study["front"], serde_json::json!(front));
}

#[test]
fn the_csv_export_has_a_row_per_trial_and_epoch_at_full_precision() {
    let dir = scratch("export-csv");
    let root = mixed_sweep(&dir);
    let o = run(sweep(&[
        "export",
        root.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("epochs.csv"));
    assert_eq!(
        &rows[0][..7],
        ["trial", "number", "status", "epoch", "fail", "hold", "lr"]
    );
    assert!(
        rows[0].contains(&"val_acc".to_string()) && rows[0].contains(&"train_loss".to_string())
    );
    let epochs = journal(&root)
        .iter()
        .filter(|e| e["event"] == "epoch")
        .count();
    assert_eq!(rows.len() - 1, epochs, "one row per reported epoch");
    let acc = rows[0].iter().position(|c| c == "val_acc").unwrap();
    let first = &rows[1];
    assert_eq!(first[2], "completed");
    assert_eq!(
        first[acc], "95",
        "epoch 1 of lr 0.1: 100 - 5/1, full precision"
    );
}

#[test]
fn optuna_picks_the_same_best_feasible_trial_of_a_constrained_single_metric_sweep() {
    let Some(python) = optuna_python() else {
        return;
    };
    let root = exported_fake_train_sweep(
        &scratch("export-constrained"),
        "c",
        "metric = \"val_acc\"\nconstraints = [\"cost <= 0.5\"]",
        "0.01, 0.1, 0.3, 1.0",
    );
    let study = load(&python, &root.join("optuna-journal.log"), "c");
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    // lr 0.1 has the best val_acc but costs 1: Optuna, like sweep, passes over it.
    assert_eq!(study["best"], best.trim());
    let rows = csv_rows(&root.join("leaderboard.csv"));
    let lr = rows[0].iter().position(|h| h == "lr").unwrap();
    assert_eq!(rows[1][lr], "0.3", "{rows:?}");
}
