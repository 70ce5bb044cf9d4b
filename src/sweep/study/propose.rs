//! Asking TPE for a new trial, and rebuilding the trials it asked for earlier from the values
//! the journal holds: what `sweep run`'s study and pull workers share.

use super::super::plan::{Plan, PlannedTrial};
use super::super::sampler::{Adaptive, Ask};
use super::super::spec::SweepSpec;
use crate::store::journal::TrialDef;
use crate::store::record::StudyRecord;
use crate::train::config::KeyErrors;

/// What asking TPE for the plan's next trial gave.
pub(crate) enum Proposal {
    /// A new trial, not journalled yet.
    Trial(Box<PlannedTrial>),
    /// It waits for trials it learns from to end.
    Wait,
    /// Its budget is spent.
    Done,
    /// Every draw was a trial the sweep already ran; why, in words.
    Exhausted(String),
}

/// Draws for one trial before the space counts as exhausted.
const DRAWS: u32 = 20;

/// Asks TPE for the next trial number ([`StudyRecord::next_index`]), resolved into a planned trial; a point the
/// sweep already tried is drawn again, up to [`DRAWS`] times.
pub(crate) fn propose(
    tpe: &Adaptive,
    spec: &SweepSpec,
    plan: &Plan,
    record: &StudyRecord,
) -> anyhow::Result<Proposal> {
    let index = record.next_index();
    for attempt in 0..DRAWS {
        let point = match tpe.ask(record, index, attempt) {
            Ask::Point(p) => p,
            Ask::Wait => return Ok(Proposal::Wait),
            Ask::Done => return Ok(Proposal::Done),
        };
        let mut planned = spec
            .planned_trial(&plan.base, &plan.columns, &point, 0, index)
            .map_err(KeyErrors)?;
        planned.sampler = Some(tpe.learner(index).name().to_string());
        if record.get(&planned.id).is_none() {
            return Ok(Proposal::Trial(Box::new(planned)));
        }
    }
    Ok(Proposal::Exhausted(format!(
        "tpe: {DRAWS} draws for trial {} were all trials the sweep already ran; the space seems exhausted",
        index + 1
    )))
}

/// A trial TPE asked for earlier, resolved again from the values the journal holds; None when
/// the spec no longer resolves them to the same trial (its base changed).
pub(crate) fn rebuild_asked(
    spec: &SweepSpec,
    plan: &Plan,
    tpe: &Adaptive,
    def: &TrialDef,
) -> Option<PlannedTrial> {
    let point = tpe.point_of(&def.params)?;
    spec.planned_trial(&plan.base, &plan.columns, &point, 0, def.index)
        .ok()
        .filter(|p| p.id == def.id)
}
