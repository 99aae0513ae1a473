//! The local verifier (`tag424 serve`): the tag platform's verification API (`GET /v1/t`),
//! its management API, the landing page a tag's URL opens (`GET /auth`), and single-use,
//! forward-only counters that survive a crash.
//!
//! - [`query`]: the query string (`x`, `c`+`a`, `u`+`a`, `n`+`e`, `r`), never panicking,
//!   split and parsed once per request into a [`query::ScanRequest`].
//! - [`catalog`], [`config`], [`import`]: folders → tag groups → batches → tags, from
//!   `tag424 batch` output directories (template, journal), Associate Data files or a TOML file.
//! - [`registry`]: the catalog compiled in memory (Rule Sets, templates, per-tag state).
//! - `decide` (private), [`sunscan`], [`rules`], [`subtags`]: the decision for one request;
//!   the SUN check along the batch's template through [`crate::sun`]; Rule Sets; Dynamic
//!   Response.
//! - [`mgmt`]: the management API (PATCH a tag code's Default Response, status, CUID).
//! - [`store`]: persistence behind the [`store::Store`] trait (SQLite, PostgreSQL), and the
//!   group-commit [`store::Writer`].
//! - [`text`]: the one rule for free text (bounded, no control characters).
//! - [`api`], [`page`], [`server`], [`limits`]: axum routes, the HTML page, TLS, timeouts,
//!   connection cap and shutdown, rate limits; `http` (private): what the routes of `api` and
//!   `mgmt` share (`api` mounts `mgmt`; `mgmt` does not import `api`).
//!
//! The counter rule: a scan passes only if its SDMMAC verifies with the tag's key and its
//! counter is greater than every counter accepted before (the journal's read-back counter
//! included). Requests for one tag are serialized by the tag's lock, held until the store has
//! the new counter on disk; the store's own `WHERE excluded.ctr > counters.ctr` is the second
//! guard. Counters move only on a verified MAC.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

// The layers below, under the names every layer uses for them.
pub(crate) use tag424_core::{crypto, sun, tag_code};
pub(crate) use tag424_files as private_fs;
pub(crate) use tag424_provision as provision;

pub mod api;
pub mod catalog;
pub mod config;
mod decide;
mod headrefusal;
mod http;
pub mod import;
pub mod limits;
pub mod mgmt;
pub mod page;
pub mod query;
pub mod registry;
pub mod rules;
pub mod server;
pub mod store;
pub mod subtags;
pub mod sunscan;
pub mod text;
pub mod timefmt;
pub mod tlscert;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use catalog::{Catalog, CatalogError, Cors};
use registry::Registry;
use store::{Retention, ScanWrite, Store, StoreError, Writer};
use timefmt::now_ms;

/// Where a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /v1/t`
    Api,
    /// `GET /auth`
    Auth,
}

impl Endpoint {
    /// `api` or `auth`, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Api => "api",
            Endpoint::Auth => "auth",
        }
    }
}

/// Why an answer is what it is (logged with each scan, explained on the /auth page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// SDMMAC verified, counter new, counter on disk.
    Pass,
    /// A standard (not authentication) tag: its default response.
    Standard,
    /// An authentication tag asked without `n` and `e`.
    NoSun,
    /// `n`/`e` (or the template's parameters) present but not what a tag writes.
    BadSun,
    /// No key loaded for the tag.
    NoKey,
    /// The SDMMAC does not match.
    BadMac,
    /// This counter was accepted before.
    Replay,
    /// A greater counter was accepted before.
    OldCounter,
    /// The SUN message is genuine and was accepted before, and its counter is the tag's
    /// read limit (`batch --read-counter-limit`): the tag can give no newer one. Not a
    /// forgery (that is `bad_mac`); see docs/verifier.md.
    ReadLimit,
    /// The request was refused with an error code.
    Error,
}

impl Reason {
    /// The reason's code, as logged with each scan (`pass`, `bad_mac`, …).
    pub fn code(self) -> &'static str {
        match self {
            Reason::Pass => "pass",
            Reason::Standard => "standard",
            Reason::NoSun => "no_sun",
            Reason::BadSun => "bad_sun",
            Reason::NoKey => "no_key",
            Reason::BadMac => "bad_mac",
            Reason::Replay => "replay",
            Reason::OldCounter => "old_counter",
            Reason::ReadLimit => "read_limit",
            Reason::Error => "error",
        }
    }
}

