//! Asking the adaptive sampler for a new trial, and rebuilding the trials it asked for earlier
//! from the values the journal holds: what `sweep run`'s study and pull workers share.

use super::super::next::Next;
use super::super::plan::{Plan, PlannedTrial};
use super::super::sampler::Adaptive;
use super::super::spec::SweepSpec;
use crate::store::journal::TrialDef;
use crate::store::record::StudyRecord;
use crate::train::config::KeyErrors;

/// Draws for one trial before the space counts as exhausted.
const DRAWS: u32 = 20;

/// Asks the adaptive sampler for the next trial number ([`StudyRecord::next_index`]),
/// resolved into a planned trial (not journalled yet); a point the sweep already tried is drawn
/// again, up to [`DRAWS`] times, and then the space counts as exhausted (done, saying why).
pub(crate) fn propose(
    sampler: &Adaptive,
    spec: &SweepSpec,
    plan: &Plan,
    record: &StudyRecord,
) -> anyhow::Result<Next<Box<PlannedTrial>>> {
    let index = record.next_index();
    for attempt in 0..DRAWS {
        let point = match sampler.ask(record, index, attempt) {
            Next::Run(p) => p,
            Next::Wait => return Ok(Next::Wait),
            Next::Done(why) => return Ok(Next::Done(why)),
        };
        let mut planned = spec
            .planned_trial(&plan.base, &plan.columns, &point, 0, index)
            .map_err(KeyErrors)?;
        planned.sampler = Some(sampler.learner(index).name().to_string());
        if record.get(&planned.id).is_none() {
            return Ok(Next::Run(Box::new(planned)));
        }
    }
    Ok(Next::Done(Some(format!(
        "{}: {DRAWS} draws for trial {} were all trials the sweep already ran; the space seems \
         exhausted",
        sampler.method.name(),
        index + 1
    ))))
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
