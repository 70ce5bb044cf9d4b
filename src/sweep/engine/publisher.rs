//! Keeping the sweep's outputs current while it runs: the leaderboard and `best/` after the
//! trials that end (as often as keeps the cost linear in the trials), the live report at most
//! every [`LIVE_REPORT_EVERY`], and, once nothing is left to run, the states of paused trials
//! no one will promote dropped.

use std::time::{Duration, Instant};

use crate::leaderboard::{Csv, Exporter, Leaderboard};
use crate::store::atomic;
use crate::store::record::StudyRecord;
use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::SweepDir;
use crate::trial::TrialStatus;

/// Writes a sweep's live report: the sweep directory, trials finished, trials in all.
pub type LiveReport = fn(&SweepDir, usize, usize) -> anyhow::Result<()>;

/// The live report is rewritten at most this often (it reads the journal and draws every
/// chart).
pub const LIVE_REPORT_EVERY: Duration = Duration::from_secs(10);

/// When a running sweep writes its outputs again.
pub struct Publisher {
    /// Trials that ended since the leaderboard was last written.
    unpublished: usize,
    /// The live report's writer, and when it last wrote.
    live_report: Option<(LiveReport, Option<Instant>)>,
    keep_checkpoints: Option<usize>,
}

impl Publisher {
    /// A publisher that keeps the checkpoints of the first `keep_checkpoints` trials (all:
    /// None), and writes the live report with `live_report` (None: none).
    pub fn new(keep_checkpoints: Option<usize>, live_report: Option<LiveReport>) -> Self {
        Self {
            unpublished: 0,
            live_report: live_report.map(|w| (w, None)),
            keep_checkpoints,
        }
    }

    /// After a trial ended: rewrites leaderboard.csv and (when the winner changed) `best/`
    /// after every trial in sweeps of up to 100 trials and after every 1/100 of the trials in
    /// larger ones, or always with `force`; None when skipped.
    pub fn ended(
        &mut self,
        dir: &SweepDir,
        record: &StudyRecord,
        force: bool,
    ) -> anyhow::Result<Option<Leaderboard>> {
        self.unpublished += 1;
        let batch = (record.trials.len() / 100).max(1);
        if !force && self.unpublished < batch {
            return Ok(None);
        }
        self.unpublished = 0;
        publish(dir, record, self.keep_checkpoints).map(Some)
    }

    /// Rewrites the live report when [`LIVE_REPORT_EVERY`] has passed since it last did
    /// (`finished` of `total` trials). A report that cannot be written is returned as a
    /// warning, never an error: it does not stop the sweep.
    pub fn live_report(&mut self, dir: &SweepDir, finished: usize, total: usize) -> Option<String> {
        let (write, last) = self.live_report?;
        if last.is_some_and(|t| t.elapsed() < LIVE_REPORT_EVERY) {
            return None;
        }
        self.live_report = Some((write, Some(Instant::now())));
        write(dir, finished, total)
            .err()
            .map(|e| format!("warning: the live report was not written: {e:#}"))
    }
}

/// Writes the leaderboard of `record` and, when the winner changed, `best/`. With
/// `keep_checkpoints = K`, finished trials ranked below the first K lose their checkpoints
/// (a finished trial only ever moves down, so none is needed again).
pub fn publish(
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

/// Removes the resumable states paused trials kept, once the sweep has ended and none will be
/// promoted (a later run that promotes one trains it again from the start). Only for a
/// pruner that pauses.
pub fn discard_paused_states(dir: &SweepDir, record: &StudyRecord, pauses: bool) {
    if !pauses {
        return;
    }
    for t in record.active() {
        if t.status == TrialStatus::Pruned
            && let Ok(run) = RunDir::open(&dir.trial_dir(t.id()))
        {
            crate::train::state::remove(&run);
        }
    }
}
