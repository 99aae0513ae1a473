//! Owner-only files and folders, written durably: folders are created 0700 and files 0600
//! from their creation (never chmod'ed afterwards), every atomic write goes through a unique
//! temp name opened with `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted symlink is never followed),
//! and the parent directory is fsync'd after every creation and rename.
//!
//! Used by everything that writes key material or a batch's state: the key journal, keys.csv,
//! summary.json, traces, simulated tags and the verifier's database.
//!
//! The one rule for files and folders that hold keys and already exist ([`check`]): they
//! belong to the user running tag424 and no other user has any access to them (no group or
//! other permission bits). Another user's file, or one others can open, is refused with
//! [`NotPrivate`], which names the path, what is wrong and the fix. The one thing made
//! private instead of refused is the user's own folder that others can only read
//! ([`make_private_dir`]), and the caller says so.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a file's group or others have any access to it (mode bits `0o077`): the rule
/// libpq applies to its password file, and tag424 to every secret it reads from a file the
/// operator made (`~/.pgpass`, `--management-token-file`, `--token-file`). Always `false`
/// off Unix (no such bits).
pub fn others_can_access(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o077 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Options that open a file owner-only (0600) and refuse to follow a symlink at `path`.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o
}

/// Opens (creating 0600 if needed) a file for appending and reading; an existing one must
/// pass [`check`], and a symlink at `path` is refused.
pub fn open_append(path: &Path) -> Result<File, PrivateError> {
    open_checked(options().create(true).append(true).read(true), path)
}

/// Creates a new file 0600; fails if anything (a file or a symlink) is already at `path`.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    options().write(true).create_new(true).open(path)
}

/// Flushes a directory's entries (new or renamed files) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` (and missing parents) 0700, fsyncing each parent after a creation.
/// An existing directory is left as it is. Returns true when `dir` was created.
pub fn create_dir(dir: &Path) -> std::io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    if let Some(p) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(p)?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    match b.create(dir) {
        Ok(()) => {}
        // Another process made it between the check and the creation.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    }
    sync_dir(parent(dir))?;
    Ok(true)
}

