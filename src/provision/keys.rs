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

pub const KEY_MASTER: u8 = 0;
pub const KEY_SDM_FILE_READ: u8 = 1;
pub const KEY_SDM_META_READ: u8 = 2;
pub const KEY_NDEF_WRITE: u8 = 3;
/// System identifier appended to every diversification input.
pub const DIVERSIFICATION_SYSTEM_ID: &[u8] = b"tag424";
/// The key version written with every new key (factory keys have version 00).
pub const KEY_VERSION: u8 = 0x01;

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
    pub fn diversified(master: &AesKey, uid: &[u8; 7]) -> Self {
        KeySet(std::array::from_fn(|k| {
            let mut m = Vec::with_capacity(14);
            m.extend_from_slice(uid);
            m.push(k as u8);
            m.extend_from_slice(DIVERSIFICATION_SYSTEM_ID);
            crate::crypto::diversify::an10922_aes128(master, &m)
                .unwrap_or_else(|_| AesKey::random())
        }))
    }

    pub fn factory() -> Self {
        KeySet(std::array::from_fn(|_| AesKey::FACTORY))
    }

    pub fn key(&self, n: u8) -> &AesKey {
        &self.0[n as usize % 5]
    }

    /// The SDM file read key (exported as KEY).
    pub fn sdm_file_read(&self) -> &AesKey {
        self.key(KEY_SDM_FILE_READ)
    }
}
