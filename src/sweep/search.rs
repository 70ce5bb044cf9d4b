//! Search spaces and their expansion into points: grid (Cartesian product), random (seeded
//! draws from per-key distributions) and list (explicit override sets).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::train::config::overrides::split_key;

/// How the search space is explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Every combination of the listed values.
    Grid,
    /// `samples` seeded draws from per-key distributions.
    Random,
    /// The `[[search.trials]]` tables, one trial each.
    List,
    /// Multivariate TPE: `samples` trials, asked one at a time, learning from the finished ones.
    Tpe,
    /// A Gaussian process with log expected improvement: `samples` trials, asked one at a time.
    Gp,
    /// GP while the space and the trials so far suit it, TPE otherwise.
    Auto,
}

impl Method {
    /// True for methods that draw from distributions (random search and the adaptive ones).
    pub fn draws(self) -> bool {
        matches!(self, Method::Random) || self.adaptive()
    }

    /// True for the methods that learn from finished trials (tpe, gp, auto).
    pub fn adaptive(self) -> bool {
        matches!(self, Method::Tpe | Method::Gp | Method::Auto)
    }

    /// The name the spec writes.
    pub fn name(self) -> &'static str {
        match self {
            Method::Grid => "grid",
            Method::Random => "random",
            Method::List => "list",
            Method::Tpe => "tpe",
            Method::Gp => "gp",
            Method::Auto => "auto",
        }
    }
}

/// One searched key (or several keys varied together) and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The key as written in the spec (`"optimizer.lr"` or `"epochs,schedule.milestones"`).
    pub name: String,
    /// The dotted TrialConfig paths it sets.
    pub paths: Vec<Vec<String>>,
    /// What it draws from.
    pub domain: Domain,
}

/// The values an axis can take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// A list of points; each point gives one value per path.
    Choice(Vec<Vec<toml::Value>>),
    /// U(a, b).
    Uniform(f64, f64),
    /// exp(U(ln a, ln b)).
    LogUniform(f64, f64),
    /// A whole number in [a, b], uniformly.
    Int(i64, i64),
}

/// One point of the search space: the values of every searched path, plus an optional label.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    /// The values, in axis order.
    pub values: Vec<Assignment>,
    /// A human name for the point (list trials may give one).
    pub label: Option<String>,
}

/// One searched value: which TrialConfig key it sets, and where the spec says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The dotted TrialConfig key.
    pub key: String,
    /// The key's segments.
    pub path: Vec<String>,
    /// The value.
    pub value: toml::Value,
    /// Where in the spec this value comes from (for error lines).
    pub origin: Vec<String>,
}

/// A problem with one key of the search table: (path within the spec, message).
pub type SearchError = (Vec<String>, String);

