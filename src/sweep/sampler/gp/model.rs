//! The Gaussian process: a Matérn-5/2 kernel with a length scale per dimension over the unit
//! cube (a categorical dimension contributes 0 when two points share its choice, 1 when not:
//! the Hamming distance), its kernel scale, length scales and noise fitted by maximising the
//! marginal likelihood times Optuna's priors, and the posterior it then gives, with the
//! gradient the acquisition's optimiser follows.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use super::lbfgsb::{self, Stop};

/// The kernel's hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// 1 / length scale², per dimension.
    pub inv_sq_lengths: Vec<f64>,
    /// The prior variance of the function.
    pub scale: f64,
    /// The observation noise's variance.
    pub noise: f64,
}

/// The smallest noise variance: the floor that keeps the covariance invertible (Optuna's).
const MIN_NOISE: f64 = 1e-6;

/// Matérn 5/2 as a function of the scaled squared distance `r2`, and its derivative in `r2`.
pub fn matern52(r2: f64) -> (f64, f64) {
    let s = (5.0 * r2).sqrt();
    let e = (-s).exp();
    (e * (5.0 / 3.0 * r2 + s + 1.0), -5.0 / 6.0 * (s + 1.0) * e)
}

/// The squared difference of `a` and `b` in dimension `i`: the Hamming distance for a
/// categorical one.
fn sq_diff(a: f64, b: f64, categorical: bool) -> f64 {
    if categorical {
        if a == b { 0.0 } else { 1.0 }
    } else {
        (a - b) * (a - b)
    }
}

/// A Gaussian process conditioned on observations.
pub struct Gp {
    /// The observed points, a coordinate per dimension.
    x: Vec<Vec<f64>>,
    categorical: Vec<bool>,
    kernel: Kernel,
    /// Of K(X, X) + noise I.
    chol: Cholesky<f64, Dyn>,
    /// (K(X, X) + noise I)⁻¹ y.
    alpha: DVector<f64>,
}

/// The posterior at a point, with gradients in the continuous coordinates when asked.
pub struct Posterior {
    pub mean: f64,
    pub var: f64,
    /// d mean / d x_i (0 for categorical dimensions).
    pub d_mean: Vec<f64>,
    /// d var / d x_i.
    pub d_var: Vec<f64>,
}

impl Gp {
    /// Fits the kernel to (`x`, `y`) (y standardised) by maximum a posteriori, and conditions
    /// on them. Falls back to the starting kernel if the fit fails.
    pub fn fit(x: Vec<Vec<f64>>, y: &[f64], categorical: Vec<bool>) -> Self {
        let kernel = fit_kernel(&x, y, &categorical);
        Self::condition(x, y, categorical, kernel)
    }

    /// Conditions on (`x`, `y`) with `kernel`; a covariance too close to singular gets a
    /// growing jitter on its diagonal until its Cholesky factorisation succeeds.
    pub fn condition(x: Vec<Vec<f64>>, y: &[f64], categorical: Vec<bool>, kernel: Kernel) -> Self {
        let mut c = covariance(&x, &categorical, &kernel);
        let chol = cholesky_with_jitter(&mut c, kernel.scale);
        let alpha = chol.solve(&DVector::from_column_slice(y));
        Self {
            x,
            categorical,
            kernel,
            chol,
            alpha,
        }
    }

    /// The fitted kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The posterior mean and variance of the function at `p`, and their gradients in the
    /// coordinates `grad_dims` (none: no gradients).
    pub fn posterior(&self, p: &[f64], grad_dims: &[usize]) -> Posterior {
        let n = self.x.len();
        let k = &self.kernel;
        // k(p, X_j), and for the gradient s m'(r_j) per observation.
        let mut kv = DVector::zeros(n);
        let mut dm = vec![0.0; n];
        for (j, xj) in self.x.iter().enumerate() {
            let r2: f64 = (0..p.len())
                .map(|i| k.inv_sq_lengths[i] * sq_diff(p[i], xj[i], self.categorical[i]))
                .sum();
            let (m, dmdr) = matern52(r2);
            kv[j] = k.scale * m;
            dm[j] = k.scale * dmdr;
        }
        let mean = kv.dot(&self.alpha);
        let beta = self.chol.solve(&kv);
        let var = (k.scale - kv.dot(&beta)).max(0.0);
        let (mut d_mean, mut d_var) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        for &i in grad_dims {
            let (mut a, mut b) = (0.0, 0.0);
            for (j, xj) in self.x.iter().enumerate() {
                // d k_j / d p_i = s m'(r_j) * 2 λ_i (p_i - X_ji).
                let dk = dm[j] * 2.0 * k.inv_sq_lengths[i] * (p[i] - xj[i]);
                a += self.alpha[j] * dk;
                b += beta[j] * dk;
            }
            d_mean[i] = a;
            d_var[i] = -2.0 * b;
        }
        Posterior {
            mean,
            var,
            d_mean,
            d_var,
        }
    }
}

