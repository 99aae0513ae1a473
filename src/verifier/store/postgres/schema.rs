//! PostgreSQL's schema migrations, listed in `schema_migrations` (version, applied time).

use deadpool_postgres::Pool;

use super::{pg, pool_err, Msg, MIGRATE_LOCK};

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
    // 3: the batch's SUN mode (issue 12: LRP batches).
    "ALTER TABLE batches ADD COLUMN lrp boolean NOT NULL DEFAULT false;",
    // 4: the batch's SDMReadCtrLimit (issue 21: `batch --read-counter-limit`).
    "ALTER TABLE batches ADD COLUMN read_ctr_limit integer;",
];

pub(super) async fn migrate(pool: &Pool) -> Result<(), Msg> {
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
    if let Some(why) = crate::verifier::store::schema_too_new(version, MIGRATIONS.len()) {
        return Err(why);
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
