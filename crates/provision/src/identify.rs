//! Which batch and tag a tap (a SUN URL) or a tag on a reader belongs to, from the batch
//! folders' key journals, read only. A tap is found by its tag code (`{xuid}`), its UID
//! (`{uid}`), or by decrypting `{picc}` with each journaled tag's meta read key; its SDMMAC is
//! then checked by the one [`sun::verify_as`] with that tag's journaled keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::journal::{Journal, TagEntry};
use super::keys::KEY_VERSION;
use crate::crypto::sdm::SdmMode;
use crate::sun::{self, SunError, SunKeys, Template};

/// One batch folder to look in: its journal (read only) and the URL template its tags carry.
#[derive(Debug)]
pub struct Batch {
    /// The batch folder.
    pub dir: PathBuf,
    /// Its journal, opened with [`Journal::read_only_with`].
    pub journal: Journal,
    /// The template its tags were encoded with (summary.json's, or the one given).
    pub template: Template,
}

/// What a tap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The SDMMAC verifies with the journal's key; its counter is above every one seen
    /// (offline: above the encoding's read-back; a copy of a later tap is not seen).
    Genuine,
    /// The SDMMAC verifies, but the counter is not above one already seen (the encoding's
    /// read-back, or the verifier database's last scan), or the tag was reset since.
    Replayed,
    /// A journal knows the tag, but the URL does not verify with the key it has.
    Forged,
    /// No journal given knows the tag.
    Unknown,
}

impl Verdict {
    /// The word the CLI prints.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Genuine => "GENUINE",
            Verdict::Replayed => "REPLAYED",
            Verdict::Forged => "FORGED",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// A batch folder that could not be searched, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The batch folder.
    pub dir: PathBuf,
    /// Why (one sentence that names the fix).
    pub why: String,
}

/// The answer for one tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identified {
    /// What the tap is.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// The batch folder whose journal knows the tag.
    pub batch: Option<PathBuf>,
    /// The tag code the journal has for it.
    pub xuid: Option<String>,
    /// The tag's UID (14 hex digits) as the journal has it.
    pub uid: Option<String>,
    /// The tap's read counter (from `{ctr}` or the decrypted `{picc}`).
    pub read_ctr: Option<u32>,
    /// The counter of the encoding's verified read-back.
    pub journal_ctr: Option<u32>,
    /// The last counter the verifier database accepted for this tag code (with a database).
    pub last_seen: Option<u32>,
    /// A verifier database was consulted for replays.
    pub replay_checked: bool,
    /// The mode the tap was checked in.
    pub mode: Option<SdmMode>,
    /// The journal's state of the tag (`done (verified)`, `reset to factory`, …).
    pub state: Option<&'static str>,
    /// Batch folders that could not be searched.
    pub skipped: Vec<Skipped>,
}

/// Why a tap could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    /// The URL fits no batch's template.
    #[error("the URL fits no batch's URL template: {}", .0.iter().map(|(d, e)| format!("{}: {e}", d.display())).collect::<Vec<_>>().join("; "))]
    NoTemplate(Vec<(PathBuf, SunError)>),
    /// The URL has neither a tag code, nor a UID, nor encrypted PICC data.
    #[error("the URL has no tag code ({{xuid}}), UID ({{uid}}) or PICC data ({{picc}}) to look the tag up by")]
    NothingToLookUp,
    /// The journal that knows the tag keeps its keys encrypted.
    #[error("{} knows tag code {xuid}, but its keys are encrypted (keys.csv.age)", .dir.display())]
    Sealed {
        /// The batch folder.
        dir: PathBuf,
        /// The tag code.
        xuid: String,
    },
}