/// K(X, X) + noise I.
fn covariance(x: &[Vec<f64>], categorical: &[bool], k: &Kernel) -> DMatrix<f64> {
    let n = x.len();
    let mut c = DMatrix::zeros(n, n);
    for a in 0..n {
        for b in a..n {
            let r2: f64 = (0..categorical.len())
                .map(|i| k.inv_sq_lengths[i] * sq_diff(x[a][i], x[b][i], categorical[i]))
                .sum();
            let v = k.scale * matern52(r2).0;
            c[(a, b)] = v;
            c[(b, a)] = v;
        }
        c[(a, a)] += k.noise;
    }
    c
}

/// The Cholesky factor of `c`, adding a diagonal jitter (from 1e-9 of `scale`, ten times more
/// each try) while it fails.
pub fn cholesky_with_jitter(c: &mut DMatrix<f64>, scale: f64) -> Cholesky<f64, Dyn> {
    let mut jitter = 0.0;
    loop {
        if let Some(ch) = Cholesky::new(c.clone()) {
            return ch;
        }
        let add = if jitter == 0.0 {
            1e-9 * scale.max(1e-12)
        } else {
            jitter * 9.0
        };
        for i in 0..c.nrows() {
            c[(i, i)] += add;
        }
        jitter += add;
        assert!(
            jitter < 1e3 * scale.max(1.0),
            "a covariance matrix no jitter makes positive definite"
        );
    }
}

/// The kernel with which (`x`, `y`) are most probable, times the priors: length scales
/// pushed away from 0 and from infinity, a kernel scale around 1 (Gamma(2, 1)) and a small
/// noise (Gamma(1.1, 30)), as Optuna's GPSampler. Optimised in log space from all ones.
fn fit_kernel(x: &[Vec<f64>], y: &[f64], categorical: &[bool]) -> Kernel {
    let d = categorical.len();
    let n = x.len();
    // Squared differences, per pair (a < b) and dimension.
    let mut sqd = Vec::with_capacity(n * (n - 1) / 2 * d);
    for a in 0..n {
        for b in a + 1..n {
            sqd.extend((0..d).map(|i| sq_diff(x[a][i], x[b][i], categorical[i])));
        }
    }
    let yv = DVector::from_column_slice(y);
    let loss = |theta: &[f64]| neg_log_posterior(theta, n, d, &sqd, &yv);
    let mut lo = vec![(1e-4f64).ln(); d + 2];
    let mut hi = vec![(1e4f64).ln(); d + 2];
    lo[d] = (1e-3f64).ln();
    hi[d] = (1e3f64).ln();
    lo[d + 1] = (1e-9f64).ln();
    hi[d + 1] = (10.0f64).ln();
    let start = vec![0.0; d + 2];
    let stop = Stop {
        max_iter: 200,
        pgtol: 1e-2,
        ftol: 1e-10,
    };
    let (theta, value) = lbfgsb::minimise(loss, &start, &lo, &hi, stop);
    let theta = if value.is_finite() { theta } else { start };
    Kernel {
        inv_sq_lengths: theta[..d].iter().map(|t| t.exp()).collect(),
        scale: theta[d].exp(),
        noise: theta[d + 1].exp() + MIN_NOISE,
    }
}

