//! Which parameters mattered: PED-ANOVA (Watanabe et al., "PED-ANOVA: Efficiently Quantifying
//! Hyperparameter Importance in Arbitrary Subspaces", IJCAI 2023), Optuna's default
//! importance evaluator since 5.0.
//!
//! A parameter matters when the best trials' values of it are distributed differently from
//! all trials' values: its importance is the Pearson divergence between the two distributions,
//! `∫ q(x) (p(x)/q(x) - 1)² dx`, with `p` the density of the parameter over the top 10 % of
//! the completed trials and `q` over all of them, each estimated with Parzen windows (numbers)
//! or smoothed counts (choices). Importances are normalised to sum to 1.

use crate::trial::Objective;

/// The share of the best trials that defines "good" (Optuna's default target quantile).
const TOP: f64 = 0.1;
/// Grid points a numeric parameter's densities are compared on.
const STEPS: usize = 50;
/// Fewer completed trials than this say nothing about importance: the best two (the fewest
/// the "good" group holds, as in Optuna) must be fewer than all of them.
pub const MIN_TRIALS: usize = 3;
/// Below this many completed trials the importances are a rough guide, and the report says so.
pub const FEW_TRIALS: usize = 20;

/// One parameter's importance.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    /// The parameter (a column of the plan).
    pub column: String,
    /// Its share of the total divergence, in [0, 1].
    pub share: f64,
}

/// How a column's values are placed on an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// Numbers, linearly.
    Linear,
    /// Positive numbers spanning more than a factor of 20, by their logarithm.
    Log,
    /// Anything else: the distinct values, in order of first appearance.
    Categories(Vec<String>),
}

impl Scale {
    /// The scale that fits `values` (the cells of one column).
    pub fn of(values: &[&str]) -> Scale {
        let numbers: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
        match numbers {
            Some(xs) if !xs.is_empty() && xs.iter().all(|x| x.is_finite()) => {
                let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo > 0.0 && hi / lo > 20.0 {
                    Scale::Log
                } else {
                    Scale::Linear
                }
            }
            _ => {
                let mut cats: Vec<String> = Vec::new();
                for v in values {
                    if !cats.iter().any(|c| c == v) {
                        cats.push(v.to_string());
                    }
                }
                Scale::Categories(cats)
            }
        }
    }

    /// A cell's position on the axis (a category's index for categories).
    pub fn position(&self, value: &str) -> Option<f64> {
        match self {
            Scale::Linear => value.parse().ok(),
            Scale::Log => value.parse::<f64>().ok().filter(|v| *v > 0.0).map(f64::ln),
            Scale::Categories(c) => c.iter().position(|x| x == value).map(|i| i as f64),
        }
    }
}

/// The importance of each column over `trials`: (its cells aligned with `columns`, the
/// objective's value), completed trials only. Empty with fewer than [`MIN_TRIALS`] trials;
/// columns with a single value are left out.
pub fn ped_anova(
    columns: &[String],
    trials: &[(Vec<String>, f64)],
    objective: &Objective,
) -> Vec<Importance> {
    if trials.len() < MIN_TRIALS {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by(|&a, &b| objective.cmp(trials[a].1, trials[b].1));
    let n_top = ((trials.len() as f64 * TOP).ceil() as usize).max(2);
    let top: Vec<usize> = order[..n_top].to_vec();
    let mut raw: Vec<(String, f64)> = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        let cells: Vec<&str> = trials.iter().map(|t| t.0[c].as_str()).collect();
        let scale = Scale::of(&cells);
        let xs: Vec<f64> = cells.iter().filter_map(|v| scale.position(v)).collect();
        if xs.len() != cells.len() {
            continue;
        }
        let top_xs: Vec<f64> = top.iter().map(|&i| xs[i]).collect();
        let divergence = match &scale {
            Scale::Categories(cats) if cats.len() < 2 => continue,
            Scale::Categories(cats) => {
                let p = smoothed_counts(&top_xs, cats.len());
                let q = smoothed_counts(&xs, cats.len());
                pearson(&p, &q)
            }
            _ => {
                let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if hi <= lo {
                    continue;
                }
                let grid: Vec<f64> = (0..STEPS)
                    .map(|i| lo + (hi - lo) * i as f64 / (STEPS - 1) as f64)
                    .collect();
                let p = parzen(&top_xs, &grid, hi - lo);
                let q = parzen(&xs, &grid, hi - lo);
                pearson(&p, &q)
            }
        };
        raw.push((column.clone(), divergence));
    }
    let total: f64 = raw.iter().map(|r| r.1).sum();
    let mut out: Vec<Importance> = raw
        .into_iter()
        .map(|(column, d)| Importance {
            column,
            share: if total > 0.0 { d / total } else { 0.0 },
        })
        .collect();
    out.sort_by(|a, b| b.share.total_cmp(&a.share));
    out
}

/// Counts per category, each plus one (the prior), normalised.
fn smoothed_counts(xs: &[f64], n: usize) -> Vec<f64> {
    let mut counts = vec![1.0; n];
    for &x in xs {
        counts[x as usize] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total).collect()
}

/// A Gaussian Parzen estimate of `xs` on `grid` (Scott's bandwidth, at least 1/50 of the
/// range), normalised over the grid.
fn parzen(xs: &[f64], grid: &[f64], range: f64) -> Vec<f64> {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let h = (1.06 * sd * n.powf(-0.2)).max(range / 50.0);
    let density: Vec<f64> = grid
        .iter()
        .map(|g| {
            xs.iter()
                .map(|x| (-0.5 * ((g - x) / h).powi(2)).exp())
                .sum()
        })
        .collect();
    let total: f64 = density.iter().sum();
    density.iter().map(|d| d / total).collect()
}

/// Σ q (p/q - 1)² over matching points of two distributions.
fn pearson(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(_, q)| **q > 1e-12)
        .map(|(p, q)| q * (p / q - 1.0).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_parameter_that_drives_the_objective_is_the_important_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let columns = vec!["lr".to_string(), "noise".to_string(), "kind".to_string()];
        let trials: Vec<(Vec<String>, f64)> = (0..60)
            .map(|_| {
                let lr: f64 = 10f64.powf(rng.random_range(-4.0..0.0));
                let noise: f64 = rng.random_range(0.0..1.0);
                let kind = ["a", "b"][rng.random_range(0..2)];
                let value = 99.0 - (lr.log10() + 2.0).powi(2) + 0.01 * noise;
                (
                    vec![lr.to_string(), noise.to_string(), kind.to_string()],
                    value,
                )
            })
            .collect();
        let imp = ped_anova(&columns, &trials, &Objective::test_acc());
        assert_eq!(imp[0].column, "lr", "{imp:?}");
        assert!(imp[0].share > 0.6, "{imp:?}");
        let total: f64 = imp.iter().map(|i| i.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(ped_anova(&columns, &trials[..2], &Objective::test_acc()).is_empty());
        assert!(!ped_anova(&columns, &trials[..3], &Objective::test_acc()).is_empty());
    }

    #[test]
    fn scales_follow_the_values() {
        assert_eq!(Scale::of(&["0.001", "0.1"]), Scale::Log);
        assert_eq!(Scale::of(&["0.5", "0.9"]), Scale::Linear);
        assert_eq!(
            Scale::of(&["[20, 35]", "[25, 45]", "[20, 35]"]),
            Scale::Categories(vec!["[20, 35]".into(), "[25, 45]".into()])
        );
        assert_eq!(Scale::Log.position("1"), Some(0.0));
    }
}
