//! Why a journal could not be used, and the fix to print under it.

use std::path::{Path, PathBuf};

use super::JOURNAL_FILE;
use crate::provision::lock::LockError;
use crate::provision::sealed::SealError;

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

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
