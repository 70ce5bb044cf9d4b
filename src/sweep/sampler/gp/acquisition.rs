//! Log expected improvement (Ament et al. 2023, "Unexpected Improvements to Expected
//! Improvement"), and its maximisation over the unit cube: scrambled Sobol candidates first,
//! then quasi-Newton from the best of them, a few more drawn in proportion to their value, and
//! the best point observed, as Optuna's GPSampler does. Categorical dimensions are searched
//! choice by choice between the quasi-Newton steps. With constraints, log EI is added to the
//! log probability that each constraint is met ([`Acquisition`]), as Optuna's constrained
//! log EI: the improvement counts only where the trial would be feasible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::lbfgsb::{self, Stop};
use super::model::Gp;
use crate::sweep::sampler::sobol::Sobol;

/// A dimension of the unit cube the acquisition is maximised over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Axis {
    /// A coordinate in [0, 1] (an integer of many values too: it is rounded afterwards).
    Continuous,
    /// An integer of few values: one of `n` evenly spaced points of [0, 1] (the centres of
    /// its n cells), searched point by point rather than relaxed and rounded, since EI is
    /// often highest between two grid points, where no trial can go.
    Discrete(usize),
    /// One of `n` choices, as the index 0..n.
    Categorical(usize),
}

impl Axis {
    /// The values this axis may take, when they are few (discrete and categorical axes).
    fn choices(&self) -> Option<Vec<f64>> {
        match *self {
            Axis::Continuous => None,
            Axis::Discrete(n) => Some((0..n).map(|k| (k as f64 + 0.5) / n as f64).collect()),
            Axis::Categorical(n) => Some((0..n).map(|k| k as f64).collect()),
        }
    }
}

/// Candidates the acquisition is first evaluated at (Optuna's default).
const CANDIDATES: u64 = 2048;
/// Local searches at most (Optuna's default).
const STARTS: usize = 10;
/// Rounds of quasi-Newton steps and categorical searches per local search.
const ROUNDS: usize = 10;

/// Log EI of the GP at `x`: the log of E[max(0, f(x) − best)], and its gradient in the
/// continuous coordinates `grad_dims`.
pub fn log_ei(gp: &Gp, best: f64, x: &[f64], grad_dims: &[usize]) -> (f64, Vec<f64>) {
    let post = gp.posterior(x, grad_dims);
    let var = post.var.max(1e-12);
    let sigma = var.sqrt();
    let z = (post.mean - best) / sigma;
    let (log_h, dlog_h) = log_h(z);
    let value = log_h + sigma.ln();
    let mut grad = vec![0.0; x.len()];
    if post.var > 1e-12 {
        for &i in grad_dims {
            let d_sigma = post.d_var[i] / (2.0 * sigma);
            let dz = post.d_mean[i] / sigma - z * d_sigma / sigma;
            grad[i] = dlog_h * dz + d_sigma / sigma;
        }
    } else {
        for &i in grad_dims {
            grad[i] = dlog_h * post.d_mean[i] / sigma;
        }
    }
    (value, grad)
}

/// What the next point maximises: log EI of the objective's GP over the best feasible value
/// (none yet: no EI term), plus, per modelled constraint, the log probability that its GP
/// stays at or below the threshold (the standardised 0 of a constraint's excess).
pub struct Acquisition<'a> {
    /// The objective's GP (larger is better).
    pub objective: &'a Gp,
    /// The best feasible value observed (standardised); None when no trial was feasible.
    pub best: Option<f64>,
    /// Each constraint's GP of its excess, with the standardised excess that is met exactly.
    pub constraints: Vec<(Gp, f64)>,
}

impl Acquisition<'_> {
    /// The acquisition at `x`, and its gradient in the continuous coordinates `grad_dims`.
    pub fn value(&self, x: &[f64], grad_dims: &[usize]) -> (f64, Vec<f64>) {
        let (mut value, mut grad) = match self.best {
            Some(best) => log_ei(self.objective, best, x, grad_dims),
            None => (0.0, vec![0.0; x.len()]),
        };
        for (gp, threshold) in &self.constraints {
            let (v, g) = log_pof(gp, *threshold, x, grad_dims);
            value += v;
            for &i in grad_dims {
                grad[i] += g[i];
            }
        }
        (value, grad)
    }
}

