use std::path::Path;

use super::*;

fn source(text: &str) -> SourceFile {
    SourceFile::parse(Path::new("trial.toml"), text.to_string()).unwrap()
}

const MINIMAL: &str = "epochs = 45\nbatch_size = 100\n[model]\nhidden = [1024, 1024, 1024]\nbatch_norm = true\n[optimizer]\nlr = 0.01\n";

fn error_text(text: &str, overrides: &[Override]) -> String {
    let err = TrialConfig::from_source(&source(text), overrides).unwrap_err();
    format!("{err:#}")
}

#[test]
fn every_study_example_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let c = TrialConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(c.model.hidden, vec![1024, 1024, 1024], "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 7, "one example per row of the study");
}

#[test]
fn defaults_fill_the_optional_keys() {
    let c = TrialConfig::from_source(&source(MINIMAL), &[]).unwrap();
    assert_eq!(c.seed, 0);
    assert_eq!(c.data, DataConfig::default());
    assert_eq!(c.schedule.name, ScheduleName::Constant);
    assert_eq!(c.engine, Engine::Auto);
    assert!(c.augment.is_none());
}

#[test]
fn the_resolved_config_round_trips_through_toml() {
    let mut c = TrialConfig::from_source(&source(MINIMAL), &[]).unwrap();
    c.augment = Some(AugmentConfig {
        rotation: 10.0,
        strength: 0.5,
        affine: Some(AffineConfig {
            degrees: 20.0,
            translate: [0.1, 0.1],
            scale: [0.9, 1.1],
        }),
    });
    let back = TrialConfig::from_source(&source(&c.to_toml()), &[]).unwrap();
    assert_eq!(back, c);
}

#[test]
fn unknown_keys_are_errors_naming_file_line_and_key() {
    let text = MINIMAL.replace("lr = 0.01", "lr = 0.01\nmomentun = 0.9");
    let msg = error_text(&text, &[]);
    assert!(msg.starts_with("trial.toml"), "{msg}");
    assert!(msg.contains("momentun"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn wrong_types_name_the_key_and_its_line() {
    let text = MINIMAL.replace("lr = 0.01", "lr = \"fast\"");
    let msg = error_text(&text, &[]);
    assert!(msg.starts_with("trial.toml:7: `optimizer.lr`"), "{msg}");
}

#[test]
fn invalid_values_are_all_reported_with_lines() {
    let text = MINIMAL.replace("lr = 0.01", "lr = -1.0")
        + "[schedule]\nname = \"multistep\"\nmilestones = [35, 20]\n";
    let msg = error_text(&text, &[]);
    assert!(msg.contains("2 problems"), "{msg}");
    assert!(
        msg.contains("trial.toml:7: `optimizer.lr`: must be > 0"),
        "{msg}"
    );
    assert!(
        msg.contains("trial.toml:10: `schedule.milestones`: must be strictly increasing"),
        "{msg}"
    );
}

#[test]
fn milestones_beyond_the_last_epoch_are_refused() {
    let text = MINIMAL.to_string() + "[schedule]\nname = \"multistep\"\nmilestones = [20, 45]\n";
    assert!(error_text(&text, &[]).contains("between 1 and epochs - 1 = 44"));
}

#[test]
fn overrides_replace_values_and_are_validated() {
    let c = TrialConfig::from_source(
        &source(MINIMAL),
        &[
            "optimizer.lr=0.1".parse().unwrap(),
            "augment.rotation=10".parse().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(c.optimizer.lr, 0.1);
    assert_eq!(c.augment.unwrap().rotation, 10.0);
    let msg = error_text(MINIMAL, &["optimizer.lr=0".parse().unwrap()]);
    assert!(msg.contains("`optimizer.lr`: must be > 0"), "{msg}");
    let msg = error_text(MINIMAL, &["model.depth=3".parse().unwrap()]);
    assert!(msg.contains("unknown field `depth`"), "{msg}");
}

#[test]
fn strength_scales_every_augmentation_magnitude() {
    let a = AugmentConfig {
        rotation: 10.0,
        strength: 0.5,
        affine: Some(AffineConfig {
            degrees: 20.0,
            translate: [0.1, 0.2],
            scale: [0.9, 1.1],
        }),
    };
    let e = a.effective();
    assert_eq!(e.rotation, 5.0);
    let af = e.affine.unwrap();
    assert_eq!(af.degrees, 10.0);
    assert_eq!(af.translate, [0.05, 0.1]);
    assert!((af.scale[0] - 0.95).abs() < 1e-12 && (af.scale[1] - 1.05).abs() < 1e-12);
    let off = AugmentConfig { strength: 0.0, ..a };
    assert!(off.effective().is_identity());
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let err = SourceFile::parse(
        Path::new("bad.toml"),
        "epochs = 4\nbatch_size = = 3\n".into(),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("bad.toml:2:"), "{err}");
}
