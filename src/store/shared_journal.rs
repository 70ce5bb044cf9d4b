//! The journal as pull workers share it: many processes, on one machine or many, append to
//! one `journal.jsonl` over a shared filesystem.
//!
//! Every append happens under the sweep's [`SharedLock`], after the writer has read what the
//! others appended since it last looked, so that every decision (which trial to take, whether
//! to prune) is made on the whole journal and the lines keep one order. The file is opened
//! after the lock is taken and closed before it is released: NFS's close-to-open consistency
//! then guarantees that each writer sees the previous writer's lines and appends after them.
//! Reading needs no lock: a line still being written is unterminated and is read next time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::journal::{self, Entry, Event, FORMAT};
use super::jsonl;
use super::record::StudyRecord;
use super::shared_lock::SharedLock;
use crate::trial::TrialStatus;

/// A journal read up to its last complete line, appended to under the shared lock.
pub struct SharedJournal {
    path: PathBuf,
    lock_path: PathBuf,
    /// A lock older than this is broken (its holder is gone).
    expiry: Duration,
    /// Bytes read so far: the end of the last complete line.
    offset: u64,
    /// Lines read so far.
    lines: usize,
    record: StudyRecord,
    stats: LockStats,
    /// Attempt ends read or appended since [`SharedJournal::take_ends`] last took them (and
    /// since the sweep last started).
    ends: Vec<AttemptEnd>,
    /// When each trial was last claimed, in milliseconds since the Unix epoch (the claimant's
    /// clock, as the journal line says).
    claimed_ms: HashMap<String, u64>,
}

/// An attempt's end as journalled (by any process).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    /// Trial id.
    pub trial: String,
    /// How it ended.
    pub status: TrialStatus,
    /// Why.
    pub message: Option<String>,
}

/// How much the lock cost this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockStats {
    /// Times it was taken.
    pub taken: usize,
    /// Time spent waiting for it.
    pub waited: Duration,
    /// Time it was held.
    pub held: Duration,
}

impl SharedJournal {
    /// Reads the journal at `path`; appends will take the lock at `lock_path`.
    pub fn open(path: &Path, lock_path: &Path, expiry: Duration) -> anyhow::Result<Self> {
        let mut journal = Self {
            path: path.to_path_buf(),
            lock_path: lock_path.to_path_buf(),
            expiry,
            offset: 0,
            lines: 0,
            record: StudyRecord::default(),
            stats: LockStats::default(),
            ends: Vec::new(),
            claimed_ms: HashMap::new(),
        };
        journal.refresh()?;
        Ok(journal)
    }

    /// The study as every line read so far tells it.
    pub fn record(&self) -> &StudyRecord {
        &self.record
    }

    /// Reads the lines appended since the last look. A corrupt line is an error that names
    /// it and `sweep repair`, as for every writer of a journal.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        for raw in bytes[..end].split(|&b| b == b'\n') {
            self.lines += 1;
            let text = String::from_utf8_lossy(raw);
            if text.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Entry>(&text) {
                Ok(entry) => {
                    if let Event::Format { version, .. } = &entry.event
                        && *version > FORMAT
                    {
                        bail!(
                            "{} is a journal of format {version}, written by a newer sweep; this \
                             sweep ({}) writes format {FORMAT}: use the newer sweep",
                            self.path.display(),
                            env!("CARGO_PKG_VERSION")
                        );
                    }
                    let ms = chrono::DateTime::parse_from_rfc3339(&entry.time)
                        .map_or(0, |t| t.timestamp_millis().max(0) as u64);
                    self.apply(&entry.event, ms);
                }
                // Every line read here is whole (a fragment being written is not read yet):
                // one that does not parse is corruption, and a worker acting on a journal
                // without it would lose the trial it held.
                Err(e) => {
                    return Err(journal::refuse_corrupt(
                        &self.path,
                        self.lines,
                        &e.to_string(),
                    ));
                }
            }
        }
        self.offset += end as u64 + 1;
        Ok(())
    }

    /// Takes the sweep's lock and reads what others appended before it.
    pub fn lock(&mut self) -> anyhow::Result<Locked<'_>> {
        let asked = Instant::now();
        let lock = SharedLock::acquire(&self.lock_path, self.expiry)?;
        let since = Instant::now();
        self.stats.taken += 1;
        self.stats.waited += since - asked;
        self.refresh()?;
        Ok(Locked {
            journal: self,
            lock,
            since,
        })
    }

    fn apply(&mut self, event: &Event, time_ms: u64) {
        if let Event::Claimed { trial, .. } = event {
            self.claimed_ms.insert(trial.clone(), time_ms);
        }
        // A sweep (re)started: the ends before it belong to an earlier run.
        if let Event::Sweep { .. } = event {
            self.ends.clear();
        }
        if let Event::Finished {
            trial,
            status,
            message,
            ..
        } = event
        {
            self.ends.push(AttemptEnd {
                trial: trial.clone(),
                status: *status,
                message: message.clone(),
            });
        }
        self.record.apply(event);
    }

    /// The attempt ends journalled since the last call, in journal order.
    pub fn take_ends(&mut self) -> Vec<AttemptEnd> {
        std::mem::take(&mut self.ends)
    }

    /// How long ago `trial` was last claimed, by the journal's time of the claim.
    pub fn claim_age(&self, trial: &str) -> Option<Duration> {
        let at = *self.claimed_ms.get(trial)?;
        Some(Duration::from_millis(
            super::shared_lock::now_ms().saturating_sub(at),
        ))
    }

    /// What the lock has cost this process so far.
    pub fn lock_stats(&self) -> LockStats {
        self.stats
    }
}