/// log P(f(x) ≤ threshold) under the GP, and its gradient in `grad_dims`.
pub fn log_pof(gp: &Gp, threshold: f64, x: &[f64], grad_dims: &[usize]) -> (f64, Vec<f64>) {
    let post = gp.posterior(x, grad_dims);
    let sigma = post.var.max(1e-12).sqrt();
    let z = (threshold - post.mean) / sigma;
    let (log_cdf, dlog_cdf) = log_ndtr(z);
    let mut grad = vec![0.0; x.len()];
    for &i in grad_dims {
        let d_sigma = if post.var > 1e-12 {
            post.d_var[i] / (2.0 * sigma)
        } else {
            0.0
        };
        let dz = -post.d_mean[i] / sigma - z * d_sigma / sigma;
        grad[i] = dlog_cdf * dz;
    }
    (log_cdf, grad)
}

/// log Φ(z) and its derivative φ(z)/Φ(z), computed stably far into the left tail.
fn log_ndtr(z: f64) -> (f64, f64) {
    const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    if z > -25.0 {
        let cdf = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
        let pdf = (-0.5 * z * z - LOG_SQRT_2PI).exp();
        return (cdf.ln(), pdf / cdf);
    }
    // Φ(z) = φ(z)/(−z) · s, s from its asymptotic series in u = 1/z² (exact to f64 here).
    let u = 1.0 / (z * z);
    let s = 1.0 - u + 3.0 * u * u - 15.0 * u.powi(3) + 105.0 * u.powi(4);
    (-0.5 * z * z - LOG_SQRT_2PI - (-z).ln() + s.ln(), -z / s)
}

/// log h(z), h(z) = φ(z) + zΦ(z) (the expected improvement of a standard normal over −z), and
/// its derivative Φ(z)/h(z), computed stably far into the left tail.
fn log_h(z: f64) -> (f64, f64) {
    const LOG_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    if z > -25.0 {
        let cdf = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
        let pdf = (-0.5 * z * z - LOG_SQRT_2PI).exp();
        let h = z * cdf + pdf;
        return (h.ln(), cdf / h);
    }
    // Φ(z)/φ(z) = r and 1 + z r, from their asymptotic series in u = 1/z² (exact to f64 here).
    let u = 1.0 / (z * z);
    let r = -(1.0 / z) * (1.0 - u + 3.0 * u * u - 15.0 * u.powi(3) + 105.0 * u.powi(4));
    let one_plus_zr = u * (1.0 - 3.0 * u + 15.0 * u * u - 105.0 * u.powi(3) + 945.0 * u.powi(4));
    (
        -0.5 * z * z - LOG_SQRT_2PI + one_plus_zr.ln(),
        r / one_plus_zr,
    )
}

/// The point of the unit cube (`axes`) with the largest acquisition, searched from
/// scrambled Sobol candidates (seeded by `seed`), and from `warm` (the best points observed).
pub fn maximise(acq: &Acquisition, axes: &[Axis], warm: &[Vec<f64>], seed: u64) -> Vec<f64> {
    let sobol = Sobol::new(axes.len(), Some(seed));
    let candidates: Vec<Vec<f64>> = (0..CANDIDATES)
        .map(|i| {
            let u = sobol.point(i);
            axes.iter()
                .zip(u)
                .map(|(a, u)| match a {
                    Axis::Continuous => u,
                    Axis::Discrete(n) => ((u * *n as f64).floor() + 0.5) / *n as f64,
                    Axis::Categorical(n) => (u * *n as f64).floor(),
                })
                .collect()
        })
        .collect();
    let values: Vec<f64> = candidates.iter().map(|c| acq.value(c, &[]).0).collect();
    let top = values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .expect("candidates");
    // The best candidate, then others drawn with probability exp(value − best value), then
    // the warm starts: STARTS local searches at most.
    let mut starts = vec![candidates[top].clone()];
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut weights: Vec<f64> = values.iter().map(|v| (v - values[top]).exp()).collect();
    weights[top] = 0.0;
    let extra = STARTS.saturating_sub(1 + warm.len());
    for _ in 0..extra {
        let total: f64 = weights.iter().sum();
        if total.is_nan() || total <= 0.0 {
            break;
        }
        let mut u = rng.random::<f64>() * total;
        let chosen = weights
            .iter()
            .position(|w| {
                u -= w;
                u <= 0.0
            })
            .unwrap_or(weights.len() - 1);
        starts.push(candidates[chosen].clone());
        weights[chosen] = 0.0;
    }
    starts.extend(warm.iter().cloned());
    let continuous: Vec<usize> = (0..axes.len())
        .filter(|&i| axes[i] == Axis::Continuous)
        .collect();
    let lengths: Vec<f64> = acq
        .objective
        .kernel()
        .inv_sq_lengths
        .iter()
        .map(|l| 1.0 / l.sqrt())
        .collect();
    starts
        .into_iter()
        .map(|x| local_search(acq, axes, &continuous, &lengths, x))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(x, _)| x)
        .expect("at least one start")
}

