//! The local verifier (`tag424 serve`): the tag platform's verification API (`GET /v1/t`),
//! the landing page a tag's URL opens (`GET /auth`), and single-use, forward-only counters
//! that survive a crash.
//!
//! - [`query`]: the query string (`x`, `c`+`a`, `u`+`a`, `n`+`e`, `r`), never panicking.
//! - [`catalog`], [`config`]: folders → tag groups → batches → tags, from `tag424 batch`
//!   output directories, CSV files or a TOML file.
//! - [`store`]: persistence behind the [`store::Store`] trait (SQLite), and the group-commit
//!   [`store::Writer`].
//! - [`Verifier`] (here): keys and counters in memory; the decision for one request.
//! - [`api`], [`page`], [`server`]: axum routes, the HTML page, TLS and shutdown.
//!
//! The counter rule: a scan passes only if its SDMMAC verifies with the tag's key and its
//! counter is greater than every counter accepted before. Requests for one tag are serialized
//! by the tag's lock, held until the store has the new counter on disk; the store's own
//! `WHERE excluded.ctr > counters.ctr` is the second guard.

pub mod api;
pub mod catalog;
pub mod config;
pub mod page;
pub mod query;
pub mod server;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use catalog::{Catalog, CatalogError, Cors, GroupKind};
use query::{Lookup, Query, Sun};
use store::{Claim, ScanWrite, Store, StoreError, Writer};

use crate::crypto::sdm::sdm_mac;
use crate::crypto::{ct_eq, AesKey};

/// Where a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v1/t`
    Api,
    /// `GET /auth`
    Auth,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Api => "api",
            Endpoint::Auth => "auth",
        }
    }
}

/// Why an answer is what it is (logged with each scan, explained on the /auth page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// SDMMAC verified, counter new, counter on disk.
    Pass,
    /// A standard (not authentication) tag: its default response.
    Standard,
    /// An authentication tag asked without `n` and `e`.
    NoSun,
    /// No key loaded for the tag.
    NoKey,
    /// The SDMMAC does not match.
    BadMac,
    /// This counter was accepted before.
    Replay,
    /// A greater counter was accepted before.
    OldCounter,
    /// The request was refused with an error code.
    Error,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Pass => "pass",
            Reason::Standard => "standard",
            Reason::NoSun => "no_sun",
            Reason::NoKey => "no_key",
            Reason::BadMac => "bad_mac",
            Reason::Replay => "replay",
            Reason::OldCounter => "old_counter",
            Reason::Error => "error",
        }
    }
}

/// Error codes of `{"xuid": …, "error": …}` (documented in docs/verifier.md).
pub mod errors {
    pub const MISSING_PARAMETER: &str = "missing_parameter";
    pub const MALFORMED_PARAMETER: &str = "malformed_parameter";
    pub const XUID_NOT_FOUND: &str = "xuid_not_found";
    pub const AID_NOT_FOUND: &str = "aid_not_found";
    pub const CUID_NOT_FOUND: &str = "cuid_not_found";
    pub const UID_NOT_FOUND: &str = "uid_not_found";
    pub const TOKEN_REFUSED: &str = "token_refused";
    pub const BATCH_INACTIVE: &str = "batch_inactive";
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
}

/// A response text or an error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(String),
    Error(&'static str),
}

/// The verifier's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The tag code (empty when a `c`/`u` lookup found nothing or the token was refused).
    pub xuid: String,
    /// `("cuid", …)` or `("uid", …)` echoed on a response to a `c` or `u` lookup.
    pub echo: Option<(&'static str, String)>,
    pub outcome: Outcome,
    pub passed: bool,
    pub reason: Reason,
    /// The folder the answer belongs to (for its CORS setting).
    pub folder: Option<usize>,
    /// The counter the request carried.
    pub ctr: Option<u32>,
    /// The last counter accepted for the tag before this request.
    pub last_ctr: Option<u32>,
    /// Scans of this tag so far, this one included (0 when no tag was found).
    pub scans: u64,
}

