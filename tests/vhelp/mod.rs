//! Shared helpers of the verifier's HTTP suites (conformance, rules, management, abuse,
//! templates): a server on a given store, a catalog builder, an HTTP call that returns
//! status, headers and body, and genuine scans of the default template.
//!
//! One suite, two backends: a test runs once per [`Backend`] of [`backends()`] (SQLite
//! always, PostgreSQL when `TAG424_TEST_PG` is set; under `CI=true` a missing one fails, see
//! tests/backends). `start`/`start_default` without a backend use SQLite (for tests about the
//! SQLite file itself).
#![allow(dead_code)]

#[path = "../backends/mod.rs"]
pub mod backends;
// Not every suite runs the binary.
#[allow(unused_imports)]
pub use backends::{column, encode_batch, run, tap};

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Folder, Group, GroupKind, RuleGroup, Tag};
use tag424::verifier::limits::Limits;
use tag424::verifier::server::{self, Running};
use tag424::verifier::{Settings, Verifier};

pub const KEY: [u8; 16] = [0x5A; 16];

/// A running server and what keeps its store alive.
pub struct Srv {
    pub running: Option<Running>,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// The database (a PostgreSQL one is dropped with it).
    pub store: backends::Db,
}

impl Srv {
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop(Duration::from_secs(5)).await.unwrap();
        }
    }

    /// Stops the server and starts a new one on the same database without importing: what
    /// it serves (counters, scan counts) comes from the store alone.
    pub async fn restart(mut self) -> Srv {
        if let Some(r) = self.running.take() {
            r.stop(Duration::from_secs(5)).await.unwrap();
        }
        let v = Verifier::open_with(self.store.store(), None, Settings::default()).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = server::spawn_with(Arc::new(v), l, None, Limits::default()).unwrap();
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
        self
    }

    /// The SQLite file (for tests of [`start`] about the file itself).
    pub fn db(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.store.arg)
    }
}

/// A store backend to run a test on.
pub struct Backend {
    postgres: Option<String>,
}

/// SQLite, and PostgreSQL when `TAG424_TEST_PG` is set (a failure under `CI=true` if not).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend { postgres: None }];
    if let Some(u) = backends::pg_url() {
        v.push(Backend { postgres: Some(u) });
    }
    v
}

impl Backend {
    /// "SQLite" or "PostgreSQL", for assertion messages.
    pub fn name(&self) -> &'static str {
        match self.postgres {
            Some(_) => "PostgreSQL",
            None => "SQLite",
        }
    }

    /// Starts a verifier for `cat` on a fresh database of this backend.
    pub fn start(&self, cat: &Catalog, settings: Settings, limits: Limits) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let store = match &self.postgres {
            Some(admin) => backends::fresh_pg(admin),
            None => backends::fresh_sqlite(dir.path()),
        };
        let v = Verifier::open_with(store.store(), Some(cat), settings).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = server::spawn_with(Arc::new(v), l, None, limits).unwrap();
        let base = format!("http://{}", running.addr);
        Srv {
            running: Some(running),
            base,
            dir,
            store,
        }
    }

    /// Starts with default settings and limits.
    pub fn start_default(&self, cat: &Catalog) -> Srv {
        self.start(cat, Settings::default(), Limits::default())
    }
}

/// Starts a verifier for `cat` on a fresh SQLite store.
pub fn start(cat: &Catalog, settings: Settings, limits: Limits) -> Srv {
    Backend { postgres: None }.start(cat, settings, limits)
}

/// Starts on SQLite with default settings and limits.
pub fn start_default(cat: &Catalog) -> Srv {
    start(cat, Settings::default(), Limits::default())
}

/// An authentication tag with the test key.
pub fn keyed(xuid: &str) -> Tag {
    Tag {
        key: Some(AesKey::new(KEY)),
        ..Tag::new(xuid)
    }
}

/// One folder `f` (account `aid`) with one group holding one batch of `tags`.
pub fn one_group(
    aid: &str,
    kind: GroupKind,
    default: &str,
    groups: Vec<RuleGroup>,
    tags: Vec<Tag>,
) -> Catalog {
    Catalog {
        folders: vec![Folder {
            name: "f".into(),
            aid: aid.into(),
            groups: vec![Group {
                name: "g".into(),
                kind,
                default_response: default.into(),
                rule_groups: groups,
                batches: vec![Batch {
                    name: "b".into(),
                    tags,
                    ..Batch::default()
                }],
                ..Group::default()
            }],
            ..Folder::default()
        }],
    }
}

pub fn rg(rules: &[&str], response: &str) -> RuleGroup {
    RuleGroup {
        rules: rules.iter().map(|r| r.to_string()).collect(),
        response: response.into(),
    }
}

/// `n=…&e=…` of a genuine scan (default template) with the test key.
pub fn ne(ctr: u32) -> String {
    let mac = sdm_mac(&AesKey::new(KEY), None, Some(ctr), b"");
    format!("n={ctr:06X}&e={}", hex::encode_upper(mac))
}

/// An HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap()
}

/// Any request.
pub async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Resp {
    let mut r = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some((ctype, b)) = body {
        r = r.header("Content-Type", ctype).body(b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Resp {
        status,
        headers,
        text,
    }
}

/// `GET /v1/t?query`: the body text (asserting HTTP 200 and JSON).
pub async fn t(c: &reqwest::Client, base: &str, query: &str) -> String {
    let r = call(c, "GET", &format!("{base}/v1/t?{query}"), &[], None).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    r.text
}

/// `GET /auth?query`: the verification page.
pub async fn page(c: &reqwest::Client, base: &str, query: &str) -> Resp {
    call(c, "GET", &format!("{base}/auth?{query}"), &[], None).await
}

/// `query` with its last hex digit (of the MAC) changed.
pub fn altered(query: &str) -> String {
    let mut q = query.to_string();
    let last = q.pop().unwrap();
    q.push(if last == '0' { '1' } else { '0' });
    q
}

/// The catalog `tag424 serve --batch OUT` builds: folder "default" (account `local`, no token),
/// one authentication group answering `Pass` / `Fail`.
pub fn batch_catalog(out: &std::path::Path) -> Catalog {
    tag424::verifier::config::FlagFolder::default()
        .catalog(&[out.display().to_string()], None)
        .unwrap()
}
