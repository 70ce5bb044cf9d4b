//! What pull workers keep beside the journal: `workers.json`, which marks a sweep that
//! workers run (the sweep version and spec that made it, the parallelism TPE assumes, the
//! lease settings), and `workers/<worker>.json`, one lease per worker: who it is, which trials
//! it runs, and when it last said it is alive. All are written atomically.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::atomic;
use super::shared_lock::{self, now_ms};
use super::sweep_dir::SweepDir;

/// The settings every worker of a sweep shares (`workers.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// The sweep version that created the sweep; workers of another version refuse to join.
    pub sweep_version: String,
    /// SHA-256 of the spec's text; a worker given a different spec refuses to join.
    pub spec_sha256: String,
    /// Trials at a time TPE assumes (its asks are reproducible for a given parallelism).
    pub parallelism: usize,
    /// A worker that has not renewed its lease for this long is taken as gone.
    pub lease_seconds: f64,
    /// How often a worker renews its lease.
    pub heartbeat_seconds: f64,
    /// The spec the sweep was made from (absolute), read again by workers that join by folder
    /// (its `base` file is found beside it).
    pub spec_path: PathBuf,
    /// The directory the sweep was made in: workers take the spec's relative paths (the data,
    /// the command) from it.
    pub workdir: PathBuf,
}

impl WorkerSettings {
    /// The lease's expiry.
    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_seconds)
    }

    /// The heartbeat's period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_seconds)
    }

    /// The settings of a sweep workers run; None for a sweep `sweep run` drives.
    pub fn read(dir: &SweepDir) -> anyhow::Result<Option<Self>> {
        let path = dir.workers_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is not a workers file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes `workers.json`.
    pub fn write(&self, dir: &SweepDir) -> anyhow::Result<()> {
        atomic::write(
            &dir.workers_file(),
            serde_json::to_string_pretty(self)? + "\n",
        )
    }
}

/// SHA-256 of a spec's text, in hex.
pub fn spec_hash(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One worker's lease (`workers/<worker>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker's name, `host-pid`, as claims in the journal give it.
    pub worker: String,
    /// Its host.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// Its sweep version.
    pub version: String,
    /// When it joined (RFC 3339).
    pub joined: String,
    /// Its last heartbeat, in milliseconds since the Unix epoch.
    pub heartbeat_ms: u64,
    /// The trials it runs now.
    pub trials: Vec<String>,
}

impl Lease {
    /// A new lease for this process.
    pub fn mine(worker: &str) -> Self {
        Self {
            worker: worker.to_string(),
            host: shared_lock::hostname(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            joined: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            heartbeat_ms: now_ms(),
            trials: Vec::new(),
        }
    }

    /// Time since its last heartbeat.
    pub fn age(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.heartbeat_ms))
    }

    /// Renews it (with the trials running now) on disk.
    pub fn renew(&mut self, dir: &SweepDir, trials: Vec<String>) -> anyhow::Result<()> {
        self.heartbeat_ms = now_ms();
        self.trials = trials;
        let workers = dir.workers_dir();
        std::fs::create_dir_all(&workers)
            .with_context(|| format!("cannot create {}", workers.display()))?;
        atomic::replace(
            &lease_file(dir, &self.worker),
            serde_json::to_string(self)? + "\n",
        )
    }

    /// Removes it (the worker is leaving with nothing running).
    pub fn end(&self, dir: &SweepDir) {
        let _ = std::fs::remove_file(lease_file(dir, &self.worker));
    }
}

fn lease_file(dir: &SweepDir, worker: &str) -> PathBuf {
    dir.workers_dir().join(format!("{worker}.json"))
}

/// Every worker's lease, by worker name (unreadable files are skipped: a lease is replaced by
/// a rename, so one is only unreadable when it is not a lease).
pub fn leases(dir: &SweepDir) -> Vec<Lease> {
    let Ok(entries) = std::fs::read_dir(dir.workers_dir()) else {
        return Vec::new();
    };
    let mut leases: Vec<Lease> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    leases.sort_by(|a, b| a.worker.cmp(&b.worker));
    leases
}

/// Fails when pull workers hold live leases on the sweep: `action` (a command that rewrites
/// the journal) must wait until they have left.
pub fn refuse_while_live(dir: &SweepDir, action: &str) -> anyhow::Result<()> {
    let Some(settings) = WorkerSettings::read(dir)? else {
        return Ok(());
    };
    let live: Vec<String> = leases(dir)
        .into_iter()
        .filter(|l| l.age() <= settings.lease())
        .map(|l| format!("{} pid {}", l.host, l.pid))
        .collect();
    if !live.is_empty() {
        anyhow::bail!(
            "{}: {action} would race the pull workers running it ({}); stop them first, or \
             wait until they leave",
            dir.root().display(),
            live.join(", ")
        );
    }
    Ok(())
}

/// This process's worker name: `host-pid`.
pub fn worker_name() -> String {
    format!("{}-{}", shared_lock::hostname(), std::process::id())
}
