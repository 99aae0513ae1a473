//! ChangeFileSettings (INS `5F`). CommMode: Full, authenticated with the file's Change key.
//! NT4H2421Gx §10.7.1, Table 69; AN12196 Table 18.
//!
//! CmdHeader = FileNo (plain, MACed); CmdData = FileOption AccessRights(2) [SDMOptions
//! SDMAccessRights(2) offsets…] (encrypted). The settings are validated before anything is sent.

use crate::card::file_settings::FileSettings;
use crate::card::{CardError, CommMode, Session};
use crate::transport::Transport;

const NAME: &str = "ChangeFileSettings";

impl<'c, T: Transport> Session<'c, T> {
    /// Changes the settings of `file_no`. `settings.size` must be the file's size (used only
    /// to validate SDM offsets; it is not sent).
    pub fn change_file_settings(
        self,
        file_no: u8,
        settings: &FileSettings,
    ) -> Result<Self, CardError> {
        settings
            .validate()
            .map_err(|source| CardError::InvalidSettings { file_no, source })?;
        let (s, data) = self.run(
            NAME,
            0x5F,
            &[file_no],
            &settings.encode_change(),
            CommMode::Full,
            false,
        )?;
        crate::card::expect_no_data(NAME, &data)?;
        Ok(s)
    }
}
