//! The embedded store: bundled SQLite, WAL, `synchronous=FULL`, migrations by `user_version`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{Loaded, ScanRecord, ScanWrite, Store, StoreError};
use crate::crypto::AesKey;
use crate::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, GroupKind, Tag};

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
];

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
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let e = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Loaded::default();
    let mut folders: Vec<(i64, Folder)> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT id, name, aid, token, cors FROM folders ORDER BY id")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, name, aid, token, cors) = row.map_err(&e)?;
            let cors = Cors::parse(&cors).map_err(|x| corrupt(x.to_string()))?;
            folders.push((
                id,
                Folder {
                    name,
                    aid,
                    token,
                    cors,
                    groups: Vec::new(),
                },
            ));
        }
    }
    // Groups and batches by id, then tags into their batches.
    let mut groups: Vec<(i64, i64, Group)> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT id, folder_id, name, kind, default_response, pass_response FROM groups ORDER BY id")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, fid, name, kind, d, p) = row.map_err(&e)?;
            let kind = GroupKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("group {name}: unknown kind {kind}")))?;
            groups.push((
                id,
                fid,
                Group {
                    name,
                    kind,
                    default_response: d,
                    pass_response: p,
                    batches: Vec::new(),
                },
            ));
        }
    }
    let mut batches: Vec<(i64, i64, Batch)> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT id, group_id, name, active FROM batches ORDER BY id")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, gid, name, active) = row.map_err(&e)?;
            batches.push((
                id,
                gid,
                Batch {
                    name,
                    active,
                    tags: Vec::new(),
                },
            ));
        }
    }
    let batch_index: HashMap<i64, usize> =
        batches.iter().enumerate().map(|(i, b)| (b.0, i)).collect();
    {
        let mut st = conn
            .prepare("SELECT xuid, batch_id, key, uid, cuid, default_response, pass_response FROM tags ORDER BY rowid")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (xuid, bid, key, uid, cuid, d, p) = row.map_err(&e)?;
            let key = match key {
                Some(k) => Some(
                    k.parse::<AesKey>()
                        .map_err(|_| corrupt(format!("tag {xuid}: bad key")))?,
                ),
                None => None,
            };
            let uid = match uid {
                Some(u) => Some(
                    crate::verifier::query::parse_uid(&u)
                        .ok_or_else(|| corrupt(format!("tag {xuid}: bad UID")))?,
                ),
                None => None,
            };
            let bi = *batch_index
                .get(&bid)
                .ok_or_else(|| corrupt(format!("tag {xuid}: no batch {bid}")))?;
            batches[bi].2.tags.push(Tag {
                xuid,
                key,
                uid,
                cuid,
                default_response: d,
                pass_response: p,
            });
        }
    }
    let group_index: HashMap<i64, usize> =
        groups.iter().enumerate().map(|(i, g)| (g.0, i)).collect();
    for (_, gid, b) in batches {
        let gi = *group_index
            .get(&gid)
            .ok_or_else(|| corrupt(format!("batch {}: no group {gid}", b.name)))?;
        groups[gi].2.batches.push(b);
    }
    let folder_index: HashMap<i64, usize> =
        folders.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
    for (_, fid, g) in groups {
        let fi = *folder_index
            .get(&fid)
            .ok_or_else(|| corrupt(format!("group {}: no folder {fid}", g.name)))?;
        folders[fi].1.groups.push(g);
    }
    out.catalog.folders = folders.into_iter().map(|f| f.1).collect();
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
            .prepare("SELECT xuid, count(*) FROM scans WHERE xuid != '' GROUP BY xuid")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&e)?;
        for row in rows {
            let (x, n) = row.map_err(&e)?;
            out.scan_counts.insert(x, n as u64);
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
                        "UPDATE folders SET aid=?2, token=?3, cors=?4 WHERE id=?1",
                        params![id, f.aid, f.token, cors],
                    )
                    .map_err(&e)?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO folders(name, aid, token, cors) VALUES(?1,?2,?3,?4)",
                        params![f.name, f.aid, f.token, cors],
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
                            "UPDATE groups SET kind=?2, default_response=?3, pass_response=?4 WHERE id=?1",
                            params![id, g.kind.as_str(), g.default_response, g.pass_response],
                        )
                        .map_err(&e)?;
                        id
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO groups(folder_id, name, kind, default_response, pass_response) VALUES(?1,?2,?3,?4,?5)",
                            params![fid, g.name, g.kind.as_str(), g.default_response, g.pass_response],
                        )
                        .map_err(&e)?;
                        tx.last_insert_rowid()
                    }
                };
                for b in &g.batches {
                    let bid =
                        match upsert_id(&tx, "SELECT id FROM batches WHERE name=?1", &[&b.name])
                            .map_err(&e)?
                        {
                            Some(id) => {
                                tx.execute(
                                    "UPDATE batches SET group_id=?2, active=?3 WHERE id=?1",
                                    params![id, gid, b.active],
                                )
                                .map_err(&e)?;
                                id
                            }
                            None => {
                                tx.execute(
                                    "INSERT INTO batches(group_id, name, active) VALUES(?1,?2,?3)",
                                    params![gid, b.name, b.active],
                                )
                                .map_err(&e)?;
                                tx.last_insert_rowid()
                            }
                        };
                    let mut st = tx
                        .prepare_cached(
                            "INSERT INTO tags(xuid, batch_id, key, uid, cuid, default_response, pass_response)
                             VALUES(?1,?2,?3,?4,?5,?6,?7)
                             ON CONFLICT(xuid) DO UPDATE SET batch_id=excluded.batch_id,
                               key=excluded.key, uid=excluded.uid, cuid=excluded.cuid,
                               default_response=excluded.default_response,
                               pass_response=excluded.pass_response",
                        )
                        .map_err(&e)?;
                    for t in &b.tags {
                        let key = t.key.as_ref().map(AesKey::to_hex);
                        st.execute(params![
                            t.xuid,
                            bid,
                            key.as_deref(),
                            t.uid.map(hex::encode_upper),
                            t.cuid,
                            t.default_response,
                            t.pass_response
                        ])
                        .map_err(&e)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::store::Claim;

    fn catalog(cuid_of_b: &str) -> Catalog {
        let tag = |x: &str, c: &str| Tag {
            cuid: Some(c.into()),
            key: Some(AesKey::new([1; 16])),
            ..Tag::new(x)
        };
        Catalog {
            folders: vec![Folder {
                name: "f".into(),
                aid: "f01".into(),
                token: None,
                cors: Cors::Any,
                groups: vec![Group {
                    name: "g".into(),
                    kind: GroupKind::Authentication,
                    default_response: "Fail".into(),
                    pass_response: "Pass".into(),
                    batches: vec![Batch {
                        name: "b".into(),
                        active: true,
                        tags: vec![tag("a", "A"), tag("b", cuid_of_b)],
                    }],
                }],
            }],
        }
    }

    fn claim(xuid: &str, ctr: u32) -> ScanWrite {
        ScanWrite {
            time_ms: 1,
            endpoint: "api",
            query: String::new(),
            xuid: xuid.into(),
            ctr: Some(ctr),
            result: "Pass".into(),
            reason: "pass",
            remote: "127.0.0.1:1".into(),
            claim: Some(Claim {
                ctr,
                refused_result: "Fail".into(),
            }),
        }
    }

    #[test]
    fn counters_only_move_forward_and_survive_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.db");
        let mut s = SqliteStore::open(&p).unwrap();
        s.import(&catalog("B")).unwrap();
        let got = s
            .commit(&[
                claim("a", 5),
                claim("a", 5),
                claim("b", 1),
                claim("a", 4),
                claim("a", 6),
            ])
            .unwrap();
        assert_eq!(got, vec![true, false, true, false, true]);
        drop(s);
        let mut s = SqliteStore::open(&p).unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.catalog, catalog("B"));
        assert_eq!(l.counters["a"], 6);
        assert_eq!(l.scan_counts["a"], 4);
        let log = s.scans(Some(2)).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].reason.as_str(), log[0].result.as_str()),
            ("replay", "Fail")
        );
        assert!(log[1].passed);
    }

    #[test]
    fn an_import_that_breaks_the_merged_catalog_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&d.path().join("v.db")).unwrap();
        s.import(&catalog("B")).unwrap();
        // Another batch in the same folder reusing CUID "A".
        let mut other = catalog("B");
        let b = &mut other.folders[0].groups[0].batches[0];
        b.name = "b2".into();
        b.tags = vec![Tag {
            cuid: Some("A".into()),
            ..Tag::new("c")
        }];
        assert!(matches!(s.import(&other), Err(StoreError::Invalid(_))));
        assert_eq!(s.load().unwrap().catalog, catalog("B"));
    }
}
