//! Checking a scanned SUN URL: split it along its template, decrypt what is encrypted, and
//! recompute the SDMMAC (AN12196 §3, NT4H2421Gx §9.3). The MAC is compared in constant time.

use serde::Serialize;

use super::template::{Part, Template, CTR_LEN, ENC_LEN, MAC_LEN, PICC_LEN, UID_LEN};
use crate::crypto::sdm::{decrypt_file_data, decrypt_picc_data, sdm_mac};
use crate::crypto::{ct_eq, AesKey};

/// Longest URL we look at (an NDEF file is 256 bytes; this leaves room for any host).
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL could not be checked at all (as opposed to "checked and not genuine").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SunError {
    #[error("the URL is {0} characters long; at most {MAX_URL_LEN} are accepted")]
    TooLong(usize),
    #[error("the URL does not match the template at character {at}: expected {expected:?}")]
    Mismatch { at: usize, expected: String },
    #[error("{what} at character {at} must be {len} hex digits")]
    BadMirror {
        what: &'static str,
        at: usize,
        len: usize,
    },
    #[error("{{enc}} at character {at} must be 32 hex digits")]
    BadEnc { at: usize },
    #[error("the URL has {0} unexpected characters after the template's end")]
    Trailing(usize),
    #[error(
        "this template has {{picc}}: the SDM meta read key is needed to decrypt it (--meta-key)"
    )]
    MissingMetaKey,
}

/// The fields of a scanned URL, split along its template (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScannedUrl {
    pub xuid: Option<String>,
    pub uid: Option<[u8; 7]>,
    pub read_ctr: Option<u32>,
    pub picc: Option<[u8; 16]>,
    pub enc: Option<Vec<u8>>,
    pub mac: [u8; 8],
    /// The ASCII bytes the SDMMAC covers: from `{enc}` up to `{mac}`, or empty.
    pub mac_input: Vec<u8>,
}

fn hex_field<const N: usize>(s: &str, what: &'static str, at: usize) -> Result<[u8; N], SunError> {
    let mut out = [0u8; N];
    if s.len() != 2 * N || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(SunError::BadMirror {
            what,
            at,
            len: 2 * N,
        });
    }
    Ok(out)
}

/// Splits `url` along `template`.
pub fn parse_url(template: &Template, url: &str) -> Result<ScannedUrl, SunError> {
    if url.len() > MAX_URL_LEN {
        return Err(SunError::TooLong(url.len()));
    }
    let parts = template.parts();
    let mut out = ScannedUrl::default();
    let mut pos = 0usize;
    let mut enc_start = None;
    for (i, part) in parts.iter().enumerate() {
        let rest = url.get(pos..).unwrap_or("");
        // Variable-length fields run up to the next literal (placeholders never touch).
        let variable_end = || -> usize {
            match parts.get(i + 1) {
                Some(Part::Literal(next)) => rest.find(next.as_str()).unwrap_or(rest.len()),
                _ => rest.len(),
            }
        };
        let fixed = |len: usize, what: &'static str| -> Result<&str, SunError> {
            rest.get(..len)
                .ok_or(SunError::BadMirror { what, at: pos, len })
        };
        match part {
            Part::Literal(l) => {
                if !rest.starts_with(l.as_str()) {
                    return Err(SunError::Mismatch {
                        at: pos,
                        expected: l.clone(),
                    });
                }
                pos += l.len();
            }
            Part::Xuid => {
                let n = variable_end();
                out.xuid = Some(rest[..n].to_string());
                pos += n;
            }
            Part::Uid => {
                out.uid = Some(hex_field::<7>(fixed(UID_LEN, "{uid}")?, "{uid}", pos)?);
                pos += UID_LEN;
            }
            Part::Ctr => {
                let s = fixed(CTR_LEN, "{ctr}")?;
                let b = hex_field::<3>(s, "{ctr}", pos)?;
                out.read_ctr = Some(u32::from_be_bytes([0, b[0], b[1], b[2]]));
                pos += CTR_LEN;
            }
            Part::Picc => {
                out.picc = Some(hex_field::<16>(fixed(PICC_LEN, "{picc}")?, "{picc}", pos)?);
                pos += PICC_LEN;
            }
            Part::Enc => {
                // Fixed width, as written at encoding: a literal after it may itself look like hex.
                let n = ENC_LEN;
                let s = rest.get(..n).ok_or(SunError::BadEnc { at: pos })?;
                out.enc = Some(hex::decode(s).map_err(|_| SunError::BadEnc { at: pos })?);
                enc_start = Some(pos);
                pos += n;
            }
            Part::Mac => {
                out.mac = hex_field::<8>(fixed(MAC_LEN, "{mac}")?, "{mac}", pos)?;
                if let Some(start) = enc_start {
                    out.mac_input = url.as_bytes()[start..pos].to_vec();
                }
                pos += MAC_LEN;
            }
        }
    }
    if pos < url.len() {
        return Err(SunError::Trailing(url.len() - pos));
    }
    Ok(out)
}

