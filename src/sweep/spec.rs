//! Sweep specs: the TOML schema, its validation (every error names file, line and key), and
//! the expansion into a deterministic plan of fully resolved trials.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use super::plan::{Plan, PlannedTrial};
use super::search::{Axis, Method};
use crate::train::REPORTED_METRICS;
use crate::train::config::{KeyError, KeyErrors, SourceFile, path_segments};
use crate::trial::{Mode, Objective};

/// The spec file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "default_metric")]
    metric: String,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default = "one")]
    repeats: usize,
    base: Base,
    search: SearchFile,
}

fn one() -> usize {
    1
}

fn default_metric() -> String {
    "test_acc".into()
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
    method: Method,
    #[serde(default)]
    samples: Option<usize>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    trials: Vec<toml::Table>,
}

/// Where the base TrialConfig comes from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// A TrialConfig file (path relative to the spec's directory, resolved).
    File(SourceFile),
    /// The spec's own `[base]` table.
    Inline(toml::Table),
}

/// A parsed, validated sweep spec.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The sweep's name: the directory under the results root.
    pub name: String,
    /// Free text shown by `plan` and the report.
    pub description: Option<String>,
    /// What ranks trials and selects each trial's kept checkpoint.
    pub objective: Objective,
    /// Seeds per configuration.
    pub repeats: usize,
    /// The spec file itself.
    pub source: SourceFile,
    /// The base configuration.
    pub base: BaseSource,
    /// Search method.
    pub method: Method,
    /// Random draws (random only).
    pub samples: usize,
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
        let table = source.table()?;
        let file: SpecFile =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = path_segments(e.path());
                let msg = e.inner().to_string();
                let msg = msg.lines().next().unwrap_or("").to_string();
                let msg = if path.first().map(String::as_str) == Some("base")
                    && msg.contains("did not match any variant")
                {
                    "must be a path to a TrialConfig file or a [base] table".to_string()
                } else {
                    msg
                };
                source.error_at(&path, msg)
            })?;
        let at = |key: &str, msg: String| {
            source.error_at(&crate::train::config::overrides::split_key(key), msg)
        };
        let mut errors = Vec::new();
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
        let objective = match Objective::new(&file.metric, file.mode) {
            Ok(o) => o,
            Err(msg) => {
                errors.push(at("metric", msg));
                Objective::test_acc()
            }
        };
        if file.metric.starts_with("val_") {
            errors.push(at(
                "metric",
                format!(
                    "{} needs a validation split, which sweep does not have yet; use test_acc",
                    file.metric
                ),
            ));
        } else if !REPORTED_METRICS.contains(&file.metric.as_str()) {
            errors.push(at(
                "metric",
                format!(
                    "the built-in trainer does not report `{}`; it reports {}",
                    file.metric,
                    REPORTED_METRICS.join(", ")
                ),
            ));
        }
        if file.repeats == 0 {
            errors.push(at("repeats", "must be at least 1".into()));
        }
        let base = match file.base {
            Base::Path(p) => {
                let dir = source.path().parent().unwrap_or(Path::new("."));
                let resolved = dir.join(&p);
                match SourceFile::read(&resolved) {
                    Ok(s) => BaseSource::File(s),
                    Err(e) => {
                        errors.push(at("base", format!("{e:#}")));
                        BaseSource::Inline(toml::Table::new())
                    }
                }
            }
            Base::Inline(t) => BaseSource::Inline(t),
        };
        let s = &file.search;
        let samples = match (s.method, s.samples) {
            (Method::Random, Some(n)) if n > 0 => n,
            (Method::Random, _) => {
                errors.push(at(
                    "search.samples",
                    "random search needs samples = N (at least 1)".into(),
                ));
                0
            }
            (_, Some(_)) => {
                errors.push(at(
                    "search.samples",
                    "only random search draws samples; remove it".into(),
                ));
                0
            }
            (_, None) => 0,
        };
        let mut axes = Vec::new();
        for (name, value) in &s.params {
            match Axis::parse(name, value, s.method) {
                Ok(a) => axes.push(a),
                Err((path, msg)) => errors.push(source.error_at(&path, msg)),
            }
        }
        match s.method {
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
            Method::Grid | Method::Random if !s.trials.is_empty() => {
                errors.push(at(
                    "search.trials",
                    "[[search.trials]] belongs to method = \"list\"".into(),
                ));
            }
            Method::Grid | Method::Random if s.params.is_empty() => {
                errors.push(at(
                    "search.params",
                    "needs at least one key to search, e.g. \"optimizer.lr\" = [0.01, 0.1]".into(),
                ));
            }
            _ => {}
        }
        if !errors.is_empty() {
            return Err(KeyErrors(errors).into());
        }
        Ok(Self {
            name: file.name,
            description: file.description,
            objective,
            repeats: file.repeats,
            source,
            base,
            method: s.method,
            samples,
            search_seed: s.seed,
            axes,
            trials: file.search.trials,
        })
    }

    /// The base configuration as a table.
    pub fn base_table(&self) -> anyhow::Result<toml::Table> {
        match &self.base {
            BaseSource::File(f) => f.table(),
            BaseSource::Inline(t) => Ok(t.clone()),
        }
    }

    /// An error about a key of the base configuration, located in whichever file holds it.
    pub fn base_error(&self, path: &[String], message: String) -> KeyError {
        match &self.base {
            BaseSource::File(f) => f.error_at(path, message),
            BaseSource::Inline(_) => {
                let mut p = vec!["base".to_string()];
                p.extend_from_slice(path);
                self.source.error_at(&p, message)
            }
        }
    }
}

#[cfg(test)]
mod tests;
