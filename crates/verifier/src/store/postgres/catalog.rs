//! The catalog in PostgreSQL: the rows of [`crate::store::merge`]'s catalog logic
//! (load in one snapshot, import, management changes) in PostgreSQL's SQL (`$N` parameters,
//! arrays through `unnest`, `count(*) FILTER`). Imports and management changes run one at a
//! time across instances, under an advisory lock; each bumps `catalog_version` and notifies
//! the other instances in its own transaction.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::{pg, pool_err, Applied, Msg, CATALOG_LOCK, CHANNEL};
use crate::catalog::Catalog;
use crate::store::merge::{self, CatalogTx};
use crate::store::rows::{Kind, Row, Table, Value};
use crate::store::{ChangeRecord, Loaded, ScanCounts, StoreError, TagPatch, COUNTS_AS_SCAN};

type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// `v` as a parameter of a column of `kind` (borrowed: key text is never copied).
fn param(kind: Kind, v: &Value) -> Param<'_> {
    match kind {
        Kind::Text => Box::new(v.as_text()),
        Kind::Bool => Box::new(v.as_bool()),
        Kind::Int => Box::new(v.as_int()),
    }
}

/// The kind of a filter's value.
fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Int(_) => Kind::Int,
        Value::Bool(_) => Kind::Bool,
        Value::Null | Value::Text(_) => Kind::Text,
    }
}

fn refs<'a>(params: &'a [Param<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// One catalog transaction.
struct PgTx<'a, 'b> {
    tx: &'a tokio_postgres::Transaction<'b>,
    target: &'a str,
}

impl PgTx<'_, '_> {
    fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres {
            target: self.target.to_string(),
            source,
        }
    }

    fn set_sql<R: Row>(t: &Table<R>) -> String {
        let set: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{0} = excluded.{0}", c.name))
            .collect();
        format!("ON CONFLICT ({}) DO UPDATE SET {}", t.key, set.join(", "))
    }
}

impl CatalogTx for PgTx<'_, '_> {
    async fn select<R: Row>(
        &mut self,
        t: &Table<R>,
        filter: Option<(&str, &Value)>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let where_sql = filter.map_or(String::new(), |(c, _)| format!(" WHERE {c} = $1"));
        let sql = format!(
            "SELECT id, {} FROM {}{where_sql} ORDER BY id",
            names.join(", "),
            t.name
        );
        let params: Vec<Param<'_>> = filter
            .map(|(_, v)| param(kind_of(v), v))
            .into_iter()
            .collect();
        let e = self.err();
        let mut out = Vec::new();
        for r in self.tx.query(&sql, &refs(&params)).await.map_err(&e)? {
            let mut v = Vec::with_capacity(names.len() + 1);
            v.push(Value::Int(r.try_get(0).map_err(&e)?));
            for (i, c) in t.columns.iter().enumerate() {
                let i = i + 1;
                v.push(match c.kind {
                    Kind::Text => Value::text_or_null(r.try_get::<_, Option<&str>>(i).map_err(&e)?),
                    Kind::Bool => r
                        .try_get::<_, Option<bool>>(i)
                        .map_err(&e)?
                        .map_or(Value::Null, Value::Bool),
                    Kind::Int => r
                        .try_get::<_, Option<i64>>(i)
                        .map_err(&e)?
                        .map_or(Value::Null, Value::Int),
                });
            }
            out.push(v);
        }
        Ok(out)
    }