impl Answer {
    fn error(xuid: &str, code: &'static str, folder: Option<usize>) -> Answer {
        Answer {
            xuid: xuid.to_string(),
            echo: None,
            outcome: Outcome::Error(code),
            passed: false,
            reason: Reason::Error,
            folder,
            ctr: None,
            last_ctr: None,
            scans: 0,
        }
    }

    /// The `error` or `response` text.
    pub fn text(&self) -> &str {
        match &self.outcome {
            Outcome::Response(r) => r,
            Outcome::Error(e) => e,
        }
    }
}

/// A folder as served.
#[derive(Debug)]
pub struct FolderEntry {
    pub name: String,
    pub aid: String,
    pub token: Option<String>,
    pub cors: Cors,
}

/// A tag as served: its rules resolved, its key cached, its counter behind a lock.
pub struct TagEntry {
    pub xuid: String,
    pub folder: usize,
    pub kind: GroupKind,
    pub active: bool,
    key: Option<AesKey>,
    pub default_response: String,
    pub pass_response: String,
    /// The last accepted counter. Held across the durable write of a Pass.
    last_ctr: tokio::sync::Mutex<Option<u32>>,
    scans: AtomicU64,
}

/// The catalog in memory, indexed for the three lookups.
pub struct Registry {
    pub folders: Vec<FolderEntry>,
    by_xuid: HashMap<String, Arc<TagEntry>>,
    by_aid: HashMap<String, usize>,
    by_cuid: HashMap<(usize, String), Arc<TagEntry>>,
    by_uid: HashMap<(usize, [u8; 7]), Arc<TagEntry>>,
}

impl Registry {
    /// Builds the registry (checks the catalog first).
    pub fn build(
        catalog: &Catalog,
        counters: &HashMap<String, u32>,
        scan_counts: &HashMap<String, u64>,
    ) -> Result<Registry, CatalogError> {
        catalog.validate()?;
        let mut r = Registry {
            folders: Vec::new(),
            by_xuid: HashMap::new(),
            by_aid: HashMap::new(),
            by_cuid: HashMap::new(),
            by_uid: HashMap::new(),
        };
        for (fi, f) in catalog.folders.iter().enumerate() {
            r.folders.push(FolderEntry {
                name: f.name.clone(),
                aid: f.aid.clone(),
                token: f.token.clone(),
                cors: f.cors.clone(),
            });
            r.by_aid.insert(f.aid.clone(), fi);
            for g in &f.groups {
                for b in &g.batches {
                    for t in &b.tags {
                        let e = Arc::new(TagEntry {
                            xuid: t.xuid.clone(),
                            folder: fi,
                            kind: g.kind,
                            active: b.active,
                            key: t.key.clone(),
                            default_response: t
                                .default_response
                                .clone()
                                .unwrap_or_else(|| g.default_response.clone()),
                            pass_response: t
                                .pass_response
                                .clone()
                                .unwrap_or_else(|| g.pass_response.clone()),
                            last_ctr: tokio::sync::Mutex::new(counters.get(&t.xuid).copied()),
                            scans: AtomicU64::new(scan_counts.get(&t.xuid).copied().unwrap_or(0)),
                        });
                        if let Some(c) = &t.cuid {
                            r.by_cuid.insert((fi, c.clone()), e.clone());
                        }
                        if let Some(u) = t.uid {
                            r.by_uid.insert((fi, u), e.clone());
                        }
                        r.by_xuid.insert(t.xuid.clone(), e);
                    }
                }
            }
        }
        Ok(r)
    }

    pub fn tag_count(&self) -> usize {
        self.by_xuid.len()
    }

    pub fn tag(&self, xuid: &str) -> Option<&Arc<TagEntry>> {
        self.by_xuid.get(xuid)
    }
}

/// One request, as the HTTP layer hands it over.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub endpoint: Endpoint,
    /// The raw (percent-encoded) query string, without `?`.
    pub query: &'a str,
    /// Tokens from the `X-API-Key` / `Ixkio-R` headers.
    pub header_tokens: Vec<&'a str>,
    pub remote: String,
}

