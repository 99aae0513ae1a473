//! The verifier's stores for its test suites: one suite, two backends. SQLite always;
//! PostgreSQL when `TAG424_TEST_PG` names a server (`postgres://USER@HOST:PORT/DB`; `.ci/run`
//! starts a private one). Each test gets a fresh, empty database of its own. Under `CI=true`
//! a missing `TAG424_TEST_PG` is a failure, never a skip.
#![allow(dead_code)]

use std::path::Path;

use tag424::verifier::store::{self, Store};

/// A fresh database of one backend; a PostgreSQL one is dropped with this value.
pub struct Db {
    /// What `--db` takes: a file path or a PostgreSQL URL.
    pub arg: String,
    /// The backend's name, for assertion messages.
    pub name: &'static str,
    pg_admin: Option<(String, String)>,
}

impl Db {
    /// Opens the store (migrating it).
    pub fn store(&self) -> Box<dyn Store> {
        store::open(&self.arg).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_admin.is_some()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin.take() {
            let _ = on_own_runtime(move || async move {
                let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            });
        }
    }
}

/// Runs an async job on a runtime of its own in a thread of its own (callable anywhere).
fn on_own_runtime<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .unwrap()
}

/// The PostgreSQL server to test on, if configured. Panics under `CI=true` without one.
pub fn pg_url() -> Option<String> {
    match std::env::var("TAG424_TEST_PG") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but TAG424_TEST_PG is not set: the PostgreSQL tests must run in CI \
                     (.ci/run starts a private server and sets it)"
                );
            }
            eprintln!(
                "skipped: PostgreSQL backend (set TAG424_TEST_PG=postgres://USER@HOST:PORT/DB to include it)"
            );
            None
        }
    }
}

/// A new empty PostgreSQL database on the test server.
pub fn fresh_pg(admin: &str) -> Db {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "tag424_t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (a, n) = (admin.to_string(), name.clone());
    on_own_runtime(move || async move {
        let (c, conn) = tokio_postgres::connect(&a, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("TAG424_TEST_PG={a}: {e}"));
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE DATABASE {n}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {n}: {e}"));
    });
    let mut url: url::Url = admin.parse().expect("TAG424_TEST_PG is a URL");
    url.set_path(&name);
    Db {
        arg: url.to_string(),
        name: "postgres",
        pg_admin: Some((admin.to_string(), name)),
    }
}

/// A new SQLite database file in `dir`.
pub fn fresh_sqlite(dir: &Path) -> Db {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    Db {
        arg: dir
            .join(format!("v{}.db", N.fetch_add(1, Ordering::Relaxed)))
            .to_string_lossy()
            .into_owned(),
        name: "sqlite",
        pg_admin: None,
    }
}

/// One fresh database per backend: SQLite always, PostgreSQL when configured.
pub fn fresh_all(dir: &Path) -> Vec<Db> {
    let mut v = vec![fresh_sqlite(dir)];
    if let Some(admin) = pg_url() {
        v.push(fresh_pg(&admin));
    }
    v
}
