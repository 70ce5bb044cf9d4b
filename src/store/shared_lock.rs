//! A lock that works across machines sharing a filesystem, NFS included, for the short
//! decisions of pull workers (see `sweep::worker`).
//!
//! The method is the one `lockfile(1)`, Mercurial and the Linux `open(2)` page give for NFS:
//! the taker writes its owner (host, pid, the process's start time, a random token, the time)
//! into a file of its own, then hard-links that file to the lock's name. `link(2)` is atomic on
//! every NFS version; when its reply is lost the taker still knows from the link count of its
//! own file. `fcntl` locks are not used: they need a working lock daemon on NFSv3 and are lost
//! silently when one is not running.
//!
//! A lock whose holder is a process of this host that no longer runs is broken at once. One
//! held from another host is broken once it is older than its expiry (decisions take
//! milliseconds; a holder never keeps it for long). Breaking renames the lock away and checks
//! that what it renamed is the stale holder's; a holder confirms it still holds the lock
//! ([`SharedLock::confirm`]) before it writes.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Who holds a lock, as written in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (tells a reused pid apart).
    pub start: u64,
    /// Random: tells two holdings by one process apart.
    pub token: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl Owner {
    /// This process, now.
    pub fn me() -> Self {
        Self {
            host: hostname(),
            pid: std::process::id(),
            start: process_start(std::process::id()).unwrap_or(0),
            token: rand::random(),
            since_ms: now_ms(),
        }
    }

    /// True when this owner cannot still hold a lock taken at `since_ms`: a process of this
    /// host that has ended, or a holding older than `expiry`.
    pub fn is_stale(&self, expiry: Duration) -> bool {
        if self.host == hostname() && !process_alive(self.pid, self.start) {
            return true;
        }
        now_ms().saturating_sub(self.since_ms) > expiry.as_millis() as u64
    }

    /// "host pid N".
    pub fn describe(&self) -> String {
        format!("{} pid {}", self.host, self.pid)
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct SharedLock {
    path: PathBuf,
    owner: Owner,
}

/// How long [`SharedLock::acquire`] waits before it gives up and says who holds the lock.
pub const WAIT_LIMIT: Duration = Duration::from_secs(600);

impl SharedLock {
    /// Takes the lock at `path`, waiting while a live holder has it, breaking it when its
    /// holder is stale (see [`Owner::is_stale`]).
    pub fn acquire(path: &Path, expiry: Duration) -> anyhow::Result<Self> {
        let owner = Owner::me();
        let mine = own_file(path, &owner);
        let text = serde_json::to_string(&owner)? + "\n";
        {
            let mut f = std::fs::File::create(&mine)
                .with_context(|| format!("cannot create {}", mine.display()))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", mine.display()))?;
        }
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        let result = loop {
            match try_link(&mine, path) {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            if let Some(holder) = read_owner(path)
                && holder.is_stale(expiry)
            {
                break_stale(path, &holder);
                continue;
            }
            if started.elapsed() > WAIT_LIMIT {
                let who = read_owner(path).map_or("an unknown holder".into(), |o| o.describe());
                break Err(anyhow::anyhow!(
                    "{} has been held by {who} for more than {} s; if that process is gone, \
                     remove the file",
                    path.display(),
                    WAIT_LIMIT.as_secs()
                ));
            }
            // Jittered, growing to 20 ms: waiters do not wake in step.
            std::thread::sleep(pause.mul_f64(0.5 + rand::random::<f64>()));
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&mine);
        result.map(|()| Self {
            path: path.to_path_buf(),
            owner,
        })
    }

    /// Fails unless the lock file is still this holding's (nobody broke it as stale).
    pub fn confirm(&self) -> anyhow::Result<()> {
        match read_owner(&self.path) {
            Some(o) if o.token == self.owner.token => Ok(()),
            other => bail!(
                "lost the lock {}: {} broke it as stale; nothing was written",
                self.path.display(),
                other.map_or("another process".into(), |o| o.describe())
            ),
        }
    }
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        if read_owner(&self.path).is_some_and(|o| o.token == self.owner.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The taker's own file beside the lock.
fn own_file(path: &Path, owner: &Owner) -> PathBuf {
    let name = path
        .file_name()
        .map_or("lock".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(
        ".{name}.{}.{}.{:016x}",
        owner.host, owner.pid, owner.token
    ))
}

/// Links `mine` to `path`: true when this process now holds the lock.
fn try_link(mine: &Path, path: &Path) -> anyhow::Result<bool> {
    match std::fs::hard_link(mine, path) {
        Ok(()) => Ok(true),
        Err(e) => {
            // On NFS a link whose reply was lost may have been made: the link count says.
            if std::fs::metadata(mine).is_ok_and(|m| m.nlink() == 2) {
                return Ok(true);
            }
            // Some network filesystems report a taken name as another error (sshfs: EPERM):
            // whatever the error, a lock file that exists means somebody holds the lock.
            if e.kind() == std::io::ErrorKind::AlreadyExists || path.exists() {
                Ok(false)
            } else {
                Err(e).with_context(|| format!("cannot take the lock {}", path.display()))
            }
        }
    }
}

/// The owner written in a lock file; None when there is none (or it was just released).
pub fn read_owner(path: &Path) -> Option<Owner> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Removes a stale holder's lock: renamed away first, so that only one breaker removes it;
/// put back when what was renamed turns out to be a newer holding.
fn break_stale(path: &Path, stale: &Owner) {
    let aside = path.with_file_name(format!(
        ".{}.broken.{:016x}",
        path.file_name()
            .map_or("lock".into(), |n| n.to_string_lossy()),
        rand::random::<u64>()
    ));
    if std::fs::rename(path, &aside).is_err() {
        return; // somebody else broke or released it
    }
    if read_owner(&aside).is_some_and(|o| o.token != stale.token) {
        // A fresh holding was taken between our read and the rename: restore it.
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when process `pid` of this host runs and is the one that started at `start` (0:
/// unknown, then any process with that pid counts).
pub fn process_alive(pid: u32, start: u64) -> bool {
    match process_start(pid) {
        Some(s) => start == 0 || s == start,
        None => false,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sweep-shared-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_one_holder_at_a_time_among_racing_threads() {
        let dir = scratch("race");
        let path = dir.join("lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, most, entered) =
                    (path.clone(), inside.clone(), most.clone(), entered.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let lock = SharedLock::acquire(&path, Duration::from_secs(60)).unwrap();
                        lock.confirm().unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        entered.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(entered.load(Ordering::SeqCst), 400);
        assert!(!path.exists(), "released at the end");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "no takers' files are left: {left:?}");
    }

    fn write_owner(path: &Path, owner: &Owner) {
        std::fs::write(path, serde_json::to_string(owner).unwrap() + "\n").unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_broken_at_once() {
        let dir = scratch("dead");
        let path = dir.join("lock");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            host: hostname(),
            pid,
            start: 1,
            token: 7,
            since_ms: now_ms(),
        };
        write_owner(&path, &dead);
        let started = Instant::now();
        let lock = SharedLock::acquire(&path, Duration::from_secs(3600)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        lock.confirm().unwrap();
    }

    #[test]
    fn a_live_holder_on_another_host_is_waited_for_until_its_holding_expires() {
        let dir = scratch("remote");
        let path = dir.join("lock");
        let remote = Owner {
            host: "elsewhere.invalid".into(),
            pid: 1,
            start: 1,
            token: 9,
            since_ms: now_ms(),
        };
        assert!(!remote.is_stale(Duration::from_secs(60)));
        write_owner(&path, &remote);
        let started = Instant::now();
        let lock = SharedLock::acquire(&path, Duration::from_millis(700)).unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(600),
            "waited only {waited:?}"
        );
        lock.confirm().unwrap();
    }

    #[test]
    fn a_holder_whose_lock_was_broken_knows_it() {
        let dir = scratch("lost");
        let path = dir.join("lock");
        let lock = SharedLock::acquire(&path, Duration::from_secs(60)).unwrap();
        let other = Owner {
            host: "elsewhere.invalid".into(),
            pid: 2,
            start: 1,
            token: 11,
            since_ms: now_ms(),
        };
        write_owner(&path, &other);
        let err = lock.confirm().unwrap_err().to_string();
        assert!(err.contains("elsewhere.invalid pid 2"), "{err}");
        drop(lock);
        assert!(
            path.exists(),
            "dropping a lost holding leaves the new holder's lock"
        );
    }

    #[test]
    fn the_process_start_time_tells_a_reused_pid_apart() {
        let me = std::process::id();
        let start = process_start(me).expect("this process has a start time");
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
    }
}
