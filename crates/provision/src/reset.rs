//! Returning an encoded test tag to its factory state with the keys from the journal.
//!
//! Order: authenticate with key 0, restore the NDEF file's factory settings (SDM off, write
//! free), clear the NDEF file, change keys 1–4 back to zero (those whose version says they
//! were changed), then key 0. Interrupted, it can simply be run again.
//!
//! A tag planned for LRP is reset in the mode it is in: still AES if the switch was not sent
//! (its keys are the factory ones, the NDEF file may already be written), LRP otherwise. The
//! switch to LRP and TagTamper are permanent; a reset does not undo them.

use crate::card::file_settings::{Access, AccessRights, FileSettings};
use crate::card::{Card, CommMode};
use crate::crypto::sdm::SdmMode;
use crate::crypto::AesKey;
use crate::transport::Transport;

use super::encode::{identify, with_key0, Key0, ProvisionError};
use super::journal::{now, Journal, Record};
use super::keys::{KeyNo, KEY_VERSION};
use super::layout::NDEF_FILE_SIZE;

/// The NDEF file's settings as delivered: Plain, read/write/read-write free, change key 0.
pub fn factory_ndef_settings() -> FileSettings {
    FileSettings {
        file_type: 0,
        comm_mode: CommMode::Plain,
        access: AccessRights {
            read: Access::Free,
            write: Access::Free,
            read_write: Access::Free,
            change: Access::Key(0),
        },
        size: NDEF_FILE_SIZE as u32,
        sdm: None,
    }
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetOutcome {
    /// The tag was returned to factory keys and settings (a `reset` record was journaled).
    Reset {
        /// The tag's UID.
        uid: String,
    },
    /// The tag already was in factory state ([`is_factory`]): nothing was sent that changes
    /// it and nothing was journaled.
    AlreadyFactory {
        /// The tag's UID.
        uid: String,
        /// The batch's journal knows the tag (it was reset before); else it never was in
        /// this batch.
        in_batch: bool,
    },
}

/// Whether the tag is in the state a reset leaves: its NDEF file has the factory settings,
/// keys 1–4 have the factory key version (00h) and key 0 is the factory key (an
/// authentication with it succeeds, in AES or, on a tag switched to LRP, in LRP). Changes
/// nothing on the tag.
pub fn is_factory<T: Transport>(card: &mut Card<T>) -> Result<bool, ProvisionError> {
    if card.get_file_settings(2)? != factory_ndef_settings() {
        return Ok(false);
    }
    for k in KeyNo::APP {
        if card.get_key_version(k.get())? != 0x00 {
            return Ok(false);
        }
    }
    let refused =
        |e: &crate::card::CardError| e.status() == Some(crate::card::Sw::AuthenticationError);
    match card.authenticate_first(SdmMode::Aes, 0, &AesKey::FACTORY) {
        Ok(_) => Ok(true),
        // 919D: a tag in LRP mode.
        Err(e) if e.status() == Some(crate::card::Sw::PermissionDenied) => {
            match card.authenticate_first(SdmMode::Lrp, 0, &AesKey::FACTORY) {
                Ok(_) => Ok(true),
                Err(e) if refused(&e) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) if refused(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Resets the tag on `card`. Its keys.csv row goes (the tag no longer has those keys); its tag
/// code stays used unless `free_code`, so a code printed on the tag is never given to a second
/// tag by accident. A tag that already is in factory state (reset before, or never in this
/// batch) is left as it is and said so ([`ResetOutcome::AlreadyFactory`]).
pub fn reset_tag<T: Transport>(
    card: &mut Card<T>,
    journal: &mut Journal,
    trust_simulator: bool,
    free_code: bool,
) -> Result<ResetOutcome, ProvisionError> {
    let id = identify(card, trust_simulator)?;
    if id.random_id {
        return Err(ProvisionError::RandomIdReset);
    }
    let uid = hex::encode_upper(id.uid);
    let Some(entry) = journal.tag(&uid).cloned() else {
        if is_factory(card)? {
            return Ok(ResetOutcome::AlreadyFactory {
                uid,
                in_batch: false,
            });
        }
        return Err(ProvisionError::Foreign { uid });
    };
    if entry.reset && is_factory(card)? {
        return Ok(ResetOutcome::AlreadyFactory {
            uid,
            in_batch: true,
        });
    }
    let keys = entry.keys()?;
    let master = if entry.reset {
        AesKey::FACTORY
    } else {
        keys.key(KeyNo::MASTER).clone()
    };
    // A tag planned for LRP may be in either mode (`with_key0` finds out). The switch is
    // permanent: a reset LRP tag stays LRP, with factory keys.
    let mode = if entry.lrp {
        SdmMode::Lrp
    } else {
        SdmMode::Aes
    };
    with_key0(card, mode, &master, &uid, |s, key0| {
        // First, so that a tag frozen with `--freeze-settings` (change access Fh: 919D,
        // NT4H2421Gx §10.7.1 Table 71) is refused with nothing changed.
        let mut s = match s.change_file_settings(2, &factory_ndef_settings()) {
            Ok(s) => s,
            Err(e)
                if entry.locks.settings
                    && e.status() == Some(crate::card::Sw::PermissionDenied) =>
            {
                return Err(ProvisionError::Frozen { uid: uid.clone() })
            }
            Err(e) => return Err(e.into()),
        };
        s = s.write_data(2, 0, &[0u8; NDEF_FILE_SIZE], CommMode::Plain)?;
        for k in KeyNo::APP {
            let v;
            (s, v) = s.get_key_version(k.get())?;
            if v == KEY_VERSION {
                s = s.change_key(k.get(), keys.key(k), &AesKey::FACTORY, 0x00)?;
            }
        }
        if key0 == Key0::Planned {
            s.change_own_key(&AesKey::FACTORY, 0x00)?;
        }
        Ok(())
    })?;
    journal.append(Record::Reset {
        uid: uid.clone(),
        time: now(),
        free_code,
    })?;
    Ok(ResetOutcome::Reset { uid })
}
