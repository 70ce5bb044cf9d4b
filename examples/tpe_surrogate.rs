//! TPE against random search on a surrogate of `bench/tpe.py`, in seconds instead of
//! half an hour, over enough seeds to tell a small difference from luck.
//!
//! The surrogate is the benchmark's own measurements (`bench/tpe_trials.csv`: each
//! measured trial's lr, momentum, weight decay, augmentation strength and best validation
//! accuracy), smoothed with a Gaussian kernel in the sampler's space, plus Gaussian noise for
//! the spread between neighbouring trials. Both methods use the real sampler
//! (`sweep::sweep::sampler::Tpe`; random search is TPE with every trial a start-up trial), its
//! default start-up count for 40 samples, and 2 trials at a time as the benchmark runs them.
//!
//! ```text
//! cargo run --release --example tpe_surrogate [-- --seeds 1000 --noise 0.25]
//! ```
//!
//! It prints, per budget of 10, 20 and 40 trials, the mean best value over the seeds, and how
//! often TPE at 20 trials matches random search at 40 in groups of 5 seeds (the benchmark's
//! count): the chance that one run of the benchmark meets its goal.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sweep::store::journal::{Event, TrialDef};
use sweep::store::record::StudyRecord;
use sweep::sweep::next::Next;
use sweep::sweep::sampler::Adaptive;
use sweep::sweep::search::{Axis, Method};
use sweep::trial::{EpochMetrics, Metrics, Mode, Objective, TrialStatus};

/// The benchmark's space: (key, distribution, lower bound, upper bound, log scale).
const SPACE: [(&str, &str, f64, f64, bool); 4] = [
    ("optimizer.lr", "log_uniform", 0.001, 0.3, true),
    ("optimizer.momentum", "uniform", 0.5, 0.98, false),
    ("optimizer.weight_decay", "log_uniform", 1e-7, 1e-3, true),
    ("augment.strength", "uniform", 0.0, 1.5, false),
];
/// How much each parameter's distance counts in the smoothing (weight decay barely matters
/// at 3 epochs; a full weight would average its neighbours away).
const DISTANCE_WEIGHTS: [f64; 4] = [1.0, 1.0, 0.3, 1.0];
/// The smoothing kernel's width, as a fraction of each parameter's range.
const BANDWIDTH: f64 = 0.06;
const BUDGETS: [usize; 3] = [10, 20, 40];
const SAMPLES: usize = 40;
const PARALLEL: usize = 2;

/// A point scaled to [0, 1] per parameter (log scale where the space is).
type Unit = [f64; 4];

fn to_unit(values: [f64; 4]) -> Unit {
    std::array::from_fn(|i| {
        let (_, _, lo, hi, log) = SPACE[i];
        if log {
            (values[i].ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (values[i] - lo) / (hi - lo)
        }
    })
}

/// The measured trials, smoothed.
struct Surrogate(Vec<(Unit, f64)>);

impl Surrogate {
    fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let rows = text
            .lines()
            .enumerate()
            .skip(1) // the header
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                let v: Vec<f64> = line
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{path}:{}: {e}", i + 1))?;
                if v.len() != 5 {
                    return Err(format!("{path}:{}: expected 5 columns", i + 1));
                }
                Ok((to_unit([v[0], v[1], v[2], v[3]]), v[4]))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self(rows))
    }

    fn value(&self, x: &Unit) -> f64 {
        let (mut sum, mut weights) = (0.0, 0.0);
        for (p, y) in &self.0 {
            let d2: f64 = (0..4)
                .map(|j| DISTANCE_WEIGHTS[j] * (p[j] - x[j]).powi(2))
                .sum();
            let k = (-d2 / (2.0 * BANDWIDTH * BANDWIDTH)).exp() + 1e-12;
            sum += k * y;
            weights += k;
        }
        sum / weights
    }
}

