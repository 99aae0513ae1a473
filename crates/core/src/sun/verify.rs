//! Checking a scanned SUN URL: split it along its template, decrypt what is encrypted, and
//! recompute the SDMMAC (AN12196 §3, NT4H2421Gx §9.3). The MAC is compared in constant time.

use super::template::{
    Part, Template, CTR_LEN, ENC_LEN, MAC_LEN, PICC_LEN, PICC_LRP_LEN, TT_LEN, UID_LEN,
};
use crate::crypto::sdm::{PiccData, SdmError, SdmMode};
use crate::crypto::{ct_eq, sdm, sdm_lrp, AesKey};

/// Longest URL we look at (an NDEF file is 256 bytes; this leaves room for any host).
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL could not be checked at all (as opposed to "checked and not genuine").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SunError {
    /// The URL is longer than [`MAX_URL_LEN`] (its length).
    #[error("the URL is {0} characters long; at most {MAX_URL_LEN} are accepted")]
    TooLong(usize),
    /// A literal part of the template is not where the URL has it.
    #[error("the URL does not match the template at character {at}: expected {expected:?}")]
    Mismatch {
        /// Character position in the URL.
        at: usize,
        /// The template's text there.
        expected: String,
    },
    /// A mirror is not the hex digits it should be.
    #[error("{what} at character {at} must be {len} hex digits")]
    BadMirror {
        /// The mirror's name (`UID`, `SDMReadCtr`, …).
        what: &'static str,
        /// Character position in the URL.
        at: usize,
        /// Hex digits expected.
        len: usize,
    },
    /// `{enc}` is not 32 hex digits.
    #[error("{{enc}} at character {at} must be 32 hex digits")]
    BadEnc {
        /// Character position in the URL.
        at: usize,
    },
    /// Characters after the template's end (their number).
    #[error("the URL has {0} unexpected characters after the template's end")]
    Trailing(usize),
    #[error(
        "this template has {{picc}}: the SDM meta read key is needed to decrypt it (--meta-key)"
    )]
    /// The template has `{picc}` but no SDM meta read key was given.
    MissingMetaKey,
    /// `{tt}` is not two of `C`, `O`, `I`.
    #[error("{{tt}} at character {at} must be two of C, O, I (the TagTamper status)")]
    BadTt {
        /// Character position in the URL.
        at: usize,
    },
    /// The PICCData length belongs to the other mode.
    #[error("the PICC data is {found} hex digits, which is {actual} mode, but {expected} mode was asked for: check --mode")]
    ModeMismatch {
        /// The mode asked for.
        expected: SdmMode,
        /// The mode the PICCData length says.
        actual: SdmMode,
        /// Hex digits of PICCData found.
        found: usize,
    },
}

/// The fields of a scanned URL, split along its template (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScannedUrl {
    /// The `{xuid}` text, as scanned.
    pub xuid: Option<String>,
    /// The plain `{uid}` mirror.
    pub uid: Option<[u8; 7]>,
    /// The plain `{ctr}` mirror.
    pub read_ctr: Option<u32>,
    /// Encrypted PICCData: 16 bytes (AES) or 24 bytes (LRP, PICCRand first).
    pub picc: Option<Vec<u8>>,
    /// Encrypted file data (`{enc}`).
    pub enc: Option<Vec<u8>>,
    /// The TagTamper status as mirrored (two ASCII characters), when the template has `{tt}`.
    pub tt: Option<TtStatus>,
    /// The SDMMAC (`{mac}`).
    pub mac: [u8; 8],
    /// The ASCII bytes the SDMMAC covers: from `{macstart}` (or else `{enc}`) up to `{mac}`,
    /// or empty.
    pub mac_input: Vec<u8>,
}

