//! Read_Sig (INS `3C`). CommMode: Plain when not authenticated (Full in a session, not used
//! here). NT4H2421Gx §10.10.1 (originality signature §8.2); AN12196 §7.2.
//!
//! `90 3C 00 00 01 00 00` → the 56-byte ECDSA signature `r || s` with status `9190`.

use crate::card::{Card, CardError, Malformed};
use crate::transport::Transport;

const NAME: &str = "Read_Sig";

impl<T: Transport> Card<T> {
    /// Reads the originality signature (56 bytes).
    pub fn read_sig(&mut self) -> Result<[u8; 56], CardError> {
        let data = self.native(NAME, 0x3C, &[0x00], false)?;
        data.as_slice()
            .try_into()
            .map_err(|_| CardError::Malformed {
                command: NAME,
                problem: Malformed::Length {
                    expected: 56,
                    got: data.len(),
                },
            })
    }
}
