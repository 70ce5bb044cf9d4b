//! Everything `sweep` writes to disk: run directories, and for sweeps the journal (with the
//! record it replays into), the leaderboard and the best trial. The one place that writes
//! sweep files.

pub mod atomic;
pub mod journal;
pub mod jsonl;
pub mod lock;
pub mod record;
pub mod run_dir;
pub mod shared_journal;
pub mod shared_lock;
pub mod sweep_dir;
pub mod workers;
