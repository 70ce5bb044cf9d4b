//! Making a sweep that pull workers run (`sweep run --workers-only`, the first `sweep worker
//! SPEC`, `sweep submit --workers`), and joining one: the checks that keep workers of another
//! version or spec out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::store::journal::Event;
use crate::store::shared_lock::SharedLock;
use crate::store::sweep_dir::SweepDir;
use crate::store::workers::{WorkerSettings, spec_hash};
use crate::sweep::checks::load_plan;
use crate::sweep::plan::Plan;
use crate::sweep::spec::SweepSpec;
use crate::sweep::study::{catch_up, restore_missing};
use crate::text::count;

/// How to make a sweep for workers.
#[derive(Debug, Clone)]
pub struct NewSweep {
    /// The results root (the sweep goes in `<results>/<name>/`).
    pub results: PathBuf,
    /// Trials at a time TPE assumes (default: the sweep's, else 4).
    pub parallelism: Option<usize>,
    /// A worker silent for this long is taken as gone.
    pub lease: Duration,
    /// How often workers renew their leases.
    pub heartbeat: Duration,
    /// Accept a spec change that takes finished trials off the leaderboard.
    pub accept_changes: bool,
    /// Bring an existing sweep in line with a changed spec (`sweep run --workers-only`);
    /// without it a changed spec is refused.
    pub update: bool,
}

/// A sweep a worker has joined.
pub struct Joined {
    pub dir: SweepDir,
    pub spec: SweepSpec,
    pub plan: Plan,
    pub settings: WorkerSettings,
    /// What changed, for the user.
    pub notes: Vec<String>,
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Makes the sweep of `spec_path` one that workers run, or joins it when it already is one
/// with the same spec. A changed spec is applied with `update` (finished trials are kept, as
/// `sweep run` keeps them) and refused otherwise.
pub fn create(spec_path: &Path, new: &NewSweep) -> anyhow::Result<Joined> {
    if new.heartbeat.is_zero() || new.lease <= new.heartbeat {
        bail!(
            "--lease ({} s) must be longer than --heartbeat ({} s), or live workers would be taken as gone",
            new.lease.as_secs_f64(),
            new.heartbeat.as_secs_f64()
        );
    }
    let (spec, plan) = load_plan(spec_path)?;
    let dir = SweepDir::new(&std::path::absolute(&new.results)?, &plan.name);
    refuse_orchestrated(&dir)?;
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("cannot create {}", dir.root().display()))?;
    let hash = spec_hash(spec.source.text());
    let existing = WorkerSettings::read(&dir)?;
    if existing.is_none() && !new.update && dir.journal_file().is_file() {
        return Err(driven_by_run(dir.root(), spec_path));
    }
    if let Some(s) = &existing {
        check_version(&dir, s)?;
        if let Some(p) = new.parallelism.filter(|&p| p != s.parallelism) {
            bail!(
                "{}: its workers assume {} trials at a time (TPE's asks depend on it); it cannot \
                 change to {p} while the sweep runs",
                dir.root().display(),
                s.parallelism
            );
        }
        if s.spec_sha256 == hash {
            let notes = restore(&dir, &plan, new.lease, new.update)?;
            let settings = s.clone();
            return Ok(Joined {
                dir,
                spec,
                plan,
                settings,
                notes,
            });
        }
        if !new.update {
            bail!(
                "{}: its workers run another version of {} (the spec changed since the sweep was \
                 made); join it with `sweep worker {}`, or apply the change with `sweep run \
                 --workers-only {}` (finished trials are kept)",
                dir.root().display(),
                spec_path.display(),
                dir.root().display(),
                spec_path.display()
            );
        }
    }
    let settings = WorkerSettings {
        sweep_version: VERSION.to_string(),
        spec_sha256: hash,
        parallelism: new
            .parallelism
            .or(existing.as_ref().map(|s| s.parallelism))
            .unwrap_or(4)
            .max(1),
        lease_seconds: new.lease.as_secs_f64(),
        heartbeat_seconds: new.heartbeat.as_secs_f64(),
        spec_path: std::path::absolute(spec_path)?,
        workdir: std::env::current_dir().context("cannot read the current directory")?,
    };
    let _lock = SharedLock::acquire(&dir.journal_lock_file(), new.lease)?;
    let mut journal = dir.open_journal()?;
    let mut record = dir.read_record()?;
    let mut notes = Vec::new();
    let (events, _) = catch_up(&spec, &plan, &dir, &record, new.accept_changes, &mut notes)?;
    for e in &events {
        record.apply(e);
    }
    let mut all = vec![sweep_event(&plan, &record)];
    all.extend(events);
    journal.append(&all)?;
    settings.write(&dir)?;
    Ok(Joined {
        dir,
        spec,
        plan,
        settings,
        notes,
    })
}

