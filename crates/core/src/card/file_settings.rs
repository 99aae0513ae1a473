//! File settings as types: access rights, comm mode and the SDM (SUN) configuration, with the
//! byte layout of GetFileSettings (NT4H2421Gx §10.7.2, Table 73) and ChangeFileSettings
//! (§10.7.1, Table 69), and the validation the chip applies before it accepts SDM offsets.

use super::{read_u24_le, u24_le, CommMode, Malformed};

/// One access condition nibble: a key number, free access (`E`) or no access (`F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Access {
    /// Access with the given key number (0 to 4).
    Key(u8),
    /// Free access without authentication (`E`).
    Free,
    /// No access (`F`).
    Never,
}

impl Access {
    /// Decodes one nibble; `5`..`D` are reserved.
    pub fn from_nibble(n: u8) -> Result<Access, Malformed> {
        match n {
            0..=4 => Ok(Access::Key(n)),
            0xE => Ok(Access::Free),
            0xF => Ok(Access::Never),
            other => Err(Malformed::Field(format!(
                "access condition {other:X}h is reserved"
            ))),
        }
    }

    /// The nibble: the key number, `E` or `F`.
    pub fn nibble(self) -> u8 {
        match self {
            Access::Key(k) => k,
            Access::Free => 0xE,
            Access::Never => 0xF,
        }
    }

    /// The key number, if access needs one.
    pub fn key(self) -> Option<u8> {
        match self {
            Access::Key(k) => Some(k),
            _ => None,
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Key(k) => write!(f, "key {k}"),
            Access::Free => f.write_str("free"),
            Access::Never => f.write_str("never"),
        }
    }
}

/// The four access conditions of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AccessRights {
    /// Read (ReadData).
    pub read: Access,
    /// Write (WriteData).
    pub write: Access,
    /// Read and write.
    pub read_write: Access,
    /// ChangeFileSettings.
    pub change: Access,
}

impl AccessRights {
    /// Encoded as `[RW<<4 | Change] [Read<<4 | Write]`.
    pub fn to_bytes(self) -> [u8; 2] {
        [
            self.read_write.nibble() << 4 | self.change.nibble(),
            self.read.nibble() << 4 | self.write.nibble(),
        ]
    }

    /// Decodes `[RW<<4 | Change] [Read<<4 | Write]`.
    pub fn from_bytes(b: [u8; 2]) -> Result<Self, Malformed> {
        Ok(AccessRights {
            read_write: Access::from_nibble(b[0] >> 4)?,
            change: Access::from_nibble(b[0] & 0x0F)?,
            read: Access::from_nibble(b[1] >> 4)?,
            write: Access::from_nibble(b[1] & 0x0F)?,
        })
    }
}

/// Secure Dynamic Messaging settings of a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SdmSettings {
    /// Mirror the UID (plain at `uid_offset`, or inside PICCData).
    pub uid_mirror: bool,
    /// Mirror SDMReadCtr (plain at `read_ctr_offset`, or inside PICCData).
    pub read_ctr_mirror: bool,
    /// SDMReadCtrLimit, when enabled.
    pub read_ctr_limit: Option<u32>,
    /// Encrypted file data: (SDMENCOffset, SDMENCLength) in the file.
    pub enc_file_data: Option<(u32, u32)>,
    /// ASCII encoding of the mirrors (the only encoding NTAG 424 DNA defines).
    pub ascii: bool,
    /// Access condition of GetFileCounters.
    pub ctr_ret: Option<Access>,
    /// SDMMetaReadAccessRight: `Free` mirrors plain UID/counter, a key encrypts PICCData.
    pub meta_read: Option<Access>,
    /// SDMFileReadAccessRight: the key of SDMMAC and encrypted file data; `Never` disables both.
    pub file_read: Option<Access>,
    /// UIDOffset: where the plain ASCII UID is mirrored (SDMMetaRead free).
    pub uid_offset: Option<u32>,
    /// SDMReadCtrOffset: where the plain ASCII read counter is mirrored (SDMMetaRead free).
    pub read_ctr_offset: Option<u32>,
    /// PICCDataOffset: where the encrypted PICCData is mirrored (SDMMetaRead a key).
    pub picc_data_offset: Option<u32>,
    /// TTStatusOffset (NT4H2421Tx only, SDMOptions bit 3): the two TagTamper status bytes.
    pub tt_offset: Option<u32>,
    /// SDMMACInputOffset: where the data the SDMMAC covers starts.
    pub mac_input_offset: Option<u32>,
    /// SDMMACOffset: where the SDMMAC is mirrored.
    pub mac_offset: Option<u32>,
    /// The chip is in LRP mode: PICCData is 48 characters (not part of the encoding).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub lrp: bool,
}

