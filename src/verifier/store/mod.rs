//! Persistence behind a trait: the catalog (folders, groups, batches, tags and their keys),
//! the last accepted counter of each tag, and the scan log.
//!
//! [`SqliteStore`] (in `sqlite`) is the embedded implementation (bundled SQLite, WAL, `synchronous=FULL`,
//! schema migrations by `user_version`). A server-grade database implements [`Store`] the same
//! way; the verifier only ever calls it from one writer thread ([`Writer`]), which batches
//! concurrent scans into one transaction (group commit): a Pass is answered only after the
//! transaction holding its counter is committed and synced.

mod sqlite;
mod writer;

pub use sqlite::SqliteStore;
pub use writer::{Writer, WriterStats, MAX_GROUP};

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use super::catalog::Catalog;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the store's writer has stopped")]
    Stopped,
}

/// One scan to log. When `claim` is set the scan is a Pass candidate: the store records
/// `claim` as the tag's counter only if it is greater than the one it holds, and logs
/// `result` if so, `refused_result` if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanWrite {
    pub time_ms: u64,
    pub endpoint: &'static str,
    pub query: String,
    pub xuid: String,
    pub ctr: Option<u32>,
    pub result: String,
    pub reason: &'static str,
    pub remote: String,
    pub claim: Option<Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub ctr: u32,
    pub refused_result: String,
}

/// One row of the scan log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanRecord {
    pub id: i64,
    pub time_ms: u64,
    pub endpoint: String,
    pub query: String,
    pub xuid: String,
    pub ctr: Option<u32>,
    pub result: String,
    pub passed: bool,
    pub reason: String,
    pub remote: String,
}

/// What the verifier loads at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub catalog: Catalog,
    /// Last accepted counter per tag.
    pub counters: HashMap<String, u32>,
    /// Scans logged per tag.
    pub scan_counts: HashMap<String, u64>,
}

/// The verifier's persistence. Called from one thread at a time.
pub trait Store: Send + 'static {
    /// Merges `catalog` into the stored one (folders, groups and batches by name, tags by
    /// XUID); counters and the scan log are kept.
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError>;
    /// Everything needed to serve.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Logs `writes` in one durable transaction; for each write, whether its claim (if any)
    /// was accepted. Returns only once the transaction is on disk.
    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError>;
    /// The scan log, oldest first; the last `limit` rows when given.
    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError>;
}
