//! The key journal: an append-only JSON-lines file in the output directory. A tag's new keys
//! are appended and flushed to disk (file and directory fsync'd) *before* the chip is told to
//! change them, so no crash, tear-off or kill can leave a tag with keys we do not have.
//! Files are created owner-only (0600).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::KeySet;

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
    /// The tag was returned to factory keys (`tag424 reset`).
    Reset { uid: String, time: u64 },
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
    #[error("{path} line {line} is not a journal record: {what}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        what: String,
    },
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

/// Opens (creating) a file for appending, owner-only.
fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true).read(true);
    } else {
        o.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Flushes a directory entry (new or renamed files) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

/// Writes a file atomically and durably: temp file (0600), fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = open_private(&tmp, false)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// The open journal of one output directory.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    tags: HashMap<String, TagEntry>,
    order: Vec<String>,
    used_xuids: HashSet<String>,
    /// A last line cut short by a crash (ignored; it was never acknowledged).
    pub torn_tail: bool,
}

impl Journal {
    /// Opens the journal in `dir`, creating the directory and the file if needed.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let file = open_private(&path, true).map_err(io(&path))?;
        if !existed {
            file.sync_all().map_err(io(&path))?;
            sync_dir(dir).map_err(io(dir))?;
        }
        let mut j = Journal {
            dir: dir.to_path_buf(),
            path: path.clone(),
            file,
            tags: HashMap::new(),
            order: Vec::new(),
            used_xuids: HashSet::new(),
            torn_tail: false,
        };
        let reader = BufReader::new(File::open(&path).map_err(io(&path))?);
        let lines: Vec<String> = reader
            .lines()
            .collect::<Result<_, _>>()
            .map_err(io(&path))?;
        let n = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => j.apply(r),
                Err(e) if i + 1 == n => {
                    let _ = e;
                    j.torn_tail = true;
                }
                Err(e) => {
                    return Err(JournalError::Corrupt {
                        path,
                        line: i + 1,
                        what: e.to_string(),
                    })
                }
            }
        }
        if j.torn_tail {
            // Terminate the torn line so the next record starts on its own line.
            j.file.write_all(b"\n").map_err(io(&j.path))?;
        }
        Ok(j)
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
            Record::Reset { uid, .. } => {
                if let Some(t) = self.tags.get_mut(&uid) {
                    t.reset = true;
                    t.verified = false;
                    t.keys_changed = false;
                }
            }
        }
    }

    /// Appends a record and flushes it to disk before returning.
    pub fn append(&mut self, r: Record) -> Result<(), JournalError> {
        // Planned records hold keys: the encoded line is wiped once written.
        let mut line =
            zeroize::Zeroizing::new(serde_json::to_vec(&r).map_err(|e| JournalError::Io {
                path: self.path.clone(),
                source: e.into(),
            })?);
        line.push(b'\n');
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
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
        let mut keys = zeroize::Zeroizing::new(String::from("XUID,KEY\n"));
        let mut assoc = String::from("XUID,UID\n");
        let mut n = 0;
        for t in self.tags().filter(|t| t.verified && !t.reset) {
            keys.push_str(&format!("{},{}\n", t.xuid, t.keys.sdm_file_read().to_hex()));
            assoc.push_str(&format!("{},{}\n", t.xuid, t.uid));
            n += 1;
        }
        let kp = self.dir.join("keys.csv");
        write_atomic(&kp, keys.as_bytes()).map_err(io(&kp))?;
        let ap = self.dir.join("associate.csv");
        write_atomic(&ap, assoc.as_bytes()).map_err(io(&ap))?;
        Ok(n)
    }
}
