//! HTTP routes (the management API's handlers are in `mgmt`). The verification API (`/v1/t`
//! and anything else under `/v1/` that is not the management API) answers **HTTP 200 and a
//! JSON body** to every request, as the platform does: `GET` verifies, `HEAD` answers the
//! headers and consumes nothing, `OPTIONS` answers the CORS preflight, other methods get
//! `method_not_allowed`, unknown paths `not_found`. The management API
//! (`PATCH /v1/x/{xuid}`, `PATCH /v1/a/{aid}`) uses HTTP status codes. `GET /auth` is the
//! landing page, `GET /healthz` the health check.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::Serialize;

use super::http::{json_response, rate_check, rate_headers, AppState};
use super::limits::{Limits, RateLimits};
use super::query::ScanRequest;
use super::{errors, mgmt, page, Answer, Endpoint, Outcome, Request, Verifier};

pub use super::http::{App, TOKEN_HEADERS};

/// The JSON body of `/v1/t`, fields in the platform's order; extended data after them.
pub struct ApiBody<'a> {
    /// The tag code (`""` when none is revealed).
    pub xuid: &'a str,
    /// The lookup's custom id, echoed on a `c` lookup.
    pub cuid: Option<&'a str>,
    /// The lookup's UID, echoed on a `u` lookup.
    pub uid: Option<&'a str>,
    /// The response text (when not an error).
    pub response: Option<&'a str>,
    /// The error code (when an error).
    pub error: Option<&'a str>,
    /// Extended data: extra string keys, after the fixed ones.
    pub data: &'a [(String, String)],
}

