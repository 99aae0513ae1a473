//! GetCardUID (INS `51`). CommMode: Full, in any authenticated session. NT4H2421Gx §10.5.3;
//! AN12196 Table 28. Sent with no header and no data: `90 51 00 00 08 MACt 00`; the answer is
//! the encrypted, padded 7-byte UID and a MACt. Works also when Random ID is on.

use crate::card::{CardError, CommMode, Malformed, Session};
use crate::transport::Transport;

impl<'c, T: Transport> Session<'c, T> {
    /// The chip's real 7-byte UID.
    pub fn get_card_uid(self) -> Result<(Self, [u8; 7]), CardError> {
        let (s, data) = self.run("GetCardUID", 0x51, &[], &[], CommMode::Full, false)?;
        let uid: [u8; 7] = data
            .as_slice()
            .try_into()
            .map_err(|_| CardError::Malformed {
                command: "GetCardUID",
                problem: Malformed::Length {
                    expected: 7,
                    got: data.len(),
                },
            })?;
        Ok((s, uid))
    }
}
