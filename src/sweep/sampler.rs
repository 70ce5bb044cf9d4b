//! The adaptive sampler: multivariate TPE (the tree-structured Parzen estimator, Bergstra et
//! al. 2011, multivariate as Optuna's default since 3.x), asked for one trial at a time.
//!
//! After `startup` random trials, the trials with results are split into the best sixth
//! (`gamma`) and the rest; a Parzen estimator (a mixture with one product kernel per trial, over every
//! searched parameter jointly, plus a wide prior) is fitted to each, 24 candidates are drawn
//! from the good one, and the candidate with the largest ratio good/bad is proposed.
//!
//! **Reproducible in parallel.** Trial `i` is sampled from exactly the trials `0..=i-P` (P =
//! the slots running trials at once), which must have ended: the sampler waits for them.
//! Trials `i-P+1..i` are counted as "liars" with the worst value (their parameters are known,
//! their results are not, whatever they are by now): they join the bad estimator, so that
//! parallel slots do not all sample the same point, but not the count the good sixth is taken
//! of. Every draw for trial `i` comes from a generator seeded by the spec's seed
//! and `i`. Two runs of one spec with the same parallelism therefore ask for the same trials
//! however long each trial takes; the cost is a slot left idle while trial `i-P` still runs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::search::{Axis, Domain, Point, round_sig};
use crate::objectives::Objectives;
use crate::pareto;
use crate::store::record::{StudyRecord, TrialRecord};
use crate::trial::{Objective, TrialStatus};

/// Candidates drawn from the good estimator per proposal (Optuna's default).
const CANDIDATES: usize = 24;
/// The width of a kernel relative to its parameter's range, scaled by n^(-1/(d+4)) as in
/// Optuna's multivariate rule, with Optuna's 0.2. Half of it did better on the noisy MNIST
/// surrogate (examples/tpe_surrogate.rs) but left a seed in eight stuck in a poor region on
/// the noise-free lcbench surrogate (bench/lcbench.py): narrow kernels exploit too early.
const SIGMA0: f64 = 0.2;

/// What the sampler says when asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Try this point next.
    Point(Point),
    /// A trial it must learn from is still running: ask again when one ends.
    Wait,
    /// The budget is spent.
    Done,
}

/// Multivariate TPE over a search space.
#[derive(Debug, Clone, PartialEq)]
pub struct Tpe {
    /// The searched axes (the same distributions as random search).
    pub axes: Vec<Axis>,
    /// What is optimised (with several objectives: the one that picks each trial's kept
    /// epoch, and ranks pruned trials).
    pub objective: Objective,
    /// Several objectives: completed trials are then ordered as Optuna's multi-objective TPE
    /// splits them, by constrained non-dominated rank and then hypervolume contribution.
    pub objectives: Option<Objectives>,
    /// Trials in all.
    pub budget: usize,
    /// Random trials before TPE starts learning.
    pub startup: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Trials that run at once (the determinism rule's P).
    pub parallelism: usize,
}

/// One parameter's place in the sampler's continuous or categorical space.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dim {
    /// A number in [lo, hi] (in log space for log-uniform; widened by half a step for ints).
    Numeric { lo: f64, hi: f64 },
    /// One of `n` choices.
    Categorical { n: usize },
}

impl Dim {
    fn of(axis: &Axis) -> Dim {
        match &axis.domain {
            Domain::Uniform(a, b) => Dim::Numeric { lo: *a, hi: *b },
            Domain::LogUniform(a, b) => Dim::Numeric {
                lo: a.ln(),
                hi: b.ln(),
            },
            Domain::Int(a, b) => Dim::Numeric {
                lo: *a as f64 - 0.5,
                hi: *b as f64 + 0.5,
            },
            Domain::Choice(points) => Dim::Categorical { n: points.len() },
        }
    }
}

/// A trial as the estimators see it: one coordinate per axis (a number in the axis's space,
/// or a choice index).
type Coords = Vec<f64>;

