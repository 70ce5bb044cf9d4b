//! The documentation says what the code does: docs/spec.md lists every key the parsers accept.

mod common;

use common::*;

/// The keys an "unknown field" error says were expected.
fn expected_keys(err: &str) -> Vec<String> {
    let list = err
        .split_once("expected one of ")
        .or_else(|| err.split_once("expected "))
        .map(|(_, rest)| rest.lines().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("no list of keys in: {err}"));
    list.split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// The keys the parser accepts in the table of `text` that holds `zzz`.
fn accepted(command: &str, text: &str) -> Vec<String> {
    let dir = scratch(&format!("docs-{}", text.len()));
    let path = dir.join("x.toml");
    std::fs::write(&path, text).unwrap();
    let o = run(sweep(&[command, path.to_str().unwrap()]));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("unknown field `zzz`"), "{err}");
    expected_keys(&err)
}

#[test]
fn docs_spec_lists_every_key_a_sweep_spec_and_a_trial_config_accept() {
    let doc = std::fs::read_to_string(root().join("docs/spec.md")).unwrap();
    let documented =
        |key: &str| doc.contains(&format!("`{key}`")) || doc.contains(&format!("`[{key}]`"));
    let search = "[search]\nmethod = \"grid\"\n[search.params]\nx = [1]\n";
    let command = "[command]\nrun = [\"true\"]\n";
    let sections = [
        (
            "",
            format!("name = \"d\"\nmetric = \"m\"\nzzz = 1\n{command}{search}"),
        ),
        (
            "command.",
            format!("name = \"d\"\nmetric = \"m\"\n{command}zzz = 1\n{search}"),
        ),
        (
            "prune.",
            format!(
                "name = \"d\"\nmetric = \"m\"\n{command}[prune]\nmethod = \"asha\"\nzzz = 1\n{search}"
            ),
        ),
        (
            "search.",
            format!(
                "name = \"d\"\nmetric = \"m\"\n{command}[search]\nmethod = \"grid\"\nzzz = 1\n[search.params]\nx = [1]\n"
            ),
        ),
    ];
    let mut missing = Vec::new();
    for (prefix, text) in &sections {
        for key in accepted("plan", text) {
            let key = format!("{prefix}{key}");
            if !documented(&key) {
                missing.push(key);
            }
        }
    }
    let base =
        "seed = 0\nepochs = 1\nbatch_size = 10\n[model]\nhidden = [4]\n[optimizer]\nlr = 0.1\n";
    let trial_sections = [
        ("", format!("zzz = 1\n{base}")),
        ("data.", format!("{base}[data]\nzzz = 1\n")),
        (
            "model.",
            base.replace("hidden = [4]", "hidden = [4]\nzzz = 1"),
        ),
        ("optimizer.", base.replace("lr = 0.1", "lr = 0.1\nzzz = 1")),
        ("schedule.", format!("{base}[schedule]\nzzz = 1\n")),
        ("augment.", format!("{base}[augment]\nzzz = 1\n")),
        (
            "augment.affine.",
            format!("{base}[augment.affine]\nzzz = 1\n"),
        ),
    ];
    for (prefix, text) in &trial_sections {
        for key in accepted("train", text) {
            let key = format!("{prefix}{key}");
            // A table key (`data`, `augment.affine`) is documented through its keys.
            let table = trial_sections.iter().any(|(p, _)| *p == format!("{key}."));
            if !table && !documented(&key) {
                missing.push(key);
            }
        }
    }
    assert!(missing.is_empty(), "docs/spec.md lacks {missing:?}");
}
