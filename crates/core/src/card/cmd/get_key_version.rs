//! GetKeyVersion (INS `64`). CommMode: Plain when not authenticated, MAC in a session.
//! NT4H2421Gx §10.6.2. `90 64 00 00 01 KeyNo 00` → KeyVer.

use crate::card::cmd::authenticate::check_key_no;
use crate::card::{Card, CardError, CommMode, Malformed, Session};
use crate::transport::Transport;

const NAME: &str = "GetKeyVersion";
const INS: u8 = 0x64;

fn one_byte(data: &[u8]) -> Result<u8, CardError> {
    match data {
        [v] => Ok(*v),
        _ => Err(CardError::Malformed {
            command: NAME,
            problem: Malformed::Length {
                expected: 1,
                got: data.len(),
            },
        }),
    }
}

impl<T: Transport> Card<T> {
    /// The version byte of key `key_no` (`00` on a factory tag).
    pub fn get_key_version(&mut self, key_no: u8) -> Result<u8, CardError> {
        check_key_no(key_no)?;
        one_byte(&self.native(NAME, INS, &[key_no], false)?)
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// GetKeyVersion in CommMode.MAC.
    pub fn get_key_version(self, key_no: u8) -> Result<(Self, u8), CardError> {
        check_key_no(key_no)?;
        let (s, data) = self.run(NAME, INS, &[key_no], &[], CommMode::Mac, false)?;
        Ok((s, one_byte(&data)?))
    }
}
