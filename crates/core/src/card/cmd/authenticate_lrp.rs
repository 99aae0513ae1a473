//! AuthenticateLRPFirst (INS `71`) and AuthenticateLRPNonFirst (INS `77`), LRP mode.
//! CommMode: n/a (the exchange itself establishes the session). NT4H2421Gx §9.2.5–§9.2.7,
//! §10.4.3, §10.4.4; AN12321 Table 2.
//!
//! First, part 1: `90 71 00 00 08 KeyNo 06 PCDCap2(02 00 00 00 00 00) 00` → `01 || RndB`
//! (AuthMode 01 and RndB in plain) with `91AF`. An AES tag answers 16 bytes instead.
//! Part 2: `90 AF 00 00 20 RndA || CMAC_LRP(SesAuthMACKey, RndA || RndB) 00` →
//! `E_LRP(ENC, EncCtr 0, TI || PDCap2 || PCDCap2) || CMAC_LRP(MAC, RndB || RndA || PICCData)`.
//! The session starts with CmdCtr 0 and EncCtr 1.
//!
//! NonFirst: `90 77 00 00 01 KeyNo 00` → `01 || RndB` with `91AF`; part 2 as above, answered by
//! `CMAC_LRP(MAC, RndB || RndA)` alone. TI and CmdCtr are kept, EncCtr restarts at 0.
//! (The datasheet's Table 43 prints INS 71h for NonFirst; Table 22 and NXP's reader library use 77h.)

use zeroize::Zeroizing;

use crate::card::cmd::authenticate::check_key_no;
use crate::card::session::SmKeys;
use crate::card::{Card, CardError, Malformed, Session, Sw};
use crate::crypto::lrp::{
    auth_pcd_response, decrypt_auth_picc_data, derive_auth_session_keys, verify_auth_picc_response,
    verify_auth_picc_response_non_first, LrpSessionKeys,
};
use crate::crypto::sdm::SdmMode;
use crate::crypto::{ct_eq, AesKey};
use crate::transport::Transport;

const NAME_FIRST: &str = "AuthenticateLRPFirst";
const NAME_NON_FIRST: &str = "AuthenticateLRPNonFirst";

/// PCDCap2 of an LRP first authentication: byte 0 bit 1 asks for LRP.
pub const PCD_CAP2_LRP: [u8; 6] = [0x02, 0, 0, 0, 0, 0];

fn malformed(command: &'static str, expected: usize, got: usize) -> CardError {
    CardError::Malformed {
        command,
        problem: Malformed::Length { expected, got },
    }
}

/// Part 1; returns RndB.
fn part1<T: Transport>(
    card: &mut Card<T>,
    name: &'static str,
    apdu: &[u8],
) -> Result<Zeroizing<[u8; 16]>, CardError> {
    let (data, sw) = card.auth_part1(name, apdu)?;
    if sw != Sw::AdditionalFrame {
        return Err(CardError::Status { command: name, sw });
    }
    if data.len() == 16 {
        // E(K, RndB) of an AES tag (LRP not enabled).
        return Err(CardError::WrongMode {
            command: name,
            expected: SdmMode::Lrp,
            actual: SdmMode::Aes,
        });
    }
    if data.len() != 17 {
        return Err(malformed(name, 17, data.len()));
    }
    if data[0] != 0x01 {
        return Err(CardError::Malformed {
            command: name,
            problem: Malformed::Field(format!("AuthMode {:02X}h, expected 01h (LRP)", data[0])),
        });
    }
    let mut rnd_b = Zeroizing::new([0u8; 16]);
    rnd_b.copy_from_slice(&data[1..]);
    Ok(rnd_b)
}

/// What part 2 leaves: RndA, the session keys and the chip's answer.
type Part2 = (Zeroizing<[u8; 16]>, LrpSessionKeys, Vec<u8>);

