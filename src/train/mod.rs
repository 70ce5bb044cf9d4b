//! Everything needed to train one fully resolved trial, and nothing about sweeps: the
//! configuration, MNIST and its augmentation, the model, the optimiser, the training step,
//! and the trainer that runs the epochs.

pub mod augment;
pub mod config;
pub mod cost;
pub mod cpu;
pub mod data;
pub mod engine;
pub mod ledger;
pub mod model;
pub mod optim;
pub mod pack;
pub mod progress;
pub mod rng;
pub mod state;
pub mod threads;
pub mod trainer;

pub use ledger::{REPORTED_METRICS, reported_metrics, round_ms};
pub use trainer::*;
