//! The server-grade store: PostgreSQL, shared by several `tag424 serve` instances.
//!
//! Client and pool: tokio-postgres (the maintained asynchronous PostgreSQL client; it
//! pipelines, caches prepared statements and delivers LISTEN/NOTIFY) with deadpool-postgres
//! (a small, maintained pool for it). The [`Store`] trait is synchronous and called from the
//! group-commit writer's thread, so the store owns a one-thread tokio runtime and runs each
//! call on it: callers may be plain threads or async tasks alike, and the change listener runs
//! there too.
//!
//! Single use across instances: the database is the arbiter. A group of scans is one
//! statement (one round trip, one transaction): an upsert that only ever raises a tag's
//! counter, whose `RETURNING` names the rows it changed, and the scan-log insert that depends
//! on it. A claim is accepted only if its row came back, and the writer answers Pass only
//! after the statement returned, i.e. after PostgreSQL committed it (durably with
//! `synchronous_commit` on, which [`PgStore::connect`] insists on).
//!
//! Changes between instances: every catalog change bumps `catalog_version` and sends
//! `NOTIFY tag424_catalog` in its own transaction; [`Store::watch`] listens on a dedicated
//! connection, and also compares the version every [`WATCH_POLL`] (in case a notification was
//! lost with a connection), then hands a freshly loaded state to the verifier.
//!
//! Here: connecting (URL, password, durability check), the runtime and the [`Store`]
//! methods. `schema`: how PostgreSQL records the applied migrations (listed once, for both
//! stores, in `store::schema`). `catalog`: the SQL under the shared catalog logic
//! (`store::merge`: load, import merge, management changes). `scans`: the group commit, the
//! scan and change logs, retention. `watch`: the change listener.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use super::{
    ChangeHook, ChangeRecord, Loaded, Retention, ScanRecord, ScanWrite, Store, StoreError, TagPatch,
};
use crate::catalog::Catalog;

mod catalog;
mod scans;
mod schema;
mod watch;

/// The NOTIFY channel of catalog changes.
pub const CHANNEL: &str = "tag424_catalog";
/// How often the change listener also compares the catalog version (the bound when a
/// notification is lost; notifications themselves arrive within milliseconds).
pub const WATCH_POLL: Duration = Duration::from_secs(2);
/// Advisory lock keys: schema migrations; catalog changes (imports, management changes: one
/// at a time across all instances, so that checks such as "CUID unique in its folder" hold).
const MIGRATE_LOCK: i64 = 0x7461_6734_3234_0001;
const CATALOG_LOCK: i64 = 0x7461_6734_3234_0002;
/// Connections per instance: the writer, the change listener's loads, imports and reads.
const POOL_SIZE: usize = 4;

/// Round trips to the server (for the benchmark's report).
#[derive(Debug, Default)]
pub struct PgStats {
    /// Round trips to the server made by scan commits.
    pub round_trips: AtomicU64,
    /// Scan transactions committed.
    pub commits: AtomicU64,
}

/// The catalog version this instance serves, and the order in which catalog states reach it.
///
/// Two paths change what an instance serves: its own changes (an import or a management
/// PATCH, applied in memory by the caller once the store returns) and the change listener's
/// reloads. A reload is applied only if it is newer than what is served, and the check and a
/// local change's commit are serialised, so a reload that read the catalog before a local
/// change committed can never replace the state that change produced. A local change counts
/// as served only if the version before it was, so another instance's change committed just
/// before it is still loaded.
#[derive(Debug)]
pub(super) struct Applied {
    version: AtomicI64,
    order: tokio::sync::Mutex<()>,
}

impl Applied {
    fn new() -> Applied {
        Applied {
            version: AtomicI64::new(-1),
            order: tokio::sync::Mutex::new(()),
        }
    }

    /// The state loaded at start is at version `v`.
    fn loaded(&self, v: i64) {
        self.version.store(v, Ordering::SeqCst);
    }

    /// The version served now.
    pub(super) fn get(&self) -> i64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Commits a local change that bumped the catalog to `v` (see `catalog::announce`).
    pub(super) async fn commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        v: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let _order = self.order.lock().await;
        tx.commit().await?;
        self.committed(v);
        Ok(())
    }

    /// After a local change committed version `v`: it is what is served only if every version
    /// before it was. Otherwise another instance committed in between and that change is not
    /// loaded yet: the version stays behind, so the listener (which compares versions) loads
    /// both, rather than never loading the other one.
    fn committed(&self, v: i64) {
        let _ = self
            .version
            .compare_exchange(v - 1, v, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Hands a state loaded at version `v` to `apply`, unless what is served is as new.
    pub(super) async fn reload(&self, v: i64, apply: impl FnOnce()) {
        let _order = self.order.lock().await;
        if v > self.get() {
            self.version.store(v, Ordering::SeqCst);
            apply();
        }
    }
}

/// The PostgreSQL store. See the module documentation.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    config: tokio_postgres::Config,
    target: String,
    /// The catalog version served, and the order of changes to it.
    version: Arc<Applied>,
    stats: Arc<PgStats>,
}

