//! The scan log in PostgreSQL: a group of scans as one statement (the counter claims and the
//! log rows), the log's reads and its retention.

use std::sync::atomic::Ordering;

use deadpool_postgres::Pool;

use super::{pg, pool_err, Msg, PgStats};
use crate::store::{ChangeRecord, Retention, ScanRecord, ScanWrite, COUNTS_AS_SCAN};

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

/// One scan group's columns, in the order of [`COMMIT_SQL`]'s parameters.
#[derive(Default)]
pub(super) struct Columns {
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
pub(super) fn rounds(writes: &[ScanWrite]) -> Vec<Columns> {
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

/// Commits the rounds of one group (one statement per round; one transaction); which claims won.
pub(super) async fn commit(
    pool: &Pool,
    stats: &PgStats,
    rounds: &[Columns],
    n: usize,
) -> Result<Vec<bool>, Msg> {
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
        for r in rounds {
            commit_round(&*tx, &stmt, r, &mut accepted).await?;
        }
        tx.commit().await.map_err(pg)?;
        trips.fetch_add(rounds.len() as u64 + 2, Ordering::Relaxed);
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    Ok(accepted)
}

/// The scan log, oldest first; the last `limit` rows when given.
pub(super) async fn scans(pool: &Pool, limit: Option<i64>) -> Result<Vec<ScanRecord>, Msg> {
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
}

/// The change log, oldest first.
pub(super) async fn changes(pool: &Pool) -> Result<Vec<ChangeRecord>, Msg> {
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
}

/// Deletes non-passing rows beyond `retention`.
pub(super) async fn prune(pool: &Pool, retention: &Retention, now_ms: u64) -> Result<u64, Msg> {
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
        // Uncounted rows go beyond the newest `rows` rows (as before); a counted row only
        // beyond the newest `rows` counted ones, so uncounted rows never push it out.
        let rows = rows.min(i64::MAX as u64) as i64;
        n += c
            .execute(
                &format!(
                    "DELETE FROM scans WHERE NOT passed AND NOT {COUNTS_AS_SCAN}
                     AND id <= (SELECT max(id) FROM scans) - $1"
                ),
                &[&rows],
            )
            .await
            .map_err(pg)?;
        n += c
            .execute(
                &format!(
                    "DELETE FROM scans WHERE NOT passed AND {COUNTS_AS_SCAN}
                     AND id < (SELECT id FROM scans WHERE {COUNTS_AS_SCAN}
                               ORDER BY id DESC LIMIT 1 OFFSET $1)"
                ),
                &[&rows.saturating_sub(1)],
            )
            .await
            .map_err(pg)?;
        if rows == 0 {
            n += c
                .execute("DELETE FROM scans WHERE NOT passed", &[])
                .await
                .map_err(pg)?;
        }
    }
    Ok(n)
}