    async fn upsert<R: Row>(&mut self, t: &Table<R>, row: &[Value]) -> Result<i64, StoreError> {
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let ps: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {}({}) VALUES ({}) {} RETURNING id",
            t.name,
            names.join(", "),
            ps.join(", "),
            Self::set_sql(t)
        );
        let params: Vec<Param<'_>> = t
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| param(c.kind, v))
            .collect();
        let e = self.err();
        Ok(self
            .tx
            .query_one(&sql, &refs(&params))
            .await
            .map_err(&e)?
            .get(0))
    }

    async fn upsert_all<R: Row>(
        &mut self,
        t: &Table<R>,
        rows: &[Vec<Value>],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        // One statement: a column array each, in order (`WITH ORDINALITY`).
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let arrays: Vec<String> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ty = match c.kind {
                    Kind::Text => "text",
                    Kind::Bool => "boolean",
                    Kind::Int => "bigint",
                };
                format!("${}::{ty}[]", i + 1)
            })
            .collect();
        let sql = format!(
            "INSERT INTO {0} AS o ({1}) SELECT {1} FROM unnest({2}) WITH ORDINALITY AS t({1}, i)
             ORDER BY i {3}",
            t.name,
            names.join(", "),
            arrays.join(", "),
            Self::set_sql(t)
        );
        let params: Vec<Param<'_>> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| -> Param<'_> {
                let col = rows.iter().map(move |r| r.get(i).unwrap_or(&Value::Null));
                match c.kind {
                    Kind::Text => Box::new(col.map(Value::as_text).collect::<Vec<_>>()),
                    Kind::Bool => Box::new(col.map(Value::as_bool).collect::<Vec<_>>()),
                    Kind::Int => Box::new(col.map(Value::as_int).collect::<Vec<_>>()),
                }
            })
            .collect();
        let e = self.err();
        self.tx.execute(&sql, &refs(&params)).await.map_err(&e)?;
        Ok(())
    }

    async fn raise_counters(
        &mut self,
        counters: &[(&str, u32)],
        now: i64,
    ) -> Result<(), StoreError> {
        let (x, c): (Vec<&str>, Vec<i64>) =
            counters.iter().map(|(x, c)| (*x, i64::from(*c))).unzip();
        let e = self.err();
        self.tx
            .execute(
                "INSERT INTO counters AS k (xuid, ctr, time_ms)
                 SELECT x, c, $3 FROM unnest($1::text[], $2::bigint[]) AS r(x, c) ORDER BY x
                 ON CONFLICT (xuid) DO UPDATE SET ctr = excluded.ctr, time_ms = excluded.time_ms
                   WHERE excluded.ctr > k.ctr",
                &[&x, &c, &now],
            )
            .await
            .map_err(&e)?;
        Ok(())
    }

    async fn counters(&mut self) -> Result<HashMap<String, u32>, StoreError> {
        let e = self.err();
        let rows = self
            .tx
            .query("SELECT xuid, ctr FROM counters", &[])
            .await
            .map_err(&e)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u32))
            .collect())
    }

    async fn scan_counts(&mut self) -> Result<HashMap<String, ScanCounts>, StoreError> {
        let e = self.err();
        let rows = self
            .tx
            .query(
                &format!(
                    "SELECT xuid, count(*), count(*) FILTER (WHERE passed) FROM scans
                     WHERE {COUNTS_AS_SCAN} GROUP BY xuid"
                ),
                &[],
            )
            .await
            .map_err(&e)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    ScanCounts {
                        answered: r.get::<_, i64>(1) as u64,
                        genuine: r.get::<_, i64>(2) as u64,
                    },
                )
            })
            .collect())
    }

    async fn log_changes(&mut self, changes: &[ChangeRecord]) -> Result<(), StoreError> {
        let e = self.err();
        for c in changes {
            self.tx
                .execute(
                    "INSERT INTO changes(time_ms, xuid, field, old, new, remote)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &(c.time_ms as i64),
                        &c.xuid,
                        &c.field,
                        &c.old,
                        &c.new,
                        &c.remote,
                    ],
                )
                .await
                .map_err(&e)?;
        }
        Ok(())
    }

    fn db(&self) -> String {
        self.target.to_string()
    }
}

/// Everything stored, read in one snapshot, with the catalog version it belongs to.
pub(super) async fn load_in(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
) -> Result<(Loaded, i64), Msg> {
    let version: i64 = tx
        .query_one("SELECT version FROM catalog_version", &[])
        .await
        .map_err(pg)?
        .get(0);
    let loaded = merge::load(&mut PgTx { tx, target }).await?;
    Ok((loaded, version))
}

pub(super) async fn load(pool: &Pool, target: &str) -> Result<(Loaded, i64), Msg> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let out = load_in(&tx, target).await?;
    tx.commit().await.map_err(pg)?;
    Ok(out)
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

/// Merges `catalog` (see [`crate::store::Store::import`]); nothing changes when the
/// merged catalog would not hold together (`Invalid`).
pub(super) async fn import(
    pool: &Pool,
    target: &str,
    catalog: Catalog,
    version: &Applied,
    now: i64,
) -> Result<(), Msg> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
        .await
        .map_err(pg)?;
    merge::import(&mut PgTx { tx: &tx, target }, catalog, now).await?;
    let v = announce(&tx).await?;
    version.commit(tx, v).await.map_err(pg)?;
    Ok(())
}

/// One management change (see [`crate::store::Store::update_tag`]); nothing changes
/// when the tag is unknown or the CUID taken (`Invalid`).
pub(super) async fn update_tag(
    pool: &Pool,
    target: &str,
    p: &TagPatch,
    version: &Applied,
) -> Result<(), Msg> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
        .await
        .map_err(pg)?;
    merge::update_tag(&mut PgTx { tx: &tx, target }, p).await?;
    let v = announce(&tx).await?;
    version.commit(tx, v).await.map_err(pg)?;
    Ok(())
}
