//! From a URL template and a tag code to the bytes of the NDEF file and the SDM settings that
//! make the chip mirror into them (NFC Forum URI record, NT4H2421Gx §9.3 offsets).

use crate::card::file_settings::{Access, AccessRights, FileSettings, SdmSettings};
use crate::card::CommMode;
use crate::sun::template::{Part, Template, ENC_LEN};

use super::keys::{KEY_MASTER, KEY_NDEF_WRITE, KEY_SDM_FILE_READ, KEY_SDM_META_READ};

/// Size of the NDEF file (file 02) of an NTAG 424 DNA.
pub const NDEF_FILE_SIZE: usize = 256;
/// NLEN (2) + record header D1 01 len (3) + type 'U' (1) + URI prefix code (1).
pub const URI_START: usize = 7;

/// Why a template cannot be written to a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The URL does not fit the NDEF file.
    #[error("the URL is {len} characters after its scheme; an NTAG 424 DNA NDEF file holds at most {max}")]
    TooLong {
        /// Characters after the scheme.
        len: usize,
        /// Most the NDEF file holds.
        max: usize,
    },
    /// The template mirrors no counter, so scans could be replayed.
    #[error("the template has neither {{ctr}} nor {{picc}}: without a counter every scan could be replayed forever")]
    NoCounter,
    /// The tag code is not a valid code.
    #[error(transparent)]
    BadXuid(#[from] crate::tag_code::BadTagCode),
    /// The tag code contains the literal after `{xuid}`, so a scan could not be split.
    #[error("the tag code {xuid:?} contains {next:?}, the text that follows it in the URL template: a scan could not be split")]
    XuidHoldsSeparator {
        /// The tag code.
        xuid: String,
        /// The template text after `{xuid}`.
        next: String,
    },
}

/// What to write to one tag: the NDEF file and the SDM settings of file 02.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdefLayout {
    /// NLEN + URI record; written at offset 0 of file 02.
    pub file: Vec<u8>,
    /// The URL as it reads before the chip mirrors (placeholders as '0's).
    pub url: String,
    /// File 02's settings: comm mode, access rights and the SDM mirrors.
    pub settings: FileSettings,
}

impl NdefLayout {
    /// The same layout with SDMReadCtrLimit set (`batch --read-counter-limit`; NT4H2421Gx
    /// §9.3.2). Every template mirrors the counter ([`LayoutError::NoCounter`]), which the
    /// limit needs.
    pub fn with_read_ctr_limit(mut self, limit: Option<u32>) -> NdefLayout {
        if let Some(sdm) = self.settings.sdm.as_mut() {
            sdm.read_ctr_limit = limit;
        }
        self
    }
}

/// URI identifier codes (NFC Forum URI RTD) for the prefixes we abbreviate.
const PREFIXES: [(&str, u8); 4] = [
    ("https://www.", 0x02),
    ("http://www.", 0x01),
    ("https://", 0x04),
    ("http://", 0x03),
];

/// Checks a tag code (XUID) before it goes into a URL.
pub fn check_xuid(xuid: &str) -> Result<(), LayoutError> {
    Ok(crate::tag_code::check(xuid)?)
}

