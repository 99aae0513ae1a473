//! The key journal: an append-only JSON-lines file in the output directory. A tag's new keys
//! are appended and flushed to disk (file and directory fsync'd) *before* the chip is told to
//! change them, so no crash, tear-off or kill can leave a tag with keys we do not have.
//! Files are created owner-only (0600).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::lock::{lock_folder, FolderLock};
use super::sealed::{Identity, Recipients};

/// The journal's file name in a batch folder.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The keys export of a batch folder whose keys are kept in clear.
pub const KEYS_CSV: &str = "keys.csv";
/// The keys export of an encrypted batch folder (an age file of the same CSV).
pub const KEYS_CSV_AGE: &str = "keys.csv.age";
/// The tag code to UID export (no key material).
pub const ASSOCIATE_CSV: &str = "associate.csv";

/// The batch's one journal as a tag's sequence uses it: held only for each lookup or append,
/// never across an APDU, so the workers of several readers share one journal (one writer
/// process, one file) and still overlap their radio time. The journal itself is one.
pub trait JournalAccess {
    /// Runs `f` with the journal (locked for that long when shared).
    fn with<R>(&mut self, f: impl FnOnce(&mut Journal) -> R) -> R;
}

impl JournalAccess for Journal {
    fn with<R>(&mut self, f: impl FnOnce(&mut Journal) -> R) -> R {
        f(self)
    }
}

impl JournalAccess for &std::sync::Mutex<&mut Journal> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Journal) -> R) -> R {
        // A worker that panicked cannot have left a half-appended record in memory: append
        // updates the in-memory state only after the line is on disk.
        let mut guard = self.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub use crate::private_fs::{sync_dir, write_atomic};

pub mod chain;
mod error;
mod folder;
mod parse;
mod record;
mod sealing;
use chain::{Link, GENESIS};
use error::io;
pub use error::JournalError;
pub use folder::LostRecords;
pub use parse::{parse, LineError, Parsed};
pub use record::{Check, PlannedKeys, Record, TagEntry, TornTail};
pub use sealing::KeyAccess;
use sealing::{sealed_recipients, Sealing};

use crate::lifecycle::Lifecycle;

/// The open journal of one output directory.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    /// `None` when opened read-only.
    file: Option<File>,
    _lock: Option<FolderLock>,
    tags: HashMap<String, TagEntry>,
    order: Vec<String>,
    used_xuids: HashSet<String>,
    /// Every code a `planned` record named (freed ones too).
    planned_xuids: HashSet<String>,
    /// Every (code, UID) a `verified` record named (reset ones too): what the exports may list.
    verified_pairs: HashSet<(String, String)>,
    /// How many records the journal holds, and the last one's link (see [`chain`]).
    records: u64,
    last_link: Link,
    /// The recipients of an encrypted batch: planned keys and the keys export are sealed.
    sealed_to: Option<Recipients>,
    /// A torn last write found on opening (moved aside when opened for writing).
    pub torn_tail: Option<TornTail>,
    /// The journal did not exist before this open: a new batch.
    pub created: bool,
    /// A write or flush failed: nothing more is appended (see [`Journal::append`]).
    failed: Option<String>,
    /// The batch's lifecycle options (its last `batch_options` record, or an earlier tag424's
    /// `lifecycle` record; none: all off).
    lifecycle: Lifecycle,
    /// The batch's irreversible options, as its `batch_options` record (or an earlier
    /// tag424's `options` record) names them.
    options: Option<Vec<String>>,
}

/// [`JournalError::Newer`] when a newer tag424 wrote a record this one does not know: every
/// reader refuses the journal then, before anything is changed (a torn tail is not healed).
fn refuse_newer(path: &Path, parsed: &Parsed) -> Result<(), JournalError> {
    match &parsed.newer {
        Some((line, event)) => Err(JournalError::Newer {
            path: path.to_path_buf(),
            line: *line,
            event: event.clone(),
        }),
        None => Ok(()),
    }
}

