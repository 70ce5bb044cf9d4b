//! Everything `sweep` writes to disk: run directories, and (for sweeps) the journal, the
//! leaderboard and the best trial.

pub mod atomic;
pub mod run_dir;