/// From `x`: quasi-Newton steps on the continuous coordinates (each scaled by its length
/// scale, so that the problem is equally curved in every direction), then each discrete and
/// categorical dimension set to its best value, until a round changes none.
fn local_search(
    acq: &Acquisition,
    axes: &[Axis],
    continuous: &[usize],
    lengths: &[f64],
    mut x: Vec<f64>,
) -> (Vec<f64>, f64) {
    let mut value = acq.value(&x, &[]).0;
    for _ in 0..ROUNDS {
        if !continuous.is_empty() {
            let scaled: Vec<f64> = continuous.iter().map(|&i| x[i] / lengths[i]).collect();
            let hi: Vec<f64> = continuous.iter().map(|&i| 1.0 / lengths[i]).collect();
            let lo = vec![0.0; continuous.len()];
            let base = x.clone();
            let negative = |z: &[f64]| {
                let mut p = base.clone();
                for (k, &i) in continuous.iter().enumerate() {
                    p[i] = (z[k] * lengths[i]).clamp(0.0, 1.0);
                }
                let (v, g) = acq.value(&p, continuous);
                let grad = continuous.iter().map(|&i| -g[i] * lengths[i]).collect();
                (-v, grad)
            };
            let stop = Stop {
                max_iter: 200,
                pgtol: 1e-2,
                ftol: 1e-12,
            };
            let (z, neg) = lbfgsb::minimise(negative, &scaled, &lo, &hi, stop);
            if -neg > value {
                value = -neg;
                for (k, &i) in continuous.iter().enumerate() {
                    x[i] = (z[k] * lengths[i]).clamp(0.0, 1.0);
                }
            }
        }
        let mut changed = false;
        for (i, axis) in axes.iter().enumerate() {
            let Some(choices) = axis.choices() else {
                continue;
            };
            for choice in choices {
                let mut y = x.clone();
                y[i] = choice;
                let v = acq.value(&y, &[]).0;
                if v > value {
                    value = v;
                    x = y;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (x, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_h_is_continuous_where_its_two_forms_meet_and_its_derivative_is_right() {
        let (a, da) = log_h(-25.0 + 1e-9);
        let (b, db) = log_h(-25.0 - 1e-9);
        assert!((a - b).abs() < 1e-6, "{a} {b}");
        assert!((da - db).abs() < 1e-4 * da.abs(), "{da} {db}");
        for z in [-40.0, -10.0, -1.0, 0.0, 2.0] {
            let h = 1e-6;
            let numeric = (log_h(z + h).0 - log_h(z - h).0) / (2.0 * h);
            assert!(
                (numeric - log_h(z).1).abs() < 1e-5 * numeric.abs().max(1.0),
                "{z}"
            );
        }
        // h(0) = φ(0).
        assert!((log_h(0.0).0 - (1.0 / (2.0 * std::f64::consts::PI).sqrt()).ln()).abs() < 1e-12);
    }

    #[test]
    fn the_maximiser_finds_the_known_optimum_of_a_one_dimensional_function() {
        // Observations of -(x - 0.73)² near but not at the optimum: EI peaks between them,
        // close to 0.73.
        let x: Vec<Vec<f64>> = [0.1, 0.3, 0.5, 0.65, 0.8, 0.95]
            .iter()
            .map(|v| vec![*v])
            .collect();
        let y: Vec<f64> = x.iter().map(|p| -(p[0] - 0.73).powi(2) * 10.0).collect();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        let y: Vec<f64> = y.iter().map(|v| (v - mean) / sd).collect();
        let best = y.iter().copied().fold(f64::MIN, f64::max);
        let gp = Gp::fit(x, &y, vec![false]);
        let acq = Acquisition {
            objective: &gp,
            best: Some(best),
            constraints: Vec::new(),
        };
        let p = maximise(&acq, &[Axis::Continuous], &[vec![0.8]], 3);
        assert!((p[0] - 0.73).abs() < 0.05, "{p:?}");
        // No candidate on a fine grid beats what it found.
        let found = log_ei(&gp, best, &p, &[]).0;
        for i in 0..=1000 {
            let v = log_ei(&gp, best, &[i as f64 / 1000.0], &[]).0;
            assert!(v <= found + 1e-6, "{i}: {v} > {found}");
        }
    }

    #[test]
    fn log_eis_gradient_matches_finite_differences() {
        let x: Vec<Vec<f64>> = (0..8)
            .map(|i| vec![i as f64 / 8.0, ((i * 5) % 8) as f64 / 8.0])
            .collect();
        let y: Vec<f64> = x.iter().map(|p| (4.0 * p[0]).sin() - p[1]).collect();
        let gp = Gp::fit(x, &y, vec![false, false]);
        let p = [0.41, 0.77];
        let (_, g) = log_ei(&gp, 0.9, &p, &[0, 1]);
        for i in 0..2 {
            let h = 1e-6;
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let numeric =
                (log_ei(&gp, 0.9, &up, &[]).0 - log_ei(&gp, 0.9, &down, &[]).0) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-4 * numeric.abs().max(1.0),
                "{i}: {numeric} {}",
                g[i]
            );
        }
    }

    #[test]
    fn log_ndtr_is_continuous_where_its_two_forms_meet_and_its_derivative_is_right() {
        let (a, da) = log_ndtr(-25.0 + 1e-9);
        let (b, db) = log_ndtr(-25.0 - 1e-9);
        assert!((a - b).abs() < 1e-6, "{a} {b}");
        assert!((da - db).abs() < 1e-4 * da.abs(), "{da} {db}");
        for z in [-40.0, -10.0, -1.0, 0.0, 3.0] {
            let h = 1e-6;
            let numeric = (log_ndtr(z + h).0 - log_ndtr(z - h).0) / (2.0 * h);
            assert!(
                (numeric - log_ndtr(z).1).abs() < 1e-5 * numeric.abs().max(1.0),
                "{z}"
            );
        }
        assert!((log_ndtr(0.0).0 - 0.5f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_constraint_moves_the_maximum_into_the_feasible_region_with_the_right_gradient() {
        // The objective rises with x; the constraint's excess x − 0.5 must stay ≤ 0. Without
        // the constraint EI peaks at the right end; with it, just inside 0.5.
        let x: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64 / 7.0]).collect();
        let (y, ..) = super::super::standardise(&x.iter().map(|p| p[0]).collect::<Vec<_>>());
        let (excess, mean, sd) =
            super::super::standardise(&x.iter().map(|p| p[0] - 0.5).collect::<Vec<_>>());
        let threshold = -mean / sd;
        let objective = Gp::fit(x.clone(), &y, vec![false]);
        let feasible_best = y[3]; // x = 3/7, the largest feasible
        let free = Acquisition {
            objective: &objective,
            best: Some(feasible_best),
            constraints: Vec::new(),
        };
        let constrained = Acquisition {
            objective: &objective,
            best: Some(feasible_best),
            constraints: vec![(Gp::fit(x, &excess, vec![false]), threshold)],
        };
        let unconstrained = maximise(&free, &[Axis::Continuous], &[], 5);
        assert!(unconstrained[0] > 0.9, "{unconstrained:?}");
        let p = maximise(&constrained, &[Axis::Continuous], &[], 5);
        assert!((0.4..0.6).contains(&p[0]), "{p:?}");
        let at = [0.47];
        let (_, g) = constrained.value(&at, &[0]);
        let h = 1e-6;
        let numeric = (constrained.value(&[at[0] + h], &[]).0
            - constrained.value(&[at[0] - h], &[]).0)
            / (2.0 * h);
        assert!(
            (numeric - g[0]).abs() < 1e-4 * numeric.abs().max(1.0),
            "{numeric} {g:?}"
        );
    }

    #[test]
    fn a_discrete_axis_is_searched_on_its_grid_where_relaxing_it_would_ask_between_points() {
        // Observed at 1, 2, 4 and 5 of five values (cells centred at 0.1 .. 0.9), best at 2 and
        // 4: EI is highest between them, at 3 (0.5), which a discrete search asks for.
        let grid = |k: usize| (k as f64 - 0.5) / 5.0;
        let x: Vec<Vec<f64>> = [1, 2, 4, 5].iter().map(|&k| vec![grid(k)]).collect();
        let y = [-1.0, 1.0, 1.0, -1.0];
        let gp = Gp::fit(x, &y, vec![false]);
        let acq = Acquisition {
            objective: &gp,
            best: Some(1.0),
            constraints: Vec::new(),
        };
        let p = maximise(&acq, &[Axis::Discrete(5)], &[vec![grid(2)]], 1);
        assert_eq!(p, vec![grid(3)]);
    }
}
