//! A scan's SUN message, read from the request along the tag's batch template and checked
//! with the one SUN implementation ([`crate::sun::Template::read_params`] and
//! [`crate::sun::verify_as`]).
//!
//! The request's query carries the template's parameters (the scanned URL's query, or the
//! platform's `x`, `n`, `e`): the batch's template reads them from the typed request
//! ([`ScanRequest`]), as `tag424 verify` reads the URL. Templates without `{xuid}` name
//! their tag by the mirrored UID or by the encrypted PICC data (tried with the meta read key
//! of each tag of such a batch). A batch of LRP tags is checked in LRP mode (its template
//! carries the mode: nothing in a URL with plain mirrors says LRP).

use std::sync::Arc;

use super::query::ScanRequest;
use super::registry::{BatchEntry, Registry, TagEntry};
use super::rules::Tamper;
use crate::crypto::sdm::{self, SdmMode};
use crate::crypto::sdm_lrp;
use crate::sun::{self, ParamsError, ScannedUrl, SunKeys, TtStatus};

/// What the SUN check of one scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// Checks the SUN message of a scan of `tag` (of `batch`). The platform's own template reads
/// the query parser's `n`/`e` (percent-decoded, as every parameter the parser knows).
pub fn check(tag: &TagEntry, batch: &BatchEntry, req: &ScanRequest<'_>) -> SunCheck {
    let scan = if batch.template.is_platform_query() {
        match req.query().ok().and_then(|q| q.sun) {
            Some(s) => ScannedUrl {
                xuid: Some(tag.xuid.clone()),
                read_ctr: Some(s.ctr),
                mac: s.mac,
                ..ScannedUrl::default()
            },
            None if req.param("n").is_none() && req.param("e").is_none() => {
                return SunCheck::Absent
            }
            None => return SunCheck::Malformed,
        }
    } else {
        match batch
            .template
            .read_params(&tag.xuid, |name| req.param(name))
        {
            Ok(s) => s,
            Err(ParamsError::Absent) => return SunCheck::Absent,
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
pub fn identify(reg: &Registry, req: &ScanRequest<'_>) -> Option<Arc<TagEntry>> {
    for (bi, tags) in &reg.anonymous {
        let batch = &reg.batches[*bi];
        let Ok(scan) = batch.template.read_params("", |name| req.param(name)) else {
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
pub fn has_template_parameters(reg: &Registry, req: &ScanRequest<'_>) -> bool {
    reg.anonymous.iter().any(|(bi, _)| {
        reg.batches[*bi]
            .template
            .parameters()
            .any(|name| req.param(name).is_some())
    })
}
