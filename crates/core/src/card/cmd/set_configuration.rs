//! SetConfiguration (INS `5C`). CommMode: Full, authenticated with the master key.
//! NT4H2421Gx §10.5.1; AN12196 Table 27 (option `00`, data `02`: enable Random ID).
//!
//! CmdHeader = Option (plain, MACed); CmdData = the option's data (encrypted). The answer
//! carries a MACt, except for option `05` (the switch to LRP): the chip answers a bare `9100`
//! and the AES session is over (AN12321 Table 3; a real tag's log agrees).
//!
//! Option `05` data (10 bytes, NT4H2421Gx Table 50): `00000000 || PDCap2.1 (02 = LRP) ||
//! 000000 || PDCap2.5 || PDCap2.6`. Permanent: there is no way back to AES.
//! Option `07` (NT4H2421Tx only): `TTConfig (01 enables) || TTStatusKey (0E free)`. Permanent.

use crate::card::session::{Reply, Spec};
use crate::card::{Card, CardError, CommMode, Session};
use crate::transport::Transport;

const NAME: &str = "SetConfiguration";

/// Option `05` data that switches the chip to LRP (PDCap2.5 and .6 left zero).
pub const ENABLE_LRP_DATA: [u8; 10] = [0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0];
/// Option `00` (PICCConfig) data that enables Random ID: bit 1 set (NT4H2421Gx §10.5.1,
/// Table 50; AN12196 §6.2 Table 27 sends exactly `5C 00` with data `02`). IRREVERSIBLE:
/// from the next activation the chip answers anticollision with a random ID and GetVersion
/// with a zero UID, for good; only GetCardUID (authenticated) gives the real UID.
pub const ENABLE_RANDOM_ID_DATA: [u8; 1] = [0x02];
/// TTStatusKey `0E`: GetTTStatus needs no authentication.
pub const TT_STATUS_FREE: u8 = 0x0E;

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

    /// Switches the chip to LRP mode for good (option `05`). The chip answers without a MAC
    /// and the AES session ends: the card comes back for an AuthenticateLRPFirst.
    pub fn enable_lrp(mut self) -> Result<&'c mut Card<T>, CardError> {
        self.exchange(
            Spec {
                name: NAME,
                ins: 0x5C,
                mode: CommMode::Full,
                reply: Reply::BareStatus,
                sensitive: false,
            },
            &[0x05],
            &ENABLE_LRP_DATA,
        )?;
        Ok(self.end())
    }

    /// Enables Random ID for good (option `00`, data `02`). IRREVERSIBLE: callers journal it
    /// first and ask the operator (`batch --random-uid`).
    pub fn enable_random_id(self) -> Result<Self, CardError> {
        self.set_configuration(0x00, &ENABLE_RANDOM_ID_DATA)
    }

    /// Enables TagTamper for good (option `07`, NT4H2421Tx only), with GetTTStatus free to
    /// everyone. Measuring starts at the next activation.
    pub fn enable_tag_tamper(self) -> Result<Self, CardError> {
        self.set_configuration(0x07, &[0x01, TT_STATUS_FREE])
    }
}