/// Error codes of `{"xuid": …, "error": …}` (documented in docs/verifier.md).
pub mod errors {
    /// No `x`, no `c`/`u` with `a`, and no template parameters; or `c`/`u` without `a`.
    pub const MISSING_PARAMETER: &str = "missing_parameter";
    /// A lookup parameter repeated, badly encoded or not of its form, or the query too long.
    pub const MALFORMED_PARAMETER: &str = "malformed_parameter";
    /// No tag with this tag code (or template parameters that name no tag).
    pub const XUID_NOT_FOUND: &str = "xuid_not_found";
    /// No folder with this account id.
    pub const AID_NOT_FOUND: &str = "aid_not_found";
    /// The account has no tag with this custom id.
    pub const CUID_NOT_FOUND: &str = "cuid_not_found";
    /// The account has no tag with this UID.
    pub const UID_NOT_FOUND: &str = "uid_not_found";
    /// The folder has a token and the request does not carry exactly one matching one.
    pub const TOKEN_REFUSED: &str = "token_refused";
    /// The tag's folder is inactive.
    pub const FOLDER_INACTIVE: &str = "folder_inactive";
    /// The tag's tag group is inactive.
    pub const TG_INACTIVE: &str = "tg_inactive";
    /// The tag's batch is inactive.
    pub const BATCH_INACTIVE: &str = "batch_inactive";
    /// The tag code is inactive.
    pub const TAG_INACTIVE: &str = "tag_inactive";
    /// A pass could not be written to the store (the scan did not pass).
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// Over the rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A method other than GET, HEAD or OPTIONS on `/v1/t`.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// An unknown path under `/v1/`.
    pub const NOT_FOUND: &str = "not_found";
}

/// A response text or an error code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The response text to send.
    Response(String),
    /// An error code (see [`errors`]).
    Error(&'static str),
}

/// The verifier's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The tag code (empty when a `c`/`u` lookup found nothing or the token was refused).
    pub xuid: String,
    /// `("cuid", …)` or `("uid", …)` echoed on a response to a `c` or `u` lookup.
    pub echo: Option<(&'static str, String)>,
    /// The response text or the error code.
    pub outcome: Outcome,
    /// The scan passed: SDMMAC verified and the counter new and stored.
    pub passed: bool,
    /// Why the answer is what it is.
    pub reason: Reason,
    /// The folder the answer belongs to (for its CORS setting).
    pub folder: Option<usize>,
    /// The counter the request carried.
    pub ctr: Option<u32>,
    /// The last counter accepted for the tag before this request.
    pub last_ctr: Option<u32>,
    /// Answers about this tag so far, this one included (0 when no tag was found or the
    /// answer is an error code).
    pub scans: u64,
    /// Genuine scans of this tag so far, this one included.
    pub genuine: u64,
    /// Extended data: extra string keys of the answer.
    pub data: Vec<(String, String)>,
    /// What the `/auth` page may show of the tag (the log names it regardless).
    pub page_shows: PageShows,
    /// The tag's read limit (`batch --read-counter-limit`), when its batch has one.
    pub read_limit: Option<u32>,
}

/// What the `/auth` page shows of a known tag. The page needs no token, so for a folder with a
/// token it shows no more than the API answers without one, unless the SUN message is genuine
/// (the link was read from the tag itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageShows {
    /// Tag code, result and counts: the folder has no token, or the SUN message is genuine.
    Everything,
    /// The tag code only (the query named it with `x=`), not the result (which may hold
    /// `{cuid}`, `{uid}`, `{tagname}`) nor the counts.
    TagCode,
    /// Nothing of the tag: a CUID, UID or template lookup (the API names no tag code then).
    Verdict,
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
            genuine: 0,
            data: Vec::new(),
            page_shows: PageShows::Everything,
            read_limit: None,
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

/// Whether an answer about a known tag (a response, not an error code) counts as a scan of the
/// tag: its scan count (`{scount}`, `scan_count`) and the page's figures. Every API answer
/// counts, as the platform counts every answer of its API; a landing-page view counts only when
/// it passed (a tap: a genuine SUN message with a new counter), so page views without one
/// (no token needed) cannot move a rule's input. The scan log is counted by the same rule
/// ([`store::COUNTS_AS_SCAN`]).
pub fn counts_as_scan(endpoint: Endpoint, passed: bool) -> bool {
    passed || endpoint == Endpoint::Api
}

