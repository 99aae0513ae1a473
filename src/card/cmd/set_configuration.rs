//! SetConfiguration (INS `5C`). CommMode: Full, authenticated with the master key.
//! NT4H2421Gx §10.5.1; AN12196 Table 27 (option `00`, data `02`: enable Random ID).
//!
//! CmdHeader = Option (plain, MACed); CmdData = the option's data (encrypted). The answer
//! carries a MACt.

use crate::card::{CardError, CommMode, Session};
use crate::transport::Transport;

const NAME: &str = "SetConfiguration";

impl<'c, T: Transport> Session<'c, T> {
    /// Sets configuration `option` to `data`. Some options cannot be undone (Random ID):
    /// callers are expected to ask the operator first.
    pub fn set_configuration(self, option: u8, data: &[u8]) -> Result<Self, CardError> {
        if data.is_empty() {
            return Err(CardError::InvalidArgument(
                "SetConfiguration needs option data".into(),
            ));
        }
        let (s, r) = self.run(NAME, 0x5C, &[option], data, CommMode::Full, true)?;
        crate::card::expect_no_data(NAME, &r)?;
        Ok(s)
    }
}
