//! The authenticated EV2 session (NT4H2421Gx §9.1 AES, §9.2 LRP): transaction identifier, the
//! 16-bit command counter and the wrapping of commands in CommMode.Plain, MAC and Full.
//!
//! AES and LRP differ only below the command layer: AES encrypts with CBC under an IV derived
//! from TI and CmdCtr and MACs with AES-CMAC; LRP encrypts with LRICB under its own running
//! 32-bit EncCtr (commands and responses, +1 per block) and MACs with CMAC_LRP. The MAC inputs,
//! padding and truncation are the same.
//!
//! A [`Session`] borrows its [`Card`]. Commands take the session by value and give it back only
//! when the chip answered with success and the response MAC verified; on any error the session
//! is dropped (its keys are zeroized) and the card is left for a fresh authentication, as the
//! chip itself has ended the session.

use zeroize::Zeroizing;

use super::{Card, CardError, CommMode, Malformed};
use crate::crypto::ev2::{
    command_mac_input, iv_command, iv_response, response_mac_input, SessionKeys,
};
use crate::crypto::lrp::LrpSessionKeys;
use crate::crypto::sdm::SdmMode;
use crate::crypto::{cbc_decrypt, cbc_encrypt, ct_eq, mact, pad_m2, unpad_m2};
use crate::transport::Transport;

/// What the secure messaging layer needs to know about a command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub name: &'static str,
    pub ins: u8,
    pub mode: CommMode,
    pub reply: Reply,
    /// Carries key material: traces print it redacted.
    pub sensitive: bool,
}

/// How the response of a command is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// As the command's comm mode says.
    AsCommand,
    /// A bare status word with no MAC (ChangeKey of the authenticated key: the session ends).
    BareStatus,
}

/// The session keys of either mode.
#[derive(Clone, Debug)]
pub(crate) enum SmKeys {
    Aes(SessionKeys),
    /// LRP session keys and EncCtr (big-endian), the LRICB counter of Full mode.
    Lrp(Box<LrpSessionKeys>, [u8; 4]),
}

impl SmKeys {
    fn mact(&self, msg: &[u8]) -> [u8; 8] {
        match self {
            SmKeys::Aes(k) => mact(&k.mac, msg),
            SmKeys::Lrp(k, _) => k.mac().mact(msg),
        }
    }

    /// Encrypts padded command data.
    fn encrypt(&mut self, ti: &[u8; 4], cmd_ctr: u16, data: &[u8]) -> Result<Vec<u8>, String> {
        let padded = Zeroizing::new(pad_m2(data));
        match self {
            SmKeys::Aes(k) => {
                let iv = iv_command(&k.enc, ti, cmd_ctr);
                cbc_encrypt(&k.enc, &iv, &padded).map_err(|e| e.to_string())
            }
            SmKeys::Lrp(k, ctr) => k
                .enc()
                .lricb_encrypt(&mut ctr[..], &padded)
                .map_err(|e| e.to_string()),
        }
    }

    /// Decrypts response data (padding left on).
    fn decrypt(
        &mut self,
        ti: &[u8; 4],
        ctr: u16,
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, usize> {
        match self {
            SmKeys::Aes(k) => {
                let iv = iv_response(&k.enc, ti, ctr);
                cbc_decrypt(&k.enc, &iv, body)
                    .map(Zeroizing::new)
                    .map_err(|e| e.0)
            }
            SmKeys::Lrp(k, enc_ctr) => k
                .enc()
                .lricb_decrypt(&mut enc_ctr[..], body)
                .map(Zeroizing::new)
                .map_err(|_| body.len()),
        }
    }
}

/// An authenticated EV2 session on a card (AES or LRP).
pub struct Session<'c, T: Transport> {
    pub(crate) card: &'c mut Card<T>,
    pub(crate) keys: SmKeys,
    pub(crate) ti: [u8; 4],
    pub(crate) cmd_ctr: u16,
    pub(crate) key_no: u8,
}

impl<T: Transport> std::fmt::Debug for Session<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ti", &hex::encode_upper(self.ti))
            .field("cmd_ctr", &self.cmd_ctr)
            .field("key_no", &self.key_no)
            .finish_non_exhaustive()
    }
}

impl<'c, T: Transport> Session<'c, T> {
    /// Resumes a session from its parts. Only for replaying published exchanges that start
    /// mid-session (AN12196 Tables 7, 27, 28); normal code gets a session by authenticating.
    #[doc(hidden)]
    pub fn from_parts(
        card: &'c mut Card<T>,
        keys: SessionKeys,
        ti: [u8; 4],
        cmd_ctr: u16,
        key_no: u8,
    ) -> Self {
        Session {
            card,
            keys: SmKeys::Aes(keys),
            ti,
            cmd_ctr,
            key_no,
        }
    }

