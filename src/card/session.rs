//! The authenticated EV2 session (NT4H2421Gx §9.1): transaction identifier, the 16-bit command
//! counter and the wrapping of commands in CommMode.Plain, MAC and Full.
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

/// An authenticated EV2 session on a card.
pub struct Session<'c, T: Transport> {
    pub(crate) card: &'c mut Card<T>,
    pub(crate) keys: SessionKeys,
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
            keys,
            ti,
            cmd_ctr,
            key_no,
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
                    let iv = iv_command(&self.keys.enc, &self.ti, self.cmd_ctr);
                    let padded = Zeroizing::new(pad_m2(data));
                    cbc_encrypt(&self.keys.enc, &iv, &padded)
                        .map_err(|e| CardError::InvalidArgument(e.to_string()))?
                } else {
                    data.to_vec()
                };
                let mac = mact(
                    &self.keys.mac,
                    &command_mac_input(ins, self.cmd_ctr, &self.ti, header, &body),
                );
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
        let expect = mact(
            &self.keys.mac,
            &response_mac_input(sw.sw2(), ctr, &self.ti, body),
        );
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
        let iv = iv_response(&self.keys.enc, &self.ti, ctr);
        let plain = Zeroizing::new(cbc_decrypt(&self.keys.enc, &iv, body).map_err(|e| {
            CardError::Malformed {
                command: name,
                problem: Malformed::NotBlockAligned(e.0),
            }
        })?);
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
