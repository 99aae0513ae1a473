//! The replay every fixture of `hardware-fixtures/` gets, whoever recorded it: the session is
//! followed exchange by exchange and every cryptographic byte of the recording is computed
//! again. Each AES authentication must open with a key the fixture names (`@key N HEX`,
//! `@new_key N HEX VER`), the factory key, or a key an earlier ChangeKey of the recording set
//! (decrypted and checked by its CRC): the chip's proof (RndA') and the host's (RndB') must
//! match. Inside a session (opened so, or given by `@session TI ENC MAC CTR`) the counter is
//! followed and every command MAC and response MAC is recomputed. Exchanges outside a session
//! are plain: only their shape is checked (a status word). A trace recorded without
//! `--trace-keys` (`@redacted`) lacks the randoms and cannot be replayed; nor can an LRP
//! authentication yet (it is named as such).

use super::{parse_hex, Fixture};
use crate::crypto::ev2::{
    command_mac_input, derive_session_keys, iv_command, response_mac_input, SessionKeys,
};
use crate::crypto::{cbc_decrypt, crc32nk, ct_eq, mact, rotl1, AesKey};

/// Why a fixture does not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Recorded without `--trace-keys`.
    #[error("a redacted trace (its @redacted line: recorded without --trace-keys) cannot be replayed: record the session again with --trace-keys on a test tag")]
    Redacted,
    /// No `@document` line.
    #[error("no @document line: say what was recorded (reader model, tag, tag424 version, date)")]
    NoProvenance,
    /// No exchange at all.
    #[error("no exchanges ('>' command and '<' response lines)")]
    Empty,
    /// A metadata line that does not parse.
    #[error("@{name} {value}: {why}")]
    Meta {
        /// The line's name.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// An exchange that does not verify.
    #[error("exchange {index} ({command}): {what}")]
    At {
        /// 0-based index of the exchange.
        index: usize,
        /// The command, hex (header only).
        command: String,
        /// What does not verify.
        what: String,
    },
}

/// What a replay went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Exchanges replayed.
    pub exchanges: usize,
    /// Authentications opened with a known key.
    pub authentications: usize,
    /// Command and response MACs recomputed and equal.
    pub macs: usize,
    /// Keys learnt from ChangeKey cryptograms.
    pub keys_learnt: usize,
}

/// Commands that are MACed (Full) in every session: ChangeKey, ChangeFileSettings,
/// SetConfiguration, GetCardUID (NT4H2421Gx §10).
const ALWAYS_SECURED: [u8; 4] = [0xC4, 0x5F, 0x5C, 0x51];

struct Sess {
    keys: SessionKeys,
    ti: [u8; 4],
    ctr: u16,
    key_no: u8,
}

