//! Sweep specs: the TOML schema, its validation (every error names file, line and key), and
//! the expansion into a deterministic plan of fully resolved trials.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::pruner::{Asha, MedianPruner, PrunerSpec};
use super::search::{Axis, Method};
use crate::objectives::{Bound, Limit, Objectives, Selection};
use crate::text::display_value;
use crate::train::REPORTED_METRICS;
use crate::train::config::overrides::{get_path, set_path, split_key};
use crate::train::config::{KeyError, KeyErrors, SourceFile, path_segments};
use crate::trial::{Mode, Objective};

/// The spec file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    objectives: Option<Vec<ObjectiveFile>>,
    #[serde(default)]
    constraints: Option<Vec<String>>,
    #[serde(default)]
    select: Option<String>,
    #[serde(default = "one")]
    repeats: usize,
    #[serde(default)]
    base: Option<Base>,
    #[serde(default)]
    command: Option<CommandFile>,
    #[serde(default)]
    params: Option<toml::Table>,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    prune: Option<PruneFile>,
    #[serde(default)]
    keep_checkpoints: Option<usize>,
    #[serde(default)]
    max_failures: Option<usize>,
    search: SearchFile,
}

/// Trials that must all fail the same way, first, before a sweep stops (`max_failures`).
pub const DEFAULT_MAX_FAILURES: usize = 3;

/// One entry of `objectives`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveFile {
    metric: String,
    #[serde(default)]
    mode: Option<Mode>,
}

/// `[prune]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneFile {
    method: PruneMethod,
    #[serde(default)]
    grace_epochs: Option<usize>,
    #[serde(default)]
    eta: Option<usize>,
    #[serde(default)]
    startup_trials: Option<usize>,
    #[serde(default)]
    warmup_epochs: Option<usize>,
    #[serde(default)]
    interval: Option<usize>,
    #[serde(default)]
    pause: Option<bool>,
    #[serde(default)]
    objective: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PruneMethod {
    Median,
    Asha,
}

/// `[command]`: the user's program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    run: Vec<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default = "default_grace")]
    grace_seconds: f64,
}

fn default_grace() -> f64 {
    10.0
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Base {
    Path(PathBuf),
    Inline(toml::Table),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchFile {
    #[serde(default)]
    method: Option<Method>,
    #[serde(default)]
    samples: Option<usize>,
    #[serde(default)]
    startup: Option<usize>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    trials: Vec<toml::Table>,
}

impl SearchFile {
    /// The method the spec names, or when it names none, the one its search implies:
    /// `[[search.trials]]` are a list, distributions or `samples` an adaptive search (`auto`,
    /// which picks GP or TPE), plain lists of values a grid.
    fn method(&self) -> Method {
        if let Some(m) = self.method {
            return m;
        }
        if !self.trials.is_empty() {
            Method::List
        } else if self.samples.is_some() || self.params.values().any(toml::Value::is_table) {
            Method::Auto
        } else {
            Method::Grid
        }
    }
}

/// Where the base TrialConfig comes from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// A TrialConfig file (path relative to the spec's directory, resolved).
    File(SourceFile),
    /// The spec's own `[base]` table.
    Inline(toml::Table),
}

/// What each trial runs.
#[derive(Debug, Clone)]
pub enum Program {
    /// The built-in trainer, on the base TrialConfig with the searched keys set.
    Builtin(BaseSource),
    /// The user's program, with the searched parameters filled into its command line.
    Command(CommandSpec),
}

/// A command trial's program: `[command]` and `[params]` of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// The program and its arguments, with `{placeholders}`.
    pub run: Vec<String>,
    /// Only stdout lines starting with this carry metrics.
    pub prefix: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a trial is stopped.
    pub grace_seconds: f64,
    /// The base values of the parameters; search paths refer to these keys.
    pub params: toml::Table,
}

/// Placeholders every command trial has besides its parameters.
const TRIAL_PLACEHOLDERS: [&str; 3] = ["trial_dir", "trial_id", "seed"];

