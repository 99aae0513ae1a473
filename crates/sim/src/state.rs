//! The persistent state of a simulated NTAG 424 DNA: what survives leaving the field.
//! Serialized to one JSON file per tag (simulated tags are test devices: keys are in the file).

use serde::{Deserialize, Serialize};

use crate::chip::settings::StoredSettingsError;
use crate::crypto::AesKey;

/// Default content of the Capability Container file (NT4H2421Gx §8.2, delivery state).
pub const CC_DEFAULT: &str = "001720010000FF0406E104010000000506E10500808283000000000000000000";

/// FileOption's CommMode bits (NT4H2421Gx Table 22): plain, and fully enciphered.
const PLAIN: u8 = 0x00;
const FULL: u8 = 0x03;

/// One standard data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFile {
    /// File number (01 CC, 02 NDEF, 03 proprietary).
    pub file_no: u8,
    /// ISO file identifier (`E103`..`E105`).
    pub fid: u16,
    /// The file's content; its length is the file size.
    #[serde(with = "hex_vec")]
    pub data: Vec<u8>,
    /// GetFileSettings layout of the current settings (the chip's own encoding).
    #[serde(with = "hex_vec")]
    pub settings: Vec<u8>,
    /// SDMReadCtr (24 bits), counted up on each read that mirrors SDM data.
    pub sdm_read_ctr: u32,
}

/// Everything the chip keeps in non-volatile memory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipState {
    /// The 7-byte UID.
    #[serde(with = "hex_arr7")]
    pub uid: [u8; 7],
    /// Application keys 0 to 4.
    #[serde(with = "crate::hex_serde::keys5")]
    pub keys: [AesKey; 5],
    /// Key versions, as ChangeKey set them and GetKeyVersion reports them.
    pub key_versions: [u8; 5],
    /// The three standard files (01, 02, 03).
    pub files: Vec<SimFile>,
    /// Consecutive failed authentications (the delay counter; survives power loss).
    pub failed_auths: u32,
    /// Random ID enabled (SetConfiguration option 00): GetVersion answers zeros for the UID.
    pub random_id: bool,
    /// GetVersion hardware frame (7 bytes).
    #[serde(with = "hex_vec")]
    pub version_hw: Vec<u8>,
    /// GetVersion software frame (7 bytes).
    #[serde(with = "hex_vec")]
    pub version_sw: Vec<u8>,
    /// The last GetVersion frame without the UID: BatchNo/FabKey, CWProd, YearProd (7 bytes).
    #[serde(with = "hex_vec")]
    pub batch: Vec<u8>,
    /// Read_Sig answer: signed with the simulator key unless overridden (fixtures).
    #[serde(with = "hex_vec")]
    pub signature: Vec<u8>,
    /// LRP mode (SetConfiguration option 05; permanent).
    #[serde(default)]
    pub lrp: bool,
    /// An NTAG 424 DNA TagTamper (NT4H2421Tx): its tamper loop and status.
    #[serde(default)]
    pub tag_tamper: Option<TagTamper>,
    /// The failed-authentication counter: its configuration (SetConfiguration option 0A) and
    /// each key's TotFailCtr. A tag file from before it has the delivery setting and zeros.
    #[serde(default)]
    pub fail_ctr: FailCtr,
}

/// The total failed-authentication counters and their configuration (NT4H2421Gx §9,
/// §10.5.1 Table 50 option 0Ah).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailCtr {
    /// FailedCtrOption bit 0: the limit is kept (delivery: enabled).
    pub enabled: bool,
    /// TotFailCtrLimit (> 0; delivery 1000): a key whose TotFailCtr is at or above it is
    /// blocked for authentication.
    pub limit: u16,
    /// TotFailCtrDecr (delivery 10): taken off at each successful authentication.
    pub decrement: u16,
    /// TotFailCtr of keys 0 to 4.
    pub total: [u16; 5],
}

impl Default for FailCtr {
    fn default() -> Self {
        FailCtr {
            enabled: true,
            limit: 1000,
            decrement: 10,
            total: [0; 5],
        }
    }
}

