//! The native commands other than authentication (§10.5–§10.8): GetVersion, Read_Sig,
//! GetCardUID, Get/ChangeFileSettings, ChangeKey, GetKeyVersion, ReadData, WriteData,
//! SetConfiguration and, on NT4H2421Tx, GetTTStatus.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::settings::{self, FREE, NEVER};
use super::{sw, with_sw, Answer, Comm, DataCommand, Pending, SdmCursor, SimChip};
use crate::crypto::{crc32nk, ct_eq, AesKey};

impl SimChip {
    pub(super) fn get_version(&mut self, data: &[u8]) -> Answer {
        let mode = self.mac_if_auth();
        let (_, rest) = self.unwrap_command(0x60, data, 0, mode)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let mut third = if self.state.random_id {
            vec![0u8; 7]
        } else {
            self.state.uid.to_vec()
        };
        third.extend_from_slice(&self.state.batch);
        let mut all = self.state.version_hw.clone();
        all.extend_from_slice(&self.state.version_sw);
        all.extend_from_slice(&third);
        let wrapped = self.wrap_response(mode, &all, sw::OK)?;
        // Re-frame as the chip does: 7 + 7 + rest.
        let body = &wrapped[..wrapped.len() - 2];
        let mut frames: VecDeque<Vec<u8>> = VecDeque::new();
        frames.push_back(body[7..14].to_vec());
        frames.push_back(body[14..].to_vec());
        self.pending = Pending::Frames(frames);
        Ok(with_sw(body[..7].to_vec(), sw::MORE))
    }

    pub(super) fn read_sig(&mut self, data: &[u8]) -> Answer {
        let authenticated = self.session.is_some();
        let mode = if authenticated {
            Comm::Full
        } else {
            Comm::Plain
        };
        let (header, rest) = self.unwrap_command(0x3C, data, 1, mode)?;
        if header[0] != 0x00 || !rest.is_empty() {
            return Err(sw::PARAMETER);
        }
        let sig = self.state.signature.clone();
        self.wrap_response(mode, &sig, if authenticated { sw::OK } else { sw::SIG_OK })
    }

    pub(super) fn get_card_uid(&mut self, data: &[u8]) -> Answer {
        if self.session.is_none() {
            return Err(sw::AUTH);
        }
        let (_, rest) = self.unwrap_command(0x51, data, 0, Comm::Full)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let uid = self.state.uid;
        self.wrap_response(Comm::Full, &uid, sw::OK)
    }

    pub(super) fn get_file_settings(&mut self, data: &[u8]) -> Answer {
        let mode = self.mac_if_auth();
        let (header, rest) = self.unwrap_command(0xF5, data, 1, mode)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let settings = self
            .state
            .file(header[0])
            .ok_or(sw::FILE_NOT_FOUND)?
            .settings
            .clone();
        self.wrap_response(mode, &settings, sw::OK)
    }

    pub(super) fn change_file_settings(&mut self, data: &[u8]) -> Answer {
        let file_no = *data.first().ok_or(sw::LENGTH)?;
        let current = self.settings(file_no)?;
        let size = current.size;
        let mode = match current.change {
            NEVER => return Err(sw::PERMISSION),
            FREE => Comm::Plain,
            k => {
                self.require_key(k)?;
                Comm::Full
            }
        };
        let (_, plain) = self.unwrap_command(0x5F, data, 1, mode)?;
        let new = settings::decode_change(&plain, size, self.variant())?;
        if new.sdm.is_some() && file_no != 2 {
            return Err(sw::PARAMETER);
        }
        let enabling = current.sdm.is_none() && new.sdm.is_some();
        if let Some(f) = self.state.file_mut(file_no) {
            f.settings = settings::encode_get(&new);
            if enabling {
                f.sdm_read_ctr = 0;
            }
        }
        self.wrap_response(mode, &[], sw::OK)
    }

