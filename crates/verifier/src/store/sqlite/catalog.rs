//! The catalog in SQLite: the rows of [`super::super::merge`]'s catalog logic (load, import,
//! management changes), in SQLite's SQL (`?N` parameters, `rowid`, `sum(passed)`).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, Connection, ToSql};

use super::super::merge::{self, CatalogTx};
use super::super::rows::{Kind, Row, Table, Value};
use super::super::{ChangeRecord, Loaded, ScanCounts, StoreError, TagPatch, COUNTS_AS_SCAN};
use super::{ready, sql_err, RAISE_COUNTER};
use crate::catalog::Catalog;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// One catalog transaction on a SQLite connection (or open transaction).
struct SqliteTx<'a> {
    conn: &'a Connection,
    path: &'a Path,
}

impl SqliteTx<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sql_err(self.path)
    }

    /// `INSERT … ON CONFLICT(key) DO UPDATE SET every column` (then `RETURNING rowid`).
    fn upsert_sql<R: Row>(t: &Table<R>, returning: bool) -> String {
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let set: Vec<String> = names.iter().map(|n| format!("{n}=excluded.{n}")).collect();
        format!(
            "INSERT INTO {}({}) VALUES({}) ON CONFLICT({}) DO UPDATE SET {}{}",
            t.name,
            names.join(","),
            params.join(","),
            t.key,
            set.join(","),
            if returning { " RETURNING rowid" } else { "" }
        )
    }
}

impl CatalogTx for SqliteTx<'_> {
    async fn select<R: Row>(
        &mut self,
        t: &Table<R>,
        filter: Option<(&str, &Value)>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let filter_sql = match filter {
            // "id" is the row id in SQLite (an alias of `id` where the table has one).
            Some(("id", _)) => " WHERE rowid = ?1".to_string(),
            Some((col, _)) => format!(" WHERE {col} = ?1"),
            None => String::new(),
        };
        let sql = format!(
            "SELECT rowid, {} FROM {}{filter_sql} ORDER BY rowid",
            names.join(", "),
            t.name
        );
        let e = self.err();
        let mut st = self.conn.prepare_cached(&sql).map_err(&e)?;
        let args: Vec<&Value> = filter.map(|(_, v)| v).into_iter().collect();
        let mut rows = st.query(params_from_iter(args)).map_err(&e)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let mut v = Vec::with_capacity(names.len() + 1);
            v.push(Value::Int(r.get(0).map_err(&e)?));
            for (i, c) in t.columns.iter().enumerate() {
                v.push(match r.get_ref(i + 1).map_err(&e)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) if c.kind == Kind::Bool => Value::Bool(n != 0),
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Text(s) => Value::Text(String::from_utf8_lossy(s).into_owned()),
                    other => {
                        return Err(StoreError::Corrupt {
                            db: self.path.display().to_string(),
                            what: format!(
                                "{}.{}: unexpected {:?}",
                                t.name,
                                c.name,
                                other.data_type()
                            ),
                        })
                    }
                });
            }
            out.push(v);
        }
        Ok(out)
    }

    async fn upsert<R: Row>(&mut self, t: &Table<R>, row: &[Value]) -> Result<i64, StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached(&Self::upsert_sql(t, true))
            .map_err(&e)?;
        st.query_row(params_from_iter(row), |r| r.get(0))
            .map_err(&e)
    }

    async fn upsert_all<R: Row>(
        &mut self,
        t: &Table<R>,
        rows: &[Vec<Value>],
    ) -> Result<(), StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached(&Self::upsert_sql(t, false))
            .map_err(&e)?;
        for row in rows {
            st.execute(params_from_iter(row)).map_err(&e)?;
        }
        Ok(())
    }

    async fn raise_counters(
        &mut self,
        counters: &[(&str, u32)],
        now: i64,
    ) -> Result<(), StoreError> {
        let e = self.err();
        let mut st = self.conn.prepare_cached(RAISE_COUNTER).map_err(&e)?;
        for (x, c) in counters {
            st.execute(params![x, c, now]).map_err(&e)?;
        }
        Ok(())
    }

    async fn counters(&mut self) -> Result<HashMap<String, u32>, StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached("SELECT xuid, ctr FROM counters")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u32))
            })
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    async fn scan_counts(&mut self) -> Result<HashMap<String, ScanCounts>, StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT xuid, count(*), sum(passed) FROM scans WHERE {COUNTS_AS_SCAN} GROUP BY xuid"
            ))
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    ScanCounts {
                        answered: r.get::<_, i64>(1)? as u64,
                        genuine: r.get::<_, i64>(2)? as u64,
                    },
                ))
            })
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    async fn log_changes(&mut self, changes: &[ChangeRecord]) -> Result<(), StoreError> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO changes(time_ms, xuid, field, old, new, remote) VALUES(?1,?2,?3,?4,?5,?6)",
            )
            .map_err(&e)?;
        for c in changes {
            st.execute(params![
                c.time_ms as i64,
                c.xuid,
                c.field,
                c.old,
                c.new,
                c.remote
            ])
            .map_err(&e)?;
        }
        Ok(())
    }

    fn db(&self) -> String {
        self.path.display().to_string()
    }
}

/// Everything stored, read through `conn` (a connection or an open transaction).
pub(super) fn load_from(conn: &Connection, path: &Path) -> Result<Loaded, StoreError> {
    ready(merge::load(&mut SqliteTx { conn, path }))
}

pub(super) fn import(
    conn: &mut Connection,
    path: &Path,
    catalog: &Catalog,
) -> Result<(), StoreError> {
    let e = sql_err(path);
    let tx = conn.transaction().map_err(&e)?;
    let now = crate::timefmt::now_ms() as i64;
    ready(merge::import(
        &mut SqliteTx { conn: &tx, path },
        catalog.clone(),
        now,
    ))?;
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
    ready(merge::update_tag(&mut SqliteTx { conn: &tx, path }, p))?;
    tx.commit().map_err(&e)
}