/// Lays out the NDEF file and the SDM settings for `xuid`.
pub fn layout(template: &Template, xuid: &str) -> Result<NdefLayout, LayoutError> {
    check_xuid(xuid)?;
    // A scanned URL is split at the literal after {xuid}: the code must not contain it.
    let parts = template.parts();
    if let Some(i) = parts.iter().position(|p| *p == Part::Xuid) {
        if let Some(Part::Literal(next)) = parts.get(i + 1) {
            if xuid.contains(next.as_str()) {
                return Err(LayoutError::XuidHoldsSeparator {
                    xuid: xuid.to_string(),
                    next: next.clone(),
                });
            }
        }
    }
    if !(template.has(&Part::Ctr) || template.has(&Part::Picc)) {
        return Err(LayoutError::NoCounter);
    }
    let url = template.render(xuid);
    let lower = url.to_ascii_lowercase();
    let offsets = template.offsets(xuid);
    // The prefix is stored as a one-byte code: it must end before {macstart}, whose MAC input
    // is read from the file.
    let mac_start = offsets
        .iter()
        .find(|(p, _, _)| *p == Part::MacStart)
        .map_or(usize::MAX, |(_, pos, _)| *pos);
    let (prefix, code) = PREFIXES
        .iter()
        .find(|(p, _)| lower.starts_with(p) && p.len() <= mac_start)
        .copied()
        .unwrap_or(("", 0x00));
    let rest = &url[prefix.len()..];
    let max = NDEF_FILE_SIZE - URI_START;
    if rest.len() > max {
        return Err(LayoutError::TooLong {
            len: rest.len(),
            max,
        });
    }
    let payload_len = rest.len() + 1;
    let record_len = 4 + payload_len;
    let mut file = Vec::with_capacity(2 + record_len);
    file.extend_from_slice(&(record_len as u16).to_be_bytes());
    file.extend_from_slice(&[0xD1, 0x01, payload_len as u8, 0x55, code]);
    file.extend_from_slice(rest.as_bytes());

    // Offsets of the mirrors in the file: URI_START + position in the URL after the prefix.
    let at = |p: &Part| -> Option<u32> {
        offsets
            .iter()
            .find(|(q, _, _)| q == p)
            .map(|(_, pos, _)| (URI_START + pos - prefix.len()) as u32)
    };
    let picc = template.has(&Part::Picc);
    let mac_offset = at(&Part::Mac);
    let enc = at(&Part::Enc).map(|o| (o, ENC_LEN as u32));
    let sdm = SdmSettings {
        uid_mirror: picc || template.has(&Part::Uid),
        read_ctr_mirror: picc || template.has(&Part::Ctr),
        read_ctr_limit: None,
        enc_file_data: enc,
        ascii: true,
        ctr_ret: Some(Access::Key(KEY_SDM_FILE_READ)),
        meta_read: Some(if picc {
            Access::Key(KEY_SDM_META_READ)
        } else {
            Access::Free
        }),
        file_read: Some(Access::Key(KEY_SDM_FILE_READ)),
        uid_offset: if picc { None } else { at(&Part::Uid) },
        read_ctr_offset: if picc { None } else { at(&Part::Ctr) },
        picc_data_offset: if picc { at(&Part::Picc) } else { None },
        tt_offset: at(&Part::Tt),
        lrp: template.mode() == crate::crypto::sdm::SdmMode::Lrp,
        // {macstart}, else the encrypted data, else empty (at the MAC itself).
        mac_input_offset: at(&Part::MacStart).or(enc.map(|e| e.0)).or(mac_offset),
        mac_offset,
    };
    let settings = FileSettings {
        file_type: 0,
        comm_mode: CommMode::Plain,
        access: AccessRights {
            read: Access::Free,
            write: Access::Key(KEY_NDEF_WRITE),
            read_write: Access::Key(KEY_NDEF_WRITE),
            change: Access::Key(KEY_MASTER),
        },
        size: NDEF_FILE_SIZE as u32,
        sdm: Some(sdm),
    };
    Ok(NdefLayout {
        file,
        url,
        settings,
    })
}

/// Extracts the URL from an NDEF file image (NLEN + one URI record); `None` if it is not one.
pub fn url_from_ndef(file: &[u8]) -> Option<String> {
    let nlen = u16::from_be_bytes([*file.first()?, *file.get(1)?]) as usize;
    let rec = file.get(2..2 + nlen)?;
    if rec.len() < 5 || rec[0] & 0x07 != 0x01 || rec[1] != 1 || rec[3] != 0x55 {
        return None;
    }
    let payload = rec.get(4..4 + rec[2] as usize)?;
    let code = *payload.first()?;
    let prefix = PREFIXES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(p, _)| *p)
        .unwrap_or("");
    let rest = std::str::from_utf8(&payload[1..]).ok()?;
    Some(format!("{prefix}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_matches_the_url() {
        let t = Template::default();
        let l = layout(&t, "q8w3sbcz").unwrap();
        assert_eq!(
            l.url,
            "https://yourdomain.com/auth?x=q8w3sbcz&n=000000&e=0000000000000000"
        );
        assert_eq!(url_from_ndef(&l.file).as_deref(), Some(l.url.as_str()));
        l.settings.validate().unwrap();
        let sdm = l.settings.sdm.as_ref().unwrap();
        let ctr = sdm.read_ctr_offset.unwrap() as usize;
        assert_eq!(&l.file[ctr..ctr + 6], b"000000");
        assert_eq!(&l.file[ctr - 3..ctr], b"&n=");
        assert_eq!(sdm.mac_input_offset, sdm.mac_offset);
    }

    #[test]
    fn impossible_templates_are_refused() {
        let long = format!(
            "https://example.com/{}?n={{ctr}}&e={{mac}}",
            "a".repeat(240)
        );
        assert!(matches!(
            layout(&Template::parse(&long).unwrap(), "x"),
            Err(LayoutError::TooLong { .. })
        ));
        let no_ctr = Template::parse("https://a.com/?x={xuid}&e={mac}").unwrap();
        assert_eq!(layout(&no_ctr, "x"), Err(LayoutError::NoCounter));
        assert!(matches!(
            layout(&Template::default(), "bad code"),
            Err(LayoutError::BadXuid(_))
        ));
    }

    #[test]
    fn picc_and_enc_layout_is_valid() {
        let t = Template::parse("https://a.com/?p={picc}&d={enc}&m={mac}").unwrap();
        let l = layout(&t, "x").unwrap();
        l.settings.validate().unwrap();
    }
}