/// The TagTamper status of an NTAG 424 DNA TT (NT4H2421Tx §10.2): the permanent status (latches
/// to open) and the status measured at this tap. Each is `C` closed, `O` open or `I` invalid
/// (TagTamper not enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtStatus {
    /// Permanent status (TTPermStatus): `C`, `O` or `I`.
    pub permanent: u8,
    /// Status measured at this tap (TTCurrStatus): `C`, `O` or `I`.
    pub current: u8,
}

impl TtStatus {
    /// From the two mirrored bytes; `None` unless each is `C`, `O` or `I`.
    pub fn from_bytes(b: [u8; 2]) -> Option<TtStatus> {
        let ok = |c: u8| matches!(c, b'C' | b'O' | b'I');
        (ok(b[0]) && ok(b[1])).then_some(TtStatus {
            permanent: b[0],
            current: b[1],
        })
    }

    /// The loop was opened at some time (permanent status open), or is open now.
    pub fn is_open(self) -> bool {
        self.permanent == b'O' || self.current == b'O'
    }

    /// TagTamper is enabled and both readings are valid.
    pub fn is_valid(self) -> bool {
        self.permanent != b'I' && self.current != b'I'
    }

    /// `"closed"`, `"open"` or `"invalid"` (TagTamper not enabled on this tag).
    pub fn word(self) -> &'static str {
        if !self.is_valid() {
            "invalid"
        } else if self.is_open() {
            "open"
        } else {
            "closed"
        }
    }

    /// The two status characters, e.g. `CC`.
    pub fn as_string(self) -> String {
        String::from_utf8_lossy(&[self.permanent, self.current]).into_owned()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TtStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TtStatus", 3)?;
        st.serialize_field("status", self.word())?;
        st.serialize_field("permanent", &char::from(self.permanent))?;
        st.serialize_field("current", &char::from(self.current))?;
        st.end()
    }
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
    let mut r = Reading::default();
    read_parts(template.parts(), url, &mut r)?;
    Ok(r.out)
}

/// Where the SDMMAC input stands while a template is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum MacInput {
    /// Before `{macstart}` (or `{enc}` without one).
    #[default]
    NotYet,
    /// From `{macstart}` (or `{enc}`): what is read is MAC input.
    Recording,
    /// At `{mac}`: the input is complete.
    Done,
}

/// What reading a template has found so far: the fields, and the SDMMAC input, which is the text
/// read from `{macstart}` (else `{enc}`) up to `{mac}`. The one reader of a template, whether
/// the text is a whole URL ([`parse_url`]) or a request's parameters
/// ([`Template::read_params`](super::Template::read_params)).
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub(crate) out: ScannedUrl,
    mac: MacInput,
}

impl Reading {
    /// `text` was read (from the scan or the template's own text).
    pub(crate) fn consumed(&mut self, text: &str) {
        if self.mac == MacInput::Recording {
            self.out.mac_input.extend_from_slice(text.as_bytes());
        }
    }

    /// `{macstart}`, or `{enc}` (the input starts there when no `{macstart}` came before).
    pub(crate) fn start_mac(&mut self) {
        if self.mac == MacInput::NotYet {
            self.mac = MacInput::Recording;
        }
    }
}

