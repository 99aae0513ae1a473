//! Persistence behind a trait: the catalog (folders, groups, batches, tags and their keys),
//! the last accepted counter of each tag, and the scan log.
//!
//! [`SqliteStore`] (in `sqlite`) is the embedded implementation (bundled SQLite, WAL, `synchronous=FULL`,
//! schema version in `user_version`); [`PgStore`] (in `postgres`) the server-grade one that
//! several verifier instances share (applied migrations in `schema_migrations`, changes
//! announced with LISTEN/NOTIFY). What they share is written once: the list of migrations and
//! the catalog tables' columns (`schema`), loading the catalog, the import merge and the
//! management change rules (`merge`), the row types and the assembling of a [`Catalog`]
//! (`rows`); a backend only runs its dialect's SQL for them. The verifier
//! calls the store from one writer thread ([`Writer`]), which batches concurrent scans into one
//! transaction (group commit): a Pass is answered only after the transaction holding its
//! counter is committed and synced.

mod merge;
mod pgpass;
mod postgres;
mod rows;
mod schema;
mod sqlite;
mod writer;

pub use postgres::{is_postgres_url, PgStats, PgStore, WATCH_POLL};
pub use rows::{ColumnError, RowError, Value, ValueError};
pub use schema::{Migration, MIGRATIONS, SCHEMA_VERSION};
pub use sqlite::SqliteStore;
pub use writer::{Writer, WriterStats, MAX_GROUP, PRUNE_INTERVAL, PRUNE_ROWS_FRACTION};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::catalog::Catalog;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL call failed.
    #[error("database {target}: {}", postgres::describe(source))]
    Postgres {
        /// The database (`postgres://user@host:port/db`, never a password).
        target: String,
        /// The PostgreSQL client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No PostgreSQL connection could be had (pool timeout, connecting).
    #[error("database {target}: {source}")]
    PostgresPool {
        /// The database (`postgres://user@host:port/db`, never a password).
        target: String,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The PostgreSQL server or database cannot be used as it is (durability off, no
    /// verifier tables, the store closed).
    #[error("database {target}: {what}")]
    PostgresRefused {
        /// The database (`postgres://user@host:port/db`, never a password).
        target: String,
        /// What is wrong, and the fix.
        what: String,
    },
    /// The database file, one of its side files or its folder could be read or swapped by
    /// another user.
    #[error("database: {0}")]
    NotPrivate(#[from] crate::private_fs::NotPrivate),
    /// The database holds something this version cannot read.
    #[error("database {db}: {what}")]
    Corrupt {
        /// The database (its file, or `postgres://user@host:port/db`).
        db: String,
        /// What is wrong.
        what: String,
    },
    /// Stored rows cannot be read or do not link up.
    #[error("database {db}: {source}")]
    CorruptRow {
        /// The database (its file, or `postgres://user@host:port/db`).
        db: String,
        /// The row at fault and what is wrong with it.
        #[source]
        source: RowError,
    },
    /// The database was migrated by a newer tag424: its tables may mean what this one does
    /// not know.
    #[error("database {db}: schema version {version} is newer than this tag424 knows ({known}); upgrade tag424")]
    SchemaTooNew {
        /// The database (its file, or `postgres://user@host:port/db`).
        db: String,
        /// The database's schema version.
        version: u32,
        /// The newest this tag424 knows ([`SCHEMA_VERSION`]).
        known: u32,
    },
    /// A request the store refuses (unknown tag, CUID taken, invalid merged catalog, …).
    #[error("{0}")]
    Invalid(String),
    /// The writer thread has stopped; nothing more is stored.
    #[error("the store's writer has stopped")]
    Stopped,
}

/// One scan to log. When `claim` is set the scan is a Pass candidate: the store records
/// `claim` as the tag's counter only if it is greater than the one it holds, and logs
/// `result` if so, `refused_result` if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanWrite {
    /// When the request came (ms since the Unix epoch).
    pub time_ms: u64,
    /// The endpoint (`api` or `auth`).
    pub endpoint: &'static str,
    /// The query as logged (see [`crate::logged_query`]).
    pub query: String,
    /// The tag code (empty when no tag was found).
    pub xuid: String,
    /// The counter the request carried.
    pub ctr: Option<u32>,
    /// The response text or error code answered.
    pub result: String,
    /// The [`crate::Reason`] code.
    pub reason: &'static str,
    /// The client's IP address.
    pub remote: String,
    /// Set for a Pass candidate: the counter to record.
    pub claim: Option<Claim>,
}

/// A Pass candidate's counter: stored only if greater than the tag's stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The counter to record.
    pub ctr: u32,
    /// The result to log instead when the counter is refused.
    pub refused_result: String,
}

/// One row of the scan log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanRecord {
    /// Row id, increasing.
    pub id: i64,
    /// When the request came (ms since the Unix epoch).
    pub time_ms: u64,
    /// The endpoint (`api` or `auth`).
    pub endpoint: String,
    /// The query as logged.
    pub query: String,
    /// The tag code (empty when no tag was found).
    pub xuid: String,
    /// The counter the request carried.
    pub ctr: Option<u32>,
    /// The response text or error code answered.
    pub result: String,
    /// The scan passed.
    pub passed: bool,
    /// The [`crate::Reason`] code.
    pub reason: String,
    /// The client's IP address.
    pub remote: String,
}