/// Part 2; returns (RndA, session keys, the answer).
fn part2<T: Transport>(
    card: &mut Card<T>,
    name: &'static str,
    key: &AesKey,
    rnd_b: &[u8; 16],
    answer_len: usize,
) -> Result<Part2, CardError> {
    let mut rnd_a = Zeroizing::new([0u8; 16]);
    card.random(&mut rnd_a[..]);
    let bad = |e: crate::crypto::lrp::LrpError| CardError::InvalidArgument(e.to_string());
    let keys = derive_auth_session_keys(key, &rnd_a[..], rnd_b).map_err(bad)?;
    let pcd = auth_pcd_response(&keys, &rnd_a[..], rnd_b).map_err(bad)?;
    let mut apdu = vec![0x90, 0xAF, 0x00, 0x00, 0x20];
    apdu.extend_from_slice(&rnd_a[..]);
    apdu.extend_from_slice(&pcd);
    apdu.push(0x00);
    let (data, sw) = card.transceive(name, &apdu, false)?;
    if sw != Sw::Ok {
        return Err(CardError::Status { command: name, sw });
    }
    if data.len() != answer_len {
        return Err(malformed(name, answer_len, data.len()));
    }
    Ok((rnd_a, keys, data))
}

impl<T: Transport> Card<T> {
    /// AuthenticateLRPFirst with key `key_no`: a new LRP session (TI chosen by the chip,
    /// CmdCtr 0, EncCtr 1). A tag still in AES mode gives [`CardError::WrongMode`].
    pub fn authenticate_lrp_first(
        &mut self,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'_, T>, CardError> {
        check_key_no(key_no)?;
        let mut apdu = vec![0x90, 0x71, 0x00, 0x00, 0x08, key_no, 0x06];
        apdu.extend_from_slice(&PCD_CAP2_LRP);
        apdu.push(0x00);
        let rnd_b = part1(self, NAME_FIRST, &apdu)?;
        let (rnd_a, keys, data) = part2(self, NAME_FIRST, key, &rnd_b, 32)?;
        let (picc_data, picc_resp) = data.split_at(16);
        let ok = verify_auth_picc_response(&keys, &rnd_a[..], &rnd_b[..], picc_data, picc_resp)
            .unwrap_or(false);
        if !ok {
            return Err(CardError::AuthenticationProof { key_no });
        }
        let pd = decrypt_auth_picc_data(&keys, picc_data)
            .map_err(|e| CardError::InvalidArgument(e.to_string()))?;
        if !ct_eq(&pd.pcd_cap2, &PCD_CAP2_LRP) || pd.pd_cap2[0] & 0x02 == 0 {
            return Err(CardError::Malformed {
                command: NAME_FIRST,
                problem: Malformed::Field(format!(
                    "capabilities PDCap2 {} / PCDCap2 {} do not confirm LRP",
                    hex::encode_upper(pd.pd_cap2),
                    hex::encode_upper(pd.pcd_cap2)
                )),
            });
        }
        Ok(Session {
            card: self,
            keys: SmKeys::Lrp(Box::new(keys), pd.enc_ctr),
            ti: pd.ti,
            cmd_ctr: 0,
            key_no,
        })
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// AuthenticateLRPNonFirst with key `key_no`: new session keys, same TI and CmdCtr,
    /// EncCtr 0.
    pub fn authenticate_lrp_non_first(
        self,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'c, T>, CardError> {
        check_key_no(key_no)?;
        let Session {
            card, ti, cmd_ctr, ..
        } = self;
        let rnd_b = part1(
            card,
            NAME_NON_FIRST,
            &[0x90, 0x77, 0x00, 0x00, 0x01, key_no, 0x00],
        )?;
        let (rnd_a, keys, data) = part2(card, NAME_NON_FIRST, key, &rnd_b, 16)?;
        let ok = verify_auth_picc_response_non_first(&keys, &rnd_a[..], &rnd_b[..], &data)
            .unwrap_or(false);
        if !ok {
            return Err(CardError::AuthenticationProof { key_no });
        }
        Ok(Session {
            card,
            keys: SmKeys::Lrp(Box::new(keys), [0; 4]),
            ti,
            cmd_ctr,
            key_no,
        })
    }
}
