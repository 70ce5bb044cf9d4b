//! The plan: a spec expanded into fully resolved, validated, uniquely identified trials.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::pruner::PrunerSpec;
use super::sampler::Adaptive;
use super::search::{self, Method, Point};
use super::spec::{CommandSpec, Program, SweepSpec};
use crate::objectives::{Bound, Objectives};
use crate::store::journal::TrialDef;
use crate::text::display_value;
use crate::train::config::overrides::{get_path, set_path, split_key};
use crate::train::config::{KeyError, KeyErrors, TrialConfig};
use crate::trial::Objective;

/// One trial of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    /// Position in the plan (0-based); a Slurm array task index.
    pub index: usize,
    /// Short stable hash of the resolved configuration (seed included).
    pub id: String,
    /// Hash of the configuration without its seed: repeats of one configuration share it.
    pub group: String,
    /// The list trial's label, if it has one.
    pub label: Option<String>,
    /// What it runs with.
    pub input: TrialInput,
    /// Its value in each of the plan's columns (resolved, searched or not).
    pub params: BTreeMap<String, toml::Value>,
    /// Who proposed it, for a trial an adaptive sampler asked for.
    pub sampler: Option<String>,
}

/// A trial's fully resolved input.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialInput {
    /// A configuration of the built-in trainer.
    Builtin(TrialConfig),
    /// The parameters of a command trial (`seed` included).
    Command(toml::Table),
}

impl TrialInput {
    /// The input as TOML text: the trial directory's `trial.toml` (a TrialConfig) or
    /// `params.toml`.
    pub fn to_toml(&self) -> String {
        match self {
            TrialInput::Builtin(c) => c.to_toml(),
            TrialInput::Command(t) => toml::to_string(t).expect("parameters serialise"),
        }
    }

    /// The MNIST directory a built-in trial reads.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        match self {
            TrialInput::Builtin(c) => Some(&c.data.dir),
            TrialInput::Command(_) => None,
        }
    }

    /// Epochs planned, when the input says.
    pub fn epochs(&self) -> Option<usize> {
        match self {
            TrialInput::Builtin(c) => Some(c.epochs),
            TrialInput::Command(t) => t
                .get("epochs")
                .and_then(toml::Value::as_integer)
                .and_then(|e| usize::try_from(e).ok()),
        }
    }
}

/// A spec expanded into trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The sweep's name.
    pub name: String,
    /// What ranks trials and selects their checkpoints (with several objectives, the one that
    /// picks each trial's kept epoch).
    pub objective: Objective,
    /// Several objectives, with constraints and a selection rule.
    pub objectives: Option<Objectives>,
    /// With one objective: what a feasible trial meets (empty with several objectives, whose
    /// constraints are part of them).
    pub constraints: Vec<Bound>,
    /// Seeds per configuration.
    pub repeats: usize,
    /// Searched keys (dotted TrialConfig paths), in order of first appearance; `seed` is added
    /// when repeats > 1.
    pub columns: Vec<String>,
    /// The trials, in run order.
    pub trials: Vec<PlannedTrial>,
    /// Draws dropped because they repeated an earlier trial exactly.
    pub duplicates: usize,
    /// The user's program, for a command sweep.
    pub command: Option<CommandSpec>,
    /// What stops losing trials early.
    pub pruner: Option<PrunerSpec>,
    /// Keep the best checkpoints of only this many trials.
    pub keep_checkpoints: Option<usize>,
    /// Stop when the first this many trials to end all failed the same way (0: never).
    pub max_failures: usize,
    /// The base values every trial starts from (`[set]` applied).
    pub base: toml::Table,
    /// The adaptive sampler (tpe, gp, auto), whose trials are asked for as slots free.
    pub adaptive: Option<Adaptive>,
    /// Trials of a TPE space resolved at random to validate it (none for other methods).
    pub space_sample: Vec<PlannedTrial>,
}

/// Short stable hash of a text (the first 8 hex digits of its SHA-256).
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A trial configuration's id: the hash of its canonical TOML.
pub fn trial_id(config: &TrialConfig) -> String {
    short_hash(&config.to_toml())
}

