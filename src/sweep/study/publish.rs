//! What a study publishes: the leaderboard, `best/` and the live report while it runs (by
//! [`crate::sweep::engine::Publisher`]'s rules); the leaderboard of any sweep directory; and
//! `collect`, which rebuilds them from the trial directories.

use super::Study;
use super::resume::collect_ended;
use crate::leaderboard::Leaderboard;
use crate::store::journal::Event;
use crate::store::record::StudyRecord;
use crate::store::sweep_dir::SweepDir;
use crate::sweep::engine::publish;

impl Study<'_> {
    /// Rewrites leaderboard.csv and, when the winner changed, best/, as often as
    /// [`crate::sweep::engine::Publisher::ended`] says (always with `force`); None when
    /// skipped.
    pub(crate) fn publish(&mut self, force: bool) -> anyhow::Result<Option<Leaderboard>> {
        self.publisher.ended(&self.dir, &self.record, force)
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
