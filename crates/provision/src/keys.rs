//! The five application keys of an encoded tag and their roles.
//!
//! | key | role |
//! |---|---|
//! | 0 | application master key: ChangeKey, ChangeFileSettings, SetConfiguration |
//! | 1 | SDM file read key: SDMMAC (and `{enc}`); the KEY exported to keys.csv |
//! | 2 | SDM meta read key: decrypts `{picc}` |
//! | 3 | NDEF write key: WriteData / ReadWrite of the NDEF file |
//! | 4 | spare (proprietary file), changed so no factory key is left |

use serde::{Deserialize, Serialize};

use crate::crypto::AesKey;

/// Key 0: the application master key (ChangeKey, ChangeFileSettings, SetConfiguration).
pub const KEY_MASTER: u8 = 0;
/// Key 1: the SDM file read key (SDMMAC and `{enc}`; exported to keys.csv).
pub const KEY_SDM_FILE_READ: u8 = 1;
/// Key 2: the SDM meta read key (decrypts `{picc}`).
pub const KEY_SDM_META_READ: u8 = 2;
/// Key 3: the NDEF write key.
pub const KEY_NDEF_WRITE: u8 = 3;
/// System identifier appended to every diversification input.
pub const DIVERSIFICATION_SYSTEM_ID: &[u8] = b"tag424";
/// The key version written with every new key (factory keys have version 00).
pub const KEY_VERSION: u8 = 0x01;

/// A key number of the NDEF application, 0 to 4: no other value can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyNo(u8);

impl KeyNo {
    /// Key 0, the application master key.
    pub const MASTER: KeyNo = KeyNo(KEY_MASTER);
    /// Every key number, 0 to 4.
    pub const ALL: [KeyNo; 5] = [KeyNo(0), KeyNo(1), KeyNo(2), KeyNo(3), KeyNo(4)];
    /// Keys 1 to 4, changed before key 0.
    pub const APP: [KeyNo; 4] = [KeyNo(1), KeyNo(2), KeyNo(3), KeyNo(4)];

    /// `None` for anything but 0 to 4.
    pub const fn new(n: u8) -> Option<KeyNo> {
        if n < 5 {
            Some(KeyNo(n))
        } else {
            None
        }
    }

    /// The number, 0 to 4.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// Why keys could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot derive the tag's keys from the master key: {0}")]
pub struct DeriveError(#[from] crate::crypto::diversify::DiversifyError);

/// The five keys of one tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeySet(#[serde(with = "crate::hex_serde::keys5")] pub [AesKey; 5]);

impl KeySet {
    /// Five fresh keys from the OS random number generator.
    pub fn random() -> Self {
        KeySet(std::array::from_fn(|_| AesKey::random()))
    }

    /// Keys derived from a master key with NXP AN10922 (AES-128): key `k` of the tag with UID
    /// `uid` is diversified with `M = UID(7) || k || "tag424"`, so it can be re-derived later.
    /// A failure is an error: never a key that could not be re-derived.
    pub fn diversified(master: &AesKey, uid: &[u8; 7]) -> Result<Self, DeriveError> {
        let mut keys: [AesKey; 5] = std::array::from_fn(|_| AesKey::FACTORY);
        for k in KeyNo::ALL {
            let mut m = [0u8; 7 + 1 + DIVERSIFICATION_SYSTEM_ID.len()];
            m[..7].copy_from_slice(uid);
            m[7] = k.get();
            m[8..].copy_from_slice(DIVERSIFICATION_SYSTEM_ID);
            keys[k.get() as usize] = crate::crypto::diversify::an10922_aes128(master, &m)?;
        }
        Ok(KeySet(keys))
    }

    /// All five keys at the factory value (all zero).
    pub fn factory() -> Self {
        KeySet(std::array::from_fn(|_| AesKey::FACTORY))
    }

    /// Key `n`.
    pub fn key(&self, n: KeyNo) -> &AesKey {
        &self.0[n.get() as usize]
    }

    /// Key `n`, or `None` when `n` is not 0 to 4.
    pub fn get(&self, n: u8) -> Option<&AesKey> {
        KeyNo::new(n).map(|k| self.key(k))
    }

    /// The SDM file read key (exported as KEY).
    pub fn sdm_file_read(&self) -> &AesKey {
        self.key(KeyNo(KEY_SDM_FILE_READ))
    }

    /// The SDM meta read key (decrypts `{picc}`).
    pub fn sdm_meta_read(&self) -> &AesKey {
        self.key(KeyNo(KEY_SDM_META_READ))
    }
}
