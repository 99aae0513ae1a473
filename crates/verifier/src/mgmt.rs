//! The management API (local), as platform.md §5 has it: `PATCH /v1/x/{xuid}`, or
//! `PATCH /v1/a/{aid}` with an `ix_c: {cuid}` or `ix_u: {uid}` header. Body fields (form
//! encoded or JSON): `ix_dr` (the Tag Code's Default Response; empty reverts to the tag
//! group's rules), `ix_status` (`Active`/`Inactive`), `ix_cuid`. Its own token in `X-API-Key`
//! (same as `X-Api-Key`) or `Ixkio-R`. Unlike `/v1/t` it answers with HTTP status codes;
//! every answer is JSON and carries `X-Correlation-Id` (the request's, or a new one) and
//! `api-supported-versions: 1`. Changes are persisted (one transaction) and logged.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use super::errors;
use super::http::{json_response, rate_check, rate_headers, App, AppState, TOKEN_HEADERS};
use serde_json::{Map, Value};

use super::import::parse_status;
use super::query::{self, parse_uid, valid_cuid};
use super::registry::{Registry, TagEntry};
use super::store::TagPatch;
use super::subtags;
use super::timefmt::now_ms;
use super::Verifier;
use crate::crypto::ct_eq;
use std::sync::Arc;

/// Most bytes of a management request's body (its fields are a few short strings).
pub const MAX_BODY: usize = 64 * 1024;

