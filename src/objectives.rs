//! Several objectives at once (`objectives = [...]` in a spec), the constraints a trial must
//! meet to count (`constraints = ["train_seconds <= 600"]`), and the rule that picks the one
//! trial `best/` holds (`select = "max val_acc where train_seconds <= 600"`). Constraints and
//! rules are written and journalled as the text a person wrote.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pareto::Point;
use crate::trial::{Metrics, Mode, Objective};

/// The objectives of a multi-objective sweep, its constraints and its selection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objectives {
    /// Two or more; the first also picks each trial's kept epoch (its checkpoint).
    pub objectives: Vec<Objective>,
    /// What a feasible trial meets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Bound>,
    /// Which trial `best/` holds; None: the knee of the front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selection>,
}

impl Objectives {
    /// The point a trial's metrics (at its kept epoch) make: one loss per objective (None
    /// when one is not reported) and its total constraint violation.
    pub fn point(&self, metrics: &Metrics) -> Option<Point> {
        let losses = self
            .objectives
            .iter()
            .map(|o| {
                o.value(metrics).map(|v| match o.mode {
                    Mode::Min => v,
                    Mode::Max => -v,
                })
            })
            .collect::<Option<Vec<f64>>>()?;
        Some(Point {
            losses,
            violation: self.violation(metrics),
        })
    }

    /// How much `metrics` exceed the constraints, summed (0: feasible). A constraint on a
    /// metric the trial did not report is violated infinitely.
    pub fn violation(&self, metrics: &Metrics) -> f64 {
        violation(&self.constraints, metrics)
    }

    /// The rule for `best/`, in words.
    pub fn describe_selection(&self) -> String {
        match &self.select {
            Some(s) => format!("select = \"{s}\""),
            None => "the knee of the front (no select rule)".into(),
        }
    }

    /// Names every metric the objectives, constraints and rule read.
    pub fn metrics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.objectives.iter().map(|o| o.metric.as_str()).collect();
        out.extend(self.constraints.iter().map(|c| c.metric.as_str()));
        if let Some(s) = &self.select {
            out.push(s.objective.metric.as_str());
            out.extend(s.conditions.iter().map(|c| c.metric.as_str()));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// What ranks a sweep's trials, for people: the objective with the constraints of a
/// single-objective sweep, or the objectives with their constraints and the rule for `best/`.
pub fn ranking(
    objective: &Objective,
    objectives: Option<&Objectives>,
    constraints: &[Bound],
) -> String {
    let Some(o) = objectives else {
        if constraints.is_empty() {
            return objective.to_string();
        }
        return format!("{objective} subject to {}", conjunction(constraints));
    };
    let mut out = format!(
        "the Pareto front of {}",
        o.objectives
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !o.constraints.is_empty() {
        out.push_str(&format!(" subject to {}", conjunction(&o.constraints)));
    }
    out.push_str(&format!("; best/ holds {}", o.describe_selection()));
    out
}

/// Constraints joined by "and".
fn conjunction(constraints: &[Bound]) -> String {
    constraints
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// How much `metrics` exceed `constraints`, summed (0: feasible). A constraint on a metric the
/// trial did not report is violated infinitely.
pub fn violation(constraints: &[Bound], metrics: &Metrics) -> f64 {
    // A fold from +0: `sum` of no f64 starts at -0, which a leaderboard prints as "-0".
    constraints
        .iter()
        .fold(0.0, |total, c| total + c.excess(metrics, None))
}

/// `<=` or `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// At most.
    AtMost,
    /// At least.
    AtLeast,
}

/// The right-hand side of a bound: a number, or relative to the best value among the
/// candidates (`best - 0.1`), for selection rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// A fixed number.
    Value(f64),
    /// The best value of the metric among the candidates, plus this (negative: minus).
    FromBest(f64),
}

/// `metric <= limit` or `metric >= limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bound {
    /// The metric.
    pub metric: String,
    /// Its direction.
    pub op: Op,
    /// The limit.
    pub limit: Limit,
}

impl Bound {
    /// By how much `metrics` exceed this bound (0: met); `best` is the value a
    /// [`Limit::FromBest`] is relative to.
    pub fn excess(&self, metrics: &Metrics, best: Option<f64>) -> f64 {
        let Some(v) = metrics.get(&self.metric).filter(|v| v.is_finite()) else {
            return f64::INFINITY;
        };
        let limit = match self.limit {
            Limit::Value(x) => x,
            Limit::FromBest(d) => match best {
                Some(b) => b + d,
                None => return f64::INFINITY,
            },
        };
        let excess = match self.op {
            Op::AtMost => v - limit,
            Op::AtLeast => limit - v,
        };
        // Within rounding of the limit counts as meeting it (99.4 - 0.1 is not quite 99.3).
        if excess <= 1e-9 * limit.abs().max(1.0) {
            0.0
        } else {
            excess
        }
    }

