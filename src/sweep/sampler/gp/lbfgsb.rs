//! Minimising a smooth function within box bounds by projected limited-memory BFGS: the
//! L-BFGS direction on the variables not held at a bound, a backtracking line search along the
//! projected path, and the projected gradient as the stopping test (as L-BFGS-B's `pgtol`).
//! It fits the GP's kernel (no bounds) and maximises its acquisition (within the unit cube).
//!
//! It is ours rather than a crate's: the Rust L-BFGS-B crates are Fortran or C bindings, an
//! unmaintained one, or young ones that call the function and its gradient separately (twice
//! the cost here, where both come from one pass), and argmin's L-BFGS takes no bounds.

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    /// Iterations at most.
    pub max_iter: usize,
    /// Stop when every component of the projected gradient is at most this.
    pub pgtol: f64,
    /// Stop when an iteration improves f by at most this, relative to |f|.
    pub ftol: f64,
}

/// Pairs of (step, gradient change) kept.
const MEMORY: usize = 10;

/// Minimises `f` (which returns the value and its gradient) from `x0` within `[lo, hi]` per
/// coordinate (infinite bounds allowed); returns the best point and its value.
pub fn minimise(
    mut f: impl FnMut(&[f64]) -> (f64, Vec<f64>),
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    stop: Stop,
) -> (Vec<f64>, f64) {
    let project = |x: &mut [f64]| {
        for i in 0..x.len() {
            x[i] = x[i].clamp(lo[i], hi[i]);
        }
    };
    let mut x = x0.to_vec();
    project(&mut x);
    let (mut fx, mut g) = f(&x);
    if !fx.is_finite() {
        return (x, fx);
    }
    let mut pairs: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    for iter in 0..stop.max_iter {
        // Free: not held at a bound by a gradient pushing out of the box.
        let free: Vec<bool> = (0..x.len())
            .map(|i| !((x[i] <= lo[i] && g[i] > 0.0) || (x[i] >= hi[i] && g[i] < 0.0)))
            .collect();
        let pg = (0..x.len())
            .filter(|&i| free[i])
            .map(|i| g[i].abs())
            .fold(0.0, f64::max);
        if pg <= stop.pgtol {
            break;
        }
        let mut d = direction(&g, &pairs);
        for i in 0..x.len() {
            if !free[i] {
                d[i] = 0.0;
            }
        }
        let mut slope = dot(&d, &g);
        if slope >= 0.0 {
            // Not a descent direction (the memory misleads at a bound): steepest descent.
            d = (0..x.len())
                .map(|i| if free[i] { -g[i] } else { 0.0 })
                .collect();
            slope = dot(&d, &g);
        }
        // The first step is scaled to move about one unit; later ones trust the curvature.
        let mut alpha = if iter == 0 && pairs.is_empty() {
            (1.0 / norm(&d)).min(1.0)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..40 {
            let mut next: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + alpha * b).collect();
            project(&mut next);
            let step: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
            let decrease = dot(&step, &g);
            if decrease >= 0.0 && norm(&step) == 0.0 {
                break;
            }
            let (fn_, gn) = f(&next);
            // Armijo's sufficient decrease along the projected step.
            if fn_.is_finite() && decrease < 0.0 && fn_ <= fx + 1e-4 * decrease {
                accepted = Some((next, fn_, gn, step));
                break;
            }
            alpha *= 0.5;
        }
        let Some((next, fn_, gn, step)) = accepted else {
            break;
        };
        let change: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&step, &change);
        if sy > 1e-12 * norm(&step) * norm(&change) && sy > 0.0 {
            if pairs.len() == MEMORY {
                pairs.remove(0);
            }
            pairs.push((step, change, 1.0 / sy));
        }
        let improved = fx - fn_;
        x = next;
        fx = fn_;
        g = gn;
        if improved <= stop.ftol * fx.abs().max(1.0) {
            break;
        }
    }
    (x, fx)
}

/// The L-BFGS direction -H g, from the two-loop recursion over `pairs`.
fn direction(g: &[f64], pairs: &[(Vec<f64>, Vec<f64>, f64)]) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let a = rho * dot(s, &q);
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= a * yi;
        }
        alphas.push(a);
    }
    if let Some((s, y, _)) = pairs.last() {
        let gamma = dot(s, y) / dot(y, y);
        for qi in &mut q {
            *qi *= gamma;
        }
    }
    for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += (a - b) * si;
        }
    }
    q.iter().map(|v| -v).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIGHT: Stop = Stop {
        max_iter: 500,
        pgtol: 1e-8,
        ftol: 0.0,
    };

    fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
        let (a, b) = (x[0], x[1]);
        let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let g = vec![
            -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
            200.0 * (b - a * a),
        ];
        (f, g)
    }

    #[test]
    fn finds_rosenbrocks_minimum_without_bounds() {
        let inf = f64::INFINITY;
        let (x, f) = minimise(rosenbrock, &[-1.2, 1.0], &[-inf, -inf], &[inf, inf], TIGHT);
        assert!(f < 1e-10, "{f}");
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4,
            "{x:?}"
        );
    }

    #[test]
    fn stops_at_the_bound_that_holds_the_minimum_and_stays_inside_the_box() {
        // The unconstrained minimum (1, 1) is outside; within x <= 0.5 it is at (0.5, 0.25).
        let (x, _) = minimise(rosenbrock, &[-1.0, 2.0], &[-2.0, -2.0], &[0.5, 2.0], TIGHT);
        assert!(
            (x[0] - 0.5).abs() < 1e-6 && (x[1] - 0.25).abs() < 1e-4,
            "{x:?}"
        );
        // A quadratic whose minimum lies beyond a corner ends at the corner.
        let bowl = |x: &[f64]| {
            let f = (x[0] - 3.0).powi(2) + (x[1] + 2.0).powi(2);
            (f, vec![2.0 * (x[0] - 3.0), 2.0 * (x[1] + 2.0)])
        };
        let (x, _) = minimise(bowl, &[0.5, 0.5], &[0.0, 0.0], &[1.0, 1.0], TIGHT);
        assert_eq!(x, vec![1.0, 0.0]);
    }
}
