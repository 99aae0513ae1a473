//! The management API (local), as platform.md §5 has it: `PATCH /v1/x/{xuid}`, or
//! `PATCH /v1/a/{aid}` with an `ix_c: {cuid}` or `ix_u: {uid}` header. Body fields (form
//! encoded or JSON): `ix_dr` (the Tag Code's Default Response; empty reverts to the tag
//! group's rules), `ix_status` (`Active`/`Inactive`), `ix_cuid`. Its own token in `X-API-Key`
//! (same as `X-Api-Key`) or `Ixkio-R`. Unlike `/v1/t` it answers with HTTP status codes;
//! every answer is JSON and carries `X-Correlation-Id` (the request's, or a new one) and
//! `api-supported-versions: 1`. Changes are persisted (one transaction) and logged.

use axum::http::{HeaderMap, StatusCode};

use super::errors;
use super::http::TOKEN_HEADERS;

use super::import::parse_status;
use super::query::{self, parse_uid, valid_cuid};
use super::registry::{Registry, TagEntry};
use super::store::TagPatch;
use super::timefmt::now_ms;
use super::Verifier;
use crate::crypto::ct_eq;
use std::sync::Arc;

mod answer;
mod http;
mod request;

use answer::{err, Named};
pub use answer::{MgmtAnswer, MgmtBody, MgmtError};
pub(crate) use http::{mgmt_a, mgmt_x};
use request::{default_response_field, fields, header};

/// Most bytes of a management request's body (its fields are a few short strings).
pub const MAX_BODY: usize = 64 * 1024;

/// How the tag is named.
pub enum Target<'a> {
    /// `/v1/x/{xuid}`: the tag code.
    Xuid(&'a str),
    /// `/v1/a/{aid}`: an account id; the `ix_c` (CUID) or `ix_u` (UID) header names the tag.
    Aid(&'a str),
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