/// Length in the file of each ASCII mirror.
pub const UID_ASCII_LEN: u32 = 14;
/// The SDMReadCtr: three bytes as hex.
pub const CTR_ASCII_LEN: u32 = 6;
/// PICCData in AES mode: one encrypted block as hex.
pub const PICC_ASCII_LEN: u32 = 32;
/// PICCData in LRP mode: PICCRand and one encrypted block.
pub const PICC_LRP_ASCII_LEN: u32 = 48;
/// The TagTamper status: two ASCII bytes.
pub const TT_ASCII_LEN: u32 = 2;
/// The SDMMAC: eight bytes as hex.
pub const MAC_ASCII_LEN: u32 = 16;

impl SdmSettings {
    fn options_byte(&self) -> u8 {
        (self.uid_mirror as u8) << 7
            | (self.read_ctr_mirror as u8) << 6
            | (self.read_ctr_limit.is_some() as u8) << 5
            | (self.enc_file_data.is_some() as u8) << 4
            | (self.tt_offset.is_some() as u8) << 3
            | self.ascii as u8
    }

    fn meta(&self) -> Access {
        self.meta_read.unwrap_or(Access::Never)
    }

    fn file(&self) -> Access {
        self.file_read.unwrap_or(Access::Never)
    }

    /// The mirrored regions `(what, offset, length)` as the chip will write them.
    pub fn regions(&self) -> Vec<(&'static str, u32, u32)> {
        let mut r = Vec::new();
        if let Some(o) = self.uid_offset {
            r.push(("UID", o, UID_ASCII_LEN));
        }
        if let Some(o) = self.read_ctr_offset {
            r.push(("SDMReadCtr", o, CTR_ASCII_LEN));
        }
        if let Some(o) = self.picc_data_offset {
            let len = if self.lrp {
                PICC_LRP_ASCII_LEN
            } else {
                PICC_ASCII_LEN
            };
            r.push(("PICCData", o, len));
        }
        if let Some((o, l)) = self.enc_file_data {
            r.push(("SDMENCFileData", o, l));
        }
        if let Some(o) = self.mac_offset {
            r.push(("SDMMAC", o, MAC_ASCII_LEN));
        }
        r
    }

