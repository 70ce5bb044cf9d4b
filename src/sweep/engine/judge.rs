//! The pruner's judgement of an epoch a trial reported.

use crate::store::journal::Decision;
use crate::store::record::StudyRecord;
use crate::sweep::pruner::Pruner;
use crate::trial::StopReason;

/// What the pruner makes of an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// A new decision to journal (None: the journal already holds one, or the pruner does not
    /// judge this epoch).
    pub decision: Option<Decision>,
    /// Stop the trial, and how: pruned, or paused (ASHA with `pause`).
    pub stop: Option<StopReason>,
    /// The line to say when it stops the trial by a new decision.
    pub say: Option<String>,
}

/// Judges epoch `epoch` of `trial` (`epochs`: how many it runs, when known). A decision the
/// journal already holds (made before a resume, or by another worker) stands; a trial
/// promoted from a rung was already judged there and goes on.
pub fn judge(
    pruner: &dyn Pruner,
    record: &StudyRecord,
    trial: &str,
    epoch: usize,
    epochs: Option<usize>,
) -> Judgement {
    let how = if pruner.pauses() {
        StopReason::Paused
    } else {
        StopReason::Pruned
    };
    let none = Judgement {
        decision: None,
        stop: None,
        say: None,
    };
    let Some(t) = record.get(trial) else {
        return none;
    };
    if let Some(d) = t.decisions.iter().find(|d| d.epoch == epoch) {
        let stop = d.stop && !t.promotions.contains(&epoch);
        return Judgement {
            stop: stop.then_some(how),
            ..none
        };
    }
    let Some(decision) = pruner.decide(record, trial, epoch, epochs) else {
        return none;
    };
    Judgement {
        stop: decision.stop.then_some(how),
        say: decision.stop.then(|| pruner.stop_line(&decision)),
        decision: Some(decision),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::Event;
    use crate::store::record::fixture::Study;
    use crate::sweep::pruner::Asha;
    use crate::trial::TrialStatus;

    fn asha(pause: bool) -> Asha {
        Asha {
            grace_epochs: 1,
            eta: 2,
            pause,
        }
    }

    /// Four completed trials at rung 1 (epoch 1), then `t` at 50: the bottom half.
    fn study() -> Study {
        let mut s = Study::new();
        for (i, v) in [90.0, 91.0, 92.0, 93.0].into_iter().enumerate() {
            let id = format!("c{i}");
            s.trial(&id, &[]).curve(&id, "test_acc", &[v]);
            let d = asha(false).decide(&s.0, &id, 1, Some(4)).unwrap();
            s.0.apply(&Event::Decision(d));
            s.ended(&id, TrialStatus::Completed);
        }
        s.trial("t", &[]).curve("t", "test_acc", &[50.0]);
        s
    }

    #[test]
    fn the_pruner_decides_a_new_epoch_and_says_why_it_stops() {
        let s = study();
        let j = judge(&asha(false), &s.0, "t", 1, Some(4));
        let d = j.decision.expect("a decision at rung 1");
        assert!(d.stop);
        assert_eq!(j.stop, Some(StopReason::Pruned));
        assert!(j.say.unwrap().starts_with("pruning t at epoch 1"));
        // With pause = true the same verdict pauses it.
        let j = judge(&asha(true), &s.0, "t", 1, Some(4));
        assert_eq!(j.stop, Some(StopReason::Paused));
        assert!(j.say.unwrap().starts_with("pausing t"));
        // An epoch that is no rung is not judged.
        let j = judge(&asha(false), &s.0, "t", 3, Some(8));
        assert_eq!((j.decision, j.stop), (None, None));
    }

    #[test]
    fn a_decision_the_journal_holds_stands_and_a_promoted_trial_goes_on() {
        let mut s = study();
        let d = asha(false).decide(&s.0, "t", 1, Some(4)).unwrap();
        s.0.apply(&Event::Decision(d));
        let j = judge(&asha(false), &s.0, "t", 1, Some(4));
        assert_eq!(j.decision, None, "not decided twice");
        assert_eq!(j.stop, Some(StopReason::Pruned));
        assert_eq!(j.say, None, "said when it was decided");
        s.0.apply(&Event::Promoted {
            trial: "t".into(),
            rung: 1,
            reason: "promoted".into(),
        });
        let j = judge(&asha(true), &s.0, "t", 1, Some(4));
        assert_eq!((j.decision, j.stop), (None, None));
    }
}
