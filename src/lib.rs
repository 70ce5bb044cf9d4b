//! `sweep`: a hyperparameter sweep orchestrator for training MLPs on MNIST with candle.
//!
//! Data flows one way, and the modules follow it:
//!
//! - [`sweep`]: the spec (TOML) is expanded into a plan of trials; the study runs them.
//! - [`exec`]: executors run trials somewhere (local CPU/GPU slots, Slurm).
//! - [`train`]: trains one fully resolved trial; knows nothing about sweeps.
//! - [`store`]: everything written to disk: journal, run directories, leaderboard.
//! - [`report`]: the HTML report; [`cli`]: argument parsing and dispatch.
//!
//! [`trial`] is the vocabulary every layer shares: a trial's status, its metrics, its events.

#[macro_use]
pub mod console;
pub mod bench;
pub mod cli;
pub mod devices;
pub mod events;
pub mod exec;
pub mod leaderboard;
pub mod objectives;
pub mod pareto;
pub mod report;
pub mod store;
pub mod sweep;
pub mod text;
pub mod train;
pub mod trial;
pub mod trial_process;
