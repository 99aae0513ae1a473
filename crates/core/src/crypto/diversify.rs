//! AES-128 key diversification of NXP AN10922 §2.2: a per-tag key from a master key and
//! diversification input M (1 to 31 bytes), as `CMAC` over `01 || M` where the input is
//! always padded to two blocks (32 bytes) — unlike plain CMAC for inputs under 16 bytes.

use super::{aes_encrypt_block, AesKey};

/// Why diversification input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AN10922 diversification input must be 1 to 31 bytes, got {0}")]
pub struct DiversifyError(pub usize);

fn double(b: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut carry = 0u8;
    for i in (0..16).rev() {
        out[i] = (b[i] << 1) | carry;
        carry = b[i] >> 7;
    }
    if carry == 1 {
        out[15] ^= 0x87;
    }
    out
}

/// The diversified key for input `m`.
pub fn an10922_aes128(master: &AesKey, m: &[u8]) -> Result<AesKey, DiversifyError> {
    if m.is_empty() || m.len() > 31 {
        return Err(DiversifyError(m.len()));
    }
    let l = aes_encrypt_block(master, &[0u8; 16]);
    let k1 = double(&l);
    let k2 = double(&k1);
    let mut d = [0u8; 32];
    d[0] = 0x01;
    d[1..1 + m.len()].copy_from_slice(m);
    let padded = 1 + m.len() < 32;
    if padded {
        d[1 + m.len()] = 0x80;
    }
    let sub = if padded { k2 } else { k1 };
    for i in 0..16 {
        d[16 + i] ^= sub[i];
    }
    // CBC-MAC over the two blocks with a zero IV.
    let mut x = aes_encrypt_block(master, d[..16].try_into().unwrap_or(&[0u8; 16]));
    for i in 0..16 {
        x[i] ^= d[16 + i];
    }
    Ok(AesKey::new(aes_encrypt_block(master, &x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AN10922 §2.2.1 worked example (AES-128, UID 04782E21801D80, AID 3042F5, SystemIdentifier "NXP Abu").
    #[test]
    fn an10922_example() {
        let k: AesKey = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
        let m = hex::decode("04782E21801D803042F54E585020416275").unwrap();
        assert_eq!(
            an10922_aes128(&k, &m).unwrap().to_hex(),
            "A8DD63A3B89D54B37CA802473FDA9175"
        );
    }

    #[test]
    fn input_length_is_checked() {
        assert!(an10922_aes128(&AesKey::FACTORY, &[]).is_err());
        assert!(an10922_aes128(&AesKey::FACTORY, &[0; 32]).is_err());
        assert!(an10922_aes128(&AesKey::FACTORY, &[0; 31]).is_ok());
    }
}
