//! Secure Dynamic Messaging (SUN) math for AES mode (NT4H2421Gx §9.3, AN12196 §3).
//!
//! Both directions live here: the chip side (used by the simulator) encrypts PICCData and file
//! data and computes SDMMAC; the reader side (used by the verifier) decrypts and checks them.
//! Counters are 24-bit and enter every cryptographic input least significant byte first.

use super::{aes_decrypt_block, aes_encrypt_block, cbc_decrypt, cbc_encrypt, cmac, mact, AesKey};
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// `PICCDataTag` bit 7: the UID is part of PICCData.
pub const TAG_UID: u8 = 0x80;
/// `PICCDataTag` bit 6: SDMReadCtr is part of PICCData.
pub const TAG_CTR: u8 = 0x40;

/// The chip's cryptographic mode: AES (factory) or LRP (after the irreversible switch).
///
/// SUN messages look alike in both modes except for PICCData (16 bytes in AES, 24 in LRP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum SdmMode {
    /// AES-128 secure messaging and SDM, as the chip leaves the factory.
    #[default]
    Aes,
    /// Leakage Resilient Primitive mode (AN12304), set once with SetConfiguration and irreversible.
    Lrp,
}

impl SdmMode {
    /// The lowercase name, `aes` or `lrp` (what `FromStr` reads back).
    pub fn as_str(self) -> &'static str {
        match self {
            SdmMode::Aes => "aes",
            SdmMode::Lrp => "lrp",
        }
    }

    /// Bytes of encrypted PICCData in this mode (16 in AES, PICCRand + 16 in LRP).
    pub fn picc_len(self) -> usize {
        match self {
            SdmMode::Aes => 16,
            SdmMode::Lrp => 24,
        }
    }

    /// The mode whose PICCData has `len` bytes.
    pub fn from_picc_len(len: usize) -> Option<SdmMode> {
        match len {
            16 => Some(SdmMode::Aes),
            24 => Some(SdmMode::Lrp),
            _ => None,
        }
    }
}

impl std::fmt::Display for SdmMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SdmMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aes" => Ok(SdmMode::Aes),
            "lrp" => Ok(SdmMode::Lrp),
            _ => Err(format!("unknown mode {s:?}: use aes or lrp")),
        }
    }
}

/// SDM session keys derived from the SDM file read key.
/// Both keys wipe themselves when dropped.
#[derive(Clone, Debug)]
pub struct SdmSessionKeys {
    /// KSesSDMFileReadENC: decrypts SDMENCFileData.
    pub enc: AesKey,
    /// KSesSDMFileReadMAC: computes SDMMAC.
    pub mac: AesKey,
}

impl ZeroizeOnDrop for SdmSessionKeys {}

/// Why SDM data could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdmError {
    /// PICCData of the given length in bytes, which neither mode defines.
    #[error("PICCData must be 16 bytes (32 hex digits, AES) or 24 bytes (48 hex digits, LRP), got {}", crate::plural::count(*.0, "byte", "bytes"))]
    PiccDataLength(usize),
    /// The decrypted PICCDataTag is not one the chip writes: the key is most likely wrong.
    #[error("PICCData decrypted to an unknown tag byte {0:#04x}: wrong SDM meta read key?")]
    PiccDataTag(u8),
    /// Encrypted file data of the given length in bytes.
    #[error("encrypted file data must be a non-empty multiple of 16 bytes, got {}", crate::plural::count(*.0, "byte", "bytes"))]
    EncDataLength(usize),
    /// SDMENCFileData without both the UID and the read counter to derive its key from.
    #[error("encrypted file data needs both the UID and the read counter")]
    EncNeedsUidAndCounter,
    /// The mode given does not match PICCData of the given length in bytes.
    #[error("this SUN message is in {0} mode, which does not fit PICCData of {1} bytes")]
    ModeMismatch(SdmMode, usize),
}

/// The 16n-byte session vector `label || 0001 0080 || [UID] || [SDMReadCtr LE] || 0…`.
/// Only the elements the chip mirrors are included (datasheet §9.3.9).
pub fn session_vector(label: [u8; 2], uid: Option<&[u8; 7]>, ctr: Option<u32>) -> Vec<u8> {
    let mut sv = Vec::with_capacity(16);
    sv.extend_from_slice(&label);
    sv.extend_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    if let Some(uid) = uid {
        sv.extend_from_slice(uid);
    }
    if let Some(c) = ctr {
        sv.extend_from_slice(&ctr_le(c));
    }
    while !sv.len().is_multiple_of(16) {
        sv.push(0);
    }
    sv
}

