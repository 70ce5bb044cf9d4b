//! Publishing what a study knows: the leaderboard, `best/` (always the leaderboard's winner),
//! and dropping the checkpoints `keep_checkpoints` no longer keeps; and `collect`, which
//! rebuilds them from the trial directories.

use super::Study;
use super::resume::collect_ended;
use crate::store::atomic;
use crate::store::journal::Event;
use crate::store::leaderboard::{Csv, Exporter, Leaderboard};
use crate::store::record::StudyRecord;
use crate::store::sweep_dir::SweepDir;

impl Study<'_> {
    /// Rewrites leaderboard.csv and, when the winner changed, best/. Unless `force`, after
    /// every trial in sweeps of up to 100 trials and after every 1/100 of the trials in larger
    /// ones, so that rewriting files stays a linear cost however many trials end; None when
    /// skipped.
    pub(crate) fn publish(&mut self, force: bool) -> anyhow::Result<Option<Leaderboard>> {
        self.unpublished += 1;
        let batch = (self.record.trials.len() / 100).max(1);
        if !force && self.unpublished < batch {
            return Ok(None);
        }
        self.unpublished = 0;
        let board = publish(&self.dir, &self.record, self.plan.keep_checkpoints)?;
        Ok(Some(board))
    }
}

/// The current leaderboard of a sweep directory (safe while a run is in progress).
pub fn leaderboard(dir: &SweepDir) -> anyhow::Result<(StudyRecord, Leaderboard)> {
    let record = dir.load_record(dir.is_driven())?;
    let board = Leaderboard::build(&record);
    Ok((record, board))
}

/// Rebuilds a sweep's journal, leaderboard and `best/` from its trial directories (after
/// trials ran detached on Slurm, or were copied in from elsewhere). Returns the leaderboard
/// and how many trials the journal learnt the end of.
pub fn collect(dir: &SweepDir) -> anyhow::Result<(Leaderboard, usize)> {
    crate::store::workers::refuse_while_live(dir, "`sweep collect`")?;
    let _lock = dir.lock()?;
    let mut journal = dir.open_journal()?;
    let mut record = dir.read_record()?;
    let events = collect_ended(dir, &record, |_| true);
    let learnt = events
        .iter()
        .filter(|e| matches!(e, Event::Finished { .. }))
        .count();
    journal.append(&events)?;
    for e in &events {
        record.apply(e);
    }
    let board = publish(dir, &record, None)?;
    Ok((board, learnt))
}

/// Writes the leaderboard of `record` and, when the winner changed, `best/`. With
/// `keep_checkpoints = K`, finished trials ranked below the first K lose their checkpoints
/// (a finished trial only ever moves down, so none is needed again).
pub(crate) fn publish(
    dir: &SweepDir,
    record: &StudyRecord,
    keep_checkpoints: Option<usize>,
) -> anyhow::Result<Leaderboard> {
    let board = Leaderboard::build(record);
    atomic::write(&dir.leaderboard_file(), Csv.serialize(&board)?)?;
    if board.objectives.is_some() {
        atomic::write(&dir.pareto_file(), Csv.serialize(&board.front())?)?;
    }
    // best/ always holds the leaderboard's winner, or nothing when it has none.
    match board.best() {
        Some(best) if dir.best_trial().as_deref() != Some(best.trial.as_str()) => {
            dir.publish_best(&best.trial)?;
            atomic::write(
                &dir.best_dir().join("rule.txt"),
                format!("{}\n", board.best_rule()),
            )?;
        }
        Some(_) => {}
        None => dir.clear_best()?,
    }
    if let Some(k) = keep_checkpoints {
        let best = board.best().map(|b| b.trial.as_str());
        dir.drop_checkpoints(
            board
                .rows
                .iter()
                .skip(k)
                .filter(|r| r.status.is_final() && Some(r.trial.as_str()) != best)
                .map(|r| r.trial.as_str()),
        );
    }
    Ok(board)
}
