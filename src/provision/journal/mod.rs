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
use super::sealed::{Identity, Recipients, SealError};

/// The journal's file name in a batch folder.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The keys export of a batch folder whose keys are kept in clear.
pub const KEYS_CSV: &str = "keys.csv";
/// The keys export of an encrypted batch folder (an age file of the same CSV).
pub const KEYS_CSV_AGE: &str = "keys.csv.age";
/// The tag code to UID export (no key material).
pub const ASSOCIATE_CSV: &str = "associate.csv";

/// A tag's planned keys as a journal line holds them: in clear, or sealed to the batch's
/// age recipients (`"keys": {"age": BASE64}`, the age file of the clear form's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlannedKeys {
    /// The five keys as hex (a batch without `--encrypt-to`).
    Clear(KeySet),
    /// An age file, base64, holding the clear form.
    Sealed {
        /// The age file (age-encryption.org/v1), base64.
        age: String,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// The batch's keys are encrypted at rest to these age recipients (`--encrypt-to`): the
    /// first record of an encrypted batch. Every later `planned` record holds sealed keys.
    Sealed {
        /// The recipients, `age1…`.
        recipients: Vec<String>,
        time: u64,
    },
    /// New keys chosen for a tag; written before the first ChangeKey.
    Planned {
        uid: String,
        xuid: String,
        /// Given in clear to [`Journal::append`], which seals them for an encrypted batch.
        keys: PlannedKeys,
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
    /// `None` while sealed: an encrypted batch read without its identity.
    keys: Option<KeySet>,
    pub keys_changed: bool,
    pub verified: bool,
    pub reset: bool,
    /// Planned for LRP mode: the tag may be in LRP mode already (the switch cannot be undone).
    pub lrp: bool,
    /// The switch to LRP was sent (or about to be).
    pub lrp_switch: bool,
    /// The counter of the verified read-back SUN message.
    pub read_ctr: Option<u32>,
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
    #[error("{dir}: {source}")]
    Sealed {
        dir: PathBuf,
        #[source]
        source: SealError,
    },
    #[error("{dir} is an encrypted batch (its keys are sealed to {recipients}); its keys are needed here and no --identity was given")]
    IdentityNeeded { dir: PathBuf, recipients: String },
    #[error(
        "the keys of tag {uid} are encrypted (an encrypted batch) and no --identity was given"
    )]
    KeysSealed { uid: String },
    #[error(
        "{dir} keeps its keys in clear; --encrypt-to cannot protect the keys already written there"
    )]
    ClearFolder { dir: PathBuf },
    #[error("{dir} is encrypted to {recipients}, not to the --encrypt-to given ({given})")]
    OtherRecipients {
        dir: PathBuf,
        recipients: String,
        given: String,
    },
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
            JournalError::Sealed { source: SealError::WrongIdentity { .. }, .. } => "give the identity file whose recipient the batch was encrypted to (`age-keygen -y FILE` prints a file's recipient)".into(),
            JournalError::Sealed { .. } => "check the --identity file; the journal's sealed records can be tried with `age -d -i FILE`".into(),
            JournalError::IdentityNeeded { .. } | JournalError::KeysSealed { .. } => "add --identity FILE (the age identity file, AGE-SECRET-KEY-1…, of one of those recipients); a new batch folder needs none".into(),
            JournalError::ClearFolder { .. } => "start the encrypted batch in a new --out folder, or leave out --encrypt-to to continue this one in clear".into(),
            JournalError::OtherRecipients { .. } => "leave out --encrypt-to (the folder remembers its recipients) or use a new --out folder".into(),
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
    /// The age recipients of an encrypted batch (`None`: keys in clear).
    pub encrypted_to: Option<Vec<String>>,
}

impl TagEntry {
    /// The tag's five keys; an error for an encrypted batch read without its identity.
    pub fn keys(&self) -> Result<&KeySet, JournalError> {
        self.keys.as_ref().ok_or_else(|| JournalError::KeysSealed {
            uid: self.uid.clone(),
        })
    }

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

/// How a batch folder's keys are kept at rest, as a run asks for it.
#[derive(Debug, Default)]
pub struct KeyAccess {
    /// `--encrypt-to`: seal the keys of a new batch to these recipients. An encrypted folder
    /// remembers its recipients; given again, they must be the same.
    pub encrypt_to: Option<Recipients>,
    /// `--identity`: opens the sealed keys of an encrypted batch.
    pub identity: Option<Identity>,
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
    /// The recipients of an encrypted batch: planned keys and the keys export are sealed.
    sealed_to: Option<Recipients>,
    /// A torn last write found on opening (moved aside when opened for writing).
    pub torn_tail: Option<TornTail>,
    /// The journal did not exist before this open: a new batch.
    pub created: bool,
}

/// Reads a journal file: `None` when the folder has none.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, JournalError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The recipients a journal's records seal to, if it is an encrypted batch.
fn sealed_recipients(records: &[Record]) -> Option<&[String]> {
    records.iter().rev().find_map(|r| match r {
        Record::Sealed { recipients, .. } => Some(recipients.as_slice()),
        _ => None,
    })
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
            sealed_to: None,
            torn_tail: None,
            created: false,
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
        // Everything that can refuse the folder is checked before anything is written.
        let sealing = Journal::sealing(dir, &parsed.records, keys)?;
        let records = Journal::opened(dir, parsed.records, keys.identity.as_ref())?;
        let mut j = Journal::empty(dir, Some(file), Some(lock));
        j.created = !existed;
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
        for r in records {
            j.apply(r);
        }
        match sealing {
            Sealing::Clear => {}
            Sealing::Continue(rs) => j.sealed_to = Some(rs),
            Sealing::Start(rs) => {
                j.append(Record::Sealed {
                    recipients: rs.to_strings(),
                    time: now(),
                })?;
                j.sealed_to = Some(rs);
            }
        }
        Ok(j)
    }

