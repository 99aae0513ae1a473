//! ISOReadBinary (CLA `00`, INS `B0`) and ISOUpdateBinary (CLA `00`, INS `D6`).
//! CommMode: Plain (unauthenticated use, as a phone reads the NDEF file). NT4H2421Gx §10.9.2, §10.9.3.
//!
//! `P1` bit 7 set: bits 4..0 are a short file identifier and `P2` the offset (0..255);
//! otherwise `P1 P2` is a 15-bit offset into the currently selected file. `Le 00` means 256.

use crate::card::{Card, CardError, Malformed};
use crate::transport::Transport;

/// Where an ISO binary command points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryTarget {
    /// The selected file, with an offset below 0x8000.
    Current(u16),
    /// A short file identifier (1..=30, e.g. 2 for the NDEF file) and an offset below 256.
    ShortId(u8, u8),
}

impl BinaryTarget {
    fn p1p2(self) -> Result<[u8; 2], CardError> {
        match self {
            BinaryTarget::Current(o) if o < 0x8000 => Ok(o.to_be_bytes()),
            BinaryTarget::ShortId(sfi, o) if (1..=30).contains(&sfi) => Ok([0x80 | sfi, o]),
            other => Err(CardError::InvalidArgument(format!(
                "invalid ISO binary target {other:?}"
            ))),
        }
    }
}

impl<T: Transport> Card<T> {
    /// ISOReadBinary of `len` bytes (1..=256).
    pub fn iso_read_binary(
        &mut self,
        target: BinaryTarget,
        len: usize,
    ) -> Result<Vec<u8>, CardError> {
        if !(1..=256).contains(&len) {
            return Err(CardError::InvalidArgument(format!(
                "ISOReadBinary reads 1 to 256 bytes, not {len}"
            )));
        }
        let [p1, p2] = target.p1p2()?;
        let data = self.iso("ISOReadBinary", &[0x00, 0xB0, p1, p2, len as u8])?;
        if data.len() > len {
            return Err(CardError::Malformed {
                command: "ISOReadBinary",
                problem: Malformed::Trailing(data.len() - len),
            });
        }
        Ok(data)
    }

    /// ISOUpdateBinary of `data` (1..=255 bytes).
    pub fn iso_update_binary(
        &mut self,
        target: BinaryTarget,
        data: &[u8],
    ) -> Result<(), CardError> {
        if data.is_empty() || data.len() > 255 {
            return Err(CardError::InvalidArgument(format!(
                "ISOUpdateBinary writes 1 to 255 bytes, not {}",
                data.len()
            )));
        }
        let [p1, p2] = target.p1p2()?;
        let mut apdu = vec![0x00, 0xD6, p1, p2, data.len() as u8];
        apdu.extend_from_slice(data);
        self.iso("ISOUpdateBinary", &apdu).map(drop)
    }
}
