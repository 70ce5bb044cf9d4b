//! The adaptive samplers, asked for one trial at a time: multivariate TPE ([`tpe`]), a
//! Gaussian process with log expected improvement ([`gp`]), and `auto`, which picks between
//! them ([`Adaptive::learner`]).
//!
//! The start-up trials come first: random draws for TPE, a scrambled Sobol sequence (even
//! coverage of the space) for gp and auto. Then each proposal learns from the trials with
//! results.
//!
//! **Reproducible in parallel.** Trial `i` is sampled from exactly the trials `0..=i-P` (P =
//! the slots running trials at once), which must have ended: the sampler waits for them.
//! Trials `i-P+1..i` are running as far as it knows (their parameters are known, their results
//! are not, whatever they are by now): TPE counts them as "liars" with the worst value, the
//! GP as pending points at its own mean, so that parallel slots do not all sample the same
//! point. Every draw for trial `i` comes from a generator seeded by the spec's seed and `i`.
//! Two runs of one spec with the same parallelism therefore ask for the same trials however
//! long each trial takes; the cost is a slot left idle while trial `i-P` still runs.

mod gp;
mod sobol;
mod tpe;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::next::Next;
use super::search::{Axis, Domain, Method, Point, round_sig};
use crate::objectives::{Bound, Objectives};
use crate::pareto;
use crate::store::record::{StudyRecord, TrialRecord};
use crate::trial::{Objective, TrialStatus};

/// What the sampler says when asked: a point to try next, wait for a trial it must learn
/// from, or done (its budget is spent).
pub type Ask = Next<Point>;

/// An adaptive sampler over a search space.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptive {
    /// Which: `Tpe`, `Gp` or `Auto` (never a method that plans its trials up front).
    pub method: Method,
    /// The searched axes (the same distributions as random search).
    pub axes: Vec<Axis>,
    /// What is optimised (with several objectives: the one that picks each trial's kept
    /// epoch, and ranks pruned trials).
    pub objective: Objective,
    /// Several objectives: completed trials are then ordered as Optuna's multi-objective TPE
    /// splits them, by constrained non-dominated rank and then hypervolume contribution.
    pub objectives: Option<Objectives>,
    /// With one objective: what a feasible trial meets. TPE ranks the trials that miss them
    /// after those that meet them, by how much; the GP models each and weighs its expected
    /// improvement by the probability that a point meets them all.
    pub constraints: Vec<Bound>,
    /// Trials in all.
    pub budget: usize,
    /// Random (TPE) or quasi-random (gp, auto) trials before it starts learning.
    pub startup: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Trials that run at once (the determinism rule's P).
    pub parallelism: usize,
}

/// One parameter's place in the sampler's continuous or categorical space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Dim {
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
pub(super) type Coords = Vec<f64>;

/// Who proposes a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learner {
    /// A start-up draw: random for TPE, quasi-random for the GP.
    Startup,
    Tpe,
    Gp,
}

impl Learner {
    /// The name the journal and the displays give it.
    pub fn name(self) -> &'static str {
        match self {
            Learner::Startup => "startup",
            Learner::Tpe => "tpe",
            Learner::Gp => "gp",
        }
    }
}

/// `auto` models with a GP up to this many trials, then switches to TPE: past it a GP's ask,
/// O(n³), would slow every trial down (docs/benchmarks.md, "Search that learns (GP)").
pub const AUTO_GP_TRIALS: usize = 200;

/// `auto` takes TPE for a space with more categorical parameters than this.
pub const AUTO_MAX_CATEGORICAL: usize = 2;

impl Adaptive {
    /// Who proposes trial `index`: the start-up, then TPE or the GP as the method says; `auto`
    /// takes the GP for one objective over a space of at most [`AUTO_MAX_CATEGORICAL`]
    /// categorical parameters and more numeric ones, up to [`AUTO_GP_TRIALS`] trials, and TPE
    /// otherwise.
    pub fn learner(&self, index: usize) -> Learner {
        if index < self.startup {
            return Learner::Startup;
        }
        match self.method {
            Method::Gp => Learner::Gp,
            Method::Auto if self.suits_gp().is_ok() && index < AUTO_GP_TRIALS => Learner::Gp,
            _ => Learner::Tpe,
        }
    }