/// Scans of one tag in the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Answers about the tag (responses, not error codes) still in the log.
    pub answered: u64,
    /// Of which passed (never pruned by the retention setting).
    pub genuine: u64,
}

/// What the verifier loads at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The catalog; each tag's `created_ms` is in `created`.
    pub catalog: Catalog,
    /// Last accepted counter per tag (the read-back counter of the journal at least).
    pub counters: HashMap<String, u32>,
    /// Scans logged per tag.
    pub scan_counts: HashMap<String, ScanCounts>,
    /// When each tag was first imported (ms since the epoch), for `{dtcreated}`.
    pub created: HashMap<String, u64>,
}

/// A change to one tag code through the management API. `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPatch {
    /// The tag code to change.
    pub xuid: String,
    /// `Some(None)` removes the Tag Code's Default Response (reverts to the group's rules);
    /// `Some(Some(text))` sets it.
    pub default_response: Option<Option<String>>,
    /// `Some(false)` deactivates the tag code, `Some(true)` activates it.
    pub active: Option<bool>,
    /// The new CUID (custom id), unique in the tag's folder.
    pub cuid: Option<String>,
    /// Who asked (logged with the change).
    pub remote: String,
    /// When the change was asked for (ms since the Unix epoch).
    pub time_ms: u64,
}

/// One row of the change log (management API changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    /// When the change was made (ms since the Unix epoch).
    pub time_ms: u64,
    /// The tag code changed.
    pub xuid: String,
    /// The field changed (`default_response`, `status` or `cuid`).
    pub field: String,
    /// The value before (`None`: none).
    pub old: Option<String>,
    /// The value after (`None`: removed).
    pub new: Option<String>,
    /// Who asked (the client's IP address).
    pub remote: String,
}

/// The scan-log rows that count as a tag's scans (SQL, both stores), the rule of
/// [`crate::counts_as_scan`]: answers about a known tag (not an error code) on the
/// API, and passes on the `/auth` page.
pub const COUNTS_AS_SCAN: &str =
    "(xuid <> '' AND reason <> 'error' AND (passed OR endpoint <> 'auth'))";

/// How long the scan log keeps rows that did not pass (passes are always kept: they are
/// bounded by real taps, and the genuine-scan counts come from them).
///
/// The default ([`Retention::DEFAULT`]) bounds what strangers can add: rows that did not
/// pass are kept [`DEFAULT_RETENTION_DAYS`] days, and at most the newest
/// [`DEFAULT_RETENTION_ROWS`] rows keep theirs. [`Retention::KEEP_ALL`] keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many of the newest rows: a non-passing row is deleted beyond them;
    /// one that counts toward a scan count ([`COUNTS_AS_SCAN`]) only beyond the newest this
    /// many counted rows, so a flood of uncounted requests never prunes a counted row.
    pub max_rows: Option<u64>,
    /// Delete non-passing rows older than this.
    pub max_age_ms: Option<u64>,
}

/// A retention setting that is not one ([`Retention::parse`]); says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected Nd (days), N (rows), both (90d,1000000) or all (keep every row)")]
pub struct BadRetention(pub String);

/// Days a row that did not pass is kept by default.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// Rows beyond the newest this many lose their non-passing rows by default.
pub const DEFAULT_RETENTION_ROWS: u64 = 1_000_000;

impl Retention {
    /// Parses a retention setting (`--log-retention`, `log_retention` in the config): `Nd`
    /// (days), `N` (rows), both as `Nd,N` (either order), or `all` (keep every row). A value
    /// replaces the whole default (`30d` alone has no row cap). The error says what is expected.
    pub fn parse(s: &str) -> Result<Retention, BadRetention> {
        let bad = || BadRetention(s.to_string());
        if s.trim() == "all" {
            return Ok(Retention::KEEP_ALL);
        }
        let mut r = Retention::KEEP_ALL;
        for part in s.split(',').map(str::trim) {
            if let Some(d) = part.strip_suffix('d') {
                let days: u64 = d.parse().map_err(|_| bad())?;
                if r.max_age_ms.is_some() {
                    return Err(bad());
                }
                r.max_age_ms = Some(days.checked_mul(86_400_000).ok_or_else(bad)?);
            } else {
                if r.max_rows.is_some() {
                    return Err(bad());
                }
                r.max_rows = Some(part.parse().map_err(|_| bad())?);
            }
        }
        Ok(r)
    }