/// Reads `input` along `parts`, all of it (characters left over are [`SunError::Trailing`]).
/// Character positions in errors are positions in `input`.
pub(crate) fn read_parts(parts: &[Part], input: &str, r: &mut Reading) -> Result<(), SunError> {
    let mut pos = 0usize;
    for (i, part) in parts.iter().enumerate() {
        let rest = input.get(pos..).unwrap_or("");
        // The literal after this part ({macstart} has no width, so look past it).
        let next_literal = parts[i + 1..]
            .iter()
            .find(|p| **p != Part::MacStart)
            .and_then(|p| match p {
                Part::Literal(l) => Some(l.as_str()),
                _ => None,
            });
        // Variable-length fields run up to the next literal (placeholders never touch).
        let variable_end = || -> usize {
            match next_literal {
                Some(next) => rest.find(next).unwrap_or(rest.len()),
                None => rest.len(),
            }
        };
        let fixed = |len: usize, what: &'static str| -> Result<&str, SunError> {
            rest.get(..len)
                .ok_or(SunError::BadMirror { what, at: pos, len })
        };
        let len = match part {
            Part::Literal(l) => {
                if !rest.starts_with(l.as_str()) {
                    return Err(SunError::Mismatch {
                        at: pos,
                        expected: l.clone(),
                    });
                }
                l.len()
            }
            Part::Xuid => {
                let n = variable_end();
                r.out.xuid = Some(rest[..n].to_string());
                n
            }
            Part::Uid => {
                r.out.uid = Some(hex_field::<7>(fixed(UID_LEN, "{uid}")?, "{uid}", pos)?);
                UID_LEN
            }
            Part::Ctr => {
                let s = fixed(CTR_LEN, "{ctr}")?;
                let b = hex_field::<3>(s, "{ctr}", pos)?;
                r.out.read_ctr = Some(u32::from_be_bytes([0, b[0], b[1], b[2]]));
                CTR_LEN
            }
            Part::Picc => {
                // 48 hex digits (LRP) when they are there and the template continues after
                // them; otherwise 32 (AES).
                let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
                let lrp = rest.get(..PICC_LRP_LEN).is_some_and(is_hex)
                    && match next_literal {
                        Some(next) => rest[PICC_LRP_LEN..].starts_with(next),
                        None => rest.len() == PICC_LRP_LEN,
                    };
                let len = if lrp { PICC_LRP_LEN } else { PICC_LEN };
                let s = rest
                    .get(..len)
                    .filter(|s| is_hex(s))
                    .ok_or(SunError::BadMirror {
                        what: "{picc}",
                        at: pos,
                        len: PICC_LEN,
                    })?;
                r.out.picc = Some(hex::decode(s).map_err(|_| SunError::BadMirror {
                    what: "{picc}",
                    at: pos,
                    len,
                })?);
                len
            }
            Part::Tt => {
                let b = rest.as_bytes();
                let tt = b
                    .get(..TT_LEN)
                    .and_then(|t| TtStatus::from_bytes([t[0], t[1]]))
                    .ok_or(SunError::BadTt { at: pos })?;
                r.out.tt = Some(tt);
                TT_LEN
            }
            Part::MacStart => {
                r.start_mac();
                0
            }
            Part::Enc => {
                // Fixed width, as written at encoding: a literal after it may itself look like hex.
                let n = ENC_LEN;
                let s = rest.get(..n).ok_or(SunError::BadEnc { at: pos })?;
                r.out.enc = Some(hex::decode(s).map_err(|_| SunError::BadEnc { at: pos })?);
                r.start_mac();
                n
            }
            Part::Mac => {
                r.out.mac = hex_field::<8>(fixed(MAC_LEN, "{mac}")?, "{mac}", pos)?;
                r.mac = MacInput::Done;
                MAC_LEN
            }
        };
        r.consumed(&rest[..len]);
        pos += len;
    }
    if pos < input.len() {
        return Err(SunError::Trailing(input.len() - pos));
    }
    Ok(())
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
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Verified {
    /// The SDMMAC verified with the given key.
    pub genuine: bool,
    /// Why not, when not genuine.
    pub reason: Option<String>,
    /// The chip's mode the message was checked in.
    pub mode: SdmMode,
    /// The `{xuid}` text, when the template has it.
    pub xuid: Option<String>,
    /// The UID, from the plain mirror or the decrypted PICCData.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::hex_serde::opt_bytes")
    )]
    pub uid: Option<[u8; 7]>,
    /// SDMReadCtr, from the plain mirror or the decrypted PICCData.
    pub read_ctr: Option<u32>,
    /// Decrypted `{enc}` data (only when genuine).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::hex_serde::opt_bytes")
    )]
    pub file_data: Option<Vec<u8>>,
    /// The TagTamper status, when the template mirrors it (covered by the SDMMAC).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub tamper: Option<TtStatus>,
}

