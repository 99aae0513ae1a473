//! The NTAG 424 DNA command layer: APDU framing, status words, the EV2 session and one file per
//! chip command (`cmd/`).
//!
//! [`Card`] speaks to an unauthenticated chip through any [`Transport`]. Authenticating borrows
//! it as a [`Session`]; every command on a session consumes the session and hands it back only
//! on success, so after a chip error or a response MAC that does not verify the compiler leaves
//! no session to misuse (the chip has ended it too).

pub mod cmd;
pub mod file_settings;
pub mod session;
pub mod status;
pub mod trace;

use std::fmt;

pub use session::Session;
pub use status::Sw;

use crate::transport::{Transport, TransportError};

/// Secure messaging mode of a command (NT4H2421Gx §9.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum CommMode {
    /// No protection.
    Plain,
    /// Command and response carry an 8-byte MAC.
    Mac,
    /// Data encrypted and MACed.
    Full,
}

impl CommMode {
    /// The two-bit encoding used in file settings (`00` Plain, `01` MAC, `11` Full).
    pub fn bits(self) -> u8 {
        match self {
            CommMode::Plain => 0b00,
            CommMode::Mac => 0b01,
            CommMode::Full => 0b11,
        }
    }

    /// Decodes the two low bits of a file-settings byte; the unused `10` reads as Plain.
    pub fn from_bits(b: u8) -> CommMode {
        match b & 0b11 {
            0b01 => CommMode::Mac,
            0b11 => CommMode::Full,
            _ => CommMode::Plain,
        }
    }
}

impl fmt::Display for CommMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommMode::Plain => "Plain",
            CommMode::Mac => "MAC",
            CommMode::Full => "Full",
        })
    }
}

/// A response that does not have the shape the command defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The answer is shorter than the two status bytes (its length).
    #[error("response has {}; it needs at least the two status bytes", crate::plural::count(*.0, "byte", "bytes"))]
    NoStatus(usize),
    /// The data has a fixed length and this is not it.
    #[error("expected {expected} data bytes, got {got}")]
    Length {
        /// Data bytes the command defines.
        expected: usize,
        /// Data bytes received.
        got: usize,
    },
    /// The data is shorter than the command's minimum.
    #[error("expected at least {expected} data bytes, got {got}")]
    TooShort {
        /// Fewest data bytes the command defines.
        expected: usize,
        /// Data bytes received.
        got: usize,
    },
    /// Bytes after everything the command defines (their number).
    #[error("{0} unexpected trailing bytes")]
    Trailing(usize),
    /// The chip answered in a number of frames the command does not define.
    #[error("expected {expected} frames, got {got}")]
    FrameCount {
        /// Frames the command defines (or the most accepted).
        expected: usize,
        /// Frames received.
        got: usize,
    },
    /// Encrypted data whose length (given) is not a multiple of the 16-byte AES block.
    #[error("encrypted response is not a whole number of blocks ({0} bytes)")]
    NotBlockAligned(usize),
    /// The decrypted data does not end in valid `80 00..` padding.
    #[error("decrypted response has invalid padding")]
    Padding,
    /// A status word the command never answers with here.
    #[error("unexpected status {0}")]
    UnexpectedStatus(Sw),
    /// A field of the answer holds a value the command does not define (described).
    #[error("{0}")]
    Field(String),
}

/// What went wrong while running a command on the chip.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The reader or the link failed.
    #[error("{command}: {source}")]
    Transport {
        /// The command being run.
        command: &'static str,
        /// What the transport reported.
        #[source]
        source: TransportError,
    },
    /// The chip refused the command with a status word.
    #[error("{command}: the tag answered {sw}")]
    Status {
        /// The command being run.
        command: &'static str,
        /// The chip's status word.
        sw: Sw,
    },
    /// The chip's answer does not have the shape the command defines.
    #[error("{command}: malformed response: {problem}")]
    Malformed {
        /// The command being run.
        command: &'static str,
        /// What is wrong with the answer.
        #[source]
        problem: Malformed,
    },
    /// The response MAC does not verify; the chip and the host no longer share a session.
    #[error("{command}: the response MAC does not verify; the session is closed")]
    ResponseMac {
        /// The command being run.
        command: &'static str,
    },
    /// The chip's answer to the authentication does not prove it holds the same key.
    #[error("authentication with key {key_no}: the tag's answer does not prove the same key (RndA' mismatch)")]
    AuthenticationProof {
        /// The key number authenticated with.
        key_no: u8,
    },
    /// The 16-bit EV2 command counter has reached its end; a new authentication resets it.
    #[error("the EV2 command counter is exhausted; authenticate again")]
    CounterExhausted,
    /// The tag's SDM mode (AES or LRP) is not the one the command was asked to use.
    #[error("{command}: the tag is in {actual} mode, not {expected} mode")]
    WrongMode {
        /// The command being run.
        command: &'static str,
        /// The mode asked for.
        expected: crate::crypto::sdm::SdmMode,
        /// The mode the tag is in.
        actual: crate::crypto::sdm::SdmMode,
    },
    /// A caller's argument the command cannot encode (described).
    #[error("{0}")]
    InvalidArgument(String),
    /// Command data (of this many bytes) that does not fit a short APDU; nothing was sent.
    #[error("command data of {0} bytes does not fit a short APDU (255 at most)")]
    TooLong(usize),
    /// File settings the chip would refuse; nothing was sent.
    #[error("file {file_no:02X}: {source}")]
    InvalidSettings {
        /// The file.
        file_no: u8,
        /// Which rule of ChangeFileSettings they break.
        #[source]
        source: file_settings::SettingsError,
    },
}

