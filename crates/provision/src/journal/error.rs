//! Why a journal could not be used, and the fix to print under it.

use std::path::{Path, PathBuf};

use super::JOURNAL_FILE;
use crate::lock::LockError;
use crate::sealed::SealError;

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading, writing or syncing a file of the folder failed.
    #[error("cannot use the output directory {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A line before the last record does not parse: refused, never healed.
    #[error("{path} line {line} is damaged ({source}); the lines after it are records, so this is not a torn last write")]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// Its line number (from 1).
        line: usize,
        /// What is wrong with it.
        #[source]
        source: super::LineError,
    },
    /// The journal file belongs to another user, is open to others, or is a symbolic link.
    #[error("cannot use the journal: {0}")]
    NotPrivate(#[from] crate::private_fs::NotPrivate),
    /// Another process writes this folder (or the folder is not private: see [`LockError`]).
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The journal lost records that the folder's other files know of (see
    /// [`chain`](super::chain)): refused, never continued.
    #[error("the key journal of {dir} lost records: {}", sentences(.what))]
    Lost {
        /// The batch folder.
        dir: PathBuf,
        /// What tells (one sentence each).
        what: Vec<super::LostRecords>,
    },
    /// The output path is a file.
    #[error("{0} is a file, not a folder")]
    NotAFolder(PathBuf),
    /// The output path is a folder of other files, not a batch folder.
    #[error("{dir} is not a tag424 batch folder: it holds {found} and no {JOURNAL_FILE}")]
    Foreign {
        /// The folder.
        dir: PathBuf,
        /// Some of its entries.
        found: String,
    },
    /// The folder has no journal.
    #[error("{0} is not a batch folder (it has no {JOURNAL_FILE})")]
    NotABatch(PathBuf),
    /// A cell of an export would start like a spreadsheet formula.
    #[error(transparent)]
    Export(#[from] crate::code_list::UnsafeCell),
    /// Sealing or opening keys failed (a wrong identity, damaged sealed keys).
    #[error("{dir}: {source}")]
    Sealed {
        /// The batch folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: SealError,
    },
    /// An encrypted batch whose keys are needed, and no identity to open them.
    #[error("{dir} is an encrypted batch (its keys are sealed to {recipients}); its keys are needed here and no --identity was given")]
    IdentityNeeded {
        /// The batch folder.
        dir: PathBuf,
        /// Its recipients, `age1…`, comma separated.
        recipients: String,
    },
    /// One tag's keys were asked of a journal read without its identity.
    #[error(
        "the keys of tag {uid} are encrypted (an encrypted batch) and no --identity was given"
    )]
    KeysSealed {
        /// The tag's UID.
        uid: String,
    },
    /// `--encrypt-to` on a folder that already holds keys in clear.
    #[error(
        "{dir} keeps its keys in clear; --encrypt-to cannot protect the keys already written there"
    )]
    ClearFolder {
        /// The batch folder.
        dir: PathBuf,
    },
    /// A record a newer tag424 wrote, of a kind this one does not know.
    #[error("{}: line {line} is a `{event}` record, which a newer tag424 writes and this one does not know", path.display())]
    Newer {
        /// The journal.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// The record's kind.
        event: String,
    },
    /// `--encrypt-to` recipients other than the encrypted folder's.
    #[error("{dir} is encrypted to {recipients}, not to the --encrypt-to given ({given})")]
    OtherRecipients {
        /// The batch folder.
        dir: PathBuf,
        /// The folder's recipients.
        recipients: String,
        /// The `--encrypt-to` recipients given.
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
            JournalError::Newer { .. } => format!(
                "nothing was changed; use the tag424 that wrote this folder, or a newer one (this is {})",
                env!("CARGO_PKG_VERSION")
            ),
            JournalError::NotPrivate(e) | JournalError::Locked(LockError::NotPrivate(e)) => e.help(),
            JournalError::Locked(LockError::Io { .. }) => "check the --out path: it must be a folder you can write (a new name is created owner-only); fix its permissions or free space, then re-run the same command".into(),
            JournalError::Locked(_) => "wait for that run to finish (or stop it with Ctrl-C); one process writes a batch folder at a time".into(),
            JournalError::Lost { dir, .. } => format!(
                "nothing was changed. Put back the newest backup of {JOURNAL_FILE} (the one {} matches) and re-run the same command. Without one, keep this folder as it is and follow \"A journal that lost records\" in docs/operator-guide.md: keys.csv (keys.csv.age) still holds the key of every tag it lists, associate.csv their UIDs, codes.csv and summary.json tell which codes were used; the batch goes on in a new --out folder without those codes. `tag424 journal check --out {}` lists what the journal still holds",
                super::chain::HEAD_FILE,
                dir.display()
            ),
            JournalError::NotAFolder(_) => "give --out a folder: a new name (it is created owner-only) or an existing batch folder".into(),
            JournalError::Foreign { .. } => "give --out a new folder name (it is created owner-only) or an existing batch folder; tag424 does not write into a folder of other files".into(),
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

impl From<crate::private_fs::PrivateError> for JournalError {
    fn from(e: crate::private_fs::PrivateError) -> JournalError {
        match e {
            crate::private_fs::PrivateError::NotPrivate(e) => JournalError::NotPrivate(e),
            crate::private_fs::PrivateError::Io { path, source } => {
                JournalError::Io { path, source }
            }
        }
    }
}

/// The lost records' sentences, joined with `; `.
fn sentences(what: &[super::LostRecords]) -> String {
    let s: Vec<String> = what.iter().map(ToString::to_string).collect();
    s.join("; ")
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::super::chain::{write_line, ChainError, GENESIS};
    use super::super::{Journal, LineError, Record, JOURNAL_FILE};
    use super::JournalError;

    /// A damaged middle line refuses the journal with the line's damage as a typed source,
    /// not as text: here record 3 right after record 1.
    #[test]
    fn a_damaged_line_is_the_typed_source_of_the_refusal() {
        let r = Record::KeysChanged {
            uid: "04112233445566".into(),
            time: 1,
        };
        let mut out = Vec::new();
        let l1 = write_line(&r, 1, &GENESIS, &mut out).expect("write");
        let l2 = write_line(&r, 2, &l1, &mut Vec::new()).expect("write");
        write_line(&r, 3, &l2, &mut out).expect("write");
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join(JOURNAL_FILE), &out).expect("write");
        let e = Journal::read_only(tmp.path()).expect_err("refused");
        assert!(
            matches!(
                &e,
                JournalError::Corrupt {
                    line: 2,
                    source: LineError::Chain(ChainError::Missing { written: 3, at: 2 }),
                    ..
                }
            ),
            "{e:?}"
        );
        let line = e.source().and_then(|s| s.downcast_ref::<LineError>());
        assert!(
            matches!(line, Some(LineError::Chain(ChainError::Missing { .. }))),
            "{line:?}"
        );
    }
}