/// Checks a scanned URL. The mode comes from the PICC data's length (32 hex digits AES,
/// 48 LRP); without PICC data it is AES. For LRP tags with plain mirrors use [`verify_as`].
pub fn verify(scan: &ScannedUrl, keys: &SunKeys) -> Result<Verified, SunError> {
    verify_as(scan, keys, None)
}

/// The mode a scan is checked in: from the PICC data when there is some (a `mode` that
/// contradicts it is an error), else `mode`, else AES.
pub fn scan_mode(scan: &ScannedUrl, mode: Option<SdmMode>) -> Result<SdmMode, SunError> {
    let from_picc = scan
        .picc
        .as_ref()
        .and_then(|p| SdmMode::from_picc_len(p.len()));
    match (from_picc, mode) {
        (Some(actual), Some(expected)) if actual != expected => Err(SunError::ModeMismatch {
            expected,
            actual,
            found: 2 * actual.picc_len(),
        }),
        (Some(m), _) | (None, Some(m)) => Ok(m),
        (None, None) => Ok(SdmMode::Aes),
    }
}

fn decrypt_picc(mode: SdmMode, meta: &AesKey, picc: &[u8]) -> Result<PiccData, SdmError> {
    match mode {
        SdmMode::Aes => sdm::decrypt_picc_data(meta, picc),
        SdmMode::Lrp => sdm_lrp::decrypt_picc_data(meta, picc),
    }
}

/// SDMMAC of `input` in `mode` (the one place the verifier's MAC rule is chosen).
pub fn sdm_mac(
    mode: SdmMode,
    file_read: &AesKey,
    uid: Option<&[u8; 7]>,
    ctr: Option<u32>,
    input: &[u8],
) -> [u8; 8] {
    match mode {
        SdmMode::Aes => sdm::sdm_mac(file_read, uid, ctr, input),
        SdmMode::Lrp => sdm_lrp::sdm_mac(file_read, uid, ctr, input),
    }
}

fn decrypt_file(
    mode: SdmMode,
    file_read: &AesKey,
    uid: &[u8; 7],
    ctr: u32,
    enc: &[u8],
) -> Result<Vec<u8>, SdmError> {
    match mode {
        SdmMode::Aes => sdm::decrypt_file_data(file_read, uid, ctr, enc),
        SdmMode::Lrp => sdm_lrp::decrypt_file_data(file_read, uid, ctr, enc),
    }
}

/// Checks a scanned URL in `mode` (`None`: from the PICC data, else AES).
pub fn verify_as(
    scan: &ScannedUrl,
    keys: &SunKeys,
    mode: Option<SdmMode>,
) -> Result<Verified, SunError> {
    let mode = scan_mode(scan, mode)?;
    let mut v = Verified {
        genuine: false,
        reason: None,
        mode,
        xuid: scan.xuid.clone(),
        uid: scan.uid,
        read_ctr: scan.read_ctr,
        file_data: None,
        tamper: scan.tt,
    };
    if let Some(picc) = &scan.picc {
        let meta = keys.meta_read.as_ref().ok_or(SunError::MissingMetaKey)?;
        match decrypt_picc(mode, meta, picc) {
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
    let mac = sdm_mac(
        mode,
        &keys.file_read,
        v.uid.as_ref(),
        v.read_ctr,
        &scan.mac_input,
    );
    if !ct_eq(&mac, &scan.mac) {
        v.reason = Some("the SDMMAC does not match: wrong key, or the URL was altered".into());
        return Ok(v);
    }
    if let Some(enc) = &scan.enc {
        let (Some(uid), Some(ctr)) = (v.uid, v.read_ctr) else {
            v.reason = Some("encrypted file data without UID and counter".into());
            return Ok(v);
        };
        match decrypt_file(mode, &keys.file_read, &uid, ctr, enc) {
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