/// What joining a sweep journals, under the lock: the plan's trials the journal lacks (their
/// lines were lost to corruption and set aside by `sweep repair`) come back, and with
/// `restart`, a sweep a worker stopped (`max_failures`) starts again. A journal with a corrupt
/// line is refused, as every writer refuses it. Returns what to tell the user.
fn restore(
    dir: &SweepDir,
    plan: &Plan,
    lease: Duration,
    restart: bool,
) -> anyhow::Result<Vec<String>> {
    let _lock = SharedLock::acquire(&dir.journal_lock_file(), lease)?;
    let mut journal = dir.open_journal()?;
    let mut record = dir.read_record()?;
    let mut events = restore_missing(dir, plan, &record);
    let mut notes = Vec::new();
    let restored = events
        .iter()
        .filter(|e| matches!(e, Event::Trial(_)))
        .count();
    if restored > 0 {
        notes.push(format!(
            "{} of the plan missing from the journal (lost to a corrupt line) put back",
            count(restored, "trial")
        ));
    }
    for e in &events {
        record.apply(e);
    }
    if restart && record.stopped.is_some() {
        events.push(sweep_event(plan, &record));
    }
    if !events.is_empty() {
        journal.append(&events)?;
    }
    Ok(notes)
}

/// The line that (re)starts a sweep for workers.
fn sweep_event(plan: &Plan, record: &crate::store::record::StudyRecord) -> Event {
    let pending = record.active().filter(|t| !t.status.is_final()).count();
    crate::sweep::engine::sweep_event(plan, pending, "workers")
}

/// Joins the sweep in `root`, made for workers: checks the version, takes the spec's relative
/// paths from where the sweep was made, and reads the spec.
pub fn join(root: &Path) -> anyhow::Result<Joined> {
    let dir = SweepDir::at(&std::path::absolute(root)?);
    let Some(settings) = WorkerSettings::read(&dir)? else {
        if dir.journal_file().is_file() {
            return Err(driven_by_run(root, Path::new("SPEC")));
        }
        bail!(
            "no sweep in {}: make one with `sweep worker SPEC` or `sweep run --workers-only \
             SPEC`, then start more workers with `sweep worker {}`",
            root.display(),
            root.display()
        );
    };
    check_version(&dir, &settings)?;
    refuse_orchestrated(&dir)?;
    if settings.workdir.is_dir() {
        std::env::set_current_dir(&settings.workdir).with_context(|| {
            format!(
                "cannot change to {} (where the sweep was made)",
                settings.workdir.display()
            )
        })?;
    }
    // The spec as made (its base file sits beside it), else the copy in the sweep.
    let from = [settings.spec_path.clone(), dir.spec_file()]
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p).is_ok_and(|text| spec_hash(&text) == settings.spec_sha256)
        })
        .with_context(|| {
            format!(
                "{}: neither {} nor {} is the spec the sweep was made from any more",
                root.display(),
                settings.spec_path.display(),
                dir.spec_file().display()
            )
        })?;
    let (spec, plan) = load_plan(&from)?;
    let notes = restore(&dir, &plan, settings.lease(), false)?;
    Ok(Joined {
        dir,
        spec,
        plan,
        settings,
        notes,
    })
}

/// The refusal of a worker, given the sweep's folder or its spec, to join a sweep `sweep run`
/// drives: converting it changes how it runs (and TPE's parallelism), so it is asked for.
fn driven_by_run(root: &Path, spec: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is a sweep `sweep run` drives, not one for workers; make it one with `sweep run \
         --workers-only {}` (its finished trials are kept), then start workers",
        root.display(),
        spec.display()
    )
}

fn check_version(dir: &SweepDir, settings: &WorkerSettings) -> anyhow::Result<()> {
    if settings.sweep_version != VERSION {
        bail!(
            "{} was made by sweep {}; this is sweep {VERSION}. Workers of one sweep must be the \
             same version (the journal and TPE's asks depend on it): run sweep {} here",
            dir.root().display(),
            settings.sweep_version,
            settings.sweep_version
        );
    }
    Ok(())
}

fn refuse_orchestrated(dir: &SweepDir) -> anyhow::Result<()> {
    if dir.is_locked() {
        bail!(
            "{} is being run by `sweep run` now; workers and an orchestrator do not share a \
             sweep: wait for it to end or stop it first",
            dir.root().display()
        );
    }
    Ok(())
}
