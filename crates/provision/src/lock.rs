//! One writer per output folder: `batch`, `encode` and `reset` hold an exclusive lock on
//! `DIR/tag424.lock` for their whole run, so two processes can never plan one tag code for two
//! tags. The lock is the operating system's file lock (released when the process ends, even
//! by `kill -9`); the file's text only says who holds it, for the second process's message.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::private_fs;

/// The lock file's name in the output folder.
pub const LOCK_FILE: &str = "tag424.lock";

/// Why the folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{dir} is in use by {holder}")]
    InUse {
        /// The folder.
        dir: PathBuf,
        /// Who holds it ("process 123 since …"), from the lock file.
        holder: String,
    },
    /// The folder or its lock file belongs to another user, is open to others, or the lock
    /// file is a symbolic link.
    #[error("cannot use the output directory: {0}")]
    NotPrivate(#[from] private_fs::NotPrivate),
    /// The folder or its lock file could not be used.
    #[error("cannot use the output directory {path}: {source}")]
    Io {
        /// The folder or lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
    tightened_from: Option<u32>,
}

impl FolderLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's mode before this lock made it owner-only (it was the user's own and
    /// others could read it, see [`private_fs::make_private_dir`]), if it did.
    pub fn tightened_from(&self) -> Option<u32> {
        self.tightened_from
    }
}

/// "process 123 since Sun, 29 Nov 2026 18:46:02 GMT" from the lock file's text.
fn describe_holder(text: &str) -> Option<String> {
    let mut pid = None;
    let mut since = None;
    for part in text.split_whitespace() {
        if let Some(p) = part.strip_prefix("pid=") {
            pid = p.parse::<u32>().ok();
        } else if let Some(s) = part.strip_prefix("since=") {
            since = s.parse::<u64>().ok();
        }
    }
    let pid = pid?;
    let when = since
        .map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)))
        .unwrap_or_else(|| "an unknown time".into());
    Some(format!("process {pid} since {when}"))
}

impl From<private_fs::PrivateError> for LockError {
    fn from(e: private_fs::PrivateError) -> LockError {
        match e {
            private_fs::PrivateError::NotPrivate(e) => LockError::NotPrivate(e),
            private_fs::PrivateError::Io { path, source } => LockError::Io { path, source },
        }
    }
}

/// Takes the folder's lock, creating the folder (0700) if missing; a held lock is an
/// immediate error naming its holder (no waiting). An existing folder, and the lock file,
/// must be the user's own and closed to others ([`private_fs::check`]): the folder is where
/// the batch's keys go. The user's own folder that others can only read is made owner-only
/// ([`FolderLock::tightened_from`] says so); one others can write into is refused.
pub fn lock_folder(dir: &Path) -> Result<FolderLock, LockError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { path, source }
    };
    private_fs::create_dir(dir).map_err(io(dir))?;
    let tightened_from = private_fs::make_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = private_fs::open_checked(
        private_fs::options()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false),
        &path,
    )?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes its name right after locking: give it a moment.
            let mut holder = None;
            for _ in 0..50 {
                let mut text = String::new();
                let _ = file.rewind();
                let _ = file.read_to_string(&mut text);
                holder = describe_holder(&text);
                if holder.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            return Err(LockError::InUse {
                dir: dir.to_path_buf(),
                holder: holder.unwrap_or_else(|| "another process".into()),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let text = format!("pid={} since={since}\n", std::process::id());
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|_| file.sync_data())
        .map_err(io(&path))?;
    Ok(FolderLock {
        _file: file,
        path,
        tightened_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("out");
        let held = lock_folder(&d).unwrap();
        let e = lock_folder(&d).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        assert!(e.contains("GMT"), "{e}");
        drop(held);
        lock_folder(&d).unwrap();
    }
}
