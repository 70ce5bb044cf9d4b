//! Append-only JSON-lines files (the sweep's `journal.jsonl`, a Slurm task's `events.jsonl`)
//! and what a crash can do to them.
//!
//! The write policy: each append is one `write` of whole lines, newline included, so a killed
//! process leaves at most one unterminated line at the end (a *torn* write; a machine crash or
//! a full disk can leave one too). Before anything is appended, [`open_for_append`] moves such
//! a fragment aside into a `.torn` file beside it and truncates the file to its last complete
//! line, so no record is ever written after a fragment. Readers ([`read`]) never refuse a whole
//! file for one bad line: they return what they could not parse, with its line number.
//! When a record is flushed to the device is the writer's decision (see `journal.rs`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;

/// A line that could not be read back.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Byte offset of its first character.
    pub offset: u64,
    /// The line as it is in the file.
    pub text: String,
    /// Why it did not parse.
    pub error: String,
    /// It is the unterminated last line: a torn write, not corruption.
    pub torn: bool,
}

impl BadLine {
    /// One line for a person: where it is and what is wrong with it.
    pub fn describe(&self, path: &Path) -> String {
        if self.torn {
            format!(
                "{}:{}: an unterminated last line ({} bytes at offset {}) left by an interrupted \
                 write is ignored",
                path.display(),
                self.line,
                self.text.len(),
                self.offset
            )
        } else {
            format!(
                "{}:{}: skipped a corrupt line ({})",
                path.display(),
                self.line,
                self.error
            )
        }
    }
}

/// Everything read from a JSON-lines file: the records that parsed, in order, and the lines
/// that did not.
#[derive(Debug)]
pub struct Lines<T> {
    /// Parsed records with their 1-based line numbers.
    pub records: Vec<(usize, T)>,
    /// Lines that did not parse (blank lines are neither).
    pub bad: Vec<BadLine>,
}

impl<T> Lines<T> {
    /// Corrupt lines, not counting a torn last line.
    pub fn corrupt(&self) -> impl Iterator<Item = &BadLine> {
        self.bad.iter().filter(|b| !b.torn)
    }
}

/// Reads every line of `path` (an absent file has none) with `parse`, keeping the lines that
/// fail aside.
pub fn read_with<T>(
    path: &Path,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> anyhow::Result<Lines<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut lines = Lines {
        records: Vec::new(),
        bad: Vec::new(),
    };
    let mut offset = 0usize;
    for (i, raw) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let terminated = raw.ends_with(b"\n");
        let body = String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(raw));
        if !body.trim().is_empty() {
            match std::str::from_utf8(raw)
                .map_err(|e| e.to_string())
                .and_then(|_| parse(&body))
            {
                Ok(record) => lines.records.push((i + 1, record)),
                Err(error) => lines.bad.push(BadLine {
                    line: i + 1,
                    offset: offset as u64,
                    text: body.into_owned(),
                    error,
                    torn: !terminated,
                }),
            }
        }
        offset += raw.len();
    }
    Ok(lines)
}

/// Reads every line of `path` as JSON.
pub fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Lines<T>> {
    read_with(path, |line| {
        serde_json::from_str(line).map_err(|e| e.to_string())
    })
}

/// The file a torn fragment of `path` is moved to: `journal.jsonl` -> `journal.torn`.
pub fn torn_path(path: &Path) -> PathBuf {
    path.with_extension("torn")
}

/// What [`open_for_append`] did about a torn last line.
#[derive(Debug, Clone, PartialEq)]
pub struct TornTail {
    /// Where the fragment started (the length the file was truncated to).
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Where it was kept.
    pub kept_in: PathBuf,
}

impl TornTail {
    /// The one line printed when a torn write is repaired.
    pub fn describe(&self, path: &Path) -> String {
        format!(
            "{}: the last record was cut short by an interrupted write; its {} bytes at offset \
             {} were moved to {} and the file now ends at its last complete line",
            path.display(),
            self.len,
            self.offset,
            self.kept_in.display()
        )
    }
}

/// Opens `path` for appending (creating it if needed). An unterminated last line is moved to
/// [`torn_path`] (appended there with the time and offset) and the file is truncated to its
/// last complete line, durably, before the handle is returned.
pub fn open_for_append(path: &Path) -> anyhow::Result<(File, Option<TornTail>)> {
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let torn = cut_torn_tail(&mut file, path)
        .with_context(|| format!("cannot repair the torn end of {}", path.display()))?;
    Ok((file, torn))
}

