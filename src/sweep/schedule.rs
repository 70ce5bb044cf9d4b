//! In which order trials start: longest first, then improved by simulating the slots. Started
//! in plan order, the longest trial of a sweep may start last and run alone at the end while
//! the other slots idle; started longest first, the short trials fill the gaps at the end (the
//! longest-processing-time rule), and a few swaps close the gap that rule leaves.
//!
//! A trial's expected cost is its remaining epochs times its training images times the cost of
//! one image for its architecture: measured on the sweep's finished epochs where that
//! architecture has run, else a size proxy (the multiply-adds of one forward pass) scaled by
//! what the sweep measured so far. Command trials count their `epochs` parameter.

use crate::train::cost;
use std::collections::HashMap;

use super::plan::{PlannedTrial, TrialInput};
use crate::exec::TrialJob;
use crate::store::record::{StudyRecord, TrialRecord};

/// How a sweep orders the trials it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Plan order, and every trial keeps its slot's threads.
    Plan,
    /// Longest first, and the cores of free slots go to the trials still running.
    Balanced,
}

/// Puts `queue` in a seeded random order, for sweeps with a pruner: a grid in sorted order
/// (learning rates from small to large) would let the first trials reach each rung with no
/// competition, and ASHA would keep them. Each trial's place comes from a hash of `seed` and
/// its id, so any two trials keep their relative order whichever others are still waiting
/// (a resumed sweep starts them in the same order).
pub fn shuffle_for_pruning(queue: &mut [TrialJob], seed: u64) {
    queue.sort_by_cached_key(|j| pruning_key(seed, &j.id));
}

/// A trial's place in the seeded random order trials start in when a pruner is on.
pub fn pruning_key(seed: u64, id: &str) -> String {
    crate::sweep::plan::short_hash(&format!("{seed}:{id}"))
}

/// What the sweep measured: seconds per image, by architecture and overall per unit of size.
pub struct Costs {
    per_image: HashMap<String, f64>,
    per_size: Option<f64>,
}

impl Costs {
    /// The costs the finished epochs of `trials` show (their `seconds` metric).
    pub fn measure<'a>(
        record: &StudyRecord,
        trials: impl Iterator<Item = &'a PlannedTrial>,
    ) -> Self {
        let mut by_arch: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_size: Vec<f64> = Vec::new();
        for planned in trials {
            let (Some(config), Some(t)) = (planned.config(), record.get(&planned.id)) else {
                continue;
            };
            let seconds: Vec<f64> = t.epochs.iter().filter_map(|r| r.get("seconds")).collect();
            if seconds.is_empty() {
                continue;
            }
            let per_epoch = seconds.iter().sum::<f64>() / seconds.len() as f64;
            let per_image = per_epoch / cost::images_per_epoch(config);
            by_arch
                .entry(cost::architecture(config))
                .or_default()
                .push(per_image);
            by_size.push(per_image / cost::model_size(config));
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Self {
            per_image: by_arch.into_iter().map(|(k, v)| (k, median(v))).collect(),
            per_size: (!by_size.is_empty()).then(|| median(by_size)),
        }
    }

    /// The expected seconds still to spend on `planned` (`done`: what ran of it so far).
    pub fn remaining(&self, planned: &PlannedTrial, done: Option<&TrialRecord>) -> f64 {
        let done_epochs = done.and_then(TrialRecord::last).map_or(0, |r| r.epoch);
        let remaining = planned
            .input
            .epochs()
            .unwrap_or(1)
            .saturating_sub(done_epochs) as f64;
        match &planned.input {
            TrialInput::Builtin(config) => {
                let per_image = self
                    .per_image
                    .get(&cost::architecture(config))
                    .copied()
                    .unwrap_or_else(|| cost::model_size(config) * self.per_size.unwrap_or(1e-9));
                remaining * cost::images_per_epoch(config) * per_image
            }
            TrialInput::Command(_) => remaining,
        }
    }
}