/// The `{name}` placeholders of one argument (`{{` and `}}` are literal braces), or what is
/// wrong with it.
fn placeholders(arg: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty() || name.contains('{') {
                    return Err(format!("`{arg}` has an unclosed or empty {{placeholder}}"));
                }
                names.push(name);
            }
            '}' => {
                return Err(format!(
                    "`{arg}` has a `}}` without its `{{` (write `}}}}` for a brace)"
                ));
            }
            _ => {}
        }
    }
    Ok(names)
}

impl CommandSpec {
    /// The first placeholder of the command line that `params` (a trial's parameters) gives
    /// no value to, or only a table: its argument's position, and why in words. The command
    /// line of such a trial would hold an empty argument.
    pub fn unresolved(&self, params: &toml::Table) -> Option<(usize, String)> {
        self.run.iter().enumerate().find_map(|(i, arg)| {
            let names = placeholders(arg).ok()?;
            names
                .iter()
                .filter(|n| !matches!(n.as_str(), "trial_dir" | "trial_id"))
                .find_map(|n| match get_path(params, &split_key(n)) {
                    None => Some(format!(
                        "{{{n}}} has no value in this trial: give `{n}` a value in [params] or \
                         search it"
                    )),
                    Some(toml::Value::Table(_)) => Some(format!(
                        "{{{n}}} is a table in this trial, not a value: name one of its keys, \
                         e.g. {{{n}.<key>}}"
                    )),
                    Some(_) => None,
                })
                .map(|why| (i, why))
        })
    }

    /// The command line of one trial: placeholders replaced by its parameters (resolved
    /// `params`), its directory, id and seed.
    pub fn render(&self, params: &toml::Table, trial_dir: &Path, trial_id: &str) -> Vec<String> {
        self.run
            .iter()
            .map(|arg| {
                let mut out = String::new();
                let mut chars = arg.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '{' if chars.peek() == Some(&'{') => {
                            chars.next();
                            out.push('{');
                        }
                        '}' if chars.peek() == Some(&'}') => {
                            chars.next();
                            out.push('}');
                        }
                        '{' => {
                            let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                            out.push_str(&match name.as_str() {
                                "trial_dir" => trial_dir.display().to_string(),
                                "trial_id" => trial_id.to_string(),
                                _ => get_path(params, &split_key(&name))
                                    .map(display_value)
                                    .unwrap_or_default(),
                            });
                        }
                        c => out.push(c),
                    }
                }
                out
            })
            .collect()
    }
}

/// A parsed, validated sweep spec.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The sweep's name: the directory under the results root.
    pub name: String,
    /// Free text shown by `plan` and the report.
    pub description: Option<String>,
    /// What ranks trials and selects each trial's kept checkpoint, when the spec names it
    /// (else the plan chooses: validation accuracy with a validation split, else test
    /// accuracy). With several objectives: the one that picks each trial's kept epoch (the
    /// one `[prune]` watches, else the first).
    pub objective: Option<Objective>,
    /// Several objectives, with constraints and a selection rule (`objectives = [...]`).
    pub objectives: Option<Objectives>,
    /// With one objective: what a feasible trial meets (`constraints = [...]`). With several
    /// objectives the constraints are part of `objectives`, and this is empty.
    pub constraints: Vec<Bound>,
    /// Overrides of the base configuration shared by every trial (`[set]`), as dotted keys.
    pub set: Vec<(String, toml::Value)>,
    /// What stops losing trials early (`[prune]`).
    pub pruner: Option<PrunerSpec>,
    /// Keep the best checkpoints of only this many trials (the best by the objective).
    pub keep_checkpoints: Option<usize>,
    /// Stop the sweep when its first this many trials to end all failed the same way
    /// (0: never).
    pub max_failures: usize,
    /// Seeds per configuration.
    pub repeats: usize,
    /// The spec file itself.
    pub source: SourceFile,
    /// What each trial runs: the built-in trainer on a base configuration, or a command.
    pub program: Program,
    /// Search method.
    pub method: Method,
    /// Random draws (random), or the trial budget (tpe).
    pub samples: usize,
    /// TPE's random trials before it starts learning.
    pub startup: usize,
    /// Seed of the random search.
    pub search_seed: u64,
    /// Grid/random axes.
    pub axes: Vec<Axis>,
    /// List trials.
    pub trials: Vec<toml::Table>,
}