impl Tpe {
    /// The point of trial `index` in the plan: random during the start-up, then TPE's proposal
    /// from what the trials before it taught. `attempt` > 0 asks again with fresh draws (the
    /// point proposed before was a trial that already exists).
    pub fn ask(&self, record: &StudyRecord, index: usize, attempt: u32) -> Ask {
        if index >= self.budget {
            return Ask::Done;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            crate::train::rng::splitmix(
                crate::train::rng::splitmix(self.seed ^ 0x7470_6500) ^ index as u64,
            ) ^ u64::from(attempt),
        );
        if index < self.startup {
            return Ask::Point(self.point(&self.random(&mut rng)));
        }
        let p = self.parallelism.max(1);
        let learnt = index.saturating_sub(p - 1);
        // The trials numbered below `index` (a number lost with a corrupt journal line leaves
        // a gap, not a wait).
        let history: Vec<&TrialRecord> = record
            .trials
            .iter()
            .filter(|t| t.def.index < index)
            .collect();
        // Trials 0..learnt must have ended; the rest are liars.
        if history.iter().any(|t| t.def.index < learnt && !settled(t)) {
            return Ask::Wait;
        }
        let mut scored: Vec<(Coords, Standing)> = Vec::new();
        let mut liars: Vec<Coords> = Vec::new();
        let mut learnt_from: Vec<&TrialRecord> = Vec::new();
        for t in &history {
            let Some(x) = self.coords(t) else { continue };
            if t.def.index >= learnt {
                liars.push(x);
                continue;
            }
            if let Some(standing) = self.standing(t) {
                scored.push((x, standing));
                learnt_from.push(t);
            }
        }
        if let Some(objectives) = &self.objectives {
            self.rank_by_pareto_order(objectives, &mut scored, &learnt_from);
        }
        if scored.is_empty() {
            return Ask::Point(self.point(&self.random(&mut rng)));
        }
        let (good, bad) = split(scored, liars);
        let dims: Vec<Dim> = self.axes.iter().map(Dim::of).collect();
        let l = Parzen::fit(&dims, &good);
        let g = Parzen::fit(&dims, &bad);
        let best = (0..CANDIDATES)
            .map(|_| l.sample(&mut rng))
            .map(|x| {
                let score = l.log_pdf(&x) - g.log_pdf(&x);
                (x, score)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(x, _)| x)
            .expect("at least one candidate");
        Ask::Point(self.point(&best))
    }

    /// The point a journalled trial ran with, from the values the journal holds for it.
    pub fn point_of(
        &self,
        params: &std::collections::BTreeMap<String, toml::Value>,
    ) -> Option<Point> {
        let mut p = Point::default();
        for axis in &self.axes {
            let values: Vec<toml::Value> = axis
                .paths
                .iter()
                .map(|path| params.get(&path.join(".")).cloned())
                .collect::<Option<_>>()?;
            p.values.extend(axis.assignments(values));
        }
        Some(p)
    }

    /// Coordinates drawn uniformly from the space.
    fn random(&self, rng: &mut ChaCha8Rng) -> Coords {
        self.axes
            .iter()
            .map(|a| match Dim::of(a) {
                Dim::Numeric { lo, hi } => rng.random_range(lo..=hi),
                Dim::Categorical { n } => rng.random_range(0..n) as f64,
            })
            .collect()
    }

    /// The point at `coords`, values rounded as random search rounds them.
    fn point(&self, coords: &[f64]) -> Point {
        let mut p = Point::default();
        for (axis, &x) in self.axes.iter().zip(coords) {
            let values = match &axis.domain {
                Domain::Uniform(a, b) => vec![toml::Value::Float(round_sig(x.clamp(*a, *b)))],
                Domain::LogUniform(a, b) => {
                    vec![toml::Value::Float(round_sig(x.exp().clamp(*a, *b)))]
                }
                Domain::Int(a, b) => vec![toml::Value::Integer((x.round() as i64).clamp(*a, *b))],
                Domain::Choice(points) => points[(x as usize).min(points.len() - 1)].clone(),
            };
            p.values.extend(axis.assignments(values));
        }
        p
    }

    /// A trial's coordinates, read back from the values the journal holds for it.
    fn coords(&self, t: &TrialRecord) -> Option<Coords> {
        self.axes
            .iter()
            .map(|axis| {
                let values: Vec<&toml::Value> = axis
                    .paths
                    .iter()
                    .map(|p| t.def.params.get(&p.join(".")))
                    .collect::<Option<_>>()?;
                let number = || {
                    values[0]
                        .as_float()
                        .or_else(|| values[0].as_integer().map(|i| i as f64))
                };
                match &axis.domain {
                    Domain::Uniform(..) | Domain::Int(..) => number(),
                    Domain::LogUniform(..) => number().filter(|v| *v > 0.0).map(f64::ln),
                    Domain::Choice(points) => points
                        .iter()
                        .position(|c| c.iter().zip(&values).all(|(a, b)| a == *b))
                        .map(|i| i as f64),
                }
            })
            .collect()
    }

    /// With several objectives: replaces the cost of each completed trial in `scored` by its
    /// place in the constrained Pareto order of the completed trials (see
    /// [`crate::pareto::order`]); one missing an objective goes after them.
    fn rank_by_pareto_order(
        &self,
        objectives: &Objectives,
        scored: &mut [(Coords, Standing)],
        trials: &[&TrialRecord],
    ) {
        let completed: Vec<usize> = (0..scored.len()).filter(|&i| scored[i].1.0 == 0).collect();
        let points: Vec<Option<pareto::Point>> = completed
            .iter()
            .map(|&i| {
                trials[i]
                    .best(&self.objective)
                    .and_then(|r| objectives.point(&r.metrics))
            })
            .collect();
        let known: Vec<usize> = (0..completed.len())
            .filter(|&k| points[k].is_some())
            .collect();
        let order = pareto::order(
            &known
                .iter()
                .map(|&k| points[k].clone().expect("known"))
                .collect::<Vec<_>>(),
        );
        for (place, &o) in order.iter().enumerate() {
            scored[completed[known[o]]].1.2 = place as f64;
        }
        for (k, &i) in completed.iter().enumerate() {
            if points[k].is_none() {
                scored[i].1.2 = f64::INFINITY;
            }
        }
    }

    /// How a finished trial ranks among the others; None for failed trials, which teach
    /// nothing.
    fn standing(&self, t: &TrialRecord) -> Option<Standing> {
        let value = t
            .best(&self.objective)
            .and_then(|r| self.objective.value(&r.metrics));
        let cost = value.map(|v| match self.objective.mode {
            crate::trial::Mode::Max => -v,
            crate::trial::Mode::Min => v,
        });
        let reached = t.last().map_or(0, |r| r.epoch);
        match t.status {
            TrialStatus::Completed => cost.map(|c| Standing(0, 0, c)),
            // A pruned trial contributes what it reached: after every completed trial, the
            // longer it ran the better.
            TrialStatus::Pruned => cost.map(|c| Standing(1, usize::MAX - reached, c)),
            TrialStatus::Diverged => Some(Standing(2, 0, f64::INFINITY)),
            _ => None,
        }
    }
}

/// TPE's two groups: the best sixth of the trials with results (completed trials by value,
/// then pruned ones, longest first, then diverged ones) and the rest, with the running trials
/// (the liars) as worse than all. A liar has no result, so it does not count in the number the
/// sixth is taken of. Counted, as Optuna's constant liar counts it, it let one worse trial into
/// the good group: over 200 seeds on lcbench task 3945, 2 at a time then trailed 1 at a time by
/// 0.018 points, against 0.012 now (docs/benchmarks.md).
fn split(mut scored: Vec<(Coords, Standing)>, liars: Vec<Coords>) -> (Vec<Coords>, Vec<Coords>) {
    scored.sort_by_key(|s| s.1);
    let n_good = gamma(scored.len()).max(1);
    let mut ranked = scored.into_iter().map(|s| s.0);
    let good: Vec<Coords> = ranked.by_ref().take(n_good).collect();
    let bad: Vec<Coords> = ranked.chain(liars).collect();
    (good, bad)
}

/// A finished trial's rank key, smaller is better: (tier, epochs short of the longest, cost).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Standing(u8, usize, f64);

impl Eq for Standing {}

impl PartialOrd for Standing {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Standing {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1)
            .cmp(&(other.0, other.1))
            .then(self.2.total_cmp(&other.2))
    }
}

