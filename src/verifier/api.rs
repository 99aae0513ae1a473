//! HTTP routes: `GET /v1/t` (the platform's API: HTTP 200 and a JSON body, always),
//! `OPTIONS /v1/t` (CORS preflight), `GET /auth` (the landing page), `GET /healthz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::{page, Answer, Endpoint, Outcome, Request, Verifier};

/// Headers that may carry the API token (names are case-insensitive: `X-API-Key` and
/// `X-Api-Key` are the same header).
pub const TOKEN_HEADERS: [&str; 2] = ["x-api-key", "ixkio-r"];

/// The JSON body of `/v1/t`, fields in the platform's order.
#[derive(Serialize)]
pub struct ApiBody<'a> {
    pub xuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

impl<'a> ApiBody<'a> {
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
        }
    }
}

pub fn router(v: Arc<Verifier>) -> Router {
    Router::new()
        .route("/v1/t", get(api).options(preflight))
        .route("/auth", get(auth))
        .route("/healthz", get(healthz))
        .with_state(v)
}

fn request<'a>(
    endpoint: Endpoint,
    query: &'a Option<String>,
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
        query: query.as_deref().unwrap_or(""),
        header_tokens,
        remote: remote.to_string(),
    }
}

fn cors_value(v: &Verifier, a: &Answer) -> Option<HeaderValue> {
    let registry = v.registry();
    let cors = match a.folder.and_then(|f| registry.folders.get(f)) {
        Some(f) => &f.cors,
        None => &v.cors,
    };
    cors.header().and_then(|h| HeaderValue::from_str(h).ok())
}

async fn api(
    State(v): State<Arc<Verifier>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let req = request(Endpoint::Api, &query, &headers, remote);
    let a = v.handle(&req).await;
    let body = serde_json::to_vec(&ApiBody::of(&a)).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cors_value(&v, &a) {
        if c != "*" {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, c);
    }
    r
}

/// Preflight: allowed when the server-wide setting or any folder admits the origin.
async fn preflight(State(v): State<Arc<Verifier>>, headers: HeaderMap) -> Response<Body> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    let registry = v.registry();
    let settings = std::iter::once(&v.cors).chain(registry.folders.iter().map(|f| &f.cors));
    let mut allow: Option<String> = None;
    for c in settings {
        match c.header() {
            Some("*") => {
                allow = Some("*".into());
                break;
            }
            Some(o) if o == origin => allow = Some(o.to_string()),
            _ => {}
        }
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    if let Some(a) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("X-API-Key, Ixkio-R"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

async fn auth(
    State(v): State<Arc<Verifier>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let req = request(Endpoint::Auth, &query, &headers, remote);
    let a = v.handle(&req).await;
    let mut r = Response::new(Body::from(page::render(&a)));
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
    r
}

async fn healthz(State(v): State<Arc<Verifier>>) -> Response<Body> {
    let body = serde_json::json!({"status": "ok", "tags": v.registry().tag_count()}).to_string();
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