    /// Checks these settings against a file of `file_size` bytes, by the rules of
    /// ChangeFileSettings: the chip answers a violation with `919E`/`917E`; we refuse earlier.
    pub fn validate(&self, file_size: u32) -> Result<(), SettingsError> {
        use SettingsError as E;
        if !self.ascii {
            return Err(E::NotAscii);
        }
        let (meta, file) = (self.meta(), self.file());
        for (field, a) in [
            ("SDMCtrRet", self.ctr_ret.unwrap_or(Access::Never)),
            ("SDMMetaRead", meta),
            ("SDMFileRead", file),
        ] {
            if let Access::Key(key) = a {
                if key > 4 {
                    return Err(E::NoSuchKey { field, key });
                }
            }
        }
        let need = |cond: bool, v: Option<u32>, field: &'static str| match (cond, v) {
            (true, None) => Err(E::Missing(field)),
            (false, Some(_)) => Err(E::Unused(field)),
            _ => Ok(()),
        };
        need(
            self.uid_mirror && meta == Access::Free,
            self.uid_offset,
            "UIDOffset",
        )?;
        need(
            self.read_ctr_mirror && meta == Access::Free,
            self.read_ctr_offset,
            "SDMReadCtrOffset",
        )?;
        need(
            matches!(meta, Access::Key(_)),
            self.picc_data_offset,
            "PICCDataOffset",
        )?;
        need(
            file != Access::Never,
            self.mac_input_offset,
            "SDMMACInputOffset",
        )?;
        need(file != Access::Never, self.mac_offset, "SDMMACOffset")?;
        if matches!(meta, Access::Key(_)) && !self.uid_mirror && !self.read_ctr_mirror {
            return Err(E::PiccDataMirrorsNothing);
        }
        if self.enc_file_data.is_some() {
            if file == Access::Never {
                return Err(E::EncDataWithoutFileKey);
            }
            if !(self.uid_mirror && self.read_ctr_mirror) {
                return Err(E::EncDataWithoutMirrors);
            }
        }
        if self.read_ctr_limit.is_some() && !self.read_ctr_mirror {
            return Err(E::ReadCtrLimitWithoutCounter);
        }
        if self.read_ctr_limit.is_some_and(|limit| limit > 0xFF_FFFF) {
            return Err(E::ReadCtrLimitTooLarge);
        }
        for (field, offset, len) in self.regions() {
            if offset.checked_add(len).is_none_or(|end| end > file_size) {
                return Err(E::DoesNotFit {
                    field,
                    offset,
                    len,
                    file_size,
                });
            }
        }
        if let Some((o, l)) = self.enc_file_data {
            if l == 0 || !l.is_multiple_of(32) {
                return Err(E::EncLength(l));
            }
            let mi = self.mac_input_offset.unwrap_or(0);
            let mo = self.mac_offset.unwrap_or(0);
            if o < mi || o + l > mo {
                return Err(E::EncDataOutsideMac);
            }
        }
        if let (Some(mi), Some(mo)) = (self.mac_input_offset, self.mac_offset) {
            if mi > mo {
                return Err(E::MacInputAfterMac { input: mi, mac: mo });
            }
        }
        let regions = self.regions();
        let overlap = |a: (u32, u32), b: (u32, u32)| a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                if overlap((a.1, a.2), (b.1, b.2)) {
                    return Err(E::Overlap(a.0, b.0));
                }
            }
        }
        if let Some(t) = self.tt_offset {
            if t.checked_add(TT_ASCII_LEN)
                .is_none_or(|end| end > file_size)
            {
                return Err(E::DoesNotFit {
                    field: "TTStatus",
                    offset: t,
                    len: TT_ASCII_LEN,
                    file_size,
                });
            }
            // Inside the plaintext half of the encrypted data it is encrypted along; any
            // other overlap with a mirror is refused by the chip.
            let in_enc = self
                .enc_file_data
                .is_some_and(|(o, l)| t >= o && t + TT_ASCII_LEN <= o + l / 2);
            for (name, o, l) in &regions {
                if overlap((*o, *l), (t, TT_ASCII_LEN)) && !(in_enc && *name == "SDMENCFileData") {
                    return Err(E::Overlap("TTStatus", name));
                }
            }
        }
        Ok(())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.options_byte());
        let ctr_ret = self.ctr_ret.unwrap_or(Access::Never);
        out.push(0xF0 | ctr_ret.nibble());
        out.push(self.meta().nibble() << 4 | self.file().nibble());
        for v in [
            self.uid_offset,
            self.read_ctr_offset,
            self.picc_data_offset,
            self.tt_offset,
            self.mac_input_offset,
        ]
        .into_iter()
        .flatten()
        {
            out.extend_from_slice(&u24_le(v));
        }
        if let Some((o, l)) = self.enc_file_data {
            out.extend_from_slice(&u24_le(o));
            out.extend_from_slice(&u24_le(l));
        }
        if let Some(v) = self.mac_offset {
            out.extend_from_slice(&u24_le(v));
        }
        if let Some(v) = self.read_ctr_limit {
            out.extend_from_slice(&u24_le(v));
        }
    }

    /// Decodes from SDMOptions onwards; returns the settings and the bytes used.
    fn decode(b: &[u8]) -> Result<(SdmSettings, usize), Malformed> {
        if b.len() < 3 {
            return Err(Malformed::TooShort {
                expected: 3,
                got: b.len(),
            });
        }
        let opt = b[0];
        if opt & 0x06 != 0 {
            return Err(Malformed::Field(format!(
                "SDMOptions {opt:02X}h has reserved bits set"
            )));
        }
        if b[1] >> 4 != 0xF {
            return Err(Malformed::Field(format!(
                "SDMAccessRights {:02X}h: the reserved nibble must be F",
                b[1]
            )));
        }
        let ctr_ret = Access::from_nibble(b[1] & 0x0F)?;
        let meta = Access::from_nibble(b[2] >> 4)?;
        let file = Access::from_nibble(b[2] & 0x0F)?;
        let mut s = SdmSettings {
            uid_mirror: opt & 0x80 != 0,
            read_ctr_mirror: opt & 0x40 != 0,
            ascii: opt & 0x01 != 0,
            ctr_ret: Some(ctr_ret),
            meta_read: Some(meta),
            file_read: Some(file),
            ..Default::default()
        };
        let mut pos = 3;
        let take = |pos: &mut usize| -> Result<u32, Malformed> {
            let v = b.get(*pos..*pos + 3).ok_or(Malformed::TooShort {
                expected: *pos + 3,
                got: b.len(),
            })?;
            *pos += 3;
            Ok(read_u24_le(v))
        };
        if s.uid_mirror && meta == Access::Free {
            s.uid_offset = Some(take(&mut pos)?);
        }
        if s.read_ctr_mirror && meta == Access::Free {
            s.read_ctr_offset = Some(take(&mut pos)?);
        }
        if matches!(meta, Access::Key(_)) {
            s.picc_data_offset = Some(take(&mut pos)?);
        }
        if opt & 0x08 != 0 {
            s.tt_offset = Some(take(&mut pos)?);
        }
        if file != Access::Never {
            s.mac_input_offset = Some(take(&mut pos)?);
            if opt & 0x10 != 0 {
                let o = take(&mut pos)?;
                let l = take(&mut pos)?;
                s.enc_file_data = Some((o, l));
            }
            s.mac_offset = Some(take(&mut pos)?);
        } else if opt & 0x10 != 0 {
            return Err(Malformed::Field(
                "encrypted file data enabled without an SDM file read key".into(),
            ));
        }
        if opt & 0x20 != 0 {
            s.read_ctr_limit = Some(take(&mut pos)?);
        }
        Ok((s, pos))
    }
}