/// A temp name beside `path` that no other writer (thread or process) picks.
fn temp_name(path: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let r: u32 = rand::random();
    parent(path).join(format!(
        ".{name}.{}.{}.{r:08x}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes a file atomically and durably: a unique temp file (0600, `O_EXCL | O_NOFOLLOW`),
/// fsync, rename over `path`, fsync the directory. Readers see the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_atomic(path, bytes)?;
    sync_dir(parent(path))
}

/// [`write_atomic`] without the directory's fsync: readers see the old or the new file, whole
/// (its data is fsync'd before the rename), and after a power cut the old one may come back.
/// For files that may lag behind, never run ahead (the journal's head).
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_name(path);
    let written = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A file or folder that keys would be read from or written into, refused by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPrivate {
    /// It belongs to another user, who can read (and change) what is in it.
    #[error("{} belongs to uid {owner}, not to you (uid {you}): that user could read or replace the keys in it", path.display())]
    NotOurs {
        /// The file or folder.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The uid tag424 runs as.
        you: u32,
        /// A folder (else a file).
        folder: bool,
    },
    /// Its group or other users have some access to it.
    #[error("{} is open to other users (mode {mode:04o}): they could read the keys in it", path.display())]
    OpenToOthers {
        /// The file or folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// A folder (else a file).
        folder: bool,
    },
    /// The folder a key file is created in lets other users create or rename files in it
    /// (they could plant a file of theirs under the name SQLite is about to open).
    #[error("{} can be written by other users (mode {mode:04o}): they could put files of theirs where tag424 keeps keys", path.display())]
    OthersCanWrite {
        /// The folder.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link where tag424 keeps a file of its own: never followed.
    #[error("{} is a symbolic link: tag424 never follows one there (another user could point it at a file of theirs)", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
}

impl NotPrivate {
    /// The fix to print under the error.
    pub fn help(&self) -> String {
        match self {
            NotPrivate::NotOurs {
                path, you, folder, ..
            } => {
                let p = path.display();
                if *folder {
                    format!("use a folder of your own instead (another path), or, if it is yours, take it over: `sudo chown -R {you} {p} && chmod 700 {p}`")
                } else {
                    format!("use a file of your own instead, or, if it is yours, take it over: `sudo chown {you} {p} && chmod 600 {p}`")
                }
            }
            NotPrivate::OpenToOthers { path, folder, .. } => {
                let p = path.display();
                if *folder {
                    format!("`chmod 700 {p}` (or use another path); what was in it while it was open may have been copied")
                } else {
                    format!("`chmod 600 {p}` (or use another file); a key that others could read may have been copied: consider it known")
                }
            }
            // A sticky folder (/tmp) is shared on purpose: never advise changing it.
            NotPrivate::OthersCanWrite { mode, .. } if mode & 0o1000 != 0 => {
                "it is a shared folder (like /tmp): keep the file in a folder of your own instead"
                    .into()
            }
            NotPrivate::OthersCanWrite { path, .. } => format!(
                "`chmod go-w {}`, or keep the file in a folder of your own",
                path.display()
            ),
            NotPrivate::Symlink { path } => format!(
                "remove the link (`rm {}`) and run the command again",
                path.display()
            ),
        }
    }
}

/// The user id files must belong to (the effective uid).
#[cfg(unix)]
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The one rule for an existing file or folder that holds keys (`meta` from `path`, ideally
/// through the open file's descriptor): it belongs to the user running tag424 and its group
/// and other permission bits are all clear. (Not Unix: always accepted.)
pub fn check(path: &Path, meta: &std::fs::Metadata) -> Result<(), NotPrivate> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let folder = meta.is_dir();
        let you = my_uid();
        if meta.uid() != you {
            return Err(NotPrivate::NotOurs {
                path: path.to_path_buf(),
                owner: meta.uid(),
                you,
                folder,
            });
        }
        check_mode(path, meta)?;
    }
    let _ = (path, meta);
    Ok(())
}

/// The mode half of [`check`] alone: no group or other permission bits (libpq's rule for
/// its password file, which does not look at the owner).
pub fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), NotPrivate> {
    if others_can_access(meta) {
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o7777
        };
        #[cfg(not(unix))]
        let mode = 0;
        return Err(NotPrivate::OpenToOthers {
            path: path.to_path_buf(),
            mode,
            folder: meta.is_dir(),
        });
    }
    Ok(())
}

/// The folder a key file is created in (`path`'s parent): it belongs to the user or to root
/// and neither its group nor other users can write into it, so nobody else can plant or swap
/// a file there (SQLite opens its `-wal` and `-shm` files by name, beside the database).
pub fn check_parent(path: &Path) -> Result<(), PrivateError> {
    // Named in full in messages ("." says little).
    let dir = &std::fs::canonicalize(parent(path)).unwrap_or_else(|_| parent(path).to_path_buf());
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dir).map_err(PrivateError::io(dir))?;
        let you = my_uid();
        if meta.uid() != you && meta.uid() != 0 {
            return Err(NotPrivate::NotOurs {
                path: dir.to_path_buf(),
                owner: meta.uid(),
                you,
                folder: true,
            }
            .into());
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(NotPrivate::OthersCanWrite {
                path: dir.to_path_buf(),
                mode,
            }
            .into());
        }
    }
    let _ = dir;
    Ok(())
}

