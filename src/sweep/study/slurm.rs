//! `sweep run --backend slurm --dry-run`: the scripts a Slurm run would submit.

use std::path::Path;

use anyhow::bail;

use crate::exec::TrialJob;
use crate::exec::slurm::{SlurmExecutor, SlurmOptions};
use crate::store::record::StudyRecord;
use crate::store::sweep_dir::SweepDir;
use crate::sweep::checks::load_plan;

/// The sbatch scripts `sweep run --backend slurm` would submit for this spec now (its
/// unfinished trials), without writing or submitting anything.
pub fn slurm_scripts(
    spec_path: &Path,
    results: &Path,
    opts: &SlurmOptions,
) -> anyhow::Result<Vec<crate::exec::slurm::ArrayScript>> {
    let (_, plan) = load_plan(spec_path)?;
    let dir = SweepDir::new(results, &plan.name);
    let record = if dir.journal_file().is_file() {
        dir.load_record(dir.is_driven())?
    } else {
        StudyRecord::default()
    };
    let jobs: Vec<TrialJob> = plan
        .trials
        .iter()
        .filter(|t| record.get(&t.id).is_none_or(|r| !r.status.is_final()))
        .map(|t| {
            let trial_dir = dir.trial_dir(&t.id);
            TrialJob::new(
                &t.id,
                std::path::absolute(&trial_dir).unwrap_or(trial_dir),
                1,
            )
        })
        .collect();
    if jobs.is_empty() {
        bail!(
            "nothing to submit: every trial of {} has finished (see `sweep leaderboard {}`)",
            plan.name,
            dir.root().display()
        );
    }
    Ok(SlurmExecutor::new(&plan.name, dir.root(), opts.clone())?.scripts(&jobs))
}