/// The settings of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FileSettings {
    /// `00` StandardData (the only type on NTAG 424 DNA).
    pub file_type: u8,
    /// Comm mode of the data commands (FileOption bits 1–0).
    pub comm_mode: CommMode,
    /// The four access conditions.
    pub access: AccessRights,
    /// File size in bytes (reported by GetFileSettings; not part of ChangeFileSettings).
    pub size: u32,
    /// SDM settings, when FileOption bit 6 enables SDM.
    pub sdm: Option<SdmSettings>,
}

impl FileSettings {
    /// Parses the GetFileSettings answer, rejecting short and trailing bytes.
    pub fn parse(b: &[u8]) -> Result<Self, Malformed> {
        if b.len() < 7 {
            return Err(Malformed::TooShort {
                expected: 7,
                got: b.len(),
            });
        }
        let file_type = b[0];
        let option = b[1];
        if option & 0x3C != 0 || option & 0x80 != 0 {
            return Err(Malformed::Field(format!(
                "FileOption {option:02X}h has reserved bits set"
            )));
        }
        let access = AccessRights::from_bytes([b[2], b[3]])?;
        let size = read_u24_le(&b[4..7]);
        let mut used = 7;
        let sdm = if option & 0x40 != 0 {
            let (s, n) = SdmSettings::decode(&b[7..])?;
            used += n;
            Some(s)
        } else {
            None
        };
        if b.len() > used {
            return Err(Malformed::Trailing(b.len() - used));
        }
        Ok(FileSettings {
            file_type,
            comm_mode: CommMode::from_bits(option),
            access,
            size,
            sdm,
        })
    }

    /// The ChangeFileSettings data (after FileNo): FileOption, AccessRights, SDM fields.
    /// Call [`FileSettings::validate`] first; [`crate::card::Session::change_file_settings`] does.
    pub fn encode_change(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        v.push((self.sdm.is_some() as u8) << 6 | self.comm_mode.bits());
        v.extend_from_slice(&self.access.to_bytes());
        if let Some(s) = &self.sdm {
            s.encode(&mut v);
        }
        v
    }

    /// Checks the SDM settings against the file size.
    pub fn validate(&self) -> Result<(), SettingsError> {
        match &self.sdm {
            Some(s) => s.validate(self.size),
            None => Ok(()),
        }
    }
}