/// Replays `fx` (see the module text).
pub fn check(fx: &Fixture) -> Result<Checked, CheckError> {
    if fx.meta(crate::card::trace::REDACTED).is_some() {
        return Err(CheckError::Redacted);
    }
    if fx.meta("document").is_none() {
        return Err(CheckError::NoProvenance);
    }
    if fx.exchanges.is_empty() {
        return Err(CheckError::Empty);
    }
    let mut keys: Vec<Vec<AesKey>> = vec![vec![AesKey::FACTORY]; 5];
    for (name, value) in &fx.meta {
        if name != "key" && name != "new_key" {
            continue;
        }
        let bad = |why| CheckError::Meta {
            name: name.clone(),
            value: value.clone(),
            why,
        };
        let mut f = value.split_whitespace();
        let no: usize = f
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < 5)
            .ok_or_else(|| bad("expected a key number 0 to 4, then the key in hex"))?;
        let key = f
            .next()
            .and_then(|k| k.parse::<AesKey>().ok())
            .ok_or_else(|| bad("expected 32 hex digits after the key number"))?;
        keys[no].push(key);
    }
    let mut sess: Option<Sess> = match fx.meta("session") {
        None => None,
        Some(v) => {
            let bad = |why| CheckError::Meta {
                name: "session".into(),
                value: v.into(),
                why,
            };
            let m: Vec<&str> = v.split_whitespace().collect();
            let why = "expected TI (8 hex digits), SesAuthENCKey, SesAuthMACKey, CmdCtr";
            let [ti, enc, mac, ctr] = m.as_slice() else {
                return Err(bad(why));
            };
            Some(Sess {
                ti: parse_hex(ti)
                    .and_then(|t| t.try_into().ok())
                    .ok_or_else(|| bad(why))?,
                keys: SessionKeys {
                    enc: enc.parse().map_err(|_| bad(why))?,
                    mac: mac.parse().map_err(|_| bad(why))?,
                },
                ctr: ctr.parse().map_err(|_| bad(why))?,
                key_no: 0xFF,
            })
        }
    };
    let mut done = Checked {
        exchanges: fx.exchanges.len(),
        ..Checked::default()
    };
    let ex = &fx.exchanges;
    let mut i = 0;
    while i < ex.len() {
        let (c, r) = (&ex[i].0, &ex[i].1);
        let index = i;
        let at = |what: String| CheckError::At {
            index,
            command: hex::encode_upper(&c[..c.len().min(6)]),
            what,
        };
        let sw = [r[r.len() - 2], r[r.len() - 1]];
        let data = &r[..r.len() - 2];
        let native = c.first() == Some(&0x90) && c.len() >= 5;
        let ins = c.get(1).copied().unwrap_or(0);
        if c.first() == Some(&0x00) && ins == 0xA4 {
            sess = None; // selecting ends the authentication
            i += 1;
            continue;
        }
        if !native {
            i += 1;
            continue;
        }
        let lc = if c.len() > 5 { c[4] as usize } else { 0 };
        let cdata = c
            .get(5..5 + lc)
            .ok_or_else(|| at("Lc runs past the command".into()))?;
        if ins == 0x71 || ins == 0x77 {
            if lc > 2 && cdata.get(2) == Some(&0x02) {
                return Err(at(
                    "an LRP authentication: the replay follows AES sessions only so far".into(),
                ));
            }
            let key_no = cdata.first().copied().unwrap_or(0) & 0x0F;
            if sw != [0x91, 0xAF] {
                sess = None; // refused (e.g. 91AD): no session
                i += 1;
                continue;
            }
            let (c2, r2) = ex
                .get(i + 1)
                .ok_or_else(|| at("part 1 without part 2".into()))?;
            let e_rnd_b: [u8; 16] = data
                .try_into()
                .map_err(|_| at(format!("part 1 answered {} bytes, not 16", data.len())))?;
            let part2 = c2
                .get(5..37)
                .filter(|_| c2.len() >= 37 && c2[1] == 0xAF)
                .ok_or_else(|| at("part 2 is not 90 AF with 32 bytes".into()))?;
            let candidates = keys.get(key_no as usize).map_or(&[][..], |v| &v[..]);
            let opened = candidates.iter().find_map(|k| {
                let rnd_b: [u8; 16] = cbc_decrypt(k, &[0; 16], &e_rnd_b).ok()?.try_into().ok()?;
                let p = cbc_decrypt(k, &[0; 16], part2).ok()?;
                let rnd_a: [u8; 16] = p[..16].try_into().ok()?;
                ct_eq(&p[16..], &rotl1(&rnd_b)).then(|| (k.clone(), rnd_a, rnd_b))
            });
            let Some((key, rnd_a, rnd_b)) = opened else {
                return Err(at(format!(
                    "no key the fixture knows for key {key_no} opens this authentication (add `@key {key_no} HEX`)"
                )));
            };
            let sw2 = [r2[r2.len() - 2], r2[r2.len() - 1]];
            i += 2;
            if sw2 != [0x91, 0x00] {
                sess = None;
                continue;
            }
            let answer = cbc_decrypt(&key, &[0; 16], &r2[..r2.len() - 2])
                .map_err(|_| at("part 2's answer is not whole blocks".into()))?;
            let first = ins == 0x71;
            let proof = if first {
                answer.get(4..20)
            } else {
                answer.get(..16)
            };
            if !proof.is_some_and(|p| ct_eq(p, &rotl1(&rnd_a))) {
                return Err(at("the chip's proof RndA' does not match".into()));
            }
            let keys = derive_session_keys(&key, &rnd_a, &rnd_b);
            sess = Some(match (first, sess.take()) {
                (false, Some(s)) => Sess {
                    keys,
                    ti: s.ti,
                    ctr: s.ctr,
                    key_no,
                },
                _ => Sess {
                    keys,
                    ti: answer[..4].try_into().unwrap_or([0; 4]),
                    ctr: 0,
                    key_no,
                },
            });
            done.authentications += 1;
            continue;
        }
        let Some(s) = sess.as_mut() else {
            i += 1;
            continue;
        };
        // One command in the session: its frames (a 91AF answer is followed by 90 AF 00 00 00).
        let mut resp = data.to_vec();
        let mut last_sw = sw;
        let mut j = i;
        while last_sw == [0x91, 0xAF] {
            j += 1;
            let Some((cn, rn)) = ex.get(j) else { break };
            if cn.get(1) != Some(&0xAF) {
                return Err(at("a 91AF answer not followed by 90 AF".into()));
            }
            resp.extend_from_slice(&rn[..rn.len() - 2]);
            last_sw = [rn[rn.len() - 2], rn[rn.len() - 1]];
        }
        let ctr = s.ctr;
        let maced = cdata.len() >= 8 && {
            let (body, mac) = cdata.split_at(cdata.len() - 8);
            ct_eq(
                &mact(&s.keys.mac, &command_mac_input(ins, ctr, &s.ti, &[], body)),
                mac,
            )
        };
        if maced {
            done.macs += 1;
            if ins == 0xC4 {
                done.keys_learnt += learn_key(s, ctr, cdata, &mut keys).map_err(at)?;
            }
        }
        s.ctr = ctr.wrapping_add(1);
        let ends = last_sw != [0x91, 0x00];
        if !maced {
            // Plain in the session, or a MAC that does not verify: the commands that are
            // always secured, or an answer MACed for this counter, say which.
            let answer_maced = !ends && resp.len() >= 8 && {
                let (body, mac) = resp.split_at(resp.len() - 8);
                ct_eq(
                    &mact(
                        &s.keys.mac,
                        &response_mac_input(last_sw[1], s.ctr, &s.ti, body),
                    ),
                    mac,
                )
            };
            if ALWAYS_SECURED.contains(&ins) || answer_maced {
                return Err(at("the command MAC does not verify".into()));
            }
        }
        if maced && !ends && !resp.is_empty() {
            if resp.len() < 8 {
                return Err(at("a MACed command's answer is shorter than its MAC".into()));
            }
            let (body, mac) = resp.split_at(resp.len() - 8);
            let want = mact(
                &s.keys.mac,
                &response_mac_input(last_sw[1], s.ctr, &s.ti, body),
            );
            if !ct_eq(&want, mac) {
                return Err(at("the response MAC does not verify".into()));
            }
            done.macs += 1;
        }
        // An error ends the session; so does a bare status to a MACed command (ChangeKey of
        // the authenticated key, the switch to LRP).
        if ends || (maced && resp.is_empty()) {
            sess = None;
        }
        i = j + 1;
    }
    Ok(done)
}

/// A ChangeKey cryptogram decrypted with the session: the new key, checked by its CRC against
/// each known old key (another key), becomes a candidate for its number. Returns 1 when learnt.
fn learn_key(s: &Sess, ctr: u16, cdata: &[u8], keys: &mut [Vec<AesKey>]) -> Result<usize, String> {
    let key_no = (cdata[0] & 0x0F) as usize;
    let enc = &cdata[1..cdata.len() - 8];
    let iv = iv_command(&s.keys.enc, &s.ti, ctr);
    let plain = zeroize::Zeroizing::new(
        cbc_decrypt(&s.keys.enc, &iv, enc).map_err(|_| "ChangeKey data is not whole blocks")?,
    );
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