/// Orders `queue` so that, started in that order whenever one of `slots` frees, the trials
/// end as early as possible. Longest first (stable: equal costs keep their order), then, for
/// up to [`SEARCHED`] trials, pairwise swaps while a simulation of the slots says the last
/// trial ends earlier, the tail of the order tried first (so the longest trials keep starting
/// first where that costs nothing: they are the riskiest to misjudge): with the study's seven rows (75, 60 and five 45-epoch trials on two
/// slots), longest first ends at 195 epochs and the swaps find 180. `running` are the trials
/// already occupying slots (their remaining cost delays the slots they hold).
pub fn order(
    queue: &mut [TrialJob],
    running: &[&str],
    trials: &HashMap<String, PlannedTrial>,
    record: &StudyRecord,
    slots: Option<usize>,
) {
    let costs = Costs::measure(record, trials.values());
    let cost = |id: &str| {
        trials
            .get(id)
            .map_or(0.0, |p| costs.remaining(p, record.get(id)))
    };
    let keys: HashMap<String, f64> = queue.iter().map(|j| (j.id.clone(), cost(&j.id))).collect();
    queue.sort_by(|a, b| keys[&b.id].total_cmp(&keys[&a.id]));
    let Some(slots) = slots.filter(|&s| s > 1) else {
        return;
    };
    if queue.len() < 2 || queue.len() > SEARCHED {
        return;
    }
    let busy: Vec<f64> = running.iter().map(|id| cost(id)).collect();
    let mut order: Vec<f64> = queue.iter().map(|j| keys[&j.id]).collect();
    let mut perm: Vec<usize> = (0..queue.len()).collect();
    let mut best = makespan(&order, &busy, slots);
    'improve: loop {
        for i in (0..order.len()).rev() {
            for j in i + 1..order.len() {
                if order[i] == order[j] {
                    continue;
                }
                order.swap(i, j);
                let m = makespan(&order, &busy, slots);
                if m < best * (1.0 - 1e-9) {
                    best = m;
                    perm.swap(i, j);
                    continue 'improve;
                }
                order.swap(i, j);
            }
        }
        break;
    }
    let original = queue.to_vec();
    for (slot, &from) in queue.iter_mut().zip(&perm) {
        *slot = original[from].clone();
    }
}

/// Queues longer than this keep the longest-first order (the search costs n³ simulations
/// steps at worst per improvement, and long queues end evenly anyway).
pub const SEARCHED: usize = 64;

