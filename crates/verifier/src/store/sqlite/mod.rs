//! The embedded store: bundled SQLite, WAL, `synchronous=FULL`, migrations by `user_version`.
//!
//! Here: opening (owner-only from creation, WAL, durability) and the [`Store`] methods.
//! `schema`: how SQLite keeps the schema version (the migrations are listed once, for both
//! stores, in `store::schema`). `catalog`: the SQL under the shared catalog logic
//! (`store::merge`: load, import merge, management changes). `scans`: the group commit, the
//! scan and change logs, retention. (The PostgreSQL store has the same parts.)

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{ChangeRecord, Loaded, Retention, ScanRecord, ScanWrite, Store, StoreError, TagPatch};
use crate::catalog::Catalog;

mod catalog;
mod scans;
mod schema;

/// Sets a tag's counter (`?1` XUID, `?2` counter, `?3` time) only if it is higher than the
/// stored one: a scan's claim and an imported read-back counter. One changed row means raised.
const RAISE_COUNTER: &str = "INSERT INTO counters(xuid, ctr, time_ms) VALUES(?1,?2,?3)
     ON CONFLICT(xuid) DO UPDATE SET ctr=excluded.ctr, time_ms=excluded.time_ms
     WHERE excluded.ctr > counters.ctr";

/// The error of a SQLite call on the database at `path`.
fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// The result of one of the store's shared catalog routines (`merge`, `schema`), which are
/// written once as `async` for both backends: over SQLite they never wait, so one poll runs
/// them to the end.
fn ready<T>(f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(StoreError::Invalid(
            "internal: a SQLite store call waited (it never should)".into(),
        )),
    }
}

/// The files SQLite keeps beside the database.
pub const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// [`crate::private_fs::check`] on the database and its side files, and
/// [`crate::private_fs::check_parent`] on its folder.
fn check_files(path: &Path) -> Result<(), StoreError> {
    use crate::private_fs::{check_parent, check_path, PrivateError};
    let err = |e: PrivateError| match e {
        PrivateError::NotPrivate(e) => StoreError::NotPrivate(e),
        PrivateError::Io { path, source } => StoreError::Corrupt {
            db: path.display().to_string(),
            what: source.to_string(),
        },
    };
    check_parent(path).map_err(err)?;
    check_path(path).map_err(err)?;
    for s in SIDE_FILES {
        let mut side = path.as_os_str().to_owned();
        side.push(s);
        check_path(Path::new(&side)).map_err(err)?;
    }
    Ok(())
}

/// The embedded store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating owner-only if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        // The database holds tag keys: its folder lets no other user plant a file, an
        // existing database and its side files are ours and closed to others, and a new one
        // is created 0600 before SQLite writes a byte to it (SQLite gives its -wal and -shm
        // files the database's mode).
        check_files(path)?;
        if !path.exists() {
            if let Err(source) = crate::private_fs::create_new(path) {
                if source.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(StoreError::Corrupt {
                        db: path.display().to_string(),
                        what: format!("cannot create it owner-only: {source}"),
                    });
                }
            }
        }
        let conn = Connection::open(path).map_err(sql_err(path))?;
        let mut s = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        s.setup()?;
        Ok(s)
    }

    /// Opens an existing database read-only (for `tag424 scans` while a server runs).
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err(path))?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        let e = sql_err(&self.path);
        // WAL: readers do not block the writer; FULL: every commit syncs the log.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(&e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                db: self.path.display().to_string(),
                what: format!("cannot switch to WAL (journal_mode is {mode})"),
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(&e)?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&e)?;
        schema::migrate(&mut self.conn, &self.path)
    }
}

impl Store for SqliteStore {
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError> {
        catalog::import(&mut self.conn, &self.path, catalog)
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        catalog::load_from(&self.conn, &self.path)
    }

    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError> {
        scans::commit(&mut self.conn, &self.path, writes)
    }

    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError> {
        scans::scans(&self.conn, &self.path, limit)
    }

    fn update_tag(&mut self, patch: &TagPatch) -> Result<(), StoreError> {
        catalog::update_tag(&mut self.conn, &self.path, patch)
    }

    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError> {
        scans::changes(&self.conn, &self.path)
    }

    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        scans::prune(&self.conn, &self.path, retention, now_ms)
    }

    fn schema_version(&mut self) -> Result<u32, StoreError> {
        schema::version(&self.conn, &self.path)
    }
}

// Store behaviour is tested on both backends: tests/verifier_store.rs.
