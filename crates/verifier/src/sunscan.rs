//! A scan's SUN message, read from the request along the tag's batch template and checked
//! with the one SUN implementation ([`crate::sun::parse_url`] and [`crate::sun::verify()`]).
//!
//! The request's query carries the template's parameters (the scanned URL's query, or the
//! platform's `x`, `n`, `e`): the URL is rebuilt from the template with the request's values
//! and split and verified exactly as `tag424 verify` does. Templates without `{xuid}` name
//! their tag by the mirrored UID or by the encrypted PICC data (tried with the meta read key
//! of each tag of such a batch). A batch of LRP tags is checked in LRP mode (its template
//! carries the mode: nothing in a URL with plain mirrors says LRP).

use std::sync::Arc;

use super::query::Sun;
use super::registry::{BatchEntry, Registry, TagEntry};
use super::rules::Tamper;
use crate::crypto::sdm::{self, SdmMode};
use crate::crypto::sdm_lrp;
use crate::sun::{self, ScannedUrl, SunKeys, TtStatus};

/// What the SUN check of one scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SunCheck {
    /// The request carries none of the template's SUN parameters.
    Absent,
    /// Present but not what a tag writes (wrong length, not hex, missing one).
    Malformed,
    /// No key loaded for the tag.
    NoKey,
    /// Well-formed; the SDMMAC does not match.
    BadMac,
    /// The SDMMAC matches: the counter the tag mirrored, and its TagTamper status when the
    /// template mirrors it (`{tt}`, under the MAC) and TagTamper is enabled.
    Genuine(u32, Option<Tamper>),
}

/// The status a tamper rule compares: open or closed; `None` (no tamper rule holds) when the
/// tag reports TagTamper as not enabled (`I`).
fn tamper_fact(tt: Option<TtStatus>) -> Option<Tamper> {
    match tt?.word() {
        "open" => Some(Tamper::Open),
        "closed" => Some(Tamper::Closed),
        _ => None,
    }
}

fn value<'a>(pairs: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// The scanned URL rebuilt from the template with the request's values; `None` if the
/// request carries none of the SUN parameters; `Some(Err(()))` if it carries only some.
fn rebuild(batch: &BatchEntry, xuid: &str, pairs: &[(&str, &str)]) -> Option<Result<String, ()>> {
    let mut url = String::with_capacity(batch.prefix.len() + 128);
    url.push_str(&batch.prefix);
    url.push('?');
    let (mut found, mut missing) = (0, 0);
    for (i, seg) in batch.query.iter().enumerate() {
        if i > 0 {
            url.push('&');
        }
        let Some((name, tpl)) = seg.split_once('=').filter(|(_, v)| v.contains('{')) else {
            url.push_str(seg);
            continue;
        };
        url.push_str(name);
        url.push('=');
        if tpl.contains("{xuid}") {
            url.push_str(&tpl.replace("{xuid}", xuid));
            continue;
        }
        match value(pairs, name) {
            Some(v) => {
                found += 1;
                url.push_str(v);
            }
            None => missing += 1,
        }
    }
    match (found, missing) {
        (0, _) => None,
        (_, 0) => Some(Ok(url)),
        _ => Some(Err(())),
    }
}

/// Checks the SUN message of a scan of `tag` (of `batch`). `sun` is the query parser's `n`/`e`
/// (used as the split of the platform's own template, which needs no URL rebuilt).
pub fn check(
    tag: &TagEntry,
    batch: &BatchEntry,
    pairs: &[(&str, &str)],
    sun: Option<Sun>,
) -> SunCheck {
    let scan = if batch.platform_query {
        match sun {
            Some(s) => ScannedUrl {
                xuid: Some(tag.xuid.clone()),
                read_ctr: Some(s.ctr),
                mac: s.mac,
                ..ScannedUrl::default()
            },
            None if value(pairs, "n").is_none() && value(pairs, "e").is_none() => {
                return SunCheck::Absent
            }
            None => return SunCheck::Malformed,
        }
    } else {
        let url = match rebuild(batch, &tag.xuid, pairs) {
            None => return SunCheck::Absent,
            Some(Err(())) => return SunCheck::Malformed,
            Some(Ok(u)) => u,
        };
        match sun::parse_url(&batch.template, &url) {
            Ok(s) => s,
            Err(_) => return SunCheck::Malformed,
        }
    };
    let Some(key) = &tag.key else {
        return SunCheck::NoKey;
    };
    let keys = SunKeys {
        file_read: key.clone(),
        meta_read: tag.meta_key.clone(),
    };
    match sun::verify_as(&scan, &keys, Some(batch.template.mode())) {
        Ok(v) if v.genuine => match (v.read_ctr, v.uid, tag.uid) {
            // A mirrored UID must be the tag's own.
            (Some(_), Some(got), Some(want)) if got != want => SunCheck::BadMac,
            // {tt} lies under the MAC (the template rule), so a genuine scan's status holds.
            (Some(c), _, _) => SunCheck::Genuine(c, tamper_fact(v.tamper)),
            (None, _, _) => SunCheck::Malformed,
        },
        Ok(_) => SunCheck::BadMac,
        Err(_) => SunCheck::Malformed,
    }
}

/// Finds the tag of a scan whose template does not carry the tag code: by the mirrored UID,
/// or by decrypting the PICC data with each candidate's meta read key.
pub fn identify(reg: &Registry, pairs: &[(&str, &str)]) -> Option<Arc<TagEntry>> {
    for (bi, tags) in &reg.anonymous {
        let batch = &reg.batches[*bi];
        let Some(Ok(url)) = rebuild(batch, "", pairs) else {
            continue;
        };
        let Ok(scan) = sun::parse_url(&batch.template, &url) else {
            continue;
        };
        if let Some(uid) = scan.uid {
            if let Some(t) = tags.iter().find(|t| t.uid == Some(uid)) {
                return Some(t.clone());
            }
        }
        if let Some(picc) = &scan.picc {
            for t in tags {
                let (Some(meta), Some(uid)) = (&t.meta_key, t.uid) else {
                    continue;
                };
                let p = match batch.template.mode() {
                    SdmMode::Aes => sdm::decrypt_picc_data(meta, picc),
                    SdmMode::Lrp => sdm_lrp::decrypt_picc_data(meta, picc),
                };
                if let Ok(p) = p {
                    if p.uid == Some(uid) {
                        return Some(t.clone());
                    }
                }
            }
        }
    }
    None
}

/// Whether the query carries a parameter of a template that does not carry the tag code
/// (so that a failed [`identify`] is an unknown tag, not a missing parameter).
pub fn has_template_parameters(reg: &Registry, pairs: &[(&str, &str)]) -> bool {
    reg.anonymous.iter().any(|(bi, _)| {
        reg.batches[*bi].query.iter().any(|seg| {
            seg.split_once('=')
                .filter(|(_, v)| v.contains('{'))
                .is_some_and(|(name, _)| value(pairs, name).is_some())
        })
    })
}