impl CardError {
    /// The status word when the chip refused the command.
    pub fn status(&self) -> Option<Sw> {
        match self {
            CardError::Status { sw, .. } => Some(*sw),
            _ => None,
        }
    }

    /// True when the tag left the field or the reader lost it: the command may have been applied.
    pub fn is_tear_off(&self) -> bool {
        matches!(
            self,
            CardError::Transport {
                source: TransportError::CardRemoved | TransportError::NoCard,
                ..
            }
        )
    }

    /// True when the exchange was cut (the tag left the field, or its answer was lost): the
    /// command may have been applied, and the tag's state is read again before anything else.
    pub fn is_interrupted(&self) -> bool {
        self.is_tear_off()
            || matches!(
                self,
                CardError::Transport {
                    source: TransportError::ResponseLost,
                    ..
                }
            )
    }
}

/// Randomness for RndA (the host's authentication challenge). Tests inject fixed values.
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's random number generator (default).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, buf);
    }
}

/// Plays back given bytes in order (cycling), for tests and fixture replay.
#[derive(Debug, Clone)]
pub struct FixedRandom {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRandom {
    /// A source that plays back `bytes` in order from the start, cycling; empty gives zeros.
    pub fn new(bytes: Vec<u8>) -> Self {
        FixedRandom { bytes, pos: 0 }
    }
}

impl RandomSource for FixedRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            *b = if self.bytes.is_empty() {
                0
            } else {
                self.bytes[self.pos % self.bytes.len()]
            };
            self.pos += 1;
        }
    }
}

/// One APDU exchange as an observer sees it. Key-bearing commands are `sensitive`: a trace
/// must print them redacted ([`Exchange::command_hex`] does).
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// Command name (e.g. `AuthenticateEV2First`).
    pub name: &'static str,
    /// The APDU as sent.
    pub command: &'a [u8],
    /// The response as received, status word included.
    pub response: &'a [u8],
    /// The command carries key material; print it redacted.
    pub sensitive: bool,
    /// From the command leaving the host to its answer (the reader's and the tag's time).
    pub elapsed: std::time::Duration,
}

impl Exchange<'_> {
    /// The command as hex, or its header and `REDACTED` when it carries key material.
    pub fn command_hex(&self) -> String {
        if self.sensitive {
            let n = self.command.len().min(5);
            format!("{} REDACTED", hex::encode_upper(&self.command[..n]))
        } else {
            hex::encode_upper(self.command)
        }
    }
}

