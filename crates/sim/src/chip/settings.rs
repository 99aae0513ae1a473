//! File settings from the chip's side: decoding and validating ChangeFileSettings (INS 5F,
//! NT4H2421Gx §10.7.1 Table 69, return codes Table 71; NT4H2421Tx adds TTStatusOffset) and
//! encoding GetFileSettings (§10.7.2 Table 73).
//!
//! Written from the datasheet independently of the host's `card::file_settings`, so an
//! encoding mistake on the host is refused here as a real chip would refuse it.
//!
//! ChangeFileSettings data after FileNo:
//! `FileOption | AR(2) | [SDMOptions | SDMAR(2) | UIDOff | CtrOff | PICCOff | TTOff |
//!  MACInputOff | ENCOff | ENCLen | MACOff | CtrLimit]`, each offset 3 bytes LSB first, each
//! present only when the options and access rights call for it.

/// `919E` (parameter error) or `917E` (length error), as the chip answers.
pub type SettingsError = u16;

const PARAMETER: u16 = 0x919E;
const LENGTH: u16 = 0x917E;

/// Access condition nibble `E`: free access (`0`..`4` name a key).
pub const FREE: u8 = 0xE;
/// Access condition nibble `F`: no access.
pub const NEVER: u8 = 0xF;

/// SDMOptions bit 7: UID mirroring.
pub const OPT_UID: u8 = 0x80;
/// SDMOptions bit 6: SDMReadCtr mirroring.
pub const OPT_CTR: u8 = 0x40;
/// SDMOptions bit 5: SDMReadCtrLimit enabled.
pub const OPT_CTR_LIMIT: u8 = 0x20;
/// SDMOptions bit 4: SDMENCFileData enabled.
pub const OPT_ENC: u8 = 0x10;
/// SDMOptions bit 3: TTStatus mirroring (NT4H2421Tx only).
pub const OPT_TT: u8 = 0x08;
/// SDMOptions bit 0: ASCII encoding.
pub const OPT_ASCII: u8 = 0x01;

/// ASCII length of the UID mirror in the file.
pub const UID_LEN: u32 = 14;
/// ASCII length of the SDMReadCtr mirror.
pub const CTR_LEN: u32 = 6;
/// ASCII length of the SDMMAC mirror.
pub const MAC_LEN: u32 = 16;
/// ASCII length of the TTStatus mirror.
pub const TT_LEN: u32 = 2;

/// The chip's settings of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipSettings {
    /// CommMode bits of FileOption: 0 plain, 1 MAC, 3 full.
    pub comm: u8,
    /// Read access condition nibble.
    pub read: u8,
    /// Write access condition nibble.
    pub write: u8,
    /// Read-write access condition nibble.
    pub read_write: u8,
    /// Change (ChangeFileSettings) access condition nibble.
    pub change: u8,
    /// File size in bytes.
    pub size: u32,
    /// SDM settings, when FileOption bit 6 enables SDM.
    pub sdm: Option<ChipSdm>,
}

/// The SDM part of a file's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChipSdm {
    /// SDMOptions byte (see the `OPT_` bits).
    pub options: u8,
    /// SDMCtrRet access condition nibble (GetFileCounters).
    pub ctr_ret: u8,
    /// SDMMetaRead access condition nibble: `E` plain mirrors, a key encrypts PICCData.
    pub meta_read: u8,
    /// SDMFileRead access condition nibble: the SDMMAC and SDMENCFileData key, `F` none.
    pub file_read: u8,
    /// UIDOffset.
    pub uid: Option<u32>,
    /// SDMReadCtrOffset.
    pub ctr: Option<u32>,
    /// PICCDataOffset.
    pub picc: Option<u32>,
    /// TTStatusOffset.
    pub tt: Option<u32>,
    /// SDMMACInputOffset.
    pub mac_input: Option<u32>,
    /// SDMENCOffset and SDMENCLength.
    pub enc: Option<(u32, u32)>,
    /// SDMMACOffset.
    pub mac: Option<u32>,
    /// SDMReadCtrLimit.
    pub ctr_limit: Option<u32>,
}