    /// Decides how the keys of this run are kept, or refuses the folder.
    fn sealing(dir: &Path, records: &[Record], keys: &KeyAccess) -> Result<Sealing, JournalError> {
        let planned = records.iter().any(|r| matches!(r, Record::Planned { .. }));
        let sealed_err = |source| JournalError::Sealed {
            dir: dir.to_path_buf(),
            source,
        };
        match (sealed_recipients(records), &keys.encrypt_to) {
            (None, None) => Ok(Sealing::Clear),
            (None, Some(_)) if planned => Err(JournalError::ClearFolder {
                dir: dir.to_path_buf(),
            }),
            (None, Some(rs)) => Ok(Sealing::Start(rs.clone())),
            (Some(theirs), given) => {
                let rs = Recipients::parse(theirs).map_err(sealed_err)?;
                if let Some(given) = given {
                    let mut a = rs.to_strings();
                    let mut b = given.to_strings();
                    a.sort();
                    b.sort();
                    if a != b {
                        return Err(JournalError::OtherRecipients {
                            dir: dir.to_path_buf(),
                            recipients: a.join(", "),
                            given: b.join(", "),
                        });
                    }
                }
                if planned && keys.identity.is_none() {
                    return Err(JournalError::IdentityNeeded {
                        dir: dir.to_path_buf(),
                        recipients: theirs.join(", "),
                    });
                }
                Ok(Sealing::Continue(rs))
            }
        }
    }

    /// The records with every sealed key opened by `identity` (left sealed without one).
    fn opened(
        dir: &Path,
        mut records: Vec<Record>,
        identity: Option<&Identity>,
    ) -> Result<Vec<Record>, JournalError> {
        let Some(id) = identity else {
            return Ok(records);
        };
        for r in &mut records {
            if let Record::Planned { keys, .. } = r {
                if let PlannedKeys::Sealed { age } = keys {
                    let plain = id.open_base64(age).map_err(|source| JournalError::Sealed {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                    let set: KeySet =
                        serde_json::from_slice(&plain).map_err(|e| JournalError::Sealed {
                            dir: dir.to_path_buf(),
                            source: SealError::Damaged(e.to_string()),
                        })?;
                    *keys = PlannedKeys::Clear(set);
                }
            }
        }
        Ok(records)
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
        let parsed = parse(&bytes);
        if let Some((line, what)) = parsed.damaged.first() {
            return Err(JournalError::Corrupt {
                path,
                line: *line,
                what: what.clone(),
            });
        }
        let mut j = Journal::empty(dir, None, None);
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
        Ok(j)
    }

    /// Reads a journal for `tag424 journal check`: every tag and every damage, changing
    /// nothing (a damaged middle line is listed, the records around it still read).
    pub fn check(dir: &Path) -> Result<Check, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let Some(bytes) = read_file(&path)? else {
            return Err(JournalError::NotABatch(dir.to_path_buf()));
        };
        let parsed = parse(&bytes);
        let mut j = Journal::empty(dir, None, None);
        let encrypted_to = sealed_recipients(&parsed.records).map(<[String]>::to_vec);
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
            encrypted_to,
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
                        read_ctr: None,
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
            Record::Verified { uid, read_ctr, .. } => {
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
        let on_disk = match (&r, &self.sealed_to) {
            (
                Record::Planned {
                    uid,
                    xuid,
                    keys: PlannedKeys::Clear(k),
                    time,
                    lrp,
                },
                Some(rs),
            ) => {
                let plain = zeroize::Zeroizing::new(serde_json::to_vec(k).map_err(|e| {
                    JournalError::Io {
                        path: self.path.clone(),
                        source: e.into(),
                    }
                })?);
                let age = rs
                    .seal_base64(&plain)
                    .map_err(|source| JournalError::Sealed {
                        dir: self.dir.clone(),
                        source,
                    })?;
                Some(Record::Planned {
                    uid: uid.clone(),
                    xuid: xuid.clone(),
                    keys: PlannedKeys::Sealed { age },
                    time: *time,
                    lrp: *lrp,
                })
            }
            _ => None,
        };
        // Planned records hold keys: the line is built in a buffer sized up front (a record is
        // a few hundred bytes; a growing buffer would leave freed copies) and wiped once written.
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(2048));
        serde_json::to_writer(&mut *line, on_disk.as_ref().unwrap_or(&r)).map_err(|e| {
            JournalError::Io {
                path: self.path.clone(),
                source: e.into(),
            }
        })?;
        line.push(b'\n');
        let Some(file) = self.file.as_mut() else {
            return Err(read_only_error(&self.path));
        };
        file.write_all(&line).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))?;
        self.apply(r);
        Ok(())
    }

    /// The batch folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the journal knows about the tag with this UID.
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
}

/// How one run keeps its keys.
enum Sealing {
    Clear,
    /// An encrypted batch, opened again.
    Continue(Recipients),
    /// A new encrypted batch: its first record names the recipients.
    Start(Recipients),
}

fn read_only_error(path: &Path) -> JournalError {
    io(path)(std::io::Error::other("the journal was opened read-only"))
}

mod export;
