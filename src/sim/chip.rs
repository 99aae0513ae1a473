//! The simulated chip: one APDU in, one response out, with the status word the NTAG 424 DNA
//! gives. Never panics; every malformed command gets the chip's error.
//!
//! Shares only crypto primitives with the host side (`crate::crypto`); the APDU parsing,
//! secure messaging checks and state machine below are written from the chip's point of view.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::state::ChipState;
use crate::card::file_settings::{Access, FileSettings};
use crate::card::{CommMode, RandomSource};
use crate::crypto::ev2::{
    command_mac_input, derive_session_keys, iv_command, iv_response, response_mac_input,
    SessionKeys,
};
use crate::crypto::{
    cbc_decrypt, cbc_encrypt, crc32nk, ct_eq, mact, pad_m2, rotl1, sdm, unpad_m2, AesKey,
};

/// Status words the chip answers with.
mod sw {
    pub const OK: u16 = 0x9100;
    pub const MORE: u16 = 0x91AF;
    pub const SIG_OK: u16 = 0x9190;
    pub const ILLEGAL_COMMAND: u16 = 0x911C;
    pub const INTEGRITY: u16 = 0x911E;
    pub const NO_SUCH_KEY: u16 = 0x9140;
    pub const LENGTH: u16 = 0x917E;
    pub const PERMISSION: u16 = 0x919D;
    pub const PARAMETER: u16 = 0x919E;
    pub const AUTH_DELAY: u16 = 0x91AD;
    pub const AUTH: u16 = 0x91AE;
    pub const BOUNDARY: u16 = 0x91BE;
    pub const ABORTED: u16 = 0x91CA;
    pub const FILE_NOT_FOUND: u16 = 0x91F0;
    pub const ISO_OK: u16 = 0x9000;
    pub const ISO_LENGTH: u16 = 0x6700;
    pub const ISO_SECURITY: u16 = 0x6982;
    pub const ISO_CONDITIONS: u16 = 0x6985;
    pub const ISO_NOT_FOUND: u16 = 0x6A82;
    pub const ISO_P1P2: u16 = 0x6A86;
    pub const ISO_OFFSET: u16 = 0x6B00;
    pub const ISO_INS: u16 = 0x6D00;
    pub const ISO_CLA: u16 = 0x6E00;
}

/// Failed authentications after which the chip imposes a delay (answers 91AD once).
pub const DELAY_THRESHOLD: u32 = 3;
/// Largest response data per frame; longer answers are chained with 91AF.
const FRAME: usize = 256;

const NDEF_APP: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];
const PICC_DF: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x00];

struct SimSession {
    keys: SessionKeys,
    ti: [u8; 4],
    cmd_ctr: u16,
    key_no: u8,
}

enum Pending {
    None,
    Auth {
        key_no: u8,
        rnd_b: Zeroizing<[u8; 16]>,
        first: bool,
        pcd_cap2: [u8; 6],
    },
    Frames(VecDeque<Vec<u8>>),
}

/// The mirrored image of an SDM file, kept while one read continues over several APDUs.
struct SdmCursor {
    file_no: u8,
    ins: u8,
    image: Vec<u8>,
}

type Answer = Result<Vec<u8>, u16>;

/// A data command after its checks: comm mode, decrypted data, (file, offset, length).
type DataCommand = (CommMode, Zeroizing<Vec<u8>>, (u8, usize, usize));

fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

/// A simulated NTAG 424 DNA.
pub struct SimChip {
    pub state: ChipState,
    rng: Box<dyn RandomSource>,
    app_selected: bool,
    selected_file: Option<u8>,
    session: Option<SimSession>,
    pending: Pending,
    sdm_cursor: Option<SdmCursor>,
    delay_served: bool,
    /// APDUs processed since creation.
    pub apdus: u64,
}

impl std::fmt::Debug for SimChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimChip")
            .field("uid", &hex::encode_upper(self.state.uid))
            .finish_non_exhaustive()
    }
}

impl SimChip {
    pub fn new(state: ChipState) -> Self {
        Self::with_rng(state, crate::card::OsRandom)
    }

    /// A chip whose randoms (RndB, TI, PICCData padding) come from `rng` (fixture replay).
    pub fn with_rng(state: ChipState, rng: impl RandomSource + 'static) -> Self {
        SimChip {
            state,
            rng: Box::new(rng),
            app_selected: false,
            selected_file: None,
            session: None,
            pending: Pending::None,
            sdm_cursor: None,
            delay_served: false,
            apdus: 0,
        }
    }