    /// Whether `auto` may use the GP on this space and these objectives, and why not.
    pub fn suits_gp(&self) -> Result<(), String> {
        if self.objectives.is_some() {
            return Err("several objectives".into());
        }
        let categorical = self
            .axes
            .iter()
            .filter(|a| matches!(Dim::of(a), Dim::Categorical { .. }))
            .count();
        let numeric = self.axes.len() - categorical;
        if categorical > AUTO_MAX_CATEGORICAL || categorical >= numeric {
            return Err(format!(
                "{categorical} of its {} parameters are categorical",
                self.axes.len()
            ));
        }
        Ok(())
    }

    /// How the method chooses, in words (for `plan`, `status` and the report).
    pub fn describe(&self) -> String {
        let startup = match self.method {
            Method::Tpe => format!("the first {} at random", self.startup),
            _ => format!("the first {} quasi-random (scrambled Sobol)", self.startup),
        };
        let rest = match self.method {
            Method::Gp => "then a Gaussian process (log expected improvement)".to_string(),
            Method::Auto => match self.suits_gp() {
                Ok(()) if self.budget > AUTO_GP_TRIALS => format!(
                    "then a Gaussian process up to trial {AUTO_GP_TRIALS}, and TPE after it (a \
                     GP's ask grows as n³)"
                ),
                Ok(()) => "then a Gaussian process (log expected improvement)".into(),
                Err(why) => format!("then TPE: {why}"),
            },
            _ => "then TPE".into(),
        };
        format!(
            "{}: {} trials, {startup}, {rest}",
            self.method.name(),
            self.budget
        )
    }

    /// The point of trial `index` in the plan: the start-up's, then the proposal of TPE or the
    /// GP from what the trials before it taught. `attempt` > 0 asks again with fresh draws
    /// (the point proposed before was a trial that already exists).
    pub fn ask(&self, record: &StudyRecord, index: usize, attempt: u32) -> Ask {
        if index >= self.budget {
            return Next::Done(None);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.draw_seed(index, attempt));
        let learner = self.learner(index);
        if learner == Learner::Startup {
            return Next::Run(match (self.method, attempt) {
                (Method::Tpe, _) | (_, 1..) => self.point(&self.random(&mut rng)),
                _ => self.point(&self.quasi_random(index)),
            });
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
            return Next::Wait;
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
            return Next::Run(self.point(&self.random(&mut rng)));
        }
        let dims: Vec<Dim> = self.axes.iter().map(Dim::of).collect();
        let coords = match learner {
            // A repeated ask of a deterministic model would propose the same point again.
            Learner::Gp if attempt == 0 => {
                let integers: Vec<Option<usize>> = self
                    .axes
                    .iter()
                    .map(|a| match a.domain {
                        Domain::Int(lo, hi) => usize::try_from(hi - lo + 1).ok(),
                        _ => None,
                    })
                    .collect();
                let observed = self.observed(&scored, &learnt_from);
                gp::propose(&dims, &integers, &observed, &liars, rng.random())
            }
            Learner::Gp => self.random(&mut rng),
            _ => {
                self.rank_infeasible_last(&mut scored, &learnt_from);
                tpe::propose(&dims, scored, liars, &mut rng)
            }
        };
        Next::Run(self.point(&coords))
    }

    /// The seed of trial `index`'s draws at `attempt`.
    fn draw_seed(&self, index: usize, attempt: u32) -> u64 {
        crate::train::rng::splitmix(
            crate::train::rng::splitmix(self.seed ^ 0x7470_6500) ^ index as u64,
        ) ^ u64::from(attempt)
    }