impl ChipSdm {
    /// SDMOptions mirrors the UID.
    pub fn mirrors_uid(&self) -> bool {
        self.options & OPT_UID != 0
    }

    /// SDMOptions mirrors SDMReadCtr.
    pub fn mirrors_ctr(&self) -> bool {
        self.options & OPT_CTR != 0
    }

    /// The key of PICCData (MetaRead `0`..`4`).
    pub fn meta_key(&self) -> Option<u8> {
        (self.meta_read <= 4).then_some(self.meta_read)
    }

    /// The key of SDMMAC and file data (FileRead `0`..`4`).
    pub fn file_key(&self) -> Option<u8> {
        (self.file_read <= 4).then_some(self.file_read)
    }
}

fn access_ok(n: u8) -> bool {
    n <= 4 || n == FREE || n == NEVER
}

/// Reads 3-byte little-endian values one after the other.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u24(&mut self) -> Result<u32, SettingsError> {
        let s = self.b.get(self.pos..self.pos + 3).ok_or(LENGTH)?;
        self.pos += 3;
        Ok(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
    }

    fn byte(&mut self) -> Result<u8, SettingsError> {
        let v = *self.b.get(self.pos).ok_or(LENGTH)?;
        self.pos += 1;
        Ok(v)
    }
}

/// What the chip is: which options it knows, how wide its PICCData mirror is.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// NT4H2421Tx: SDMOptions bit 3 (TTStatus) is defined.
    pub tag_tamper: bool,
    /// LRP mode: PICCData is 24 bytes (48 ASCII characters) instead of 16 (32).
    pub lrp: bool,
}

impl Variant {
    fn picc_len(self) -> u32 {
        if self.lrp {
            48
        } else {
            32
        }
    }
}

/// Decodes ChangeFileSettings data (after FileNo) for a file of `size` bytes.
pub fn decode_change(data: &[u8], size: u32, v: Variant) -> Result<ChipSettings, SettingsError> {
    let mut r = Reader { b: data, pos: 0 };
    let file_option = r.byte()?;
    let (ar0, ar1) = (r.byte()?, r.byte()?);
    // FileOption: b6 SDM, b1..0 CommMode (2 is RFU); the other bits are RFU.
    if file_option & !0x43 != 0 || file_option & 0x03 == 0x02 {
        return Err(PARAMETER);
    }
    let mut s = ChipSettings {
        comm: file_option & 0x03,
        read_write: ar0 >> 4,
        change: ar0 & 0x0F,
        read: ar1 >> 4,
        write: ar1 & 0x0F,
        size,
        sdm: None,
    };
    for n in [s.read, s.write, s.read_write, s.change] {
        if !access_ok(n) {
            return Err(PARAMETER);
        }
    }
    if file_option & 0x40 != 0 {
        s.sdm = Some(decode_sdm(&mut r, v)?);
    }
    if r.pos != data.len() {
        return Err(LENGTH);
    }
    if let Some(sdm) = &s.sdm {
        validate_sdm(sdm, size, v)?;
    }
    Ok(s)
}

