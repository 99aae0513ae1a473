//! What a management request asks: its body's fields (a form or a JSON object of strings),
//! its headers, and the `ix_dr` field checked as a Default Response.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::answer::{err, MgmtError};
use crate::query;
use crate::subtags;

/// `ix_dr`: empty reverts to the tag group's rules (`None`), else a Default Response that
/// compiles; the refusal keeps the response's typed error as its source.
pub(super) fn default_response_field(v: &str) -> Result<Option<String>, MgmtError> {
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

/// The body's fields, from a form or a JSON object of strings.
pub(super) fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, MgmtError> {
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

pub(super) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
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