/// Looks `url` up in `batches` and checks it with the journal's keys. `last_seen`: the
/// verifier database's last accepted counter per tag code (`None`: offline).
pub fn identify(
    url: &str,
    batches: &[Batch],
    last_seen: Option<&HashMap<String, u32>>,
) -> Result<Identified, IdentifyError> {
    let url = url.trim();
    let mut unknown = Identified {
        verdict: Verdict::Unknown,
        reason: String::new(),
        batch: None,
        xuid: None,
        uid: None,
        read_ctr: None,
        journal_ctr: None,
        last_seen: None,
        replay_checked: last_seen.is_some(),
        mode: None,
        state: None,
        skipped: Vec::new(),
    };
    let mut misfits = Vec::new();
    let mut looked_up = false;
    for b in batches {
        let scan = match sun::parse_url(&b.template, url) {
            Ok(s) => s,
            Err(e) => {
                misfits.push((b.dir.clone(), e));
                continue;
            }
        };
        let by_picc;
        let candidates: Vec<&TagEntry> = if let Some(x) =
            scan.xuid.as_deref().filter(|x| !x.is_empty())
        {
            by_picc = false;
            // A code freed by `reset --reuse-code` may name two tags: the live one first.
            let mut c: Vec<_> = b.journal.tags().filter(|t| t.xuid == x).collect();
            c.sort_by_key(|t| t.reset);
            c
        } else if let Some(u) = scan.uid {
            by_picc = false;
            b.journal.tag(&hex::encode_upper(u)).into_iter().collect()
        } else if scan.picc.is_some() {
            by_picc = true;
            if b.journal.sealed_to().is_some() && b.journal.tags().any(|t| t.keys().is_err()) {
                unknown.skipped.push(Skipped {
                    dir: b.dir.clone(),
                    why: "an encrypted batch: its meta read keys are needed to decrypt {picc}; give --identity FILE".into(),
                });
                continue;
            }
            b.journal.tags().collect()
        } else {
            continue;
        };
        looked_up = true;
        for t in candidates {
            let Ok(keys) = t.keys() else {
                return Err(IdentifyError::Sealed {
                    dir: b.dir.clone(),
                    xuid: t.xuid.clone(),
                });
            };
            let mode = if by_picc {
                None
            } else if t.lrp {
                Some(SdmMode::Lrp)
            } else {
                Some(SdmMode::Aes)
            };
            let sun_keys = SunKeys {
                file_read: keys.sdm_file_read().clone(),
                meta_read: Some(keys.sdm_meta_read().clone()),
            };
            let checked = sun::verify_as(&scan, &sun_keys, mode);
            let found_uid = checked
                .as_ref()
                .ok()
                .and_then(|v| v.uid)
                .map(hex::encode_upper);
            if by_picc && found_uid.as_deref() != Some(t.uid.as_str()) {
                continue;
            }
            let mut out = Identified {
                verdict: Verdict::Forged,
                reason: String::new(),
                batch: Some(b.dir.clone()),
                xuid: Some(t.xuid.clone()),
                uid: Some(t.uid.clone()),
                read_ctr: None,
                journal_ctr: t.read_ctr,
                last_seen: last_seen.and_then(|m| m.get(&t.xuid).copied()),
                replay_checked: last_seen.is_some(),
                mode,
                state: Some(t.state()),
                skipped: std::mem::take(&mut unknown.skipped),
            };
            let v = match checked {
                Ok(v) => v,
                Err(e) => {
                    out.reason = format!("the URL cannot be this tag's: {e}");
                    return Ok(out);
                }
            };
            out.mode = Some(v.mode);
            out.read_ctr = v.read_ctr;
            decide(&mut out, &v, t);
            return Ok(out);
        }
    }
    if !looked_up && !misfits.is_empty() && misfits.len() == batches.len() {
        return Err(IdentifyError::NoTemplate(misfits));
    }
    if !looked_up && unknown.skipped.is_empty() {
        return Err(IdentifyError::NothingToLookUp);
    }
    unknown.reason = if unknown.skipped.is_empty() {
        "no journal given knows this tag".into()
    } else {
        "no journal searched knows this tag; some batch folders were skipped".into()
    };
    Ok(unknown)
}

/// The verdict for a tap whose tag the journal knows.
fn decide(out: &mut Identified, v: &sun::Verified, t: &TagEntry) {
    if let (Some(found), Some(theirs)) = (v.uid.map(hex::encode_upper), &out.uid) {
        if &found != theirs {
            out.reason = format!(
                "the URL's UID {found} is not the UID the journal has for tag code {} ({theirs})",
                t.xuid
            );
            return;
        }
    }
    if !v.genuine {
        out.reason = format!(
            "{} (checked with the key the journal has for this tag)",
            v.reason.as_deref().unwrap_or("the SDMMAC does not verify")
        );
        return;
    }
    out.verdict = Verdict::Replayed;
    if t.reset {
        out.reason =
            "the SDMMAC verifies with the tag's old keys, but the journal says the tag was reset to factory since: this URL is from before the reset".into();
        return;
    }
    if let (Some(ctr), Some(back)) = (v.read_ctr, t.read_ctr) {
        if ctr <= back {
            out.reason = format!("counter {ctr} is not above the encoding's read-back counter {back}: a copy of a URL read before the tag left the station");
            return;
        }
    }
    if let (Some(ctr), Some(last)) = (v.read_ctr, out.last_seen) {
        if ctr <= last {
            out.reason = format!(
                "counter {ctr} is not above the last one the verifier database accepted ({last}): a copied URL"
            );
            return;
        }
    }
    out.verdict = Verdict::Genuine;
    out.reason = if out.replay_checked {
        "the SDMMAC verifies with the journal's key and the counter is above the last one seen"
            .into()
    } else {
        "the SDMMAC verifies with the journal's key and the counter is above the encoding's read-back".into()
    };
}

/// What a tag's keys are now, as far as the chip tells without authentication (its key
/// versions) and the journals know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// Every key version is 00 and no journal holds live keys for the tag: the factory keys.
    Factory,
    /// A journal holds the tag's keys; `partly`: some key versions are still 00 (an
    /// interrupted encoding: those keys are the factory ones).
    Journaled {
        /// The batch folder.
        batch: PathBuf,
        /// The tag's code there.
        xuid: String,
        /// Some keys are still the factory ones.
        partly: bool,
    },
    /// The keys were changed and no journal given knows the tag: no key is to be tried.
    Unknown,
}

/// The key state of a tag with `versions` (keys 0 to 4, from GetKeyVersion) that `known`
/// (the batch folder and entry of the journal that knows its UID, if any) describes.
pub fn key_state(versions: &[u8], known: Option<(&Path, &TagEntry)>) -> KeyState {
    let all_factory = versions.iter().all(|v| *v == 0);
    match known {
        Some((dir, t)) if !t.reset && versions.contains(&KEY_VERSION) => KeyState::Journaled {
            batch: dir.to_path_buf(),
            xuid: t.xuid.clone(),
            partly: versions.contains(&0),
        },
        _ if all_factory => KeyState::Factory,
        _ => KeyState::Unknown,
    }
}

/// The journal among `journals` (batch folder, journal) that knows `uid`, live entries first.
pub fn find_uid<'a>(
    journals: &'a [(PathBuf, Journal)],
    uid: &str,
) -> Option<(&'a Path, &'a TagEntry)> {
    let mut found: Vec<_> = journals
        .iter()
        .filter_map(|(d, j)| j.tag(uid).map(|t| (d.as_path(), t)))
        .collect();
    found.sort_by_key(|(_, t)| t.reset);
    found.into_iter().next()
}
