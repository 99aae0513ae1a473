//! Random ID in a batch (`tag424 batch --random-uid`): the journaled, IRREVERSIBLE switch,
//! and finding a tag that answers with a random ID (its GetVersion UID is zero): key 0's
//! version says factory (then `encode_tag` opens it with the factory key and GetCardUID names
//! it) or changed (then its SUN message names it). Why the switch comes where it does:
//! `lifecycle.rs`.

use crate::card::{Card, Session};
use crate::crypto::sdm::SdmMode;
use crate::transport::Transport;

use super::encode::{check_url, plan_for, EncodeOptions};
use super::encode::{ProvisionError, Step};
use super::journal::{now, JournalAccess, Record, TagEntry};
use super::keys::{KeyNo, KEY_VERSION};
use super::layout::url_from_ndef;

/// IRREVERSIBLE: journals the switch to Random ID (unless `journaled` already), then sends it
/// (SetConfiguration option 00, data 02) in the key-0 session.
pub(super) fn switch_on<'c, T: Transport, J: JournalAccess>(
    s: Session<'c, T>,
    journal: &mut J,
    uid: &str,
    journaled: bool,
    step: &mut dyn FnMut(Step),
) -> Result<Session<'c, T>, ProvisionError> {
    if !journaled {
        journal.with(|j| {
            j.append(Record::RandomId {
                uid: uid.to_string(),
                time: now(),
            })
        })?;
    }
    step(Step::RandomId);
    Ok(s.enable_random_id()?)
}

/// Key 0's version says factory (00) or changed (the journaled version); anything else is a
/// tag changed outside this tool, refused without a key tried.
pub(super) fn key0_is_factory<T: Transport>(card: &mut Card<T>) -> Result<bool, ProvisionError> {
    match card.get_key_version(KeyNo::MASTER.get())? {
        0x00 => Ok(true),
        KEY_VERSION => Ok(false),
        _ => Err(ProvisionError::RandomIdUnknown),
    }
}

/// Names a tag that shows a random ID and whose key 0 is changed: every step but the
/// read-back happened, so it is one of the journal's Random ID tags. Its SUN message, read
/// once without authentication, is checked offline against each of them (no key is tried on
/// the chip).
pub(super) fn find_planned<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
) -> Result<TagEntry, ProvisionError> {
    let candidates: Vec<TagEntry> = journal.with(|j| {
        j.tags()
            .filter(|t| t.random_id && !t.reset && t.keys().is_ok())
            .cloned()
            .collect()
    });
    if candidates.is_empty() {
        return Err(ProvisionError::RandomIdUnknown);
    }
    let plans = candidates
        .iter()
        .map(|t| {
            let mode = if t.lrp { SdmMode::Lrp } else { SdmMode::Aes };
            let o = EncodeOptions {
                template: opts.template.clone().with_mode(mode),
                ..opts.clone()
            };
            plan_for(&o, &t.xuid).map(|p| (o, p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let len = plans.iter().map(|(_, p)| p.file.len()).max().unwrap_or(0);
    // One unauthenticated read, as a phone reads it: the chip mirrors its real UID (inside
    // PICCData or plain) and MACs with the tag's keys.
    let file = card.read_data(2, 0, len)?;
    let Some(url) = url_from_ndef(&file) else {
        return Err(ProvisionError::RandomIdUnknown);
    };
    for (t, (o, _)) in candidates.into_iter().zip(plans) {
        let keys = t.keys()?;
        if check_url(&o, keys, &t.uid, &t.xuid, &url).is_ok() {
            return Ok(t);
        }
    }
    Err(ProvisionError::RandomIdUnknown)
}
