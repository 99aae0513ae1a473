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

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio_postgres::config::Host;
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use super::rows::{BatchRow, CatalogRows, FolderRow, GroupRow, TagRow};
use super::{
    ChangeHook, ChangeRecord, Loaded, Retention, ScanCounts, ScanRecord, ScanWrite, Store,
    StoreError, TagPatch,
};
use crate::verifier::catalog::Catalog;

/// Schema migrations, applied in order; the `schema_migrations` table lists the applied ones.
/// Keep in step with the SQLite store's list (same tables and meaning, PostgreSQL types).
const MIGRATIONS: &[&str] = &[
    // 1: catalog, counters, scan log; the catalog version other instances watch.
    "CREATE TABLE folders(
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        aid text NOT NULL UNIQUE,
        token text,
        cors text NOT NULL);
     CREATE TABLE groups(
        id bigserial PRIMARY KEY,
        folder_id bigint NOT NULL REFERENCES folders(id),
        name text NOT NULL,
        kind text NOT NULL,
        default_response text NOT NULL,
        pass_response text NOT NULL,
        UNIQUE(folder_id, name));
     CREATE TABLE batches(
        id bigserial PRIMARY KEY,
        group_id bigint NOT NULL REFERENCES groups(id),
        name text NOT NULL UNIQUE,
        active boolean NOT NULL);
     CREATE TABLE tags(
        id bigserial UNIQUE,
        xuid text PRIMARY KEY,
        batch_id bigint NOT NULL REFERENCES batches(id),
        key text,
        uid text,
        cuid text,
        default_response text,
        pass_response text);
     CREATE TABLE counters(
        xuid text PRIMARY KEY,
        ctr bigint NOT NULL,
        time_ms bigint NOT NULL);
     CREATE TABLE scans(
        id bigserial PRIMARY KEY,
        time_ms bigint NOT NULL,
        endpoint text NOT NULL,
        query text NOT NULL,
        xuid text NOT NULL,
        ctr bigint,
        result text NOT NULL,
        passed boolean NOT NULL,
        reason text NOT NULL,
        remote text NOT NULL);
     CREATE INDEX scans_xuid ON scans(xuid);
     CREATE TABLE catalog_version(one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL);
     INSERT INTO catalog_version(version) VALUES (0);",
    // 2: statuses, rules, extended data, templates, meta keys, change log (issue 10).
    "ALTER TABLE folders ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE folders ADD COLUMN fields text NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE groups ADD COLUMN rule_groups text NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN data text NOT NULL DEFAULT '[]';
     ALTER TABLE batches ADD COLUMN template text NOT NULL
        DEFAULT 'https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}';
     ALTER TABLE tags ADD COLUMN meta_key text;
     ALTER TABLE tags ADD COLUMN tagname text;
     ALTER TABLE tags ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE tags ADD COLUMN rule_groups text;
     ALTER TABLE tags ADD COLUMN data text NOT NULL DEFAULT '[]';
     ALTER TABLE tags ADD COLUMN created_ms bigint NOT NULL DEFAULT 0;
     CREATE TABLE changes(
        id bigserial PRIMARY KEY,
        time_ms bigint NOT NULL,
        xuid text NOT NULL,
        field text NOT NULL,
        old text,
        new text,
        remote text NOT NULL);
     CREATE INDEX scans_time ON scans(time_ms);",
];

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

