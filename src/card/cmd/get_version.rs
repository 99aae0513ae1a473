//! GetVersion (INS `60`, then `AF` twice). CommMode: Plain (unauthenticated). NT4H2421Gx §10.5.2.
//!
//! Three frames: hardware info (7 bytes, `91AF`), software info (7 bytes, `91AF`), then
//! UID(7) BatchNo/FabKey(5) CWProd(1) YearProd(1) [FabKeyID(1)] with `9100`.

use serde::Serialize;

use crate::card::{Card, CardError, Malformed};
use crate::transport::Transport;

const NAME: &str = "GetVersion";

/// Hardware or software part of the version answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VersionPart {
    pub vendor_id: u8,
    pub kind: u8,
    pub subtype: u8,
    pub major: u8,
    pub minor: u8,
    /// Encoded storage size: `2^(n>>1)` bytes, "between that and the double" when bit 0 is set.
    pub storage_size: u8,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub hardware: VersionPart,
    pub software: VersionPart,
    #[serde(serialize_with = "crate::hex_serde::bytes")]
    pub uid: [u8; 7],
    #[serde(serialize_with = "crate::hex_serde::bytes")]
    pub batch: [u8; 5],
    /// Production calendar week (BCD as the chip stores it).
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
            week: p[12],
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
