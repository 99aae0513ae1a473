//! GetFileSettings (INS `F5`). CommMode: Plain when not authenticated (AN12196 Table 10),
//! MAC in an authenticated session (AN12196 Table 7). NT4H2421Gx §10.7.2, Table 73.
//!
//! `90 F5 00 00 01 FileNo 00` → FileType FileOption AccessRights(2) FileSize(3) [SDM …].

use crate::card::file_settings::FileSettings;
use crate::card::{Card, CardError, CommMode, Session};
use crate::crypto::sdm::SdmMode;
use crate::transport::Transport;

const NAME: &str = "GetFileSettings";
const INS: u8 = 0xF5;

fn parse(data: &[u8]) -> Result<FileSettings, CardError> {
    FileSettings::parse(data).map_err(|problem| CardError::Malformed {
        command: NAME,
        problem,
    })
}

impl<T: Transport> Card<T> {
    /// GetFileSettings of `file_no` without authentication.
    pub fn get_file_settings(&mut self, file_no: u8) -> Result<FileSettings, CardError> {
        parse(&self.native(NAME, INS, &[file_no], false)?)
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// GetFileSettings of `file_no` in CommMode.MAC. The answer does not say whether the
    /// chip is in LRP mode (it changes the PICCData length); the session's mode does, so the
    /// settings compare equal to those sent in the same mode.
    pub fn get_file_settings(self, file_no: u8) -> Result<(Self, FileSettings), CardError> {
        let (s, data) = self.run(NAME, INS, &[file_no], &[], CommMode::Mac, false)?;
        let mut fs = parse(&data)?;
        if let Some(sdm) = fs.sdm.as_mut() {
            sdm.lrp = s.mode() == SdmMode::Lrp;
        }
        Ok((s, fs))
    }
}
