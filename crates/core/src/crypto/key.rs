//! AES-128 key material as a type: zeroized on drop, redacted in `Debug`, compared in constant time.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An AES-128 key (application key, session key or SDM key).
///
/// The bytes are wiped when the value is dropped and never appear in `Debug` output.
/// Printing a key is always an explicit call to [`AesKey::to_hex`].
#[derive(Clone)]
pub struct AesKey([u8; 16]);

impl Zeroize for AesKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for AesKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for AesKey {}

impl AesKey {
    /// The all-zero key every NTAG 424 DNA leaves the factory with.
    pub const FACTORY: AesKey = AesKey([0u8; 16]);

    /// The key with these 16 bytes.
    pub const fn new(bytes: [u8; 16]) -> Self {
        AesKey(bytes)
    }

    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Self {
        let mut k = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
        let key = AesKey(k);
        k.zeroize();
        key
    }

    /// The key with these bytes; anything but 16 bytes is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyParseError> {
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| KeyParseError::Length(bytes.len() * 2))?;
        Ok(AesKey(arr))
    }

    /// The 16 key bytes (handle with care: they are secret).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Uppercase hex, 32 characters, in a buffer sized up front and wiped on drop. Only call
    /// this where the user asked to see or export the key.
    pub fn to_hex(&self) -> KeyHex {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut s = zeroize::Zeroizing::new(String::with_capacity(32));
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 15) as usize] as char);
        }
        KeyHex(s)
    }

    /// True for the factory all-zero key (compared in constant time).
    pub fn is_factory(&self) -> bool {
        bool::from(self.0.ct_eq(&[0u8; 16]))
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}
impl Eq for AesKey {}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(REDACTED)")
    }
}

/// A key's hex text: wiped from memory when dropped, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHex(zeroize::Zeroizing<String>);

impl std::ops::Deref for KeyHex {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for KeyHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for KeyHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHex(REDACTED)")
    }
}

impl PartialEq<str> for KeyHex {
    fn eq(&self, other: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}
impl PartialEq<&str> for KeyHex {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}
impl PartialEq<String> for KeyHex {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

/// Why a key string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// Not 32 hex digits (the number found).
    #[error("a key is 32 hex digits (16 bytes); got {0} hex digits")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("a key is hex (0-9, A-F); found a non-hex character")]
    NotHex,
}

impl FromStr for AesKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Whitespace is dropped into a fixed buffer (no growing copy of the key text).
        let mut digits = zeroize::Zeroizing::new([0u8; 32]);
        let mut n = 0;
        for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
            if n < 32 {
                digits[n] = c;
            }
            n += 1;
        }
        if n != 32 {
            return Err(KeyParseError::Length(n));
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(&digits[..], &mut out).map_err(|_| KeyParseError::NotHex)?;
        let key = AesKey(out);
        out.zeroize();
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_holding_key_material_is_marked_zeroize_on_drop_and_a_key_zeroizes() {
        fn wipes_on_drop<T: ZeroizeOnDrop>() {}
        wipes_on_drop::<AesKey>();
        wipes_on_drop::<crate::crypto::lrp::Lrp>();
        wipes_on_drop::<crate::crypto::ev2::SessionKeys>();
        wipes_on_drop::<crate::crypto::sdm::SdmSessionKeys>();

        let mut k = AesKey::new([0xA5; 16]);
        k.zeroize();
        assert_eq!(k, AesKey::FACTORY);
    }

    #[test]
    fn debug_is_redacted() {
        let k: AesKey = "5ACE7E50AB65D5D51FD5BF5A16B8205B".parse().unwrap();
        assert_eq!(format!("{k:?}"), "AesKey(REDACTED)");
        assert_eq!(k.to_hex(), "5ACE7E50AB65D5D51FD5BF5A16B8205B");
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!(
            "00".parse::<AesKey>().unwrap_err(),
            KeyParseError::Length(2)
        );
        assert_eq!(
            "G0000000000000000000000000000000"
                .parse::<AesKey>()
                .unwrap_err(),
            KeyParseError::NotHex
        );
    }
}