impl Axis {
    /// Parses a `[search.params]` entry for `method`.
    pub fn parse(name: &str, value: &toml::Value, method: Method) -> Result<Self, SearchError> {
        let at = |msg: String| {
            (
                vec!["search".into(), "params".into(), name.to_string()],
                msg,
            )
        };
        let paths: Vec<Vec<String>> = name.split(',').map(|k| split_key(k.trim())).collect();
        if paths.iter().any(|p| p.iter().any(String::is_empty)) {
            return Err(at(
                "keys must be dotted TrialConfig paths like \"optimizer.lr\"".into(),
            ));
        }
        let domain = match value {
            toml::Value::Array(items) => {
                if items.is_empty() {
                    return Err(at("needs at least one value".into()));
                }
                let points = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        split_point(item, paths.len())
                            .map_err(|m| at(format!("value {}: {m}", i + 1)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Domain::Choice(points)
            }
            toml::Value::Table(t) if method.draws() => {
                if paths.len() != 1 {
                    return Err(at("keys varied together need a list of value tuples".into()));
                }
                parse_distribution(t).map_err(at)?
            }
            toml::Value::Table(_) => {
                return Err(at(
                    "distributions ({ uniform = [a, b] } ...) need method = \"random\" or \"tpe\"; grid axes are lists".into(),
                ));
            }
            other => {
                return Err(at(format!(
                    "must be a list of values (e.g. [0.01, 0.1]), found {}",
                    crate::text::a_type(other)
                )));
            }
        };
        Ok(Self {
            name: name.to_string(),
            paths,
            domain,
        })
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> Vec<toml::Value> {
        match &self.domain {
            Domain::Choice(points) => points[rng.random_range(0..points.len())].clone(),
            Domain::Uniform(a, b) => vec![toml::Value::Float(round_sig(rng.random_range(*a..=*b)))],
            Domain::LogUniform(a, b) => {
                let x = rng.random_range(a.ln()..=b.ln()).exp();
                vec![toml::Value::Float(round_sig(x))]
            }
            Domain::Int(a, b) => vec![toml::Value::Integer(rng.random_range(*a..=*b))],
        }
    }

    /// The axis and what it draws from, for people: `optimizer.lr: log_uniform [0.001, 0.1]`.
    pub fn describe(&self) -> String {
        let domain = match &self.domain {
            Domain::Uniform(a, b) => format!("uniform [{a:?}, {b:?}]"),
            Domain::LogUniform(a, b) => format!("log_uniform [{a:?}, {b:?}]"),
            Domain::Int(a, b) => format!("int [{a}, {b}]"),
            Domain::Choice(points) => {
                let shown: Vec<String> = points
                    .iter()
                    .map(|p| {
                        let v: Vec<String> = p.iter().map(crate::text::display_value).collect();
                        v.join(" & ")
                    })
                    .collect();
                format!("one of {}", shown.join(", "))
            }
        };
        format!("{}: {domain}", self.name)
    }

    /// The assignments of one value per path (a point of this axis).
    pub fn assignments(&self, values: Vec<toml::Value>) -> impl Iterator<Item = Assignment> + '_ {
        self.paths.iter().zip(values).map(|(p, value)| Assignment {
            key: p.join("."),
            path: p.clone(),
            value,
            origin: vec!["search".into(), "params".into(), self.name.clone()],
        })
    }
}

/// Six significant digits: random draws stay readable in tables and file names.
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 6 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A single value per path: as is for one path, a tuple (array) for several. A distribution
/// among the values is refused: a list holds fixed values, and keys varied together take them
/// together.
fn split_point(item: &toml::Value, n: usize) -> Result<Vec<toml::Value>, String> {
    let values = match item {
        _ if n == 1 => vec![item.clone()],
        toml::Value::Array(values) if values.len() == n => values.clone(),
        _ => {
            return Err(format!(
                "keys varied together need one value per key ({n}), e.g. [45, [20, 35]]"
            ));
        }
    };
    if let Some(d) = values.iter().find(|v| is_distribution(v)) {
        return Err(format!(
            "{d} is a distribution inside a list of fixed values, and would reach the trial as \
             text; a list (or keys joined by \",\") takes values only. Search the key on its own \
             line instead, e.g. \"momentum\" = {d}"
        ));
    }
    Ok(values)
}

/// True for a table that reads as a distribution: `{ uniform = [a, b] }` and the like.
fn is_distribution(v: &toml::Value) -> bool {
    v.as_table().is_some_and(|t| {
        t.len() == 1
            && t.keys()
                .all(|k| matches!(k.as_str(), "uniform" | "log_uniform" | "int"))
    })
}

fn parse_distribution(t: &toml::Table) -> Result<Domain, String> {
    let (kind, range) = match t.iter().collect::<Vec<_>>().as_slice() {
        [(k, v)] => (k.as_str(), *v),
        _ => return Err("a distribution is one of { uniform = [a, b] }, { log_uniform = [a, b] }, { int = [a, b] }".into()),
    };
    let bounds = range
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("{kind} needs a range [a, b]"))?;
    let float = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    match kind {
        "uniform" | "log_uniform" => {
            let (Some(a), Some(b)) = (float(&bounds[0]), float(&bounds[1])) else {
                return Err(format!("{kind} bounds must be numbers"));
            };
            if a >= b || a.is_nan() || b.is_nan() {
                return Err(format!("{kind} needs a < b, got [{a}, {b}]"));
            }
            if kind == "log_uniform" {
                if a <= 0.0 {
                    return Err(format!("log_uniform needs 0 < a, got [{a}, {b}]"));
                }
                Ok(Domain::LogUniform(a, b))
            } else {
                Ok(Domain::Uniform(a, b))
            }
        }
        "int" => {
            let (Some(a), Some(b)) = (bounds[0].as_integer(), bounds[1].as_integer()) else {
                return Err("int bounds must be whole numbers".into());
            };
            if a > b {
                return Err(format!("int needs a <= b, got [{a}, {b}]"));
            }
            Ok(Domain::Int(a, b))
        }
        other => Err(format!(
            "unknown distribution `{other}`; use uniform, log_uniform or int (or a list for a uniform choice)"
        )),
    }
}

/// Every combination of the axes' values; the first axis varies slowest.
pub fn grid(axes: &[Axis]) -> Vec<Point> {
    let mut points = vec![Point::default()];
    for axis in axes {
        let Domain::Choice(choices) = &axis.domain else {
            unreachable!("grid axes are parsed as lists")
        };
        points = points
            .into_iter()
            .flat_map(|p| {
                choices.iter().map(move |values| {
                    let mut p = p.clone();
                    p.values.extend(axis.assignments(values.clone()));
                    p
                })
            })
            .collect();
    }
    points
}

/// `samples` points drawn with a generator seeded by `seed` (same spec, same points).
pub fn random(axes: &[Axis], samples: usize, seed: u64) -> Vec<Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..samples)
        .map(|_| {
            let mut p = Point::default();
            for axis in axes {
                let values = axis.draw(&mut rng);
                p.values.extend(axis.assignments(values));
            }
            p
        })
        .collect()
}