/// When the last trial ends if trials of the given `costs` start in order, each as soon as
/// one of `slots` frees; `busy` are the remaining costs of the trials already running.
fn makespan(costs: &[f64], busy: &[f64], slots: usize) -> f64 {
    let mut free: Vec<f64> = busy.to_vec();
    free.resize(slots.max(busy.len()), 0.0);
    let mut end = free.iter().copied().fold(0.0, f64::max);
    for &c in costs {
        let (k, t) = free
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least one slot");
        free[k] = t + c;
        end = end.max(free[k]);
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;
    use crate::sweep::spec::SweepSpec;
    use crate::train::config::SourceFile;

    const SPEC: &str = "name = \"s\"\n[base]\nepochs = 45\nbatch_size = 100\n[base.model]\nhidden = [1024, 1024, 1024]\nbatch_norm = true\n[base.optimizer]\nlr = 0.01\n[search]\nmethod = \"list\"\n[[search.trials]]\nlabel = \"45\"\n[[search.trials]]\nlabel = \"75\"\nepochs = 75\n[[search.trials]]\nlabel = \"small\"\nepochs = 75\n\"model.hidden\" = [16]\n[[search.trials]]\nlabel = \"60\"\nepochs = 60\n[[search.trials]]\nlabel = \"half data\"\n\"data.train_limit\" = 30000\nepochs = 75\n";

    /// The trials a spec plans, in plan order and by id.
    fn planned(spec: &str) -> (Vec<PlannedTrial>, HashMap<String, PlannedTrial>) {
        let spec = SweepSpec::from_source(
            SourceFile::parse(std::path::Path::new("s.toml"), spec.into()).unwrap(),
        )
        .unwrap();
        let plan = spec.plan().unwrap().trials;
        let by_id = plan.iter().map(|t| (t.id.clone(), t.clone())).collect();
        (plan, by_id)
    }

    fn job(id: &str) -> TrialJob {
        TrialJob::new(id, "/nonexistent".into(), 1)
    }

    #[test]
    fn with_a_pruner_trials_start_in_a_seeded_order_that_a_resume_keeps() {
        let ids: Vec<String> = (0..9).map(|i| format!("{i:08x}")).collect();
        let shuffled = |seed: u64, keep: &dyn Fn(usize) -> bool| {
            let mut q: Vec<TrialJob> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, id)| job(id))
                .collect();
            shuffle_for_pruning(&mut q, seed);
            q.into_iter().map(|j| j.id).collect::<Vec<String>>()
        };
        let all = shuffled(0, &|_| true);
        assert_eq!(all, shuffled(0, &|_| true), "seeded");
        assert_ne!(all, ids, "not the plan's order");
        assert_ne!(all, shuffled(1, &|_| true), "another seed, another order");
        // A resumed sweep (some trials done) starts the rest in the same relative order.
        let rest = shuffled(0, &|i| i % 3 != 0);
        let expected: Vec<String> = all.iter().filter(|id| rest.contains(id)).cloned().collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn pending_trials_start_longest_first_by_epochs_images_and_model_size() {
        let (plan, trials) = planned(SPEC);
        let label = |id: &str| trials[id].label.clone().unwrap();
        let mut queue: Vec<TrialJob> = plan.iter().map(|t| job(&t.id)).collect();
        order(&mut queue, &[], &trials, &StudyRecord::default(), None);
        let labels: Vec<String> = queue.iter().map(|j| label(&j.id)).collect();
        assert_eq!(labels, ["75", "60", "45", "half data", "small"]);

        // A 75-epoch trial resumed at epoch 50 has 25 left: after the 45-epoch one.
        let resumed = plan.iter().find(|t| label(&t.id) == "75").unwrap();
        let record = Study::new()
            .trial_in_group(&resumed.id, &resumed.group, &[])
            .epoch(&resumed.id, 50, &[("seconds", 14.0)])
            .build();
        order(&mut queue, &[], &trials, &record, None);
        let labels: Vec<String> = queue.iter().map(|j| label(&j.id)).collect();
        assert_eq!(labels, ["60", "45", "half data", "75", "small"]);
    }

    #[test]
    fn swaps_find_the_order_that_ends_the_seven_rows_together() {
        // The study's rows on two slots, in epochs: longest first ends at 195.
        let rows = [75.0, 60.0, 45.0, 45.0, 45.0, 45.0, 45.0];
        assert_eq!(makespan(&rows, &[], 2), 195.0);
        let plan = "name = \"t\"\n[base]\nepochs = 45\nbatch_size = 100\n[base.model]\nhidden = [8]\n[base.optimizer]\nlr = 0.01\n[search]\nmethod = \"list\"\n[[search.trials]]\nepochs = 75\n[[search.trials]]\nepochs = 60\n[[search.trials]]\nseed = 1\n[[search.trials]]\nseed = 2\n[[search.trials]]\nseed = 3\n[[search.trials]]\nseed = 4\n[[search.trials]]\nseed = 5\n";
        let (plan, trials) = planned(plan);
        let epochs = |j: &TrialJob| trials[&j.id].input.epochs().unwrap() as f64;
        let mut queue: Vec<TrialJob> = plan.iter().map(|t| job(&t.id)).collect();
        let record = StudyRecord::default();
        order(&mut queue, &[], &trials, &record, Some(2));
        let costs: Vec<f64> = queue.iter().map(epochs).collect();
        assert_eq!(makespan(&costs, &[], 2), 180.0, "{costs:?}");
        assert_eq!(costs[0], 75.0, "the longest still starts first");

        // With the 75-epoch trial already running on one slot, the rest still end at 180.
        let busy_id = queue[0].id.clone();
        let mut rest: Vec<TrialJob> = queue[1..].to_vec();
        order(&mut rest, &[busy_id.as_str()], &trials, &record, Some(2));
        let costs: Vec<f64> = rest.iter().map(epochs).collect();
        assert_eq!(makespan(&costs, &[75.0], 2), 180.0, "{costs:?}");
    }
}