    pub(super) fn change_key(&mut self, data: &[u8]) -> Answer {
        let key_no = *data.first().ok_or(sw::LENGTH)?;
        self.require_key(0)?;
        let (_, plain) = self.unwrap_command(0xC4, data, 1, Comm::Full)?;
        if key_no > 4 {
            return Err(sw::NO_SUCH_KEY);
        }
        let own = self.session.as_ref().is_some_and(|s| s.key_no == key_no);
        if own {
            if plain.len() != 17 {
                return Err(sw::LENGTH);
            }
            self.state.keys[key_no as usize] =
                AesKey::from_slice(&plain[..16]).map_err(|_| sw::LENGTH)?;
            self.state.key_versions[key_no as usize] = plain[16];
            self.state.fail_ctr.total[key_no as usize] = 0;
            // The session ends; the answer carries no MAC.
            self.session = None;
            return Ok(with_sw(vec![], sw::OK));
        }
        if plain.len() != 21 {
            return Err(sw::LENGTH);
        }
        let old = self.state.keys[key_no as usize].as_bytes();
        let new: Zeroizing<Vec<u8>> =
            Zeroizing::new(plain[..16].iter().zip(old).map(|(a, b)| a ^ b).collect());
        if !ct_eq(&crc32nk(&new), &plain[17..21]) {
            return Err(sw::INTEGRITY);
        }
        self.state.keys[key_no as usize] = AesKey::from_slice(&new).map_err(|_| sw::LENGTH)?;
        self.state.key_versions[key_no as usize] = plain[16];
        // A changed key starts its TotFailCtr again (AN12196 §6.4): a blocked key 1..4 is
        // usable again once key 0 changes it.
        self.state.fail_ctr.total[key_no as usize] = 0;
        self.wrap_response(Comm::Full, &[], sw::OK)
    }

    pub(super) fn get_key_version(&mut self, data: &[u8]) -> Answer {
        let mode = self.mac_if_auth();
        let (header, rest) = self.unwrap_command(0x64, data, 1, mode)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let v = *self
            .state
            .key_versions
            .get(header[0] as usize)
            .ok_or(sw::NO_SUCH_KEY)?;
        self.wrap_response(mode, &[v], sw::OK)
    }

    /// The comm mode of a data access, or the error when the access is not granted.
    pub(super) fn data_access(&self, file_no: u8, write: bool) -> Result<Comm, u16> {
        let fs = self.settings(file_no)?;
        let (a, rw) = if write {
            (fs.write, fs.read_write)
        } else {
            (fs.read, fs.read_write)
        };
        if let Some(s) = &self.session {
            if a == s.key_no || rw == s.key_no {
                return Ok(Comm::from_bits(fs.comm));
            }
        }
        if a == FREE || rw == FREE {
            return Ok(Comm::Plain);
        }
        if a == NEVER && rw == NEVER {
            return Err(sw::PERMISSION);
        }
        Err(sw::AUTH)
    }

    pub(super) fn range(
        data: &[u8],
        size: usize,
        len_zero_means_rest: bool,
    ) -> Result<(u8, usize, usize), u16> {
        let file_no = data[0];
        let off = u32::from_le_bytes([data[1], data[2], data[3], 0]) as usize;
        let mut len = u32::from_le_bytes([data[4], data[5], data[6], 0]) as usize;
        if len == 0 && len_zero_means_rest {
            len = size.saturating_sub(off);
        }
        if off > size || off + len > size || (len == 0 && len_zero_means_rest) {
            return Err(sw::BOUNDARY);
        }
        Ok((file_no, off, len))
    }

    /// The shared part of ReadData and WriteData: access, secure messaging and the range.
    /// Returns the comm mode, the command's data (decrypted), and (file, offset, length).
    pub(super) fn data_command(
        &mut self,
        ins: u8,
        data: &[u8],
        write: bool,
    ) -> Result<DataCommand, u16> {
        if data.len() < 7 {
            return Err(sw::LENGTH);
        }
        let file_no = data[0];
        let mode = self.data_access(file_no, write)?;
        let (header, body) = self.unwrap_command(ins, data, 7, mode)?;
        let size = self
            .state
            .file(file_no)
            .ok_or(sw::FILE_NOT_FOUND)?
            .data
            .len();
        let range = Self::range(&header, size, !write)?;
        Ok((mode, body, range))
    }

    pub(super) fn read_data(&mut self, data: &[u8], cursor: Option<SdmCursor>) -> Answer {
        let (mode, rest, (file_no, off, len)) = self.data_command(0xAD, data, false)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let image = self.read_image(file_no, 0xAD, cursor)?;
        let slice = image[off..off + len].to_vec();
        self.wrap_response(mode, &slice, sw::OK)
    }

