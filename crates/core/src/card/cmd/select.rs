//! ISOSelectFile (CLA `00`, INS `A4`). CommMode: Plain. NT4H2421Gx §10.9.1.
//!
//! By DF name (`P1=04`): `00 A4 04 0C 07 D2760000850101 00` selects the NDEF application
//! (AN12196 Table 9). By file identifier (`P1=00`): `00 A4 00 0C 02 FID 00`.
//! `P2=0C`: no FCI returned. Answer: `9000`.

use crate::card::{Card, CardError};
use crate::transport::Transport;

/// DF name of the NTAG 424 DNA NDEF application (NFC Forum Type 4 Tag).
pub const NDEF_APP_DF_NAME: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];

/// ISO file identifier of the capability container file (file 01h).
pub const FID_CC: u16 = 0xE103;
/// ISO file identifier of the NDEF file (file 02h).
pub const FID_NDEF: u16 = 0xE104;
/// ISO file identifier of the proprietary file (file 03h).
pub const FID_PROPRIETARY: u16 = 0xE105;

/// `00 A4 04 0C Lc name 00`.
pub fn select_by_name_apdu(df_name: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0xA4, 0x04, 0x0C, df_name.len() as u8];
    v.extend_from_slice(df_name);
    v.push(0x00);
    v
}

/// `00 A4 00 0C 02 FID 00`.
pub fn select_by_id_apdu(fid: u16) -> Vec<u8> {
    let f = fid.to_be_bytes();
    vec![0x00, 0xA4, 0x00, 0x0C, 0x02, f[0], f[1], 0x00]
}

impl<T: Transport> Card<T> {
    /// Selects the NDEF application by its DF name.
    pub fn select_ndef_application(&mut self) -> Result<(), CardError> {
        self.iso("ISOSelectFile", &select_by_name_apdu(&NDEF_APP_DF_NAME))
            .map(drop)
    }

    /// Selects a file (or the application, `E110`) by its ISO file identifier.
    pub fn select_file_id(&mut self, fid: u16) -> Result<(), CardError> {
        self.iso("ISOSelectFile", &select_by_id_apdu(fid)).map(drop)
    }
}