impl Serialize for ApiBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("xuid", self.xuid)?;
        for (k, v) in [
            ("cuid", self.cuid),
            ("uid", self.uid),
            ("response", self.response),
            ("error", self.error),
        ] {
            if let Some(v) = v {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.data {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'a> ApiBody<'a> {
    /// The body of an answer.
    pub fn of(a: &'a Answer) -> ApiBody<'a> {
        let echo = |k: &str| {
            a.echo
                .as_ref()
                .filter(|(name, _)| *name == k)
                .map(|(_, v)| v.as_str())
        };
        let (response, error) = match &a.outcome {
            Outcome::Response(r) => (Some(r.as_str()), None),
            Outcome::Error(e) => (None, Some(*e)),
        };
        ApiBody {
            xuid: &a.xuid,
            cuid: echo("cuid"),
            uid: echo("uid"),
            response,
            error,
            data: &a.data,
        }
    }
}

/// The routes, with no rate limit.
pub fn router(v: Arc<Verifier>) -> Router {
    router_with(v, &Limits::default())
}

/// The routes with `limits`' rate limit.
pub fn router_with(v: Arc<Verifier>, limits: &Limits) -> Router {
    let app = Arc::new(App {
        verifier: v,
        rate: RateLimits::new(limits),
        body_timeout: limits.header_timeout,
    });
    Router::new()
        .route(
            "/v1/t",
            get(api)
                .head(api_head)
                .options(preflight)
                .fallback(api_other),
        )
        .route("/v1/x/{xuid}", any(mgmt::mgmt_x))
        .route("/v1/a/{aid}", any(mgmt::mgmt_a))
        .route("/v1/{*rest}", any(api_other))
        .route("/v1/", any(api_other))
        .route("/v1", any(api_other))
        .route("/auth", get(auth).head(auth_head))
        .route("/healthz", get(healthz))
        .with_state(app)
}

fn request<'a>(
    endpoint: Endpoint,
    scan: &'a ScanRequest<'a>,
    headers: &'a HeaderMap,
    remote: SocketAddr,
) -> Request<'a> {
    let header_tokens = TOKEN_HEADERS
        .iter()
        .flat_map(|h| headers.get_all(*h).iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    Request {
        endpoint,
        scan,
        header_tokens,
        remote: remote.ip().to_string(),
    }
}

fn cors_value(v: &Verifier, folder: Option<usize>) -> Option<HeaderValue> {
    let registry = v.registry();
    let cors = match folder.and_then(|f| registry.folders.get(f)) {
        Some(f) => &f.cors,
        None => &v.cors,
    };
    cors.header().and_then(|h| HeaderValue::from_str(h).ok())
}

/// An error answer of the verification API (HTTP 200), echoing the query's lookup id.
fn api_error(v: &Verifier, xuid: &str, code: &str, scan: &ScanRequest<'_>) -> Response<Body> {
    let echo = scan.echo();
    let id = |k: &str| {
        echo.as_ref()
            .filter(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    };
    let a = ApiBody {
        xuid,
        cuid: id("cuid"),
        uid: id("uid"),
        response: None,
        error: Some(code),
        data: &[],
    };
    json_response(
        serde_json::to_vec(&a).unwrap_or_default(),
        cors_value(v, None),
    )
}

/// The headers and body of the error answer naming no tag (an error with an empty query, as
/// [`api_error`] makes it), for an answer made outside the routes: a request head over the
/// bound ([`super::headrefusal`]).
pub(super) fn unrouted_error(v: &Verifier, code: &str) -> (HeaderMap, Vec<u8>) {
    let a = ApiBody {
        xuid: "",
        cuid: None,
        uid: None,
        response: None,
        error: Some(code),
        data: &[],
    };
    let body = serde_json::to_vec(&a).unwrap_or_default();
    let headers = json_response(Vec::new(), cors_value(v, None))
        .headers()
        .clone();
    (headers, body)
}

async fn api(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let v = &app.verifier;
    let scan = ScanRequest::parse(query.as_deref().unwrap_or(""));
    let rate = rate_check(&app, remote, scan.token(), &headers);
    if let Some(Err(info)) = &rate {
        v.count_rate_limited();
        let x = scan.xuid().unwrap_or_default();
        let mut r = api_error(v, &x, errors::RATE_LIMITED, &scan);
        rate_headers(&mut r, info);
        return r;
    }
    let req = request(Endpoint::Api, &scan, &headers, remote);
    let a = v.handle(&req).await;
    let body = serde_json::to_vec(&ApiBody::of(&a)).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = json_response(body, cors_value(v, a.folder));
    if let Some(Ok(info)) = &rate {
        rate_headers(&mut r, info);
    }
    r
}

/// `HEAD /v1/t`: the headers a GET would carry; nothing is looked up for good, nothing
/// consumed (a link previewer or monitor does not burn the tag's next counter).
async fn api_head(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let v = &app.verifier;
    let scan = ScanRequest::parse(query.as_deref().unwrap_or(""));
    // Looking a tag up costs as much as a GET's lookup: HEAD counts against the rate limit.
    let rate = rate_check(&app, remote, scan.token(), &headers);
    let folder = match &rate {
        Some(Err(_)) => None,
        _ => v.peek_folder(&scan),
    };
    let mut r = json_response(Vec::new(), cors_value(v, folder));
    if let Some(Ok(info) | Err(info)) = &rate {
        rate_headers(&mut r, info);
    }
    r
}

/// Other methods on `/v1/t`, and unknown paths under `/v1/`: HTTP 200 with an error code.
async fn api_other(State(app): AppState, method: Method, uri: axum::http::Uri) -> Response<Body> {
    let code = if uri.path() == "/v1/t" && method != Method::GET {
        errors::METHOD_NOT_ALLOWED
    } else {
        errors::NOT_FOUND
    };
    api_error(&app.verifier, "", code, &ScanRequest::parse(""))
}

/// Preflight (HTTP 200, body `{"xuid":""}`): the origin is allowed when the tag the query
/// names is in a folder that allows it; for a query naming no tag, when one folder (or the
/// server-wide setting) names exactly that origin, or the server-wide setting is `*`.
async fn preflight(
    State(app): AppState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let v = &app.verifier;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    let registry = v.registry();
    let scan = ScanRequest::parse(query.as_deref().unwrap_or(""));
    let allow: Option<String> = match v.peek_folder(&scan) {
        Some(f) => match registry.folders.get(f).and_then(|f| f.cors.header()) {
            Some("*") => Some("*".into()),
            Some(o) if o == origin => Some(o.into()),
            _ => None,
        },
        None => {
            let named = registry.folders.iter().map(|f| &f.cors).chain([&v.cors]);
            let mut allow = None;
            for c in named {
                if c.header() == Some(origin) && !origin.is_empty() && origin != "*" {
                    allow = Some(origin.to_string());
                }
            }
            if v.cors.header() == Some("*") {
                allow = Some("*".into());
            }
            allow
        }
    };
    // HTTP 200 with a JSON body, as every answer of the verification API (a preflight
    // names no tag for good: `"xuid"` is empty, nothing is revealed without the token).
    let body = serde_json::to_vec(&ApiBody {
        xuid: "",
        cuid: None,
        uid: None,
        response: None,
        error: None,
        data: &[],
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    let mut r = json_response(body, None);
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(a) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("X-API-Key, Ixkio-R"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    r
}

fn page_headers(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn auth(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let v = &app.verifier;
    let scan = ScanRequest::parse(query.as_deref().unwrap_or(""));
    if let Some(Err(info)) = rate_check(&app, remote, scan.token(), &headers) {
        v.count_rate_limited();
        let mut r = Response::new(Body::from(page::render_busy()));
        page_headers(&mut r);
        rate_headers(&mut r, &info);
        return r;
    }
    let req = request(Endpoint::Auth, &scan, &headers, remote);
    let a = v.handle(&req).await;
    let mut r = Response::new(Body::from(page::render(&a)));
    page_headers(&mut r);
    r
}

/// `HEAD /auth`: headers only; the scan is not consumed.
async fn auth_head() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    page_headers(&mut r);
    r
}

async fn healthz(State(app): AppState) -> Response<Body> {
    let v = &app.verifier;
    let body = serde_json::json!({
        "status": "ok",
        "tags": v.registry().tag_count(),
        "rate_limited": v.rate_limited(),
    })
    .to_string();
    json_response(body.into_bytes(), None)
}
