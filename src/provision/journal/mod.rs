//! The key journal: an append-only JSON-lines file in the output directory. A tag's new keys
//! are appended and flushed to disk (file and directory fsync'd) *before* the chip is told to
//! change them, so no crash, tear-off or kill can leave a tag with keys we do not have.
//! Files are created owner-only (0600).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::KeySet;
use super::lock::{lock_folder, FolderLock, LockError};

pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// New keys chosen for a tag; written before the first ChangeKey.
    Planned {
        uid: String,
        xuid: String,
        keys: KeySet,
        time: u64,
        /// The tag is to end in LRP mode (`batch --lrp-irreversible`); it may be LRP already.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lrp: bool,
    },
    /// The irreversible switch to LRP (SetConfiguration option 05) is about to be sent.
    LrpSwitch { uid: String, time: u64 },
    /// All five keys changed (key 0 last).
    KeysChanged { uid: String, time: u64 },
    /// The read-back SUN message verified with the new keys: the tag is done.
    Verified {
        uid: String,
        xuid: String,
        read_ctr: u32,
        time: u64,
    },
    /// The tag was returned to factory keys (`tag424 reset`). Its code stays used (it may be
    /// printed on the tag) unless `free_code` (`tag424 reset --reuse-code`).
    Reset {
        uid: String,
        time: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        free_code: bool,
    },
}

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

/// What the journal knows about one tag (latest plan wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    pub uid: String,
    pub xuid: String,
    pub keys: KeySet,
    pub keys_changed: bool,
    pub verified: bool,
    pub reset: bool,
    /// Planned for LRP mode: the tag may be in LRP mode already (the switch cannot be undone).
    pub lrp: bool,
    /// The switch to LRP was sent (or about to be).
    pub lrp_switch: bool,
}

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the output directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line} is damaged ({what}); the lines after it are records, so this is not a torn last write")]
    Corrupt {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("{0} is not a batch folder (it has no {JOURNAL_FILE})")]
    NotABatch(PathBuf),
    #[error(transparent)]
    Export(#[from] crate::tag_code::UnsafeCell),
}

