//! Gaussian-process Bayesian optimisation (`method = "gp"`), as Optuna's GPSampler: the
//! trials' values, standardised, are modelled by a GP over the unit cube ([`model`]: Matérn
//! 5/2, a length scale per dimension, kernel scale, length scales and noise fitted by
//! maximum a posteriori), and the next point is the one of largest log expected improvement
//! over the best value so far ([`acquisition`]).
//!
//! - **The space.** A uniform parameter maps linearly to [0, 1], a log-uniform one in log
//!   space, an integer one from [a − ½, b + ½]: one of at most 16 values is searched value by
//!   value (as Optuna's), a wider one relaxed and rounded afterwards; a categorical one (a
//!   choice) keeps its index and its own kernel (Hamming distance).
//! - **Running trials** (the P − 1 before trial `i` that it does not learn from) are pending
//!   points, by the kriging believer: the model is conditioned on them at its own mean, with
//!   the kernel fitted on the finished trials alone. The mean stays, the uncertainty near them
//!   collapses, so parallel slots do not ask for the same point.
//! - **Pruned trials** enter at the value they reached; failed ones teach nothing; a diverged
//!   one counts as the worst value seen.
//! - **Constraints** (one objective): each constraint's excess (`value − limit` for `<=`) is
//!   modelled by a GP of its own, and the acquisition adds the log probability that every
//!   constraint is met; the improvement is over the best feasible trial (none yet: the
//!   probability of feasibility alone guides).

mod acquisition;
mod lbfgsb;
mod model;

use super::{Coords, Dim};
use acquisition::{Acquisition, Axis};
use model::Gp;

/// Integers of at most this many values are searched value by value (Optuna's limit for its
/// exhaustive search); wider ones are relaxed to a continuous range and rounded.
const MAX_DISCRETE: usize = 16;

/// What the GP learns from: each finished trial's coordinates and value (larger is better),
/// and, with constraints, whether the trial met them and, per constraint, the excess each
/// trial that reported its metric showed (≤ 0: met).
pub(super) struct Observed {
    /// Coordinates and value of each finished trial (not empty).
    pub values: Vec<(Coords, f64)>,
    /// Aligned with `values`: whether the trial met every constraint (all true without any).
    pub feasible: Vec<bool>,
    /// Per constraint: coordinates and excess of the trials that reported its metric.
    pub excess: Vec<Vec<(Coords, f64)>>,
}

/// The GP's next point in the space of `dims` (`integers`: for an integer axis, how many
/// values it has): from what was `observed` and the `pending` points of running trials; its
/// candidates are drawn from `seed`.
pub(super) fn propose(
    dims: &[Dim],
    integers: &[Option<usize>],
    observed: &Observed,
    pending: &[Coords],
    seed: u64,
) -> Coords {
    let axes: Vec<Axis> = dims
        .iter()
        .zip(integers)
        .map(|(d, int)| match (d, int) {
            (Dim::Categorical { n }, _) => Axis::Categorical(*n),
            (Dim::Numeric { .. }, Some(n)) if *n <= MAX_DISCRETE => Axis::Discrete(*n),
            (Dim::Numeric { .. }, _) => Axis::Continuous,
        })
        .collect();
    let categorical: Vec<bool> = axes
        .iter()
        .map(|a| matches!(a, Axis::Categorical(_)))
        .collect();
    let x: Vec<Vec<f64>> = observed
        .values
        .iter()
        .map(|(c, _)| to_unit(dims, c))
        .collect();
    let (y, ..) = standardise(&observed.values.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    // The incumbent is the best feasible trial; the warm start the best one, feasible or not.
    let best_at = |feasible_only: bool| {
        (0..y.len())
            .filter(|&i| !feasible_only || observed.feasible[i])
            .max_by(|&a, &b| y[a].total_cmp(&y[b]))
    };
    let best = best_at(true).map(|i| y[i]);
    let warm = vec![x[best_at(false).expect("observations")].clone()];
    let mut gp = Gp::fit(x.clone(), &y, categorical.clone());
    if !pending.is_empty() {
        let kernel = gp.kernel().clone();
        let (mut xs, mut ys) = (x, y);
        for p in pending {
            let u = to_unit(dims, p);
            ys.push(gp.posterior(&u, &[]).mean);
            xs.push(u);
        }
        gp = Gp::condition(xs, &ys, categorical.clone(), kernel);
    }
    let acq = Acquisition {
        objective: &gp,
        best,
        constraints: observed
            .excess
            .iter()
            .filter_map(|seen| constraint_model(dims, seen, &categorical))
            .collect(),
    };
    let u = acquisition::maximise(&acq, &axes, &warm, seed);
    from_unit(dims, &u)
}

/// A constraint's GP of its standardised excess and the standardised 0 (where it is just
/// met); none when its excess was never seen or never varied, which says nothing about where
/// it is met.
fn constraint_model(
    dims: &[Dim],
    seen: &[(Coords, f64)],
    categorical: &[bool],
) -> Option<(Gp, f64)> {
    let values: Vec<f64> = seen.iter().map(|(_, v)| *v).collect();
    let (z, mean, sd) = standardise(&values);
    if seen.len() < 2 || sd <= 1e-10 {
        return None;
    }
    let x = seen.iter().map(|(c, _)| to_unit(dims, c)).collect();
    Some((Gp::fit(x, &z, categorical.to_vec()), -mean / sd))
}

/// Values as z-scores (a spread of 0 leaves them all 0), with their mean and spread.
fn standardise(values: &[f64]) -> (Vec<f64>, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let z = values.iter().map(|v| (v - mean) / sd.max(1e-10)).collect();
    (z, mean, sd)
}

/// A point of the sampler's space (numbers in each axis's range, log for log-uniform;
/// choices as indices) in the unit cube.
fn to_unit(dims: &[Dim], c: &[f64]) -> Vec<f64> {
    dims.iter()
        .zip(c)
        .map(|(d, &v)| match d {
            Dim::Numeric { lo, hi } => ((v - lo) / (hi - lo)).clamp(0.0, 1.0),
            Dim::Categorical { .. } => v,
        })
        .collect()
}

/// The unit cube's point `u` back in the sampler's space.
fn from_unit(dims: &[Dim], u: &[f64]) -> Coords {
    dims.iter()
        .zip(u)
        .map(|(d, &v)| match d {
            Dim::Numeric { lo, hi } => lo + v.clamp(0.0, 1.0) * (hi - lo),
            Dim::Categorical { n } => v.round().clamp(0.0, (*n - 1) as f64),
        })
        .collect()
}
