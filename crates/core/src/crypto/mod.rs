//! Cryptography of the NTAG 424 DNA: AES primitives, EV2 session keys, SDM/SUN, CRC32NK
//! and LRP. (The originality signature, which needs elliptic curves, is `tag424-originality`.)
//!
//! Everything here is pure computation; no module below talks to a card.

pub mod diversify;
pub mod ev2;
pub mod key;
pub mod lrp;
pub mod sdm;
pub mod sdm_lrp;

use aes::Aes128;
use cipher::{BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;

pub use key::{AesKey, KeyParseError};

/// One AES-128 block encryption (ECB of a single block).
pub fn aes_encrypt_block(key: &AesKey, block: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.as_bytes().into());
    let mut b = (*block).into();
    cipher.encrypt_block(&mut b);
    b.into()
}

/// One AES-128 block decryption.
pub fn aes_decrypt_block(key: &AesKey, block: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(key.as_bytes().into());
    let mut b = (*block).into();
    cipher.decrypt_block(&mut b);
    b.into()
}

/// Data that must be a whole number of AES blocks was not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a whole number of 16-byte AES blocks", crate::plural::count(*.0, "byte", "bytes"))]
pub struct NotBlockAligned(pub usize);

/// AES-128-CBC encryption without padding (`data.len()` must be a multiple of 16).
pub fn cbc_encrypt(key: &AesKey, iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, NotBlockAligned> {
    if !data.len().is_multiple_of(16) {
        return Err(NotBlockAligned(data.len()));
    }
    let mut buf = data.to_vec();
    let enc = cbc::Encryptor::<Aes128>::new(key.as_bytes().into(), iv.into());
    enc.encrypt_padded_mut::<cipher::block_padding::NoPadding>(&mut buf, data.len())
        .map_err(|_| NotBlockAligned(data.len()))?;
    Ok(buf)
}

/// AES-128-CBC decryption without padding removal.
pub fn cbc_decrypt(key: &AesKey, iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, NotBlockAligned> {
    if !data.len().is_multiple_of(16) {
        return Err(NotBlockAligned(data.len()));
    }
    let mut buf = data.to_vec();
    let dec = cbc::Decryptor::<Aes128>::new(key.as_bytes().into(), iv.into());
    dec.decrypt_padded_mut::<cipher::block_padding::NoPadding>(&mut buf)
        .map_err(|_| NotBlockAligned(data.len()))?;
    Ok(buf)
}

/// AES-CMAC (NIST SP 800-38B), the full 16 bytes.
pub fn cmac(key: &AesKey, msg: &[u8]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as KeyInit>::new(key.as_bytes().into());
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// NXP's MAC truncation: the 8 bytes at odd indexes 1, 3, …, 15 of a 16-byte CMAC.
///
/// The datasheet calls them the "even-numbered bytes" because it numbers S15..S0.
pub fn truncate_mac(full: &[u8; 16]) -> [u8; 8] {
    let mut t = [0u8; 8];
    for (i, b) in t.iter_mut().enumerate() {
        *b = full[2 * i + 1];
    }
    t
}

/// `MACt`: CMAC truncated to 8 bytes.
pub fn mact(key: &AesKey, msg: &[u8]) -> [u8; 8] {
    truncate_mac(&cmac(key, msg))
}

/// Constant-time comparison of two MACs (or any secrets).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// ISO/IEC 9797-1 padding method 2: append `80`, then zeros up to a multiple of 16.
/// Always adds at least one byte, so aligned data gains a whole block.
pub fn pad_m2(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 16);
    v.extend_from_slice(data);
    v.push(0x80);
    while !v.len().is_multiple_of(16) {
        v.push(0);
    }
    v
}

/// Removes ISO/IEC 9797-1 method 2 padding; `None` when the padding is malformed.
pub fn unpad_m2(data: &[u8]) -> Option<&[u8]> {
    let pos = data.iter().rposition(|&b| b != 0)?;
    if data[pos] != 0x80 || data.len() - pos > 16 {
        return None;
    }
    Some(&data[..pos])
}

/// Rotate left by one byte (`RndA'`, `RndB'`).
pub fn rotl1(b: &[u8; 16]) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..15].copy_from_slice(&b[1..]);
    r[15] = b[0];
    r
}

/// Rotate right by one byte (inverse of [`rotl1`]).
pub fn rotr1(b: &[u8; 16]) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[1..].copy_from_slice(&b[..15]);
    r[0] = b[15];
    r
}

const CRC32_JAMCRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_JAMCRC);

/// CRC32NK of ChangeKey: the IEEE 802.3 CRC-32 without its final XOR (CRC-32/JAMCRC),
/// serialized least significant byte first.
pub fn crc32nk(data: &[u8]) -> [u8; 4] {
    CRC32_JAMCRC.checksum(data).to_le_bytes()
}

/// Fills a buffer from the OS random number generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_round_trip() {
        assert_eq!(pad_m2(&[]).len(), 16);
        assert_eq!(pad_m2(&[0u8; 16]).len(), 32);
        let p = pad_m2(&[1, 2, 3]);
        assert_eq!(unpad_m2(&p), Some(&[1u8, 2, 3][..]));
        assert_eq!(unpad_m2(&[0u8; 16]), None);
        assert_eq!(unpad_m2(&[1u8; 16]), None);
    }

    #[test]
    fn crc32nk_is_jamcrc_le() {
        let k = hex::decode("F3847D627727ED3BC9C4CC050489B966").unwrap();
        assert_eq!(hex::encode_upper(crc32nk(&k)), "789DFADC");
    }

    #[test]
    fn rotations_invert() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(rotr1(&rotl1(&b)), b);
        assert_eq!(rotl1(&b)[15], 0);
    }
}