impl JournalError {
    /// The fix to print under the error.
    pub fn help(&self) -> String {
        match self {
            JournalError::Corrupt { path, .. } => format!(
                "nothing was changed; `tag424 journal check --out {}` lists every tag and the damage. Restore the journal from a backup or repair that line by hand",
                path.parent().unwrap_or(Path::new(".")).display()
            ),
            JournalError::Locked(_) => "wait for that run to finish (or stop it with Ctrl-C); one process writes a batch folder at a time".into(),
            JournalError::NotABatch(_) => "check the --out path".into(),
            JournalError::Export(_) => "the journal holds a tag code that breaks the tag-code rule: `tag424 journal check` shows it".into(),
            JournalError::Io { .. } => "free space or fix permissions, then re-run the same command to resume".into(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
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

mod parse;
pub use parse::{parse, Parsed};

/// A torn last write found when the journal was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The line number it started on.
    pub line: usize,
    /// Its length in bytes.
    pub bytes: usize,
    /// Where its bytes were moved (opened for writing), or `None` (opened read-only).
    pub kept_in: Option<PathBuf>,
}

/// What `tag424 journal check` reports.
#[derive(Debug)]
pub struct Check {
    pub tags: Vec<TagEntry>,
    /// A torn last write: (line, bytes). Healed by the next encoding run.
    pub torn: Option<(usize, usize)>,
    /// Damaged lines before the last record: (line, what). Encoding runs refuse the folder.
    pub damaged: Vec<(usize, String)>,
    /// Torn writes moved aside earlier.
    pub torn_files: Vec<PathBuf>,
}

impl TagEntry {
    /// The tag's state in words.
    pub fn state(&self) -> &'static str {
        if self.reset {
            "reset to factory"
        } else if self.verified {
            "done (verified)"
        } else if self.keys_changed {
            "keys changed, read-back not verified: present it again"
        } else if self.lrp_switch {
            "switch to LRP sent (the tag may be LRP already), interrupted: present it again to finish it"
        } else {
            "planned, interrupted: present it again to finish it"
        }
    }
}

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
    /// A torn last write found on opening (moved aside when opened for writing).
    pub torn_tail: Option<TornTail>,
    /// The journal did not exist before this open: a new batch.
    pub created: bool,
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
            torn_tail: None,
            created: false,
        }
    }

    /// Opens the journal in `dir` for writing: takes the folder's lock (one writer at a time),
    /// creates the folder (0700) and the file (0600) if needed, and heals a torn last write:
    /// its bytes are moved to `journal.torn-TIME` and the journal is cut back to its last
    /// complete record. A damaged line before the last record is refused.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let lock = lock_folder(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let file = crate::private_fs::open_append(&path).map_err(io(&path))?;
        if !existed {
            file.sync_all().map_err(io(&path))?;
            sync_dir(dir).map_err(io(dir))?;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let parsed = parse(&bytes);
        if let Some((line, what)) = parsed.damaged.first() {
            return Err(JournalError::Corrupt {
                path,
                line: *line,
                what: what.clone(),
            });
        }
        let mut j = Journal::empty(dir, Some(file), Some(lock));
        j.created = !existed;
        if let Some((line, len)) = parsed.torn {
            let kept = j.move_aside(&bytes[parsed.good_len..])?;
            let f = j.file.as_ref().expect("opened for writing");
            f.set_len(parsed.good_len as u64).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
            j.torn_tail = Some(TornTail {
                line,
                bytes: len,
                kept_in: Some(kept),
            });
        }
        for r in parsed.records {
            j.apply(r);
        }
        Ok(j)
    }

    /// Reads the journal of an existing batch folder without writing anything (no lock, no
    /// healing; a torn tail is reported and skipped). A damaged middle line is an error.
    pub fn read_only(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotABatch(dir.to_path_buf()))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let parsed = parse(&bytes);
        if let Some((line, what)) = parsed.damaged.first() {
            return Err(JournalError::Corrupt {
                path,
                line: *line,
                what: what.clone(),
            });
        }
        let mut j = Journal::empty(dir, None, None);
        j.torn_tail = parsed.torn.map(|(line, bytes)| TornTail {
            line,
            bytes,
            kept_in: None,
        });
        for r in parsed.records {
            j.apply(r);
        }
        Ok(j)
    }

    /// Reads a journal for `tag424 journal check`: every tag and every damage, changing
    /// nothing (a damaged middle line is listed, the records around it still read).
    pub fn check(dir: &Path) -> Result<Check, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotABatch(dir.to_path_buf()))
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let parsed = parse(&bytes);
        let mut j = Journal::empty(dir, None, None);
        for r in parsed.records {
            j.apply(r);
        }
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
            torn_files,
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
            Record::Planned {
                uid,
                xuid,
                keys,
                lrp,
                ..
            } => {
                self.used_xuids.insert(xuid.clone());
                if !self.tags.contains_key(&uid) {
                    self.order.push(uid.clone());
                }
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
                    },
                );
            }
            Record::LrpSwitch { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.lrp_switch = true;
                }
            }
            Record::KeysChanged { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.keys_changed = true;
                }
            }
            Record::Verified { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.verified = true;
                    t.keys_changed = true;
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
                }
            }
        }
    }

    /// Appends a record and flushes it to disk before returning.
    pub fn append(&mut self, r: Record) -> Result<(), JournalError> {
        // Planned records hold keys: the line is built in a buffer sized up front (a record is
        // a few hundred bytes; a growing buffer would leave freed copies) and wiped once written.
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(2048));
        serde_json::to_writer(&mut *line, &r).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let Some(file) = self.file.as_mut() else {
            return Err(io(&self.path)(std::io::Error::other(
                "the journal was opened read-only",
            )));
        };
        file.write_all(&line).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))?;
        self.apply(r);
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tag(&self, uid: &str) -> Option<&TagEntry> {
        self.tags.get(uid)
    }

    pub fn xuid_used(&self, xuid: &str) -> bool {
        self.used_xuids.contains(xuid)
    }

    /// Tags in the order they were first planned.
    pub fn tags(&self) -> impl Iterator<Item = &TagEntry> {
        self.order.iter().filter_map(|u| self.tags.get(u))
    }

    /// Writes `keys.csv` (XUID,KEY) and `associate.csv` (XUID,UID) for the verified tags.
    pub fn export(&self) -> Result<usize, JournalError> {
        // The file text holds keys: wiped from memory once written.
        let verified: Vec<&TagEntry> = self.tags().filter(|t| t.verified && !t.reset).collect();
        // Sized up front so the key text is never copied by a growing buffer.
        let mut keys = zeroize::Zeroizing::new(String::with_capacity(
            9 + verified.len() * (crate::tag_code::MAX_LEN + 34),
        ));
        keys.push_str("XUID,KEY\n");
        let mut assoc = String::from("XUID,UID\n");
        for t in &verified {
            let hex = t.keys.sdm_file_read().to_hex();
            crate::tag_code::push_row(&mut keys, &[&t.xuid, &hex])?;
            crate::tag_code::push_row(&mut assoc, &[&t.xuid, &t.uid])?;
        }
        let n = verified.len();
        let kp = self.dir.join("keys.csv");
        write_atomic(&kp, keys.as_bytes()).map_err(io(&kp))?;
        let ap = self.dir.join("associate.csv");
        write_atomic(&ap, assoc.as_bytes()).map_err(io(&ap))?;
        Ok(n)
    }
}
