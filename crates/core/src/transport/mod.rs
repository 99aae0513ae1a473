//! The transport seam: one method that carries one APDU to a card and returns its answer.
//!
//! Everything above it (status words, chaining of `91AF` frames, secure messaging) lives in
//! `card`, so backends stay simple: PC/SC (the `tag424-pcsc` crate), the simulator
//! (`tag424-sim`), and the replay of recorded exchanges ([`replay`]).

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
    /// The command reached the tag but its answer was lost on the way back (a flaky reader or
    /// link): the tag is still in the field and the command may have been applied.
    #[error("the reader lost the tag's answer (the command may have been applied)")]
    ResponseLost,
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
    /// Called once when a batch starts: `finished(uid)` is true for a tag (7-byte UID) the
    /// batch has already finished. A reader that chooses its own tags (the simulated one)
    /// leaves those out of its stack, as an operator resuming a batch presents only the tags
    /// not done yet; a real reader presents whatever is put on it (the default: nothing to do).
    fn skip_finished(&mut self, _finished: &dyn Fn(&[u8; 7]) -> bool) {}
    /// The reader's own number, if it has one: a PC/SC reader's position in the service's
    /// list (see [`reader_number`]).
    fn number(&self) -> Option<usize> {
        None
    }
}

/// The one numbering of readers, from 0, used by `tag424 readers`, `--reader N`, the station
/// view and its lines, and traces: a reader's own number ([`TagSource::number`]: a PC/SC
/// reader's position in the service's list), or else (a simulated reader) its `place` among
/// the batch's readers.
pub fn reader_number<S: TagSource + ?Sized>(source: &S, place: usize) -> usize {
    source.number().unwrap_or(place)
}

/// Carries APDUs. Implementations: `PcscTransport`, `SimTransport`, [`replay::Replay`].
pub trait Transport {
    /// Sends one command APDU and returns the response APDU (data followed by SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Called after an exchange failed with the tag lost ([`TransportError::CardRemoved`],
    /// [`TransportError::NoCard`]) or its answer lost ([`TransportError::ResponseLost`]):
    /// resets the tag (its session ends) and reconnects to it if it is in the field again,
    /// so the batch resumes it without the operator. False: not back (the default: the tag
    /// is left unfinished until it is presented again).
    fn reconnect(&mut self) -> bool {
        false
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
    fn reconnect(&mut self) -> bool {
        (**self).reconnect()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
    fn reconnect(&mut self) -> bool {
        (**self).reconnect()
    }
}