/// How the tag is named.
pub enum Target<'a> {
    /// `/v1/x/{xuid}`: the tag code.
    Xuid(&'a str),
    /// `/v1/a/{aid}`: an account id; the `ix_c` (CUID) or `ix_u` (UID) header names the tag.
    Aid(&'a str),
}

/// A management answer's JSON body: its keys in order (`xuid` first, then the lookup id
/// `cuid` or `uid`, then the fields in the platform's order), serialized in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MgmtBody(pub Vec<(&'static str, Value)>);

impl MgmtBody {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl serde::Serialize for MgmtBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A management answer: status and JSON body.
pub type MgmtAnswer = (StatusCode, MgmtBody);

/// A refused management request: status, error code and its own message (the answer's
/// text); when a typed error is the cause (a Default Response that does not compile, the
/// store's failure), it is kept as the source.
#[derive(Debug)]
pub struct MgmtError {
    status: StatusCode,
    code: &'static str,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for MgmtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MgmtError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl MgmtError {
    /// The same refusal, with `e` as its cause.
    fn because(mut self, e: impl std::error::Error + Send + Sync + 'static) -> MgmtError {
        self.source = Some(Box::new(e));
        self
    }
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> MgmtError {
    MgmtError {
        status,
        code,
        message: message.into(),
        source: None,
    }
}

/// `ix_dr`: empty reverts to the tag group's rules (`None`), else a Default Response that
/// compiles; the refusal keeps the response's typed error as its source.
fn default_response_field(v: &str) -> Result<Option<String>, MgmtError> {
    let bad = |m: String| err(StatusCode::BAD_REQUEST, "bad_request", m);
    if v.is_empty() {
        return Ok(None);
    }
    if v.trim().is_empty() {
        return Err(bad(
            "ix_dr: only spaces; a Default Response needs text (send ix_dr= empty to revert to the tag group's rules)".into(),
        ));
    }
    match subtags::Response::parse(v) {
        Ok(_) => Ok(Some(v.to_string())),
        Err(e) => Err(bad(format!("ix_dr: {e}")).because(e)),
    }
}

/// Who a request names before its lookup: the tag code of `/v1/x/{xuid}` (when it is one)
/// and the lookup id of `/v1/a/{aid}` (`ix_c` as `cuid`, `ix_u` as `uid`), echoed on every
/// answer as `/v1/t` echoes them.
struct Named {
    xuid: String,
    echo: Option<(&'static str, String)>,
}

impl Named {
    fn of(target: &Target<'_>, headers: &HeaderMap) -> Named {
        match *target {
            Target::Xuid(x) => Named {
                xuid: if query::valid_xuid(x) {
                    x.to_string()
                } else {
                    String::new()
                },
                echo: None,
            },
            Target::Aid(_) => Named {
                xuid: String::new(),
                echo: match (header(headers, "ix_c"), header(headers, "ix_u")) {
                    (Some(c), _) if valid_cuid(c) => Some(("cuid", c.to_string())),
                    (None, Some(u)) if parse_uid(u).is_some() => Some(("uid", u.to_string())),
                    _ => None,
                },
            },
        }
    }

    fn head(&self) -> Vec<(&'static str, Value)> {
        let mut v = vec![("xuid", Value::String(self.xuid.clone()))];
        if let Some((k, id)) = &self.echo {
            v.push((k, Value::String(id.clone())));
        }
        v
    }

    fn error(&self, e: MgmtError) -> MgmtAnswer {
        let mut v = self.head();
        v.push(("error", Value::String(e.code.to_string())));
        v.push(("message", Value::String(e.message)));
        (e.status, MgmtBody(v))
    }
}

/// The body's fields, from a form or a JSON object of strings.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, MgmtError> {
    let ctype = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |m: &str| err(StatusCode::BAD_REQUEST, "bad_request", m);
    if ctype.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad("the body must be a JSON object of strings")),
        }
    } else if ctype.starts_with("application/x-www-form-urlencoded") || body.is_empty() {
        let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
        let mut m = Map::new();
        for (k, v) in query::pairs(text) {
            let k = query::percent_decode(k).ok_or_else(|| bad("bad percent-encoding"))?;
            let v = query::percent_decode(v).ok_or_else(|| bad("bad percent-encoding"))?;
            if m.insert(k.clone(), Value::String(v)).is_some() {
                return Err(bad(&format!("{k} is given twice")));
            }
        }
        Ok(m)
    } else {
        Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/x-www-form-urlencoded or application/json",
        ))
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Verifier {
    fn mgmt_token_ok(&self, headers: &HeaderMap) -> Result<(), MgmtError> {
        let Some(want) = &self.settings.management_token else {
            return Err(err(
                StatusCode::FORBIDDEN,
                "management_disabled",
                "the management API is off: start serve with --management-token",
            ));
        };
        let given: Vec<&str> = TOKEN_HEADERS
            .iter()
            .flat_map(|h| headers.get_all(*h).iter())
            .filter_map(|v| v.to_str().ok())
            .collect();
        match given.as_slice() {
            [g] if g.len() == want.len() && ct_eq(g.as_bytes(), want.as_bytes()) => Ok(()),
            _ => Err(err(
                StatusCode::UNAUTHORIZED,
                "token_refused",
                "exactly one X-API-Key or Ixkio-R header with the management token",
            )),
        }
    }

    fn mgmt_tag(
        &self,
        reg: &Registry,
        target: &Target<'_>,
        headers: &HeaderMap,
    ) -> Result<Arc<TagEntry>, MgmtError> {
        let nf = |code, message: String| err(StatusCode::NOT_FOUND, code, message);
        match *target {
            Target::Xuid(x) => reg.tag(x).cloned().ok_or_else(|| {
                nf(
                    errors::XUID_NOT_FOUND,
                    if query::valid_xuid(x) {
                        format!("no tag has the tag code {x}")
                    } else {
                        "no tag has this tag code (letters, digits, - and _, up to 64)".into()
                    },
                )
            }),
            Target::Aid(aid) => {
                let fi = *reg.by_aid.get(aid).ok_or_else(|| {
                    nf(
                        errors::AID_NOT_FOUND,
                        if query::valid_aid(aid) {
                            format!("no folder has the account id {aid}")
                        } else {
                            "no folder has this account id (letters, digits, - and _, up to 64)"
                                .into()
                        },
                    )
                })?;
                if let Some(c) = header(headers, "ix_c") {
                    return reg.by_cuid(fi, c).ok_or_else(|| {
                        nf(
                            errors::CUID_NOT_FOUND,
                            format!(
                                "account {aid} has no tag with this CUID (ix_c; CUIDs are case-sensitive)"
                            ),
                        )
                    });
                }
                if let Some(u) = header(headers, "ix_u") {
                    let uid = parse_uid(u).ok_or_else(|| {
                        err(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            "ix_u: 14 uppercase hex digits",
                        )
                    })?;
                    return reg.by_uid.get(&(fi, uid)).cloned().ok_or_else(|| {
                        nf(
                            errors::UID_NOT_FOUND,
                            format!("account {aid} has no tag with the UID {u}"),
                        )
                    });
                }
                Err(err(
                    StatusCode::BAD_REQUEST,
                    "missing_parameter",
                    "PATCH /v1/a/{aid} needs an ix_c or ix_u header",
                ))
            }
        }
    }

    /// Applies one management PATCH.
    pub async fn patch(
        &self,
        target: Target<'_>,
        headers: &HeaderMap,
        body: &[u8],
        remote: &str,
    ) -> MgmtAnswer {
        let mut named = Named::of(&target, headers);
        match self
            .patch_inner(target, headers, body, remote, &mut named)
            .await
        {
            Ok(tag) => (StatusCode::OK, named.tag_body(&tag)),
            Err(e) => named.error(e),
        }
    }

    /// The change; returns the tag changed (its state after the change).
    async fn patch_inner(
        &self,
        target: Target<'_>,
        headers: &HeaderMap,
        body: &[u8],
        remote: &str,
        named: &mut Named,
    ) -> Result<Arc<TagEntry>, MgmtError> {
        self.mgmt_token_ok(headers)?;
        let registry = self.registry();
        let reg = &*registry;
        let tag = self.mgmt_tag(reg, &target, headers)?;
        // Found (and the token given): the answers name the tag.
        named.xuid = tag.xuid.clone();
        let tag = &*tag;
        let f = fields(headers, body)?;
        let bad = |m: String| err(StatusCode::BAD_REQUEST, "bad_request", m);
        let mut patch = TagPatch {
            xuid: tag.xuid.clone(),
            remote: remote.to_string(),
            time_ms: now_ms(),
            ..TagPatch::default()
        };
        for (k, v) in &f {
            let Some(v) = v.as_str() else {
                return Err(bad(format!("{k}: a string")));
            };
            match k.as_str() {
                "ix_dr" => patch.default_response = Some(default_response_field(v)?),
                "ix_status" => {
                    patch.active = Some(
                        parse_status(v)
                            .ok_or_else(|| bad("ix_status: Active or Inactive".into()))?,
                    )
                }
                "ix_cuid" if valid_cuid(v) => patch.cuid = Some(v.to_string()),
                "ix_cuid" => {
                    return Err(bad(
                        "ix_cuid: 1 to 128 characters, no control characters".into()
                    ))
                }
                other => {
                    return Err(bad(format!(
                        "unknown field {other:?}: use ix_dr, ix_status or ix_cuid"
                    )))
                }
            }
        }
        if patch
            == (TagPatch {
                xuid: tag.xuid.clone(),
                remote: patch.remote.clone(),
                time_ms: patch.time_ms,
                ..TagPatch::default()
            })
        {
            return Err(bad(
                "nothing to change: give ix_dr, ix_status or ix_cuid".into()
            ));
        }
        if let Err(e) = self.writer().update(patch.clone()).await {
            return Err(match e {
                super::store::StoreError::Invalid(m) => err(StatusCode::CONFLICT, "conflict", m),
                other => err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    other.to_string(),
                )
                .because(other),
            });
        }
        // On disk: now in memory, in the catalog served now (another instance's change may
        // have been loaded meanwhile; a load older than this change is never applied, see
        // store::postgres::Applied).
        let registry = self.registry();
        let reg = &*registry;
        let Some(arc) = reg.tag(&patch.xuid).cloned() else {
            return Err(err(
                StatusCode::CONFLICT,
                "conflict",
                format!("tag code {} was removed meanwhile", patch.xuid),
            ));
        };
        let tag = &*arc;
        if let Some(dr) = &patch.default_response {
            reg.set_default_response(tag, dr.as_deref())
                .map_err(|e| bad(e.to_string()).because(e))?;
        }
        let fi = tag.folder;
        if let Ok(mut s) = tag.state.write() {
            if let Some(a) = patch.active {
                s.active = a;
            }
            if let Some(c) = &patch.cuid {
                if let (Ok(mut idx), Some(arc)) = (reg.by_cuid.write(), reg.tag(&tag.xuid)) {
                    if let Some(old) = s.cuid.take() {
                        idx.remove(&(fi, old));
                    }
                    idx.insert((fi, c.clone()), arc.clone());
                }
                s.cuid = Some(c.clone());
            }
        }
        Ok(arc)
    }
}