    /// The bound as Optuna's constrained samplers record it: `value - limit` for `<=`,
    /// `limit - value` for `>=` (<= 0: met); None when the metric is missing or the limit
    /// is relative.
    pub fn signed_excess(&self, metrics: &Metrics) -> Option<f64> {
        let v = metrics.get(&self.metric).filter(|v| v.is_finite())?;
        let Limit::Value(limit) = self.limit else {
            return None;
        };
        Some(match self.op {
            Op::AtMost => v - limit,
            Op::AtLeast => limit - v,
        })
    }

    /// Parses `metric <= 600`, `metric >= 1e-3` (and, when `relative`, `metric >= best - 0.1`).
    pub fn parse(text: &str, relative: bool) -> Result<Self, String> {
        let (metric, op, rest) = if let Some((m, r)) = text.split_once("<=") {
            (m, Op::AtMost, r)
        } else if let Some((m, r)) = text.split_once(">=") {
            (m, Op::AtLeast, r)
        } else {
            return Err(format!(
                "`{text}`: expected `metric <= number` or `metric >= number`"
            ));
        };
        let metric = metric.trim();
        if metric.is_empty() || metric.contains(char::is_whitespace) {
            return Err(format!("`{text}`: `{metric}` is not a metric name"));
        }
        let rest = rest.trim();
        // `150000 >= params`: the number came first.
        if metric.parse::<f64>().is_ok() && rest.parse::<f64>().is_err() {
            let flipped = match op {
                Op::AtMost => ">=",
                Op::AtLeast => "<=",
            };
            return Err(format!(
                "`{text}`: put the metric first, e.g. `{rest} {flipped} {metric}`"
            ));
        }
        let limit = match rest.strip_prefix("best") {
            Some(offset) if relative => {
                let offset = offset.trim();
                let d = if offset.is_empty() {
                    0.0
                } else if let Some(x) = offset.strip_prefix('-') {
                    -number(x, text)?
                } else if let Some(x) = offset.strip_prefix('+') {
                    number(x, text)?
                } else {
                    return Err(format!(
                        "`{text}`: expected `best - number` or `best + number`"
                    ));
                };
                Limit::FromBest(d)
            }
            Some(_) => {
                return Err(format!(
                    "`{text}`: `best` is allowed only in a select rule's conditions"
                ));
            }
            None => Limit::Value(number(rest, text)?),
        };
        Ok(Self {
            metric: metric.to_string(),
            op,
            limit,
        })
    }
}

fn number(s: &str, text: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{text}`: `{}` is not a number", s.trim()))
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::AtMost => "<=",
            Op::AtLeast => ">=",
        };
        match self.limit {
            Limit::Value(x) => write!(f, "{} {op} {x}", self.metric),
            Limit::FromBest(d) if d < 0.0 => write!(f, "{} {op} best - {}", self.metric, -d),
            Limit::FromBest(d) if d > 0.0 => write!(f, "{} {op} best + {d}", self.metric),
            Limit::FromBest(_) => write!(f, "{} {op} best", self.metric),
        }
    }
}

impl TryFrom<String> for Bound {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Bound::parse(&s, true)
    }
}

impl From<Bound> for String {
    fn from(b: Bound) -> String {
        b.to_string()
    }
}

/// `max val_acc where train_seconds <= 600 and ...`: among the feasible completed trials
/// that meet the conditions, the one with the best value of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selection {
    /// What is maximised or minimised.
    pub objective: Objective,
    /// What the chosen trial meets (`best` here is the best value of that condition's metric
    /// among the candidates, in its objective's direction).
    pub conditions: Vec<Bound>,
}

impl Selection {
    /// Parses the rule's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (head, conditions) = match text.split_once(" where ") {
            Some((h, c)) => (h, Some(c)),
            None => (text, None),
        };
        let mut words = head.split_whitespace();
        let mode = match words.next() {
            Some("max") => Mode::Max,
            Some("min") => Mode::Min,
            _ => {
                return Err(format!(
                    "`{text}`: a rule starts with `max METRIC` or `min METRIC`, then optionally `where METRIC <= NUMBER and ...`"
                ));
            }
        };
        let (Some(metric), None) = (words.next(), words.next()) else {
            return Err(format!(
                "`{text}`: expected one metric after `{}`",
                head.split_whitespace().next().unwrap_or_default()
            ));
        };
        let conditions = match conditions {
            Some(c) => c
                .split(" and ")
                .map(|b| Bound::parse(b, true))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            objective: Objective {
                metric: metric.to_string(),
                mode,
            },
            conditions,
        })
    }

    /// Picks one of `candidates` (a name and the metrics at its kept epoch), or says why none
    /// qualifies. `direction` gives the mode of a metric that a `best` condition refers to.
    pub fn choose<'a, T>(
        &self,
        candidates: &'a [(T, &'a Metrics)],
        direction: &dyn Fn(&str) -> Option<Mode>,
    ) -> Result<&'a T, String> {
        let mut pool: Vec<&(T, &Metrics)> = candidates.iter().collect();
        for c in &self.conditions {
            let best = match c.limit {
                Limit::FromBest(_) => {
                    let mode = direction(&c.metric).ok_or_else(|| {
                        format!("`{c}`: `best` needs `{}` to be an objective", c.metric)
                    })?;
                    let o = Objective {
                        metric: c.metric.clone(),
                        mode,
                    };
                    pool.iter()
                        .filter_map(|(_, m)| o.value(m))
                        .min_by(|a, b| o.cmp(*a, *b))
                }
                Limit::Value(_) => None,
            };
            pool.retain(|(_, m)| c.excess(m, best) == 0.0);
        }
        pool.into_iter()
            .filter_map(|(t, m)| self.objective.value(m).map(|v| (t, v)))
            .min_by(|a, b| self.objective.cmp(a.1, b.1))
            .map(|(t, _)| t)
            .ok_or_else(|| {
                format!(
                    "no feasible completed trial meets select = \"{self}\"{}",
                    if candidates.is_empty() {
                        String::new()
                    } else {
                        format!(" (of {})", candidates.len())
                    }
                )
            })
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.objective.mode {
            Mode::Max => "max",
            Mode::Min => "min",
        };
        write!(f, "{mode} {}", self.objective.metric)?;
        for (i, c) in self.conditions.iter().enumerate() {
            write!(f, "{}{c}", if i == 0 { " where " } else { " and " })?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Selection {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Selection::parse(&s)
    }
}

impl From<Selection> for String {
    fn from(s: Selection) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, f64)]) -> Metrics {
        let mut out = Metrics::new();
        for (k, v) in pairs {
            out.set(k, *v);
        }
        out
    }

    #[test]
    fn constraints_parse_print_and_measure_their_excess() {
        let c = Bound::parse("train_seconds <= 600", false).unwrap();
        assert_eq!(c.to_string(), "train_seconds <= 600");
        assert_eq!(c.excess(&m(&[("train_seconds", 650.0)]), None), 50.0);
        assert_eq!(c.excess(&m(&[("train_seconds", 600.0)]), None), 0.0);
        assert_eq!(c.excess(&m(&[]), None), f64::INFINITY, "not reported");
        let p = Bound::parse("params>=2e6", false).unwrap();
        assert_eq!(p.excess(&m(&[("params", 1.5e6)]), None), 5e5);
        assert!(Bound::parse("val_acc >= best - 0.1", false).is_err());
        assert!(Bound::parse("val acc <= 3", false).is_err());
        assert!(Bound::parse("val_acc < 3", false).is_err());
        assert!(Bound::parse("val_acc <= fast", false).is_err());
        assert_eq!(
            Bound::parse("150000 >= params", false).unwrap_err(),
            "`150000 >= params`: put the metric first, e.g. `params <= 150000`"
        );
    }

    #[test]
    fn a_rule_picks_the_fastest_trial_within_a_tenth_of_the_best() {
        let s = Selection::parse("min train_seconds where val_acc >= best - 0.1").unwrap();
        assert_eq!(
            s.to_string(),
            "min train_seconds where val_acc >= best - 0.1"
        );
        let a = m(&[("val_acc", 99.40), ("train_seconds", 300.0)]);
        let b = m(&[("val_acc", 99.32), ("train_seconds", 200.0)]);
        let c = m(&[("val_acc", 99.0), ("train_seconds", 100.0)]);
        let cands = [("a", &a), ("b", &b), ("c", &c)];
        let max = |_: &str| Some(Mode::Max);
        assert_eq!(*s.choose(&cands, &max).unwrap(), "b");
        let strict = Selection::parse("max val_acc where train_seconds <= 50").unwrap();
        let err = strict.choose(&cands, &max).unwrap_err();
        assert!(err.contains("no feasible completed trial"), "{err}");
        assert!(Selection::parse("fastest").is_err());
        assert!(Selection::parse("max val_acc train_seconds").is_err());
    }

    #[test]
    fn a_point_negates_maximised_objectives_and_sums_violations() {
        let o = Objectives {
            objectives: vec![
                Objective::new("val_acc", Some(Mode::Max)).unwrap(),
                Objective::new("train_seconds", Some(Mode::Min)).unwrap(),
            ],
            constraints: vec![
                Bound::parse("train_seconds <= 100", false).unwrap(),
                Bound::parse("params <= 10", false).unwrap(),
            ],
            select: None,
        };
        let p = o
            .point(&m(&[
                ("val_acc", 98.0),
                ("train_seconds", 120.0),
                ("params", 12.0),
            ]))
            .unwrap();
        assert_eq!(p.losses, [-98.0, 120.0]);
        assert_eq!(p.violation, 22.0);
        assert!(o.point(&m(&[("val_acc", 98.0)])).is_none());
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"train_seconds <= 100\""), "{json}");
        assert_eq!(serde_json::from_str::<Objectives>(&json).unwrap(), o);
    }
}
