//! The session a replay follows, in either mode: its MAC, the counters, and the decryption of
//! ChangeKey cryptograms (the one encrypted command data the replay reads). The primitives are
//! the core's own (`crypto::ev2` for AES, `crypto::lrp` for LRP); what is here is only which
//! one each mode uses, as `card::session` does for the host.

use zeroize::Zeroizing;

use crate::card::read_u24_le;
use crate::crypto::ev2::{iv_command, SessionKeys};
use crate::crypto::lrp::{increment_be, LrpSessionKeys, BLOCK_SIZE};
use crate::crypto::{cbc_decrypt, crc32nk, ct_eq, mact, AesKey};

/// The session keys of either mode.
pub(super) enum Keys {
    Aes(SessionKeys),
    /// LRP session keys and EncCtr (big-endian, +1 per encrypted block of commands and answers
    /// alike), or the exchange after which the replay could not tell how far it ran.
    Lrp(Box<LrpSessionKeys>, Result<[u8; 4], usize>),
}

/// A session being followed.
pub(super) struct Sess {
    pub keys: Keys,
    pub ti: [u8; 4],
    pub ctr: u16,
    pub key_no: u8,
}

impl Sess {
    /// MACt of `msg` under the session's MAC key.
    pub fn mact(&self, msg: &[u8]) -> [u8; 8] {
        match &self.keys {
            Keys::Aes(k) => mact(&k.mac, msg),
            Keys::Lrp(k, _) => k.mac().mact(msg),
        }
    }

    /// Decrypts a command's encrypted data sent at counter `ctr` (padding left on). In LRP the
    /// running EncCtr is used and not moved ([`Sess::follow_enc_ctr`] moves it).
    fn decrypt_command(&self, ctr: u16, enc: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let plain = match &self.keys {
            Keys::Aes(k) => {
                let iv = iv_command(&k.enc, &self.ti, ctr);
                cbc_decrypt(&k.enc, &iv, enc).map_err(|_| "data is not whole blocks".to_string())
            }
            Keys::Lrp(k, enc_ctr) => {
                let mut c = enc_ctr.map_err(|since| {
                    format!(
                        "the LRP EncCtr is unknown since exchange {since} (the replay cannot tell \
                         whether that command or its answer was encrypted), so this cryptogram \
                         cannot be decrypted"
                    )
                })?;
                k.enc()
                    .lricb_decrypt(&mut c, enc)
                    .map_err(|e| e.to_string())
            }
        };
        plain.map(Zeroizing::new)
    }

    /// Moves LRP's EncCtr past a MACed command (`body`: its data without the MAC) and its
    /// verified answer (`resp`: the answer's data without the MAC), exchange `index`. Nothing
    /// to do in AES, whose IVs come from TI and CmdCtr.
    pub fn follow_enc_ctr(&mut self, index: usize, ins: u8, body: &[u8], resp: &[u8]) {
        let Keys::Lrp(_, enc_ctr) = &mut self.keys else {
            return;
        };
        let Ok(c) = enc_ctr else { return };
        match encrypted_blocks(ins, body, resp) {
            Some(n) => (0..n).for_each(|_| increment_be(&mut c[..])),
            None => *enc_ctr = Err(index),
        }
    }
}

/// The data length a padded (ISO/IEC 9797-1 method 2, always added) Full-mode part of `n`
/// plain bytes has.
fn padded(n: usize) -> usize {
    (n / BLOCK_SIZE + 1) * BLOCK_SIZE
}

/// How many 16-byte blocks of a MACed command (`body`: CmdHeader and data, without the MAC)
/// and of its answer (`resp`, without the MAC) are encrypted, by the command's CommMode
/// (NT4H2421Gx §10, the command tables): `None` when the recording cannot tell (a command this
/// replay does not know, a ReadData of a whole file whose answer could be either).
fn encrypted_blocks(ins: u8, body: &[u8], resp: &[u8]) -> Option<usize> {
    let blocks = |data: &[u8]| {
        data.len()
            .is_multiple_of(BLOCK_SIZE)
            .then_some(data.len() / BLOCK_SIZE)
    };
    match ins {
        // ChangeKey, ChangeFileSettings, SetConfiguration: CommMode.Full, CmdHeader of one
        // byte (key number, file number, option); the answer is a MAC alone.
        0xC4 | 0x5F | 0x5C if resp.is_empty() => blocks(body.get(1..)?),
        // WriteData: the file's CommMode; CmdHeader FileNo Offset(3) Length(3). Length plain
        // bytes follow in MAC mode, their padded cryptogram in Full mode.
        0x8D if resp.is_empty() => {
            let data = body.get(7..)?;
            let n = read_u24_le(body.get(4..7)?) as usize;
            if data.len() == n {
                Some(0)
            } else if data.len() == padded(n) {
                blocks(data)
            } else {
                None
            }
        }
        // ReadData: the file's CommMode, as the answer's length tells (Length 0 reads to the
        // file's end: only an answer that is not whole blocks is surely MAC mode).
        0xAD => {
            let n = read_u24_le(body.get(4..7)?) as usize;
            if (resp.len() == n && n > 0) || !resp.len().is_multiple_of(BLOCK_SIZE) {
                Some(0)
            } else if n > 0 && resp.len() == padded(n) {
                blocks(resp)
            } else {
                None
            }
        }
        // GetCardUID, GetFileCounters, GetTTStatus: the answer in CommMode.Full.
        0x51 | 0xF6 | 0xF7 => blocks(resp),
        // GetVersion, GetFileSettings, GetKeyVersion, GetFileIDs, GetISOFileIDs: MAC mode.
        0x60 | 0xF5 | 0x64 | 0x6F | 0x61 => Some(0),
        _ => None,
    }
}

