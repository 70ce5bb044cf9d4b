//! `sweep`: a hyperparameter sweep orchestrator for training MLPs on MNIST with candle.
//!
//! Data flows one way: `spec` (TOML sweep spec) → trials (`TrialConfig`s) → `executor`
//! (local devices or Slurm) → `trainer` (one process per trial) → `results` (journal,
//! leaderboard, best checkpoint).

pub mod augment;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod devices;
pub mod engine;
pub mod events;
pub mod executor;
pub mod model;
pub mod optim;
pub mod report;
pub mod results;
pub mod rng;
pub mod spec;
pub mod study;
pub mod threads;
pub mod trainer;