fn cut_torn_tail(file: &mut File, path: &Path) -> anyhow::Result<Option<TornTail>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    // Walk back from the end to the last newline, a block at a time.
    let mut end_of_complete = 0u64;
    let mut pos = len;
    let mut block = vec![0u8; 64 * 1024];
    'search: while pos > 0 {
        let start = pos.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end_of_complete = start + i as u64 + 1;
            break 'search;
        }
        pos = start;
    }
    if end_of_complete == len {
        return Ok(None);
    }
    let mut fragment = Vec::with_capacity((len - end_of_complete) as usize);
    file.seek(SeekFrom::Start(end_of_complete))?;
    file.read_to_end(&mut fragment)?;
    let kept_in = torn_path(path);
    let mut torn = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&kept_in)
        .with_context(|| format!("cannot open {}", kept_in.display()))?;
    let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let mut kept = format!(
        "# {time}: {} bytes cut from {} at offset {end_of_complete}\n",
        fragment.len(),
        path.display()
    )
    .into_bytes();
    kept.extend_from_slice(&fragment);
    kept.push(b'\n');
    torn.write_all(&kept)?;
    torn.sync_data()?;
    // Only once the fragment is safe is it removed from the file.
    file.set_len(end_of_complete)?;
    file.sync_data()?;
    Ok(Some(TornTail {
        offset: end_of_complete,
        len: fragment.len() as u64,
        kept_in,
    }))
}

/// Appends `text` (whole lines, each ending in a newline) with one `write`.
pub fn append(file: &mut File, text: &str) -> std::io::Result<()> {
    debug_assert!(text.is_empty() || text.ends_with('\n'));
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sweep-jsonl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("journal.jsonl")
    }

    #[test]
    fn a_torn_last_line_is_moved_aside_and_the_file_ends_at_its_last_complete_line() {
        let path = scratch("torn");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3,\"b\"").unwrap();
        let (mut file, torn) = open_for_append(&path).unwrap();
        let torn = torn.expect("a torn tail");
        assert_eq!(torn.offset, 16);
        assert_eq!(torn.len, 10);
        append(&mut file, "{\"a\":4}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":4}\n"
        );
        let kept = std::fs::read_to_string(torn_path(&path)).unwrap();
        assert!(kept.contains("10 bytes cut from"), "{kept}");
        assert!(kept.ends_with("{\"a\":3,\"b\"\n"), "{kept}");
    }

    #[test]
    fn a_file_that_is_one_unterminated_line_is_emptied_and_a_whole_file_is_left_alone() {
        let path = scratch("whole");
        std::fs::write(&path, "{\"a\"").unwrap();
        let (_, torn) = open_for_append(&path).unwrap();
        assert_eq!(torn.map(|t| (t.offset, t.len)), Some((0, 4)));
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        let (_, torn) = open_for_append(&path).unwrap();
        assert_eq!(torn, None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    }

    #[test]
    fn a_torn_tail_longer_than_the_search_block_is_found() {
        let path = scratch("long");
        let long = "x".repeat(200_000);
        std::fs::write(&path, format!("{{\"a\":1}}\n{long}")).unwrap();
        let (_, torn) = open_for_append(&path).unwrap();
        assert_eq!(torn.map(|t| (t.offset, t.len)), Some((8, 200_000)));
    }

    #[test]
    fn readers_keep_every_good_line_and_name_the_bad_ones() {
        let path = scratch("read");
        std::fs::write(&path, "{\"a\":1}\nnot json\n\n{\"a\":3}\n{\"a\":").unwrap();
        let lines: Lines<serde_json::Value> = read(&path).unwrap();
        let good: Vec<usize> = lines.records.iter().map(|(n, _)| *n).collect();
        assert_eq!(good, [1, 4]);
        let bad: Vec<(usize, bool)> = lines.bad.iter().map(|b| (b.line, b.torn)).collect();
        assert_eq!(bad, [(2, false), (5, true)]);
        assert_eq!(lines.corrupt().count(), 1);
        assert_eq!(lines.bad[0].offset, 8);
        assert!(
            lines.bad[0]
                .describe(&path)
                .contains("journal.jsonl:2: skipped a corrupt line")
        );
    }
}