/// Why a PostgreSQL call failed, before the store names the database
/// ([`PgStore::fail`] turns it into a [`StoreError`], keeping the driver's error as its source).
#[derive(Debug)]
pub(super) enum Fail {
    /// The client's error.
    Db(tokio_postgres::Error),
    /// No connection from the pool.
    Pool(deadpool_postgres::PoolError),
    /// The server or database cannot be used as it is (the message names the fix).
    Refused(String),
    /// A store error already named (from the shared catalog logic).
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Db(e) => f.write_str(&describe(e)),
            Fail::Pool(e) => write!(f, "{e}"),
            Fail::Refused(what) => f.write_str(what),
            Fail::Store(e) => write!(f, "{e}"),
        }
    }
}

type Msg = Fail;

/// The text of a client error: the server's message and detail when it answered one.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

fn pg(e: tokio_postgres::Error) -> Msg {
    Fail::Db(e)
}

fn pool_err(e: deadpool_postgres::PoolError) -> Msg {
    match e {
        deadpool_postgres::PoolError::Backend(e) => Fail::Db(e),
        e => Fail::Pool(e),
    }
}

/// `user@host:port/db` (never a password).
fn target_of(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    format!(
        "postgres://{}@{}:{}/{}",
        c.get_user().unwrap_or(""),
        host,
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_dbname().unwrap_or("")
    )
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to `url` (`postgres://USER@HOST:PORT/DB`), applies pending schema migrations
    /// and checks that commits are durable. The password comes from `PGPASSWORD` or a
    /// password file, never from the URL.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let s = PgStore::open(url)?;
        let (pool, target) = (s.pool.clone(), s.target.clone());
        s.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let sc: String = c
                .query_one("SHOW synchronous_commit", &[])
                .await
                .map_err(pg)?
                .get(0);
            if sc == "off" {
                return Err(Fail::Refused(
                    "synchronous_commit is off, so a Pass could be answered and then \
                            lost in a server crash: set it on for this database (ALTER DATABASE \
                            … SET synchronous_commit = on) or the server (postgresql.conf)"
                        .to_string(),
                ));
            }
            schema::migrate(&pool, &target).await
        })
        .map_err(s.fail())?;
        Ok(s)
    }

    /// Connects to an existing verifier database without changing it (for `tag424 scans`).
    pub fn connect_existing(url: &str) -> Result<PgStore, StoreError> {
        let s = PgStore::open(url)?;
        let pool = s.pool.clone();
        s.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let v: Option<i32> = c
                .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL AND to_regclass('scans') IS NOT NULL", &[])
                .await
                .map_err(pg)?
                .get::<_, Option<bool>>(0)
                .filter(|b| *b)
                .map(|_| 1);
            match v {
                Some(_) => Ok(()),
                None => Err(Fail::Refused("no tag424 verifier tables here (tag424 serve --db creates them)".into())),
            }
        })
        .map_err(s.fail())?;
        Ok(s)
    }

    fn open(url: &str) -> Result<PgStore, StoreError> {
        let bad = |what: String| StoreError::Invalid(format!("--db: {what}"));
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            bad(format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DB"
            ))
        })?;
        if config.get_password().is_some() {
            return Err(bad(
                "the URL holds a password; leave it out and give it in PGPASSWORD or a password \
                 file (PGPASSFILE, default ~/.pgpass), so that it never shows on a command line"
                    .into(),
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(bad(
                "name the server: postgres://USER@HOST:PORT/DB (a Unix socket folder as \
                 postgres://USER@%2Frun%2Fpostgresql/DB)"
                    .into(),
            ));
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .map_err(|_| bad("name the user: postgres://USER@HOST:PORT/DB".into()))?;
            config.user(&user);
        }
        let user = config.get_user().unwrap_or("").to_string();
        if config.get_dbname().is_none() {
            config.dbname(&user);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("tag424");
        let target = target_of(&config);
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let (password, warning) =
            super::pgpass::lookup(&host, port, config.get_dbname().unwrap_or(""), &user);
        if let Some(w) = warning {
            tracing::warn!("warning: {w}");
        }
        if let Some(p) = password {
            config.password(p);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("tag424-pg")
            .build()
            .map_err(|e| StoreError::Invalid(format!("cannot start the database runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(15)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Invalid(format!("database pool: {e}")))?;
        Ok(PgStore {
            rt: Some(rt),
            pool,
            config,
            target,
            version: Arc::new(Applied::new()),
            stats: Arc::new(PgStats::default()),
        })
    }

    /// `postgres://user@host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The store's counters (shared, updated as it works).
    pub fn stats(&self) -> Arc<PgStats> {
        self.stats.clone()
    }

    /// Runs `f` on the store's runtime and waits for it (from a thread or an async task).
    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T, Msg>> + Send + 'static,
    ) -> Result<T, Msg> {
        let Some(rt) = &self.rt else {
            return Err(Fail::Refused("the store is closed".into()));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(Fail::Refused("the database task stopped".into())))
    }

    /// The store error of a failed call, naming this database.
    fn fail(&self) -> impl Fn(Msg) -> StoreError + '_ {
        move |f| match f {
            Fail::Db(source) => StoreError::Postgres {
                target: self.target.clone(),
                source,
            },
            Fail::Pool(source) => StoreError::PostgresPool {
                target: self.target.clone(),
                source,
            },
            Fail::Refused(what) => StoreError::PostgresRefused {
                target: self.target.clone(),
                what,
            },
            Fail::Store(e) => e,
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Never blocks (the store may be dropped inside an async context).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Store for PgStore {
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError> {
        let (pool, target) = (self.pool.clone(), self.target.clone());
        let catalog = catalog.clone();
        let version = self.version.clone();
        let now = crate::timefmt::now_ms() as i64;
        self.run(async move { catalog::import(&pool, &target, catalog, &version, now).await })
            .map_err(self.fail())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        let (pool, target) = (self.pool.clone(), self.target.clone());
        let (loaded, v) = self
            .run(async move { catalog::load(&pool, &target).await })
            .map_err(self.fail())?;
        self.version.loaded(v);
        Ok(loaded)
    }

    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError> {
        let pool = self.pool.clone();
        let stats = self.stats.clone();
        let rounds = scans::rounds(writes);
        let n = writes.len();
        self.run(async move { scans::commit(&pool, &stats, &rounds, n).await })
            .map_err(self.fail())
    }

    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError> {
        let pool = self.pool.clone();
        let limit = limit.map(|l| l.min(i64::MAX as usize) as i64);
        self.run(async move { scans::scans(&pool, limit).await })
            .map_err(self.fail())
    }

    fn update_tag(&mut self, p: &TagPatch) -> Result<(), StoreError> {
        let (pool, target) = (self.pool.clone(), self.target.clone());
        let p = p.clone();
        let version = self.version.clone();
        self.run(async move { catalog::update_tag(&pool, &target, &p, &version).await })
            .map_err(self.fail())
    }

    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move { scans::changes(&pool).await })
            .map_err(self.fail())
    }

    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        let retention = *retention;
        self.run(async move { scans::prune(&pool, &retention, now_ms).await })
            .map_err(self.fail())
    }

    fn schema_version(&mut self) -> Result<u32, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let v: i32 = c
                .query_one(schema::VERSION_SQL, &[])
                .await
                .map_err(pg)?
                .get(0);
            Ok(v.max(0) as u32)
        })
        .map_err(self.fail())
    }

    fn watch(&mut self, on_change: ChangeHook) -> Result<(), StoreError> {
        let Some(rt) = &self.rt else {
            return Err(StoreError::Stopped);
        };
        rt.spawn(watch::watch_loop(
            self.config.clone(),
            self.pool.clone(),
            self.version.clone(),
            self.target.clone(),
            on_change,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_older_than_what_is_served_is_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let a = Applied::new();
        let mut applied = Vec::new();
        rt.block_on(async {
            a.reload(3, || applied.push(3)).await;
            // Local changes committed versions 4 and 5 (commit() calls committed() under the
            // same lock): served.
            a.committed(4);
            a.committed(5);
            // A reload read before the change is dropped; the change itself is served already.
            a.reload(4, || applied.push(4)).await;
            a.reload(5, || applied.push(5)).await;
            // Another instance committed 6 and this one 7 before 6 was loaded: 7 is not
            // marked served, so the listener still loads 6 and then 7.
            a.committed(7);
            assert_eq!(a.get(), 5);
            a.reload(6, || applied.push(6)).await;
            a.reload(7, || applied.push(7)).await;
        });
        assert_eq!(applied, [3, 6, 7]);
        assert_eq!(a.get(), 7);
    }
}
