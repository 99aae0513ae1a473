//! The scan side of SQLite: the group commit (counters raised only upward, and the scan log),
//! reading the scan and change logs, and retention.

use std::path::Path;

use rusqlite::{params, Connection};

use super::super::{ChangeRecord, Retention, ScanRecord, ScanWrite, StoreError, COUNTS_AS_SCAN};
use super::{sql_err, RAISE_COUNTER};

pub(super) fn commit(
    conn: &mut Connection,
    path: &Path,
    writes: &[ScanWrite],
) -> Result<Vec<bool>, StoreError> {
    let e = sql_err(path);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&e)?;
    let mut accepted = Vec::with_capacity(writes.len());
    {
        let mut claim = tx.prepare_cached(RAISE_COUNTER).map_err(&e)?;
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

pub(super) fn scans(
    conn: &Connection,
    path: &Path,
    limit: Option<usize>,
) -> Result<Vec<ScanRecord>, StoreError> {
    let e = sql_err(path);
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut st = conn
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

pub(super) fn changes(conn: &Connection, path: &Path) -> Result<Vec<ChangeRecord>, StoreError> {
    let e = sql_err(path);
    let mut st = conn
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

pub(super) fn prune(
    conn: &Connection,
    path: &Path,
    retention: &Retention,
    now_ms: u64,
) -> Result<u64, StoreError> {
    let e = sql_err(path);
    let mut n = 0;
    if let Some(age) = retention.max_age_ms {
        let before = now_ms.saturating_sub(age) as i64;
        n += conn
            .execute(
                "DELETE FROM scans WHERE passed = 0 AND time_ms < ?1",
                [before],
            )
            .map_err(&e)?;
    }
    if let Some(rows) = retention.max_rows {
        // Uncounted rows go beyond the newest `rows` rows (as before); a counted row only
        // beyond the newest `rows` counted ones, so uncounted rows never push it out.
        let rows = rows.min(i64::MAX as u64) as i64;
        n += conn
            .execute(
                &format!(
                    "DELETE FROM scans WHERE passed = 0 AND NOT {COUNTS_AS_SCAN}
                     AND id <= (SELECT max(id) FROM scans) - ?1"
                ),
                [rows],
            )
            .map_err(&e)?;
        n += conn
            .execute(
                &format!(
                    "DELETE FROM scans WHERE passed = 0 AND {COUNTS_AS_SCAN}
                     AND id < (SELECT id FROM scans WHERE {COUNTS_AS_SCAN}
                               ORDER BY id DESC LIMIT 1 OFFSET ?1)"
                ),
                [rows.saturating_sub(1)],
            )
            .map_err(&e)?;
        if rows == 0 {
            n += conn
                .execute("DELETE FROM scans WHERE passed = 0", [])
                .map_err(&e)?;
        }
    }
    Ok(n as u64)
}
