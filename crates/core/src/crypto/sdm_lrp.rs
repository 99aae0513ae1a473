//! Secure Dynamic Messaging (SUN) math for LRP mode (NT4H2421Gx §9.3.3–§9.3.9).
//!
//! The same layout as AES SUN ([`super::sdm`]) with LRP underneath:
//!
//! * PICCData is 24 bytes: `PICCRand(8) || LRICB(SDMMetaReadKey, counter = PICCRand, plain)`,
//!   where `plain` is the AES layout (`PICCDataTag || [UID] || [ctr LE] || random`) and the LRP
//!   key is the meta read key itself (updated key 0), no session key.
//! * One session vector `0001 0080 || [UID] || [ctr LE] || 00… || 1EE1` (16 bytes, the zero
//!   padding before the label) gives `SesSDMFileReadMaster = CMAC_LRP(SDMFileReadKey, SV)`;
//!   its updated key 0 is the MAC key and updated key 1 the ENC key.
//! * SDMMAC = MACt_LRP(MAC key, input); SDMENCFileData = LRICB(ENC key, counter =
//!   `ctr LE(3) || 000000`, no padding).
//!
//! Both directions live here, as in `sdm`: the simulator encrypts, the verifier decrypts.

use zeroize::Zeroizing;

use super::lrp::{Lrp, LrpSessionKeys};
use super::sdm::{ctr_le, parse_picc_plain, picc_plain, PiccData, SdmError};
use super::AesKey;

/// Bytes of LRP PICCData: PICCRand (8) and one encrypted block.
pub const PICC_LEN: usize = 24;

/// The LRP SDM session vector: only the mirrored elements, zero-padded to 14 bytes, then `1EE1`.
pub fn session_vector(uid: Option<&[u8; 7]>, ctr: Option<u32>) -> [u8; 16] {
    let mut sv = [0u8; 16];
    sv[..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    let mut pos = 4;
    if let Some(uid) = uid {
        sv[pos..pos + 7].copy_from_slice(uid);
        pos += 7;
    }
    if let Some(c) = ctr {
        sv[pos..pos + 3].copy_from_slice(&ctr_le(c));
    }
    sv[14..].copy_from_slice(&[0x1E, 0xE1]);
    sv
}

/// SesSDMFileRead keys: MAC (updated key 0) and ENC (updated key 1) of
/// `CMAC_LRP(SDMFileReadKey, SV)`.
pub fn session_keys(
    file_read_key: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
) -> LrpSessionKeys {
    let master = AesKey::new(Lrp::new(file_read_key).cmac(&session_vector(uid, ctr)));
    LrpSessionKeys::from_master(&master)
}

/// SDMMAC in LRP mode: MACt_LRP over the ASCII file bytes from SDMMACInputOffset to SDMMACOffset.
pub fn sdm_mac(
    file_read_key: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
    input: &[u8],
) -> [u8; 8] {
    session_keys(file_read_key, uid, ctr).mac().mact(input)
}

/// Decrypts LRP PICCData (24 bytes) and checks its tag byte.
pub fn decrypt_picc_data(meta_read_key: &AesKey, enc: &[u8]) -> Result<PiccData, SdmError> {
    if enc.len() != PICC_LEN {
        return Err(SdmError::PiccDataLength(enc.len()));
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&enc[..8]);
    let plain = Zeroizing::new(
        Lrp::new(meta_read_key)
            .lricb_decrypt(&mut counter, &enc[8..])
            .map_err(|_| SdmError::PiccDataLength(enc.len()))?,
    );
    let block: [u8; 16] = plain[..]
        .try_into()
        .map_err(|_| SdmError::PiccDataLength(enc.len()))?;
    let block = Zeroizing::new(block);
    parse_picc_plain(&block)
}

/// The chip side: `PICCRand || LRICB(meta key, PICCRand, tag || [UID] || [ctr] || random)`.
pub fn encrypt_picc_data(
    meta_read_key: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
    picc_rand: &[u8; 8],
    random: &[u8; 16],
) -> [u8; PICC_LEN] {
    let plain = Zeroizing::new(picc_plain(uid, ctr, random));
    let mut counter = *picc_rand;
    let mut out = [0u8; PICC_LEN];
    out[..8].copy_from_slice(picc_rand);
    // One whole block with a non-empty counter: LRICB cannot fail here.
    if let Ok(ct) = Lrp::new(meta_read_key).lricb_encrypt(&mut counter, &plain[..]) {
        out[8..].copy_from_slice(&ct);
    }
    out
}

fn file_counter(ctr: u32) -> [u8; 6] {
    let c = ctr_le(ctr);
    [c[0], c[1], c[2], 0, 0, 0]
}

fn file_data(
    file_read_key: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    data: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, SdmError> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return Err(SdmError::EncDataLength(data.len()));
    }
    let keys = session_keys(file_read_key, Some(uid), Some(ctr));
    let mut counter = file_counter(ctr);
    let r = if encrypt {
        keys.enc().lricb_encrypt(&mut counter, data)
    } else {
        keys.enc().lricb_decrypt(&mut counter, data)
    };
    r.map_err(|_| SdmError::EncDataLength(data.len()))
}

/// Decrypts SDMENCFileData in LRP mode (UID and counter are both mandatory).
pub fn decrypt_file_data(
    file_read_key: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    enc: &[u8],
) -> Result<Vec<u8>, SdmError> {
    file_data(file_read_key, uid, ctr, enc, false)
}

/// The chip side of [`decrypt_file_data`].
pub fn encrypt_file_data(
    file_read_key: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    plain: &[u8],
) -> Result<Vec<u8>, SdmError> {
    file_data(file_read_key, uid, ctr, plain, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_vector_pads_before_the_label() {
        let uid = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            hex::encode_upper(session_vector(Some(&uid), Some(0x010203))),
            "0001008001020304050607030201".to_string() + "1EE1"
        );
        assert_eq!(
            hex::encode_upper(session_vector(None, Some(1))),
            "00010080010000000000000000001EE1"
        );
    }

    #[test]
    fn picc_round_trip() {
        let k = AesKey::new([7u8; 16]);
        let uid = [4, 1, 2, 3, 4, 5, 6];
        let enc = encrypt_picc_data(&k, Some(&uid), Some(99), &[9u8; 8], &[0xAB; 16]);
        let p = decrypt_picc_data(&k, &enc).unwrap();
        assert_eq!(p.uid, Some(uid));
        assert_eq!(p.read_ctr, Some(99));
        assert!(decrypt_picc_data(&k, &enc[..16]).is_err());
        let data = [0x41u8; 32];
        let e = encrypt_file_data(&k, &uid, 5, &data).unwrap();
        assert_eq!(decrypt_file_data(&k, &uid, 5, &e).unwrap(), data);
        assert!(decrypt_file_data(&k, &uid, 5, &e[..15]).is_err());
    }
}
