//! PostgreSQL's part of the migrations: the applied ones are listed in `schema_migrations`
//! (version, applied time), and all pending ones run in one transaction under an advisory
//! lock (one instance migrates; the others then find the work done). The list is
//! [`crate::store::MIGRATIONS`].

use deadpool_postgres::Pool;

use super::{pg, pool_err, Msg, MIGRATE_LOCK};
use crate::store::schema::{self, Migration, Migrator};
use crate::store::StoreError;

struct PgMigrator<'a, 'b> {
    tx: &'a tokio_postgres::Transaction<'b>,
    target: &'a str,
}

impl PgMigrator<'_, '_> {
    fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres {
            target: self.target.to_string(),
            source,
        }
    }
}

/// The schema version recorded in `schema_migrations` (0 without one).
pub(super) const VERSION_SQL: &str = "SELECT coalesce(max(version), 0) FROM schema_migrations";

impl Migrator for PgMigrator<'_, '_> {
    async fn version(&mut self) -> Result<u32, StoreError> {
        let v: i32 = self
            .tx
            .query_one(VERSION_SQL, &[])
            .await
            .map_err(self.err())?
            .get(0);
        Ok(v.max(0) as u32)
    }

    async fn apply(&mut self, m: &Migration) -> Result<(), StoreError> {
        self.tx
            .batch_execute(m.postgres)
            .await
            .map_err(self.err())?;
        self.tx
            .execute(
                "INSERT INTO schema_migrations(version) VALUES ($1)",
                &[&(m.version as i32)],
            )
            .await
            .map_err(self.err())?;
        Ok(())
    }

    fn db(&self) -> String {
        self.target.to_string()
    }
}

pub(super) async fn migrate(pool: &Pool, target: &str) -> Result<(), Msg> {
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
    schema::migrate(&mut PgMigrator { tx: &tx, target }).await?;
    tx.commit().await.map_err(pg)
}
