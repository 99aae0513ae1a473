//! GetTTStatus (INS `F7`), NTAG 424 DNA TagTamper (NT4H2421Tx) only. CommMode: Full inside a
//! session; plain (`90 F7 00 00 00`) without one when TTStatusKey is `0E` (free).
//! NT4H2421Tx §10.2 / §11.9.1 (status bytes); NXP reader library `CMD_GET_TAG_TAMPER_STATUS`.
//!
//! No data is sent (the datasheet's Fig. 28 shows Lc = 01, its tables no data; NXP's reader
//! library sends none). The answer is `TTPermStatus || TTCurrStatus`, each `C` (closed),
//! `O` (open) or `I` (invalid: TagTamper not enabled), and the chip measures afresh.

use crate::card::{Card, CardError, CommMode, Malformed, Session};
use crate::sun::TtStatus;
use crate::transport::Transport;

const NAME: &str = "GetTTStatus";
const INS: u8 = 0xF7;

fn status(data: &[u8]) -> Result<TtStatus, CardError> {
    let b: [u8; 2] = data.try_into().map_err(|_| CardError::Malformed {
        command: NAME,
        problem: Malformed::Length {
            expected: 2,
            got: data.len(),
        },
    })?;
    TtStatus::from_bytes(b).ok_or_else(|| CardError::Malformed {
        command: NAME,
        problem: Malformed::Field(format!("status {} is not C, O or I", hex::encode_upper(b))),
    })
}

impl<T: Transport> Card<T> {
    /// The TagTamper status without authentication (TTStatusKey free).
    pub fn get_tt_status(&mut self) -> Result<TtStatus, CardError> {
        let data = self.native(NAME, INS, &[], false)?;
        status(&data)
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// The TagTamper status inside a session (Full mode).
    pub fn get_tt_status(self) -> Result<(Self, TtStatus), CardError> {
        let (s, data) = self.run(NAME, INS, &[], &[], CommMode::Full, false)?;
        Ok((s, status(&data)?))
    }
}
