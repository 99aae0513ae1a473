//! The journal's records (one JSON line each) and what they add up to per tag.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::JournalError;
use crate::irreversible::Locks;
use crate::keys::KeySet;

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
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// New keys chosen for a tag; written before the first ChangeKey.
    Planned {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// The tag code the tag gets.
        xuid: String,
        /// Given in clear to [`Journal::append`](super::Journal::append), which seals them for an encrypted batch.
        keys: PlannedKeys,
        /// Seconds since the Unix epoch.
        time: u64,
        /// The tag is to end in LRP mode (`batch --lrp-irreversible`); it may be LRP already.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lrp: bool,
        /// What the tag's last ChangeFileSettings locks for good (`--lock-ndef-permanently`,
        /// `--freeze-settings`).
        #[serde(default, skip_serializing_if = "Locks::is_none")]
        locks: Locks,
    },
    /// The batch's options, one record written before its first tag is planned (again, if a
    /// run changes them while no tag is planned yet); once a tag is planned a run with other
    /// options is refused (`provision::options`).
    BatchOptions {
        /// The irreversible ones: ids of `provision::irreversible::ALL`.
        irreversible: Vec<String>,
        /// SDMReadCtrLimit of every tag's NDEF file (`--read-counter-limit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_ctr_limit: Option<u32>,
        /// The failed-authentication counter of every tag (`--failed-auth-limit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_auth: Option<crate::lifecycle::FailedAuthConfig>,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// Read in folders of an earlier tag424, which held the options in two records (this and
    /// `lifecycle`): the irreversible option ids.
    Options {
        /// The option ids (`lrp`, `lock-ndef`, `freeze-settings`).
        irreversible: Vec<String>,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// The irreversible switch to LRP (SetConfiguration option 05) is about to be sent.
    LrpSwitch {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// Read in folders of an earlier tag424 (see `options`): the lifecycle options
    /// (`batch --random-uid`, `--read-counter-limit`, `--failed-auth-limit`).
    Lifecycle {
        /// Random ID is switched on for every tag (IRREVERSIBLE on the chip).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        random_uid: bool,
        /// SDMReadCtrLimit of every tag's NDEF file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_ctr_limit: Option<u32>,
        /// The failed-authentication counter of every tag (`--failed-auth-limit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_auth: Option<crate::lifecycle::FailedAuthConfig>,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// The irreversible switch to Random ID (SetConfiguration option 00) is about to be sent:
    /// from then on the tag shows a random ID and is found by GetCardUID (real UID here).
    RandomId {
        /// The tag's real UID (14 hex digits).
        uid: String,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// All five keys changed (key 0 last).
    KeysChanged {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// The read-back SUN message verified with the new keys: the tag is done.
    Verified {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// Its tag code.
        xuid: String,
        /// The SDM read counter of the verified read-back: the verifier's first scan must be
        /// above it.
        read_ctr: u32,
        /// Seconds since the Unix epoch.
        time: u64,
    },
    /// The tag was returned to factory keys (`tag424 reset`). Its code stays used (it may be
    /// printed on the tag) unless `free_code` (`tag424 reset --reuse-code`).
    Reset {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// Seconds since the Unix epoch.
        time: u64,
        /// The tag's code is free for another tag (`--reuse-code`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        free_code: bool,
    },
}

/// What the journal knows about one tag (latest plan wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    /// The tag's UID (14 hex digits).
    pub uid: String,
    /// Its tag code.
    pub xuid: String,
    /// `None` while sealed: an encrypted batch read without its identity.
    pub(super) keys: Option<KeySet>,
    /// All five keys were changed (`keys_changed` in the journal).
    pub keys_changed: bool,
    /// The read-back verified: the tag is done.
    pub verified: bool,
    /// Returned to factory keys since (`tag424 reset`).
    pub reset: bool,
    /// Planned for LRP mode: the tag may be in LRP mode already (the switch cannot be undone).
    pub lrp: bool,
    /// The switch to LRP was sent (or about to be).
    pub lrp_switch: bool,
    /// The switch to Random ID was sent (or about to be): the tag may answer with a random ID.
    pub random_id: bool,
    /// What the tag's last ChangeFileSettings locks for good (its plan).
    pub locks: Locks,
    /// The counter of the verified read-back SUN message.
    pub read_ctr: Option<u32>,
}

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
    /// Every tag, in the order first planned.
    pub tags: Vec<TagEntry>,
    /// A torn last write: (line, bytes). Healed by the next encoding run.
    pub torn: Option<(usize, usize)>,
    /// Damaged lines before the last record: (line, what). Encoding runs refuse the folder.
    pub damaged: Vec<(usize, super::LineError)>,
    /// Records the journal lost, as `journal.head` and the folder's exports tell (one
    /// sentence each). Encoding runs refuse the folder.
    pub lost: Vec<super::LostRecords>,
    /// Torn writes moved aside earlier.
    pub torn_files: Vec<PathBuf>,
    /// The age recipients of an encrypted batch (`None`: keys in clear).
    pub encrypted_to: Option<Vec<String>>,
    /// The batch's irreversible options (ids) as its `batch_options` record (or an earlier
    /// tag424's `options` record) names them (`None`: no such record;
    /// `irreversible::of_folder` reads them from the tags then).
    pub options: Option<Vec<String>>,
    /// The batch's lifecycle options as its `batch_options` record (or an earlier tag424's
    /// `lifecycle` record) holds them.
    pub lifecycle: crate::lifecycle::Lifecycle,
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
        } else if self.random_id {
            "random ID switched on (the tag shows a random ID), interrupted: present it again to finish it"
        } else if self.lrp_switch {
            "switch to LRP sent (the tag may be LRP already), interrupted: present it again to finish it"
        } else {
            "planned, interrupted: present it again to finish it"
        }
    }
}