impl SweepSpec {
    /// Reads and validates the spec at `path` (but does not expand it; see [`SweepSpec::plan`]).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let source = SourceFile::read(path)?;
        Self::from_source(source)
    }

    /// Validates an already read spec.
    pub fn from_source(source: SourceFile) -> anyhow::Result<Self> {
        let file = parse_file(&source)?;
        let at = |key: &str, msg: String| {
            source.error_at(&crate::train::config::overrides::split_key(key), msg)
        };
        let mut errors = Vec::new();
        let mut objective = header(&file, &at, &mut errors);
        let objectives = several_objectives(&file, &at, &mut errors);
        let constraints = single_objective_constraints(&file, &at, &mut errors);
        if let Some(o) = &objectives {
            objective = Some(o.objectives[0].clone());
            if file.repeats > 1 {
                errors.push(at(
                    "repeats",
                    "several objectives rank single trials; repeats (seeds averaged per configuration) do not combine with `objectives` yet".into(),
                ));
            }
        }
        // Keys of [search.params] and of [[search.trials]] (which need no base value).
        let mut searched: Vec<String> = file
            .search
            .params
            .keys()
            .flat_map(|name| name.split(',').map(|k| k.trim().to_string()))
            .collect();
        for trial in &file.search.trials {
            searched.extend(param_paths(trial).into_iter().filter(|k| k != "label"));
        }
        let program = match (file.base, file.command, file.params) {
            (Some(base), None, None) => {
                let named: Vec<(String, &str)> = match &objectives {
                    Some(o) => o
                        .metrics()
                        .into_iter()
                        .map(|m| (m.to_string(), "objectives"))
                        .collect(),
                    None => file
                        .metric
                        .iter()
                        .map(|m| (m.clone(), "metric"))
                        .chain(
                            constraints
                                .iter()
                                .map(|c| (c.metric.clone(), "constraints")),
                        )
                        .collect(),
                };
                builtin_program(base, &named, &source, &at, &mut errors)
            }
            (None, Some(cmd), params) => command_program(
                cmd,
                params.unwrap_or_default(),
                file.metric.is_some() || file.objectives.is_some(),
                &searched,
                &source,
                &at,
                &mut errors,
            ),
            (Some(_), Some(_), _) => {
                errors.push(at(
                    "command",
                    "a spec has either `base` (the built-in trainer) or [command] with [params] (your own program), not both".into(),
                ));
                Program::Builtin(BaseSource::Inline(toml::Table::new()))
            }
            (_, None, Some(_)) => {
                errors.push(at(
                    "params",
                    "[params] belongs to a [command] spec; the built-in trainer's base configuration is `base`".into(),
                ));
                Program::Builtin(BaseSource::Inline(toml::Table::new()))
            }
            (None, None, None) => {
                errors.push(at(
                    "name",
                    "needs `base` (a TrialConfig file or a [base] table, for the built-in trainer) or [command] with [params] (your own program)".into(),
                ));
                Program::Builtin(BaseSource::Inline(toml::Table::new()))
            }
        };
        let s = &file.search;
        let (samples, startup) = budget(s, file.repeats, &at, &mut errors);
        let axes = search_axes(s, &source, &at, &mut errors);
        let set = flatten_keys(&file.set);
        let pruner = file.prune.as_ref().map(|p| prune_spec(p, &at, &mut errors));
        if let (Some(p), Some(o)) = (&file.prune, &objectives) {
            match &p.objective {
                None => errors.push(at(
                    "prune",
                    format!(
                        "with several objectives, name the one the pruner watches, e.g. objective = \"{}\" (pruning on one objective while ranking on several is otherwise ambiguous)",
                        o.objectives[0].metric
                    ),
                )),
                Some(m) => match o.objectives.iter().find(|x| &x.metric == m) {
                    Some(watched) => objective = Some(watched.clone()),
                    None => errors.push(at(
                        "prune.objective",
                        format!(
                            "`{m}` is not one of the objectives ({})",
                            o.objectives
                                .iter()
                                .map(|x| x.metric.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                },
            }
        } else if let Some(m) = file.prune.as_ref().and_then(|p| p.objective.as_ref()) {
            errors.push(at(
                "prune.objective",
                format!("`{m}`: names one of several `objectives`; this spec has one metric"),
            ));
        }
        if file.keep_checkpoints == Some(0) {
            errors.push(at(
                "keep_checkpoints",
                "must be at least 1 (best/ keeps the winner's anyway); leave it out to keep all"
                    .into(),
            ));
        }
        if !errors.is_empty() {
            return Err(KeyErrors(errors).into());
        }
        Ok(Self {
            name: file.name,
            description: file.description,
            objective,
            objectives,
            constraints,
            set,
            pruner,
            keep_checkpoints: file.keep_checkpoints,
            max_failures: file.max_failures.unwrap_or(DEFAULT_MAX_FAILURES),
            repeats: file.repeats,
            source,
            program,
            method: s.method(),
            samples,
            startup,
            search_seed: s.seed,
            axes,
            trials: file.search.trials,
        })
    }

    /// The base values every trial starts from: the base TrialConfig, or the command's
    /// `[params]`.
    pub fn base_table(&self) -> anyhow::Result<toml::Table> {
        match &self.program {
            Program::Builtin(BaseSource::File(f)) => f.table(),
            Program::Builtin(BaseSource::Inline(t)) => Ok(t.clone()),
            Program::Command(c) => Ok(c.params.clone()),
        }
    }

    /// An error about a key of the trials' configuration, located where the spec sets it: a
    /// searched key, `[set]`, or the base.
    pub fn key_error(&self, key: &str, message: String) -> KeyError {
        let path = split_key(key);
        if let Some(a) = self.axes.iter().find(|a| a.paths.contains(&path)) {
            return self.source.error_at(
                &["search".into(), "params".into(), a.name.clone()],
                format!("`{key}` {message}"),
            );
        }
        if self.set.iter().any(|(k, _)| k == key) {
            return self
                .source
                .error_at(&["set".into(), key.to_string()], message);
        }
        self.base_error(&path, message)
    }

    /// An error about a key of the base values, located in whichever file holds it.
    pub fn base_error(&self, path: &[String], message: String) -> KeyError {
        let inline = |table: &str| {
            let mut p = vec![table.to_string()];
            p.extend_from_slice(path);
            self.source.error_at(&p, message.clone())
        };
        match &self.program {
            Program::Builtin(BaseSource::File(f)) => f.error_at(path, message),
            Program::Builtin(BaseSource::Inline(_)) => inline("base"),
            Program::Command(_) => inline("params"),
        }
    }
}

/// The spec file deserialised; a wrong key or type is an error naming its line.
/// What a sweep's saved spec says about its search, read by the spec's own parser and checks
/// but without resolving `base` or `[command]`: the copy in a results folder cannot find a
/// base file that sat beside the original. What the report and the Optuna export show.
#[derive(Debug, Clone, Default)]
pub struct SearchFacts {
    /// `description`.
    pub description: Option<String>,
    /// `search.method`.
    pub method: Option<Method>,
    /// The adaptive samplers' start-up trials (0 for the others).
    pub startup: usize,
    /// `[search.params]`, as written.
    pub space: Vec<(String, String)>,
    /// The searched axes.
    pub axes: Vec<Axis>,
}

impl SearchFacts {
    /// Reads them from the spec in `source`, with the spec's own errors.
    pub fn read(source: &SourceFile) -> anyhow::Result<Self> {
        let file = parse_file(source)?;
        let at = |key: &str, msg: String| {
            source.error_at(&crate::train::config::overrides::split_key(key), msg)
        };
        let mut errors = Vec::new();
        let s = &file.search;
        let (_, startup) = budget(s, file.repeats, &at, &mut errors);
        let axes = search_axes(s, source, &at, &mut errors);
        if !errors.is_empty() {
            return Err(KeyErrors(errors).into());
        }
        Ok(Self {
            description: file.description,
            method: Some(s.method()),
            startup: if s.method().adaptive() { startup } else { 0 },
            space: s
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            axes,
        })
    }

    /// The facts of the spec a sweep last ran, saved at `path`; none when it cannot be read
    /// (a report or an export still shows the rest).
    pub fn of_saved(path: &Path) -> Self {
        SourceFile::read(path)
            .and_then(|source| Self::read(&source))
            .unwrap_or_default()
    }
}

fn parse_file(source: &SourceFile) -> anyhow::Result<SpecFile> {
    let table = source.table()?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = path_segments(e.path());
        let msg = crate::text::plain_serde(&e.inner().to_string());
        let msg = if path.first().map(String::as_str) == Some("base")
            && msg.contains("did not match any variant")
        {
            "must be a path to a TrialConfig file or a [base] table".to_string()
        } else {
            msg
        };
        source.error_at(&path, msg).into()
    })
}

/// Checks `name` and `repeats`, and reads the objective (`metric`, `mode`).
fn header(
    file: &SpecFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Option<Objective> {
    if file.name.is_empty()
        || !file
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || file.name.starts_with('.')
    {
        errors.push(at(
            "name",
            format!(
                "`{}` cannot name a results directory; use letters, digits, '-', '_' and '.'",
                file.name
            ),
        ));
    }
    if file.repeats == 0 {
        errors.push(at("repeats", "must be at least 1".into()));
    }
    match (&file.metric, file.mode) {
        (Some(m), mode) => match Objective::new(m, mode) {
            Ok(o) => Some(o),
            Err(msg) => {
                errors.push(at("metric", msg));
                None
            }
        },
        (None, Some(_)) => {
            errors.push(at(
                "mode",
                "goes with `metric`: name the metric it is the direction of".into(),
            ));
            None
        }
        (None, None) => None,
    }
}

/// Reads `objectives`, `constraints` and `select`: several objectives instead of `metric`.
fn several_objectives(
    file: &SpecFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Option<Objectives> {
    let Some(list) = &file.objectives else {
        if file.select.is_some() {
            errors.push(at(
                "select",
                "goes with `objectives` (several objectives); with one `metric` the best trial is the best feasible one by it".into(),
            ));
        }
        return None;
    };
    for (key, given) in [
        ("metric", file.metric.is_some()),
        ("mode", file.mode.is_some()),
    ] {
        if given {
            errors.push(at(
                key,
                "a spec has either `metric` (one objective) or `objectives` (several), not both"
                    .into(),
            ));
        }
    }
    if list.len() < 2 {
        errors.push(at(
            "objectives",
            format!(
                "lists {} objective; with one, write metric = \"...\" instead",
                list.len()
            ),
        ));
        return None;
    }
    let mut objectives = Vec::new();
    for (i, o) in list.iter().enumerate() {
        if objectives.iter().any(|x: &Objective| x.metric == o.metric) {
            errors.push(at("objectives", format!("`{}` is listed twice", o.metric)));
        }
        match Objective::new(&o.metric, o.mode) {
            Ok(x) => objectives.push(x),
            Err(msg) => errors.push(at("objectives", format!("entry {}: {msg}", i + 1))),
        }
    }
    let constraints = read_constraints(file, at, errors);
    let select = file
        .select
        .as_ref()
        .and_then(|s| match Selection::parse(s) {
            Ok(sel) => {
                if !objectives.iter().any(|o| o.metric == sel.objective.metric) {
                    errors.push(at(
                        "select",
                        format!(
                            "`{sel}` chooses by `{}`, which is not one of the objectives ({}); a condition after `where` may name any metric",
                            sel.objective.metric,
                            objectives
                                .iter()
                                .map(|o| o.metric.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                for c in &sel.conditions {
                    if matches!(c.limit, Limit::FromBest(_))
                        && !objectives.iter().any(|o| o.metric == c.metric)
                    {
                        errors.push(at(
                            "select",
                            format!(
                                "`{c}`: `best` refers to an objective, and `{}` is none",
                                c.metric
                            ),
                        ));
                    }
                }
                Some(sel)
            }
            Err(msg) => {
                errors.push(at("select", msg));
                None
            }
        });
    (objectives.len() == list.len()).then_some(Objectives {
        objectives,
        constraints,
        select,
    })
}

/// Reads the constraints of a spec with one objective (with several they are part of them),
/// and refuses what one objective does not combine with: `gp` with several objectives,
/// constraints with repeats.
fn single_objective_constraints(
    file: &SpecFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Vec<Bound> {
    if file.objectives.is_some() {
        if file.search.method() == Method::Gp {
            errors.push(at(
                "search.method",
                "gp models one objective (multi-objective GP, log EHVI, is not built yet); with \
                 several objectives use method = \"tpe\" (multi-objective TPE), or \"auto\", \
                 which takes TPE for them"
                    .into(),
            ));
        }
        return Vec::new();
    }
    let constraints = read_constraints(file, at, errors);
    if !constraints.is_empty() && file.repeats > 1 {
        errors.push(at(
            "constraints",
            "constraints judge single trials; repeats (seeds averaged per configuration) do not combine with them yet".into(),
        ));
    }
    constraints
}

/// Reads `constraints`: what a feasible trial meets, with one objective or several.
fn read_constraints(
    file: &SpecFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Vec<Bound> {
    file.constraints
        .iter()
        .flatten()
        .filter_map(|c| match Bound::parse(c, false) {
            Ok(b) => Some(b),
            Err(msg) => {
                errors.push(at("constraints", msg));
                None
            }
        })
        .collect()
}

/// `base`: the built-in trainer's configuration (a file beside the spec, or inline).
fn builtin_program(
    base: Base,
    metrics: &[(String, &str)],
    source: &SourceFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Program {
    for (m, key) in metrics {
        if !REPORTED_METRICS.contains(&m.as_str()) {
            errors.push(at(
                key,
                format!(
                    "the built-in trainer does not report `{m}`; it reports {}",
                    REPORTED_METRICS.join(", ")
                ),
            ));
        }
    }
    Program::Builtin(match base {
        Base::Path(p) => {
            let dir = source.path().parent().unwrap_or(Path::new("."));
            match SourceFile::read(&dir.join(&p)) {
                Ok(s) => BaseSource::File(s),
                Err(e) => {
                    errors.push(at("base", format!("{e:#}")));
                    BaseSource::Inline(toml::Table::new())
                }
            }
        }
        Base::Inline(t) => BaseSource::Inline(t),
    })
}

/// `[command]` and `[params]`: the user's program. Every placeholder must be a key of
/// `[params]`, a searched key (which needs no base value) or a trial placeholder.
fn command_program(
    cmd: CommandFile,
    params: toml::Table,
    has_metric: bool,
    searched: &[String],
    source: &SourceFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Program {
    if !has_metric {
        errors.push(at(
            "command",
            "a command sweep names the metric its program reports, e.g. metric = \"val_acc\" (and mode = \"max\" if the name does not say)".into(),
        ));
    }
    if cmd.run.is_empty() || cmd.run[0].is_empty() {
        errors.push(at(
            "command.run",
            "needs the program and its arguments, e.g. [\"python3\", \"train.py\", \"--lr\", \"{lr}\"]".into(),
        ));
    }
    if !(cmd.grace_seconds.is_finite() && cmd.grace_seconds >= 0.0) {
        errors.push(at(
            "command.grace_seconds",
            format!("must be >= 0, got {}", cmd.grace_seconds),
        ));
    }
    let (params, problems) = nest_dotted_keys(params);
    errors.extend(problems.into_iter().map(|msg| at("params", msg)));
    let mut keys = param_paths(&params);
    for key in searched {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    let known: Vec<String> = TRIAL_PLACEHOLDERS
        .iter()
        .map(|s| s.to_string())
        .chain(keys.iter().cloned())
        .collect();
    for (i, arg) in cmd.run.iter().enumerate() {
        let path = vec!["command".to_string(), "run".into(), i.to_string()];
        match placeholders(arg) {
            Err(msg) => errors.push(source.error_at(&path, msg)),
            Ok(names) => {
                for n in names.iter().filter(|n| !known.contains(n)) {
                    let inner: Vec<&String> = keys
                        .iter()
                        .filter(|k| k.starts_with(&format!("{n}.")))
                        .collect();
                    let why = match inner.first() {
                        Some(k) => format!(
                            "{{{n}}} is a table, not a value: name one of its keys, e.g. {{{k}}}"
                        ),
                        None => format!(
                            "unknown placeholder {{{n}}}: the placeholders are the keys of [params] and [search.params] ({}) and {{trial_dir}}, {{trial_id}}, {{seed}}",
                            if keys.is_empty() {
                                "none".to_string()
                            } else {
                                keys.join(", ")
                            }
                        ),
                    };
                    errors.push(source.error_at(&path, why));
                }
            }
        }
    }
    Program::Command(CommandSpec {
        run: cmd.run,
        prefix: cmd.prefix,
        grace_seconds: cmd.grace_seconds,
        params,
    })
}

/// TPE's random start-up trials when the spec does not say: an eighth of the budget, at
/// least 1 and at most 10 (Optuna's default count); the rest is guided.
pub fn default_startup(samples: usize) -> usize {
    samples.div_ceil(8).clamp(1, 10)
}

/// The GP's quasi-random start-up trials when the spec does not say: 10 (Optuna's
/// GPSampler default), at most the budget.
pub fn default_gp_startup(samples: usize) -> usize {
    samples.clamp(1, 10)
}

/// `samples` and `startup`: how many trials a random or adaptive search draws, and how many of
/// an adaptive search's are random.
fn budget(
    s: &SearchFile,
    repeats: usize,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> (usize, usize) {
    let samples = match (s.method(), s.samples) {
        (m, Some(n)) if m.draws() && n > 0 => n,
        (m, _) if m.draws() => {
            errors.push(at(
                "search.samples",
                format!("{} search needs samples = N (at least 1)", m.name()),
            ));
            0
        }
        (_, Some(_)) => {
            errors.push(at(
                "search.samples",
                "only random, tpe, gp and auto search draw samples; remove it".into(),
            ));
            0
        }
        (_, None) => 0,
    };
    let startup = match (s.method(), s.startup) {
        (m, Some(k)) if m.adaptive() && k > samples && samples > 0 => {
            errors.push(at(
                "search.startup",
                format!("{k} random start-up trials are more than the {samples} samples"),
            ));
            k
        }
        (m, Some(k)) if m.adaptive() => k,
        (Method::Tpe, None) => default_startup(samples),
        (Method::Gp | Method::Auto, None) => default_gp_startup(samples),
        (_, Some(_)) => {
            errors.push(at(
                "search.startup",
                "belongs to method = \"tpe\", \"gp\" or \"auto\" (its random trials before it learns)".into(),
            ));
            0
        }
        (_, None) => 0,
    };
    if s.method().adaptive() && repeats > 1 {
        errors.push(at(
            "repeats",
            format!(
                "{} asks for one trial at a time and does not repeat seeds; use repeats with grid, random or list",
                s.method().name()
            ),
        ));
    }
    (samples, startup)
}

/// `[search.params]` (or `[[search.trials]]`): the axes searched, checked against the method.
fn search_axes(
    s: &SearchFile,
    source: &SourceFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> Vec<Axis> {
    let mut axes = Vec::new();
    for (name, value) in &s.params {
        match Axis::parse(name, value, s.method()) {
            Ok(a) => axes.push(a),
            Err((path, msg)) => errors.push(source.error_at(&path, msg)),
        }
    }
    match s.method() {
        Method::List if !s.params.is_empty() => {
            errors.push(at(
                "search.params",
                "list search takes [[search.trials]], not params".into(),
            ));
        }
        Method::List if s.trials.is_empty() => {
            errors.push(at(
                "search.method",
                "list search needs at least one [[search.trials]] table".into(),
            ));
        }
        m if m != Method::List && !s.trials.is_empty() => {
            errors.push(at(
                "search.trials",
                "[[search.trials]] belongs to method = \"list\"".into(),
            ));
        }
        m if m != Method::List && s.params.is_empty() => {
            errors.push(at(
                "search.params",
                "needs at least one key to search, e.g. \"optimizer.lr\" = [0.01, 0.1]".into(),
            ));
        }
        _ => {}
    }
    axes
}

/// The pruner `[prune]` asks for; keys of the other method and bad values are errors.
fn prune_spec(
    p: &PruneFile,
    at: &dyn Fn(&str, String) -> KeyError,
    errors: &mut Vec<KeyError>,
) -> PrunerSpec {
    let mut positive = |key: &str, v: Option<usize>, min: usize, default: usize| match v {
        Some(n) if n < min => {
            errors.push(at(
                &format!("prune.{key}"),
                format!("must be at least {min}, got {n}"),
            ));
            default
        }
        Some(n) => n,
        None => default,
    };
    let spec = match p.method {
        PruneMethod::Median => {
            let d = MedianPruner::default();
            PrunerSpec::Median(MedianPruner {
                startup_trials: positive("startup_trials", p.startup_trials, 0, d.startup_trials),
                warmup_epochs: positive("warmup_epochs", p.warmup_epochs, 0, d.warmup_epochs),
                interval: positive("interval", p.interval, 1, d.interval),
            })
        }
        PruneMethod::Asha => {
            let d = Asha::default();
            PrunerSpec::Asha(Asha {
                grace_epochs: positive("grace_epochs", p.grace_epochs, 1, d.grace_epochs),
                eta: positive("eta", p.eta, 2, d.eta),
                pause: p.pause.unwrap_or(d.pause),
            })
        }
    };
    let foreign: &[(&str, bool)] = match p.method {
        PruneMethod::Median => &[
            ("grace_epochs", p.grace_epochs.is_some()),
            ("eta", p.eta.is_some()),
            ("pause", p.pause.is_some()),
        ],
        PruneMethod::Asha => &[
            ("startup_trials", p.startup_trials.is_some()),
            ("warmup_epochs", p.warmup_epochs.is_some()),
            ("interval", p.interval.is_some()),
        ],
    };
    let other = match p.method {
        PruneMethod::Median => "asha",
        PruneMethod::Asha => "median",
    };
    for (key, given) in foreign {
        if *given {
            errors.push(at(
                &format!("prune.{key}"),
                format!("belongs to method = \"{other}\""),
            ));
        }
    }
    spec
}

/// `[set]` as (dotted key, value) pairs; nested tables are flattened.
fn flatten_keys(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => out.extend(
                flatten_keys(t)
                    .into_iter()
                    .map(|(p, v)| (format!("{k}.{p}"), v)),
            ),
            v => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// Every key of a parameter table as a dotted path (nested tables flattened).
/// `[params]` with its quoted dotted keys (`"opt.name" = "adam"`) nested, as `[search.params]`
/// nests them: one meaning in both tables, so that `{opt.name}` finds the value. A key given
/// both ways is an error (returned, in words).
fn nest_dotted_keys(params: toml::Table) -> (toml::Table, Vec<String>) {
    let mut problems = Vec::new();
    let mut nested = toml::Table::new();
    let (dotted, plain): (Vec<_>, Vec<_>) = params.into_iter().partition(|(k, _)| k.contains('.'));
    for (k, v) in plain {
        nested.insert(k, v);
    }
    for (key, value) in dotted {
        let path = split_key(&key);
        if get_path(&nested, &path).is_some() {
            problems.push(format!("`{key}` is given twice (once as a dotted key)"));
            continue;
        }
        if let Err((_, msg)) = set_path(&mut nested, &path, value) {
            problems.push(format!("`{key}`: {msg}"));
        }
    }
    (nested, problems)
}

/// The dotted paths of every value in `params` (tables are descended into).
pub fn param_paths(params: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in params {
        match v {
            toml::Value::Table(t) => {
                out.extend(param_paths(t).into_iter().map(|p| format!("{k}.{p}")))
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests;
