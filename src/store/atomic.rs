//! Atomic file writes: write a temporary file beside the target, flush it to disk, rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The temporary name a file is written under before it is renamed into place: unique to the
/// write, since processes on other hosts sharing the folder may have the same pid.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// Writes `path` atomically through `write`: readers see the old file or the new one, never
/// a half-written one, even if the process dies midway.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    write_with(path, |out| Ok(out.write_all(bytes.as_ref())?))
}

/// Replaces `path` with `bytes` by a rename, without waiting for the disk: readers never see a
/// half-written file, but a machine crash may lose the new content. For inputs the
/// orchestrator can write again (a trial's configuration), where an fsync per file would
/// dominate the cost of sweeps of thousands of quick trials.
pub fn replace(path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let tmp = temporary_path(path);
    let result = std::fs::write(&tmp, bytes.as_ref())
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies `from` to `to` atomically.
pub fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    write_with(to, |out| {
        let mut src =
            File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
        std::io::copy(&mut src, out)?;
        Ok(())
    })
}

/// Writes a file atomically by letting `produce` create it at a temporary path (for writers
/// such as safetensors that insist on a path of their own).
pub fn produce(
    path: &Path,
    produce: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temporary_path(path);
    let result = produce(&tmp).and_then(|()| {
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("sweep-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write(&p, "one").unwrap();
        write(&p, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let failed = write_with(&p, |_| anyhow::bail!("boom"));
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "two",
            "a failed write keeps the old file"
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
