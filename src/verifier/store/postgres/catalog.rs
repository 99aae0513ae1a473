//! The catalog in PostgreSQL: loading it in one snapshot, imports and management changes
//! (one at a time across instances, under an advisory lock; each bumps `catalog_version` and
//! notifies the other instances in its own transaction).

use deadpool_postgres::Pool;
use tokio_postgres::IsolationLevel;

use super::{pg, pool_err, Applied, Msg, CATALOG_LOCK, CHANNEL};
use crate::verifier::catalog::Catalog;
use crate::verifier::store::rows::{BatchRow, CatalogRows, FolderRow, GroupRow, TagRow};
use crate::verifier::store::{Loaded, ScanCounts, TagPatch, COUNTS_AS_SCAN};

/// Everything stored, read in one snapshot, with the catalog version it belongs to.
pub(super) async fn load_in(tx: &tokio_postgres::Transaction<'_>) -> Result<(Loaded, i64), Msg> {
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
            "SELECT id, group_id, name, active, template, lrp, read_ctr_limit FROM batches ORDER BY id",
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
            lrp: r.get(5),
            read_ctr_limit: r.get::<_, Option<i32>>(6).map(|n| n as u32),
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
            &format!(
                "SELECT xuid, count(*), count(*) FILTER (WHERE passed) FROM scans
                 WHERE {COUNTS_AS_SCAN} GROUP BY xuid"
            ),
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

pub(super) async fn load(pool: &Pool) -> Result<(Loaded, i64), Msg> {
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
    // Key text is wiped once the statement has been sent.
    let keys = zeroize::Zeroizing::new(col(&|t| t.key.as_ref().map(|k| k.to_hex().to_string())));
    let uids = col(&|t| t.uid.map(hex::encode_upper));
    let cuids = col(&|t| t.cuid.clone());
    let ds = col(&|t| t.default_response.clone());
    let ps = col(&|t| t.pass_response.clone());
    let metas = zeroize::Zeroizing::new(col(&|t| {
        t.meta_key.as_ref().map(|k| k.to_hex().to_string())
    }));
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
            &xuids, &bid, &*keys, &uids, &cuids, &ds, &ps, &*metas, &names, &active, &rgs, &data,
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

/// Merges `catalog` (see [`crate::verifier::store::Store::import`]); `Ok(Err(_))` when the
/// merged catalog would not hold together (nothing changed).
pub(super) async fn import(
    pool: &Pool,
    catalog: &Catalog,
    version: &Applied,
    now: i64,
) -> Result<Result<(), String>, Msg> {
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
                &[
                    &f.name,
                    &f.aid,
                    &f.token,
                    &f.cors.to_string(),
                    &f.active,
                    &to_json(&f.fields),
                ],
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
                        "INSERT INTO batches(group_id, name, active, template, lrp, read_ctr_limit)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (name) DO UPDATE SET group_id = excluded.group_id,
                           active = excluded.active, template = excluded.template,
                           lrp = excluded.lrp, read_ctr_limit = excluded.read_ctr_limit
                         RETURNING id",
                        &[
                            &gid,
                            &b.name,
                            &b.active,
                            &b.template,
                            &b.lrp,
                            &b.read_ctr_limit.map(|n| n as i32),
                        ],
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
    version.commit(tx, v).await.map_err(pg)?;
    Ok(Ok(()))
}

/// One management change (see [`crate::verifier::store::Store::update_tag`]); `Ok(Err(_))`
/// when the tag is unknown or the CUID taken (nothing changed).
pub(super) async fn update_tag(
    pool: &Pool,
    p: &TagPatch,
    version: &Applied,
) -> Result<Result<(), String>, Msg> {
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
    version.commit(tx, v).await.map_err(pg)?;
    Ok(Ok(()))
}