    /// Leaves and re-enters the field: everything volatile is lost, as on the real chip.
    pub fn power_cycle(&mut self) {
        self.app_selected = false;
        self.selected_file = None;
        self.session = None;
        self.pending = Pending::None;
        self.sdm_cursor = None;
        self.delay_served = false;
    }

    /// True while an authenticated session is open.
    pub fn authenticated(&self) -> bool {
        self.session.is_some()
    }

    /// Selects the NDEF application (fixtures that start after the selection).
    #[doc(hidden)]
    pub fn select_application(&mut self) {
        self.app_selected = true;
    }

    /// Puts the chip inside a session (fixtures published mid-session).
    #[doc(hidden)]
    pub fn set_session(&mut self, keys: SessionKeys, ti: [u8; 4], cmd_ctr: u16, key_no: u8) {
        self.app_selected = true;
        self.session = Some(SimSession {
            keys,
            ti,
            cmd_ctr,
            key_no,
        });
    }

    /// Processes one command APDU and returns the response APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.apdus += 1;
        let cursor = self.sdm_cursor.take();
        let result = match apdu.first() {
            None => Err(sw::ISO_LENGTH),
            Some(0x00) => self.iso(apdu, cursor),
            Some(0x90) => self.native(apdu, cursor),
            Some(_) => Err(sw::ISO_CLA),
        };
        match result {
            Ok(r) => r,
            Err(code) => {
                if code >> 8 == 0x91 {
                    // Any native error ends the authenticated state (§9.1.10).
                    self.session = None;
                }
                self.pending = Pending::None;
                code.to_be_bytes().to_vec()
            }
        }
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill(&mut b);
        b
    }

    // ---- ISO commands -------------------------------------------------------------------

    fn iso(&mut self, apdu: &[u8], cursor: Option<SdmCursor>) -> Answer {
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
        let f = self.state.file(file_no).ok_or(sw::ISO_NOT_FOUND)?;
        let fs = f.settings();
        if !(fs.access.read == Access::Free || fs.access.read_write == Access::Free) {
            return Err(sw::ISO_SECURITY);
        }
        let size = f.data.len();
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
        let f = self.state.file_mut(file_no).ok_or(sw::ISO_NOT_FOUND)?;
        let fs = f.settings();
        if !(fs.access.write == Access::Free || fs.access.read_write == Access::Free) {
            return Err(sw::ISO_SECURITY);
        }
        if offset + lc > f.data.len() {
            return Err(sw::ISO_CONDITIONS);
        }
        f.data[offset..offset + lc].copy_from_slice(&body[1..]);
        Ok(with_sw(vec![], sw::ISO_OK))
    }

    /// File content as an unauthenticated reader sees it: with SDM on, the mirrored image
    /// (counter moved on the first read of a sequence, reused while the sequence continues).
    fn read_image(
        &mut self,
        file_no: u8,
        ins: u8,
        cursor: Option<SdmCursor>,
    ) -> Result<Vec<u8>, u16> {
        let uid = self.state.uid;
        let f = self.state.file(file_no).ok_or(sw::FILE_NOT_FOUND)?;
        let fs = f.settings();
        let Some(sdm_settings) = fs.sdm.filter(|_| self.session.is_none()) else {
            return Ok(f.data.clone());
        };
        if let Some(c) = cursor.filter(|c| c.file_no == file_no && c.ins == ins) {
            let image = c.image.clone();
            self.sdm_cursor = Some(c);
            return Ok(image);
        }
        if sdm_settings.read_ctr_mirror || sdm_settings.read_ctr_limit.is_some() {
            if let Some(limit) = sdm_settings.read_ctr_limit {
                if f.sdm_read_ctr >= limit {
                    return Err(sw::PERMISSION);
                }
            }
            if f.sdm_read_ctr >= 0xFF_FFFF {
                return Err(sw::PERMISSION);
            }
        }
        let ctr = f.sdm_read_ctr + 1;
        let mut image = f.data.clone();
        let key = |a: Option<Access>| {
            a.and_then(Access::key)
                .map(|k| self.state.keys[k as usize].clone())
        };
        let meta_key = key(sdm_settings.meta_read);
        let file_key = key(sdm_settings.file_read);
        let uid_m = sdm_settings.uid_mirror.then_some(&uid);
        let ctr_m = sdm_settings.read_ctr_mirror.then_some(ctr);
        let put = |image: &mut Vec<u8>, off: u32, text: &[u8]| {
            let o = off as usize;
            if let Some(dst) = image.get_mut(o..o + text.len()) {
                dst.copy_from_slice(text);
            }
        };
        if let Some(o) = sdm_settings.uid_offset {
            put(&mut image, o, hex::encode_upper(uid).as_bytes());
        }
        if let Some(o) = sdm_settings.read_ctr_offset {
            put(&mut image, o, format!("{ctr:06X}").as_bytes());
        }
        if let (Some(o), Some(k)) = (sdm_settings.picc_data_offset, meta_key.as_ref()) {
            let r = self.random::<16>();
            let enc = sdm::encrypt_picc_data(k, uid_m, ctr_m, &r);
            put(&mut image, o, hex::encode_upper(enc).as_bytes());
        }
        if let (Some((o, l)), Some(k)) = (sdm_settings.enc_file_data, file_key.as_ref()) {
            let start = o as usize;
            let plain = image
                .get(start..start + l as usize / 2)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let enc = sdm::encrypt_file_data(k, &uid, ctr, &plain).map_err(|_| sw::PARAMETER)?;
            put(&mut image, o, hex::encode_upper(enc).as_bytes());
        }
        if let (Some(mi), Some(mo), Some(k)) = (
            sdm_settings.mac_input_offset,
            sdm_settings.mac_offset,
            file_key.as_ref(),
        ) {
            let input = image
                .get(mi as usize..mo as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mac = sdm::sdm_mac(k, uid_m, ctr_m, &input);
            put(&mut image, mo, hex::encode_upper(mac).as_bytes());
        }
        if let Some(f) = self.state.file_mut(file_no) {
            f.sdm_read_ctr = ctr;
        }
        self.sdm_cursor = Some(SdmCursor {
            file_no,
            ins,
            image: image.clone(),
        });
        Ok(image)
    }

    // ---- native commands ----------------------------------------------------------------

    fn native(&mut self, apdu: &[u8], cursor: Option<SdmCursor>) -> Answer {
        if apdu.len() < 5 {
            return Err(sw::LENGTH);
        }
        let (ins, p1, p2) = (apdu[1], apdu[2], apdu[3]);
        let data: &[u8] = if apdu.len() == 5 {
            &[]
        } else {
            let lc = apdu[4] as usize;
            if apdu.len() != 6 + lc || apdu[5 + lc] != 0x00 || lc == 0 {
                return Err(sw::LENGTH);
            }
            &apdu[5..5 + lc]
        };
        if apdu.len() == 5 && apdu[4] != 0x00 {
            return Err(sw::LENGTH);
        }
        if p1 != 0 || p2 != 0 {
            return Err(sw::PARAMETER);
        }
        if ins == 0xAF {
            return self.additional_frame(data);
        }
        if !matches!(
            std::mem::replace(&mut self.pending, Pending::None),
            Pending::None
        ) {
            return Err(sw::ABORTED);
        }
        match ins {
            0x60 => self.get_version(data),
            0x3C => self.read_sig(data),
            0x71 => self.auth_part1(data, true),
            0x77 => self.auth_part1(data, false),
            _ if !self.app_selected => Err(sw::PERMISSION),
            0x51 => self.get_card_uid(data),
            0xF5 => self.get_file_settings(data),
            0x5F => self.change_file_settings(data),
            0xC4 => self.change_key(data),
            0x64 => self.get_key_version(data),
            0xAD => self.read_data(data, cursor),
            0x8D => self.write_data(data),
            0x5C => self.set_configuration(data),
            _ => Err(sw::ILLEGAL_COMMAND),
        }
    }

    fn additional_frame(&mut self, data: &[u8]) -> Answer {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => Err(sw::ILLEGAL_COMMAND),
            Pending::Frames(mut frames) => {
                if !data.is_empty() {
                    return Err(sw::LENGTH);
                }
                let frame = frames.pop_front().unwrap_or_default();
                if frames.is_empty() {
                    Ok(with_sw(frame, sw::OK))
                } else {
                    self.pending = Pending::Frames(frames);
                    Ok(with_sw(frame, sw::MORE))
                }
            }
            Pending::Auth {
                key_no,
                rnd_b,
                first,
                pcd_cap2,
            } => self.auth_part2(data, key_no, &rnd_b, first, pcd_cap2),
        }
    }

    /// Splits an answer into frames of at most [`FRAME`] bytes (91AF between them).
    fn framed(&mut self, data: Vec<u8>, last_sw: u16) -> Answer {
        if data.len() <= FRAME {
            return Ok(with_sw(data, last_sw));
        }
        let mut frames: VecDeque<Vec<u8>> = data.chunks(FRAME).map(<[u8]>::to_vec).collect();
        let first = frames.pop_front().unwrap_or_default();
        self.pending = Pending::Frames(frames);
        Ok(with_sw(first, sw::MORE))
    }

    fn auth_part1(&mut self, data: &[u8], first: bool) -> Answer {
        let key_no = *data.first().ok_or(sw::LENGTH)?;
        let mut pcd_cap2 = [0u8; 6];
        if first {
            let len_cap = *data.get(1).ok_or(sw::LENGTH)? as usize;
            if data.len() != 2 + len_cap || len_cap > 6 {
                return Err(sw::LENGTH);
            }
            pcd_cap2[..len_cap].copy_from_slice(&data[2..]);
            // PCDcap2.1 bit 1 asks for LRP: this chip is in AES mode (LRP is not simulated).
            if pcd_cap2[0] & 0x02 != 0 {
                return Err(sw::PERMISSION);
            }
        } else {
            if data.len() != 1 {
                return Err(sw::LENGTH);
            }
            if self.session.is_none() {
                return Err(sw::PERMISSION);
            }
        }
        if !self.app_selected {
            return Err(sw::PERMISSION);
        }
        if key_no > 4 {
            return Err(sw::NO_SUCH_KEY);
        }
        if self.state.failed_auths >= DELAY_THRESHOLD && !self.delay_served {
            self.delay_served = true;
            self.session = None;
            return Err(sw::AUTH_DELAY);
        }
        if first {
            self.session = None;
        }
        let rnd_b = Zeroizing::new(self.random::<16>());
        let key = self.state.keys[key_no as usize].clone();
        let enc = cbc_encrypt(&key, &[0; 16], &rnd_b[..]).map_err(|_| sw::PARAMETER)?;
        self.pending = Pending::Auth {
            key_no,
            rnd_b,
            first,
            pcd_cap2,
        };
        Ok(with_sw(enc, sw::MORE))
    }

    fn auth_part2(
        &mut self,
        data: &[u8],
        key_no: u8,
        rnd_b: &[u8; 16],
        first: bool,
        pcd_cap2: [u8; 6],
    ) -> Answer {
        if data.len() != 32 {
            self.session = None;
            return Err(sw::LENGTH);
        }
        let key = self.state.keys[key_no as usize].clone();
        let plain = Zeroizing::new(cbc_decrypt(&key, &[0; 16], data).map_err(|_| sw::LENGTH)?);
        if !ct_eq(&plain[16..], &rotl1(rnd_b)) {
            self.state.failed_auths = self.state.failed_auths.saturating_add(1);
            self.delay_served = false;
            self.session = None;
            return Err(sw::AUTH);
        }
        self.state.failed_auths = 0;
        let rnd_a: [u8; 16] = plain[..16].try_into().map_err(|_| sw::LENGTH)?;
        let rnd_a = Zeroizing::new(rnd_a);
        let keys = derive_session_keys(&key, &rnd_a, rnd_b);
        if first {
            let ti = self.random::<4>();
            let mut resp = Zeroizing::new(Vec::with_capacity(32));
            resp.extend_from_slice(&ti);
            resp.extend_from_slice(&rotl1(&rnd_a));
            resp.extend_from_slice(&[0u8; 6]);
            resp.extend_from_slice(&pcd_cap2);
            let enc = cbc_encrypt(&key, &[0; 16], &resp).map_err(|_| sw::LENGTH)?;
            self.session = Some(SimSession {
                keys,
                ti,
                cmd_ctr: 0,
                key_no,
            });
            Ok(with_sw(enc, sw::OK))
        } else {
            let enc = cbc_encrypt(&key, &[0; 16], &rotl1(&rnd_a)).map_err(|_| sw::LENGTH)?;
            let s = self.session.as_mut().ok_or(sw::PERMISSION)?;
            s.keys = keys;
            s.key_no = key_no;
            Ok(with_sw(enc, sw::OK))
        }
    }

    /// Checks and strips secure messaging from a command; returns (header, plain data).
    fn unwrap_command(
        &mut self,
        ins: u8,
        data: &[u8],
        header_len: usize,
        mode: CommMode,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), u16> {
        if data.len() < header_len {
            return Err(sw::LENGTH);
        }
        let (header, rest) = data.split_at(header_len);
        let Some(s) = self.session.as_ref().filter(|_| mode != CommMode::Plain) else {
            return Ok((header.to_vec(), Zeroizing::new(rest.to_vec())));
        };
        if s.cmd_ctr == u16::MAX {
            return Err(sw::PERMISSION);
        }
        if rest.len() < 8 {
            return Err(sw::LENGTH);
        }
        let (body, mac) = rest.split_at(rest.len() - 8);
        let expect = mact(
            &s.keys.mac,
            &command_mac_input(ins, s.cmd_ctr, &s.ti, header, body),
        );
        if !ct_eq(&expect, mac) {
            return Err(sw::INTEGRITY);
        }
        if mode == CommMode::Mac || body.is_empty() {
            return Ok((header.to_vec(), Zeroizing::new(body.to_vec())));
        }
        if !body.len().is_multiple_of(16) {
            return Err(sw::LENGTH);
        }
        let iv = iv_command(&s.keys.enc, &s.ti, s.cmd_ctr);
        let plain = Zeroizing::new(cbc_decrypt(&s.keys.enc, &iv, body).map_err(|_| sw::LENGTH)?);
        let unpadded = unpad_m2(&plain).ok_or(sw::INTEGRITY)?;
        Ok((header.to_vec(), Zeroizing::new(unpadded.to_vec())))
    }

    /// Wraps a successful answer: counts the command and adds MAC/encryption as `mode` says.
    fn wrap_response(&mut self, mode: CommMode, data: &[u8], status: u16) -> Answer {
        let Some(s) = self.session.as_mut() else {
            return self.framed(data.to_vec(), status);
        };
        s.cmd_ctr = s.cmd_ctr.wrapping_add(1);
        let ctr = s.cmd_ctr;
        let out = match mode {
            CommMode::Plain => data.to_vec(),
            CommMode::Mac | CommMode::Full => {
                let mut body = if mode == CommMode::Full && !data.is_empty() {
                    let iv = iv_response(&s.keys.enc, &s.ti, ctr);
                    cbc_encrypt(&s.keys.enc, &iv, &pad_m2(data)).map_err(|_| sw::LENGTH)?
                } else {
                    data.to_vec()
                };
                let mac = mact(
                    &s.keys.mac,
                    &response_mac_input(status as u8, ctr, &s.ti, &body),
                );
                body.extend_from_slice(&mac);
                body
            }
        };
        self.framed(out, status)
    }

    /// The comm mode of a command that is MACed when a session is open.
    fn mac_if_auth(&self) -> CommMode {
        if self.session.is_some() {
            CommMode::Mac
        } else {
            CommMode::Plain
        }
    }

    fn require_key(&self, key_no: u8) -> Result<(), u16> {
        match &self.session {
            Some(s) if s.key_no == key_no => Ok(()),
            _ => Err(sw::AUTH),
        }
    }

    fn get_version(&mut self, data: &[u8]) -> Answer {
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

    fn read_sig(&mut self, data: &[u8]) -> Answer {
        let authenticated = self.session.is_some();
        let mode = if authenticated {
            CommMode::Full
        } else {
            CommMode::Plain
        };
        let (header, rest) = self.unwrap_command(0x3C, data, 1, mode)?;
        if header[0] != 0x00 || !rest.is_empty() {
            return Err(sw::PARAMETER);
        }
        let sig = self.state.signature.clone();
        self.wrap_response(mode, &sig, if authenticated { sw::OK } else { sw::SIG_OK })
    }

    fn get_card_uid(&mut self, data: &[u8]) -> Answer {
        if self.session.is_none() {
            return Err(sw::AUTH);
        }
        let (_, rest) = self.unwrap_command(0x51, data, 0, CommMode::Full)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let uid = self.state.uid;
        self.wrap_response(CommMode::Full, &uid, sw::OK)
    }

    fn get_file_settings(&mut self, data: &[u8]) -> Answer {
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

    fn change_file_settings(&mut self, data: &[u8]) -> Answer {
        let file_no = *data.first().ok_or(sw::LENGTH)?;
        let f = self.state.file(file_no).ok_or(sw::FILE_NOT_FOUND)?;
        let current = f.settings();
        let size = f.data.len() as u32;
        let mode = match current.access.change {
            Access::Never => return Err(sw::PERMISSION),
            Access::Free => CommMode::Plain,
            Access::Key(k) => {
                self.require_key(k)?;
                CommMode::Full
            }
        };
        let (_, plain) = self.unwrap_command(0x5F, data, 1, mode)?;
        if plain.len() < 3 {
            return Err(sw::LENGTH);
        }
        let mut layout = vec![0x00, plain[0], plain[1], plain[2]];
        layout.extend_from_slice(&crate::card::u24_le(size));
        layout.extend_from_slice(&plain[3..]);
        let new = FileSettings::parse(&layout).map_err(|e| match e {
            crate::card::Malformed::Field(_) => sw::PARAMETER,
            _ => sw::LENGTH,
        })?;
        if new.sdm.is_some() && file_no != 2 {
            return Err(sw::PARAMETER);
        }
        new.validate().map_err(|_| sw::PARAMETER)?;
        let enabling = current.sdm.is_none() && new.sdm.is_some();
        if let Some(f) = self.state.file_mut(file_no) {
            f.set_settings(&new);
            if enabling {
                f.sdm_read_ctr = 0;
            }
        }
        self.wrap_response(mode, &[], sw::OK)
    }

    fn change_key(&mut self, data: &[u8]) -> Answer {
        let key_no = *data.first().ok_or(sw::LENGTH)?;
        self.require_key(0)?;
        let (_, plain) = self.unwrap_command(0xC4, data, 1, CommMode::Full)?;
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
        self.wrap_response(CommMode::Full, &[], sw::OK)
    }

    fn get_key_version(&mut self, data: &[u8]) -> Answer {
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
    fn data_access(&self, file_no: u8, write: bool) -> Result<CommMode, u16> {
        let f = self.state.file(file_no).ok_or(sw::FILE_NOT_FOUND)?;
        let fs = f.settings();
        let (a, rw) = if write {
            (fs.access.write, fs.access.read_write)
        } else {
            (fs.access.read, fs.access.read_write)
        };
        if let Some(s) = &self.session {
            if a == Access::Key(s.key_no) || rw == Access::Key(s.key_no) {
                return Ok(fs.comm_mode);
            }
        }
        if a == Access::Free || rw == Access::Free {
            return Ok(CommMode::Plain);
        }
        if a == Access::Never && rw == Access::Never {
            return Err(sw::PERMISSION);
        }
        Err(sw::AUTH)
    }

    fn range(
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
    fn data_command(&mut self, ins: u8, data: &[u8], write: bool) -> Result<DataCommand, u16> {
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

    fn read_data(&mut self, data: &[u8], cursor: Option<SdmCursor>) -> Answer {
        let (mode, rest, (file_no, off, len)) = self.data_command(0xAD, data, false)?;
        if !rest.is_empty() {
            return Err(sw::LENGTH);
        }
        let image = self.read_image(file_no, 0xAD, cursor)?;
        let slice = image[off..off + len].to_vec();
        self.wrap_response(mode, &slice, sw::OK)
    }

    fn write_data(&mut self, data: &[u8]) -> Answer {
        let (mode, plain, (file_no, off, len)) = self.data_command(0x8D, data, true)?;
        if len == 0 || plain.len() != len {
            return Err(sw::LENGTH);
        }
        if let Some(f) = self.state.file_mut(file_no) {
            f.data[off..off + len].copy_from_slice(&plain);
        }
        self.wrap_response(mode, &[], sw::OK)
    }

    fn set_configuration(&mut self, data: &[u8]) -> Answer {
        self.require_key(0)?;
        let (header, plain) = self.unwrap_command(0x5C, data, 1, CommMode::Full)?;
        let expected = match header[0] {
            0x00 => 1,
            0x04 => 2,
            0x05 => 10,
            0x0A => 5,
            0x0B => 1,
            _ => return Err(sw::PARAMETER),
        };
        if plain.len() != expected {
            return Err(sw::LENGTH);
        }
        if header[0] == 0x05 && plain.get(4).is_some_and(|b| b & 0x02 != 0) {
            // Switching to LRP is permanent on the real chip; it is not simulated.
            return Err(sw::PERMISSION);
        }
        if header[0] == 0x00 && plain[0] & 0x02 != 0 {
            self.state.random_id = true;
        }
        self.wrap_response(CommMode::Full, &[], sw::OK)
    }
}