/// −log(marginal likelihood × priors) at the log-hyperparameters `theta` (d log inverse
/// squared length scales, log scale, log of the noise above its floor), and its gradient.
fn neg_log_posterior(
    theta: &[f64],
    n: usize,
    d: usize,
    sqd: &[f64],
    y: &DVector<f64>,
) -> (f64, Vec<f64>) {
    let lambda: Vec<f64> = theta[..d].iter().map(|t| t.exp()).collect();
    let scale = theta[d].exp();
    let raw_noise = theta[d + 1].exp();
    let noise = raw_noise + MIN_NOISE;
    let mut c = DMatrix::zeros(n, n);
    // Per pair: s m(r) and s m'(r).
    let mut dk = Vec::with_capacity(n * (n - 1) / 2);
    let mut pair = 0;
    for a in 0..n {
        c[(a, a)] = scale + noise;
        for b in a + 1..n {
            let r2: f64 = (0..d).map(|i| lambda[i] * sqd[pair * d + i]).sum();
            let (m, dmdr) = matern52(r2);
            c[(a, b)] = scale * m;
            c[(b, a)] = scale * m;
            dk.push(scale * dmdr);
            pair += 1;
        }
    }
    let Some(chol) = Cholesky::new(c.clone()) else {
        return (f64::INFINITY, vec![0.0; d + 2]);
    };
    let alpha = chol.solve(y);
    let half_log_det: f64 = chol.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
    let mll = -half_log_det - 0.5 * y.dot(&alpha);
    let prior = -lambda.iter().map(|l| 0.1 / l + 0.1 * l).sum::<f64>()
        + (scale.ln() - scale)
        + (0.1 * noise.ln() - 30.0 * noise);
    // d mll / dθ = ½ tr(W dC/dθ), W = ααᵀ − C⁻¹ (symmetric: pairs count twice).
    let inv = chol.inverse();
    let w = |a: usize, b: usize| alpha[a] * alpha[b] - inv[(a, b)];
    let mut grad = vec![0.0; d + 2];
    let mut pair = 0;
    let mut trace_wk = 0.0;
    for a in 0..n {
        trace_wk += w(a, a) * scale;
        for b in a + 1..n {
            let wab = w(a, b);
            trace_wk += 2.0 * wab * c[(a, b)];
            for i in 0..d {
                grad[i] += 2.0 * wab * dk[pair] * sqd[pair * d + i];
            }
            pair += 1;
        }
    }
    for i in 0..d {
        // ½ Σ W dC/dlogλ_i, and the prior's d/dlogλ of −(0.1/λ + 0.1λ).
        grad[i] = -(0.5 * grad[i] * lambda[i] + (0.1 / lambda[i] - 0.1 * lambda[i]));
    }
    grad[d] = -(0.5 * trace_wk + (1.0 - scale));
    let trace_w: f64 = (0..n).map(|a| w(a, a)).sum();
    grad[d + 1] = -(0.5 * trace_w * raw_noise + (0.1 / noise - 30.0) * raw_noise);
    (-(mll + prior), grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize) -> Vec<Vec<f64>> {
        let h = crate::sweep::sampler::sobol::Sobol::new(3, Some(1));
        (0..n as u64)
            .map(|i| {
                let mut p = h.point(i);
                p[2] = (p[2] * 3.0).floor(); // a categorical dimension of 3 choices
                p
            })
            .collect()
    }

    fn f(p: &[f64]) -> f64 {
        (3.0 * p[0]).sin() + p[1] * p[1] + if p[2] == 1.0 { 0.5 } else { 0.0 }
    }

    #[test]
    fn the_fits_gradient_matches_finite_differences() {
        let x = points(12);
        let y: Vec<f64> = x.iter().map(|p| f(p)).collect();
        let categorical = [false, false, true];
        let mut sqd = Vec::new();
        for a in 0..x.len() {
            for b in a + 1..x.len() {
                sqd.extend((0..3).map(|i| sq_diff(x[a][i], x[b][i], categorical[i])));
            }
        }
        let yv = DVector::from_column_slice(&y);
        let theta = [0.3, -0.5, 0.1, 0.2, -3.0];
        let (_, grad) = neg_log_posterior(&theta, x.len(), 3, &sqd, &yv);
        for i in 0..theta.len() {
            let h = 1e-6;
            let (mut up, mut down) = (theta, theta);
            up[i] += h;
            down[i] -= h;
            let numeric = (neg_log_posterior(&up, x.len(), 3, &sqd, &yv).0
                - neg_log_posterior(&down, x.len(), 3, &sqd, &yv).0)
                / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() <= 1e-5 * numeric.abs().max(1.0),
                "θ{i}: {numeric} against {}",
                grad[i]
            );
        }
    }

    #[test]
    fn the_posteriors_gradients_match_finite_differences_and_it_fits_what_it_saw() {
        let x = points(20);
        let y: Vec<f64> = x.iter().map(|p| f(p)).collect();
        let gp = Gp::fit(x.clone(), &y, vec![false, false, true]);
        // It interpolates what it saw (small noise).
        for (p, v) in x.iter().zip(&y) {
            assert!((gp.posterior(p, &[]).mean - v).abs() < 0.05, "{p:?}");
        }
        let p = [0.37, 0.61, 2.0];
        let at = gp.posterior(&p, &[0, 1]);
        for i in 0..2 {
            let h = 1e-6;
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let (u, d) = (gp.posterior(&up, &[]), gp.posterior(&down, &[]));
            let dm = (u.mean - d.mean) / (2.0 * h);
            let dv = (u.var - d.var) / (2.0 * h);
            assert!(
                (dm - at.d_mean[i]).abs() < 1e-5 * dm.abs().max(1.0),
                "mean {i}"
            );
            assert!(
                (dv - at.d_var[i]).abs() < 1e-5 * dv.abs().max(1.0),
                "var {i}"
            );
        }
    }

    #[test]
    fn a_nearly_singular_covariance_factorises_with_jitter() {
        // The same point three times and a noise far below rounding: singular to f64.
        let x = vec![vec![0.5, 0.5]; 3];
        let kernel = Kernel {
            inv_sq_lengths: vec![1.0, 1.0],
            scale: 1.0,
            noise: 1e-300,
        };
        let gp = Gp::condition(x, &[1.0, 1.0, 1.0], vec![false, false], kernel);
        let post = gp.posterior(&[0.5, 0.5], &[]);
        assert!((post.mean - 1.0).abs() < 1e-3, "{}", post.mean);
        assert!(post.var >= 0.0);
    }

    #[test]
    fn matern52_has_its_closed_form_and_derivative() {
        assert_eq!(matern52(0.0), (1.0, -5.0 / 6.0));
        let r2 = 0.7;
        let h = 1e-7;
        let numeric = (matern52(r2 + h).0 - matern52(r2 - h).0) / (2.0 * h);
        assert!((numeric - matern52(r2).1).abs() < 1e-7);
    }
}
