//! GetVersion (INS `60`, then `AF` twice). CommMode: Plain (unauthenticated). NT4H2421Gx §10.5.2.
//!
//! Three frames: hardware info (7 bytes, `91AF`), software info (7 bytes, `91AF`), then
//! UID(7) BatchNo/FabKey(5) CWProd(1) YearProd(1) [FabKeyID(1)] with `9100`.

use crate::card::{Card, CardError, Malformed};
use crate::transport::Transport;

const NAME: &str = "GetVersion";

/// Hardware or software part of the version answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VersionPart {
    /// Vendor ID (`04h`: NXP).
    pub vendor_id: u8,
    /// Type (`04h`: NTAG).
    pub kind: u8,
    /// Subtype (`02h`: NTAG 424 DNA, `08h`: NTAG 424 DNA TagTamper).
    pub subtype: u8,
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Encoded storage size: `2^(n>>1)` bytes, "between that and the double" when bit 0 is set.
    pub storage_size: u8,
    /// Communication protocol type (`05h` on NTAG 424 DNA).
    pub protocol: u8,
}

impl VersionPart {
    fn parse(b: &[u8]) -> Result<Self, Malformed> {
        if b.len() != 7 {
            return Err(Malformed::Length {
                expected: 7,
                got: b.len(),
            });
        }
        Ok(VersionPart {
            vendor_id: b[0],
            kind: b[1],
            subtype: b[2],
            major: b[3],
            minor: b[4],
            storage_size: b[5],
            protocol: b[6],
        })
    }

    /// The storage size in bytes (lower bound).
    pub fn storage_bytes(&self) -> usize {
        1usize << (self.storage_size >> 1).min(24)
    }
}

/// The parsed GetVersion answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Version {
    /// First frame: hardware information.
    pub hardware: VersionPart,
    /// Second frame: software information.
    pub software: VersionPart,
    /// The 7-byte UID.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex_serde::bytes"))]
    pub uid: [u8; 7],
    /// Bytes 7–11 as sent: BatchNo (36 bits) then the high 4 bits of FabKey.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::hex_serde::bytes"))]
    pub batch: [u8; 5],
    /// The 36-bit batch number.
    pub batch_no: u64,
    /// The 5-bit FabKey (1Fh: a customised configuration, FabKeyID follows).
    pub fab_key: u8,
    /// Production calendar week (BCD as the chip stores it; FabKey's low bit removed).
    pub week: u8,
    /// Production year (BCD, `0x21` is 2021).
    pub year: u8,
}

impl Version {
    /// Parses the three frames of the answer.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, Malformed> {
        if frames.len() != 3 {
            return Err(Malformed::FrameCount {
                expected: 3,
                got: frames.len(),
            });
        }
        let hardware = VersionPart::parse(&frames[0])?;
        let software = VersionPart::parse(&frames[1])?;
        let p = &frames[2];
        // 14 bytes, or 15 with FabKeyID on later silicon.
        if p.len() < 14 {
            return Err(Malformed::TooShort {
                expected: 14,
                got: p.len(),
            });
        }
        if p.len() > 15 {
            return Err(Malformed::Trailing(p.len() - 15));
        }
        let mut uid = [0u8; 7];
        uid.copy_from_slice(&p[..7]);
        let mut batch = [0u8; 5];
        batch.copy_from_slice(&p[7..12]);
        Ok(Version {
            hardware,
            software,
            uid,
            batch,
            batch_no: (u64::from_be_bytes([0, 0, 0, p[7], p[8], p[9], p[10], 0]) >> 4)
                | u64::from(p[11] >> 4),
            fab_key: ((p[11] & 0x0F) << 1) | (p[12] >> 7),
            week: p[12] & 0x7F,
            year: p[13],
        })
    }

    /// True for an NTAG 424 DNA or NTAG 424 DNA TagTamper (vendor NXP, type 04, subtype 02 or 08,
    /// major version 3x, 416-byte-class storage).
    pub fn is_ntag424_dna(&self) -> bool {
        let hw = &self.hardware;
        hw.vendor_id == 0x04
            && hw.kind == 0x04
            && matches!(hw.subtype, 0x02 | 0x08)
            && hw.major >> 4 == 0x3
            && hw.storage_size == 0x11
    }

    /// A short product name.
    pub fn product(&self) -> &'static str {
        match (
            self.hardware.vendor_id,
            self.hardware.kind,
            self.hardware.subtype,
        ) {
            (0x04, 0x04, 0x02) => "NTAG 424 DNA",
            (0x04, 0x04, 0x08) => "NTAG 424 DNA TagTamper",
            (0x04, 0x04, _) => "NTAG (unknown subtype)",
            (0x04, 0x01, _) => "MIFARE DESFire",
            (0x04, _, _) => "NXP chip (not NTAG)",
            _ => "not an NXP chip",
        }
    }

    /// Production year and week, decoded from BCD.
    pub fn production(&self) -> (u16, u8) {
        let bcd = |b: u8| (b >> 4) * 10 + (b & 0x0F);
        (2000 + u16::from(bcd(self.year)), bcd(self.week))
    }
}

impl<T: Transport> Card<T> {
    /// GetVersion: three frames, parsed (3 APDU exchanges).
    pub fn get_version(&mut self) -> Result<Version, CardError> {
        let (frames, _) = self.native_frames(NAME, 0x60, &[], false)?;
        Version::parse(&frames).map_err(|problem| CardError::Malformed {
            command: NAME,
            problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AN12196's GetVersion example (frame 3: UID 04968CAA5C5E80, CD65935D 40 21 18).
    #[test]
    fn parses_the_production_data() {
        let frames = vec![
            hex::decode("04040230001105").unwrap(),
            hex::decode("04040201011105").unwrap(),
            hex::decode("04968CAA5C5E80CD65935D40A118").unwrap(),
        ];
        let v = Version::parse(&frames).unwrap();
        assert!(v.is_ntag424_dna());
        assert_eq!(v.batch_no, 0xCD65935D4);
        assert_eq!(v.fab_key, 1, "FabKey's low bit is bit 7 of byte 12");
        assert_eq!(v.production(), (2018, 21));
        assert!(Version::parse(&frames[..2]).is_err());
        assert!(Version::parse(&[frames[0].clone(), frames[1].clone(), vec![0; 13]]).is_err());
        assert!(Version::parse(&[frames[0].clone(), frames[1].clone(), vec![0; 16]]).is_err());
    }
}
