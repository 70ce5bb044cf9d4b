//! From a spec to ranked results: the spec (TOML) and its search space, the plan of trials,
//! and the study that runs them on an executor.

pub mod checks;
pub mod engine;
pub mod importance;
pub mod next;
pub mod plan;
pub mod progress;
pub mod pruner;
pub mod rerun;
pub mod sampler;
pub mod schedule;
pub mod search;
pub mod spec;
pub mod spec_change;
pub mod status;
pub mod stop;
pub mod study;
pub mod worker;
