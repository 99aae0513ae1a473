//! Random ID in a batch (`tag424 batch --random-uid`): the journaled, IRREVERSIBLE switch,
//! and finding a tag that answers with a random ID (its GetVersion UID is zero). Why the
//! switch comes where it does: `lifecycle.rs`.

use crate::card::{Card, Session, Sw};
use crate::crypto::originality::Originality;
use crate::crypto::sdm::SdmMode;
use crate::crypto::AesKey;
use crate::transport::Transport;

use super::encode::{check_originality, check_url, plan_for, EncodeOptions, Identity};
use super::encode::{ProvisionError, Step};
use super::journal::{now, JournalAccess, Record, TagEntry};
use super::keys::{KeyNo, KEY_VERSION};
use super::layout::url_from_ndef;

/// What a tag with Random ID on turned out to be.
pub(super) enum Revealed {
    /// Key 0 is the factory key: its real UID (GetCardUID) and originality, checked against
    /// it. The session is left (the application selected again): the caller goes on as for
    /// a tag that showed this UID.
    Factory {
        /// The real UID.
        uid: [u8; 7],
        /// The originality signature checked against it.
        originality: Originality,
    },
    /// Key 0 is changed: the journal's tag whose SUN message this tag gives.
    Planned(TagEntry),
}

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

/// Finds the real identity of a tag whose GetVersion UID is zero, trying no key the journal
/// does not point to: key 0's version (read without authentication) says factory (00: the
/// factory key opens it, GetCardUID gives the real UID) or changed (the journaled version:
/// its SUN message, read once without authentication, is checked offline against each of
/// the journal's Random ID tags).
pub(super) fn reveal<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
    id: &Identity,
) -> Result<Revealed, ProvisionError> {
    match card.get_key_version(KeyNo::MASTER.get())? {
        0x00 => {
            // The factory key: AES, or LRP when the tag was switched (919D to AES).
            let s = match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
                Ok(s) => s,
                Err(e) if e.status() == Some(Sw::PermissionDenied) => {
                    match card.authenticate_lrp_first(0, &AesKey::FACTORY) {
                        Ok(s) => s,
                        Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                            return Err(ProvisionError::RandomIdUnknown)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                    return Err(ProvisionError::RandomIdUnknown)
                }
                Err(e) => return Err(e.into()),
            };
            // CommMode.Full: the UID comes encrypted and its MACt is verified.
            let (s, uid) = s.get_card_uid()?;
            let card = s.end();
            // ISOSelectFile ends the authentication, as a fresh tag's flow expects.
            card.select_ndef_application()?;
            let originality = check_originality(&uid, &id.signature, opts.trust_simulator)?;
            Ok(Revealed::Factory { uid, originality })
        }
        KEY_VERSION => {
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
            // One unauthenticated read, as a phone reads it: the chip mirrors its real UID
            // (inside PICCData or plain) and MACs with the tag's keys.
            let file = card.read_data(2, 0, len)?;
            let Some(url) = url_from_ndef(&file) else {
                return Err(ProvisionError::RandomIdUnknown);
            };
            for (t, (o, _)) in candidates.into_iter().zip(plans) {
                let keys = t.keys()?;
                if check_url(&o, keys, &t.uid, &t.xuid, &url).is_ok() {
                    return Ok(Revealed::Planned(t));
                }
            }
            Err(ProvisionError::RandomIdUnknown)
        }
        _ => Err(ProvisionError::RandomIdUnknown),
    }
}