/// One sweep of `SAMPLES` trials; the best value after each.
fn run(surrogate: &Surrogate, seed: u64, startup: usize, noise_sd: f64) -> Vec<f64> {
    let axes = SPACE
        .iter()
        .map(|(key, dist, lo, hi, _)| {
            let value: toml::Table = format!("v = {{ {dist} = [{lo:e}, {hi:e}] }}")
                .parse()
                .expect("a valid distribution");
            Axis::parse(key, &value["v"], Method::Tpe).expect("a valid axis")
        })
        .collect();
    let tpe = Adaptive {
        method: sweep::sweep::search::Method::Tpe,
        axes,
        objective: Objective::new("val_acc", Some(Mode::Max)).expect("a metric"),
        objectives: None,
        constraints: Vec::new(),
        budget: SAMPLES,
        startup,
        seed,
        parallelism: PARALLEL,
    };
    let mut noise = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut record = StudyRecord::default();
    // Trials still running, oldest first: they end in the order they started.
    let mut running: VecDeque<(String, f64)> = VecDeque::new();
    let finish = |record: &mut StudyRecord, (trial, value): (String, f64)| {
        record.apply(&Event::Epoch {
            trial: trial.clone(),
            row: EpochMetrics {
                epoch: 1,
                metrics: Metrics::new().with("val_acc", value),
            },
        });
        record.apply(&Event::Finished {
            trial,
            attempt: 1,
            status: TrialStatus::Completed,
            message: None,
            seconds: 1.0,
            best: None,
        });
    };
    let (mut best, mut bests) = (f64::MIN, Vec::new());
    for index in 0..SAMPLES {
        let point = loop {
            match tpe.ask(&record, index, 0) {
                Next::Run(p) => break p,
                Next::Wait => {
                    let oldest = running.pop_front().expect("a running trial to wait for");
                    finish(&mut record, oldest);
                }
                Next::Done(_) => unreachable!("the budget is {SAMPLES}"),
            }
        };
        if running.len() == PARALLEL {
            let oldest = running.pop_front().expect("a running trial");
            finish(&mut record, oldest);
        }
        let number = |key: &str| {
            let a = point
                .values
                .iter()
                .find(|a| a.key == key)
                .expect("every key");
            a.value.as_float().expect("a float")
        };
        let x = to_unit(SPACE.map(|s| number(s.0)));
        let (u1, u2): (f64, f64) = (noise.random::<f64>().max(1e-300), noise.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let value = surrogate.value(&x) + noise_sd * z;
        let id = format!("t{index}");
        record.apply(&Event::Trial(TrialDef {
            index,
            id: id.clone(),
            group: id.clone(),
            label: None,
            params: point
                .values
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect(),
            sampler: None,
        }));
        running.push_back((id, value));
        best = best.max(value);
        bests.push(best);
    }
    bests
}

fn main() -> Result<(), String> {
    let (mut seeds, mut noise_sd) = (1000u64, 0.25);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seeds" => seeds = value.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--noise" => noise_sd = value.parse().map_err(|e| format!("--noise: {e}"))?,
            _ => return Err(format!("unknown flag {flag} (--seeds N, --noise SD)")),
        }
    }
    let surrogate = Surrogate::load(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/tpe_trials.csv"))?;
    // The spec's default for 40 samples (an eighth).
    let startup = SAMPLES.div_ceil(8).clamp(1, 10);
    let random: Vec<Vec<f64>> = (0..seeds)
        .map(|s| run(&surrogate, s, SAMPLES, noise_sd))
        .collect();
    let tpe: Vec<Vec<f64>> = (0..seeds)
        .map(|s| run(&surrogate, s, startup, noise_sd))
        .collect();
    let mean = |runs: &[Vec<f64>], budget: usize| {
        runs.iter().map(|r| r[budget - 1]).sum::<f64>() / runs.len() as f64
    };
    println!(
        "{} measured trials, noise sd {noise_sd}, {seeds} seeds, {PARALLEL} at a time, TPE start-up {startup}",
        surrogate.0.len()
    );
    println!("budget   random    tpe");
    for b in BUDGETS {
        println!("{b:6}   {:6.3}   {:6.3}", mean(&random, b), mean(&tpe, b));
    }
    let groups = (seeds / 5) as usize;
    let met = (0..groups)
        .filter(|g| {
            let t20: f64 = (0..5).map(|k| tpe[g * 5 + k][19]).sum();
            let r40: f64 = (0..5).map(|k| random[g * 5 + k][39]).sum();
            t20 >= r40
        })
        .count();
    println!(
        "TPE at 20 trials {:.3} vs random at 40 {:.3}; matched in {met} of {groups} groups of 5 seeds",
        mean(&tpe, 20),
        mean(&random, 40)
    );
    Ok(())
}