    /// Non-passing rows: 90 days, and none beyond the newest 1,000,000 rows.
    pub const DEFAULT: Retention = Retention {
        max_rows: Some(DEFAULT_RETENTION_ROWS),
        max_age_ms: Some(DEFAULT_RETENTION_DAYS * 86_400_000),
    };
    /// Nothing is ever deleted.
    pub const KEEP_ALL: Retention = Retention {
        max_rows: None,
        max_age_ms: None,
    };
}

impl Default for Retention {
    /// [`Retention::DEFAULT`].
    fn default() -> Retention {
        Retention::DEFAULT
    }
}

/// The verifier's persistence. Called from one thread at a time.
///
/// Schema (both backends, one list of migrations: [`MIGRATIONS`]): `folders` (+ `active`,
/// `fields` JSON), `groups` (+ `active`, `rule_groups` JSON of
/// [`crate::catalog::RuleGroup`], `data` JSON pairs), `batches` (+ `template`, `lrp`),
/// `tags` (+ `meta_key`, `tagname`, `active`, `rule_groups` JSON or NULL, `data` JSON pairs,
/// `created_ms`), `counters`, `scans`, `changes`. The import merge, the management change
/// rules and the loading of the catalog are written once above the backends (`merge`), the
/// columns and migrations once in `schema`; a backend only runs SQL.
pub trait Store: Send + 'static {
    /// Merges `catalog` into the stored one (folders, groups and batches by name, tags by
    /// XUID); counters and the scan log are kept. For tags, the Associate Data values
    /// (`key`, `meta_key`, `uid`, `cuid`, `tagname`, `default_response`, `active`) replace
    /// the stored ones only when given (`Some`); the config's (`pass_response`,
    /// `rule_groups`, `data`) always replace. A tag's `read_ctr` raises its counter
    /// (forward only: `WHERE excluded.ctr > counters.ctr`). New tags get `created_ms` = now.
    /// All or nothing: a merged catalog that fails [`Catalog::validate`] changes nothing.
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError>;
    /// Everything needed to serve.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Logs `writes` in one durable transaction; for each write, whether its claim (if any)
    /// was accepted. Returns only once the transaction is on disk.
    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError>;
    /// The scan log, oldest first; the last `limit` rows when given.
    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError>;
    /// Applies a management API change durably (one transaction) and logs each changed
    /// field in `changes` (old and new value, time, remote). `Invalid` if the tag is unknown
    /// or the new CUID is taken in its folder.
    fn update_tag(&mut self, patch: &TagPatch) -> Result<(), StoreError>;
    /// The change log, oldest first.
    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError>;
    /// Deletes non-passing scan rows beyond `retention`; returns how many.
    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError>;
    /// The schema version of the database (the number of [`MIGRATIONS`] applied to it).
    fn schema_version(&mut self) -> Result<u32, StoreError>;
    /// Calls `on_change` with the whole stored state whenever another process (another
    /// verifier instance on the same database) changed the catalog. Stores that only one
    /// process uses (SQLite) never call it.
    fn watch(&mut self, on_change: ChangeHook) -> Result<(), StoreError> {
        let _ = on_change;
        Ok(())
    }
}

/// Receives the stored state after another instance changed it (see [`Store::watch`]).
pub type ChangeHook = Arc<dyn Fn(Loaded) + Send + Sync>;

/// Opens the store `db` names: a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`) or a SQLite
/// file (created owner-only if missing); applies pending migrations.
pub fn open(db: &str) -> Result<Box<dyn Store>, StoreError> {
    if is_postgres_url(db) {
        Ok(Box::new(PgStore::connect(db)?))
    } else {
        Ok(Box::new(SqliteStore::open(std::path::Path::new(db))?))
    }
}

/// Opens an existing store without changing it (`tag424 scans` while servers run).
pub fn open_existing(db: &str) -> Result<Box<dyn Store>, StoreError> {
    if is_postgres_url(db) {
        Ok(Box::new(PgStore::connect_existing(db)?))
    } else {
        let path = std::path::Path::new(db);
        if !path.exists() {
            return Err(StoreError::Invalid(format!(
                "{db}: no such database (tag424 serve --db creates it)"
            )));
        }
        Ok(Box::new(SqliteStore::open_read_only(path)?))
    }
}

/// A store chosen at run time (`--db FILE` or `--db postgres://…`).
impl Store for Box<dyn Store> {
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError> {
        (**self).import(catalog)
    }
    fn load(&mut self) -> Result<Loaded, StoreError> {
        (**self).load()
    }
    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError> {
        (**self).commit(writes)
    }
    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError> {
        (**self).scans(limit)
    }
    fn update_tag(&mut self, patch: &TagPatch) -> Result<(), StoreError> {
        (**self).update_tag(patch)
    }
    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError> {
        (**self).changes()
    }
    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        (**self).prune(retention, now_ms)
    }
    fn schema_version(&mut self) -> Result<u32, StoreError> {
        (**self).schema_version()
    }
    fn watch(&mut self, on_change: ChangeHook) -> Result<(), StoreError> {
        (**self).watch(on_change)
    }
}
