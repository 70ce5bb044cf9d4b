//! What a changed spec may do to a sweep that already ran, as one rule for every change: a
//! change that would take finished work off the leaderboard is refused, with the reason and
//! the flag that accepts it; a change that loses nothing is accepted.
//!
//! Finished work is a trial that reported at least one epoch. It leaves the leaderboard when
//! the spec no longer has it (a value removed, or a base value every trial shares changed,
//! which changes every trial's id), and it is judged anew when the metric changes (its kept
//! checkpoint was selected by the old one, if it ever reported it).

use crate::store::journal::Event;
use crate::store::record::StudyRecord;
use crate::trial::Objective;

/// The flag that accepts a change that loses finished work.
pub const ACCEPT_FLAG: &str = "--accept-changes";

/// Why the change from `record` to a spec ranked by `objective` whose plan sync produced
/// `events` must be refused, if it must. `command`: the trials run the spec's command (whose
/// command line is part of every trial's id).
pub fn refusal(
    record: &StudyRecord,
    objective: &Objective,
    events: &[Event],
    command: bool,
) -> Option<String> {
    let with_results = |id: &str| record.get(id).is_some_and(|t| !t.epochs.is_empty());
    let all_retired: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Retired { trials, .. } => Some(trials),
            _ => None,
        })
        .flatten()
        .collect();
    let retired: Vec<&String> = all_retired
        .iter()
        .copied()
        .filter(|id| with_results(id))
        .collect();
    // Trials whose kept epoch the old metric chose: those that ever reported it.
    let finished = record
        .active()
        .filter(|t| t.best(&record.objective).is_some())
        .count();
    if !retired.is_empty() {
        let how = match (all_retired.len() == record.active().count(), command) {
            (false, _) => "",
            (true, false) => {
                " (every trial's id changed: a value all trials share, such as the base \
                 configuration or `epochs`, is not what they ran with)"
            }
            (true, true) => {
                " (every trial's id changed: the command line, or a value all trials share in \
                 [params], is not what they ran with)"
            }
        };
        return Some(format!(
            "the spec changed: {} with results would leave the leaderboard{how} ({}{}). Their \
             results would stay in the journal, and best/ would follow the new leaderboard. Run \
             again with {ACCEPT_FLAG} to accept that, restore the spec, or give it another name",
            crate::text::count(retired.len(), "trial"),
            retired
                .iter()
                .take(5)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if retired.len() > 5 { ", ..." } else { "" }
        ));
    }
    if !record.name.is_empty() && record.objective != *objective && finished > 0 {
        return Some(format!(
            "the spec now ranks by {objective}, and {} ranked by {} kept checkpoints selected by \
             it. Run again with {ACCEPT_FLAG} to rank them by {objective} (their checkpoints stay \
             those of the old metric's best epochs), restore the metric, or give the spec another \
             name",
            crate::text::count(finished, "trial"),
            record.objective
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::fixture::Study;
    use crate::trial::Mode;

    fn record(ran: &[&str], planned: &[&str]) -> StudyRecord {
        let mut s = Study::ranked_by(Objective::new("val_acc", Some(Mode::Max)).unwrap(), 1);
        for id in planned {
            s.trial(id, &[]);
        }
        for id in ran {
            s.curve(id, "val_acc", &[90.0]);
        }
        s.build()
    }

    fn retire(ids: &[&str]) -> Vec<Event> {
        vec![Event::Retired {
            trials: ids.iter().map(|s| s.to_string()).collect(),
            reason: "no longer in the spec".into(),
        }]
    }

    #[test]
    fn retiring_trials_with_results_is_refused_and_names_the_flag() {
        let r = record(&["aa11", "bb22"], &["aa11", "bb22", "cc33"]);
        let objective = Objective::new("val_acc", Some(Mode::Max)).unwrap();
        let why = refusal(&r, &objective, &retire(&["aa11"]), false).unwrap();
        assert!(
            why.contains("1 trial with results") && why.contains(ACCEPT_FLAG),
            "{why}"
        );
        let why = refusal(&r, &objective, &retire(&["aa11", "bb22", "cc33"]), false).unwrap();
        assert!(why.contains("every trial's id changed"), "{why}");
        let why = refusal(&r, &objective, &retire(&["aa11", "bb22", "cc33"]), true).unwrap();
        assert!(why.contains("the command line"), "{why}");
    }

    #[test]
    fn a_change_that_loses_nothing_is_accepted() {
        let r = record(&["aa11"], &["aa11", "bb22"]);
        let objective = Objective::new("val_acc", Some(Mode::Max)).unwrap();
        assert_eq!(
            refusal(&r, &objective, &retire(&["bb22"]), false),
            None,
            "bb22 never ran"
        );
        assert_eq!(refusal(&r, &objective, &[], false), None, "the spec grew");
        let nothing_ran = record(&[], &["aa11"]);
        let other = Objective::new("val_accuracy", Some(Mode::Max)).unwrap();
        assert_eq!(
            refusal(&nothing_ran, &other, &[], false),
            None,
            "a corrected metric name"
        );
        let why = refusal(&r, &other, &[], false).unwrap();
        assert!(why.contains("ranks by val_accuracy"), "{why}");
    }
}
