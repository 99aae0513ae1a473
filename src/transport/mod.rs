//! The transport seam: one method that carries one APDU to a card and returns its answer.
//!
//! Everything above it (status words, chaining of `91AF` frames, secure messaging) lives in
//! `card`, so backends stay simple: PC/SC, the in-process simulator, and the replay of
//! recorded exchanges.

pub mod pcsc;
pub mod replay;

/// Why an APDU did not reach the card or its answer did not come back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The card left the field (or was reset) before answering: the command may or may not
    /// have been applied.
    #[error("the tag left the reader's field")]
    CardRemoved,
    /// No card is present.
    #[error("no tag on the reader")]
    NoCard,
    /// The reader went away.
    #[error("the reader is no longer available: {0}")]
    ReaderGone(String),
    /// A replayed exchange differed from the recording.
    #[error("replay mismatch at exchange {index}: expected {expected}, sent {sent}")]
    ReplayMismatch {
        /// 0-based index of the exchange.
        index: usize,
        /// The recorded command, hex.
        expected: String,
        /// The command sent, hex.
        sent: String,
    },
    /// A replay ran past the end of its recording.
    #[error("replay exhausted after {0} exchanges; the host sent an extra APDU: {1}")]
    ReplayExhausted(usize, String),
    /// Any other backend failure, with its source kept.
    #[error("{context}: {source}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where tags come from: a reader presenting one tag at a time (a PC/SC reader, or the
/// simulated reader of `sim::dir`). The batch loop sees only this.
pub trait TagSource {
    /// The transport to one tag.
    type Tag: Transport;
    /// Waits for the next tag; `None` when no more will come (or the wait was cancelled).
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>>;
    /// Releases the tag (its exclusive access ends) and waits until the operator removes it.
    fn remove(&mut self, _tag: Self::Tag) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
    /// Something another thread calls to end this reader's current wait (`next_tag` or
    /// `remove` then return at once): the batch finished on another reader. `None` for a
    /// reader whose waits never block (the simulated one).
    fn waker(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

/// Carries APDUs. Implementations: `PcscTransport`, `SimTransport`, [`replay::Replay`].
pub trait Transport {
    /// Sends one command APDU and returns the response APDU (data followed by SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}