impl Named {
    /// The 200 answer: the tag after the change, `xuid` first, then `cuid` (the tag's), the
    /// lookup's `uid` when it was looked up by UID, `status` and `response` (the Tag Code's
    /// own Default Response, `null` without one).
    fn tag_body(&self, tag: &TagEntry) -> MgmtBody {
        let s = tag.state.read().expect("tag state");
        let mut v = vec![
            ("xuid", Value::String(tag.xuid.clone())),
            ("cuid", s.cuid.clone().map_or(Value::Null, Value::String)),
        ];
        if let Some(("uid", u)) = &self.echo {
            v.push(("uid", Value::String(u.clone())));
        }
        v.push((
            "status",
            Value::String(if s.active { "Active" } else { "Inactive" }.into()),
        ));
        v.push((
            "response",
            s.default_response
                .as_ref()
                .map_or(Value::Null, |d| Value::String(d.0.clone())),
        ));
        MgmtBody(v)
    }
}

// ---- HTTP ----------------------------------------------------------------------------

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

pub(super) async fn mgmt_x(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(xuid): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    mgmt(&app, Target::Xuid(&xuid), method, remote, headers, body).await
}

pub(super) async fn mgmt_a(
    State(app): AppState,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(aid): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    mgmt(&app, Target::Aid(&aid), method, remote, headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subtags::ResponseError;
    use std::error::Error as _;

    #[test]
    fn a_default_response_that_does_not_compile_keeps_its_cause() {
        assert_eq!(default_response_field("").unwrap(), None);
        assert_eq!(
            default_response_field("Hi {xuid}").unwrap().as_deref(),
            Some("Hi {xuid}")
        );
        let e = default_response_field("  ").unwrap_err();
        assert!(e.source().is_none() && e.message.starts_with("ix_dr: only spaces"));
        let e = default_response_field("Hi {nope}").unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_request"));
        assert!(
            e.message
                .starts_with("ix_dr: unknown subtag {nope}: use {xuid}"),
            "{e}"
        );
        assert_eq!(
            e.source().and_then(|s| s.downcast_ref::<ResponseError>()),
            Some(&ResponseError::Unknown {
                subtag: "nope".into()
            })
        );
    }
}
