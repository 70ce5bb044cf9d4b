use std::path::Path;

use super::*;
use crate::train::config::SourceFile;

fn spec(text: &str) -> SweepSpec {
    SweepSpec::from_source(SourceFile::parse(Path::new("s.toml"), text.to_string()).unwrap())
        .unwrap()
}

const BASE: &str = "[base]\nepochs = 3\nbatch_size = 10\nseed = 5\n[base.model]\nhidden = [8]\n[base.optimizer]\nlr = 0.1\n";

#[test]
fn trial_ids_are_stable_hashes_of_the_resolved_config() {
    let s = spec(&format!(
        "name = \"x\"\n{BASE}[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.1, 0.2]\n"
    ));
    let a = s.plan().unwrap();
    let b = s.plan().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.trials[0].id.len(), 8);
    assert_eq!(
        a.trials[0].id,
        crate::sweep::plan::trial_id(a.trials[0].config().unwrap())
    );
    assert_ne!(a.trials[0].id, a.trials[1].id);
    // The first trial is the base itself (lr 0.1): its config is the inline base.
    assert_eq!(a.trials[0].config().unwrap().seed, 5);
    assert_eq!(a.trials[0].value("optimizer.lr"), "0.1");
    assert_eq!(a.trials[1].value("optimizer.lr"), "0.2");
    assert_eq!(a.trials[1].value("epochs"), "", "not a column of this plan");
}

#[test]
fn list_columns_show_the_base_value_where_a_trial_does_not_set_the_key() {
    let s = spec(&format!(
        "name = \"x\"\n{BASE}[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"fast\"\n\"optimizer.lr\" = 0.5\n[[search.trials]]\nlabel = \"base\"\n"
    ));
    let p = s.plan().unwrap();
    assert_eq!(p.columns, ["label", "optimizer.lr"]);
    assert_eq!(p.trials[0].value("optimizer.lr"), "0.5");
    assert_eq!(p.trials[1].value("optimizer.lr"), "0.1");
    assert_eq!(p.trials[1].value("label"), "base");
}

#[test]
fn repeats_derive_consecutive_seeds_and_share_a_group() {
    let s = spec(&format!(
        "name = \"x\"\nrepeats = 3\n{BASE}[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.1]\n"
    ));
    let p = s.plan().unwrap();
    let seeds: Vec<u64> = p.trials.iter().map(|t| t.config().unwrap().seed).collect();
    assert_eq!(seeds, vec![5, 6, 7]);
    assert!(p.trials.iter().all(|t| t.group == p.trials[0].group));
    assert_eq!(p.columns, vec!["optimizer.lr", "seed"]);
}

#[test]
fn duplicate_random_draws_are_dropped() {
    let s = spec(&format!(
        "name = \"x\"\n{BASE}[search]\nmethod = \"random\"\nsamples = 20\n[search.params]\n\"optimizer.momentum\" = [0.0, 0.9]\n"
    ));
    let p = s.plan().unwrap();
    assert_eq!(p.trials.len(), 2);
    assert_eq!(p.duplicates, 18);
    assert_eq!(
        p.trials.iter().map(|t| t.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn the_seed_table_spec_has_the_seven_study_rows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = SweepSpec::load(&root.join("sweeps/seed-table.toml")).unwrap();
    let p = s.plan().unwrap();
    assert_eq!(p.trials.len(), 7);
    let examples = [
        "mlp",
        "bn",
        "bn-lra",
        "bn-lra-da-light",
        "bn-lra-da",
        "bn-lra-da-60ep",
        "bn-lra-da-75ep",
    ];
    for (t, name) in p.trials.iter().zip(examples) {
        let example = crate::train::config::TrialConfig::load(
            &root.join(format!("sweeps/examples/{name}.toml")),
            &[],
        )
        .unwrap();
        assert_eq!(t.config(), Some(&example), "row {} ({name})", t.index + 1);
    }
}

#[test]
fn a_saved_specs_search_reads_without_its_base_file() {
    // The copy in a results folder names a base file it cannot find; its search still reads.
    let text = "name = \"lr\"\nbase = \"no-such-dir/base.toml\"\n[search]\nmethod = \"tpe\"\nsamples = 20\n[search.params]\n\"optimizer.lr\" = { log_uniform = [1e-4, 1e-1] }\n";
    let source = SourceFile::parse(Path::new("results/lr/spec.toml"), text.into()).unwrap();
    let facts = SearchFacts::read(&source).unwrap();
    assert_eq!(facts.method, Some(Method::Tpe));
    assert_eq!(facts.startup, default_startup(20));
    assert_eq!(facts.axes.len(), 1);
    assert_eq!(facts.space[0].0, "optimizer.lr");
    // A bad search is the spec's own error, naming the key and line.
    let bad = text.replace("samples = 20\n", "");
    let source = SourceFile::parse(Path::new("results/lr/spec.toml"), bad).unwrap();
    let err = format!("{:#}", SearchFacts::read(&source).unwrap_err());
    assert!(
        err.contains("search.samples") || err.contains("samples"),
        "{err}"
    );
}

#[test]
fn without_a_method_the_search_implies_one_and_auto_is_the_adaptive_default() {
    let method = |search: &str| spec(&format!("name = \"x\"\n{BASE}{search}")).method;
    assert_eq!(
        method(
            "[search]\nsamples = 20\n[search.params]\n\"optimizer.lr\" = { log_uniform = [0.001, 0.3] }\n"
        ),
        Method::Auto
    );
    assert_eq!(
        method("[search]\nsamples = 8\n[search.params]\n\"optimizer.lr\" = [0.01, 0.1]\n"),
        Method::Auto,
        "samples ask for draws: the lists are choices"
    );
    assert_eq!(
        method("[search]\n[search.params]\n\"optimizer.lr\" = [0.01, 0.1]\n"),
        Method::Grid
    );
    assert_eq!(
        method("[search]\n[[search.trials]]\n\"optimizer.lr\" = 0.5\n"),
        Method::List
    );
    // A distribution without a budget says what is missing.
    let err = SweepSpec::from_source(
        SourceFile::parse(
            Path::new("s.toml"),
            format!(
                "name = \"x\"\n{BASE}[search]\n[search.params]\n\"optimizer.lr\" = {{ log_uniform = [0.001, 0.3] }}\n"
            ),
        )
        .unwrap(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("auto search needs samples = N"),
        "{err:#}"
    );
}