type Observer = Box<dyn FnMut(&Exchange<'_>) + Send>;

/// Largest plaintext chunk per ReadData/WriteData: fits one short APDU in every comm mode.
pub const DEFAULT_CHUNK: usize = 224;

/// A chip behind a transport, not (yet) authenticated.
pub struct Card<T: Transport> {
    transport: T,
    rng: Box<dyn RandomSource>,
    observer: Option<Observer>,
    exchanges: usize,
    chunk: usize,
}

impl<T: Transport> fmt::Debug for Card<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("exchanges", &self.exchanges)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Card<T> {
    /// A card on `transport`, with OS randomness, no observer and the default chunk size.
    pub fn new(transport: T) -> Self {
        Card {
            transport,
            rng: Box::new(OsRandom),
            observer: None,
            exchanges: 0,
            chunk: DEFAULT_CHUNK,
        }
    }

    /// Replaces the source of RndA (tests and fixture replay).
    pub fn with_rng(mut self, rng: impl RandomSource + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// Calls `f` after every APDU exchange (for `--verbose` traces).
    pub fn with_observer(mut self, f: impl FnMut(&Exchange<'_>) + Send + 'static) -> Self {
        self.observer = Some(Box::new(f));
        self
    }

    /// Sets the largest plaintext chunk of ReadData/WriteData (1..=224).
    pub fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk.clamp(1, DEFAULT_CHUNK);
    }

    /// The largest plaintext chunk of ReadData/WriteData (1..=224).
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// APDU exchanges so far (each one costs the operator time at the reader).
    pub fn exchanges(&self) -> usize {
        self.exchanges
    }

    /// The transport underneath (e.g. to reset or reconnect it).
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives back the transport.
    pub fn into_transport(self) -> T {
        self.transport
    }

    pub(crate) fn random(&mut self, buf: &mut [u8]) {
        self.rng.fill(buf);
    }

    /// Part 1 of an authentication, sent once. A `91AD` (the chip's delay after failed
    /// attempts, NT4H2421Gx §9.1.10) is not waited out here: the tool stops trying and says
    /// why (`ProvisionError::help`), so a key the journal does not point to is never tried
    /// again and again into the chip's failed-attempt counter.
    pub(crate) fn auth_part1(
        &mut self,
        name: &'static str,
        apdu: &[u8],
    ) -> Result<(Vec<u8>, Sw), CardError> {
        self.transceive(name, apdu, false)
    }

    /// One raw exchange: returns the response data and its status word (not yet judged).
    pub fn transceive(
        &mut self,
        name: &'static str,
        apdu: &[u8],
        sensitive: bool,
    ) -> Result<(Vec<u8>, Sw), CardError> {
        let started = std::time::Instant::now();
        let resp = self
            .transport
            .transmit(apdu)
            .map_err(|source| CardError::Transport {
                command: name,
                source,
            })?;
        let elapsed = started.elapsed();
        self.exchanges += 1;
        if let Some(obs) = self.observer.as_mut() {
            obs(&Exchange {
                name,
                command: apdu,
                response: &resp,
                sensitive,
                elapsed,
            });
        }
        if resp.len() < 2 {
            return Err(CardError::Malformed {
                command: name,
                problem: Malformed::NoStatus(resp.len()),
            });
        }
        let n = resp.len() - 2;
        let sw = Sw::from_u16(u16::from_be_bytes([resp[n], resp[n + 1]]));
        let mut data = resp;
        data.truncate(n);
        Ok((data, sw))
    }

    /// A native command wrapped in ISO 7816-4 (`90 INS 00 00 [Lc payload] 00`); follows `91AF`
    /// frames with `90 AF 00 00 00` and returns every frame's data. The last status must be a
    /// success, otherwise the error names it.
    pub(crate) fn native_frames(
        &mut self,
        name: &'static str,
        ins: u8,
        payload: &[u8],
        sensitive: bool,
    ) -> Result<(Vec<Vec<u8>>, Sw), CardError> {
        let apdu = wrap_native(ins, payload)?;
        let (mut data, mut sw) = self.transceive(name, &apdu, sensitive)?;
        let mut frames = Vec::new();
        while sw == Sw::AdditionalFrame {
            frames.push(data);
            if frames.len() > 32 {
                return Err(CardError::Malformed {
                    command: name,
                    problem: Malformed::FrameCount {
                        expected: 32,
                        got: frames.len(),
                    },
                });
            }
            (data, sw) = self.transceive(name, &[0x90, 0xAF, 0x00, 0x00, 0x00], false)?;
        }
        frames.push(data);
        if !sw.is_success() {
            return Err(CardError::Status { command: name, sw });
        }
        Ok((frames, sw))
    }

    /// A native command whose answer is the concatenation of its frames.
    pub(crate) fn native(
        &mut self,
        name: &'static str,
        ins: u8,
        payload: &[u8],
        sensitive: bool,
    ) -> Result<Vec<u8>, CardError> {
        Ok(self
            .native_frames(name, ins, payload, sensitive)?
            .0
            .concat())
    }

    /// An ISO 7816-4 command (CLA 00) that must end with `9000`.
    pub(crate) fn iso(&mut self, name: &'static str, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let (data, sw) = self.transceive(name, apdu, false)?;
        if sw != Sw::IsoOk {
            return Err(CardError::Status { command: name, sw });
        }
        Ok(data)
    }
}

/// Commands that answer with no data (only a status, and a MAC in a session): anything more is
/// a malformed answer.
pub(crate) fn expect_no_data(command: &'static str, data: &[u8]) -> Result<(), CardError> {
    if data.is_empty() {
        Ok(())
    } else {
        Err(CardError::Malformed {
            command,
            problem: Malformed::Trailing(data.len()),
        })
    }
}

/// `90 INS 00 00 [Lc payload] 00`; command data over 255 bytes is [`CardError::TooLong`].
pub fn wrap_native(ins: u8, payload: &[u8]) -> Result<Vec<u8>, CardError> {
    if payload.len() > 255 {
        return Err(CardError::TooLong(payload.len()));
    }
    let mut v = Vec::with_capacity(payload.len() + 6);
    v.extend_from_slice(&[0x90, ins, 0x00, 0x00]);
    if !payload.is_empty() {
        v.push(payload.len() as u8);
        v.extend_from_slice(payload);
    }
    v.push(0x00);
    Ok(v)
}

/// A 24-bit little-endian field (offsets and lengths in native commands).
pub fn u24_le(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Reads a 24-bit little-endian field.
pub fn read_u24_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_data_over_a_short_apdu_is_refused_before_sending() {
        assert_eq!(
            wrap_native(0x8D, &[0x11; 3]).unwrap(),
            [0x90, 0x8D, 0x00, 0x00, 0x03, 0x11, 0x11, 0x11, 0x00]
        );
        let e = wrap_native(0x8D, &[0; 256]).unwrap_err();
        assert!(matches!(e, CardError::TooLong(256)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "command data of 256 bytes does not fit a short APDU (255 at most)"
        );
    }
}