/// Why ChangeFileSettings would refuse these SDM settings (the chip answers `919E` or
/// `917E`; [`SdmSettings::validate`] refuses them before anything is sent). The fields are
/// named as in NT4H2421Gx §10.7.1, Table 69.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// SDM mirroring is only defined in ASCII.
    #[error("SDM mirroring must use ASCII encoding")]
    NotAscii,
    /// An access condition names a key the chip does not have.
    #[error("{field} names key {key}; keys are 0 to 4")]
    NoSuchKey {
        /// `SDMCtrRet`, `SDMMetaRead` or `SDMFileRead`.
        field: &'static str,
        /// The key number named.
        key: u8,
    },
    /// An offset these SDM options need is not given.
    #[error("{0} is required by these SDM options")]
    Missing(&'static str),
    /// An offset is given that these SDM options do not use.
    #[error("{0} is set but not used by these SDM options")]
    Unused(&'static str),
    /// Encrypted PICCData with neither the UID nor the read counter in it.
    #[error("encrypted PICCData needs the UID or the read counter mirrored")]
    PiccDataMirrorsNothing,
    /// Encrypted file data without a key to encrypt it with.
    #[error("encrypted file data needs an SDM file read key")]
    EncDataWithoutFileKey,
    /// Encrypted file data needs both mirrors (its IV is made of them).
    #[error("encrypted file data needs both the UID and the read counter mirrored")]
    EncDataWithoutMirrors,
    /// A read counter limit without the read counter.
    #[error("SDMReadCtrLimit needs the read counter enabled")]
    ReadCtrLimitWithoutCounter,
    /// A read counter limit over 24 bits.
    #[error("SDMReadCtrLimit is a 24-bit value")]
    ReadCtrLimitTooLarge,
    /// SDMENCLength is not a non-zero multiple of 32.
    #[error("SDMENCLength {0} must be a non-zero multiple of 32")]
    EncLength(u32),
    /// The encrypted file data is not inside the MAC'd part.
    #[error("SDMENCFileData must lie between SDMMACInputOffset and SDMMACOffset")]
    EncDataOutsideMac,
    /// The MAC input starts after the MAC.
    #[error("SDMMACInputOffset {input} is after SDMMACOffset {mac}")]
    MacInputAfterMac {
        /// SDMMACInputOffset.
        input: u32,
        /// SDMMACOffset.
        mac: u32,
    },
    /// Two mirrors share bytes of the file.
    #[error("{0} and {1} mirrors overlap")]
    Overlap(&'static str, &'static str),
    /// A mirror that runs past the end of the file.
    #[error("{field} at offset {offset} ({len} bytes) does not fit in the {file_size}-byte file")]
    DoesNotFit {
        /// The mirror (`UID`, `SDMMAC`, …).
        field: &'static str,
        /// Its offset.
        offset: u32,
        /// Its length in the file.
        len: u32,
        /// The file's size.
        file_size: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal is typed (the rule and its values), and says it in the datasheet's words.
    #[test]
    fn a_refused_setting_names_its_rule() {
        let t18 = hex::decode("4000E0C1F121200000430000430000").unwrap();
        let fs =
            FileSettings::parse(&[&[0x00][..], &t18[..3], &[0x00, 0x01, 0x00], &t18[3..]].concat())
                .unwrap();
        assert_eq!(fs.validate(), Ok(()));
        let mut small = fs.clone();
        small.size = 0x20;
        let e = small.validate().unwrap_err();
        assert!(
            matches!(
                e,
                SettingsError::DoesNotFit {
                    file_size: 0x20,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().ends_with("does not fit in the 32-byte file"),
            "{e}"
        );
    }

    /// `batch --read-counter-limit`: SDMOptions bit 5 and the limit 3 bytes LSB first, last
    /// (NT4H2421Gx §10.7.1 Table 69, §9.3.2), on AN12196 Table 18's settings.
    #[test]
    fn read_ctr_limit_encodes_as_the_datasheet_says() {
        let t18 = hex::decode("4000E0C1F121200000430000430000").unwrap();
        let mut fs =
            FileSettings::parse(&[&[0x00][..], &t18[..3], &[0x00, 0x01, 0x00], &t18[3..]].concat())
                .unwrap();
        assert_eq!(fs.encode_change(), t18, "AN12196 Table 18 round trip");
        fs.sdm.as_mut().unwrap().read_ctr_limit = Some(0x12_3456);
        assert_eq!(
            hex::encode_upper(fs.encode_change()),
            "4000E0E1F121200000430000430000563412"
        );
        fs.validate().unwrap();
    }
}
