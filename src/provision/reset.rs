//! Returning an encoded test tag to its factory state with the keys from the journal.
//!
//! Order: authenticate with key 0, restore the NDEF file's factory settings (SDM off, write
//! free), clear the NDEF file, change keys 1–4 back to zero (those whose version says they
//! were changed), then key 0. Interrupted, it can simply be run again.

use crate::card::file_settings::{Access, AccessRights, FileSettings};
use crate::card::{Card, CommMode, Sw};
use crate::crypto::sdm::SdmMode;
use crate::crypto::AesKey;
use crate::transport::Transport;

use super::encode::{identify, ProvisionError};
use super::journal::{now, Journal, Record};
use super::keys::KEY_VERSION;
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

/// Resets the tag on `card`; returns its UID.
pub fn reset_tag<T: Transport>(
    card: &mut Card<T>,
    journal: &mut Journal,
    trust_simulator: bool,
) -> Result<String, ProvisionError> {
    let id = identify(card, trust_simulator)?;
    let uid = hex::encode_upper(id.uid);
    let entry = journal
        .tag(&uid)
        .cloned()
        .ok_or_else(|| ProvisionError::Foreign { uid: uid.clone() })?;
    let master = if entry.reset {
        AesKey::FACTORY
    } else {
        entry.keys.key(0).clone()
    };
    // At most two authentications: the journaled key 0, then the factory key.
    let mut key0_changed = !master.is_factory();
    // A tag planned for LRP may be in either mode: still AES means the switch was not made,
    // and as keys change only after it, the tag is untouched. The switch is permanent: a
    // reset LRP tag stays LRP, with factory keys.
    let mode = if entry.lrp {
        match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
            Ok(_) => {
                journal.append(Record::Reset {
                    uid: uid.clone(),
                    time: now(),
                })?;
                return Ok(uid);
            }
            Err(e) if e.status() == Some(Sw::PermissionDenied) => SdmMode::Lrp,
            Err(e) => return Err(e.into()),
        }
    } else {
        SdmMode::Aes
    };
    let s = match card.authenticate_first(mode, 0, &master) {
        Ok(s) => s,
        Err(e) if e.status() == Some(Sw::AuthenticationError) && key0_changed => {
            key0_changed = false;
            match card.authenticate_first(mode, 0, &AesKey::FACTORY) {
                Ok(s) => s,
                Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                    return Err(ProvisionError::Unrecoverable { uid })
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) if e.status() == Some(Sw::AuthenticationError) => {
            return Err(ProvisionError::Unrecoverable { uid })
        }
        Err(e) => return Err(e.into()),
    };
    let mut s = s.change_file_settings(2, &factory_ndef_settings())?;
    s = s.write_data(2, 0, &[0u8; NDEF_FILE_SIZE], CommMode::Plain)?;
    for k in 1..=4u8 {
        let v;
        (s, v) = s.get_key_version(k)?;
        if v == KEY_VERSION {
            s = s.change_key(k, entry.keys.key(k), &AesKey::FACTORY, 0x00)?;
        }
    }
    if key0_changed {
        s.change_own_key(&AesKey::FACTORY, 0x00)?;
    }
    journal.append(Record::Reset {
        uid: uid.clone(),
        time: now(),
    })?;
    Ok(uid)
}