/// Keys for checking SUN messages.
#[derive(Debug, Clone)]
pub struct SunKeys {
    /// SDMFileReadKey: the key of the SDMMAC and of encrypted file data.
    pub file_read: AesKey,
    /// SDMMetaReadKey: decrypts `{picc}`.
    pub meta_read: Option<AesKey>,
}

/// The outcome of checking a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The SDMMAC verified with the given key.
    pub genuine: bool,
    /// Why not, when not genuine.
    pub reason: Option<String>,
    pub xuid: Option<String>,
    #[serde(serialize_with = "crate::hex_serde::opt_bytes")]
    pub uid: Option<[u8; 7]>,
    pub read_ctr: Option<u32>,
    /// Decrypted `{enc}` data (only when genuine).
    #[serde(serialize_with = "crate::hex_serde::opt_bytes")]
    pub file_data: Option<Vec<u8>>,
}

/// Checks a scanned URL.
pub fn verify(scan: &ScannedUrl, keys: &SunKeys) -> Result<Verified, SunError> {
    let mut v = Verified {
        genuine: false,
        reason: None,
        xuid: scan.xuid.clone(),
        uid: scan.uid,
        read_ctr: scan.read_ctr,
        file_data: None,
    };
    if let Some(picc) = &scan.picc {
        let meta = keys.meta_read.as_ref().ok_or(SunError::MissingMetaKey)?;
        match decrypt_picc_data(meta, picc) {
            Ok(p) => {
                v.uid = p.uid;
                v.read_ctr = p.read_ctr;
            }
            Err(e) => {
                v.reason = Some(format!("{e}"));
                return Ok(v);
            }
        }
    }
    let mac = sdm_mac(&keys.file_read, v.uid.as_ref(), v.read_ctr, &scan.mac_input);
    if !ct_eq(&mac, &scan.mac) {
        v.reason = Some("the SDMMAC does not match: wrong key, or the URL was altered".into());
        return Ok(v);
    }
    if let Some(enc) = &scan.enc {
        let (Some(uid), Some(ctr)) = (v.uid, v.read_ctr) else {
            v.reason = Some("encrypted file data without UID and counter".into());
            return Ok(v);
        };
        match decrypt_file_data(&keys.file_read, &uid, ctr, enc) {
            Ok(d) => v.file_data = Some(d),
            Err(e) => {
                v.reason = Some(e.to_string());
                return Ok(v);
            }
        }
    }
    v.genuine = true;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_splits() {
        let t = Template::default();
        let s = parse_url(
            &t,
            "https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=0123456789ABCDEF",
        )
        .unwrap();
        assert_eq!(s.xuid.as_deref(), Some("q8w3sbcz"));
        assert_eq!(s.read_ctr, Some(42));
        assert!(s.mac_input.is_empty());
        assert!(parse_url(
            &t,
            "https://yourdomain.com/auth?x=q&n=00002A&e=0123456789ABCDEF0"
        )
        .is_err());
        assert!(parse_url(
            &t,
            "https://yourdomain.com/auth?x=q&n=00002A&e=0123456789ABCDEG"
        )
        .is_err());
        assert!(parse_url(&t, "https://other.com/auth?x=q&n=00002A&e=0123456789ABCDEF").is_err());
        assert!(parse_url(&t, "").is_err());
    }
}
