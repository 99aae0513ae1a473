//! The decision for one request: parameters, lookup, token, statuses, the SUN check along the
//! tag's template, the counter, the rules, the response and its extended data.
//!
//! Order of checks: parameters → lookup → token (API only) → folder, tag group, batch, tag
//! code status → SUN message and counter (authentication groups) → rules.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::catalog::GroupKind;
use super::query::{Lookup, ScanRequest};
use super::registry::TagEntry;
use super::rules::{Facts, RuleSet};
use super::store::{Claim, ScanWrite};
use super::subtags::{Context, Response};
use super::sunscan::{self, SunCheck};
use super::timefmt::now_ms;
use super::{
    counts_as_scan, errors, logged_query, Answer, Endpoint, Outcome, PageShows, Reason, Request,
    Verifier, LOGGED_QUERY,
};
use crate::crypto::ct_eq;

/// Whether the request's tokens admit it: exactly one token (`r=` and a header count once
/// when they are equal), compared in constant time.
/// The extended-data key of `/v1/t` that marks a copy of a tag's read at its read limit
/// (`"read_limit": "reached"`; a tag's own field of that name wins).
pub const READ_LIMIT_KEY: &str = "read_limit";

fn token_ok(want: &str, query_token: Option<&str>, headers: &[&str]) -> bool {
    if headers.len() > 1 {
        return false;
    }
    let given = match (query_token, headers.first()) {
        (Some(q), Some(h)) if q != *h => return false,
        (Some(q), _) => q,
        (None, Some(h)) => h,
        (None, None) => return false,
    };
    given.len() == want.len() && ct_eq(given.as_bytes(), want.as_bytes())
}

