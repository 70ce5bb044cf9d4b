//! The attempts a process runs, and when each started: what `--timeout-per-trial` stops and
//! what a stop is asked of once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::exec::TrialJob;

/// An attempt started and not yet seen end.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub job: TrialJob,
    /// When it started running (for `--timeout-per-trial`).
    pub since: Instant,
    /// Stopping it has been asked.
    pub stopping: bool,
}

/// The attempts running now, by trial id.
#[derive(Debug, Default)]
pub struct Running(HashMap<String, Attempt>);

impl Running {
    /// Follows `job` from now.
    pub fn start(&mut self, job: TrialJob) {
        let id = job.id.clone();
        self.0.insert(
            id,
            Attempt {
                job,
                since: Instant::now(),
                stopping: false,
            },
        );
    }

    /// The attempt of `trial` began running now (it may have waited in a queue).
    pub fn began(&mut self, trial: &str) -> Option<&Attempt> {
        let a = self.0.get_mut(trial)?;
        a.since = Instant::now();
        Some(a)
    }

    /// The attempt of `trial` ended: it is followed no more.
    pub fn end(&mut self, trial: &str) -> Option<Attempt> {
        self.0.remove(trial)
    }

    /// The attempt of `trial`, if it runs.
    pub fn get(&self, trial: &str) -> Option<&Attempt> {
        self.0.get(trial)
    }

    /// Marks `trial` as asked to stop; true when it runs and had not been asked yet.
    pub fn ask_stop(&mut self, trial: &str) -> bool {
        match self.0.get_mut(trial) {
            Some(a) if !a.stopping => {
                a.stopping = true;
                true
            }
            _ => false,
        }
    }

    /// The trials that run longer than `limit` and were not asked to stop yet.
    pub fn overdue(&self, limit: Duration) -> Vec<String> {
        let mut ids: Vec<String> = self
            .0
            .iter()
            .filter(|(_, a)| !a.stopping && a.since.elapsed() > limit)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The ids of the trials running.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.0.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn contains(&self, trial: &str) -> bool {
        self.0.contains_key(trial)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overdue_attempt_is_listed_until_it_is_asked_to_stop_and_a_stop_is_asked_once() {
        let mut r = Running::default();
        r.start(TrialJob::new("a", "/x".into(), 1));
        r.start(TrialJob::new("b", "/x".into(), 1));
        std::thread::sleep(Duration::from_millis(20));
        r.began("b");
        assert_eq!(
            r.overdue(Duration::from_millis(10)),
            ["a"],
            "b began again just now"
        );
        assert!(r.ask_stop("a"));
        assert!(!r.ask_stop("a"), "once");
        assert!(r.overdue(Duration::from_millis(10)).is_empty());
        assert!(!r.ask_stop("gone"));
        assert_eq!(r.end("a").map(|a| a.job.id), Some("a".into()));
        assert_eq!(r.ids(), ["b"]);
    }
}
