//! SQLite's schema migrations, counted by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;

use super::super::StoreError;
use super::sql_err;

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
    // 3: the batch's SUN mode (issue 12: LRP batches).
    "ALTER TABLE batches ADD COLUMN lrp INTEGER NOT NULL DEFAULT 0;",
    // 4: the batch's SDMReadCtrLimit (issue 21: `batch --read-counter-limit`).
    "ALTER TABLE batches ADD COLUMN read_ctr_limit INTEGER;",
];

/// Applies the migrations this database has not had yet, each in its own transaction; a
/// database newer than this build is refused.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let e = sql_err(path);
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(&e)? as usize;
    if let Some(what) = super::super::schema_too_new(version, MIGRATIONS.len()) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            what,
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(&e)?;
        tx.execute_batch(m).map_err(&e)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(&e)?;
        tx.commit().map_err(&e)?;
    }
    Ok(())
}