/// Why a key file or folder could not be used: refused by the rule, or the system said no.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// Refused by [`check`].
    #[error(transparent)]
    NotPrivate(#[from] NotPrivate),
    /// Reading, creating or inspecting it failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

impl PrivateError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateError + '_ {
        move |source| PrivateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// [`check`] on an existing file or folder by its path (a symlink is followed: a batch folder
/// may be a link to a disk of its own); `Ok(false)` when nothing is there.
pub fn check_path(path: &Path) -> Result<bool, PrivateError> {
    match std::fs::metadata(path) {
        Ok(m) => {
            check(path, &m)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(PrivateError::io(path)(e)),
    }
}

/// Makes sure an existing folder that keys go into passes [`check`]: another user's folder is
/// refused, and so is one that group or others can write into (they may have put files of
/// theirs in it); the user's own folder that others can only read or enter (`mkdir`'s 0755)
/// is made owner-only (0700), and its mode before is returned so that the caller can say so.
pub fn make_private_dir(dir: &Path) -> Result<Option<u32>, PrivateError> {
    let meta = std::fs::metadata(dir).map_err(PrivateError::io(dir))?;
    match check(dir, &meta) {
        Ok(()) => Ok(None),
        Err(NotPrivate::OpenToOthers { mode, .. }) if mode & 0o022 == 0 => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let tight = std::fs::Permissions::from_mode((mode & !0o077) | 0o700);
                std::fs::set_permissions(dir, tight).map_err(PrivateError::io(dir))?;
            }
            Ok(Some(mode))
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens a file with `o` (which should come from [`options`]), then applies [`check`] to
/// what was opened (its descriptor, not the path again). A symlink at `path` is
/// [`NotPrivate::Symlink`].
pub fn open_checked(o: &OpenOptions, path: &Path) -> Result<File, PrivateError> {
    let f = o.open(path).map_err(|e| {
        if is_symlink(path) {
            PrivateError::NotPrivate(NotPrivate::Symlink {
                path: path.to_path_buf(),
            })
        } else {
            PrivateError::io(path)(e)
        }
    })?;
    let meta = f.metadata().map_err(PrivateError::io(path))?;
    check(path, &meta)?;
    Ok(f)
}

/// Reads a small secret file given as input (a key file, an age identity): the file opened
/// (a symlink is followed: it is the operator's own path) must pass [`check`], and one larger
/// than `max` bytes is refused. The bytes are wiped on drop.
pub fn read_secret(path: &Path, max: u64) -> Result<zeroize::Zeroizing<Vec<u8>>, PrivateError> {
    use std::io::Read;
    let mut o = OpenOptions::new();
    o.read(true);
    let f = o.open(path).map_err(PrivateError::io(path))?;
    let meta = f.metadata().map_err(PrivateError::io(path))?;
    check(path, &meta)?;
    let len = meta.len();
    if len > max {
        return Err(PrivateError::io(path)(std::io::Error::other(format!(
            "{len} bytes, more than a key file holds ({max} at most)"
        ))));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(len as usize + 1));
    f.take(max)
        .read_to_end(&mut bytes)
        .map_err(PrivateError::io(path))?;
    Ok(bytes)
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_owner_only_and_symlinks_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        assert!(create_dir(&d).unwrap());
        assert!(!create_dir(&d).unwrap());
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let f = d.join("keys.csv");
        write_atomic(&f, b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        // A planted symlink where a file is appended to is refused, not followed.
        let target = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, d.join("journal.jsonl")).unwrap();
        assert!(open_append(&d.join("journal.jsonl")).is_err());
        assert!(!target.exists());
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn the_rule_refuses_group_or_other_bits_and_names_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("key.txt");
        write_atomic(&f, b"x").unwrap();
        assert!(check_path(&f).unwrap());
        assert!(!check_path(&tmp.path().join("none")).unwrap());
        for mode in [0o640, 0o604, 0o620, 0o601] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = match check_path(&f) {
                Err(PrivateError::NotPrivate(e)) => e,
                other => panic!("{mode:o}: {other:?}"),
            };
            assert!(e.to_string().contains(&format!("mode 0{mode:o}")), "{e}");
            assert_eq!(e.help(), format!("`chmod 600 {}` (or use another file); a key that others could read may have been copied: consider it known", f.display()));
        }
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        let e = check_path(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("mode 0750"), "{e}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // A secret file larger than allowed is refused before it is read.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&f, &[b'0'; 100]).unwrap();
        assert!(read_secret(&f, 99).is_err());
        assert_eq!(read_secret(&f, 100).unwrap().len(), 100);
    }
}