impl FailCtr {
    /// The key is blocked: its TotFailCtr reached the limit while the counter is enabled.
    pub fn blocked(&self, key_no: u8) -> bool {
        self.enabled
            && self
                .total
                .get(key_no as usize)
                .is_some_and(|t| *t >= self.limit)
    }
}

/// The TagTamper part of an NT4H2421Tx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagTamper {
    /// SetConfiguration option 07 enabled it (permanent; measured from the next activation).
    pub enabled: bool,
    /// TTStatusKey: 00..04 that key, 0E free, 0F never.
    pub status_key: u8,
    /// The physical loop is open (the wire was cut: `tag424 sim tamper`).
    pub loop_open: bool,
    /// TTPermStatus latched to open at a measurement with the loop open.
    pub opened: bool,
}

/// Why a chip state read from a tag file is not one the chip could be in
/// ([`ChipState::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A fixed-length field (`version_hw`, `version_sw`, `batch`, `signature`) of another
    /// length.
    #[error("{field} is {len} bytes, {expected} expected")]
    Length {
        /// The field.
        field: &'static str,
        /// Its length in the file.
        len: usize,
        /// The length the chip has.
        expected: usize,
    },
    /// One of the three standard files is not there.
    #[error("file {file_no:02X} is missing")]
    MissingFile {
        /// The file number.
        file_no: u8,
    },
    /// A standard file with another FID or size than the chip's.
    #[error(
        "file {file_no:02X} must be FID {expected_fid:04X} of {expected_size} bytes (is {fid:04X}, {size} bytes)"
    )]
    FileShape {
        /// The file number.
        file_no: u8,
        /// The chip's FID for it.
        expected_fid: u16,
        /// The chip's size for it.
        expected_size: usize,
        /// The FID in the file.
        fid: u16,
        /// The size of its data in the file.
        size: usize,
    },
    /// A file's stored settings the chip could not hold.
    #[error("file {file_no:02X}: {source}")]
    Settings {
        /// The file number.
        file_no: u8,
        /// What is wrong with them.
        #[source]
        source: StoredSettingsError,
    },
    /// An SDM read counter over 24 bits.
    #[error("file {file_no:02X}: the SDM read counter is 24 bits")]
    SdmReadCtr {
        /// The file number.
        file_no: u8,
        /// The counter in the file.
        value: u32,
    },
    /// Another number of files than the chip's three.
    #[error("{0} files, 3 expected")]
    FileCount(usize),
    /// A TagTamper status key that is not one (00..04, 0E, 0F), or TagTamper state on a chip
    /// whose GetVersion does not say NT4H2421Tx (HWSubType 08h).
    #[error("TagTamper state does not fit the chip")]
    TagTamper {
        /// TTStatusKey in the file.
        status_key: u8,
        /// GetVersion's hardware subtype in the file.
        hw_subtype: u8,
    },
}

impl std::fmt::Debug for ChipState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipState")
            .field("uid", &hex::encode_upper(self.uid))
            .finish_non_exhaustive()
    }
}

