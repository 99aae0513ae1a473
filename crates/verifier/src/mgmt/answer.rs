//! The management API's answers: the JSON body (keys in the platform's order), the refusal
//! (status, code, message, cause) and who an answer names (the tag code, the lookup id).

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::request::header;
use super::Target;
use crate::query::{self, parse_uid, valid_cuid};
use crate::registry::TagEntry;

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
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
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
    pub(super) fn because(
        mut self,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> MgmtError {
        self.source = Some(Box::new(e));
        self
    }
}

pub(super) fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> MgmtError {
    MgmtError {
        status,
        code,
        message: message.into(),
        source: None,
    }
}
/// Who a request names before its lookup: the tag code of `/v1/x/{xuid}` (when it is one)
/// and the lookup id of `/v1/a/{aid}` (`ix_c` as `cuid`, `ix_u` as `uid`), echoed on every
/// answer as `/v1/t` echoes them.
pub(super) struct Named {
    pub(super) xuid: String,
    pub(super) echo: Option<(&'static str, String)>,
}

impl Named {
    pub(super) fn of(target: &Target<'_>, headers: &HeaderMap) -> Named {
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

    pub(super) fn error(&self, e: MgmtError) -> MgmtAnswer {
        let mut v = self.head();
        v.push(("error", Value::String(e.code.to_string())));
        v.push(("message", Value::String(e.message)));
        (e.status, MgmtBody(v))
    }

    /// The 200 answer: the tag after the change, `xuid` first, then `cuid` (the tag's), the
    /// lookup's `uid` when it was looked up by UID, `status` and `response` (the Tag Code's
    /// own Default Response, `null` without one).
    pub(super) fn tag_body(&self, tag: &TagEntry) -> MgmtBody {
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
