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
//! Option `0A` (5 bytes, "Failed authentication counter configuration", Table 50):
//! `FailedCtrOption (bit 0: 1 enables [default]) || TotFailCtrLimit (2, LSB first, > 0000h,
//! default 1000) || TotFailCtrDecr (2, LSB first, default 10)`; limit and decrement are
//! ignored when disabling. Not permanent: key 0 may set it again. At the limit the related
//! key cannot be used for authentication anymore (§9; a blocked AppMasterKey for good).

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

/// The failed-authentication counter configuration (SetConfiguration option `0A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FailedAuthConfig {
    /// TotFailCtrLimit: failed authentications with one key after which that key is blocked.
    /// Never 0 (the chip refuses it); a `NonZeroU16` keeps it so.
    pub limit: std::num::NonZeroU16,
    /// TotFailCtrDecr: taken off the key's TotFailCtr at each successful authentication.
    pub decrement: u16,
}

impl FailedAuthConfig {
    /// The chip's delivery setting: enabled, limit 1000, decrement 10 (Table 50).
    pub const DEFAULT: FailedAuthConfig = FailedAuthConfig {
        limit: match std::num::NonZeroU16::new(1000) {
            Some(n) => n,
            None => std::num::NonZeroU16::MIN,
        },
        decrement: 10,
    };

    /// Option `0A` data enabling the counter with this limit and decrement.
    pub fn encode(&self) -> [u8; 5] {
        let l = self.limit.get().to_le_bytes();
        let d = self.decrement.to_le_bytes();
        [0x01, l[0], l[1], d[0], d[1]]
    }
}

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

    /// Sets the failed-authentication counter (option `0A`), enabled with `config`'s limit
    /// and decrement. Reversible: key 0 may set it again.
    pub fn set_failed_auth_counter(self, config: &FailedAuthConfig) -> Result<Self, CardError> {
        self.set_configuration(0x0A, &config.encode())
    }

    /// Enables TagTamper for good (option `07`, NT4H2421Tx only), with GetTTStatus free to
    /// everyone. Measuring starts at the next activation.
    pub fn enable_tag_tamper(self) -> Result<Self, CardError> {
        self.set_configuration(0x07, &[0x01, TT_STATUS_FREE])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU16;

    /// NT4H2421Gx Rev. 3.0 §10.5.1 Table 50, option 0Ah: FailedCtrOption bit 0 = 1 enables,
    /// then TotFailCtrLimit and TotFailCtrDecr, 2 bytes each, LSB first.
    #[test]
    fn failed_auth_counter_data_is_the_datasheet_layout() {
        assert_eq!(
            FailedAuthConfig::DEFAULT.encode(),
            [0x01, 0xE8, 0x03, 0x0A, 0x00]
        );
        let c = FailedAuthConfig {
            limit: NonZeroU16::new(0x1234).unwrap(),
            decrement: 0xABCD,
        };
        assert_eq!(c.encode(), [0x01, 0x34, 0x12, 0xCD, 0xAB]);
        let c = FailedAuthConfig {
            limit: NonZeroU16::new(3).unwrap(),
            decrement: 1,
        };
        assert_eq!(c.encode(), [0x01, 0x03, 0x00, 0x01, 0x00]);
    }
}
