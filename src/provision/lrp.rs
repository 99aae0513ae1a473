//! Encoding in LRP mode (`tag424 batch --lrp-irreversible`): the switch of a factory tag to
//! LRP, journaled before it is sent, and finishing a tag that may be AES or LRP.
//!
//! A fresh tag costs 18 APDU exchanges in LRP (AES: 15): select, GetVersion ×3, Read_Sig,
//! AuthenticateEV2First ×2, SetConfiguration 05 (the switch), AuthenticateLRPFirst ×2,
//! WriteData, ChangeFileSettings, ChangeKey ×5, read-back. The switch ends the AES session
//! without a MAC (AN12321 Table 3), so the LRP authentication follows at once; no RF reset
//! is needed on the simulated chip (a real tag was not available to confirm that).
//!
//! Keys change only under LRP, after the switch, so the journal's facts suffice to finish any
//! interrupted tag: an AES tag is still factory-keyed and not switched; an LRP tag answers an
//! AES first authentication with 919D (one exchange) and then, as in AES, key 0 tells
//! whether the keys changed.

use crate::card::{Card, CardError, Session, Sw};
use crate::crypto::sdm::SdmMode;
use crate::crypto::AesKey;
use crate::transport::Transport;

use super::encode::{complete, write_ndef, Done, EncodeOptions, Outcome, ProvisionError, Step};
use super::journal::{now, Journal, Record, TagEntry};
use super::keys::KEY_VERSION;
use super::layout::layout;

/// AuthenticateLRPFirst with key 0; a wrong key is a foreign tag.
pub(super) fn first_auth<'c, T: Transport>(
    card: &'c mut Card<T>,
    key: &AesKey,
    uid: &str,
) -> Result<Session<'c, T>, ProvisionError> {
    match card.authenticate_lrp_first(0, key) {
        Ok(s) => Ok(s),
        Err(e) if e.status() == Some(Sw::AuthenticationError) => Err(ProvisionError::Foreign {
            uid: uid.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Journals the switch, sends it (SetConfiguration option 05, permanent) and authenticates
/// again in LRP with the factory key.
pub(super) fn switch<'c, T: Transport>(
    s: Session<'c, T>,
    journal: &mut Journal,
    uid: &str,
    step: &mut dyn FnMut(Step),
) -> Result<Session<'c, T>, ProvisionError> {
    journal.append(Record::LrpSwitch {
        uid: uid.to_string(),
        time: now(),
    })?;
    step(Step::SwitchToLrp);
    let card = s.enable_lrp()?;
    Ok(card.authenticate_lrp_first(0, &AesKey::FACTORY)?)
}

/// Finishes an interrupted tag planned for LRP. It is either still AES (factory keys: the
/// switch was not made) or LRP (keys changed or not; key 0 last).
pub(super) fn finish<T: Transport>(
    card: &mut Card<T>,
    journal: &mut Journal,
    opts: &EncodeOptions,
    entry: &TagEntry,
    start: usize,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let TagEntry {
        uid, xuid, keys, ..
    } = entry;
    let opts = EncodeOptions {
        template: opts.template.clone().with_mode(SdmMode::Lrp),
        ..opts.clone()
    };
    let plan = layout(&opts.template, xuid)?;
    let unrecoverable = || ProvisionError::Unrecoverable { uid: uid.clone() };
    step(Step::Authenticate);
    let mut s = match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
        // Still AES: nothing irreversible happened yet.
        Ok(s) => switch(s, journal, uid, step)?,
        Err(e) if e.status() == Some(Sw::PermissionDenied) => {
            match lrp_auth(card, keys.key(0))? {
                true => {
                    // Key 0 is changed last: everything happened. The read-back follows.
                    return done(card, journal, &opts, entry, &plan, start, step);
                }
                false => match card.authenticate_lrp_first(0, &AesKey::FACTORY) {
                    Ok(s) => s,
                    Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                        return Err(unrecoverable())
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Err(e) if e.status() == Some(Sw::AuthenticationError) => return Err(unrecoverable()),
        Err(e) => return Err(e.into()),
    };
    step(Step::WriteNdef);
    let fs;
    (s, fs) = s.get_file_settings(2)?;
    if fs.sdm.is_none() {
        s = write_ndef(s, &opts, &plan)?;
    }
    step(Step::ChangeKeys);
    for k in 1..=4u8 {
        let version;
        (s, version) = s.get_key_version(k)?;
        if version != KEY_VERSION {
            s = s.change_key(k, &AesKey::FACTORY, keys.key(k), KEY_VERSION)?;
        }
    }
    s.change_own_key(keys.key(0), KEY_VERSION)?;
    done(card, journal, &opts, entry, &plan, start, step)
}

/// AuthenticateLRPFirst with `key`: `true` if it is the tag's key 0 (the session is left at
/// once, so the read-back is mirrored), `false` if the tag refused it.
fn lrp_auth<T: Transport>(card: &mut Card<T>, key: &AesKey) -> Result<bool, CardError> {
    match card.authenticate_lrp_first(0, key) {
        Ok(s) => {
            // ISOSelectFile ends the session, as in the AES recovery.
            s.end().select_ndef_application()?;
            Ok(true)
        }
        Err(e) if e.status() == Some(Sw::AuthenticationError) => Ok(false),
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn done<T: Transport>(
    card: &mut Card<T>,
    journal: &mut Journal,
    opts: &EncodeOptions,
    entry: &TagEntry,
    plan: &super::layout::NdefLayout,
    start: usize,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let d = Done {
        keys: &entry.keys,
        uid: &entry.uid,
        xuid: &entry.xuid,
        plan,
        start,
        recovered: true,
        logged: entry.keys_changed,
    };
    complete(card, journal, opts, d, step)
}