/// The group of scans as one statement: the counter upsert (only ever raising, `RETURNING`
/// the rows it changed) and the scan log, which records for each claim whether it won.
const COMMIT_SQL: &str = "
WITH w AS (
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                       $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])
    WITH ORDINALITY AS w(time_ms, endpoint, query, xuid, ctr, result, reason, remote,
                         claim_ctr, refused_result, i)
), claimed AS (
  INSERT INTO counters AS k (xuid, ctr, time_ms)
  SELECT xuid, claim_ctr, time_ms FROM w WHERE claim_ctr IS NOT NULL
  ORDER BY xuid -- every instance locks rows in one order: no deadlock between groups
  ON CONFLICT (xuid) DO UPDATE SET ctr = excluded.ctr, time_ms = excluded.time_ms
    WHERE excluded.ctr > k.ctr
  RETURNING k.xuid
), logged AS (
  INSERT INTO scans (time_ms, endpoint, query, xuid, ctr, result, passed, reason, remote)
  SELECT w.time_ms, w.endpoint, w.query, w.xuid, w.ctr,
         CASE WHEN w.claim_ctr IS NULL OR c.xuid IS NOT NULL THEN w.result ELSE w.refused_result END,
         w.claim_ctr IS NOT NULL AND c.xuid IS NOT NULL,
         CASE WHEN w.claim_ctr IS NULL OR c.xuid IS NOT NULL THEN w.reason ELSE 'replay' END,
         w.remote
  FROM w LEFT JOIN claimed c ON w.claim_ctr IS NOT NULL AND c.xuid = w.xuid
  ORDER BY w.i
)
SELECT xuid FROM claimed";

/// Round trips to the server (for the benchmark's report).
#[derive(Debug, Default)]
pub struct PgStats {
    pub round_trips: AtomicU64,
    pub commits: AtomicU64,
}

/// The PostgreSQL store. See the module documentation.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    config: tokio_postgres::Config,
    target: String,
    /// The catalog version of the last load.
    version: Arc<AtomicI64>,
    stats: Arc<PgStats>,
}

type Msg = String;

