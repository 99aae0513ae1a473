//! The replay every fixture of `hardware-fixtures/` gets, whoever recorded it: the session is
//! followed exchange by exchange and every cryptographic byte of the recording is computed
//! again. Each authentication, AES (AuthenticateEV2First/NonFirst) or LRP
//! (AuthenticateLRPFirst/NonFirst, told by part 1's answer `01 || RndB`), must open with a key
//! the fixture names (`@key N HEX`, `@new_key N HEX VER`), the factory key, or a key an earlier
//! ChangeKey of the recording set (decrypted and checked by its CRC): the host's proof
//! (AES: RndB'; LRP: PCDResponse) and the chip's (AES: RndA'; LRP: PICCResponse) must match.
//! Inside a session (opened so, or given by `@session TI ENC MAC CTR`, AES) the command counter
//! is followed and every command MAC and response MAC is recomputed (AES-CMAC or CMAC_LRP); in
//! LRP the EncCtr is followed too (+1 per encrypted block of a command or an answer), so that
//! ChangeKey cryptograms decrypt with LRICB as they do with AES-CBC. Exchanges outside a
//! session are plain: only their shape is checked (a status word). A trace recorded without
//! `--trace-keys` (`@redacted`) lacks the randoms and cannot be replayed.

mod auth;
mod sm;

use super::{parse_hex, Fixture};
use crate::crypto::ev2::{command_mac_input, response_mac_input, SessionKeys};
use crate::crypto::{ct_eq, AesKey};
use auth::Recorded;
use sm::{learn_key, Keys, Sess};

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
                keys: Keys::Aes(SessionKeys {
                    enc: enc.parse().map_err(|_| bad(why))?,
                    mac: mac.parse().map_err(|_| bad(why))?,
                }),
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
            let key_no = cdata.first().copied().unwrap_or(0) & 0x0F;
            if sw != [0x91, 0xAF] {
                sess = None; // refused (e.g. 91AD): no session
                i += 1;
                continue;
            }
            let (c2, r2) = ex
                .get(i + 1)
                .ok_or_else(|| at("part 1 without part 2".into()))?;
            let recorded = Recorded {
                first: ins == 0x71,
                key_no,
                part1: data,
                c2,
                r2,
            };
            let candidates = keys.get(key_no as usize).map_or(&[][..], |v| &v[..]);
            let prev = sess.take();
            // Which part of the exchange is wrong: part 1 (its answer) or part 2.
            let at_part = |(part, what): (usize, String)| CheckError::At {
                index: i + part,
                command: hex::encode_upper(&ex[i + part].0[..ex[i + part].0.len().min(6)]),
                what,
            };
            sess = if recorded.lrp() {
                auth::open_lrp(&recorded, candidates, prev)
            } else {
                auth::open_aes(&recorded, candidates, prev)
            }
            .map_err(at_part)?;
            if sess.is_some() {
                done.authentications += 1;
            }
            i += 2;
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
            ct_eq(&s.mact(&command_mac_input(ins, ctr, &s.ti, &[], body)), mac)
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
                    &s.mact(&response_mac_input(last_sw[1], s.ctr, &s.ti, body)),
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
            let want = s.mact(&response_mac_input(last_sw[1], s.ctr, &s.ti, body));
            if !ct_eq(&want, mac) {
                return Err(at("the response MAC does not verify".into()));
            }
            done.macs += 1;
        }
        if maced && !ends {
            let body = &resp[..resp.len().saturating_sub(8)];
            s.follow_enc_ctr(index, ins, &cdata[..cdata.len() - 8], body);
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
