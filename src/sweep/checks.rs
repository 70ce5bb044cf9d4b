//! The checks a plan passes before anything is written or run: data directories exist,
//! validation splits can be cut, a command sweep's program (and the script an interpreter
//! runs) exist, and a vendor BLAS the trials ask for loads. Each failure names the spec's
//! file, line and key.

use std::path::Path;

use anyhow::{Context, bail};

use super::plan::{Plan, PlannedTrial};
use super::spec::SweepSpec;
use crate::train::config::Blas;
use crate::train::cpu::kernels::Products;

/// Loads and expands a spec, failing on any invalid trial before anything is written.
pub fn load_plan(spec_path: &Path) -> anyhow::Result<(SweepSpec, Plan)> {
    let spec = SweepSpec::load(spec_path)?;
    let plan = spec.plan()?;
    let mut missing: Vec<String> = plan
        .resolved()
        .filter_map(|t| t.input.data_dir())
        .filter(|d| !d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        bail!(
            "{}: data.dir {} does not exist (relative paths are taken from the current directory, {cwd})",
            spec_path.display(),
            missing.join(", ")
        );
    }
    check_validation_splits(&spec, &plan)?;
    check_program(&spec, &plan)?;
    check_blas(&spec, &plan)?;
    Ok((spec, plan))
}

/// Fails, naming the key, when trials ask for a vendor BLAS (`blas`) this machine cannot load,
/// rather than failing every trial at its start.
fn check_blas(spec: &SweepSpec, plan: &Plan) -> anyhow::Result<()> {
    let mut asked: Vec<Blas> = plan
        .resolved()
        .filter_map(PlannedTrial::config)
        .map(|c| c.blas)
        .collect();
    asked.sort_by_key(|b| b.name());
    asked.dedup();
    for blas in asked {
        if let Err(e) = Products::load(blas) {
            return Err(spec.key_error("blas", format!("{e:#}")).into());
        }
    }
    Ok(())
}

/// Fails, naming the key, when a trial's validation split cannot be cut from its training set
/// (too large, or more images of a class than it has). Reads only the labels.
fn check_validation_splits(spec: &SweepSpec, plan: &Plan) -> anyhow::Result<()> {
    let mut checked = std::collections::HashSet::new();
    for config in plan.resolved().filter_map(PlannedTrial::config) {
        let data = &config.data;
        if data.val_size == 0 || !checked.insert((data.dir.clone(), data.val_size)) {
            continue;
        }
        let labels = crate::train::data::training_labels(&data.dir).with_context(|| {
            format!("cannot read the training labels in {}", data.dir.display())
        })?;
        if let Err(msg) = crate::train::data::validation_quotas(&labels, data.val_size) {
            return Err(spec.key_error("data.val_size", msg).into());
        }
    }
    Ok(())
}

/// Fails, naming the line, when a command sweep's program does not exist: a path that is no
/// file, or a name no directory of PATH holds (a program given by a placeholder is not checked).
fn check_program(spec: &SweepSpec, plan: &Plan) -> anyhow::Result<()> {
    let Some(program) = plan.command.as_ref().and_then(|c| c.run.first()) else {
        return Ok(());
    };
    if program.contains('{') {
        return Ok(());
    }
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
    };
    if found {
        return check_script(spec, plan);
    }
    let why = if program.contains('/') {
        "no such file (a relative path is taken from the current directory)"
    } else {
        "no such program on PATH"
    };
    Err(spec
        .source
        .error_at(
            &["command".into(), "run".into(), "0".into()],
            format!("`{program}`: {why}"),
        )
        .into())
}

/// Interpreters whose first argument that is not an option is a script file.
const INTERPRETERS: &[&str] = &[
    "python", "python3", "bash", "sh", "zsh", "Rscript", "julia", "node", "perl", "ruby",
];

/// Fails, naming the line, when a command sweep runs an interpreter on a script file that
/// does not exist (`python3 ux/trian.py`), which would fail every trial the same way.
/// Arguments with placeholders, and `python -m module`, are not checked.
fn check_script(spec: &SweepSpec, plan: &Plan) -> anyhow::Result<()> {
    let Some(run) = plan.command.as_ref().map(|c| &c.run) else {
        return Ok(());
    };
    let name = Path::new(&run[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let interpreter = INTERPRETERS.iter().any(|i| {
        name == *i
            || name
                .strip_prefix(i)
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    });
    if !interpreter {
        return Ok(());
    }
    let Some((index, script)) = run
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| !a.starts_with('-'))
    else {
        return Ok(());
    };
    let options: Vec<&String> = run[1..index].iter().collect();
    if script.contains('{')
        || options
            .iter()
            .any(|o| ["-m", "-c", "-e"].contains(&o.as_str()))
    {
        return Ok(());
    }
    if Path::new(script).is_file() {
        return Ok(());
    }
    Err(spec
        .source
        .error_at(
            &["command".into(), "run".into(), index.to_string()],
            format!(
                "`{script}`: no such file for `{}` to run (a relative path is taken from the \
                 current directory, {})",
                run[0],
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|_| "unknown".into())
            ),
        )
        .into())
}
