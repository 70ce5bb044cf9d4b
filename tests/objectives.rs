//! Sweeps with several objectives: the Pareto leaderboard, `pareto.csv`, `best/` by a rule,
//! the report's front, and multi-objective TPE resumed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A command sweep of fake_train.py trading val_acc (peaks at lr 0.1) against cost (0.1 / lr).
fn two_objective_spec(dir: &Path, name: &str, extra: &str, search: &str) -> PathBuf {
    let ranking = format!(
        "objectives = [{{ metric = \"val_acc\", mode = \"max\" }}, {{ metric = \"cost\", mode = \"min\" }}]\n{extra}"
    );
    cost_spec(dir, name, &ranking, search)
}

/// A command sweep of fake_train.py reporting val_acc and cost = 0.1 / lr, ranked as `ranking`
/// (the spec's lines before [command]) says.
fn cost_spec(dir: &Path, name: &str, ranking: &str, search: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n{ranking}\n[command]\nrun = [\"python3\", \"{}\", \"--lr\", \"{{lr}}\", \"--epochs\", \"2\", \"--cost\", \"1\", \"--sleep\", \"0.05\"]\n{search}\n",
        root().join("tests/programs/fake_train.py").display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_command_sweep_with_two_objectives_and_a_constraint_ranks_by_the_front() {
    let dir = scratch("mo-command");
    let s = two_objective_spec(
        &dir,
        "mo",
        "constraints = [\"cost <= 5\"]\nselect = \"min cost where val_acc >= best - 6\"",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01, 0.1, 0.3, 1.0]",
    );
    let results = dir.join("results");
    let root = results.join("mo");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        rows[0][..9],
        [
            "rank",
            "trial",
            "status",
            "val_acc",
            "cost",
            "pareto_rank",
            "feasible",
            "violation",
            "best_epoch"
        ]
    );
    let lr = rows[0].iter().position(|h| h == "lr").unwrap();
    let column = |j: usize| rows[1..].iter().map(|r| r[j].clone()).collect::<Vec<_>>();
    // The front by val_acc, then the dominated infeasible trials by violation.
    assert_eq!(column(lr), ["0.1", "0.3", "1.0", "0.01", "0.001"]);
    assert_eq!(column(5), ["1", "1", "1", "2", "3"]);
    assert_eq!(column(6), ["true", "true", "true", "false", "false"]);
    assert_eq!(column(7), ["0", "0", "0", "5", "95"]);
    // pareto.csv: the non-dominated feasible trials, same columns.
    let front = csv_rows(&root.join("pareto.csv"));
    assert_eq!(front[0], rows[0]);
    assert_eq!(front[1..], rows[1..4]);
    // best/: the rule's choice, within 6 points of the best val_acc (97.5) at the least cost.
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    assert_eq!(best.trim(), rows[2][1], "lr 0.3: {rows:?}");
    let rule = std::fs::read_to_string(root.join("best/rule.txt")).unwrap();
    assert_eq!(
        rule.trim(),
        "select = \"min cost where val_acc >= best - 6\""
    );
    assert!(
        text(&o).contains("by select = \"min cost where val_acc >= best - 6\""),
        "{}",
        text(&o)
    );
    let status = run(sweep(&["status", root.to_str().unwrap()]));
    assert!(
        text(&status).contains("val_acc 92.73, cost 0.3333"),
        "{}",
        text(&status)
    );
    assert!(text(&status).contains("by select ="), "{}", text(&status));
    assert!(
        text(&status).contains("ranked by the Pareto front of val_acc (max), cost (min)"),
        "{}",
        text(&status)
    );
    // The JSON leaderboard says how it ranks, labels each objective's value, says which rows
    // are feasible, and marks the trial best/ holds.
    let o = run(sweep(&[
        "leaderboard",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let board: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        board["ranked_by"]
            .as_str()
            .unwrap()
            .starts_with("the Pareto front of val_acc (max), cost (min)"),
        "{board}"
    );
    assert_eq!(board["best"], rows[2][1].as_str());
    let json_rows = board["rows"].as_array().unwrap();
    assert_eq!(json_rows[1]["best"], true);
    assert_eq!(json_rows[0]["best"], false);
    assert_eq!(json_rows[0]["objective_values"]["cost"], 1.0);
    assert!(json_rows[0]["objective_values"]["val_acc"].is_number());
    assert_eq!(json_rows[0]["feasible"], true);
    assert_eq!(json_rows[4]["feasible"], false);
    // The report draws the front and the hypervolume, and selects a trial from a link.
    let fragment = format!("#trial={}", rows[1][1]);
    let Some(page) = render_report(&root, &fragment) else {
        return;
    };
    for chart in ["pareto", "hypervolume"] {
        assert!(page.charts.iter().any(|c| c == chart), "{:?}", page.charts);
    }
    assert_eq!(
        page.body_attribute("data-selected").as_deref(),
        Some(rows[1][1].as_str())
    );
    assert!(
        page.dom
            .contains("ranked by the Pareto front of val_acc (max), cost (min)")
    );
    assert!(
        page.dom.contains("infeasible (2)"),
        "the legend counts the infeasible trials"
    );
}

#[test]
fn without_a_rule_best_is_the_knee_and_pruning_needs_a_named_objective() {
    let dir = scratch("mo-knee");
    let search = "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.03, 0.1, 0.3, 1.0, 3.0]";
    let ambiguous = two_objective_spec(&dir, "ambiguous", "[prune]\nmethod = \"asha\"", search);
    let o = run(sweep(&["plan", ambiguous.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("ambiguous.toml:3")
            && text(&o).contains("name the one the pruner watches, e.g. objective = \"val_acc\""),
        "{}",
        text(&o)
    );
    let s = two_objective_spec(
        &dir,
        "knee",
        "[prune]\nmethod = \"asha\"\nobjective = \"val_acc\"",
        search,
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &["--per-device", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("by the knee of the front"),
        "{}",
        text(&o)
    );
    let root = results.join("knee");
    let j = journal(&root);
    assert!(
        j.iter()
            .any(|e| e["event"] == "decision" && e["pruner"] == "asha")
    );
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    let rows = csv_rows(&root.join("pareto.csv"));
    assert!(
        rows[1..].iter().any(|r| r[1] == best.trim()),
        "the knee is on the front: {best} {rows:?}"
    );
}

#[test]
fn a_resumed_multi_objective_tpe_sweep_loses_and_repeats_nothing() {
    let dir = scratch("mo-tpe");
    let search = "[search]\nmethod = \"tpe\"\nsamples = 8\nstartup = 3\nseed = 5\n[search.params]\nlr = { log_uniform = [0.001, 3.0] }";
    let s = two_objective_spec(&dir, "tpe", "", search);
    let whole = dir.join("whole");
    let o = run_sweep(&s, &whole, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // The same sweep killed with SIGKILL after 4 trials ended, then run again.
    let parts = dir.join("parts");
    let root = parts.join("tpe");
    kill_sweep_after(&s, &parts, &root, 4, "finished");
    let ended = |root: &Path| {
        journal(root)
            .iter()
            .filter(|e| e["event"] == "finished")
            .count()
    };
    assert!(ended(&root) < 8, "the kill left trials to resume");
    let o = run_sweep(&s, &parts, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let asked = |root: &Path| -> Vec<String> {
        journal(root)
            .iter()
            .filter(|e| e["event"] == "trial")
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let ids = asked(&root);
    assert_eq!(ids.len(), 8);
    assert_eq!(ids, asked(&whole.join("tpe")), "the same trials, in order");
    let j = journal(&root);
    for id in &ids {
        let completed = j
            .iter()
            .filter(|e| {
                e["event"] == "finished" && e["trial"] == id.as_str() && e["status"] == "completed"
            })
            .count();
        assert_eq!(completed, 1, "{id} completed once");
    }
    let board = |root: &Path| -> Vec<Vec<String>> {
        csv_rows(&root.join("leaderboard.csv"))
            .iter()
            .map(|r| r[..8].to_vec())
            .collect()
    };
    assert_eq!(board(&root), board(&whole.join("tpe")));
}

#[test]
fn a_metric_no_trial_reports_in_a_later_objective_a_constraint_or_select_fails_the_trials_by_name()
{
    let dir = scratch("mo-typo");
    let search = "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.01, 0.1, 0.3, 1.0]";
    for (name, extra, missing) in [
        ("objective", "", "latncy_ms"),
        ("constraint", "constraints = [\"param <= 150000\"]", "param"),
        (
            "select",
            "select = \"min cost where val_accuracy >= 95\"",
            "val_accuracy",
        ),
    ] {
        let s = two_objective_spec(&dir, name, extra, search);
        if name == "objective" {
            let t = std::fs::read_to_string(&s).unwrap();
            std::fs::write(&s, t.replace("metric = \"cost\"", "metric = \"latncy_ms\"")).unwrap();
        }
        let results = dir.join("results");
        let o = run_sweep(&s, &results, &[]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}");
        assert!(
            out.contains(&format!("never reports `{missing}`"))
                && out.contains("reported val_acc, train_loss, cost"),
            "{name}: {out}"
        );
        let ends: Vec<serde_json::Value> = journal(&results.join(name))
            .into_iter()
            .filter(|e| e["event"] == "finished")
            .collect();
        assert!(ends.iter().any(|e| e["status"] == "failed"), "{name}");
        assert!(ends.iter().all(|e| e["status"] != "completed"), "{name}");
    }
}

#[test]
fn one_metric_with_a_constraint_ranks_feasible_trials_first_and_gp_and_tpe_search_within_it() {
    let dir = scratch("constrained");
    let spec = |name: &str, search: &str| {
        cost_spec(
            &dir,
            name,
            "metric = \"val_acc\"\nconstraints = [\"cost <= 0.5\"]",
            search,
        )
    };
    // cost = 0.1 / lr: only lr 0.3 and 1.0 meet it; val_acc peaks at lr 0.1.
    let s = spec(
        "grid",
        "[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.001, 0.01, 0.1, 0.3, 1.0]",
    );
    let results = dir.join("results");
    let o = run_sweep(&s, &results, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = results.join("grid");
    let rows = csv_rows(&root.join("leaderboard.csv"));
    assert_eq!(
        rows[0][..7],
        [
            "rank",
            "trial",
            "status",
            "val_acc",
            "feasible",
            "violation",
            "best_epoch"
        ]
    );
    let lr = rows[0].iter().position(|h| h == "lr").unwrap();
    let column = |j: usize| rows[1..].iter().map(|r| r[j].clone()).collect::<Vec<_>>();
    // Feasible trials by val_acc, then the others by how much they miss the constraint.
    assert_eq!(column(lr), ["0.3", "1.0", "0.1", "0.01", "0.001"]);
    assert_eq!(column(4), ["true", "true", "false", "false", "false"]);
    assert_eq!(column(5), ["0", "0", "0.5", "9.5", "99.5"]);
    let best = std::fs::read_to_string(root.join("best/trial.txt")).unwrap();
    assert_eq!(
        best.trim(),
        rows[1][1],
        "best/ holds the best feasible trial"
    );
    let status = text(&run(sweep(&["status", root.to_str().unwrap()])));
    assert!(
        status.contains("val_acc (max) subject to cost <= 0.5"),
        "{status}"
    );
    // The report, in a real browser: the ranking with its constraint, and the leaderboard's
    // feasibility columns.
    if let Some(page) = render_report(&root, "") {
        assert!(
            page.dom
                .contains("ranked by val_acc (max) subject to cost &lt;= 0.5"),
            "{}",
            page.dom
        );
        assert!(page.dom.contains(">feasible<") && page.dom.contains(">violation<"));
    }
    // The adaptive methods learn the constraint too: each finds a feasible trial, and their
    // best is within a point of the best feasible value on the grid (lr 0.3).
    let grid_best: f64 = rows[1][3].parse().unwrap();
    for method in ["gp", "tpe"] {
        let s = spec(
            method,
            &format!(
                "[search]\nmethod = \"{method}\"\nsamples = 14\nstartup = 6\nseed = 3\n[search.params]\nlr = {{ log_uniform = [0.001, 1.0] }}"
            ),
        );
        let o = run_sweep(&s, &results, &[]);
        assert!(o.status.success(), "{method}: {}", text(&o));
        let rows = csv_rows(&results.join(method).join("leaderboard.csv"));
        assert_eq!(rows[1][4], "true", "{method}: {rows:?}");
        let found: f64 = rows[1][3].parse().unwrap();
        assert!(found > grid_best - 1.0, "{method}: {found} vs {grid_best}");
    }
}