/// [`JournalError::Corrupt`] for the first damaged line before the last record: encoding runs
/// and readers refuse the journal (only `tag424 journal check` lists the damage).
fn refuse_damaged(path: &Path, damaged: &mut Vec<(usize, LineError)>) -> Result<(), JournalError> {
    match std::mem::take(damaged).into_iter().next() {
        Some((line, source)) => Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            line,
            source,
        }),
        None => Ok(()),
    }
}

/// Reads a journal file: `None` when the folder has none.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, JournalError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

impl Journal {
    fn empty(dir: &Path, file: Option<File>, lock: Option<FolderLock>) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
            path: dir.join(JOURNAL_FILE),
            file,
            _lock: lock,
            tags: HashMap::new(),
            order: Vec::new(),
            used_xuids: HashSet::new(),
            planned_xuids: HashSet::new(),
            verified_pairs: HashSet::new(),
            records: 0,
            last_link: GENESIS,
            sealed_to: None,
            torn_tail: None,
            created: false,
            failed: None,
            lifecycle: Lifecycle::default(),
            options: None,
        }
    }

    /// [`Journal::open_with`] for a batch whose keys are kept in clear.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        Journal::open_with(dir, &KeyAccess::default())
    }

    /// Opens the journal in `dir` for writing: takes the folder's lock (one writer at a time),
    /// creates the folder (0700) and the file (0600) if needed, and heals a torn last write:
    /// its bytes are moved to `journal.torn-TIME` and the journal is cut back to its last
    /// complete record. A damaged line before the last record is refused.
    ///
    /// An encrypted batch (`keys.encrypt_to` on a new folder, or a folder that is one) is
    /// opened with every key: its sealed keys need `keys.identity`, and nothing is changed
    /// when they cannot be opened.
    pub fn open_with(dir: &Path, keys: &KeyAccess) -> Result<Journal, JournalError> {
        // A file, a folder of other files, or a batch folder whose journal is gone: refused
        // before anything (the folder, the lock file) is created.
        folder::refuse_foreign(dir)?;
        let lock = lock_folder(dir)?;
        folder::refuse_foreign(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let file = crate::private_fs::open_append(&path)?;
        if !existed {
            file.sync_all().map_err(io(&path))?;
            sync_dir(dir).map_err(io(dir))?;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let mut parsed = parse(&bytes);
        refuse_newer(&path, &parsed)?;
        refuse_damaged(&path, &mut parsed.damaged)?;
        // Everything that can refuse the folder is checked before anything is written.
        let sealing = Journal::sealing(dir, &parsed.records, keys)?;
        let records = Journal::opened(dir, parsed.records, keys.identity.as_ref())?;
        let mut j = Journal::empty(dir, Some(file), Some(lock));
        j.created = !existed;
        for r in records {
            j.apply(r);
        }
        j.records = parsed.links.len() as u64;
        j.last_link = parsed.links.last().copied().unwrap_or(GENESIS);
        let head = chain::read_head(dir);
        let head_now = head.as_ref().ok().and_then(Option::clone);
        j.refuse_lost(head, &parsed.links)?;
        if let Some((line, len)) = parsed.torn {
            let kept = j.move_aside(&bytes[parsed.good_len..])?;
            let f = j.file.as_ref().ok_or_else(|| read_only_error(&path))?;
            f.set_len(parsed.good_len as u64).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
            j.torn_tail = Some(TornTail {
                line,
                bytes: len,
                kept_in: Some(kept),
            });
        }
        // A new folder, an older tag424's, or a head a crash left one record behind: the
        // head is brought to the journal's end.
        let current = chain::Head::new(j.records, &j.last_link);
        if head_now.as_ref() != Some(&current) {
            j.write_head()?;
        }
        match sealing {
            Sealing::Clear => {}
            Sealing::Continue(rs) => j.sealed_to = Some(rs),
            Sealing::Start(rs) => j.start_sealed(rs, &bytes[..parsed.good_len])?,
        }
        Ok(j)
    }

    /// [`JournalError::Lost`] when `journal.head` or the folder's exports know records this
    /// journal (its records' `links`) does not have.
    fn refuse_lost(
        &self,
        head: Result<Option<chain::Head>, chain::HeadError>,
        links: &[Link],
    ) -> Result<(), JournalError> {
        let lost = folder::lost_records(self, head, links)?;
        if lost.is_empty() {
            return Ok(());
        }
        Err(JournalError::Lost {
            dir: self.dir.clone(),
            what: lost,
        })
    }

    /// Refuses `dir` as a batch folder to write, changing nothing: a file, a folder of other
    /// files ([`JournalError::Foreign`]), or a batch folder whose journal is gone
    /// ([`JournalError::Lost`]). A missing folder, an empty one and a batch folder pass.
    /// [`Journal::open_with`] checks this first.
    pub fn check_folder(dir: &Path) -> Result<(), JournalError> {
        folder::refuse_foreign(dir)
    }

    /// Records how far the journal reached in `journal.head` (after the journal's fsync).
    fn write_head(&self) -> Result<(), JournalError> {
        let p = self.dir.join(chain::HEAD_FILE);
        chain::write_head(&self.dir, &chain::Head::new(self.records, &self.last_link))
            .map_err(io(&p))
    }

    /// Reads the journal of an existing batch folder without writing anything (no lock, no
    /// healing; a torn tail is reported and skipped). A damaged middle line is an error.
    /// The keys of an encrypted batch stay sealed ([`TagEntry::keys`] refuses them).
    pub fn read_only(dir: &Path) -> Result<Journal, JournalError> {
        Journal::read_only_with(dir, None)
    }

    /// [`Journal::read_only`], opening an encrypted batch's keys with `identity`.
    pub fn read_only_with(
        dir: &Path,
        identity: Option<&Identity>,
    ) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let Some(bytes) = read_file(&path)? else {
            return Err(JournalError::NotABatch(dir.to_path_buf()));
        };
        let mut parsed = parse(&bytes);
        refuse_newer(&path, &parsed)?;
        refuse_damaged(&path, &mut parsed.damaged)?;
        let mut j = Journal::empty(dir, None, None);
        j.records = parsed.links.len() as u64;
        j.last_link = parsed.last_link();
        if let Some(theirs) = sealed_recipients(&parsed.records) {
            j.sealed_to =
                Some(
                    Recipients::parse(theirs).map_err(|source| JournalError::Sealed {
                        dir: dir.to_path_buf(),
                        source,
                    })?,
                );
        }
        j.torn_tail = parsed.torn.map(|(line, bytes)| TornTail {
            line,
            bytes,
            kept_in: None,
        });
        for r in Journal::opened(dir, parsed.records, identity)? {
            j.apply(r);
        }
        // What would be exported from a journal that lost records would overwrite the rows
        // it lost (`tag424 export`), or serve fewer tags: refused as an encoding run is.
        j.refuse_lost(chain::read_head(dir), &parsed.links)?;
        Ok(j)
    }

    /// Reads a journal for `tag424 journal check`: every tag and every damage, changing
    /// nothing (a damaged middle line is listed, the records around it still read).
    pub fn check(dir: &Path) -> Result<Check, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let (bytes, lost) = match read_file(&path)? {
            Some(b) => (b, Vec::new()),
            // A batch folder whose journal is gone is damage to report, not "not a batch".
            None => match folder::refuse_foreign(dir) {
                Err(JournalError::Lost { what, .. }) => (Vec::new(), what),
                Err(e) => return Err(e),
                Ok(()) => return Err(JournalError::NotABatch(dir.to_path_buf())),
            },
        };
        let parsed = parse(&bytes);
        refuse_newer(&path, &parsed)?;
        let mut j = Journal::empty(dir, None, None);
        let encrypted_to = sealed_recipients(&parsed.records).map(<[String]>::to_vec);
        for r in parsed.records {
            j.apply(r);
        }
        let lost = if lost.is_empty() {
            folder::lost_records(&j, chain::read_head(dir), &parsed.links)?
        } else {
            lost
        };
        let mut torn_files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("journal.torn-"))
            })
            .collect();
        torn_files.sort();
        Ok(Check {
            tags: j.tags().cloned().collect(),
            torn: parsed.torn,
            damaged: parsed.damaged,
            lost,
            torn_files,
            encrypted_to,
            options: j.options().map(<[String]>::to_vec),
            lifecycle: j.lifecycle(),
        })
    }

    /// Writes the torn bytes, unchanged, to a new `journal.torn-TIME` file (0600, fsync'd).
    fn move_aside(&self, torn: &[u8]) -> Result<PathBuf, JournalError> {
        let stamp = now();
        for n in 0..1000 {
            let name = if n == 0 {
                format!("journal.torn-{stamp}")
            } else {
                format!("journal.torn-{stamp}-{n}")
            };
            let p = self.dir.join(name);
            match crate::private_fs::create_new(&p) {
                Ok(mut f) => {
                    f.write_all(torn)
                        .and_then(|_| f.sync_all())
                        .map_err(io(&p))?;
                    sync_dir(&self.dir).map_err(io(&self.dir))?;
                    return Ok(p);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&p)(e)),
            }
        }
        Err(io(&self.dir)(std::io::Error::other(
            "too many journal.torn-* files",
        )))
    }

    fn apply(&mut self, r: Record) {
        match r {
            Record::Sealed { .. } => {}
            Record::BatchOptions {
                irreversible,
                read_ctr_limit,
                failed_auth,
                ..
            } => {
                self.lifecycle = Lifecycle {
                    random_uid: irreversible
                        .iter()
                        .any(|id| id == crate::irreversible::RANDOM_UID.id),
                    read_ctr_limit,
                    failed_auth,
                };
                self.options = Some(irreversible);
            }
            Record::Options { irreversible, .. } => self.options = Some(irreversible),
            Record::Planned {
                uid,
                xuid,
                keys,
                lrp,
                locks,
                ..
            } => {
                self.used_xuids.insert(xuid.clone());
                self.planned_xuids.insert(xuid.clone());
                if !self.tags.contains_key(&uid) {
                    self.order.push(uid.clone());
                }
                let keys = match keys {
                    PlannedKeys::Clear(k) => Some(k),
                    PlannedKeys::Sealed { .. } => None,
                };
                self.tags.insert(
                    uid.clone(),
                    TagEntry {
                        uid,
                        xuid,
                        keys,
                        keys_changed: false,
                        verified: false,
                        reset: false,
                        lrp,
                        lrp_switch: false,
                        random_id: false,
                        locks,
                        read_ctr: None,
                    },
                );
            }
            Record::LrpSwitch { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.lrp_switch = true;
                }
            }
            Record::Lifecycle {
                random_uid,
                read_ctr_limit,
                failed_auth,
                ..
            } => {
                self.lifecycle = Lifecycle {
                    random_uid,
                    read_ctr_limit,
                    failed_auth,
                };
            }
            Record::RandomId { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.random_id = true;
                }
            }
            Record::KeysChanged { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.keys_changed = true;
                }
            }
            Record::Verified {
                uid,
                xuid,
                read_ctr,
                ..
            } => {
                self.verified_pairs.insert((xuid, uid.clone()));
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.verified = true;
                    t.keys_changed = true;
                    t.read_ctr = Some(read_ctr);
                }
            }
            Record::Reset { uid, free_code, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    if free_code {
                        self.used_xuids.remove(&t.xuid);
                    }
                    t.reset = true;
                    t.verified = false;
                    t.keys_changed = false;
                    t.read_ctr = None;
                }
            }
        }
    }

    /// Appends a record and flushes it to disk before returning. In an encrypted batch a
    /// `planned` record's keys are sealed to the batch's recipients before they are written;
    /// in memory the journal keeps them in clear.
    pub fn append(&mut self, r: Record) -> Result<(), JournalError> {
        if let Some(e) = &self.failed {
            return Err(io(&self.path)(std::io::Error::other(format!(
                "an earlier write to the journal failed ({e}); nothing more is written to it"
            ))));
        }
        let on_disk = self.sealed_form(&r)?;
        // Planned records hold keys: the line is built in a buffer sized up front (a record is
        // a few hundred bytes; a growing buffer would leave freed copies) and wiped once written.
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(2048));
        let link = chain::write_line(
            on_disk.as_ref().unwrap_or(&r),
            self.records + 1,
            &self.last_link,
            &mut line,
        )
        .map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let Some(file) = self.file.as_mut() else {
            return Err(read_only_error(&self.path));
        };
        let before = file.metadata().map(|m| m.len());
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // A partial line (a full disk) is cut back, so that no later record (another
            // reader's, or the next run's) joins onto it and makes a tag's record unreadable;
            // and after a failed write or flush the file's state is not known, so nothing more
            // is written: the tag in hand stops before its keys change, the run ends.
            if let Ok(len) = before {
                let _ = file.set_len(len).and_then(|()| file.sync_all());
            }
            self.failed = Some(e.to_string());
            return Err(io(&self.path)(e));
        }
        self.records += 1;
        self.last_link = link;
        self.apply(r);
        // The record is on disk; the head follows it. A head that could not be written is a
        // failed write too: the record stands (the next open brings the head up to it), and
        // the run stops.
        if let Err(e) = self.write_head() {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Starts an encrypted batch: its `sealed` record is written with the journal file
    /// itself (a new file, the journal's whole `records` and the record, renamed into place),
    /// so that it can never be torn off and leave a folder that later runs would take for a
    /// clear batch.
    fn start_sealed(&mut self, rs: Recipients, records: &[u8]) -> Result<(), JournalError> {
        let r = Record::Sealed {
            recipients: rs.to_strings(),
            time: now(),
        };
        let mut file = records.to_vec();
        let link = chain::write_line(&r, self.records + 1, &self.last_link, &mut file)
            .map_err(|e| io(&self.path)(e.into()))?;
        crate::private_fs::write_atomic(&self.path, &file).map_err(io(&self.path))?;
        // The renamed file replaced the one opened before: append to the new one.
        self.file = Some(crate::private_fs::open_append(&self.path)?);
        self.records += 1;
        self.last_link = link;
        self.apply(r);
        self.write_head()?;
        self.sealed_to = Some(rs);
        Ok(())
    }

    /// The folder's mode before this open made it owner-only, if it did (see
    /// [`FolderLock::tightened_from`]).
    pub fn tightened_from(&self) -> Option<u32> {
        self._lock.as_ref().and_then(FolderLock::tightened_from)
    }

    /// The batch folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The batch's lifecycle options (`--random-uid`, `--read-counter-limit`) as recorded.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The tag with this (real) UID, if the journal knows it.
    pub fn tag(&self, uid: &str) -> Option<&TagEntry> {
        self.tags.get(uid)
    }

    /// The tag code is taken by a tag of this batch (a reset with `--reuse-code` frees it).
    pub fn xuid_used(&self, xuid: &str) -> bool {
        self.used_xuids.contains(xuid)
    }

    /// Tags in the order they were first planned.
    pub fn tags(&self) -> impl Iterator<Item = &TagEntry> {
        self.order.iter().filter_map(|u| self.tags.get(u))
    }

    /// The age recipients of an encrypted batch (`None`: keys in clear).
    pub fn sealed_to(&self) -> Option<&Recipients> {
        self.sealed_to.as_ref()
    }

    /// The batch's irreversible options (ids), as its `batch_options` record (or an earlier
    /// tag424's `options` record) names them; `None` for a folder without one (a new batch,
    /// or one of a tag424 older still).
    pub fn options(&self) -> Option<&[String]> {
        self.options.as_deref()
    }
}

fn read_only_error(path: &Path) -> JournalError {
    io(path)(std::io::Error::other("the journal was opened read-only"))
}

mod export;