/// One request, as the HTTP layer hands it over.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Which endpoint the request came in on.
    pub endpoint: Endpoint,
    /// The query, split and parsed once.
    pub scan: &'a query::ScanRequest<'a>,
    /// Tokens from the `X-API-Key` / `Ixkio-R` headers.
    pub header_tokens: Vec<&'a str>,
    /// The client's IP address, as logged.
    pub remote: String,
}

/// Settings of a verifier (besides its catalog).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// CORS for answers that belong to no folder.
    pub cors: Cors,
    /// The management API's token (`None`: the management API answers 403 to everything).
    pub management_token: Option<String>,
    /// Scan log retention.
    pub retention: Retention,
}

/// The verifier: registry, server-wide CORS, and the store's writer.
pub struct Verifier {
    /// Swapped whole when another instance changed the stored catalog ([`Store::watch`]);
    /// each request works on the snapshot it started with.
    registry: Arc<std::sync::RwLock<Arc<Registry>>>,
    /// CORS for answers that belong to no folder.
    pub cors: Cors,
    /// The settings it was opened with.
    pub settings: Settings,
    writer: Writer,
    rate_limited: AtomicU64,
}

/// Why a verifier could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The catalog is not valid.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The query as logged: `r=` (a token) left out, at most `max` bytes.
pub fn logged_query(raw: &str, max: usize) -> String {
    let mut s = raw
        .split('&')
        .filter(|p| !p.starts_with("r="))
        .collect::<Vec<_>>()
        .join("&");
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Longest query logged for a scan of a known tag.
pub const LOGGED_QUERY: usize = 512;
/// Longest query logged for a rejected request (no tag: parameter errors, unknown tags).
pub const LOGGED_QUERY_REJECTED: usize = 64;

impl Verifier {
    /// Imports `catalog` into `store` (if given), loads everything and starts the writer.
    pub fn open<S: Store>(
        store: S,
        catalog: Option<&Catalog>,
        cors: Cors,
    ) -> Result<Verifier, VerifierError> {
        Verifier::open_with(
            store,
            catalog,
            Settings {
                cors,
                ..Settings::default()
            },
        )
    }

    /// [`Verifier::open`] with every setting.
    pub fn open_with<S: Store>(
        mut store: S,
        catalog: Option<&Catalog>,
        settings: Settings,
    ) -> Result<Verifier, VerifierError> {
        if let Some(c) = catalog {
            c.validate()?;
            store.import(c)?;
        }
        let loaded = store.load()?;
        let registry = Registry::build(&loaded)?;
        let registry = Arc::new(std::sync::RwLock::new(Arc::new(registry)));
        let cell = Arc::downgrade(&registry);
        store.watch(Arc::new(move |loaded: store::Loaded| {
            let Some(cell) = cell.upgrade() else { return };
            match Registry::build(&loaded) {
                Ok(r) => {
                    if let Ok(mut g) = cell.write() {
                        *g = Arc::new(r);
                    }
                }
                Err(e) => tracing::warn!(
                    "tag424 serve: another instance's catalog change does not hold together, kept the current one: {e}"
                ),
            }
        }))?;
        Ok(Verifier {
            registry,
            cors: settings.cors.clone(),
            writer: Writer::start_with(store, settings.retention),
            settings,
            rate_limited: AtomicU64::new(0),
        })
    }

    /// The catalog as served now.
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The store's writer: every write goes through it (its statistics are here too).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Commits what is queued and stops the store's writer (after the server has stopped).
    pub fn close(&self) {
        self.writer.close();
    }

    /// Answers one request; logs it; a Pass is on disk before this returns.
    pub async fn handle(&self, req: &Request<'_>) -> Answer {
        let (answer, logged) = self.decide(req).await;
        if !logged {
            let registry = self.registry();
            let tag = registry
                .tag(&answer.xuid)
                .filter(|_| !answer.xuid.is_empty());
            // Rejected requests are logged compactly.
            let max = if answer.scans > 0 {
                LOGGED_QUERY
            } else {
                LOGGED_QUERY_REJECTED
            };
            self.writer
                .log(ScanWrite {
                    time_ms: now_ms(),
                    endpoint: req.endpoint.as_str(),
                    query: logged_query(req.scan.raw(), max),
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

    /// Counts a request refused by the rate limit (not logged row by row).
    pub fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused by the rate limit so far.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
}