impl ChipState {
    /// A tag as it leaves the factory, with the given UID.
    pub fn factory(uid: [u8; 7]) -> Self {
        // GetFileSettings images as the chip keeps them (NT4H2421Gx §10.7.2, Table 73):
        // FileType 00 (standard data file), FileOption (its CommMode, no SDM), the access
        // rights as sent, FileSize (3 bytes, LSB first); the delivery state's files, access
        // rights and sizes (NT4H2421Gx §8.2). Written from the chip's side: not with the
        // host's `FileSettings`, whose encoder the simulator is there to check.
        let mk = |file_no: u8, fid: u16, data: Vec<u8>, file_option: u8, ar: [u8; 2]| {
            let size = (data.len() as u32).to_le_bytes();
            SimFile {
                file_no,
                fid,
                settings: vec![0x00, file_option, ar[0], ar[1], size[0], size[1], size[2]],
                data,
                sdm_read_ctr: 0,
            }
        };
        let cc = hex::decode(CC_DEFAULT).unwrap_or_else(|_| vec![0; 32]);
        ChipState {
            uid,
            keys: std::array::from_fn(|_| AesKey::FACTORY),
            key_versions: [0; 5],
            files: vec![
                mk(1, 0xE103, cc, PLAIN, [0x00, 0xE0]),
                mk(2, 0xE104, vec![0; 256], PLAIN, [0xE0, 0xEE]),
                mk(3, 0xE105, vec![0; 128], FULL, [0x30, 0x23]),
            ],
            failed_auths: 0,
            random_id: false,
            version_hw: vec![0x04, 0x04, 0x02, 0x30, 0x00, 0x11, 0x05],
            version_sw: vec![0x04, 0x04, 0x02, 0x01, 0x02, 0x11, 0x05],
            batch: vec![0xCD, 0x65, 0x93, 0x5D, 0x40, 0x21, 0x24],
            signature: crate::originality::simulator_sign(&uid).to_vec(),
            lrp: false,
            tag_tamper: None,
            fail_ctr: FailCtr::default(),
        }
    }

    /// A factory NTAG 424 DNA TagTamper (HWSubType 08h), TagTamper not yet enabled, loop closed.
    pub fn factory_tag_tamper(uid: [u8; 7]) -> Self {
        let mut s = ChipState::factory(uid);
        s.version_hw[2] = 0x08;
        s.tag_tamper = Some(TagTamper {
            enabled: false,
            status_key: 0x0E,
            loop_open: false,
            opened: false,
        });
        s
    }

    /// Checks a state read from disk, so that a damaged or hand-edited tag file is an error
    /// when it is loaded, never a panic of the chip later.
    pub fn validate(&self) -> Result<(), StateError> {
        for (field, v, expected) in [
            ("version_hw", &self.version_hw, 7),
            ("version_sw", &self.version_sw, 7),
            ("batch", &self.batch, 7),
            ("signature", &self.signature, 56),
        ] {
            if v.len() != expected {
                return Err(StateError::Length {
                    field,
                    len: v.len(),
                    expected,
                });
            }
        }
        let variant = crate::chip::settings::Variant {
            tag_tamper: self.tag_tamper.is_some(),
            lrp: self.lrp,
        };
        for (file_no, fid, size) in [
            (1u8, 0xE103u16, 32usize),
            (2, 0xE104, 256),
            (3, 0xE105, 128),
        ] {
            let f = self
                .file(file_no)
                .ok_or(StateError::MissingFile { file_no })?;
            if f.fid != fid || f.data.len() != size {
                return Err(StateError::FileShape {
                    file_no,
                    expected_fid: fid,
                    expected_size: size,
                    fid: f.fid,
                    size: f.data.len(),
                });
            }
            crate::chip::settings::decode_stored(&f.settings, f.data.len(), variant)
                .map_err(|source| StateError::Settings { file_no, source })?;
            if f.sdm_read_ctr > 0xFF_FFFF {
                return Err(StateError::SdmReadCtr {
                    file_no,
                    value: f.sdm_read_ctr,
                });
            }
        }
        if self.files.len() != 3 {
            return Err(StateError::FileCount(self.files.len()));
        }
        if let Some(t) = &self.tag_tamper {
            let hw_subtype = self.version_hw[2];
            if !(t.status_key <= 4 || t.status_key >= 0x0E) || hw_subtype != 0x08 {
                return Err(StateError::TagTamper {
                    status_key: t.status_key,
                    hw_subtype,
                });
            }
        }
        Ok(())
    }

    /// A factory tag with a random UID (`04` + 6 random bytes, as NXP UIDs start).
    pub fn random_factory() -> Self {
        let mut uid = [0u8; 7];
        uid[0] = 0x04;
        uid[1..].copy_from_slice(&crate::crypto::random_bytes::<6>());
        ChipState::factory(uid)
    }