/// The verifier: registry, server-wide CORS, and the store's writer.
pub struct Verifier {
    /// Swapped whole when another instance changed the stored catalog ([`Store::watch`]);
    /// each request works on the snapshot it started with.
    registry: Arc<std::sync::RwLock<Arc<Registry>>>,
    /// CORS for answers that belong to no folder.
    pub cors: Cors,
    writer: Writer,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The SUN check of the default template (`x={xuid}&n={ctr}&e={mac}`): only the counter is
/// mirrored, so SV2 holds the counter and not the UID, and the MAC input is empty.
pub fn sun_mac_matches(key: &AesKey, sun: &Sun) -> bool {
    let mac = sdm_mac(key, None, Some(sun.ctr), b"");
    ct_eq(&mac, &sun.mac)
}

/// The query as logged: `r=` (a token) left out, at most 512 bytes.
fn logged_query(raw: &str) -> String {
    let mut s = raw
        .split('&')
        .filter(|p| !p.starts_with("r="))
        .collect::<Vec<_>>()
        .join("&");
    if s.len() > 512 {
        let mut end = 512;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Verifier {
    /// Imports `catalog` into `store` (if given), loads everything and starts the writer.
    pub fn open<S: Store>(
        mut store: S,
        catalog: Option<&Catalog>,
        cors: Cors,
    ) -> Result<Verifier, VerifierError> {
        if let Some(c) = catalog {
            c.validate()?;
            store.import(c)?;
        }
        let loaded = store.load()?;
        let registry = Registry::build(&loaded.catalog, &loaded.counters, &loaded.scan_counts)?;
        let registry = Arc::new(std::sync::RwLock::new(Arc::new(registry)));
        let cell = Arc::downgrade(&registry);
        store.watch(Arc::new(move |loaded: store::Loaded| {
            let Some(cell) = cell.upgrade() else { return };
            match Registry::build(&loaded.catalog, &loaded.counters, &loaded.scan_counts) {
                Ok(r) => {
                    if let Ok(mut g) = cell.write() {
                        *g = Arc::new(r);
                    }
                }
                Err(e) => eprintln!(
                    "tag424 serve: another instance's catalog change does not hold together, kept the current one: {e}"
                ),
            }
        }))?;
        Ok(Verifier {
            registry,
            cors,
            writer: Writer::start(store),
        })
    }

    /// The catalog as served now.
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Commits what is queued and stops the store's writer (after the server has stopped).
    pub fn close(&self) {
        self.writer.close();
    }

    /// Answers one request; logs it; a Pass is on disk before this returns.
    pub async fn handle(&self, req: &Request<'_>) -> Answer {
        let (mut answer, logged) = self.decide(req).await;
        if !logged {
            // Pass scans were logged by their claim; log the rest (durable with the next group).
            let registry = self.registry();
            let tag = registry
                .tag(&answer.xuid)
                .filter(|_| !answer.xuid.is_empty());
            if let Some(t) = tag {
                answer.scans = t.scans.fetch_add(1, Ordering::Relaxed) + 1;
            }
            self.writer
                .log(ScanWrite {
                    time_ms: now_ms(),
                    endpoint: req.endpoint.as_str(),
                    query: logged_query(req.query),
                    xuid: tag.map(|t| t.xuid.clone()).unwrap_or_default(),
                    ctr: answer.ctr,
                    result: answer.text().to_string(),
                    reason: answer.reason.code(),
                    remote: req.remote.clone(),
                    claim: None,
                })
                .await;
        }
        answer
    }

    async fn decide(&self, req: &Request<'_>) -> (Answer, bool) {
        let q: Query = match query::parse(req.query) {
            Ok(q) => q,
            Err(e) => return (Answer::error("", e.code(), None), false),
        };
        let reg = &*self.registry();
        // Lookup.
        let (tag, echo) = match &q.lookup {
            Lookup::Xuid(x) => match reg.by_xuid.get(x) {
                Some(t) => (t, None),
                None => return (Answer::error(x, errors::XUID_NOT_FOUND, None), false),
            },
            Lookup::Cuid { cuid, aid } => {
                let Some(&fi) = reg.by_aid.get(aid) else {
                    return (Answer::error("", errors::AID_NOT_FOUND, None), false);
                };
                match reg.by_cuid.get(&(fi, cuid.clone())) {
                    Some(t) => (t, Some(("cuid", cuid.clone()))),
                    None => return (Answer::error("", errors::CUID_NOT_FOUND, Some(fi)), false),
                }
            }
            Lookup::Uid { uid, aid } => {
                let Some(&fi) = reg.by_aid.get(aid) else {
                    return (Answer::error("", errors::AID_NOT_FOUND, None), false);
                };
                match reg.by_uid.get(&(fi, *uid)) {
                    Some(t) => (t, Some(("uid", hex::encode_upper(uid)))),
                    None => return (Answer::error("", errors::UID_NOT_FOUND, Some(fi)), false),
                }
            }
        };
        let folder = &reg.folders[tag.folder];
        // The token protects the API; the /auth page is the tag's own URL and needs none.
        if let (Endpoint::Api, Some(want)) = (req.endpoint, &folder.token) {
            let given = q
                .token
                .as_deref()
                .into_iter()
                .chain(req.header_tokens.iter().copied());
            let mut ok = false;
            for g in given {
                ok |= g.len() == want.len() && ct_eq(g.as_bytes(), want.as_bytes());
            }
            if !ok {
                let x = if echo.is_none() {
                    tag.xuid.as_str()
                } else {
                    ""
                };
                return (
                    Answer::error(x, errors::TOKEN_REFUSED, Some(tag.folder)),
                    false,
                );
            }
        }
        let mut a = Answer {
            xuid: tag.xuid.clone(),
            echo,
            outcome: Outcome::Response(tag.default_response.clone()),
            passed: false,
            reason: Reason::Standard,
            folder: Some(tag.folder),
            ctr: q.sun.map(|s| s.ctr),
            last_ctr: None,
            scans: 0,
        };
        if !tag.active {
            a.outcome = Outcome::Error(errors::BATCH_INACTIVE);
            a.reason = Reason::Error;
            a.echo = None;
            return (a, false);
        }
        if tag.kind == GroupKind::Standard {
            return (a, false);
        }
        let Some(sun) = q.sun else {
            a.reason = Reason::NoSun;
            return (a, false);
        };
        let Some(key) = &tag.key else {
            a.reason = Reason::NoKey;
            return (a, false);
        };
        if !sun_mac_matches(key, &sun) {
            a.reason = Reason::BadMac;
            return (a, false);
        }
        // One request per tag from here until its counter is on disk.
        let mut last = tag.last_ctr.lock().await;
        a.last_ctr = *last;
        if let Some(l) = *last {
            if sun.ctr <= l {
                a.reason = if sun.ctr == l {
                    Reason::Replay
                } else {
                    Reason::OldCounter
                };
                return (a, false);
            }
        }
        let claim = ScanWrite {
            time_ms: now_ms(),
            endpoint: req.endpoint.as_str(),
            query: logged_query(req.query),
            xuid: tag.xuid.clone(),
            ctr: Some(sun.ctr),
            result: tag.pass_response.clone(),
            reason: Reason::Pass.code(),
            remote: req.remote.clone(),
            claim: Some(Claim {
                ctr: sun.ctr,
                refused_result: tag.default_response.clone(),
            }),
        };
        match self.writer.claim(claim).await {
            Ok(true) => {
                *last = Some(sun.ctr);
                a.scans = tag.scans.fetch_add(1, Ordering::Relaxed) + 1;
                a.outcome = Outcome::Response(tag.pass_response.clone());
                a.passed = true;
                a.reason = Reason::Pass;
            }
            Ok(false) => {
                // The store holds a newer counter than memory (it logged the scan as refused).
                a.scans = tag.scans.fetch_add(1, Ordering::Relaxed) + 1;
                a.reason = Reason::Replay;
                return (a, true);
            }
            Err(_) => {
                a.outcome = Outcome::Error(errors::STORE_UNAVAILABLE);
                a.reason = Reason::Error;
                a.echo = None;
                return (a, false);
            }
        }
        (a, true)
    }
}