/// A ChangeKey cryptogram decrypted with the session (`cdata`: KeyNo, the cryptogram, the
/// MAC; sent at counter `ctr`): the new key, checked by its CRC against each known old key
/// (another key), becomes a candidate for its number. Returns 1 when learnt.
pub(super) fn learn_key(
    s: &Sess,
    ctr: u16,
    cdata: &[u8],
    keys: &mut [Vec<AesKey>],
) -> Result<usize, String> {
    let (key_no, enc) = match cdata {
        [no, enc @ .., _, _, _, _, _, _, _, _] => ((no & 0x0F) as usize, enc),
        _ => return Err("ChangeKey data too short".into()),
    };
    let plain = s
        .decrypt_command(ctr, enc)
        .map_err(|e| format!("ChangeKey: {e}"))?;
    if plain.len() < 16 || key_no >= keys.len() {
        return Err("ChangeKey data too short".into());
    }
    let x: [u8; 16] = plain[..16].try_into().map_err(|_| "ChangeKey data")?;
    let new = if key_no as u8 == s.key_no {
        AesKey::new(x)
    } else {
        let crc = plain.get(17..21).ok_or("ChangeKey data too short")?;
        keys[key_no]
            .iter()
            .map(|old| {
                let mut k = x;
                k.iter_mut().zip(old.as_bytes()).for_each(|(a, b)| *a ^= b);
                AesKey::new(k)
            })
            .find(|k| ct_eq(&crc32nk(k.as_bytes()), crc))
            .ok_or(format!(
                "ChangeKey of key {key_no}: no known old key gives a new key with the sent CRC"
            ))?
    };
    keys[key_no].push(new);
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_parts_by_command() {
        let wd = |len: u32, data: usize| {
            let mut b = vec![2, 0, 0, 0];
            b.extend_from_slice(&crate::card::u24_le(len));
            b.extend(std::iter::repeat_n(0u8, data));
            b
        };
        // ChangeKey: KeyNo then 32 bytes.
        assert_eq!(encrypted_blocks(0xC4, &[1; 33], &[]), Some(2));
        assert_eq!(encrypted_blocks(0xC4, &[1; 30], &[]), None);
        // WriteData 10 bytes: MAC mode, Full mode (16), neither.
        assert_eq!(encrypted_blocks(0x8D, &wd(10, 10), &[]), Some(0));
        assert_eq!(encrypted_blocks(0x8D, &wd(10, 16), &[]), Some(1));
        assert_eq!(encrypted_blocks(0x8D, &wd(16, 32), &[]), Some(2));
        assert_eq!(encrypted_blocks(0x8D, &wd(10, 12), &[]), None);
        // ReadData 32 bytes: MAC (32 back) or Full (48 back); Length 0: 16 back cannot tell.
        assert_eq!(encrypted_blocks(0xAD, &wd(32, 0), &[0; 32]), Some(0));
        assert_eq!(encrypted_blocks(0xAD, &wd(32, 0), &[0; 48]), Some(3));
        assert_eq!(encrypted_blocks(0xAD, &wd(0, 0), &[0; 17]), Some(0));
        assert_eq!(encrypted_blocks(0xAD, &wd(0, 0), &[0; 16]), None);
        assert_eq!(encrypted_blocks(0x51, &[], &[0; 16]), Some(1));
        assert_eq!(encrypted_blocks(0xF5, &[2], &[0; 7]), Some(0));
        assert_eq!(encrypted_blocks(0x3C, &[0], &[0; 64]), None);
    }

    #[test]
    fn a_short_change_key_is_an_error_not_a_panic() {
        let lrp = Sess {
            keys: Keys::Lrp(
                Box::new(LrpSessionKeys::from_master(&AesKey::FACTORY)),
                Ok([0, 0, 0, 1]),
            ),
            ti: [0; 4],
            ctr: 0,
            key_no: 0,
        };
        let mut keys = vec![vec![AesKey::FACTORY]; 5];
        for n in 0..10 {
            assert!(learn_key(&lrp, 0, &vec![1; n], &mut keys).is_err());
        }
        let unknown = Sess {
            keys: Keys::Lrp(
                Box::new(LrpSessionKeys::from_master(&AesKey::FACTORY)),
                Err(7),
            ),
            ..lrp
        };
        let e = learn_key(&unknown, 0, &[1; 41], &mut keys).unwrap_err();
        assert!(e.contains("unknown since exchange 7"), "{e}");
    }
}
