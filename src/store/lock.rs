//! Exclusive locks on files (open-file-description `fcntl` locks): released when dropped or
//! when the holder dies, even by `kill -9`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::Context;

/// An exclusive hold on a lock file.
pub struct FileLock {
    _file: File,
}

/// An open-file-description lock request on the whole file.
fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is a plain C struct; all-zero is a valid value that we then fill in.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Takes the lock at `path` (created if needed) if nobody holds it; `None` if somebody does.
pub fn try_lock(path: &Path) -> anyhow::Result<Option<FileLock>> {
    let file = open(path)?;
    let request = whole_file(libc::F_WRLCK);
    // SAFETY: fcntl on a descriptor we own with a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &request) };
    Ok((rc == 0).then_some(FileLock { _file: file }))
}

/// Takes the lock at `path`, waiting for its holder to release it.
pub fn lock_waiting(path: &Path) -> anyhow::Result<FileLock> {
    let file = open(path)?;
    let request = whole_file(libc::F_WRLCK);
    loop {
        // SAFETY: as above; F_OFD_SETLKW blocks until the lock is free.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &request) };
        if rc == 0 {
            return Ok(FileLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
}

/// True when somebody holds the lock at `path` now. Only asks: it never takes the lock.
pub fn is_held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut probe = whole_file(libc::F_WRLCK);
    // SAFETY: fcntl on a descriptor we own; F_OFD_GETLK only reports.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut probe) };
    rc == 0 && probe.l_type != libc::F_UNLCK as libc::c_short
}