    pub(super) fn write_data(&mut self, data: &[u8]) -> Answer {
        let (mode, plain, (file_no, off, len)) = self.data_command(0x8D, data, true)?;
        if len == 0 || plain.len() != len {
            return Err(sw::LENGTH);
        }
        if let Some(f) = self.state.file_mut(file_no) {
            f.data[off..off + len].copy_from_slice(&plain);
        }
        self.wrap_response(mode, &[], sw::OK)
    }

    pub(super) fn set_configuration(&mut self, data: &[u8]) -> Answer {
        self.require_key(0)?;
        let (header, plain) = self.unwrap_command(0x5C, data, 1, Comm::Full)?;
        let expected = match header[0] {
            0x00 => 1,
            0x04 => 2,
            0x05 => 10,
            0x07 if self.state.tag_tamper.is_some() => 2,
            0x0A => 5,
            0x0B => 1,
            _ => return Err(sw::PARAMETER),
        };
        if plain.len() != expected {
            return Err(sw::LENGTH);
        }
        match header[0] {
            0x00 if plain[0] & 0x02 != 0 => self.state.random_id = true,
            0x05 if plain[4] & 0x02 != 0 => {
                // The switch to LRP: permanent; SDM mirroring is off until file 02 is set up
                // again under LRP (§9.3.4.2). The answer is a bare 9100 and the AES session
                // is over (AN12321 Table 3).
                self.state.lrp = true;
                if let Some(f) = self.state.file_mut(2) {
                    if let Some(b) = f.settings.get_mut(1) {
                        *b &= !0x40;
                    }
                    f.settings.truncate(7);
                }
                self.session = None;
                return Ok(with_sw(vec![], sw::OK));
            }
            0x07 => {
                // TagTamper: TTConfig bit 0 enables (permanent, measured from the next
                // activation); TTStatusKey 00..04, 0E free or 0F never.
                let key = plain[1];
                if !(key <= 4 || key == FREE || key == NEVER) {
                    return Err(sw::PARAMETER);
                }
                if let Some(t) = self.state.tag_tamper.as_mut() {
                    if plain[0] & 0x01 != 0 {
                        t.enabled = true;
                    }
                    t.status_key = key;
                }
            }
            0x0A => {
                // Failed authentication counter (Table 50): bit 0 enables with
                // TotFailCtrLimit (> 0, else PARAMETER_ERROR: the simulator's choice) and
                // TotFailCtrDecr, both LSB first; disabling ignores them.
                let c = &mut self.state.fail_ctr;
                if plain[0] & 0x01 != 0 {
                    let limit = u16::from_le_bytes([plain[1], plain[2]]);
                    if limit == 0 {
                        return Err(sw::PARAMETER);
                    }
                    c.enabled = true;
                    c.limit = limit;
                    c.decrement = u16::from_le_bytes([plain[3], plain[4]]);
                } else {
                    c.enabled = false;
                }
            }
            _ => {}
        }
        self.wrap_response(Comm::Full, &[], sw::OK)
    }

    /// GetTTStatus (INS F7, NT4H2421Tx §10.5.x): `TTPermStatus || TTCurrStatus`, after a fresh
    /// measurement. Full mode inside a session; plain without one when TTStatusKey is free.
    pub(super) fn get_tt_status(&mut self, data: &[u8]) -> Answer {
        let key = self
            .state
            .tag_tamper
            .as_ref()
            .map_or(NEVER, |t| t.status_key);
        let mode = match (&self.session, key) {
            (Some(_), _) => Comm::Full,
            (None, FREE) => Comm::Plain,
            (None, _) => return Err(sw::AUTH),
        };
        if key == NEVER {
            return Err(sw::PERMISSION);
        }
        if key <= 4 {
            self.require_key(key)?;
        }
        let (_, rest) = self.unwrap_command(0xF7, data, 0, mode)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let status = self.measure_tt();
        self.wrap_response(mode, &status, sw::OK)
    }

    /// The TagTamper status mirrored into a SUN message: this activation's reading.
    pub(super) fn tt_status(&self) -> [u8; 2] {
        match self.state.tag_tamper.as_ref() {
            Some(t) if self.tt_active => {
                let s = |open: bool| if open { b'O' } else { b'C' };
                [s(t.opened), s(t.loop_open)]
            }
            _ => [b'I', b'I'],
        }
    }
}
