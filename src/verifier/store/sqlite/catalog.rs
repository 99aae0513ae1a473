//! The catalog in SQLite: loading it, importing batches into it, and the management API's
//! changes to a tag code (logged in `changes`).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::super::rows::{BatchRow, CatalogRows, FolderRow, GroupRow, TagRow};
use super::super::{Loaded, ScanCounts, StoreError, TagPatch, COUNTS_AS_SCAN};
use super::{sql_err, RAISE_COUNTER};
use crate::crypto::AesKey;
use crate::verifier::catalog::Catalog;

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Everything stored, read through `conn` (a connection or an open transaction).
pub(super) fn load_from(conn: &Connection, path: &Path) -> Result<Loaded, StoreError> {
    let e = sql_err(path);
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
        .prepare("SELECT id, group_id, name, active, template, lrp, read_ctr_limit FROM batches ORDER BY id")
        .map_err(&e)?;
    rows.batches = st
        .query_map([], |r| {
            Ok(BatchRow {
                id: r.get(0)?,
                group_id: r.get(1)?,
                name: r.get(2)?,
                active: r.get(3)?,
                template: r.get(4)?,
                lrp: r.get(5)?,
                read_ctr_limit: r.get(6)?,
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
            .prepare(&format!(
                "SELECT xuid, count(*), sum(passed) FROM scans WHERE {COUNTS_AS_SCAN} GROUP BY xuid"
            ))
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

pub(super) fn import(
    conn: &mut Connection,
    path: &Path,
    catalog: &Catalog,
) -> Result<(), StoreError> {
    let e = sql_err(path);
    let tx = conn.transaction().map_err(&e)?;
    for f in &catalog.folders {
        // One upsert per row, as the PostgreSQL store has them: a name already stored is
        // updated in place (its id, and so its tags and counters, kept).
        let fid: i64 = tx
            .query_row(
                "INSERT INTO folders(name, aid, token, cors, active, fields) VALUES(?1,?2,?3,?4,?5,?6)
                 ON CONFLICT(name) DO UPDATE SET aid=excluded.aid, token=excluded.token,
                   cors=excluded.cors, active=excluded.active, fields=excluded.fields
                 RETURNING id",
                params![f.name, f.aid, f.token, f.cors.to_string(), f.active, to_json(&f.fields)],
                |r| r.get(0),
            )
            .map_err(&e)?;
        for g in &f.groups {
            let gid: i64 = tx
                .query_row(
                    "INSERT INTO groups(folder_id, name, kind, default_response, pass_response,
                       active, rule_groups, data) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)
                     ON CONFLICT(folder_id, name) DO UPDATE SET kind=excluded.kind,
                       default_response=excluded.default_response,
                       pass_response=excluded.pass_response, active=excluded.active,
                       rule_groups=excluded.rule_groups, data=excluded.data
                     RETURNING id",
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
                    |r| r.get(0),
                )
                .map_err(&e)?;
            for b in &g.batches {
                let bid: i64 = tx
                    .query_row(
                        "INSERT INTO batches(group_id, name, active, template, lrp, read_ctr_limit)
                         VALUES(?1,?2,?3,?4,?5,?6)
                         ON CONFLICT(name) DO UPDATE SET group_id=excluded.group_id,
                           active=excluded.active, template=excluded.template, lrp=excluded.lrp,
                           read_ctr_limit=excluded.read_ctr_limit
                         RETURNING id",
                        params![gid, b.name, b.active, b.template, b.lrp, b.read_ctr_limit],
                        |r| r.get(0),
                    )
                    .map_err(&e)?;
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
                let mut raise = tx.prepare_cached(RAISE_COUNTER).map_err(&e)?;
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
    let merged = load_from(&tx, path)?;
    merged.catalog.validate().map_err(|err| {
        StoreError::Invalid(format!("importing would make the catalog invalid: {err}"))
    })?;
    tx.commit().map_err(&e)
}

pub(super) fn update_tag(
    conn: &mut Connection,
    path: &Path,
    p: &TagPatch,
) -> Result<(), StoreError> {
    let e = sql_err(path);
    let tx = conn
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
