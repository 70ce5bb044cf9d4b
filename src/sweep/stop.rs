//! `sweep stop`: a person stops running trials of a sweep, whoever runs them (`sweep run`, a
//! worker, a Slurm task): each trial reads the request at its next step or report and ends as
//! pruned, keeping its best checkpoint; the sweep goes on with the others.

use anyhow::bail;

use crate::store::run_dir::RunDir;
use crate::store::sweep_dir::SweepDir;
use crate::trial::{StopReason, TrialStatus};

/// Asks the running trials `ids` (ids or labels) of the sweep in `dir` to stop; returns their
/// ids. A trial that is not running is an error that says where it stands, and then none is
/// asked.
pub fn stop(dir: &SweepDir, ids: &[String]) -> anyhow::Result<Vec<String>> {
    let record = dir.load_record(true)?;
    let mut found = Vec::new();
    for id in ids {
        let Some(t) = record
            .active()
            .find(|t| t.id() == id || t.def.label.as_deref() == Some(id.as_str()))
        else {
            bail!(
                "{}: no trial {id}; `sweep status {}` lists the running ones",
                dir.root().display(),
                dir.root().display()
            );
        };
        if t.status != TrialStatus::Running {
            bail!(
                "{}: trial {id} is {}, not running: there is nothing to stop",
                dir.root().display(),
                t.status
            );
        }
        found.push(t.id().to_string());
    }
    for id in &found {
        RunDir::open(&dir.trial_dir(id))?.request_stop(StopReason::User)?;
    }
    Ok(found)
}