    /// The chip's mode this session runs in.
    pub fn mode(&self) -> SdmMode {
        match self.keys {
            SmKeys::Aes(_) => SdmMode::Aes,
            SmKeys::Lrp(..) => SdmMode::Lrp,
        }
    }

    /// LRP's EncCtr (big-endian); zero in an AES session.
    pub fn enc_ctr(&self) -> [u8; 4] {
        match &self.keys {
            SmKeys::Aes(_) => [0; 4],
            SmKeys::Lrp(_, c) => *c,
        }
    }

    /// Transaction identifier chosen by the chip at AuthenticateEV2First.
    pub fn ti(&self) -> [u8; 4] {
        self.ti
    }

    /// Commands run since AuthenticateEV2First.
    pub fn cmd_ctr(&self) -> u16 {
        self.cmd_ctr
    }

    /// The key this session authenticated with.
    pub fn key_no(&self) -> u8 {
        self.key_no
    }

    /// The card this session borrows.
    pub fn card(&mut self) -> &mut Card<T> {
        self.card
    }

    /// Gives the card back (ends the session on the host side).
    pub fn end(self) -> &'c mut Card<T> {
        self.card
    }

    /// Runs one native command under secure messaging and returns its (decrypted, verified)
    /// response data. `header` is sent in plain and MACed; `data` is encrypted in Full mode.
    pub(crate) fn exchange(
        &mut self,
        spec: Spec,
        header: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let Spec {
            name,
            ins,
            mode,
            reply,
            sensitive,
        } = spec;
        if self.cmd_ctr == u16::MAX {
            return Err(CardError::CounterExhausted);
        }
        let mut payload = Vec::with_capacity(header.len() + data.len() + 24);
        payload.extend_from_slice(header);
        match mode {
            CommMode::Plain => payload.extend_from_slice(data),
            CommMode::Mac | CommMode::Full => {
                let body = if mode == CommMode::Full && !data.is_empty() {
                    self.keys
                        .encrypt(&self.ti, self.cmd_ctr, data)
                        .map_err(CardError::InvalidArgument)?
                } else {
                    data.to_vec()
                };
                let mac = self.keys.mact(&command_mac_input(
                    ins,
                    self.cmd_ctr,
                    &self.ti,
                    header,
                    &body,
                ));
                payload.extend_from_slice(&body);
                payload.extend_from_slice(&mac);
            }
        }
        let (frames, sw) = self.card.native_frames(name, ins, &payload, sensitive)?;
        let resp = frames.concat();
        let ctr = self.cmd_ctr.wrapping_add(1);
        self.cmd_ctr = ctr;
        if reply == Reply::BareStatus || mode == CommMode::Plain {
            if reply == Reply::BareStatus && !resp.is_empty() {
                return Err(CardError::Malformed {
                    command: name,
                    problem: Malformed::Trailing(resp.len()),
                });
            }
            return Ok(resp);
        }
        if resp.len() < 8 {
            return Err(CardError::Malformed {
                command: name,
                problem: Malformed::TooShort {
                    expected: 8,
                    got: resp.len(),
                },
            });
        }
        let (body, mac) = resp.split_at(resp.len() - 8);
        let expect = self
            .keys
            .mact(&response_mac_input(sw.sw2(), ctr, &self.ti, body));
        if !ct_eq(&expect, mac) {
            return Err(CardError::ResponseMac { command: name });
        }
        if mode == CommMode::Mac || body.is_empty() {
            return Ok(body.to_vec());
        }
        if !body.len().is_multiple_of(16) {
            return Err(CardError::Malformed {
                command: name,
                problem: Malformed::NotBlockAligned(body.len()),
            });
        }
        let plain = self
            .keys
            .decrypt(&self.ti, ctr, body)
            .map_err(|n| CardError::Malformed {
                command: name,
                problem: Malformed::NotBlockAligned(n),
            })?;
        let unpadded = unpad_m2(&plain).ok_or(CardError::Malformed {
            command: name,
            problem: Malformed::Padding,
        })?;
        Ok(unpadded.to_vec())
    }

    /// Runs a command by value: the session comes back only on success.
    pub(crate) fn run(
        mut self,
        name: &'static str,
        ins: u8,
        header: &[u8],
        data: &[u8],
        mode: CommMode,
        sensitive: bool,
    ) -> Result<(Self, Vec<u8>), CardError> {
        let r = self.exchange(
            Spec {
                name,
                ins,
                mode,
                reply: Reply::AsCommand,
                sensitive,
            },
            header,
            data,
        )?;
        Ok((self, r))
    }
}
