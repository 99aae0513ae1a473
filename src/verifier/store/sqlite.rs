//! The embedded store: bundled SQLite, WAL, `synchronous=FULL`, migrations by `user_version`.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::rows::{BatchRow, CatalogRows, FolderRow, GroupRow, TagRow};
use super::{
    ChangeRecord, Loaded, Retention, ScanCounts, ScanRecord, ScanWrite, Store, StoreError, TagPatch,
};
use crate::crypto::AesKey;
use crate::verifier::catalog::Catalog;

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    // 1: catalog, counters, scan log.
    "CREATE TABLE folders(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        aid TEXT NOT NULL UNIQUE,
        token TEXT,
        cors TEXT NOT NULL);
     CREATE TABLE groups(
        id INTEGER PRIMARY KEY,
        folder_id INTEGER NOT NULL REFERENCES folders(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        default_response TEXT NOT NULL,
        pass_response TEXT NOT NULL,
        UNIQUE(folder_id, name));
     CREATE TABLE batches(
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL REFERENCES groups(id),
        name TEXT NOT NULL UNIQUE,
        active INTEGER NOT NULL);
     CREATE TABLE tags(
        xuid TEXT PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES batches(id),
        key TEXT,
        uid TEXT,
        cuid TEXT,
        default_response TEXT,
        pass_response TEXT);
     CREATE TABLE counters(
        xuid TEXT PRIMARY KEY,
        ctr INTEGER NOT NULL,
        time_ms INTEGER NOT NULL);
     CREATE TABLE scans(
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        query TEXT NOT NULL,
        xuid TEXT NOT NULL,
        ctr INTEGER,
        result TEXT NOT NULL,
        passed INTEGER NOT NULL,
        reason TEXT NOT NULL,
        remote TEXT NOT NULL);",
    // 2: statuses, rules, extended data, templates, meta keys, change log (issue 10).
    "ALTER TABLE folders ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE folders ADD COLUMN fields TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE groups ADD COLUMN rule_groups TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN data TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE batches ADD COLUMN template TEXT NOT NULL
        DEFAULT 'https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}';
     ALTER TABLE tags ADD COLUMN meta_key TEXT;
     ALTER TABLE tags ADD COLUMN tagname TEXT;
     ALTER TABLE tags ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE tags ADD COLUMN rule_groups TEXT;
     ALTER TABLE tags ADD COLUMN data TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE tags ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE changes(
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        xuid TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT,
        new TEXT,
        remote TEXT NOT NULL);
     CREATE INDEX scans_time ON scans(time_ms);",
];

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The embedded store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating owner-only if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        // The database holds tag keys: created 0600 before SQLite writes a byte to it (SQLite
        // gives its -wal and -shm files the database's mode).
        if !path.exists() {
            if let Err(source) = crate::private_fs::create_new(path) {
                if source.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(StoreError::Corrupt {
                        path: path.to_path_buf(),
                        what: format!("cannot create it owner-only: {source}"),
                    });
                }
            }
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
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
        .map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // WAL: readers do not block the writer; FULL: every commit syncs the log.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(&e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("cannot switch to WAL (journal_mode is {mode})"),
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(&e)?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&e)?;
        let version: usize = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(&e)? as usize;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!(
                    "schema version {version} is newer than this tag424 knows ({}); upgrade tag424",
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction().map_err(&e)?;
            tx.execute_batch(m).map_err(&e)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(&e)?;
            tx.commit().map_err(&e)?;
        }
        Ok(())
    }
}

