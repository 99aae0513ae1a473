//! What a PC/SC reader says about itself and the tag on it, for `tag424 doctor`: the vendor,
//! model, firmware and serial number attributes where the driver gives them (best effort), and
//! the protocol and ATR of a connected tag. Reads only.

use super::{map_err, no_tag, PcscCard, PcscError, PcscReader, TAG_SHARE_MODE};

/// The reader's own attributes (`SCardGetAttrib`); `None` where the driver does not give one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReaderAttributes {
    /// `SCARD_ATTR_VENDOR_NAME`.
    pub vendor: Option<String>,
    /// `SCARD_ATTR_VENDOR_IFD_TYPE` (the model).
    pub model: Option<String>,
    /// `SCARD_ATTR_VENDOR_IFD_VERSION`, as major.minor (and build when not 0); for a USB CCID
    /// reader, its bcdDevice.
    pub firmware: Option<String>,
    /// `SCARD_ATTR_VENDOR_IFD_SERIAL_NO`.
    pub serial: Option<String>,
}

/// The protocol and ATR of a connected tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagStatus {
    /// `T=0`, `T=1`, `RAW`, or `None` when the reader does not say.
    pub protocol: Option<&'static str>,
    /// The ATR.
    pub atr: Vec<u8>,
}

/// A text attribute: printable ASCII up to the first NUL, trimmed; `None` when empty.
fn text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    let s: String = String::from_utf8_lossy(&raw[..end])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `SCARD_ATTR_VENDOR_IFD_VERSION`: a DWORD 0xMMmmbbbb (major, minor, build).
fn version(raw: &[u8]) -> Option<String> {
    let b: [u8; 4] = raw.get(..4)?.try_into().ok()?;
    let v = u32::from_le_bytes(b);
    let (major, minor, build) = (v >> 24, (v >> 16) & 0xFF, v & 0xFFFF);
    Some(if build == 0 {
        format!("{major:x}.{minor:02x}")
    } else {
        format!("{major:x}.{minor:02x} build {build}")
    })
}

fn attributes_of(card: &pcsc::Card) -> ReaderAttributes {
    let get = |a| card.get_attribute_owned(a).ok();
    ReaderAttributes {
        vendor: get(pcsc::Attribute::VendorName).and_then(|r| text(&r)),
        model: get(pcsc::Attribute::VendorIfdType).and_then(|r| text(&r)),
        firmware: get(pcsc::Attribute::VendorIfdVersion).and_then(|r| version(&r)),
        serial: get(pcsc::Attribute::VendorIfdSerialNo).and_then(|r| text(&r)),
    }
}

impl PcscReader {
    /// The reader's attributes, through `tag` when one is connected, else through a direct
    /// connection to the reader (no tag needed). Best effort: what the driver does not give,
    /// or a reader that refuses a direct connection, leaves `None`s.
    pub fn attributes(&self, tag: Option<&PcscCard>) -> ReaderAttributes {
        if let Some(card) = tag.and_then(|t| t.card.as_ref()) {
            return attributes_of(card);
        }
        match self.ctx.connect(
            &self.name,
            pcsc::ShareMode::Direct,
            pcsc::Protocols::UNDEFINED,
        ) {
            Ok(card) => {
                let a = attributes_of(&card);
                let _ = card.disconnect(pcsc::Disposition::LeaveCard);
                a
            }
            Err(_) => ReaderAttributes::default(),
        }
    }

    /// Connects to the tag on the reader, exclusively as for encoding, if one is there now:
    /// `None` when the reader is empty (never waits).
    pub fn connect_present(&self) -> Result<Option<PcscCard>, PcscError> {
        if !self.card_present()? {
            return Ok(None);
        }
        match self
            .ctx
            .connect(&self.name, TAG_SHARE_MODE, pcsc::Protocols::ANY)
        {
            Ok(card) => Ok(Some(self.card(card))),
            Err(e) if no_tag(&e) => Ok(None),
            Err(pcsc::Error::SharingViolation) => Err(PcscError::TagInUse(self.name())),
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                Err(PcscError::ReaderGone(self.name()))
            }
            Err(e) => Err(map_err("connecting to the tag")(e)),
        }
    }
}

impl PcscCard {
    /// The protocol and ATR of the connected tag.
    pub fn status(&self) -> Result<TagStatus, PcscError> {
        let card = self
            .card
            .as_ref()
            .ok_or_else(|| PcscError::ReaderGone(self.reader.clone()))?;
        let s = card
            .status2_owned()
            .map_err(map_err("reading the tag's status"))?;
        Ok(TagStatus {
            protocol: s.protocol2().map(|p| match p {
                pcsc::Protocol::T0 => "T=0",
                pcsc::Protocol::T1 => "T=1",
                pcsc::Protocol::RAW => "RAW",
            }),
            atr: s.atr().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_decode() {
        assert_eq!(text(b"ACS\0junk").as_deref(), Some("ACS"));
        assert_eq!(text(b"\0"), None);
        assert_eq!(text(b"  "), None);
        // A CCID reader's bcdDevice 0x0214 as the driver gives it: 0x02140000.
        assert_eq!(version(&[0, 0, 0x14, 0x02]).as_deref(), Some("2.14"));
        assert_eq!(
            version(&[5, 0, 0x00, 0x01]).as_deref(),
            Some("1.00 build 5")
        );
        assert_eq!(version(&[1, 2]), None);
    }
}
