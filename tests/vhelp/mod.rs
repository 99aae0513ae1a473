//! Shared helpers of the verifier's HTTP suites (conformance, rules, management, abuse,
//! templates): a server on a given store, a catalog builder, an HTTP call that returns
//! status, headers and body, and genuine scans of the default template.
//!
//! The store is SQLite in a temporary directory; `TAG424_TEST_STORE` selects another backend
//! where one is implemented (see `store()`).
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Folder, Group, GroupKind, RuleGroup, Tag};
use tag424::verifier::limits::Limits;
use tag424::verifier::server::{self, Running};
use tag424::verifier::store::SqliteStore;
use tag424::verifier::{Settings, Verifier};

pub const KEY: [u8; 16] = [0x5A; 16];

/// A running server and what keeps its store alive.
pub struct Srv {
    pub running: Option<Running>,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Srv {
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop(Duration::from_secs(5)).await.unwrap();
        }
    }

    pub fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("v.db")
    }
}

/// Starts a verifier for `cat` on a fresh store.
pub fn start(cat: &Catalog, settings: Settings, limits: Limits) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("v.db")).unwrap();
    let v = Verifier::open_with(store, Some(cat), settings).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let running = server::spawn_with(Arc::new(v), l, None, limits).unwrap();
    let base = format!("http://{}", running.addr);
    Srv {
        running: Some(running),
        base,
        dir,
    }
}

/// Starts with default settings and limits.
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