fn decode_sdm(r: &mut Reader<'_>, v: Variant) -> Result<ChipSdm, SettingsError> {
    let options = r.byte()?;
    let (a0, a1) = (r.byte()?, r.byte()?);
    let rfu = if v.tag_tamper { 0x06 } else { 0x0E };
    if options & rfu != 0 || options & OPT_ASCII == 0 || a0 >> 4 != 0xF {
        return Err(PARAMETER);
    }
    let mut s = ChipSdm {
        options,
        ctr_ret: a0 & 0x0F,
        meta_read: a1 >> 4,
        file_read: a1 & 0x0F,
        ..ChipSdm::default()
    };
    for n in [s.ctr_ret, s.meta_read, s.file_read] {
        if !access_ok(n) {
            return Err(PARAMETER);
        }
    }
    if s.meta_read == FREE {
        if s.mirrors_uid() {
            s.uid = Some(r.u24()?);
        }
        if s.mirrors_ctr() {
            s.ctr = Some(r.u24()?);
        }
    } else if s.meta_read <= 4 {
        s.picc = Some(r.u24()?);
    }
    if options & OPT_TT != 0 {
        s.tt = Some(r.u24()?);
    }
    if s.file_read != NEVER {
        s.mac_input = Some(r.u24()?);
        if options & OPT_ENC != 0 {
            s.enc = Some((r.u24()?, r.u24()?));
        }
        s.mac = Some(r.u24()?);
    }
    if options & OPT_CTR_LIMIT != 0 {
        s.ctr_limit = Some(r.u24()?);
    }
    Ok(s)
}

/// The checks of Table 69 / Table 71: everything fits, nothing overlaps, every option has
/// what it needs.
fn validate_sdm(s: &ChipSdm, size: u32, v: Variant) -> Result<(), SettingsError> {
    let fits = |off: u32, len: u32| off.checked_add(len).is_some_and(|e| e <= size);
    let mut regions: Vec<(u32, u32)> = Vec::new();
    for (off, len) in [
        (s.uid, UID_LEN),
        (s.ctr, CTR_LEN),
        (s.picc, v.picc_len()),
        (s.mac, MAC_LEN),
    ] {
        if let Some(o) = off {
            if !fits(o, len) {
                return Err(PARAMETER);
            }
            regions.push((o, len));
        }
    }
    if s.meta_key().is_some() && !s.mirrors_uid() && !s.mirrors_ctr() {
        return Err(PARAMETER);
    }
    if let Some((o, l)) = s.enc {
        // SDMENCFileData: both UID and counter, length a non-zero multiple of 32, inside the
        // MAC input and before the MAC.
        if !(s.mirrors_uid() && s.mirrors_ctr()) || l == 0 || l % 32 != 0 || !fits(o, l) {
            return Err(PARAMETER);
        }
        let (mi, mo) = (s.mac_input.unwrap_or(0), s.mac.unwrap_or(0));
        if o < mi || o + l > mo {
            return Err(PARAMETER);
        }
        regions.push((o, l));
    }
    if let (Some(mi), Some(mo)) = (s.mac_input, s.mac) {
        if mi > mo {
            return Err(PARAMETER);
        }
    }
    if s.ctr_limit.is_some() && !s.mirrors_ctr() {
        return Err(PARAMETER);
    }
    let overlap = |a: (u32, u32), b: (u32, u32)| a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
    for (i, a) in regions.iter().enumerate() {
        if regions[i + 1..].iter().any(|b| overlap(*a, *b)) {
            return Err(PARAMETER);
        }
    }
    if let Some(t) = s.tt {
        // The status may sit inside the plaintext half of the encrypted data, nowhere else
        // among the mirrors.
        if !fits(t, TT_LEN) {
            return Err(PARAMETER);
        }
        let inside_enc = s
            .enc
            .is_some_and(|(o, l)| t >= o && t + TT_LEN <= o + l / 2);
        let clash = regions
            .iter()
            .filter(|r| Some(**r) != s.enc)
            .any(|r| overlap(*r, (t, TT_LEN)));
        let clash_enc = !inside_enc && s.enc.is_some_and(|e| overlap(e, (t, TT_LEN)));
        if clash || clash_enc {
            return Err(PARAMETER);
        }
    }
    Ok(())
}

