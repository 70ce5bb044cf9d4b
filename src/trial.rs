//! The event stream `sweep train --events` prints, one JSON object per line on stdout; the
//! sweep executor reads it to follow a trial without knowing anything about training.

use serde::{Deserialize, Serialize};

use crate::store::run_dir::{EpochMetrics, RunSummary};

/// One line of a trial's event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TrialEvent {
    /// Data loaded and model built; training begins.
    Start {
        /// Epochs planned.
        epochs: usize,
        /// Optimiser steps per epoch.
        steps_per_epoch: usize,
        /// Where it runs ("cpu", "cuda:0").
        device: String,
        /// Training-step implementation.
        engine: String,
        /// Compute threads.
        threads: usize,
    },
    /// An epoch finished and was evaluated.
    Epoch {
        /// Epochs planned.
        epochs: usize,
        /// This epoch's row of metrics.csv.
        #[serde(flatten)]
        metrics: EpochMetrics,
        /// Best test accuracy so far.
        best_test_acc: f64,
        /// Its epoch.
        best_epoch: usize,
    },
    /// The run ended; the same content as summary.json.
    End {
        /// Final summary.
        #[serde(flatten)]
        summary: RunSummary,
    },
}

impl TrialEvent {
    /// The event as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }

    /// Parses one line; `None` for lines that are not events (e.g. stray output).
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::run_dir::RunStatus;

    #[test]
    fn events_round_trip_through_one_json_line() {
        let events = [
            TrialEvent::Start {
                epochs: 3,
                steps_per_epoch: 600,
                device: "cpu".into(),
                engine: "fused".into(),
                threads: 1,
            },
            TrialEvent::Epoch {
                epochs: 3,
                metrics: EpochMetrics {
                    epoch: 1,
                    lr: 0.01,
                    train_loss: 0.3,
                    train_acc: 91.0,
                    test_loss: 0.1,
                    test_acc: 97.0,
                    seconds: 9.5,
                },
                best_test_acc: 97.0,
                best_epoch: 1,
            },
            TrialEvent::End {
                summary: RunSummary {
                    status: RunStatus::Completed,
                    best_test_acc: 97.0,
                    best_epoch: 1,
                    epochs_run: 3,
                    seconds: 30.0,
                    message: None,
                    device: "cpu".into(),
                    engine: "fused".into(),
                    threads: 1,
                },
            },
        ];
        for e in events {
            let line = e.to_line();
            assert!(!line.contains('\n'));
            assert_eq!(TrialEvent::parse(&line), Some(e));
        }
        assert_eq!(TrialEvent::parse("warning: something"), None);
    }
}