fn pg(e: tokio_postgres::Error) -> Msg {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> Msg {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        e => e.to_string(),
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
                return Err(
                    "synchronous_commit is off, so a Pass could be answered and then \
                            lost in a server crash: set it on for this database (ALTER DATABASE \
                            … SET synchronous_commit = on) or the server (postgresql.conf)"
                        .to_string(),
                );
            }
            migrate(&pool).await
        })
        .map_err(|what| StoreError::Postgres { target, what })?;
        Ok(s)
    }

    /// Connects to an existing verifier database without changing it (for `tag424 scans`).
    pub fn connect_existing(url: &str) -> Result<PgStore, StoreError> {
        let s = PgStore::open(url)?;
        let (pool, target) = (s.pool.clone(), s.target.clone());
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
                None => Err("no tag424 verifier tables here (tag424 serve --db creates them)".into()),
            }
        })
        .map_err(|what| StoreError::Postgres { target, what })?;
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
            eprintln!("warning: {w}");
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
            version: Arc::new(AtomicI64::new(-1)),
            stats: Arc::new(PgStats::default()),
        })
    }

    /// `postgres://user@host:port/db`.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn stats(&self) -> Arc<PgStats> {
        self.stats.clone()
    }

    /// Runs `f` on the store's runtime and waits for it (from a thread or an async task).
    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = Result<T, Msg>> + Send + 'static,
    ) -> Result<T, Msg> {
        let Some(rt) = &self.rt else {
            return Err("the store is closed".into());
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err("the database task stopped".into()))
    }

    fn fail(&self) -> impl Fn(Msg) -> StoreError + '_ {
        move |what| StoreError::Postgres {
            target: self.target.clone(),
            what,
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

async fn migrate(pool: &Pool) -> Result<(), Msg> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c.transaction().await.map_err(pg)?;
    // One instance migrates at a time; the others then find the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations(
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    let version = version.max(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(format!(
            "schema version {version} is newer than this tag424 knows ({}); upgrade tag424",
            MIGRATIONS.len()
        ));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(m)
            .await
            .map_err(|e| format!("migration {}: {}", i + 1, pg(e)))?;
        tx.execute(
            "INSERT INTO schema_migrations(version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

/// Everything stored, read in one snapshot, with the catalog version it belongs to.
async fn load_in(tx: &tokio_postgres::Transaction<'_>) -> Result<(Loaded, i64), Msg> {
    let mut rows = CatalogRows::default();
    let version: i64 = tx
        .query_one("SELECT version FROM catalog_version", &[])
        .await
        .map_err(pg)?
        .get(0);
    for r in tx
        .query(
            "SELECT id, name, aid, token, cors, active, fields FROM folders ORDER BY id",
            &[],
        )
        .await
        .map_err(pg)?
    {
        rows.folders.push(FolderRow {
            id: r.get(0),
            name: r.get(1),
            aid: r.get(2),
            token: r.get(3),
            cors: r.get(4),
            active: r.get(5),
            fields: r.get(6),
        });
    }
    for r in tx
        .query(
            "SELECT id, folder_id, name, kind, default_response, pass_response, active,
                    rule_groups, data FROM groups ORDER BY id",
            &[],
        )
        .await
        .map_err(pg)?
    {
        rows.groups.push(GroupRow {
            id: r.get(0),
            folder_id: r.get(1),
            name: r.get(2),
            kind: r.get(3),
            default_response: r.get(4),
            pass_response: r.get(5),
            active: r.get(6),
            rule_groups: r.get(7),
            data: r.get(8),
        });
    }
    for r in tx
        .query(
            "SELECT id, group_id, name, active, template FROM batches ORDER BY id",
            &[],
        )
        .await
        .map_err(pg)?
    {
        rows.batches.push(BatchRow {
            id: r.get(0),
            group_id: r.get(1),
            name: r.get(2),
            active: r.get(3),
            template: r.get(4),
        });
    }
    for r in tx
        .query(
            "SELECT xuid, batch_id, key, uid, cuid, default_response, pass_response, meta_key,
                    tagname, active, rule_groups, data, created_ms FROM tags ORDER BY id",
            &[],
        )
        .await
        .map_err(pg)?
    {
        rows.tags.push(TagRow {
            xuid: r.get(0),
            batch_id: r.get(1),
            key: r.get(2),
            uid: r.get(3),
            cuid: r.get(4),
            default_response: r.get(5),
            pass_response: r.get(6),
            meta_key: r.get(7),
            tagname: r.get(8),
            active: r.get(9),
            rule_groups: r.get(10),
            data: r.get(11),
            created_ms: r.get(12),
        });
    }
    let (catalog, created) = rows.assemble()?;
    let mut out = Loaded {
        catalog,
        created,
        ..Loaded::default()
    };
    for r in tx
        .query("SELECT xuid, ctr FROM counters", &[])
        .await
        .map_err(pg)?
    {
        out.counters.insert(r.get(0), r.get::<_, i64>(1) as u32);
    }
    for r in tx
        .query(
            "SELECT xuid, count(*), count(*) FILTER (WHERE passed) FROM scans
             WHERE xuid <> '' AND reason <> 'error' GROUP BY xuid",
            &[],
        )
        .await
        .map_err(pg)?
    {
        out.scan_counts.insert(
            r.get(0),
            ScanCounts {
                answered: r.get::<_, i64>(1) as u64,
                genuine: r.get::<_, i64>(2) as u64,
            },
        );
    }
    Ok((out, version))
}

async fn load(pool: &Pool) -> Result<(Loaded, i64), Msg> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let out = load_in(&tx).await?;
    tx.commit().await.map_err(pg)?;
    Ok(out)
}

/// One scan group's columns, in the order of [`COMMIT_SQL`]'s parameters.
#[derive(Default)]
struct Columns {
    time_ms: Vec<i64>,
    endpoint: Vec<&'static str>,
    query: Vec<String>,
    xuid: Vec<String>,
    ctr: Vec<Option<i64>>,
    result: Vec<String>,
    reason: Vec<&'static str>,
    remote: Vec<String>,
    claim_ctr: Vec<Option<i64>>,
    refused_result: Vec<Option<String>>,
    /// Index of each row in the writes.
    index: Vec<usize>,
}

impl Columns {
    fn push(&mut self, i: usize, w: &ScanWrite) {
        self.time_ms.push(w.time_ms as i64);
        self.endpoint.push(w.endpoint);
        self.query.push(w.query.clone());
        self.xuid.push(w.xuid.clone());
        self.ctr.push(w.ctr.map(i64::from));
        self.result.push(w.result.clone());
        self.reason.push(w.reason);
        self.remote.push(w.remote.clone());
        self.claim_ctr
            .push(w.claim.as_ref().map(|c| i64::from(c.ctr)));
        self.refused_result
            .push(w.claim.as_ref().map(|c| c.refused_result.clone()));
        self.index.push(i);
    }
}

/// Splits the writes into rounds in which no tag claims twice (one statement cannot upsert
/// a row twice). The verifier's per-tag lock makes this one round in practice.
fn rounds(writes: &[ScanWrite]) -> Vec<Columns> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<Columns> = vec![Columns::default()];
    for (i, w) in writes.iter().enumerate() {
        let r = match &w.claim {
            Some(_) => {
                let n = seen.entry(w.xuid.as_str()).or_insert(0);
                *n += 1;
                *n - 1
            }
            None => 0,
        };
        if out.len() <= r {
            out.resize_with(r + 1, Columns::default);
        }
        out[r].push(i, w);
    }
    out
}

async fn commit_round(
    c: &impl tokio_postgres::GenericClient,
    stmt: &tokio_postgres::Statement,
    cols: &Columns,
    accepted: &mut [bool],
) -> Result<(), Msg> {
    let rows = c
        .query(
            stmt,
            &[
                &cols.time_ms,
                &cols.endpoint,
                &cols.query,
                &cols.xuid,
                &cols.ctr,
                &cols.result,
                &cols.reason,
                &cols.remote,
                &cols.claim_ctr,
                &cols.refused_result,
            ],
        )
        .await
        .map_err(pg)?;
    let won: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    for (k, &i) in cols.index.iter().enumerate() {
        if cols.claim_ctr[k].is_some() && won.contains(&cols.xuid[k]) {
            accepted[i] = true;
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Bumps the catalog version and notifies the other instances (delivered at commit).
async fn announce(tx: &tokio_postgres::Transaction<'_>) -> Result<i64, Msg> {
    let v: i64 = tx
        .query_one(
            "UPDATE catalog_version SET version = version + 1 RETURNING version",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &v.to_string()])
        .await
        .map_err(pg)?;
    Ok(v)
}

/// Upserts one batch's tags in one statement. Associate-Data values replace the stored ones
/// only when given; the config's (pass response, rules, data) always replace; a read-back
/// counter raises the tag's counter, forward only.
async fn import_tags(
    tx: &tokio_postgres::Transaction<'_>,
    bid: i64,
    tags: &[crate::verifier::catalog::Tag],
    now: i64,
) -> Result<(), Msg> {
    let col = |f: &dyn Fn(&crate::verifier::catalog::Tag) -> Option<String>| {
        tags.iter().map(f).collect::<Vec<Option<String>>>()
    };
    let xuids: Vec<&str> = tags.iter().map(|t| t.xuid.as_str()).collect();
    let keys = col(&|t| t.key.as_ref().map(|k| k.to_hex().to_string()));
    let uids = col(&|t| t.uid.map(hex::encode_upper));
    let cuids = col(&|t| t.cuid.clone());
    let ds = col(&|t| t.default_response.clone());
    let ps = col(&|t| t.pass_response.clone());
    let metas = col(&|t| t.meta_key.as_ref().map(|k| k.to_hex().to_string()));
    let names = col(&|t| t.tagname.clone());
    let active: Vec<Option<bool>> = tags.iter().map(|t| t.active).collect();
    let rgs = col(&|t| t.rule_groups.as_ref().map(to_json));
    let data: Vec<String> = tags.iter().map(|t| to_json(&t.data)).collect();
    tx.execute(
        "INSERT INTO tags AS o (xuid, batch_id, key, uid, cuid, default_response, pass_response,
                               meta_key, tagname, active, rule_groups, data, created_ms)
         SELECT x, $2, k, u, c, d, p, m, n, coalesce(a, true), r, j, $13
         FROM unnest($1::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::boolean[], $11::text[], $12::text[])
           WITH ORDINALITY AS t(x, k, u, c, d, p, m, n, a, r, j, i)
         ORDER BY i
         ON CONFLICT (xuid) DO UPDATE SET batch_id = excluded.batch_id,
           key = coalesce(excluded.key, o.key), uid = coalesce(excluded.uid, o.uid),
           cuid = coalesce(excluded.cuid, o.cuid),
           default_response = coalesce(excluded.default_response, o.default_response),
           pass_response = excluded.pass_response,
           meta_key = coalesce(excluded.meta_key, o.meta_key),
           tagname = coalesce(excluded.tagname, o.tagname),
           rule_groups = excluded.rule_groups, data = excluded.data",
        &[
            &xuids, &bid, &keys, &uids, &cuids, &ds, &ps, &metas, &names, &active, &rgs, &data,
            &now,
        ],
    )
    .await
    .map_err(pg)?;
    // A status given replaces the stored one (on insert, none given means active).
    if active.iter().any(Option::is_some) {
        tx.execute(
            "UPDATE tags SET active = t.a FROM unnest($1::text[], $2::boolean[]) AS t(x, a)
             WHERE tags.xuid = t.x AND t.a IS NOT NULL",
            &[&xuids, &active],
        )
        .await
        .map_err(pg)?;
    }
    let read: Vec<(&str, i64)> = tags
        .iter()
        .filter_map(|t| t.read_ctr.map(|c| (t.xuid.as_str(), i64::from(c))))
        .collect();
    if !read.is_empty() {
        let (x, c): (Vec<&str>, Vec<i64>) = read.into_iter().unzip();
        tx.execute(
            "INSERT INTO counters AS k (xuid, ctr, time_ms)
             SELECT x, c, $3 FROM unnest($1::text[], $2::bigint[]) AS r(x, c) ORDER BY x
             ON CONFLICT (xuid) DO UPDATE SET ctr = excluded.ctr, time_ms = excluded.time_ms
               WHERE excluded.ctr > k.ctr",
            &[&x, &c, &now],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

impl Store for PgStore {
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let catalog = catalog.clone();
        let version = self.version.clone();
        let now = crate::verifier::timefmt::now_ms() as i64;
        let r = self.run(async move {
            let mut c = pool.get().await.map_err(pool_err)?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
                .await
                .map_err(pg)?;
            for f in &catalog.folders {
                let fid: i64 = tx
                    .query_one(
                        "INSERT INTO folders(name, aid, token, cors, active, fields)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (name) DO UPDATE SET aid = excluded.aid,
                           token = excluded.token, cors = excluded.cors,
                           active = excluded.active, fields = excluded.fields
                         RETURNING id",
                        &[&f.name, &f.aid, &f.token, &f.cors.to_string(), &f.active, &to_json(&f.fields)],
                    )
                    .await
                    .map_err(pg)?
                    .get(0);
                for g in &f.groups {
                    let gid: i64 = tx
                        .query_one(
                            "INSERT INTO groups(folder_id, name, kind, default_response, pass_response,
                               active, rule_groups, data)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                             ON CONFLICT (folder_id, name) DO UPDATE SET kind = excluded.kind,
                               default_response = excluded.default_response,
                               pass_response = excluded.pass_response, active = excluded.active,
                               rule_groups = excluded.rule_groups, data = excluded.data
                             RETURNING id",
                            &[
                                &fid,
                                &g.name,
                                &g.kind.as_str(),
                                &g.default_response,
                                &g.pass_response,
                                &g.active,
                                &to_json(&g.rule_groups),
                                &to_json(&g.data),
                            ],
                        )
                        .await
                        .map_err(pg)?
                        .get(0);
                    for b in &g.batches {
                        let bid: i64 = tx
                            .query_one(
                                "INSERT INTO batches(group_id, name, active, template)
                                 VALUES ($1, $2, $3, $4)
                                 ON CONFLICT (name) DO UPDATE SET group_id = excluded.group_id,
                                   active = excluded.active, template = excluded.template
                                 RETURNING id",
                                &[&gid, &b.name, &b.active, &b.template],
                            )
                            .await
                            .map_err(pg)?
                            .get(0);
                        import_tags(&tx, bid, &b.tags, now).await?;
                    }
                }
            }
            // The merged catalog must hold together: otherwise nothing is imported.
            let (merged, _) = load_in(&tx).await?;
            if let Err(err) = merged.catalog.validate() {
                return Ok(Err(format!(
                    "importing would make the catalog invalid: {err}"
                )));
            }
            let v = announce(&tx).await?;
            tx.commit().await.map_err(pg)?;
            version.store(v, Ordering::SeqCst);
            Ok(Ok(()))
        });
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(invalid)) => Err(StoreError::Invalid(invalid)),
            Err(what) => Err(self.fail()(what)),
        }
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        let pool = self.pool.clone();
        let (loaded, v) = self
            .run(async move { load(&pool).await })
            .map_err(self.fail())?;
        self.version.store(v, Ordering::SeqCst);
        Ok(loaded)
    }

    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError> {
        let pool = self.pool.clone();
        let stats = self.stats.clone();
        let rounds = rounds(writes);
        let n = writes.len();
        self.run(async move {
            let mut accepted = vec![false; n];
            let mut c = pool.get().await.map_err(pool_err)?;
            let trips = &stats.round_trips;
            let cached = c.statement_cache.size();
            let stmt = c.prepare_cached(COMMIT_SQL).await.map_err(pg)?;
            if c.statement_cache.size() != cached {
                trips.fetch_add(1, Ordering::Relaxed);
            }
            if rounds.len() == 1 {
                // One statement is one transaction: committed when it returns.
                commit_round(&**c, &stmt, &rounds[0], &mut accepted).await?;
                trips.fetch_add(1, Ordering::Relaxed);
            } else {
                let tx = c.transaction().await.map_err(pg)?;
                for r in &rounds {
                    commit_round(&*tx, &stmt, r, &mut accepted).await?;
                }
                tx.commit().await.map_err(pg)?;
                trips.fetch_add(rounds.len() as u64 + 2, Ordering::Relaxed);
            }
            stats.commits.fetch_add(1, Ordering::Relaxed);
            Ok(accepted)
        })
        .map_err(self.fail())
    }

    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError> {
        let pool = self.pool.clone();
        let limit = limit.map(|l| l.min(i64::MAX as usize) as i64);
        self.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let rows = c
                .query(
                    "SELECT * FROM (SELECT id, time_ms, endpoint, query, xuid, ctr, result, passed, reason, remote
                     FROM scans ORDER BY id DESC LIMIT $1) s ORDER BY id",
                    &[&limit],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| ScanRecord {
                    id: r.get(0),
                    time_ms: r.get::<_, i64>(1) as u64,
                    endpoint: r.get(2),
                    query: r.get(3),
                    xuid: r.get(4),
                    ctr: r.get::<_, Option<i64>>(5).map(|c| c as u32),
                    result: r.get(6),
                    passed: r.get(7),
                    reason: r.get(8),
                    remote: r.get(9),
                })
                .collect())
        })
        .map_err(self.fail())
    }

    fn update_tag(&mut self, p: &TagPatch) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let p = p.clone();
        let version = self.version.clone();
        let r = self.run(async move {
            let mut c = pool.get().await.map_err(pool_err)?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
                .await
                .map_err(pg)?;
            let row = tx
                .query_opt(
                    "SELECT t.default_response, t.active, t.cuid, g.folder_id FROM tags t
                     JOIN batches b ON b.id = t.batch_id JOIN groups g ON g.id = b.group_id
                     WHERE t.xuid = $1",
                    &[&p.xuid],
                )
                .await
                .map_err(pg)?;
            let Some(row) = row else {
                return Ok(Err(format!("no tag code {}", p.xuid)));
            };
            let (old_dr, old_active, old_cuid, fid): (Option<String>, bool, Option<String>, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let status = |a: bool| if a { "Active" } else { "Inactive" }.to_string();
            let mut log: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
            if let Some(dr) = &p.default_response {
                tx.execute(
                    "UPDATE tags SET default_response = $2 WHERE xuid = $1",
                    &[&p.xuid, dr],
                )
                .await
                .map_err(pg)?;
                log.push(("default_response", old_dr, dr.clone()));
            }
            if let Some(a) = p.active {
                tx.execute(
                    "UPDATE tags SET active = $2 WHERE xuid = $1",
                    &[&p.xuid, &a],
                )
                .await
                .map_err(pg)?;
                log.push(("status", Some(status(old_active)), Some(status(a))));
            }
            if let Some(cuid) = &p.cuid {
                let taken = tx
                    .query_opt(
                        "SELECT t.xuid FROM tags t JOIN batches b ON b.id = t.batch_id
                         JOIN groups g ON g.id = b.group_id
                         WHERE g.folder_id = $1 AND t.cuid = $2 AND t.xuid <> $3",
                        &[&fid, cuid, &p.xuid],
                    )
                    .await
                    .map_err(pg)?;
                if let Some(other) = taken {
                    let other: String = other.get(0);
                    return Ok(Err(format!(
                        "CUID {cuid:?} is already tag {other}'s in this folder"
                    )));
                }
                tx.execute(
                    "UPDATE tags SET cuid = $2 WHERE xuid = $1",
                    &[&p.xuid, cuid],
                )
                .await
                .map_err(pg)?;
                log.push(("cuid", old_cuid, Some(cuid.clone())));
            }
            for (field, old, new) in log {
                tx.execute(
                    "INSERT INTO changes(time_ms, xuid, field, old, new, remote)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&(p.time_ms as i64), &p.xuid, &field, &old, &new, &p.remote],
                )
                .await
                .map_err(pg)?;
            }
            let v = announce(&tx).await?;
            tx.commit().await.map_err(pg)?;
            version.store(v, Ordering::SeqCst);
            Ok(Ok(()))
        });
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(invalid)) => Err(StoreError::Invalid(invalid)),
            Err(what) => Err(self.fail()(what)),
        }
    }

    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let rows = c
                .query(
                    "SELECT time_ms, xuid, field, old, new, remote FROM changes ORDER BY id",
                    &[],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| ChangeRecord {
                    time_ms: r.get::<_, i64>(0) as u64,
                    xuid: r.get(1),
                    field: r.get(2),
                    old: r.get(3),
                    new: r.get(4),
                    remote: r.get(5),
                })
                .collect())
        })
        .map_err(self.fail())
    }

    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        let retention = *retention;
        self.run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let mut n = 0;
            if let Some(age) = retention.max_age_ms {
                let before = now_ms.saturating_sub(age) as i64;
                n += c
                    .execute(
                        "DELETE FROM scans WHERE NOT passed AND time_ms < $1",
                        &[&before],
                    )
                    .await
                    .map_err(pg)?;
            }
            if let Some(rows) = retention.max_rows {
                n += c
                    .execute(
                        "DELETE FROM scans WHERE NOT passed
                         AND id <= (SELECT max(id) FROM scans) - $1",
                        &[&(rows as i64)],
                    )
                    .await
                    .map_err(pg)?;
            }
            Ok(n)
        })
        .map_err(self.fail())
    }

    fn watch(&mut self, on_change: ChangeHook) -> Result<(), StoreError> {
        let Some(rt) = &self.rt else {
            return Err(StoreError::Stopped);
        };
        rt.spawn(watch_loop(
            self.config.clone(),
            self.pool.clone(),
            self.version.clone(),
            self.target.clone(),
            on_change,
        ));
        Ok(())
    }
}

