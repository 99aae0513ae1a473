//! What the verifier's HTTP handlers share, the verification API's ([`super::api`]) and the
//! management API's ([`super::mgmt`]): the handlers' state, JSON answers, the rate-limit check
//! and its headers, the headers that carry a token. Both import it; neither imports the
//! other's handlers except the router ([`super::api::router`]), which mounts the management
//! API's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response};

use super::limits::{RateInfo, RateLimits};
use super::query;
use super::Verifier;

/// Headers that may carry the API token (names are case-insensitive: `X-API-Key` and
/// `X-Api-Key` are the same header).
pub const TOKEN_HEADERS: [&str; 2] = ["x-api-key", "ixkio-r"];

/// What the handlers share.
pub struct App {
    /// The verifier.
    pub verifier: Arc<Verifier>,
    /// Per-client rate limits (`None`: no limit).
    pub rate: Option<RateLimits>,
    /// Time allowed for a request's body (the management API's), as for its head.
    pub body_timeout: std::time::Duration,
}

pub(super) type AppState = State<Arc<App>>;

pub(super) fn json_response(body: Vec<u8>, cors: Option<HeaderValue>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cors {
        if c != "*" {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, c);
    }
    r
}

pub(super) fn rate_headers(r: &mut Response<Body>, info: &RateInfo) {
    let h = r.headers_mut();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    };
    put("x-rate-limit-limit", &info.limit);
    put("x-rate-limit-remaining", &info.remaining.to_string());
    put("x-rate-limit-reset", &info.reset);
}

/// The rate-limit check of a request: its token is the query's `r=` (`query_token`, raw) or
/// else a token header, counted per token only when it is a token this server has (a
/// folder's, or the management API's): the per-token table then never holds more keys than
/// there are tokens, whatever clients send. A wrong token is refused by the decision; the
/// per-address limit still counts it.
pub(super) fn rate_check(
    app: &App,
    remote: SocketAddr,
    query_token: Option<&str>,
    headers: &HeaderMap,
) -> Option<Result<RateInfo, RateInfo>> {
    let rl = app.rate.as_ref()?;
    let token = query_token
        .or_else(|| {
            TOKEN_HEADERS
                .iter()
                .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        })
        .filter(|t| query::valid_token(t) && known_token(&app.verifier, t));
    Some(rl.check(remote.ip(), token))
}

/// Whether `t` is a folder's API token or the management token (compared in constant time).
fn known_token(v: &Verifier, t: &str) -> bool {
    let registry = v.registry();
    let mut known = false;
    let folder_tokens = registry.folders.iter().filter_map(|f| f.token.as_deref());
    for want in folder_tokens.chain(v.settings.management_token.as_deref()) {
        known |= crate::crypto::ct_eq(want.as_bytes(), t.as_bytes());
    }
    known
}