fn upsert_id(
    tx: &rusqlite::Transaction<'_>,
    select: &str,
    key: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<Option<i64>> {
    tx.query_row(select, key, |r| r.get(0)).optional()
}

/// Everything stored, read through `conn` (a connection or an open transaction).
fn load_from(conn: &Connection, path: &Path) -> Result<Loaded, StoreError> {
    let e = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let mut rows = CatalogRows::default();
    let mut st = conn
        .prepare("SELECT id, name, aid, token, cors, active, fields FROM folders ORDER BY id")
        .map_err(&e)?;
    rows.folders = st
        .query_map([], |r| {
            Ok(FolderRow {
                id: r.get(0)?,
                name: r.get(1)?,
                aid: r.get(2)?,
                token: r.get(3)?,
                cors: r.get(4)?,
                active: r.get(5)?,
                fields: r.get(6)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(&e)?;
    let mut st = conn
        .prepare(
            "SELECT id, folder_id, name, kind, default_response, pass_response, active,
                    rule_groups, data FROM groups ORDER BY id",
        )
        .map_err(&e)?;
    rows.groups = st
        .query_map([], |r| {
            Ok(GroupRow {
                id: r.get(0)?,
                folder_id: r.get(1)?,
                name: r.get(2)?,
                kind: r.get(3)?,
                default_response: r.get(4)?,
                pass_response: r.get(5)?,
                active: r.get(6)?,
                rule_groups: r.get(7)?,
                data: r.get(8)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(&e)?;
    let mut st = conn
        .prepare("SELECT id, group_id, name, active, template FROM batches ORDER BY id")
        .map_err(&e)?;
    rows.batches = st
        .query_map([], |r| {
            Ok(BatchRow {
                id: r.get(0)?,
                group_id: r.get(1)?,
                name: r.get(2)?,
                active: r.get(3)?,
                template: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(&e)?;
    let mut st = conn
        .prepare(
            "SELECT xuid, batch_id, key, uid, cuid, default_response, pass_response, meta_key,
                    tagname, active, rule_groups, data, created_ms FROM tags ORDER BY rowid",
        )
        .map_err(&e)?;
    rows.tags = st
        .query_map([], |r| {
            Ok(TagRow {
                xuid: r.get(0)?,
                batch_id: r.get(1)?,
                key: r.get(2)?,
                uid: r.get(3)?,
                cuid: r.get(4)?,
                default_response: r.get(5)?,
                pass_response: r.get(6)?,
                meta_key: r.get(7)?,
                tagname: r.get(8)?,
                active: r.get(9)?,
                rule_groups: r.get(10)?,
                data: r.get(11)?,
                created_ms: r.get(12)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(&e)?;
    let (catalog, created) = rows.assemble().map_err(corrupt)?;
    let mut out = Loaded {
        catalog,
        created,
        ..Loaded::default()
    };
    {
        let mut st = conn.prepare("SELECT xuid, ctr FROM counters").map_err(&e)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&e)?;
        for row in rows {
            let (x, c) = row.map_err(&e)?;
            out.counters.insert(x, c as u32);
        }
        let mut st = conn
            .prepare(
                "SELECT xuid, count(*), sum(passed) FROM scans
                 WHERE xuid != '' AND reason != 'error' GROUP BY xuid",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (x, n, g) = row.map_err(&e)?;
            out.scan_counts.insert(
                x,
                ScanCounts {
                    answered: n as u64,
                    genuine: g as u64,
                },
            );
        }
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn import(&mut self, catalog: &Catalog) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&e)?;
        for f in &catalog.folders {
            let cors = f.cors.to_string();
            let fid = match upsert_id(&tx, "SELECT id FROM folders WHERE name=?1", &[&f.name])
                .map_err(&e)?
            {
                Some(id) => {
                    tx.execute(
                        "UPDATE folders SET aid=?2, token=?3, cors=?4, active=?5, fields=?6 WHERE id=?1",
                        params![id, f.aid, f.token, cors, f.active, to_json(&f.fields)],
                    )
                    .map_err(&e)?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO folders(name, aid, token, cors, active, fields) VALUES(?1,?2,?3,?4,?5,?6)",
                        params![f.name, f.aid, f.token, cors, f.active, to_json(&f.fields)],
                    )
                    .map_err(&e)?;
                    tx.last_insert_rowid()
                }
            };
            for g in &f.groups {
                let gid = match upsert_id(
                    &tx,
                    "SELECT id FROM groups WHERE folder_id=?1 AND name=?2",
                    &[&fid, &g.name],
                )
                .map_err(&e)?
                {
                    Some(id) => {
                        tx.execute(
                            "UPDATE groups SET kind=?2, default_response=?3, pass_response=?4,
                             active=?5, rule_groups=?6, data=?7 WHERE id=?1",
                            params![
                                id,
                                g.kind.as_str(),
                                g.default_response,
                                g.pass_response,
                                g.active,
                                to_json(&g.rule_groups),
                                to_json(&g.data)
                            ],
                        )
                        .map_err(&e)?;
                        id
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO groups(folder_id, name, kind, default_response, pass_response,
                             active, rule_groups, data) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                            params![
                                fid,
                                g.name,
                                g.kind.as_str(),
                                g.default_response,
                                g.pass_response,
                                g.active,
                                to_json(&g.rule_groups),
                                to_json(&g.data)
                            ],
                        )
                        .map_err(&e)?;
                        tx.last_insert_rowid()
                    }
                };
                for b in &g.batches {
                    let bid = match upsert_id(
                        &tx,
                        "SELECT id FROM batches WHERE name=?1",
                        &[&b.name],
                    )
                    .map_err(&e)?
                    {
                        Some(id) => {
                            tx.execute(
                                    "UPDATE batches SET group_id=?2, active=?3, template=?4 WHERE id=?1",
                                    params![id, gid, b.active, b.template],
                                )
                                .map_err(&e)?;
                            id
                        }
                        None => {
                            tx.execute(
                                    "INSERT INTO batches(group_id, name, active, template) VALUES(?1,?2,?3,?4)",
                                    params![gid, b.name, b.active, b.template],
                                )
                                .map_err(&e)?;
                            tx.last_insert_rowid()
                        }
                    };
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO tags(xuid, batch_id, key, uid, cuid, default_response, pass_response,
                               meta_key, tagname, active, rule_groups, data, created_ms)
                             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,coalesce(?10,1),?11,?12,?13)
                             ON CONFLICT(xuid) DO UPDATE SET batch_id=excluded.batch_id,
                               key=coalesce(?3, tags.key), uid=coalesce(?4, tags.uid),
                               cuid=coalesce(?5, tags.cuid),
                               default_response=coalesce(?6, tags.default_response),
                               pass_response=excluded.pass_response,
                               meta_key=coalesce(?8, tags.meta_key),
                               tagname=coalesce(?9, tags.tagname),
                               active=coalesce(?10, tags.active),
                               rule_groups=excluded.rule_groups, data=excluded.data",
                        )
                        .map_err(&e)?;
                    let mut raise = tx
                        .prepare_cached(
                            "INSERT INTO counters(xuid, ctr, time_ms) VALUES(?1,?2,?3)
                             ON CONFLICT(xuid) DO UPDATE SET ctr=excluded.ctr, time_ms=excluded.time_ms
                             WHERE excluded.ctr > counters.ctr",
                        )
                        .map_err(&e)?;
                    let now = crate::verifier::timefmt::now_ms() as i64;
                    for t in &b.tags {
                        let key = t.key.as_ref().map(AesKey::to_hex);
                        let key = key.as_deref();
                        st.execute(params![
                            t.xuid,
                            bid,
                            key,
                            t.uid.map(hex::encode_upper),
                            t.cuid,
                            t.default_response,
                            t.pass_response,
                            t.meta_key.as_ref().map(|k| k.to_hex().to_string()),
                            t.tagname,
                            t.active,
                            t.rule_groups.as_ref().map(to_json),
                            to_json(&t.data),
                            now
                        ])
                        .map_err(&e)?;
                        if let Some(c) = t.read_ctr {
                            raise.execute(params![t.xuid, c, now]).map_err(&e)?;
                        }
                    }
                }
            }
        }
        // The merged catalog must hold together (e.g. a CUID now used twice in a folder):
        // otherwise nothing is imported.
        let merged = load_from(&tx, &self.path)?;
        merged.catalog.validate().map_err(|err| {
            StoreError::Invalid(format!("importing would make the catalog invalid: {err}"))
        })?;
        tx.commit().map_err(&e)
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        load_from(&self.conn, &self.path)
    }

    fn commit(&mut self, writes: &[ScanWrite]) -> Result<Vec<bool>, StoreError> {
        let path = self.path.clone();
        let e = move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&e)?;
        let mut accepted = Vec::with_capacity(writes.len());
        {
            let mut claim = tx
                .prepare_cached(
                    "INSERT INTO counters(xuid, ctr, time_ms) VALUES(?1,?2,?3)
                     ON CONFLICT(xuid) DO UPDATE SET ctr=excluded.ctr, time_ms=excluded.time_ms
                     WHERE excluded.ctr > counters.ctr",
                )
                .map_err(&e)?;
            let mut log = tx
                .prepare_cached(
                    "INSERT INTO scans(time_ms, endpoint, query, xuid, ctr, result, passed, reason, remote)
                     VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                )
                .map_err(&e)?;
            for w in writes {
                let (ok, result, reason) = match &w.claim {
                    Some(c) => {
                        let n = claim
                            .execute(params![w.xuid, c.ctr, w.time_ms as i64])
                            .map_err(&e)?;
                        if n == 1 {
                            (true, w.result.as_str(), w.reason)
                        } else {
                            (false, c.refused_result.as_str(), "replay")
                        }
                    }
                    None => (false, w.result.as_str(), w.reason),
                };
                log.execute(params![
                    w.time_ms as i64,
                    w.endpoint,
                    w.query,
                    w.xuid,
                    w.ctr,
                    result,
                    ok,
                    reason,
                    w.remote
                ])
                .map_err(&e)?;
                accepted.push(ok);
            }
        }
        tx.commit().map_err(&e)?;
        Ok(accepted)
    }

    fn scans(&mut self, limit: Option<usize>) -> Result<Vec<ScanRecord>, StoreError> {
        let e = self.err();
        let limit = limit.map(|l| l as i64).unwrap_or(-1);
        let mut st = self
            .conn
            .prepare(
                "SELECT * FROM (SELECT id, time_ms, endpoint, query, xuid, ctr, result, passed, reason, remote
                 FROM scans ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([limit], |r| {
                Ok(ScanRecord {
                    id: r.get(0)?,
                    time_ms: r.get::<_, i64>(1)? as u64,
                    endpoint: r.get(2)?,
                    query: r.get(3)?,
                    xuid: r.get(4)?,
                    ctr: r.get(5)?,
                    result: r.get(6)?,
                    passed: r.get(7)?,
                    reason: r.get(8)?,
                    remote: r.get(9)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    fn update_tag(&mut self, p: &TagPatch) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&e)?;
        let row = tx
            .query_row(
                "SELECT t.default_response, t.active, t.cuid, g.folder_id FROM tags t
                 JOIN batches b ON b.id = t.batch_id JOIN groups g ON g.id = b.group_id
                 WHERE t.xuid = ?1",
                [&p.xuid],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(&e)?;
        let Some((old_dr, old_active, old_cuid, fid)) = row else {
            return Err(StoreError::Invalid(format!("no tag code {}", p.xuid)));
        };
        let status = |a: bool| if a { "Active" } else { "Inactive" }.to_string();
        let mut log: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
        if let Some(dr) = &p.default_response {
            tx.execute(
                "UPDATE tags SET default_response=?2 WHERE xuid=?1",
                params![p.xuid, dr],
            )
            .map_err(&e)?;
            log.push(("default_response", old_dr, dr.clone()));
        }
        if let Some(a) = p.active {
            tx.execute(
                "UPDATE tags SET active=?2 WHERE xuid=?1",
                params![p.xuid, a],
            )
            .map_err(&e)?;
            log.push(("status", Some(status(old_active)), Some(status(a))));
        }
        if let Some(c) = &p.cuid {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT t.xuid FROM tags t JOIN batches b ON b.id = t.batch_id
                     JOIN groups g ON g.id = b.group_id
                     WHERE g.folder_id = ?1 AND t.cuid = ?2 AND t.xuid != ?3",
                    params![fid, c, p.xuid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
            if let Some(other) = taken {
                return Err(StoreError::Invalid(format!(
                    "CUID {c:?} is already tag {other}'s in this folder"
                )));
            }
            tx.execute("UPDATE tags SET cuid=?2 WHERE xuid=?1", params![p.xuid, c])
                .map_err(&e)?;
            log.push(("cuid", old_cuid, Some(c.clone())));
        }
        for (field, old, new) in log {
            tx.execute(
                "INSERT INTO changes(time_ms, xuid, field, old, new, remote) VALUES(?1,?2,?3,?4,?5,?6)",
                params![p.time_ms as i64, p.xuid, field, old, new, p.remote],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    fn changes(&mut self) -> Result<Vec<ChangeRecord>, StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare("SELECT time_ms, xuid, field, old, new, remote FROM changes ORDER BY id")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok(ChangeRecord {
                    time_ms: r.get::<_, i64>(0)? as u64,
                    xuid: r.get(1)?,
                    field: r.get(2)?,
                    old: r.get(3)?,
                    new: r.get(4)?,
                    remote: r.get(5)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    fn prune(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        let e = self.err();
        let mut n = 0;
        if let Some(age) = retention.max_age_ms {
            let before = now_ms.saturating_sub(age) as i64;
            n += self
                .conn
                .execute(
                    "DELETE FROM scans WHERE passed = 0 AND time_ms < ?1",
                    [before],
                )
                .map_err(&e)?;
        }
        if let Some(rows) = retention.max_rows {
            n += self
                .conn
                .execute(
                    "DELETE FROM scans WHERE passed = 0
                     AND id <= (SELECT max(id) FROM scans) - ?1",
                    [rows as i64],
                )
                .map_err(&e)?;
        }
        Ok(n as u64)
    }
}

// Store behaviour is tested on both backends: tests/verifier_store.rs.
