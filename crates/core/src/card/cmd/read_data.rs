//! ReadData (INS `AD`). CommMode: the file's (Plain, MAC or Full). NT4H2421Gx §10.8.1.
//!
//! CmdHeader = FileNo Offset(3, LE) Length(3, LE). Reads longer than the card's chunk size are
//! split into several commands; `91AF` frames within one command are followed.

use crate::card::{u24_le, Card, CardError, CommMode, Malformed, Session};
use crate::transport::Transport;

const NAME: &str = "ReadData";
const INS: u8 = 0xAD;

/// The CmdHeader of ReadData / WriteData.
pub fn data_header(file_no: u8, offset: u32, len: u32) -> [u8; 7] {
    let o = u24_le(offset);
    let l = u24_le(len);
    [file_no, o[0], o[1], o[2], l[0], l[1], l[2]]
}

fn check_len(got: usize, want: usize) -> Result<(), CardError> {
    if got != want {
        return Err(CardError::Malformed {
            command: NAME,
            problem: Malformed::Length {
                expected: want,
                got,
            },
        });
    }
    Ok(())
}

fn check_range(offset: u32, len: usize) -> Result<(), CardError> {
    if len == 0 || (offset as u64 + len as u64) > 0xFF_FFFF {
        return Err(CardError::InvalidArgument(format!(
            "cannot read {len} bytes at offset {offset}"
        )));
    }
    Ok(())
}

impl<T: Transport> Card<T> {
    /// Reads `len` bytes at `offset` without authentication (CommMode.Plain). On a file with
    /// SDM, an unauthenticated read is what makes the chip mirror and count.
    pub fn read_data(
        &mut self,
        file_no: u8,
        offset: u32,
        len: usize,
    ) -> Result<Vec<u8>, CardError> {
        check_range(offset, len)?;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(self.chunk());
            let data = self.native(
                NAME,
                INS,
                &data_header(file_no, offset + out.len() as u32, n as u32),
                false,
            )?;
            check_len(data.len(), n)?;
            out.extend_from_slice(&data);
        }
        Ok(out)
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// Reads `len` bytes at `offset` in `mode`.
    pub fn read_data(
        mut self,
        file_no: u8,
        offset: u32,
        len: usize,
        mode: CommMode,
    ) -> Result<(Self, Vec<u8>), CardError> {
        check_range(offset, len)?;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(self.card.chunk());
            let data;
            (self, data) = self.run(
                NAME,
                INS,
                &data_header(file_no, offset + out.len() as u32, n as u32),
                &[],
                mode,
                false,
            )?;
            check_len(data.len(), n)?;
            out.extend_from_slice(&data);
        }
        Ok((self, out))
    }
}
