//! The rules of a trial's life that `sweep run` (`sweep::study`) and pull workers
//! (`sweep::worker`) both follow, written once: what runs next and the one answer it gives
//! ([`Next`]), the pruner's judgement of an epoch ([`judge`]), what an attempt's end means
//! (journal lines, a retry, a halt: [`conclude`]), the attempts running and their deadlines
//! ([`Running`]), the sweep's start line ([`sweep_event`]), and when the leaderboard, `best/`
//! and the live report are written again ([`Publisher`]).
//!
//! Each is a function of the study record (and of the options), so that both loops decide
//! alike and each rule is tested without processes, a cluster or a clock. What differs
//! between the loops is how they hold the journal: `sweep run` holds it for its whole run,
//! a worker one decision at a time under the shared lock, with its buffer and its lease.

mod conclude;
mod judge;
mod publisher;
mod running;

pub use conclude::{Conclusion, EndRules, conclude};
pub use judge::{Judgement, judge};
pub use publisher::{LIVE_REPORT_EVERY, LiveReport, Publisher, discard_paused_states, publish};
pub use running::{Attempt, Running};

pub use crate::sweep::next::Next;

use crate::store::journal::Event;
use crate::store::record::StudyRecord;
use crate::sweep::plan::Plan;
use crate::sweep::pruner::PrunerSpec;

/// The line that starts (or resumes, or restarts) a sweep: its plan as this run sees it,
/// `pending` trials to run, on `backend`.
pub fn sweep_event(plan: &Plan, pending: usize, backend: &str) -> Event {
    Event::Sweep {
        name: plan.name.clone(),
        objective: plan.objective.clone(),
        repeats: plan.repeats,
        columns: plan.columns.clone(),
        trials: plan.trials.len(),
        pending,
        backend: backend.into(),
        pid: std::process::id(),
        pruner: plan.pruner.as_ref().map(PrunerSpec::describe),
        sampler: plan.adaptive.as_ref().map(|a| a.describe()),
        objectives: plan.objectives.clone(),
        constraints: plan.constraints.clone(),
    }
}

/// Trials in all, for the progress display and the live report: the plan's (or the adaptive
/// sampler's budget), at least those the journal holds.
pub fn total_trials(plan: &Plan, record: &StudyRecord) -> usize {
    let journalled = record.active().count();
    match &plan.adaptive {
        Some(a) => a.budget.max(journalled),
        None => plan.trials.len().max(journalled),
    }
}