/// GetFileSettings answer (Table 73): FileType 00, FileOption, AR, FileSize, then the SDM part
/// in the ChangeFileSettings order.
pub fn encode_get(s: &ChipSettings) -> Vec<u8> {
    let mut out = vec![
        0x00,
        s.comm | if s.sdm.is_some() { 0x40 } else { 0 },
        s.read_write << 4 | s.change,
        s.read << 4 | s.write,
    ];
    out.extend_from_slice(&s.size.to_le_bytes()[..3]);
    if let Some(d) = &s.sdm {
        out.push(d.options);
        out.push(0xF0 | d.ctr_ret);
        out.push(d.meta_read << 4 | d.file_read);
        let mut put = |v: Option<u32>| {
            if let Some(v) = v {
                out.extend_from_slice(&v.to_le_bytes()[..3]);
            }
        };
        put(d.uid);
        put(d.ctr);
        put(d.picc);
        put(d.tt);
        put(d.mac_input);
        put(d.enc.map(|e| e.0));
        put(d.enc.map(|e| e.1));
        put(d.mac);
        put(d.ctr_limit);
    }
    out
}

/// Why a stored GetFileSettings image (a tag file's `settings`) is not one the chip could hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredSettingsError {
    /// Shorter than FileType, FileOption, the access rights and FileSize.
    #[error("settings are {len} bytes, at least 7 expected")]
    TooShort {
        /// The image's length.
        len: usize,
    },
    /// A file type other than a standard data file (00h).
    #[error("file type {file_type:02X}h: only standard data files (00h)")]
    FileType {
        /// The stored FileType byte.
        file_type: u8,
    },
    /// FileSize is not the length of the file's data.
    #[error("settings give {size} bytes, the file holds {data_len}")]
    SizeMismatch {
        /// The size the settings give.
        size: u32,
        /// The file's actual length.
        data_len: usize,
    },
    /// ChangeFileSettings would refuse these settings with this status word.
    #[error("settings {} are refused ({sw:04X})", hex::encode_upper(.image))]
    Refused {
        /// The stored image.
        image: Vec<u8>,
        /// The chip's answer: `919E` (parameter error) or `917E` (length error).
        sw: SettingsError,
    },
}

