//! The management API over HTTP: the routes' handlers (rate limit, method, bounded body) and
//! the answer's headers (`X-Correlation-Id`, `api-supported-versions`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use super::answer::{err, MgmtBody, Named};
use super::{Target, MAX_BODY};
use crate::errors;
use crate::http::{json_response, rate_check, rate_headers, App, AppState};

/// A management API answer with its headers.
fn mgmt_response(status: StatusCode, body: MgmtBody, headers: &HeaderMap) -> Response<Body> {
    let mut r = json_response(serde_json::to_vec(&body).unwrap_or_default(), None);
    *r.status_mut() = status;
    let id = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(new_correlation_id);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-correlation-id"), v);
    }
    h.insert(
        HeaderName::from_static("api-supported-versions"),
        HeaderValue::from_static("1"),
    );
    r
}

/// A random GUID (version 4 layout).
fn new_correlation_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn mgmt(
    app: &App,
    target: Target<'_>,
    method: Method,
    remote: SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let named = Named::of(&target, &headers);
    if let Some(Err(info)) = rate_check(app, remote, None, &headers) {
        app.verifier.count_rate_limited();
        let (status, body) = named.error(err(
            StatusCode::TOO_MANY_REQUESTS,
            errors::RATE_LIMITED,
            "too many requests: wait until X-Rate-Limit-Reset",
        ));
        let mut r = mgmt_response(status, body, &headers);
        rate_headers(&mut r, &info);
        return r;
    }
    if method != Method::PATCH {
        let (status, body) = named.error(err(
            StatusCode::METHOD_NOT_ALLOWED,
            errors::METHOD_NOT_ALLOWED,
            "the management API takes PATCH",
        ));
        let mut r = mgmt_response(status, body, &headers);
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("PATCH"));
        return r;
    }
    // The body within the header timeout and MAX_BODY bytes: a client sending it slowly (or
    // not at all) does not hold the connection and this task.
    let body =
        match tokio::time::timeout(app.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                let (status, body) = named.error(err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad_request",
                    format!("the body is over {MAX_BODY} bytes, or broken off"),
                ));
                return mgmt_response(status, body, &headers);
            }
            Err(_) => {
                let (status, body) = named.error(err(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the body did not arrive within the header timeout",
                ));
                let mut r = mgmt_response(status, body, &headers);
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        };
    let (status, body) = app
        .verifier
        .patch(target, &headers, &body, &remote.ip().to_string())
        .await;
    mgmt_response(status, body, &headers)
}

pub(crate) async fn mgmt_x(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(xuid): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    mgmt(&app, Target::Xuid(&xuid), method, remote, headers, body).await
}

pub(crate) async fn mgmt_a(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(aid): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    mgmt(&app, Target::Aid(&aid), method, remote, headers, body).await
}