/// A trial that has ended for good (or for this run), or left the plan: what it taught is
/// fixed.
fn settled(t: &TrialRecord) -> bool {
    !t.active || t.status.is_final() || t.status.is_failure()
}

/// How many of `n` observations form the good group: a sixth, at most 25. Optuna takes a
/// tenth, which did best on the noise-free lcbench surrogate (bench/lcbench.py) but, with
/// noisy results and budgets of tens of trials, makes a good group of one or two trials that
/// follows the noise (examples/tpe_surrogate.rs); a quarter did the reverse. A sixth meets the
/// goals of both (docs/benchmarks.md).
fn gamma(n: usize) -> usize {
    n.div_ceil(6).min(25)
}

/// A Parzen estimator: a weighted mixture of product kernels, one per observation plus a
/// prior spanning the space.
struct Parzen<'a> {
    dims: &'a [Dim],
    /// Per component: its weight and its centre (a coordinate per dimension).
    components: Vec<(f64, Coords)>,
    /// Per numeric dimension: the kernels' width.
    sigmas: Vec<f64>,
}

impl<'a> Parzen<'a> {
    fn fit(dims: &'a [Dim], observations: &[Coords]) -> Self {
        let n = observations.len();
        let mut components: Vec<(f64, Coords)> =
            observations.iter().map(|x| (1.0, x.clone())).collect();
        // The prior: the middle of every range (a uniform choice for categories).
        let prior: Coords = dims
            .iter()
            .map(|d| match d {
                Dim::Numeric { lo, hi } => (lo + hi) / 2.0,
                Dim::Categorical { .. } => f64::NAN,
            })
            .collect();
        components.push((1.0, prior));
        let d = dims.len() as f64;
        let sigmas = dims
            .iter()
            .map(|dim| match dim {
                Dim::Numeric { lo, hi } => {
                    let range = hi - lo;
                    let sigma = SIGMA0 * (n.max(1) as f64).powf(-1.0 / (d + 4.0)) * range;
                    // The magic clip: never narrower than range / min(100, n + 1).
                    sigma.max(range / (n as f64 + 1.0).min(100.0))
                }
                Dim::Categorical { .. } => 0.0,
            })
            .collect();
        let total: f64 = components.iter().map(|c| c.0).sum();
        for c in &mut components {
            c.0 /= total;
        }
        Self {
            dims,
            components,
            sigmas,
        }
    }

