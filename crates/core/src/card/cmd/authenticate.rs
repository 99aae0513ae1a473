//! AuthenticateEV2First (INS `71`) and AuthenticateEV2NonFirst (INS `77`), AES mode.
//! CommMode: n/a (the exchange itself establishes the session). NT4H2421Gx §10.4.1, §10.4.2, §9.1.5.
//!
//! Part 1: `90 71 00 00 02 KeyNo 00 00` (LenCap 0) → `E(K, RndB)` with `91AF`.
//! Part 2: `90 AF 00 00 20 E(K, RndA || RndB')` → `E(K, TI || RndA' || PDcap2 || PCDcap2)` with
//! `9100` (First) or `E(K, RndA')` (NonFirst). IV is zero throughout; RndX' is RndX rotated left.

use zeroize::Zeroizing;

use crate::card::session::SmKeys;
use crate::card::{Card, CardError, Malformed, Session, Sw};
use crate::crypto::ev2::derive_session_keys;
use crate::crypto::sdm::SdmMode;
use crate::crypto::{cbc_decrypt, cbc_encrypt, ct_eq, rotl1, AesKey};
use crate::transport::Transport;

const NAME_FIRST: &str = "AuthenticateEV2First";
const NAME_NON_FIRST: &str = "AuthenticateEV2NonFirst";

/// Part 1 for either flavour; returns RndB.
fn part1<T: Transport>(
    card: &mut Card<T>,
    name: &'static str,
    apdu: &[u8],
    key: &AesKey,
) -> Result<[u8; 16], CardError> {
    let (data, sw) = card.auth_part1(name, apdu)?;
    if sw != Sw::AdditionalFrame {
        return Err(CardError::Status { command: name, sw });
    }
    let enc: [u8; 16] = data
        .as_slice()
        .try_into()
        .map_err(|_| CardError::Malformed {
            command: name,
            problem: Malformed::Length {
                expected: 16,
                got: data.len(),
            },
        })?;
    let plain =
        cbc_decrypt(key, &[0; 16], &enc).map_err(|e| CardError::InvalidArgument(e.to_string()))?;
    let mut rnd_b = [0u8; 16];
    rnd_b.copy_from_slice(&plain);
    Ok(rnd_b)
}

/// Part 2; returns (RndA, decrypted answer).
fn part2<T: Transport>(
    card: &mut Card<T>,
    name: &'static str,
    key: &AesKey,
    rnd_b: &[u8; 16],
    answer_len: usize,
) -> Result<([u8; 16], Zeroizing<Vec<u8>>), CardError> {
    let mut rnd_a = [0u8; 16];
    card.random(&mut rnd_a);
    let mut plain = Zeroizing::new([0u8; 32]);
    plain[..16].copy_from_slice(&rnd_a);
    plain[16..].copy_from_slice(&rotl1(rnd_b));
    let cryptogram = cbc_encrypt(key, &[0; 16], &plain[..])
        .map_err(|e| CardError::InvalidArgument(e.to_string()))?;
    let mut apdu = vec![0x90, 0xAF, 0x00, 0x00, 0x20];
    apdu.extend_from_slice(&cryptogram);
    apdu.push(0x00);
    let (data, sw) = card.transceive(name, &apdu, false)?;
    if sw != Sw::Ok {
        return Err(CardError::Status { command: name, sw });
    }
    if data.len() != answer_len {
        return Err(CardError::Malformed {
            command: name,
            problem: Malformed::Length {
                expected: answer_len,
                got: data.len(),
            },
        });
    }
    let answer = Zeroizing::new(
        cbc_decrypt(key, &[0; 16], &data).map_err(|e| CardError::InvalidArgument(e.to_string()))?,
    );
    Ok((rnd_a, answer))
}

impl<T: Transport> Card<T> {
    /// AuthenticateEV2First with key `key_no`: starts a new session (TI chosen by the chip,
    /// command counter 0).
    pub fn authenticate_ev2_first(
        &mut self,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'_, T>, CardError> {
        check_key_no(key_no)?;
        let rnd_b = Zeroizing::new(part1(
            self,
            NAME_FIRST,
            &[0x90, 0x71, 0x00, 0x00, 0x02, key_no, 0x00, 0x00],
            key,
        )?);
        let (rnd_a, answer) = part2(self, NAME_FIRST, key, &rnd_b, 32)?;
        let rnd_a = Zeroizing::new(rnd_a);
        if !ct_eq(&answer[4..20], &rotl1(&rnd_a)) {
            return Err(CardError::AuthenticationProof { key_no });
        }
        let mut ti = [0u8; 4];
        ti.copy_from_slice(&answer[..4]);
        let keys = derive_session_keys(key, &rnd_a, &rnd_b);
        Ok(Session {
            card: self,
            keys: SmKeys::Aes(keys),
            ti,
            cmd_ctr: 0,
            key_no,
        })
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// AuthenticateEV2NonFirst with key `key_no`: new session keys, same TI and command counter.
    pub fn authenticate_ev2_non_first(
        self,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'c, T>, CardError> {
        check_key_no(key_no)?;
        let Session {
            card, ti, cmd_ctr, ..
        } = self;
        let rnd_b = Zeroizing::new(part1(
            card,
            NAME_NON_FIRST,
            &[0x90, 0x77, 0x00, 0x00, 0x01, key_no, 0x00],
            key,
        )?);
        let (rnd_a, answer) = part2(card, NAME_NON_FIRST, key, &rnd_b, 16)?;
        let rnd_a = Zeroizing::new(rnd_a);
        if !ct_eq(&answer[..], &rotl1(&rnd_a)) {
            return Err(CardError::AuthenticationProof { key_no });
        }
        let keys = derive_session_keys(key, &rnd_a, &rnd_b);
        Ok(Session {
            card,
            keys: SmKeys::Aes(keys),
            ti,
            cmd_ctr,
            key_no,
        })
    }
}

impl<T: Transport> Card<T> {
    /// The first authentication in the chip's `mode` (AuthenticateEV2First or
    /// AuthenticateLRPFirst).
    pub fn authenticate_first(
        &mut self,
        mode: SdmMode,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'_, T>, CardError> {
        match mode {
            SdmMode::Aes => self.authenticate_ev2_first(key_no, key),
            SdmMode::Lrp => self.authenticate_lrp_first(key_no, key),
        }
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// A further authentication in this session's mode (EV2 or LRP NonFirst).
    pub fn authenticate_non_first(
        self,
        key_no: u8,
        key: &AesKey,
    ) -> Result<Session<'c, T>, CardError> {
        match self.mode() {
            SdmMode::Aes => self.authenticate_ev2_non_first(key_no, key),
            SdmMode::Lrp => self.authenticate_lrp_non_first(key_no, key),
        }
    }
}

pub(crate) fn check_key_no(key_no: u8) -> Result<(), CardError> {
    if key_no > 4 {
        return Err(CardError::InvalidArgument(format!(
            "key number {key_no} does not exist: an NTAG 424 DNA has keys 0 to 4"
        )));
    }
    Ok(())
}