    /// The file with this number.
    pub fn file(&self, file_no: u8) -> Option<&SimFile> {
        self.files.iter().find(|f| f.file_no == file_no)
    }

    /// The file with this number, to change.
    pub fn file_mut(&mut self, file_no: u8) -> Option<&mut SimFile> {
        self.files.iter_mut().find(|f| f.file_no == file_no)
    }

    /// True while all five keys are the factory keys.
    pub fn has_factory_keys(&self) -> bool {
        self.keys.iter().all(AesKey::is_factory)
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod hex_arr7 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 7], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 7], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("a UID is 7 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delivery state's GetFileSettings images: CC file plain, read free, change with key
    /// 0 (`00 00 00E0 200000`); NDEF file plain, everything free but change (`00 00 E0EE
    /// 000100`); proprietary file fully enciphered (`00 03 3023 800000`).
    #[test]
    fn a_factory_tag_keeps_the_delivery_states_file_settings() {
        let s = ChipState::factory([0x04, 0, 0, 0, 0, 0, 0x01]);
        let images: Vec<String> = s
            .files
            .iter()
            .map(|f| hex::encode_upper(&f.settings))
            .collect();
        assert_eq!(
            images,
            ["000000E0200000", "0000E0EE000100", "00033023800000"]
        );
    }

    fn refused(change: impl FnOnce(&mut ChipState)) -> StateError {
        let mut s = ChipState::factory([0x04, 1, 2, 3, 4, 5, 6]);
        change(&mut s);
        s.validate().expect_err("refused")
    }

    /// A damaged tag file is refused with what is wrong as data, each rule its own variant.
    #[test]
    fn a_refused_state_carries_the_offending_values() {
        assert_eq!(
            ChipState::factory([0x04, 0, 0, 0, 0, 0, 1]).validate(),
            Ok(())
        );
        assert_eq!(
            refused(|s| {
                s.version_sw.pop();
            }),
            StateError::Length {
                field: "version_sw",
                len: 6,
                expected: 7
            }
        );
        assert_eq!(
            refused(|s| s.signature.push(0)),
            StateError::Length {
                field: "signature",
                len: 57,
                expected: 56
            }
        );
        assert_eq!(
            refused(|s| s.files.retain(|f| f.file_no != 3)),
            StateError::MissingFile { file_no: 3 }
        );
        assert_eq!(
            refused(|s| s.files[0].data.push(0)),
            StateError::FileShape {
                file_no: 1,
                expected_fid: 0xE103,
                expected_size: 32,
                fid: 0xE103,
                size: 33
            }
        );
        assert_eq!(
            refused(|s| s.files[1].sdm_read_ctr = 0x100_0000),
            StateError::SdmReadCtr {
                file_no: 2,
                value: 0x100_0000
            }
        );
        assert_eq!(
            refused(|s| {
                let extra = s.files[2].clone();
                s.files.push(extra)
            }),
            StateError::FileCount(4)
        );
        let mut tt = ChipState::factory_tag_tamper([0x04, 1, 2, 3, 4, 5, 6]);
        tt.tag_tamper = tt.tag_tamper.map(|t| TagTamper {
            status_key: 0x07,
            ..t
        });
        assert_eq!(
            tt.validate(),
            Err(StateError::TagTamper {
                status_key: 0x07,
                hw_subtype: 0x08
            })
        );
    }

    /// A file's refused settings are kept as the error's source, typed, not as text.
    #[test]
    fn refused_settings_are_the_source_of_the_state_error() {
        use crate::chip::settings::StoredSettingsError;
        use std::error::Error as _;
        let e = refused(|s| s.files[2].settings[0] = 0x01);
        assert!(
            matches!(
                &e,
                StateError::Settings {
                    file_no: 3,
                    source: StoredSettingsError::FileType { file_type: 0x01 }
                }
            ),
            "{e:?}"
        );
        let source = e
            .source()
            .and_then(|s| s.downcast_ref::<StoredSettingsError>());
        assert_eq!(
            source,
            Some(&StoredSettingsError::FileType { file_type: 0x01 })
        );
    }
}