    /// Start-up trial `index`'s coordinates: point `index` of the spec seed's scrambled Sobol
    /// sequence, scaled to each axis.
    fn quasi_random(&self, index: usize) -> Coords {
        let u =
            sobol::Sobol::new(self.axes.len(), Some(self.seed ^ 0x4a17_0000)).point(index as u64);
        self.axes
            .iter()
            .zip(u)
            .map(|(a, u)| match Dim::of(a) {
                Dim::Numeric { lo, hi } => lo + u * (hi - lo),
                Dim::Categorical { n } => (u * n as f64).floor(),
            })
            .collect()
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

    /// With constraints: ranks each trial that misses them (at its kept epoch) after every
    /// trial that meets them and before diverged ones, by how much it misses them, as
    /// Optuna's constrained TPE does.
    fn rank_infeasible_last(&self, scored: &mut [(Coords, Standing)], trials: &[&TrialRecord]) {
        if self.constraints.is_empty() {
            return;
        }
        for (s, t) in scored.iter_mut().zip(trials) {
            let violation = self.violation(t);
            if s.1.0 < 2 && violation > 0.0 {
                s.1 = Standing(2, 0, violation);
            }
        }
    }

    /// By how much trial `t` misses the constraints at its kept epoch (0: met; infinite
    /// without a result).
    fn violation(&self, t: &TrialRecord) -> f64 {
        t.best(&self.objective).map_or(f64::INFINITY, |r| {
            crate::objectives::violation(&self.constraints, &r.metrics)
        })
    }

    /// What the GP learns from the trials in `scored` (aligned with `trials`): their values,
    /// and with constraints whether each met them and each constraint's excess.
    fn observed(&self, scored: &[(Coords, Standing)], trials: &[&TrialRecord]) -> gp::Observed {
        let excess = self
            .constraints
            .iter()
            .map(|c| {
                scored
                    .iter()
                    .zip(trials)
                    .filter_map(|((x, _), t)| {
                        let e = c.signed_excess(&t.best(&self.objective)?.metrics)?;
                        e.is_finite().then(|| (x.clone(), e))
                    })
                    .collect()
            })
            .collect();
        gp::Observed {
            values: gp_values(scored),
            feasible: trials
                .iter()
                .map(|t| self.constraints.is_empty() || self.violation(t) <= 0.0)
                .collect(),
            excess,
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
            TrialStatus::Diverged => Some(Standing(3, 0, f64::INFINITY)),
            _ => None,
        }
    }
}

/// A finished trial's rank key, smaller is better: (tier, epochs short of the longest, cost).
/// Tiers: 0 completed, 1 pruned, 2 missing the constraints (cost: by how much), 3 diverged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Standing(pub(super) u8, pub(super) usize, pub(super) f64);

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

/// The values the GP models, larger is better: a trial's cost negated; a diverged trial
/// (infinite cost) at the worst value seen.
fn gp_values(scored: &[(Coords, Standing)]) -> Vec<(Coords, f64)> {
    let worst = scored
        .iter()
        .map(|s| s.1.2)
        .filter(|c| c.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let worst = if worst.is_finite() { worst } else { 0.0 };
    scored
        .iter()
        .map(|(x, s)| {
            let cost = if s.2.is_finite() { s.2 } else { worst };
            (x.clone(), -cost)
        })
        .collect()
}

/// A trial that has ended for good (or for this run), or left the plan: what it taught is
/// fixed.
fn settled(t: &TrialRecord) -> bool {
    !t.active || t.status.is_final() || t.status.is_failure()
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

    /// Runs `trials` trials one at a time (P = 1), TPE or (startup = all) random, and returns
    /// the best value after each.
    fn run(seed: u64, trials: usize, startup: usize) -> Vec<f64> {
        let tpe = Adaptive {
            method: Method::Tpe,
            axes: vec![
                axis("optimizer.lr", "{ log_uniform = [0.00001, 1.0] }"),
                axis("optimizer.momentum", "{ uniform = [0.0, 0.99] }"),
            ],
            objective: Objective::test_acc(),
            objectives: None,
            constraints: Vec::new(),
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
            let Next::Run(p) = tpe.ask(&study.0, i, 0) else {
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
        let tpe = Adaptive {
            method: Method::Tpe,
            axes: vec![axis("optimizer.lr", "{ log_uniform = [0.001, 0.1] }")],
            objective: Objective::test_acc(),
            objectives: None,
            constraints: Vec::new(),
            budget: 5,
            startup: 1,
            seed: 7,
            parallelism: 2,
        };
        let mut s = Study::new();
        assert_eq!(tpe.ask(&s.0, 0, 0), tpe.ask(&s.0, 0, 0));
        assert_ne!(tpe.ask(&s.0, 0, 0), tpe.ask(&s.0, 0, 1), "a fresh attempt");
        let Next::Run(p0) = tpe.ask(&s.0, 0, 0) else {
            panic!()
        };
        s.trial("a", &[("optimizer.lr", p0.values[0].value.clone())]);
        // Trial 1 learns from trials 0..=-1 (none) with P = 2: it may start while 0 runs.
        assert!(matches!(tpe.ask(&s.0, 1, 0), Next::Run(_)));
        s.trial("b", &[("optimizer.lr", toml::Value::Float(0.01))]);
        // Trial 2 learns from trial 0, which has not ended.
        assert_eq!(tpe.ask(&s.0, 2, 0), Next::Wait);
        s.ended("a", TrialStatus::Completed);
        let record = s.build();
        assert!(matches!(tpe.ask(&record, 2, 0), Next::Run(_)));
        assert_eq!(tpe.ask(&record, 5, 0), Next::Done(None));
    }

    fn adaptive(
        method: Method,
        axes: Vec<Axis>,
        budget: usize,
        startup: usize,
        p: usize,
    ) -> Adaptive {
        Adaptive {
            method,
            axes,
            objective: Objective::test_acc(),
            objectives: None,
            constraints: Vec::new(),
            budget,
            startup,
            seed: 5,
            parallelism: p,
        }
    }

    /// Asks `sampler.budget` trials of `sampler` for `f` (maximised), `sampler.parallelism` at
    /// a time; a running trial ends when the sampler waits, the oldest first (the newest with
    /// `reverse`); returns the asked points' values.
    fn drive(sampler: &Adaptive, f: impl Fn(&[f64]) -> f64, reverse: bool) -> Vec<Vec<f64>> {
        drive_metrics(sampler, |x| vec![("test_acc", f(x))], reverse)
    }

    /// As [`drive`], each trial reporting the metrics `f` gives.
    fn drive_metrics(
        sampler: &Adaptive,
        f: impl Fn(&[f64]) -> Vec<(&'static str, f64)>,
        reverse: bool,
    ) -> Vec<Vec<f64>> {
        let mut study = Study::new();
        let mut running: Vec<(String, Vec<(&str, f64)>)> = Vec::new();
        let mut asked = Vec::new();
        for i in 0..sampler.budget {
            let p = loop {
                match sampler.ask(&study.0, i, 0) {
                    Next::Run(p) => break p,
                    Next::Wait => {
                        let (id, v) = if reverse {
                            running.pop().unwrap()
                        } else {
                            running.remove(0)
                        };
                        study.epoch(&id, 1, &v).ended(&id, TrialStatus::Completed);
                    }
                    Next::Done(_) => panic!("done early"),
                }
            };
            // Numbers as they are; a choice by its name's length.
            let x: Vec<f64> = p
                .values
                .iter()
                .map(|a| match &a.value {
                    toml::Value::Float(f) => *f,
                    toml::Value::Integer(i) => *i as f64,
                    other => other.to_string().len() as f64,
                })
                .collect();
            let id = format!("t{i}");
            let params: Vec<(&str, toml::Value)> = p
                .values
                .iter()
                .map(|a| (a.key.as_str(), a.value.clone()))
                .collect();
            study.trial(&id, &params);
            running.push((id, f(&x)));
            asked.push(x);
        }
        asked
    }

    #[test]
    fn gp_finds_the_maximum_of_a_two_dimensional_quadratic_within_20_trials() {
        let axes = vec![
            axis("a", "{ uniform = [-2.0, 2.0] }"),
            axis("b", "{ uniform = [0.0, 5.0] }"),
        ];
        let gp = adaptive(Method::Gp, axes, 20, 10, 1);
        let f = |x: &[f64]| 100.0 - (x[0] - 0.7).powi(2) - 2.0 * (x[1] - 3.1).powi(2);
        let asked = drive(&gp, f, false);
        let best = asked.iter().map(|x| f(x)).fold(f64::MIN, f64::max);
        assert!(best > 100.0 - 1e-3, "best {best} of {asked:?}");
        // The start-up alone (quasi-random) is far from it.
        let startup = asked[..10].iter().map(|x| f(x)).fold(f64::MIN, f64::max);
        assert!(startup < 99.9, "{startup}");
    }

    #[test]
    fn gp_and_tpe_find_the_best_point_that_meets_a_constraint() {
        // The objective rises towards a = 2; the constraint cost = a + b <= 1 cuts that
        // corner off. The best feasible value is at a = 1, b = 0: 100 + 1 − 0 = 101.
        let axes = vec![
            axis("a", "{ uniform = [-2.0, 2.0] }"),
            axis("b", "{ uniform = [0.0, 2.0] }"),
        ];
        let metrics = |x: &[f64]| {
            vec![
                ("test_acc", 100.0 + x[0] - 0.5 * x[1] * x[1]),
                ("cost", x[0] + x[1]),
            ]
        };
        let feasible_best = |asked: &[Vec<f64>]| {
            asked
                .iter()
                .filter(|x| x[0] + x[1] <= 1.0)
                .map(|x| metrics(x)[0].1)
                .fold(f64::MIN, f64::max)
        };
        for (method, trials, within) in [(Method::Gp, 25, 0.02), (Method::Tpe, 60, 0.2)] {
            let mut s = adaptive(method, axes.clone(), trials, 10, 1);
            s.constraints = vec![Bound::parse("cost <= 1", false).unwrap()];
            let asked = drive_metrics(&s, metrics, false);
            let best = feasible_best(&asked);
            assert!(best > 101.0 - within, "{method:?}: {best}");
            // It learns where the constraint holds: most of its later trials meet it, or miss
            // it by a hair on the boundary where the optimum lies (unconstrained, a = 2).
            let late = &asked[trials / 2..];
            let near = late.iter().filter(|x| x[0] + x[1] <= 1.05).count();
            assert!(
                near * 2 > late.len(),
                "{method:?}: {near} of {}: {late:?}",
                late.len()
            );
            // Without the constraint the same search goes past it, towards a = 2.
            s.constraints.clear();
            let free = drive_metrics(&s, metrics, false);
            let near = free[trials / 2..]
                .iter()
                .filter(|x| x[0] + x[1] <= 1.05)
                .count();
            assert!(near * 2 < late.len(), "{method:?} unconstrained: {near}");
        }
    }

    #[test]
    fn gp_asks_the_same_trials_in_parallel_whatever_order_the_running_ones_end_in() {
        let axes = vec![
            axis("lr", "{ log_uniform = [0.0001, 1.0] }"),
            axis("width", "{ int = [16, 512] }"),
            axis("act", "[\"relu\", \"sigmoid\"]"),
        ];
        let gp = adaptive(Method::Gp, axes, 16, 6, 3);
        let f = |x: &[f64]| -(x[0].log10() + 2.0).powi(2) - (x[1] - 100.0).abs() / 100.0;
        let a = drive(&gp, f, false);
        let b = drive(&gp, f, true);
        assert_eq!(a, b);
        // Integers stay whole and within their range.
        assert!(
            a.iter()
                .all(|x| x[1].fract() == 0.0 && (16.0..=512.0).contains(&x[1]))
        );
    }

    #[test]
    fn auto_takes_the_gp_for_numeric_spaces_and_tpe_for_the_rest() {
        let numeric = vec![
            axis("lr", "{ log_uniform = [0.0001, 1.0] }"),
            axis("momentum", "{ uniform = [0.0, 0.99] }"),
            axis("opt", "[\"sgd\", \"adam\"]"),
        ];
        let auto = adaptive(Method::Auto, numeric.clone(), 400, 10, 1);
        assert_eq!(auto.learner(3), Learner::Startup);
        assert_eq!(auto.learner(10), Learner::Gp);
        assert_eq!(auto.learner(AUTO_GP_TRIALS - 1), Learner::Gp);
        assert_eq!(
            auto.learner(AUTO_GP_TRIALS),
            Learner::Tpe,
            "a GP's ask grows as n³"
        );
        assert!(
            auto.describe()
                .contains("up to trial 200, and TPE after it")
        );
        // Mostly categorical: TPE, and the reason says why.
        let categorical = vec![
            axis("lr", "{ log_uniform = [0.0001, 1.0] }"),
            axis("a", "[1, 2]"),
            axis("b", "[\"x\", \"y\"]"),
        ];
        let auto = adaptive(Method::Auto, categorical, 40, 10, 1);
        assert_eq!(auto.learner(10), Learner::Tpe);
        assert!(
            auto.describe()
                .contains("then TPE: 2 of its 3 parameters are categorical")
        );
        // Several objectives: TPE (multi-objective).
        let mut several = adaptive(Method::Auto, numeric.clone(), 40, 10, 1);
        several.objectives = Some(crate::objectives::Objectives {
            objectives: vec![
                Objective::test_acc(),
                Objective::new("secs", Some(crate::trial::Mode::Min)).unwrap(),
            ],
            constraints: Vec::new(),
            select: None,
        });
        assert_eq!(several.learner(10), Learner::Tpe);
        // gp and tpe are what they say.
        assert_eq!(
            adaptive(Method::Gp, numeric.clone(), 400, 10, 1).learner(300),
            Learner::Gp
        );
        assert_eq!(
            adaptive(Method::Tpe, numeric, 40, 10, 1).learner(10),
            Learner::Tpe
        );
    }

    #[test]
    fn tpe_asks_what_it_asked_before_the_gp_came() {
        // tests/recorded/tpe-asks.txt: the 30 trials TPE asked 2 at a time on this space at
        // commit 8c38ea9, before the sampler became a folder and learnt the GP.
        let tpe = Adaptive {
            method: Method::Tpe,
            axes: vec![
                axis("lr", "{ log_uniform = [0.0001, 1.0] }"),
                axis("momentum", "{ uniform = [0.0, 0.99] }"),
                axis("width", "{ int = [16, 512] }"),
                axis("act", "[\"relu\", \"gelu\", \"tanh\"]"),
            ],
            objective: Objective::new("val_acc", Some(crate::trial::Mode::Max)).unwrap(),
            objectives: None,
            constraints: Vec::new(),
            budget: 30,
            startup: 5,
            seed: 11,
            parallelism: 2,
        };
        let mut study = Study::new();
        let mut running: Vec<(String, f64)> = Vec::new();
        let mut asked = Vec::new();
        for index in 0..30 {
            let p = loop {
                match tpe.ask(&study.0, index, 0) {
                    Next::Run(p) => break p,
                    _ => {
                        let (id, v) = running.remove(0);
                        study
                            .curve(&id, "val_acc", &[v])
                            .ended(&id, TrialStatus::Completed);
                    }
                }
            };
            let lr = p.values[0].value.as_float().unwrap();
            let m = p.values[1].value.as_float().unwrap();
            let id = format!("t{index}");
            let params: Vec<(&str, toml::Value)> = p
                .values
                .iter()
                .map(|a| (a.key.as_str(), a.value.clone()))
                .collect();
            study.trial(&id, &params);
            running.push((
                id,
                100.0 - 3.0 * (lr.log10() + 2.0).powi(2) - 2.0 * (m - 0.9).abs(),
            ));
            let values: Vec<String> = p.values.iter().map(|a| a.value.to_string()).collect();
            asked.push(values.join(" "));
        }
        let recorded = include_str!("../../../tests/recorded/tpe-asks.txt");
        assert_eq!(asked, recorded.lines().collect::<Vec<_>>());
    }
}
