//! ISO/IEC 7816-4 commands (NT4H2421Gx §10.9): ISOSelectFile (A4), ISOReadBinary (B0),
//! ISOUpdateBinary (D6). Plain only; reads of an SDM file mirror as ReadData does.

use super::settings::FREE;
use super::{sw, with_sw, Answer, Pending, SdmCursor, SimChip, NDEF_APP, PICC_DF};

impl SimChip {
    pub(super) fn iso(&mut self, apdu: &[u8], cursor: Option<SdmCursor>) -> Answer {
        if !matches!(self.pending, Pending::None) {
            return Err(sw::ISO_CONDITIONS);
        }
        if apdu.len() < 4 {
            return Err(sw::ISO_LENGTH);
        }
        let (ins, p1, p2) = (apdu[1], apdu[2], apdu[3]);
        match ins {
            0xA4 => self.iso_select(p1, p2, &apdu[4..]),
            0xB0 => self.iso_read(p1, p2, &apdu[4..], cursor),
            0xD6 => self.iso_update(p1, p2, &apdu[4..]),
            _ => Err(sw::ISO_INS),
        }
    }

    fn iso_select(&mut self, p1: u8, p2: u8, body: &[u8]) -> Answer {
        if p2 != 0x0C && p2 != 0x00 {
            return Err(sw::ISO_P1P2);
        }
        let lc = *body.first().ok_or(sw::ISO_LENGTH)? as usize;
        let data = body.get(1..1 + lc).ok_or(sw::ISO_LENGTH)?;
        if body.len() > 2 + lc {
            return Err(sw::ISO_LENGTH);
        }
        match p1 {
            0x04 => {
                if data == NDEF_APP {
                    self.app_selected = true;
                } else if data == PICC_DF {
                    self.app_selected = false;
                } else {
                    return Err(sw::ISO_NOT_FOUND);
                }
                self.selected_file = None;
                self.session = None;
            }
            0x00 | 0x02 => {
                let fid = u16::from_be_bytes(data.try_into().map_err(|_| sw::ISO_LENGTH)?);
                match fid {
                    0xE110 => {
                        self.app_selected = true;
                        self.selected_file = None;
                        self.session = None;
                    }
                    0x3F00 => {
                        self.app_selected = false;
                        self.selected_file = None;
                        self.session = None;
                    }
                    _ => {
                        let f = self
                            .state
                            .files
                            .iter()
                            .find(|f| f.fid == fid)
                            .ok_or(sw::ISO_NOT_FOUND)?;
                        if !self.app_selected {
                            return Err(sw::ISO_NOT_FOUND);
                        }
                        self.selected_file = Some(f.file_no);
                    }
                }
            }
            _ => return Err(sw::ISO_P1P2),
        }
        Ok(with_sw(vec![], sw::ISO_OK))
    }

    /// (file_no, offset) of an ISO binary command.
    fn iso_target(&mut self, p1: u8, p2: u8) -> Result<(u8, usize), u16> {
        if p1 & 0x80 != 0 {
            let sfi = p1 & 0x1F;
            if !self.app_selected || self.state.file(sfi).is_none() {
                return Err(sw::ISO_NOT_FOUND);
            }
            self.selected_file = Some(sfi);
            Ok((sfi, p2 as usize))
        } else {
            let f = self.selected_file.ok_or(sw::ISO_CONDITIONS)?;
            Ok((f, u16::from_be_bytes([p1, p2]) as usize))
        }
    }

    fn iso_read(&mut self, p1: u8, p2: u8, body: &[u8], cursor: Option<SdmCursor>) -> Answer {
        if body.len() != 1 {
            return Err(sw::ISO_LENGTH);
        }
        let le = if body[0] == 0 { 256 } else { body[0] as usize };
        let (file_no, offset) = self.iso_target(p1, p2)?;
        let fs = self.settings(file_no).map_err(|_| sw::ISO_NOT_FOUND)?;
        if !(fs.read == FREE || fs.read_write == FREE) {
            return Err(sw::ISO_SECURITY);
        }
        let size = fs.size as usize;
        if offset >= size {
            return Err(sw::ISO_OFFSET);
        }
        let image = self.read_image(file_no, 0xB0, cursor).map_err(|e| {
            if e == sw::PERMISSION {
                sw::ISO_SECURITY
            } else {
                e
            }
        })?;
        let end = (offset + le).min(size);
        Ok(with_sw(image[offset..end].to_vec(), sw::ISO_OK))
    }

    fn iso_update(&mut self, p1: u8, p2: u8, body: &[u8]) -> Answer {
        let lc = *body.first().ok_or(sw::ISO_LENGTH)? as usize;
        if lc == 0 || body.len() != 1 + lc {
            return Err(sw::ISO_LENGTH);
        }
        let (file_no, offset) = self.iso_target(p1, p2)?;
        let fs = self.settings(file_no).map_err(|_| sw::ISO_NOT_FOUND)?;
        if !(fs.write == FREE || fs.read_write == FREE) {
            return Err(sw::ISO_SECURITY);
        }
        let f = self.state.file_mut(file_no).ok_or(sw::ISO_NOT_FOUND)?;
        if offset + lc > f.data.len() {
            return Err(sw::ISO_CONDITIONS);
        }
        f.data[offset..offset + lc].copy_from_slice(&body[1..]);
        Ok(with_sw(vec![], sw::ISO_OK))
    }
}