impl SweepSpec {
    /// Expands the spec into its trials, validating every one; nothing is run or written.
    /// A TPE plan holds no trial yet (the study asks for them); a sample of its space is
    /// resolved instead, so that a bad value fails here and not mid-sweep.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let points = match self.method {
            Method::Grid => search::grid(&self.axes),
            Method::Random => search::random(&self.axes, self.samples, self.search_seed),
            Method::Tpe | Method::Gp | Method::Auto => {
                search::random(&self.axes, 16, self.search_seed)
            }
            Method::List => {
                search::list(&self.trials).map_err(|(p, m)| self.source.error_at(&p, m))?
            }
        };
        let mut base = self.base_table()?;
        for (key, value) in &self.set {
            set_path(&mut base, &split_key(key), value.clone()).map_err(|(_, msg)| {
                self.source
                    .error_at(&["set".into(), key.clone()], format!("`{key}` {msg}"))
            })?;
        }
        let mut columns: Vec<String> = Vec::new();
        if points.iter().any(|p| p.label.is_some()) {
            columns.push("label".into());
        }
        for p in &points {
            for a in &p.values {
                if !columns.contains(&a.key) {
                    columns.push(a.key.clone());
                }
            }
        }
        if self.repeats > 1 && !columns.iter().any(|c| c == "seed") {
            columns.push("seed".into());
        }

        let mut trials: Vec<PlannedTrial> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut errors: Vec<KeyError> = Vec::new();
        let mut duplicates = 0;
        for (point_index, point) in points.iter().enumerate() {
            for repeat in 0..self.repeats {
                match self.planned_trial(&base, &columns, point, repeat, trials.len()) {
                    Ok(t) => {
                        if ids.insert(t.id.clone()) {
                            trials.push(t);
                        } else {
                            duplicates += 1;
                        }
                    }
                    Err(mut e) => {
                        for err in &mut e {
                            err.message = format!("trial {}: {}", point_index + 1, err.message);
                        }
                        for err in e {
                            // The same bad value recurs in many grid points: report it once.
                            if !errors
                                .iter()
                                .any(|x| x.line == err.line && x.key == err.key)
                            {
                                errors.push(err);
                            }
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(KeyErrors(errors).into());
        }
        let split = |t: &PlannedTrial| t.config().is_none_or(|c| c.data.val_size > 0);
        let objective = match &self.objective {
            Some(o) => o.clone(),
            None if !trials.is_empty() && trials.iter().all(split) => {
                Objective::new("val_acc", None).expect("accuracies are maximised")
            }
            None => Objective::test_acc(),
        };
        if objective.metric.starts_with("val_")
            && let Some(t) = trials.iter().find(|t| !split(t))
        {
            return Err(self
                .source
                .error_at(
                    &["metric".into()],
                    format!(
                        "{} needs a validation split, and trial {} has none: set data.val_size, e.g. [set] \"data.val_size\" = 10000",
                        objective.metric,
                        t.index + 1
                    ),
                )
                .into());
        }
        let adaptive = self.method.adaptive().then(|| Adaptive {
            method: self.method,
            axes: self.axes.clone(),
            objective: objective.clone(),
            objectives: self.objectives.clone(),
            constraints: self.constraints.clone(),
            budget: self.samples,
            startup: self.startup,
            seed: self.search_seed,
            parallelism: 1,
        });
        Ok(Plan {
            name: self.name.clone(),
            objective,
            objectives: self.objectives.clone(),
            constraints: self.constraints.clone(),
            repeats: self.repeats,
            columns,
            space_sample: if adaptive.is_some() {
                trials.clone()
            } else {
                Vec::new()
            },
            trials: if adaptive.is_some() {
                Vec::new()
            } else {
                trials
            },
            duplicates,
            command: match &self.program {
                Program::Command(c) => Some(c.clone()),
                Program::Builtin(_) => None,
            },
            pruner: self.pruner.clone(),
            keep_checkpoints: self.keep_checkpoints,
            max_failures: self.max_failures,
            base,
            adaptive,
        })
    }

    /// The trial of `point` (and `repeat`) at `index` in the plan: its resolved input, id and
    /// column values; or the errors that stop it.
    pub fn planned_trial(
        &self,
        base: &toml::Table,
        columns: &[String],
        point: &Point,
        repeat: usize,
        index: usize,
    ) -> Result<PlannedTrial, Vec<KeyError>> {
        let input = self.resolve(base, point, repeat)?;
        let (id, group) = self.identify(&input);
        let resolved: toml::Table =
            toml::from_str(&input.to_toml()).expect("a trial's input is valid TOML");
        let params = columns
            .iter()
            .filter_map(|c| get_path(&resolved, &split_key(c)).map(|v| (c.clone(), v.clone())))
            .collect();
        Ok(PlannedTrial {
            index,
            id,
            group,
            label: point.label.clone(),
            input,
            params,
            sampler: None,
        })
    }

    /// A trial's id (the hash of its resolved input, and of the command it runs) and group
    /// (the same without its seed).
    fn identify(&self, input: &TrialInput) -> (String, String) {
        match (input, &self.program) {
            (TrialInput::Builtin(config), _) => (
                trial_id(config),
                short_hash(
                    &TrialConfig {
                        seed: 0,
                        ..config.clone()
                    }
                    .to_toml(),
                ),
            ),
            (TrialInput::Command(params), program) => {
                let run = match program {
                    Program::Command(c) => c.run.join("\u{1f}"),
                    Program::Builtin(_) => String::new(),
                };
                let mut unseeded = params.clone();
                unseeded.remove("seed");
                let text = |t: &toml::Table| toml::to_string(t).expect("parameters serialise");
                (
                    short_hash(&format!("{}\n{run}", text(params))),
                    short_hash(&format!("{}\n{run}", text(&unseeded))),
                )
            }
        }
    }

    /// The input of one point and repeat, or the errors that stop it (located in the spec for
    /// searched keys, in the base for the rest).
    fn resolve(
        &self,
        base: &toml::Table,
        point: &Point,
        repeat: usize,
    ) -> Result<TrialInput, Vec<KeyError>> {
        let mut table = base.clone();
        for a in &point.values {
            set_path(&mut table, &a.path, a.value.clone()).map_err(|(_, msg)| {
                vec![
                    self.source
                        .error_at(&a.origin, format!("`{}` {msg}", a.key)),
                ]
            })?;
        }
        let seed = match table.get("seed") {
            None => 0,
            Some(v) => v.as_integer().filter(|s| *s >= 0).ok_or_else(|| {
                vec![self.base_error(&["seed".into()], "must be a whole number >= 0".into())]
            })? as u64,
        };
        table.insert(
            "seed".into(),
            toml::Value::Integer((seed + repeat as u64) as i64),
        );
        if let Program::Command(c) = &self.program {
            if let Some((i, why)) = c.unresolved(&table) {
                let at = ["command".to_string(), "run".into(), i.to_string()];
                return Err(vec![self.source.error_at(&at, why)]);
            }
            return Ok(TrialInput::Command(table));
        }
        let locate = |path: &[String], msg: String| {
            let searched = point
                .values
                .iter()
                .rev()
                .find(|a| a.path.starts_with(path) || path.starts_with(&a.path));
            let set = self
                .set
                .iter()
                .find(|(k, _)| split_key(k).starts_with(path) || path.starts_with(&split_key(k)));
            match (searched, set) {
                (Some(a), _) => self
                    .source
                    .error_at(&a.origin, format!("{}: {msg}", path.join("."))),
                (None, Some((k, _))) => self.source.error_at(
                    &["set".into(), k.clone()],
                    format!("{}: {msg}", path.join(".")),
                ),
                (None, None) => self.base_error(path, msg),
            }
        };
        TrialConfig::from_table(table, locate)
            .map(TrialInput::Builtin)
            .map_err(|e| match e.downcast::<KeyErrors>() {
                Ok(list) => list.0,
                Err(e) => match e.downcast::<KeyError>() {
                    Ok(one) => vec![one],
                    Err(other) => vec![self.source.error_at(&[], format!("{other:#}"))],
                },
            })
    }
}

impl PlannedTrial {
    /// The value this trial runs with for a column of the plan: the label, or the key's value
    /// in the resolved configuration, searched or not (a list trial that does not set a key
    /// has the base's value); "" where the configuration has no such key.
    pub fn value(&self, column: &str) -> String {
        if column == "label" {
            return self.label.clone().unwrap_or_default();
        }
        self.params
            .get(column)
            .map(display_value)
            .unwrap_or_default()
    }

    /// The TrialConfig of a built-in trial.
    pub fn config(&self) -> Option<&TrialConfig> {
        match &self.input {
            TrialInput::Builtin(c) => Some(c),
            TrialInput::Command(_) => None,
        }
    }

    /// The trial as the journal records it.
    pub fn def(&self) -> TrialDef {
        TrialDef {
            index: self.index,
            id: self.id.clone(),
            group: self.group.clone(),
            label: self.label.clone(),
            params: self.params.clone(),
            sampler: self.sampler.clone(),
        }
    }
}

impl Plan {
    /// What ranks the trials, for people (see [`crate::objectives::ranking`]).
    pub fn ranking(&self) -> String {
        crate::objectives::ranking(&self.objective, self.objectives.as_ref(), &self.constraints)
    }

    /// Every trial resolved while planning: the plan's, or a TPE space's sample.
    pub fn resolved(&self) -> impl Iterator<Item = &PlannedTrial> {
        self.trials.iter().chain(&self.space_sample)
    }

    /// The trial with `id`.
    pub fn trial(&self, id: &str) -> Option<&PlannedTrial> {
        self.trials.iter().find(|t| t.id == id)
    }

    /// The plan as an aligned text table (id, then the searched values).
    pub fn table(&self) -> String {
        let mut header = vec!["#".to_string(), "trial".to_string()];
        header.extend(self.columns.iter().cloned());
        let rows: Vec<Vec<String>> = self
            .trials
            .iter()
            .map(|t| {
                let mut r = vec![(t.index + 1).to_string(), t.id.clone()];
                r.extend(self.columns.iter().map(|c| t.value(c)));
                r
            })
            .collect();
        crate::text::text_table(&header, &rows)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::train::config::SourceFile;

    fn plan(text: &str) -> Plan {
        let source = SourceFile::parse(Path::new("s.toml"), text.to_string()).unwrap();
        SweepSpec::from_source(source).unwrap().plan().unwrap()
    }

    const BASE: &str = "[base]\nepochs = 3\nbatch_size = 10\n[base.model]\nhidden = [8]\n[base.optimizer]\nlr = 0.1\n[base.schedule]\nname = \"multistep\"\n";

    #[test]
    fn a_grid_varies_its_first_key_slowest_and_zipped_keys_together() {
        let p = plan(&format!(
            "name = \"g\"\n{BASE}[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.1, 0.2]\n\"epochs,schedule.milestones\" = [[3, [1]], [4, [2]]]\n"
        ));
        let rows: Vec<(String, String, String)> = p
            .trials
            .iter()
            .map(|t| {
                (
                    t.value("optimizer.lr"),
                    t.value("epochs"),
                    t.value("schedule.milestones"),
                )
            })
            .collect();
        let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            rows,
            [
                row("0.1", "3", "[1]"),
                row("0.1", "4", "[2]"),
                row("0.2", "3", "[1]"),
                row("0.2", "4", "[2]")
            ]
        );
        let indices: Vec<usize> = p.trials.iter().map(|t| t.index).collect();
        assert_eq!(indices, [0, 1, 2, 3]);
    }

    #[test]
    fn set_applies_to_every_trial_and_a_command_trial_needs_no_base_value_for_searched_keys() {
        let p = plan(&format!(
            "name = \"s\"\n{BASE}[set]\n\"optimizer.momentum\" = 0.9\n[search]\nmethod = \"grid\"\n[search.params]\n\"optimizer.lr\" = [0.1, 0.2]\n"
        ));
        assert!(
            p.trials
                .iter()
                .all(|t| t.config().unwrap().optimizer.momentum == 0.9)
        );
        let c = plan(
            "name = \"c\"\nmetric = \"acc\"\n[command]\nrun = [\"prog\", \"{lr}\"]\n[search]\nmethod = \"grid\"\n[search.params]\nlr = [0.1, 0.2]\n",
        );
        assert_eq!(c.trials.len(), 2);
        assert_eq!(c.trials[1].value("lr"), "0.2");
        assert_ne!(c.trials[0].id, c.trials[1].id);
    }
}