/// The journal while this process holds the sweep's lock.
pub struct Locked<'a> {
    journal: &'a mut SharedJournal,
    lock: SharedLock,
    since: Instant,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.journal.stats.held += self.since.elapsed();
    }
}

impl Locked<'_> {
    /// The study as the whole journal tells it now.
    pub fn record(&self) -> &StudyRecord {
        &self.journal.record
    }

    /// The attempt ends journalled since they were last taken, in journal order.
    pub fn take_ends(&mut self) -> Vec<AttemptEnd> {
        self.journal.take_ends()
    }

    /// How long ago `trial` was last claimed.
    pub fn claim_age(&self, trial: &str) -> Option<Duration> {
        self.journal.claim_age(trial)
    }

    /// Appends `events` as one write (flushed to the device when any is durable) and applies
    /// them to the record. A fragment a killed writer left at the end is moved aside first.
    pub fn append(&mut self, events: &[Event]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.lock.confirm()?;
        let j = &mut *self.journal;
        let (mut file, torn) = jsonl::open_for_append(&j.path)?;
        if let Some(torn) = torn {
            note!("{}", torn.describe(&j.path));
        }
        let len = file
            .metadata()
            .with_context(|| format!("cannot read {}", j.path.display()))?
            .len();
        if len != j.offset {
            // Lines this process has not read yet (appended without the lock): read them.
            drop(file);
            j.refresh()?;
            return self.append(events);
        }
        let text = journal::lines(events)?;
        jsonl::append(&mut file, &text)
            .and_then(|()| {
                if journal::any_durable(events) {
                    file.sync_data()
                } else {
                    Ok(())
                }
            })
            .with_context(|| format!("cannot append to {}", j.path.display()))?;
        drop(file);
        j.offset += text.len() as u64;
        j.lines += events.len();
        let now = super::shared_lock::now_ms();
        for e in events {
            j.apply(e, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::TrialDef;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sweep-shared-journal-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn trial(index: usize) -> Event {
        Event::Trial(TrialDef {
            index,
            id: format!("t{index}"),
            group: format!("g{index}"),
            label: None,
            params: Default::default(),
            sampler: None,
        })
    }

    #[test]
    fn writers_see_each_others_lines_and_keep_one_order() {
        let dir = scratch("order");
        let (path, lock) = (dir.join("journal.jsonl"), dir.join("journal.lock"));
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let (path, lock) = (path.clone(), lock.clone());
                std::thread::spawn(move || {
                    let mut j = SharedJournal::open(&path, &lock, Duration::from_secs(60)).unwrap();
                    for _ in 0..25 {
                        let mut held = j.lock().unwrap();
                        // Each writer appends the next index: only right if it read every line.
                        let next = held.record().trials.len();
                        held.append(&[trial(next)]).unwrap();
                    }
                    w
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let contents = journal::read(&path).unwrap();
        assert!(contents.bad.is_empty());
        let ids: Vec<String> = StudyRecord::replay(&contents.entries)
            .trials
            .iter()
            .map(|t| t.def.id.clone())
            .collect();
        let want: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        assert_eq!(ids, want, "no line lost, duplicated or torn");
    }

    #[test]
    fn a_fragment_left_by_a_killed_writer_is_moved_aside_before_the_next_append() {
        let dir = scratch("torn");
        let (path, lock) = (dir.join("journal.jsonl"), dir.join("journal.lock"));
        let mut j = SharedJournal::open(&path, &lock, Duration::from_secs(60)).unwrap();
        j.lock().unwrap().append(&[trial(0)]).unwrap();
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"time\":\"x\",\"event\":\"tri").unwrap();
        drop(f);
        j.refresh().unwrap();
        assert_eq!(
            j.record().trials.len(),
            1,
            "an unterminated line is not read"
        );
        j.lock().unwrap().append(&[trial(1)]).unwrap();
        let contents = journal::read(&path).unwrap();
        assert!(contents.bad.is_empty(), "{:?}", contents.bad);
        assert_eq!(contents.entries.len(), 2);
        assert!(jsonl::torn_path(&path).is_file());
    }
}
