//! WriteData (INS `8D`). CommMode: the file's (Plain, MAC or Full). NT4H2421Gx §10.8.2;
//! AN12196 Tables 17, 21 (Full) and 24 (Plain inside a session).
//!
//! CmdHeader = FileNo Offset(3, LE) Length(3, LE), then the data (encrypted in Full mode).
//! Data longer than the card's chunk size is written in several commands.

use crate::card::cmd::read_data::data_header;
use crate::card::{Card, CardError, CommMode, Session};
use crate::transport::Transport;

const NAME: &str = "WriteData";
const INS: u8 = 0x8D;

fn check(offset: u32, data: &[u8]) -> Result<(), CardError> {
    if data.is_empty() || (offset as u64 + data.len() as u64) > 0xFF_FFFF {
        return Err(CardError::InvalidArgument(format!(
            "cannot write {} bytes at offset {offset}",
            data.len()
        )));
    }
    Ok(())
}

impl<T: Transport> Card<T> {
    /// Writes without authentication (a file whose write access is free).
    pub fn write_data(&mut self, file_no: u8, offset: u32, data: &[u8]) -> Result<(), CardError> {
        check(offset, data)?;
        for (i, chunk) in data.chunks(self.chunk()).enumerate() {
            let at = offset + (i * self.chunk()) as u32;
            let mut payload = data_header(file_no, at, chunk.len() as u32).to_vec();
            payload.extend_from_slice(chunk);
            let r = self.native(NAME, INS, &payload, false)?;
            crate::card::expect_no_data(NAME, &r)?;
        }
        Ok(())
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// Writes `data` at `offset` in `mode`.
    pub fn write_data(
        mut self,
        file_no: u8,
        offset: u32,
        data: &[u8],
        mode: CommMode,
    ) -> Result<Self, CardError> {
        check(offset, data)?;
        let chunk = self.card.chunk();
        for (i, part) in data.chunks(chunk).enumerate() {
            let at = offset + (i * chunk) as u32;
            let r;
            (self, r) = self.run(
                NAME,
                INS,
                &data_header(file_no, at, part.len() as u32),
                part,
                mode,
                false,
            )?;
            crate::card::expect_no_data(NAME, &r)?;
        }
        Ok(self)
    }
}
