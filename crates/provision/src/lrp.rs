//! Encoding in LRP mode (`tag424 batch --lrp-irreversible`): the switch of a factory tag to
//! LRP, journaled before it is sent, and the LRP first authentication of a tag that is LRP
//! already. The flow itself is the AES one in `encode.rs`.
//!
//! A fresh tag costs 18 APDU exchanges in LRP (AES: 15): select, GetVersion ×3, Read_Sig,
//! AuthenticateEV2First ×2, WriteData (the NDEF file, while still AES: a tag of another
//! batch is refused before anything is written), [Planned and LrpSwitch journaled],
//! SetConfiguration 05 (the switch), AuthenticateLRPFirst ×2, ChangeFileSettings,
//! ChangeKey ×5, read-back. The switch ends the AES session without a MAC (AN12321 Table 3),
//! so the LRP authentication follows at once; no RF reset is needed on the simulated chip (a
//! real tag was not available to confirm that).
//!
//! Keys change only under LRP, after the switch, so the journal's facts suffice to finish any
//! interrupted tag (`encode::with_key0`): an AES tag is still factory-keyed and not switched;
//! an LRP tag answers an AES first authentication with 919D (one exchange) and then, as in
//! AES, key 0 tells whether the keys changed.

use crate::card::{Card, Session, Sw};
use crate::crypto::AesKey;
use crate::transport::Transport;

use super::journal::{now, Record};
use super::report::{ProvisionError, Step};

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
pub(super) fn switch<'c, T: Transport, J: super::journal::JournalAccess>(
    s: Session<'c, T>,
    journal: &mut J,
    uid: &str,
    step: &mut dyn FnMut(Step),
) -> Result<Session<'c, T>, ProvisionError> {
    journal.with(|j| {
        j.append(Record::LrpSwitch {
            uid: uid.to_string(),
            time: now(),
        })
    })?;
    step(Step::SwitchToLrp);
    let card = s.enable_lrp()?;
    Ok(card.authenticate_lrp_first(0, &AesKey::FACTORY)?)
}
