//! SQLite's part of the migrations: the schema version is `PRAGMA user_version`, and each
//! migration runs in its own transaction. The list is [`super::super::MIGRATIONS`].

use std::path::Path;

use rusqlite::Connection;

use super::super::schema::{self, Migration, Migrator};
use super::super::StoreError;
use super::{ready, sql_err};

struct SqliteMigrator<'a> {
    conn: &'a mut Connection,
    path: &'a Path,
}

impl Migrator for SqliteMigrator<'_> {
    async fn version(&mut self) -> Result<u32, StoreError> {
        version(self.conn, self.path)
    }

    async fn apply(&mut self, m: &Migration) -> Result<(), StoreError> {
        let e = sql_err(self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute_batch(m.sqlite).map_err(&e)?;
        tx.pragma_update(None, "user_version", i64::from(m.version))
            .map_err(&e)?;
        tx.commit().map_err(&e)
    }

    fn db(&self) -> String {
        self.path.display().to_string()
    }
}

/// The schema version of the database.
pub(super) fn version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(path))?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Applies the migrations this database has not had yet; a database newer than this build
/// is refused.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    ready(schema::migrate(&mut SqliteMigrator { conn, path })).map(|_| ())
}
