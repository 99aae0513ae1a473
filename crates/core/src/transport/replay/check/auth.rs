//! Opening a recorded authentication (NT4H2421Gx §9.1.5–9.1.7 AES, §9.2.5–9.2.7 LRP; AN12196
//! §5, AN12321 §4): among the keys known for the key number, the one under which the host's
//! proof verifies opens it, and the chip's proof must verify too. The cryptography is the
//! core's (`crypto::ev2`, `crypto::lrp`), as the host and the simulated chip run it.

use super::sm::{Keys, Sess};
use crate::crypto::ev2::derive_session_keys;
use crate::crypto::lrp::{
    decrypt_auth_picc_data, derive_auth_session_keys, verify_auth_pcd_response,
    verify_auth_picc_response, verify_auth_picc_response_non_first,
};
use crate::crypto::{cbc_decrypt, ct_eq, rotl1, AesKey};

/// One authentication as recorded: part 1's answer data (without the status word), part 2's
/// command and response (with the status word).
pub(super) struct Recorded<'a> {
    /// INS 71 (First) or 77 (NonFirst).
    pub first: bool,
    pub key_no: u8,
    pub part1: &'a [u8],
    pub c2: &'a [u8],
    pub r2: &'a [u8],
}

impl Recorded<'_> {
    /// True when part 1 answered as an LRP chip does: AuthMode 01 and RndB in plain.
    pub fn lrp(&self) -> bool {
        self.part1.len() == 17 && self.part1[0] == 0x01
    }

    /// Part 2's 32 bytes of command data.
    fn part2(&self) -> Result<&[u8], Wrong> {
        self.c2
            .get(5..37)
            .filter(|_| self.c2.len() >= 37 && self.c2[1] == 0xAF)
            .ok_or_else(|| in_part2("part 2 is not 90 AF with 32 bytes"))
    }

    fn refused(&self) -> bool {
        self.r2[self.r2.len() - 2..] != [0x91, 0x00]
    }

    fn answer(&self) -> &[u8] {
        &self.r2[..self.r2.len() - 2]
    }

    /// No candidate makes the host's proof (in part 2) verify.
    fn unknown_key(&self, mode: &str) -> Wrong {
        let n = self.key_no;
        (
            1,
            format!(
                "no key the fixture knows for key {n} opens this {mode} authentication (add `@key {n} HEX`)"
            ),
        )
    }
}

/// What does not verify, and where: 0 for part 1's exchange, 1 for part 2's.
pub(super) type Wrong = (usize, String);

fn in_part2(what: impl Into<String>) -> Wrong {
    (1, what.into())
}

/// An AES authentication: `Ok(None)` when the chip refused part 2 (no session).
pub(super) fn open_aes(
    a: &Recorded<'_>,
    candidates: &[AesKey],
    prev: Option<Sess>,
) -> Result<Option<Sess>, Wrong> {
    let e_rnd_b: [u8; 16] = a.part1.try_into().map_err(|_| {
        (
            0,
            format!("part 1 answered {} bytes, not 16", a.part1.len()),
        )
    })?;
    let part2 = a.part2()?;
    let opened = candidates.iter().find_map(|k| {
        let rnd_b: [u8; 16] = cbc_decrypt(k, &[0; 16], &e_rnd_b).ok()?.try_into().ok()?;
        let p = cbc_decrypt(k, &[0; 16], part2).ok()?;
        let rnd_a: [u8; 16] = p[..16].try_into().ok()?;
        ct_eq(&p[16..], &rotl1(&rnd_b)).then(|| (k.clone(), rnd_a, rnd_b))
    });
    let Some((key, rnd_a, rnd_b)) = opened else {
        return Err(a.unknown_key("AES"));
    };
    if a.refused() {
        return Ok(None);
    }
    let answer = cbc_decrypt(&key, &[0; 16], a.answer())
        .map_err(|_| in_part2("part 2's answer is not whole blocks"))?;
    let proof = if a.first {
        answer.get(4..20)
    } else {
        answer.get(..16)
    };
    if !proof.is_some_and(|p| ct_eq(p, &rotl1(&rnd_a))) {
        return Err(in_part2("the chip's proof RndA' does not match"));
    }
    let keys = Keys::Aes(derive_session_keys(&key, &rnd_a, &rnd_b));
    Ok(Some(match (a.first, prev) {
        (false, Some(s)) => Sess {
            keys,
            ti: s.ti,
            ctr: s.ctr,
            key_no: a.key_no,
        },
        _ => Sess {
            keys,
            ti: answer[..4].try_into().unwrap_or([0; 4]),
            ctr: 0,
            key_no: a.key_no,
        },
    }))
}

/// An LRP authentication: part 1 answered `01 || RndB`, part 2 sent `RndA || PCDResponse`.
/// `Ok(None)` when the chip refused part 2 (no session).
pub(super) fn open_lrp(
    a: &Recorded<'_>,
    candidates: &[AesKey],
    prev: Option<Sess>,
) -> Result<Option<Sess>, Wrong> {
    let rnd_b = &a.part1[1..];
    let (rnd_a, pcd_response) = a.part2()?.split_at(16);
    let keys = candidates
        .iter()
        .filter_map(|k| derive_auth_session_keys(k, rnd_a, rnd_b).ok())
        .find(|keys| verify_auth_pcd_response(keys, rnd_a, rnd_b, pcd_response).unwrap_or(false))
        .ok_or_else(|| a.unknown_key("LRP"))?;
    if a.refused() {
        return Ok(None);
    }
    let answer = a.answer();
    let no_proof = || in_part2("the chip's proof (PICCResponse) does not match");
    if a.first {
        if answer.len() != 32 {
            return Err(in_part2(format!(
                "part 2 answered {} bytes, not 32",
                answer.len()
            )));
        }
        let (picc_data, picc_response) = answer.split_at(16);
        if !verify_auth_picc_response(&keys, rnd_a, rnd_b, picc_data, picc_response)
            .unwrap_or(false)
        {
            return Err(no_proof());
        }
        let pd = decrypt_auth_picc_data(&keys, picc_data).map_err(|e| in_part2(e.to_string()))?;
        Ok(Some(Sess {
            keys: Keys::Lrp(Box::new(keys), Ok(pd.enc_ctr)),
            ti: pd.ti,
            ctr: 0,
            key_no: a.key_no,
        }))
    } else {
        if !verify_auth_picc_response_non_first(&keys, rnd_a, rnd_b, answer).unwrap_or(false) {
            return Err(no_proof());
        }
        // NonFirst keeps TI and CmdCtr; EncCtr starts again at 0.
        let s = prev.ok_or_else(|| {
            (
                0,
                "AuthenticateLRPNonFirst outside a session: no TI to keep".to_string(),
            )
        })?;
        Ok(Some(Sess {
            keys: Keys::Lrp(Box::new(keys), Ok([0; 4])),
            ti: s.ti,
            ctr: s.ctr,
            key_no: a.key_no,
        }))
    }
}
