//! Secure messaging from the chip's side (§9.1.8–9.1.10 AES, §9.2.1–9.2.10 LRP): checking and
//! stripping a command's MAC and encryption, protecting the answer, counting commands.
//!
//! MAC inputs are the same in both modes (`Cmd || CmdCtr || TI || Header || Data` in,
//! `RC || CmdCtr+1 || TI || Data` out). AES encrypts with CBC under IVs from TI and CmdCtr;
//! LRP with LRICB under its running EncCtr, +1 per block, commands and answers alike.

use zeroize::Zeroizing;

use super::{sw, Answer, ChipKeys, Comm, SimChip};
use crate::crypto::ev2::{command_mac_input, iv_command, iv_response, response_mac_input};
use crate::crypto::{cbc_decrypt, cbc_encrypt, ct_eq, mact, pad_m2, unpad_m2};

impl ChipKeys {
    fn mact(&self, msg: &[u8]) -> [u8; 8] {
        match self {
            ChipKeys::Aes(k) => mact(&k.mac, msg),
            ChipKeys::Lrp(k, _) => k.mac().mact(msg),
        }
    }
}

impl SimChip {
    /// Checks and strips secure messaging from a command; returns (header, plain data).
    pub(super) fn unwrap_command(
        &mut self,
        ins: u8,
        data: &[u8],
        header_len: usize,
        mode: Comm,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), u16> {
        if data.len() < header_len {
            return Err(sw::LENGTH);
        }
        let (header, rest) = data.split_at(header_len);
        let Some(s) = self.session.as_mut().filter(|_| mode != Comm::Plain) else {
            return Ok((header.to_vec(), Zeroizing::new(rest.to_vec())));
        };
        if s.cmd_ctr == u16::MAX {
            return Err(sw::PERMISSION);
        }
        if rest.len() < 8 {
            return Err(sw::LENGTH);
        }
        let (body, mac) = rest.split_at(rest.len() - 8);
        let expect = s
            .keys
            .mact(&command_mac_input(ins, s.cmd_ctr, &s.ti, header, body));
        if !ct_eq(&expect, mac) {
            return Err(sw::INTEGRITY);
        }
        if mode == Comm::Mac || body.is_empty() {
            return Ok((header.to_vec(), Zeroizing::new(body.to_vec())));
        }
        if !body.len().is_multiple_of(16) {
            return Err(sw::LENGTH);
        }
        let plain = Zeroizing::new(match &mut s.keys {
            ChipKeys::Aes(k) => {
                let iv = iv_command(&k.enc, &s.ti, s.cmd_ctr);
                cbc_decrypt(&k.enc, &iv, body).map_err(|_| sw::LENGTH)?
            }
            ChipKeys::Lrp(k, enc_ctr) => k
                .enc()
                .lricb_decrypt(&mut enc_ctr[..], body)
                .map_err(|_| sw::LENGTH)?,
        });
        let unpadded = unpad_m2(&plain).ok_or(sw::INTEGRITY)?;
        Ok((header.to_vec(), Zeroizing::new(unpadded.to_vec())))
    }

    /// Wraps a successful answer: counts the command and adds MAC/encryption as `mode` says.
    pub(super) fn wrap_response(&mut self, mode: Comm, data: &[u8], status: u16) -> Answer {
        let Some(s) = self.session.as_mut() else {
            return self.framed(data.to_vec(), status);
        };
        s.cmd_ctr = s.cmd_ctr.wrapping_add(1);
        let ctr = s.cmd_ctr;
        let out = match mode {
            Comm::Plain => data.to_vec(),
            Comm::Mac | Comm::Full => {
                let mut body = if mode == Comm::Full && !data.is_empty() {
                    let padded = Zeroizing::new(pad_m2(data));
                    match &mut s.keys {
                        ChipKeys::Aes(k) => {
                            let iv = iv_response(&k.enc, &s.ti, ctr);
                            cbc_encrypt(&k.enc, &iv, &padded).map_err(|_| sw::LENGTH)?
                        }
                        ChipKeys::Lrp(k, enc_ctr) => k
                            .enc()
                            .lricb_encrypt(&mut enc_ctr[..], &padded)
                            .map_err(|_| sw::LENGTH)?,
                    }
                } else {
                    data.to_vec()
                };
                let mac = s
                    .keys
                    .mact(&response_mac_input(status as u8, ctr, &s.ti, &body));
                body.extend_from_slice(&mac);
                body
            }
        };
        self.framed(out, status)
    }

    /// The comm mode of a command that is MACed when a session is open.
    pub(super) fn mac_if_auth(&self) -> Comm {
        if self.session.is_some() {
            Comm::Mac
        } else {
            Comm::Plain
        }
    }

    pub(super) fn require_key(&self, key_no: u8) -> Result<(), u16> {
        match &self.session {
            Some(s) if s.key_no == key_no => Ok(()),
            _ => Err(sw::AUTH),
        }
    }
}
