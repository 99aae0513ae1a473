//! Owner-only files and folders, written durably: folders are created 0700 and files 0600
//! from their creation (never chmod'ed afterwards), every atomic write goes through a unique
//! temp name opened with `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted symlink is never followed),
//! and the parent directory is fsync'd after every creation and rename.
//!
//! Used by everything that writes key material or a batch's state: the key journal, keys.csv,
//! summary.json, traces, simulated tags and the verifier's database.

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

/// Opens (creating 0600 if needed) a file for appending and reading.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    options().create(true).append(true).read(true).open(path)
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
    written?;
    sync_dir(parent(path))
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
}