/// The `[[search.trials]]` tables as points; nested tables are flattened to dotted paths and
/// an optional `label` names the trial.
pub fn list(trials: &[toml::Table]) -> Result<Vec<Point>, SearchError> {
    trials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = |key: &str, msg: String| (vec!["search".into(), "trials".into(), i.to_string(), key.to_string()], msg);
            let mut p = Point::default();
            for (key, value) in t {
                if key == "label" {
                    let label = value.as_str().ok_or_else(|| at(key, "label must be a string".into()))?;
                    p.label = Some(label.to_string());
                    continue;
                }
                let origin = vec!["search".into(), "trials".into(), i.to_string(), key.clone()];
                flatten(&split_key(key), value, &origin, &mut p.values);
            }
            if p.values.is_empty() && p.label.is_none() {
                return Err((vec!["search".into(), "trials".into(), i.to_string()], "an empty trial; give at least one key to override (or a label for the base itself)".into()));
            }
            Ok(p)
        })
        .collect()
}

fn flatten(prefix: &[String], value: &toml::Value, origin: &[String], out: &mut Vec<Assignment>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let mut path = prefix.to_vec();
                path.extend(split_key(k));
                flatten(&path, v, origin, out);
            }
        }
        v => out.push(Assignment {
            key: prefix.join("."),
            path: prefix.to_vec(),
            value: v.clone(),
            origin: origin.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(name: &str, toml_value: &str, method: Method) -> Axis {
        let v: toml::Table = format!("v = {toml_value}").parse().unwrap();
        Axis::parse(name, &v["v"], method).unwrap()
    }

    #[test]
    fn grid_is_the_cartesian_product_in_axis_order() {
        let axes = [
            axis("optimizer.lr", "[0.01, 0.1]", Method::Grid),
            axis(
                "schedule.milestones",
                "[[20, 35], [25, 50], [30]]",
                Method::Grid,
            ),
        ];
        let points = grid(&axes);
        assert_eq!(points.len(), 6);
        assert_eq!(points[0].values[0].value, toml::Value::Float(0.01));
        assert_eq!(
            points[1].values[1].value,
            "v = [25, 50]".parse::<toml::Table>().unwrap()["v"]
        );
        assert_eq!(points[3].values[0].value, toml::Value::Float(0.1));
    }

    #[test]
    fn keys_joined_by_commas_vary_together() {
        let a = axis(
            "epochs,schedule.milestones",
            "[[45, [20, 35]], [60, [25, 45]]]",
            Method::Grid,
        );
        let points = grid(&[a]);
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].values[0].key, "epochs");
        assert_eq!(points[1].values[0].value, toml::Value::Integer(60));
        assert_eq!(points[1].values[1].path, vec!["schedule", "milestones"]);
        assert_eq!(
            points[1].values[1].origin,
            vec!["search", "params", "epochs,schedule.milestones"]
        );
    }

    #[test]
    fn random_draws_are_seeded_and_within_their_distributions() {
        let axes = [
            axis(
                "optimizer.lr",
                "{ log_uniform = [0.001, 0.1] }",
                Method::Random,
            ),
            axis(
                "optimizer.momentum",
                "{ uniform = [0.8, 0.99] }",
                Method::Random,
            ),
            axis("epochs", "{ int = [2, 4] }", Method::Random),
            axis("model.batch_norm", "[true, false]", Method::Random),
        ];
        let a = random(&axes, 50, 3);
        assert_eq!(a, random(&axes, 50, 3));
        assert_ne!(a, random(&axes, 50, 4));
        for p in &a {
            let lr = p.values[0].value.as_float().unwrap();
            assert!((0.001..=0.1).contains(&lr));
            let m = p.values[1].value.as_float().unwrap();
            assert!((0.8..=0.99).contains(&m));
            let e = p.values[2].value.as_integer().unwrap();
            assert!((2..=4).contains(&e));
        }
        let epochs: std::collections::BTreeSet<_> = a
            .iter()
            .map(|p| p.values[2].value.as_integer().unwrap())
            .collect();
        assert_eq!(epochs.len(), 3, "every integer is drawn");
    }

    #[test]
    fn bad_axes_are_rejected_with_the_key() {
        let v: toml::Table = "e = []\nd = { uniform = [1, 0] }\nx = 3\nz = { normal = [0, 1] }"
            .parse()
            .unwrap();
        let err = Axis::parse("optimizer.lr", &v["e"], Method::Grid).unwrap_err();
        assert_eq!(err.0, vec!["search", "params", "optimizer.lr"]);
        assert!(err.1.contains("at least one value"));
        assert!(
            Axis::parse("k", &v["d"], Method::Random)
                .unwrap_err()
                .1
                .contains("a < b")
        );
        assert!(
            Axis::parse("k", &v["d"], Method::Grid)
                .unwrap_err()
                .1
                .contains("random")
        );
        assert!(
            Axis::parse("k", &v["x"], Method::Grid)
                .unwrap_err()
                .1
                .contains("list")
        );
        assert!(
            Axis::parse("k", &v["z"], Method::Random)
                .unwrap_err()
                .1
                .contains("unknown distribution")
        );
    }

    #[test]
    fn list_trials_flatten_nested_tables_and_keep_labels() {
        let t: toml::Table = "[[trials]]\nlabel = \"+DA\"\nepochs = 60\nschedule.milestones = [25, 45]\n\"optimizer.lr\" = 0.1\n".parse().unwrap();
        let trials: Vec<toml::Table> = t["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_table().unwrap().clone())
            .collect();
        let points = list(&trials).unwrap();
        assert_eq!(points[0].label.as_deref(), Some("+DA"));
        let keys: Vec<_> = points[0].values.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["epochs", "schedule.milestones", "optimizer.lr"]);
    }
}