/// Decodes a stored GetFileSettings image (the chip's own NVM format) and checks it as
/// ChangeFileSettings would; `data_len` is the file's actual size.
pub fn decode_stored(
    b: &[u8],
    data_len: usize,
    v: Variant,
) -> Result<ChipSettings, StoredSettingsError> {
    if b.len() < 7 {
        return Err(StoredSettingsError::TooShort { len: b.len() });
    }
    if b[0] != 0x00 {
        return Err(StoredSettingsError::FileType { file_type: b[0] });
    }
    let size = u32::from(b[4]) | u32::from(b[5]) << 8 | u32::from(b[6]) << 16;
    if size as usize != data_len {
        return Err(StoredSettingsError::SizeMismatch { size, data_len });
    }
    let mut change = vec![b[1], b[2], b[3]];
    change.extend_from_slice(&b[7..]);
    decode_change(&change, size, v).map_err(|sw| StoredSettingsError::Refused {
        image: b.to_vec(),
        sw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES: Variant = Variant {
        tag_tamper: false,
        lrp: false,
    };

    #[test]
    fn an12196_t18_change_file_settings_decodes() {
        // AN12196 Table 18: 4000E0C1F121200000430000430000 for file 02 (256 bytes).
        let d = hex::decode("4000E0C1F121200000430000430000").unwrap();
        let s = decode_change(&d, 256, AES).unwrap();
        let sdm = s.sdm.clone().unwrap();
        assert_eq!(
            (s.read, s.write, s.read_write, s.change),
            (0xE, 0x0, 0x0, 0x0)
        );
        assert_eq!((sdm.meta_read, sdm.file_read, sdm.ctr_ret), (2, 1, 1));
        assert_eq!(sdm.picc, Some(0x20));
        assert_eq!(sdm.mac_input, Some(0x43));
        assert_eq!(sdm.mac, Some(0x43));
        // GetFileSettings gives the same fields back with type and size.
        let g = encode_get(&s);
        assert_eq!(decode_stored(&g, 256, AES).unwrap(), s);
    }

    /// NT4H2421Gx §10.7.1 Table 69 and §9.3.2: SDMOptions bit 5 (20h) announces
    /// SDMReadCtrLimit, 3 bytes LSB first after SDMMACOffset. AN12196 Table 18's settings with
    /// the bit set and `563412` appended: a limit of 123456h.
    #[test]
    fn sdm_read_ctr_limit_is_three_bytes_lsb_first_after_the_mac_offset() {
        // 40 00E0 C1→E1 (bit 5 on) F121 200000 430000 430000 || 563412
        let d = hex::decode("4000E0E1F121200000430000430000563412").unwrap();
        let s = decode_change(&d, 256, AES).unwrap();
        assert_eq!(s.sdm.clone().unwrap().ctr_limit, Some(0x12_3456));
        // Without the three bytes the command is short.
        assert_eq!(decode_change(&d[..d.len() - 3], 256, AES), Err(LENGTH));
        let g = encode_get(&s);
        assert!(g.ends_with(&[0x56, 0x34, 0x12]));
        assert_eq!(decode_stored(&g, 256, AES).unwrap(), s);
    }

    #[test]
    fn bad_settings_are_refused_with_the_chips_codes() {
        let ok = hex::decode("4000E0C1F121200000430000430000").unwrap();
        assert_eq!(decode_change(&ok[..ok.len() - 1], 256, AES), Err(LENGTH));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(decode_change(&trailing, 256, AES), Err(LENGTH));
        let mut tt = ok.clone();
        tt[3] |= OPT_TT; // TagTamper bit on a Gx chip: RFU
        assert_eq!(decode_change(&tt, 256, AES), Err(PARAMETER));
        let mut no_ascii = ok.clone();
        no_ascii[3] &= !OPT_ASCII;
        assert_eq!(decode_change(&no_ascii, 256, AES), Err(PARAMETER));
        // PICCData runs past the end of a 64-byte file.
        assert_eq!(decode_change(&ok, 64, AES), Err(PARAMETER));
        // In LRP mode the same offsets need 48 characters of PICCData: overlaps the MAC.
        let lrp = Variant {
            tag_tamper: false,
            lrp: true,
        };
        assert_eq!(decode_change(&ok, 256, lrp), Err(PARAMETER));
        assert!(decode_stored(&[0; 3], 256, AES).is_err());
    }

    /// A stored image is refused with what is wrong as data: its length, its file type, the
    /// two sizes, or the image and the status word ChangeFileSettings would answer.
    #[test]
    fn a_refused_stored_image_carries_the_offending_values() {
        use StoredSettingsError as E;
        assert_eq!(
            decode_stored(&[0; 3], 256, AES),
            Err(E::TooShort { len: 3 })
        );
        assert_eq!(
            decode_stored(&[0x05, 0, 0xE0, 0xEE, 0, 1, 0], 256, AES),
            Err(E::FileType { file_type: 0x05 })
        );
        assert_eq!(
            decode_stored(&[0, 0, 0xE0, 0xEE, 0, 1, 0], 128, AES),
            Err(E::SizeMismatch {
                size: 256,
                data_len: 128
            })
        );
        // A trailing byte after the SDM-less settings: a length error.
        let long = [0, 0, 0xE0, 0xEE, 0, 1, 0, 0];
        assert_eq!(
            decode_stored(&long, 256, AES),
            Err(E::Refused {
                image: long.to_vec(),
                sw: LENGTH
            })
        );
        // CommMode 2 is RFU: a parameter error.
        let rfu = [0, 0x02, 0xE0, 0xEE, 0, 1, 0];
        assert_eq!(
            decode_stored(&rfu, 256, AES),
            Err(E::Refused {
                image: rfu.to_vec(),
                sw: PARAMETER
            })
        );
    }
}