impl Verifier {
    pub(super) async fn decide(&self, req: &Request<'_>) -> (Answer, bool) {
        let registry = self.registry();
        let reg = &*registry;
        let scan = req.scan;
        let q = match scan.query() {
            Ok(q) => q,
            Err(e) => {
                // A well-formed tag code is kept; a known one brings its folder's CORS.
                let x = scan.xuid().unwrap_or_default();
                let folder = reg.tag(&x).map(|t| t.folder);
                let a = Answer::error(&x, e.code(), folder);
                return (with_echo(a, scan.echo()), false);
            }
        };
        // Lookup.
        let (tag, echo): (Arc<TagEntry>, Option<(&'static str, String)>) = match &q.lookup {
            Some(Lookup::Xuid(x)) => match reg.by_xuid.get(x) {
                Some(t) => (t.clone(), None),
                None => return (Answer::error(x, errors::XUID_NOT_FOUND, None), false),
            },
            Some(Lookup::Cuid { cuid, aid }) => {
                let echo = Some(("cuid", cuid.clone()));
                let Some(&fi) = reg.by_aid.get(aid) else {
                    return (
                        with_echo(Answer::error("", errors::AID_NOT_FOUND, None), echo),
                        false,
                    );
                };
                match reg.by_cuid(fi, cuid) {
                    Some(t) => (t, echo),
                    None => {
                        let a = Answer::error("", errors::CUID_NOT_FOUND, Some(fi));
                        return (with_echo(a, echo), false);
                    }
                }
            }
            Some(Lookup::Uid { uid, aid }) => {
                let echo = Some(("uid", hex::encode_upper(uid)));
                let Some(&fi) = reg.by_aid.get(aid) else {
                    return (
                        with_echo(Answer::error("", errors::AID_NOT_FOUND, None), echo),
                        false,
                    );
                };
                match reg.by_uid.get(&(fi, *uid)) {
                    Some(t) => (t.clone(), echo),
                    None => {
                        let a = Answer::error("", errors::UID_NOT_FOUND, Some(fi));
                        return (with_echo(a, echo), false);
                    }
                }
            }
            None => match sunscan::identify(reg, scan) {
                Some(t) => (t, None),
                None => {
                    // A template's parameters that name no tag, or no lookup at all.
                    // A c or u without a is echoed, unless the parameters are a template's.
                    let (code, echo) = if sunscan::has_template_parameters(reg, scan) {
                        (errors::XUID_NOT_FOUND, None)
                    } else {
                        (errors::MISSING_PARAMETER, scan.echo_without_aid())
                    };
                    let a = Answer::error("", code, None);
                    return (with_echo(a, echo), false);
                }
            },
        };
        let folder = &reg.folders[tag.folder];
        let group = &reg.groups[tag.group];
        let batch = &reg.batches[tag.batch];
        let named_by_code = matches!(q.lookup, Some(Lookup::Xuid(_)));
        // The page needs no token but shows no more than the API answers without one (until
        // the SUN message proves the link was read from the tag, below).
        let page_shows = match (folder.token.is_some(), named_by_code) {
            (false, _) => PageShows::Everything,
            (true, true) => PageShows::TagCode,
            (true, false) => PageShows::Verdict,
        };
        // The token protects the API; the /auth page is the tag's own URL and needs none.
        if let (Endpoint::Api, Some(want)) = (req.endpoint, &folder.token) {
            if !token_ok(want, q.token.as_deref(), &req.header_tokens) {
                // Only a query that named the tag code learns it back without the token (a
                // c/u lookup or a template's UID or PICC data does not).
                let x = if named_by_code { tag.xuid.as_str() } else { "" };
                let a = Answer::error(x, errors::TOKEN_REFUSED, Some(tag.folder));
                return (with_echo(a, echo), false);
            }
        }
        let (cuid, active, dr_text, own) = {
            let s = tag.state.read().expect("tag state");
            (
                s.cuid.clone(),
                s.active,
                s.default_response.clone(),
                s.own.clone(),
            )
        };
        let status_error = if !folder.active {
            Some(errors::FOLDER_INACTIVE)
        } else if !group.active {
            Some(errors::TG_INACTIVE)
        } else if !batch.active {
            Some(errors::BATCH_INACTIVE)
        } else if !active {
            Some(errors::TAG_INACTIVE)
        } else {
            None
        };
        if let Some(code) = status_error {
            let mut a = Answer::error(&tag.xuid, code, Some(tag.folder));
            a.page_shows = page_shows;
            return (with_echo(a, echo), false);
        }
        let mut a = Answer::error(&tag.xuid, "", Some(tag.folder));
        a.echo = echo;
        a.page_shows = page_shows;
        a.ctr = q.sun.map(|s| s.ctr);
        a.reason = Reason::Standard;
        a.read_limit = batch.read_ctr_limit;
        // The SUN message (authentication groups only; standard tags ignore n and e).
        let mut genuine_ctr = None;
        let mut tamper = None;
        if group.kind == GroupKind::Authentication {
            match sunscan::check(&tag, batch, scan) {
                SunCheck::Absent => a.reason = Reason::NoSun,
                SunCheck::Malformed => a.reason = Reason::BadSun,
                SunCheck::NoKey => a.reason = Reason::NoKey,
                SunCheck::BadMac => a.reason = Reason::BadMac,
                SunCheck::Genuine(c, tt) => {
                    a.ctr = Some(c);
                    a.page_shows = PageShows::Everything;
                    genuine_ctr = Some(c);
                    tamper = tt;
                }
            }
        }
        // Which Rule Set: the tag's own, unless the group's layers it with {tagcodedr}.
        let (rules, tagcodedr): (&RuleSet, Option<&Response>) = match &own {
            Some(o) if !group.rules.layers() => (o, None),
            _ => (&group.rules, dr_text.as_deref().map(|(_, r)| r)),
        };
        let render = |auth: bool, scount: u64, ccount: Option<u32>| {
            let facts = Facts {
                auth,
                scount,
                ccount,
                tamper,
                now_ms: now_ms(),
            };
            let mut ctx = Context {
                xuid: &tag.xuid,
                cuid: cuid.as_deref(),
                uid: tag.uid,
                scount,
                ccount,
                folder: &folder.name,
                batch: &batch.name,
                taggroup: &group.name,
                tagname: tag.tagname.as_deref(),
                created_ms: tag.created_ms,
                tagcodedr: None,
            };
            // {tagcodedr}: the tag's Default Response, else the group's.
            let dr = tagcodedr.unwrap_or(&group.rules.default).render(&ctx);
            ctx.tagcodedr = Some(&dr);
            let text = rules.answer(&facts).render(&ctx);
            let data: Vec<(String, String)> = tag
                .data
                .iter()
                .map(|(k, v)| (k.clone(), v.render(&ctx)))
                .collect();
            (text, data)
        };
        // A request that cannot pass is a scan on the API (the platform counts every answer),
        // never on the page (see `counts_as_scan`): the scan count it answers with is the
        // tag's count so far, unchanged.
        let count_failed = counts_as_scan(req.endpoint, false);
        let failed_scount = |tag: &TagEntry| {
            if count_failed {
                tag.answered.fetch_add(1, Ordering::Relaxed) + 1
            } else {
                tag.answered.load(Ordering::Relaxed)
            }
        };
        let Some(ctr) = genuine_ctr else {
            let scount = failed_scount(&tag);
            let last = *tag.last_ctr.lock().await;
            a.last_ctr = last;
            let genuine = tag.genuine.load(Ordering::Relaxed);
            let (text, data) = render(false, scount, last);
            a.outcome = Outcome::Response(text);
            a.data = data;
            a.scans = scount;
            a.genuine = genuine;
            return (a, false);
        };
        // One request per tag from here until its counter is on disk.
        let mut last = tag.last_ctr.lock().await;
        a.last_ctr = *last;
        if let Some(l) = *last {
            if ctr <= l {
                a.reason = if batch.read_ctr_limit == Some(ctr) {
                    // The tag's last possible read, genuine, seen before: the tag is at its
                    // limit and makes no newer one (docs/verifier.md, "Read limit").
                    Reason::ReadLimit
                } else if ctr == l {
                    Reason::Replay
                } else {
                    Reason::OldCounter
                };
                let scount = failed_scount(&tag);
                a.scans = scount;
                a.genuine = tag.genuine.load(Ordering::Relaxed);
                let (text, mut data) = render(false, scount, Some(l));
                if a.reason == Reason::ReadLimit && !data.iter().any(|(k, _)| k == READ_LIMIT_KEY) {
                    // The API's one sign of it, after the platform's fields (extended data).
                    data.push((READ_LIMIT_KEY.into(), "reached".into()));
                }
                a.outcome = Outcome::Response(text);
                a.data = data;
                return (a, false);
            }
        }
        // A Pass candidate counts as a scan on both endpoints; on the page only once its
        // counter is stored (a refused claim is not a tap).
        let scount = if count_failed {
            tag.answered.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            tag.answered.load(Ordering::Relaxed) + 1
        };
        a.scans = scount;
        let genuine = tag.genuine.load(Ordering::Relaxed) + 1;
        let (pass_text, pass_data) = render(true, scount, Some(ctr));
        // Refused by the store: counted on the API, not on the page.
        let fail_scount = if count_failed { scount } else { scount - 1 };
        let (fail_text, fail_data) = render(false, fail_scount, *last);
        let claim = ScanWrite {
            time_ms: now_ms(),
            endpoint: req.endpoint.as_str(),
            query: logged_query(scan.raw(), LOGGED_QUERY),
            xuid: tag.xuid.clone(),
            ctr: Some(ctr),
            result: pass_text.clone(),
            reason: Reason::Pass.code(),
            remote: req.remote.clone(),
            claim: Some(Claim {
                ctr,
                refused_result: fail_text.clone(),
            }),
        };
        match self.writer.claim(claim).await {
            Ok(true) => {
                *last = Some(ctr);
                if !count_failed {
                    tag.answered.fetch_add(1, Ordering::Relaxed);
                }
                a.genuine = tag.genuine.fetch_add(1, Ordering::Relaxed) + 1;
                a.outcome = Outcome::Response(pass_text);
                a.data = pass_data;
                a.passed = true;
                a.reason = Reason::Pass;
            }
            Ok(false) => {
                // The store holds a newer counter than memory (it logged the scan as refused).
                a.scans = fail_scount;
                a.genuine = genuine - 1;
                a.outcome = Outcome::Response(fail_text);
                a.data = fail_data;
                a.reason = Reason::Replay;
            }
            Err(_) => {
                a.outcome = Outcome::Error(errors::STORE_UNAVAILABLE);
                a.reason = Reason::Error;
                a.scans = 0;
                return (a, false);
            }
        }
        (a, true)
    }
}

fn with_echo(mut a: Answer, echo: Option<(&'static str, String)>) -> Answer {
    a.echo = echo;
    a
}

impl Verifier {
    /// The folder of the tag a query names, found without consuming anything (for the CORS
    /// preflight and HEAD).
    pub fn peek_folder(&self, scan: &ScanRequest<'_>) -> Option<usize> {
        let registry = self.registry();
        let reg = &*registry;
        let q = scan.query().ok()?;
        match &q.lookup {
            Some(Lookup::Xuid(x)) => reg.tag(x).map(|t| t.folder),
            Some(Lookup::Cuid { cuid, aid }) => reg
                .by_aid
                .get(aid)
                .and_then(|f| reg.by_cuid(*f, cuid))
                .map(|t| t.folder),
            Some(Lookup::Uid { uid, aid }) => reg
                .by_aid
                .get(aid)
                .and_then(|f| reg.by_uid.get(&(*f, *uid)))
                .map(|t| t.folder),
            None => sunscan::identify(reg, scan).map(|t| t.folder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::token_ok;

    #[test]
    fn exactly_one_token() {
        assert!(token_ok("Secret1", Some("Secret1"), &[]));
        assert!(token_ok("Secret1", None, &["Secret1"]));
        assert!(token_ok("Secret1", Some("Secret1"), &["Secret1"]));
        assert!(!token_ok("Secret1", Some("Secret1"), &["Other"]));
        assert!(!token_ok("Secret1", None, &["Other", "Secret1"]));
        assert!(!token_ok("Secret1", None, &["Secret1", "Secret1"]));
        assert!(!token_ok("Secret1", None, &[]));
        assert!(!token_ok("Secret1", Some("Secret"), &[]));
    }
}
