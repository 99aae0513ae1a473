//! The verifier's stores for its test suites: one suite, two backends. SQLite always;
//! PostgreSQL when `TAG424_TEST_PG` names a server (`postgres://USER@HOST:PORT/DB`; `.ci/run`
//! starts a private one). Each test gets a fresh, empty database of its own. Under `CI=true`
//! a missing `TAG424_TEST_PG` is a failure, never a skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

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
pub fn on_own_runtime<F, Fut, T>(f: F) -> T
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

// ---- The real binary ----------------------------------------------------------------

/// `tag424 ARGS`, hermetic (tests/run), which must succeed; its stdout.
pub fn run(args: &[&str]) -> String {
    crate::run::ok(args)
}

/// `tag424 batch` of `count` tags on the simulator in `tags`, written to `out`; `extra` flags
/// go before `--json`.
pub fn encode_batch(tags: &Path, count: u32, out: &Path, extra: &[&str]) {
    let (reader, count) = (format!("sim:{}", tags.display()), count.to_string());
    let mut args = vec![
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        &count,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--json");
    run(&args);
}

/// The query of a `tag424 sim tap` of the tag `id` (UID or xuid) of the simulator in `tags`.
pub fn tap(tags: &Path, id: &str) -> String {
    let url = run(&["sim", "tap", "--dir", tags.to_str().unwrap(), id]);
    url.trim().split_once('?').unwrap().1.to_string()
}

/// Field `col` of the first data row of the batch file `out/file` (keys.csv, associate.csv).
pub fn column(out: &Path, file: &str, col: usize) -> String {
    let text = std::fs::read_to_string(out.join(file)).unwrap();
    text.lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(col)
        .unwrap()
        .to_string()
}

/// Starts `tag424 serve` on a free loopback port; returns the child and its base URL.
pub fn serve(args: &[&str]) -> (Child, String) {
    let mut child = crate::run::tag424()
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest.split_whitespace().next().unwrap().to_string();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, base);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tag424 serve printed no listening line");
}