    /// The prior component is the last one; its numeric kernels span the whole range.
    fn sigma(&self, component: usize, dim: usize) -> f64 {
        match self.dims[dim] {
            Dim::Numeric { lo, hi } if component + 1 == self.components.len() => hi - lo,
            _ => self.sigmas[dim],
        }
    }

    /// A categorical kernel's probability of choice `k`, centred on `c` (NaN: the prior).
    fn choice_probability(&self, c: f64, k: usize, n: usize) -> f64 {
        let spread = 1.0 / self.components.len() as f64;
        if c.is_nan() {
            return 1.0 / n as f64;
        }
        let hit = if (c as usize) == k { 1.0 } else { 0.0 };
        (hit + spread) / (1.0 + n as f64 * spread)
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Coords {
        let mut u: f64 = rng.random();
        let mut chosen = self.components.len() - 1;
        for (i, (w, _)) in self.components.iter().enumerate() {
            if u < *w {
                chosen = i;
                break;
            }
            u -= w;
        }
        let centre = &self.components[chosen].1;
        self.dims
            .iter()
            .enumerate()
            .map(|(d, dim)| match *dim {
                Dim::Numeric { lo, hi } => {
                    truncated_normal(rng, centre[d], self.sigma(chosen, d), lo, hi)
                }
                Dim::Categorical { n } => {
                    let mut u: f64 = rng.random();
                    for k in 0..n {
                        let p = self.choice_probability(centre[d], k, n);
                        if u < p {
                            return k as f64;
                        }
                        u -= p;
                    }
                    (n - 1) as f64
                }
            })
            .collect()
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let terms: Vec<f64> = self
            .components
            .iter()
            .enumerate()
            .map(|(c, (w, centre))| {
                let mut log = w.ln();
                for (d, dim) in self.dims.iter().enumerate() {
                    log += match *dim {
                        Dim::Numeric { lo, hi } => {
                            truncated_normal_log_pdf(x[d], centre[d], self.sigma(c, d), lo, hi)
                        }
                        Dim::Categorical { n } => {
                            self.choice_probability(centre[d], x[d] as usize, n).ln()
                        }
                    };
                }
                log
            })
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    }
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// log of N(mu, sigma) truncated to [lo, hi], at x.
fn truncated_normal_log_pdf(x: f64, mu: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    let z = (x - mu) / sigma;
    let mass = (normal_cdf((hi - mu) / sigma) - normal_cdf((lo - mu) / sigma)).max(1e-300);
    -0.5 * z * z - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln() - mass.ln()
}

/// A draw from N(mu, sigma) truncated to [lo, hi] (rejection, then the clamped mean).
fn truncated_normal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    for _ in 0..64 {
        // Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let x = mu + sigma * z;
        if (lo..=hi).contains(&x) {
            return x;
        }
    }
    mu.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;
    use crate::sweep::search::Method;

    fn axis(name: &str, value: &str) -> Axis {
        let v: toml::Table = format!("v = {value}").parse().unwrap();
        Axis::parse(name, &v["v"], Method::Random).unwrap()
    }

    /// A noisy bowl with its best at lr = 0.01 (log10 lr = -2), noise from `noise_seed`.
    fn objective(lr: f64, momentum: f64, noise: &mut ChaCha8Rng) -> f64 {
        let x = lr.log10() + 2.0;
        100.0 - 3.0 * x * x - 2.0 * (momentum - 0.9).abs() + noise.random_range(-0.2..0.2)
    }

    #[test]
    fn running_trials_join_the_bad_group_without_enlarging_the_good_one() {
        let scored: Vec<(Coords, Standing)> = (0..6)
            .map(|i| (vec![i as f64], Standing(0, 0, -(i as f64))))
            .collect();
        // Six results make a good group of one, the best (cost -5); the running trial goes
        // with the other five. Counted in the six, it would have made the good group two.
        let (good, bad) = split(scored.clone(), vec![vec![9.0]]);
        assert_eq!(good, vec![vec![5.0]]);
        assert_eq!(
            bad,
            vec![
                vec![4.0],
                vec![3.0],
                vec![2.0],
                vec![1.0],
                vec![0.0],
                vec![9.0]
            ]
        );
        let mut seven = scored;
        seven.push((vec![6.0], Standing(1, 3, -100.0))); // pruned: after every completed one
        let (good, _) = split(seven, Vec::new());
        assert_eq!(good, vec![vec![5.0], vec![4.0]]);
    }

    /// Runs `trials` trials one at a time (P = 1), TPE or (startup = all) random, and returns
    /// the best value after each.
    fn run(seed: u64, trials: usize, startup: usize) -> Vec<f64> {
        let tpe = Tpe {
            axes: vec![
                axis("optimizer.lr", "{ log_uniform = [0.00001, 1.0] }"),
                axis("optimizer.momentum", "{ uniform = [0.0, 0.99] }"),
            ],
            objective: Objective::test_acc(),
            objectives: None,
            budget: trials,
            startup,
            seed,
            parallelism: 1,
        };
        let mut noise = ChaCha8Rng::seed_from_u64(seed + 1000);
        let mut study = Study::new();
        let mut best = f64::MIN;
        let mut bests = Vec::new();
        for i in 0..trials {
            let Ask::Point(p) = tpe.ask(&study.0, i, 0) else {
                panic!("trial {i}: no point")
            };
            let lr = p.values[0].value.as_float().unwrap();
            let m = p.values[1].value.as_float().unwrap();
            assert!((0.00001..=1.0).contains(&lr) && (0.0..=0.99).contains(&m));
            let id = format!("t{i}");
            let v = objective(lr, m, &mut noise);
            let params: Vec<(&str, toml::Value)> = p
                .values
                .iter()
                .map(|a| (a.key.as_str(), a.value.clone()))
                .collect();
            study
                .trial(&id, &params)
                .curve(&id, "test_acc", &[v])
                .ended(&id, TrialStatus::Completed);
            best = best.max(v);
            bests.push(best);
        }
        bests
    }

    #[test]
    fn tpe_finds_better_points_than_random_search_on_a_noisy_bowl() {
        // The mean over 32 seeds of the best value after 20 and after 40 trials (over 8 the
        // noise decided it: 99.68 against 99.69; over 32 and 128, TPE at 20 leads by 0.15 and
        // 0.06).
        let seeds = 32u64;
        let mean = |startup: usize, after: usize| {
            (0..seeds)
                .map(|s| run(s, 40, startup)[after - 1])
                .sum::<f64>()
                / seeds as f64
        };
        let (random40, tpe20, tpe40) = (mean(40, 40), mean(8, 20), mean(8, 40));
        note!("random@40 {random40:.3}  tpe@20 {tpe20:.3}  tpe@40 {tpe40:.3}");
        assert!(
            tpe20 > random40,
            "TPE after 20 trials {tpe20:.3} vs random after 40 {random40:.3}"
        );
        assert!(tpe40 > random40);
    }

    #[test]
    fn asking_is_deterministic_and_waits_for_the_trials_it_learns_from() {
        let tpe = Tpe {
            axes: vec![axis("optimizer.lr", "{ log_uniform = [0.001, 0.1] }")],
            objective: Objective::test_acc(),
            objectives: None,
            budget: 5,
            startup: 1,
            seed: 7,
            parallelism: 2,
        };
        let mut s = Study::new();
        assert_eq!(tpe.ask(&s.0, 0, 0), tpe.ask(&s.0, 0, 0));
        assert_ne!(tpe.ask(&s.0, 0, 0), tpe.ask(&s.0, 0, 1), "a fresh attempt");
        let Ask::Point(p0) = tpe.ask(&s.0, 0, 0) else {
            panic!()
        };
        s.trial("a", &[("optimizer.lr", p0.values[0].value.clone())]);
        // Trial 1 learns from trials 0..=-1 (none) with P = 2: it may start while 0 runs.
        assert!(matches!(tpe.ask(&s.0, 1, 0), Ask::Point(_)));
        s.trial("b", &[("optimizer.lr", toml::Value::Float(0.01))]);
        // Trial 2 learns from trial 0, which has not ended.
        assert_eq!(tpe.ask(&s.0, 2, 0), Ask::Wait);
        s.ended("a", TrialStatus::Completed);
        let record = s.build();
        assert!(matches!(tpe.ask(&record, 2, 0), Ask::Point(_)));
        assert_eq!(tpe.ask(&record, 5, 0), Ask::Done);
    }

    #[test]
    fn densities_integrate_to_one_and_kernels_stay_in_range() {
        let dims = [Dim::Numeric { lo: 0.0, hi: 1.0 }];
        let p = Parzen::fit(&dims, &[vec![0.2], vec![0.9]]);
        let steps = 2000;
        let integral: f64 = (0..steps)
            .map(|i| (p.log_pdf(&[(i as f64 + 0.5) / steps as f64])).exp() / steps as f64)
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!((0..200).all(|_| (0.0..=1.0).contains(&p.sample(&mut rng)[0])));
        let cats = [Dim::Categorical { n: 3 }];
        let q = Parzen::fit(&cats, &[vec![1.0]]);
        let total: f64 = (0..3).map(|k| q.log_pdf(&[k as f64]).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(
            q.log_pdf(&[1.0]) > q.log_pdf(&[0.0]),
            "the observed choice is likelier"
        );
    }
}