/// A 24-bit counter as its three least significant bytes, LSB first.
pub fn ctr_le(ctr: u32) -> [u8; 3] {
    let b = ctr.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// KSesSDMFileReadMAC = CMAC(SDMFileReadKey, SV2) with only the mirrored elements.
pub fn mac_session_key(file_read_key: &AesKey, uid: Option<&[u8; 7]>, ctr: Option<u32>) -> AesKey {
    AesKey::new(cmac(file_read_key, &session_vector([0x3C, 0xC3], uid, ctr)))
}

/// KSesSDMFileReadENC = CMAC(SDMFileReadKey, SV1); UID and counter are both mandatory.
pub fn enc_session_key(file_read_key: &AesKey, uid: &[u8; 7], ctr: u32) -> AesKey {
    AesKey::new(cmac(
        file_read_key,
        &session_vector([0xC3, 0x3C], Some(uid), Some(ctr)),
    ))
}

/// Both SDM session keys (when file data is encrypted, UID and counter are always present).
pub fn session_keys(file_read_key: &AesKey, uid: &[u8; 7], ctr: u32) -> SdmSessionKeys {
    SdmSessionKeys {
        enc: enc_session_key(file_read_key, uid, ctr),
        mac: mac_session_key(file_read_key, Some(uid), Some(ctr)),
    }
}

/// SDMMAC = MACt(KSesSDMFileReadMAC, input), where input is the ASCII file content from
/// SDMMACInputOffset up to SDMMACOffset (possibly empty).
pub fn sdm_mac(
    file_read_key: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
    input: &[u8],
) -> [u8; 8] {
    mact(&mac_session_key(file_read_key, uid, ctr), input)
}

/// What a decrypted PICCData block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiccData {
    /// PICCDataTag: bit 7 UID mirrored, bit 6 counter mirrored, low nibble the UID length.
    pub tag: u8,
    /// The UID, when PICCDataTag says it is mirrored.
    pub uid: Option<[u8; 7]>,
    /// SDMReadCtr, when PICCDataTag says it is mirrored.
    pub read_ctr: Option<u32>,
}

/// Decrypts `E(SDMMetaReadKey, IV=0, PICCDataTag || [UID] || [ctr] || random)` and checks its tag.
pub fn decrypt_picc_data(meta_read_key: &AesKey, enc: &[u8]) -> Result<PiccData, SdmError> {
    let block: &[u8; 16] = enc
        .try_into()
        .map_err(|_| SdmError::PiccDataLength(enc.len()))?;
    let plain = Zeroizing::new(aes_decrypt_block(meta_read_key, block));
    parse_picc_plain(&plain)
}

/// Reads a decrypted PICCData block (both modes): checks the tag byte, which is the only
/// integrity the encryption has, and takes the mirrored UID and counter.
pub fn parse_picc_plain(plain: &[u8; 16]) -> Result<PiccData, SdmError> {
    let tag = plain[0];
    // Only the UID and counter bits may be set; the UID length is 7 when the UID is mirrored.
    let uid_len = tag & 0x0F;
    let valid = tag & 0x30 == 0
        && ((tag & TAG_UID != 0 && uid_len == 7) || (tag & TAG_UID == 0 && uid_len == 0));
    if !valid || tag & (TAG_UID | TAG_CTR) == 0 {
        return Err(SdmError::PiccDataTag(tag));
    }
    let mut pos = 1;
    let uid = if tag & TAG_UID != 0 {
        let mut u = [0u8; 7];
        u.copy_from_slice(&plain[1..8]);
        pos = 8;
        Some(u)
    } else {
        None
    };
    let read_ctr = if tag & TAG_CTR != 0 {
        Some(u32::from_le_bytes([
            plain[pos],
            plain[pos + 1],
            plain[pos + 2],
            0,
        ]))
    } else {
        None
    };
    Ok(PiccData { tag, uid, read_ctr })
}

/// The PICCData plaintext (both modes): `PICCDataTag || [UID] || [ctr LE] || random`.
pub fn picc_plain(uid: Option<&[u8; 7]>, ctr: Option<u32>, random: &[u8; 16]) -> [u8; 16] {
    let mut plain = *random;
    let mut tag = 0u8;
    let mut pos = 1;
    if let Some(uid) = uid {
        tag |= TAG_UID | 7;
        plain[1..8].copy_from_slice(uid);
        pos = 8;
    }
    if let Some(c) = ctr {
        tag |= TAG_CTR;
        plain[pos..pos + 3].copy_from_slice(&ctr_le(c));
    }
    plain[0] = tag;
    plain
}

/// The chip side: encrypts PICCData. `random` fills the bytes after the mirrored data.
pub fn encrypt_picc_data(
    meta_read_key: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
    random: &[u8; 16],
) -> [u8; 16] {
    let plain = Zeroizing::new(picc_plain(uid, ctr, random));
    aes_encrypt_block(meta_read_key, &plain)
}

fn file_data_iv(enc_key: &AesKey, ctr: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..3].copy_from_slice(&ctr_le(ctr));
    aes_encrypt_block(enc_key, &b)
}

/// Decrypts SDMENCFileData: IV = E(KSesSDMFileReadENC, ctr LE || 0×13), CBC, no padding.
pub fn decrypt_file_data(
    file_read_key: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    enc: &[u8],
) -> Result<Vec<u8>, SdmError> {
    if enc.is_empty() || !enc.len().is_multiple_of(16) {
        return Err(SdmError::EncDataLength(enc.len()));
    }
    let k = enc_session_key(file_read_key, uid, ctr);
    cbc_decrypt(&k, &file_data_iv(&k, ctr), enc).map_err(|e| SdmError::EncDataLength(e.0))
}

/// The chip side of [`decrypt_file_data`].
pub fn encrypt_file_data(
    file_read_key: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    plain: &[u8],
) -> Result<Vec<u8>, SdmError> {
    if plain.is_empty() || !plain.len().is_multiple_of(16) {
        return Err(SdmError::EncDataLength(plain.len()));
    }
    let k = enc_session_key(file_read_key, uid, ctr);
    cbc_encrypt(&k, &file_data_iv(&k, ctr), plain).map_err(|e| SdmError::EncDataLength(e.0))
}