/// Listens for catalog changes of other instances and hands each new state to `on_change`.
async fn watch_loop(
    config: tokio_postgres::Config,
    pool: Pool,
    version: Arc<AtomicI64>,
    target: String,
    on_change: ChangeHook,
) {
    let mut warned = false;
    loop {
        let (client, mut conn) = match config.connect(NoTls).await {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    eprintln!("tag424 serve: {target}: cannot listen for other instances' changes ({}); retrying every second", pg(e));
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(_)) => {
                        if ntx.send(()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        if client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .is_ok()
        {
            if warned {
                eprintln!("tag424 serve: {target}: listening for other instances' changes again");
                warned = false;
            }
            // Compare at once (changes made while not listening), then on each notification
            // and every WATCH_POLL.
            loop {
                let v: i64 = match client
                    .query_one("SELECT version FROM catalog_version", &[])
                    .await
                {
                    Ok(r) => r.get(0),
                    Err(_) => break,
                };
                if v != version.load(Ordering::SeqCst) {
                    match load(&pool).await {
                        Ok((loaded, lv)) => {
                            version.store(lv, Ordering::SeqCst);
                            on_change(loaded);
                        }
                        Err(e) => eprintln!("tag424 serve: {target}: reloading the catalog: {e}"),
                    }
                }
                tokio::select! {
                    n = nrx.recv() => {
                        if n.is_none() {
                            break;
                        }
                        while nrx.try_recv().is_ok() {}
                    }
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                }
            }
        }
        driver.abort();
        drop(client);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
