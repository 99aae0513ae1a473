//! PC/SC readers through the `pcsc` crate and the system's PC/SC service (pcscd on Linux and
//! macOS, WinSCard on Windows).
//!
//! Waiting for a tag to arrive or leave sleeps in `SCardGetStatusChange` (no polling loop);
//! [`PcscReader::canceller`] gives a handle that wakes such a wait (Ctrl-C).

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use tag424_core::transport::{self as seam, Transport, TransportError};

mod probe;
pub use probe::{ReaderAttributes, TagStatus};

/// Why a PC/SC reader could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PcscError {
    /// The PC/SC service (pcscd) is not running.
    #[error("the PC/SC service is not running (on Linux: start pcscd)")]
    NoService,
    /// No reader is connected.
    #[error("no smart card reader is connected")]
    NoReaders,
    /// No reader's name matches the one asked for.
    #[error("no reader matches {wanted:?}; readers: {}", list(.available))]
    NoSuchReader {
        /// The name (or part of it) asked for.
        wanted: String,
        /// The readers there are.
        available: Vec<String>,
    },
    /// Several readers match the name asked for.
    #[error("{wanted:?} matches several readers: {}; give more of the name or its number", labels(.matches))]
    Ambiguous {
        /// The name (or part of it) asked for.
        wanted: String,
        /// The readers it matches: number ([`numbered`]) and name.
        matches: Vec<(usize, String)>,
    },
    /// The reader (named) was unplugged.
    #[error("the reader {0:?} was unplugged")]
    ReaderGone(String),
    /// A wait was cancelled ([`Canceller::cancel`], e.g. Ctrl-C).
    #[error("cancelled")]
    Cancelled,
    /// Another program holds the tag on the reader (named).
    #[error("another program is using the tag on {0:?} (tag424 needs it alone for a tag's whole sequence)")]
    TagInUse(String),
    /// Any other PC/SC failure.
    #[error("PC/SC: {context}: {source}")]
    Other {
        /// What was being done.
        context: &'static str,
        /// The PC/SC error.
        #[source]
        source: pcsc::Error,
    },
}

/// Tags are connected exclusively, for the whole of a tag's sequence.
const TAG_SHARE_MODE: pcsc::ShareMode = pcsc::ShareMode::Exclusive;

/// How long a tag that left the field mid-sequence is waited for ([`Transport::reconnect`]):
/// a tag that slipped off and is put back within this time is resumed as the same
/// presentation (the batch counts a retry); after it, the tag is left unfinished and is
/// finished whenever it is presented again.
pub const TAG_RETURN: Duration = Duration::from_secs(10);

/// The one rule for "no tag to connect to": the reader is empty, or the tag left or stopped
/// answering between the presence event and the connection (the caller waits for the next
/// tag instead of failing).
fn no_tag(e: &pcsc::Error) -> bool {
    matches!(
        e,
        pcsc::Error::NoSmartcard
            | pcsc::Error::RemovedCard
            | pcsc::Error::UnresponsiveCard
            | pcsc::Error::UnpoweredCard
    )
}

/// The PC/SC numbering of readers: a reader's number is its position in the service's list,
/// from 0 (`tag424 readers` shows it, `--reader N` takes it; see
/// [`seam::reader_number`] for the station's readers).
pub fn numbered<T>(readers: &[T]) -> impl Iterator<Item = (usize, &T)> {
    readers.iter().enumerate()
}

/// A reader as the operator sees it: `[N] NAME`, N its number.
pub fn label(number: usize, name: &str) -> String {
    format!("[{number}] {name}")
}

/// Every reader of the service's list, labelled.
fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        numbered(v)
            .map(|(i, n)| label(i, n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Some readers of the list, labelled with their numbers in it.
fn labels(v: &[(usize, String)]) -> String {
    v.iter()
        .map(|(i, n)| label(*i, n))
        .collect::<Vec<_>>()
        .join(", ")
}

fn map_err(context: &'static str) -> impl Fn(pcsc::Error) -> PcscError {
    move |e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => PcscError::NoService,
        pcsc::Error::NoReadersAvailable => PcscError::NoReaders,
        pcsc::Error::Cancelled | pcsc::Error::SystemCancelled => PcscError::Cancelled,
        source => PcscError::Other { context, source },
    }
}

/// A reader and whether a tag is on it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderInfo {
    /// The reader's number: its position in the reader list (from 0, see [`numbered`]),
    /// usable in place of the name.
    pub index: usize,
    /// The reader's name.
    pub name: String,
    /// A tag is on the reader.
    pub card_present: bool,
}

/// Wakes a reader's blocking wait from another thread (a Ctrl-C handler).
#[derive(Clone)]
pub struct Canceller(pcsc::Context);

impl Canceller {
    /// Ends the reader's current blocking wait, which returns [`PcscError::Cancelled`].
    pub fn cancel(&self) {
        let _ = self.0.cancel();
    }
}

/// A PC/SC reader, chosen by name.
pub struct PcscReader {
    ctx: pcsc::Context,
    name: CString,
    /// Its number when it was opened ([`numbered`]).
    number: usize,
}

impl std::fmt::Debug for PcscReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscReader")
            .field("name", &self.name)
            .field("number", &self.number)
            .finish()
    }
}

fn establish() -> Result<pcsc::Context, PcscError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(map_err("connecting to the PC/SC service"))
}

fn reader_names(ctx: &pcsc::Context) -> Result<Vec<CString>, PcscError> {
    match ctx.list_readers_owned() {
        Ok(v) => Ok(v),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(map_err("listing readers")(e)),
    }
}

/// Every reader, with card presence.
pub fn list_readers() -> Result<Vec<ReaderInfo>, PcscError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::from_millis(0), &mut states)
            .map_err(map_err("reading reader states"))?;
    }
    Ok(numbered(&names)
        .zip(&states)
        .map(|((index, n), s)| ReaderInfo {
            index,
            name: n.to_string_lossy().into_owned(),
            card_present: s.event_state().contains(pcsc::State::PRESENT),
        })
        .collect())
}

/// Picks a reader: exact name, number ([`numbered`]), or a unique case-insensitive
/// substring. Returns its number and name.
pub fn choose<'a>(wanted: &str, names: &'a [String]) -> Result<(usize, &'a String), PcscError> {
    if names.is_empty() {
        return Err(PcscError::NoReaders);
    }
    if let Some(n) = numbered(names).find(|(_, n)| *n == wanted) {
        return Ok(n);
    }
    if let Ok(i) = wanted.parse::<usize>() {
        if let Some(n) = numbered(names).find(|(number, _)| *number == i) {
            return Ok(n);
        }
    }
    let w = wanted.to_lowercase();
    let matches: Vec<(usize, &String)> = numbered(names)
        .filter(|(_, n)| n.to_lowercase().contains(&w))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(PcscError::NoSuchReader {
            wanted: wanted.into(),
            available: names.to_vec(),
        }),
        many => Err(PcscError::Ambiguous {
            wanted: wanted.into(),
            matches: many.iter().map(|(i, s)| (*i, s.to_string())).collect(),
        }),
    }
}

impl PcscReader {
    /// Opens the reader `wanted` names (exact name, number, or unique substring).
    pub fn open(wanted: &str) -> Result<PcscReader, PcscError> {
        let ctx = establish()?;
        let names: Vec<String> = reader_names(&ctx)?
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let (number, name) = choose(wanted, &names)?;
        let name = CString::new(name.as_str()).map_err(|_| PcscError::NoSuchReader {
            wanted: wanted.into(),
            available: names.clone(),
        })?;
        Ok(PcscReader { ctx, name, number })
    }

    /// Like [`PcscReader::open`], but when no reader matches yet, sleeps until one is plugged
    /// in (PC/SC plug-and-play notification). `canceller` receives a handle that wakes the
    /// wait (Ctrl-C); `on_wait` is called once before sleeping.
    pub fn open_waiting(
        wanted: &str,
        canceller: &dyn Fn(Canceller),
        on_wait: &mut dyn FnMut(),
    ) -> Result<PcscReader, PcscError> {
        let ctx = establish()?;
        canceller(Canceller(ctx.clone()));
        let mut waited = false;
        let mut pnp = [pcsc::ReaderState::new(
            pcsc::PNP_NOTIFICATION(),
            pcsc::State::UNAWARE,
        )];
        loop {
            let names: Vec<String> = reader_names(&ctx)?
                .iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            match choose(wanted, &names) {
                Ok((number, name)) => {
                    let name =
                        CString::new(name.as_str()).map_err(|_| PcscError::NoSuchReader {
                            wanted: wanted.into(),
                            available: names.clone(),
                        })?;
                    return Ok(PcscReader { ctx, name, number });
                }
                Err(PcscError::NoReaders | PcscError::NoSuchReader { .. }) => {
                    if !waited {
                        on_wait();
                        waited = true;
                    }
                    match ctx.get_status_change(None, &mut pnp) {
                        Ok(()) | Err(pcsc::Error::Timeout) => pnp[0].sync_current_state(),
                        Err(e) => return Err(map_err("waiting for a reader")(e)),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The reader's name.
    pub fn name(&self) -> String {
        self.name.to_string_lossy().into_owned()
    }

    /// The reader's number ([`numbered`]) when it was opened.
    pub fn number(&self) -> usize {
        self.number
    }

    /// A handle to cancel this reader's waits from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.ctx.clone())
    }

    /// Sleeps until the reader's state has `want` (PRESENT or EMPTY). `None`: no timeout.
    fn wait(&self, want: pcsc::State, timeout: Option<Duration>) -> Result<bool, PcscError> {
        let mut states = [pcsc::ReaderState::new(
            self.name.clone(),
            pcsc::State::UNAWARE,
        )];
        loop {
            match self.ctx.get_status_change(timeout, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Ok(false),
                // A transient reader error after a tag was pulled: look again shortly.
                Err(pcsc::Error::CommError) => {
                    std::thread::sleep(Duration::from_millis(100));
                    states[0] = pcsc::ReaderState::new(self.name.clone(), pcsc::State::UNAWARE);
                    continue;
                }
                Err(pcsc::Error::UnknownReader) | Err(pcsc::Error::ReaderUnavailable) => {
                    return Err(PcscError::ReaderGone(self.name()))
                }
                Err(e) => return Err(map_err("waiting for a tag")(e)),
            }
            let ev = states[0].event_state();
            if ev.intersects(pcsc::State::UNAVAILABLE | pcsc::State::UNKNOWN | pcsc::State::IGNORE)
            {
                return Err(PcscError::ReaderGone(self.name()));
            }
            if ev.contains(want)
                && !(want == pcsc::State::PRESENT && ev.contains(pcsc::State::MUTE))
            {
                return Ok(true);
            }
            states[0].sync_current_state();
        }
    }

    /// Sleeps until a tag is on the reader and connects to it exclusively: no other program
    /// can interleave its APDUs with this tag's sequence until the tag is released.
    pub fn wait_for_tag(&self) -> Result<PcscCard, PcscError> {
        let mut busy = 0;
        loop {
            self.wait(pcsc::State::PRESENT, None)?;
            match self
                .ctx
                .connect(&self.name, TAG_SHARE_MODE, pcsc::Protocols::ANY)
            {
                Ok(card) => return Ok(self.card(card)),
                // The tag left again before we connected: wait for the next one.
                Err(e) if no_tag(&e) => continue,
                // Another program holds the tag: give it a moment, then say so.
                Err(pcsc::Error::SharingViolation) if busy < 20 => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(pcsc::Error::SharingViolation) => return Err(PcscError::TagInUse(self.name())),
                Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                    return Err(PcscError::ReaderGone(self.name()))
                }
                Err(e) => return Err(map_err("connecting to the tag")(e)),
            }
        }
    }

    /// Sleeps until the tag is gone: the reader is empty, or its card-event counter moved
    /// (the tag left and a tag came back between two looks, as a fast operator can do).
    pub fn wait_for_removal(&self) -> Result<(), PcscError> {
        let mut states = [pcsc::ReaderState::new(
            self.name.clone(),
            pcsc::State::UNAWARE,
        )];
        let mut first_count = None;
        loop {
            match self.ctx.get_status_change(None, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::UnknownReader) | Err(pcsc::Error::ReaderUnavailable) => {
                    return Err(PcscError::ReaderGone(self.name()))
                }
                // The reader lost the tag badly (a tag pulled mid-exchange): it is gone.
                Err(pcsc::Error::CommError) => return Ok(()),
                Err(e) => return Err(map_err("waiting for the tag to leave")(e)),
            }
            let ev = states[0].event_state();
            if ev.intersects(pcsc::State::UNAVAILABLE | pcsc::State::UNKNOWN | pcsc::State::IGNORE)
            {
                return Err(PcscError::ReaderGone(self.name()));
            }
            let count = states[0].event_count();
            if ev.contains(pcsc::State::EMPTY) || first_count.is_some_and(|c| c != count) {
                return Ok(());
            }
            first_count.get_or_insert(count);
            states[0].sync_current_state();
        }
    }

    /// Whether a tag is present now.
    pub fn card_present(&self) -> Result<bool, PcscError> {
        self.wait(pcsc::State::PRESENT, Some(Duration::from_millis(0)))
    }

    /// The reader's name as PC/SC takes it.
    pub fn name_cstr(&self) -> &CStr {
        &self.name
    }

    /// A connected tag of this reader.
    fn card(&self, card: pcsc::Card) -> PcscCard {
        PcscCard {
            card: Some(card),
            reader: self.name(),
            ctx: self.ctx.clone(),
            name: self.name.clone(),
        }
    }
}

/// A connected tag.
pub struct PcscCard {
    card: Option<pcsc::Card>,
    reader: String,
    /// The reader's context (shared with its [`Canceller`]: a cancel also ends
    /// [`Transport::reconnect`]'s wait) and its name, to connect to the tag again.
    ctx: pcsc::Context,
    name: CString,
}

impl std::fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.reader)
            .finish()
    }
}

impl PcscCard {
    /// Disconnects and leaves the tag as it is (no reset).
    pub fn release(mut self) {
        if let Some(c) = self.card.take() {
            let _ = c.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

impl PcscCard {
    /// Waits up to `within` for a tag on the reader and connects to it exclusively. False when
    /// none came (or the wait was cancelled, or the reader went away).
    fn connect_again(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut states = [pcsc::ReaderState::new(
            self.name.clone(),
            pcsc::State::UNAWARE,
        )];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // The first look (UNAWARE) returns at once; later ones sleep until the reader's
            // state changes: pcscd sees the tag leave, then come back.
            if self.ctx.get_status_change(left, &mut states).is_err() {
                return false; // timeout, cancel (Ctrl-C, batch done), reader gone
            }
            let ev = states[0].event_state();
            if ev.intersects(pcsc::State::UNAVAILABLE | pcsc::State::UNKNOWN | pcsc::State::IGNORE)
            {
                return false;
            }
            if ev.contains(pcsc::State::PRESENT) && !ev.contains(pcsc::State::MUTE) {
                match self
                    .ctx
                    .connect(&self.name, TAG_SHARE_MODE, pcsc::Protocols::ANY)
                {
                    Ok(card) => {
                        self.card = Some(card);
                        return true;
                    }
                    // pcscd has not noticed yet that the tag left (it polls vpcd every 0.4 s),
                    // or the tag is on its way: wait for the next change.
                    Err(e) if no_tag(&e) => {}
                    Err(pcsc::Error::SharingViolation) => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Err(_) => return false,
                }
            }
            states[0].sync_current_state();
        }
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if let Some(c) = self.card.take() {
            let _ = c.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

impl Transport for PcscCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card.as_ref().ok_or(TransportError::CardRemoved)?;
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        match card.transmit(command, &mut buf) {
            // An answer without a status word means the tag left mid-exchange (seen with
            // readers that report the loss this way): the command may or may not have run.
            Ok([]) => {
                self.card = None;
                Err(TransportError::CardRemoved)
            }
            Ok(r) => Ok(r.to_vec()),
            // Another program reset the tag: it lost its session (and maybe the command).
            // Reconnect, so the same tag can be finished, and report it like a tear-off.
            Err(pcsc::Error::ResetCard) => {
                if let Some(mut c) = self.card.take() {
                    if c.reconnect(
                        TAG_SHARE_MODE,
                        pcsc::Protocols::ANY,
                        pcsc::Disposition::LeaveCard,
                    )
                    .is_ok()
                    {
                        self.card = Some(c);
                    }
                }
                Err(TransportError::CardRemoved)
            }
            // The tag left mid-exchange: reported as removed, or (vpcd, some readers) as a failed
            // transaction or communication error. The command may or may not have run.
            Err(
                pcsc::Error::RemovedCard
                | pcsc::Error::UnpoweredCard
                | pcsc::Error::UnresponsiveCard
                | pcsc::Error::CommError
                | pcsc::Error::NotTransacted,
            ) => {
                self.card = None;
                Err(TransportError::CardRemoved)
            }
            Err(pcsc::Error::NoSmartcard) => {
                self.card = None;
                Err(TransportError::NoCard)
            }
            Err(
                e @ (pcsc::Error::ReaderUnavailable
                | pcsc::Error::UnknownReader
                | pcsc::Error::NoService
                | pcsc::Error::ServiceStopped),
            ) => {
                self.card = None;
                Err(TransportError::ReaderGone(format!("{}: {e}", self.reader)))
            }
            Err(e) => Err(TransportError::Backend {
                context: format!("PC/SC transmit on {}", self.reader),
                source: Box::new(e),
            }),
        }
    }

    /// After a cut exchange: a tag still connected is reset (its session ends, as the chip's
    /// after a tear); a tag that left is waited for ([`TAG_RETURN`]) and connected again, so
    /// the batch re-selects, re-authenticates with the journaled keys and resumes at the step
    /// the chip's state shows. The tag put back is identified again from its UID by the
    /// batch: another tag put on the reader instead is simply encoded (or resumed) as itself.
    fn reconnect(&mut self) -> bool {
        if let Some(mut c) = self.card.take() {
            if c.reconnect(
                TAG_SHARE_MODE,
                pcsc::Protocols::ANY,
                pcsc::Disposition::ResetCard,
            )
            .is_ok()
            {
                self.card = Some(c);
                return true;
            }
        }
        self.connect_again(TAG_RETURN)
    }
}

impl seam::TagSource for PcscReader {
    type Tag = PcscCard;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        match self.wait_for_tag() {
            Ok(card) => Ok(Some(card)),
            Err(PcscError::Cancelled) => Ok(None),
            Err(e) => Err(Box::new(e)),
        }
    }
    fn remove(&mut self, tag: Self::Tag) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        tag.release();
        match self.wait_for_removal() {
            Ok(()) | Err(PcscError::Cancelled) => Ok(()),
            Err(e) => Err(Box::new(e)),
        }
    }
    fn waker(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let c = self.canceller();
        Some(Box::new(move || c.cancel()))
    }
    fn number(&self) -> Option<usize> {
        Some(self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_choice() {
        let names = vec![
            "ACS ACR1252 1S CL Reader PICC 0".to_string(),
            "ACS ACR1252 1S CL Reader SAM 0".to_string(),
            "Virtual PCD 00 00".to_string(),
        ];
        assert_eq!(choose("Virtual PCD 00 00", &names).unwrap(), (2, &names[2]));
        assert_eq!(choose("1", &names).unwrap(), (1, &names[1]));
        assert_eq!(choose("picc", &names).unwrap(), (0, &names[0]));
        assert!(matches!(
            choose("ACR1252", &names),
            Err(PcscError::Ambiguous { .. })
        ));
        assert!(matches!(
            choose("omnikey", &names),
            Err(PcscError::NoSuchReader { .. })
        ));
        assert!(matches!(choose("x", &[]), Err(PcscError::NoReaders)));
        let msg = choose("omnikey", &names).unwrap_err().to_string();
        assert!(msg.contains("[2] Virtual PCD 00 00"), "{msg}");
        // Matches keep their numbers in the list (the ones `tag424 readers` shows).
        let names = [
            "Virtual PCD 00 00",
            "ACS CL Reader PICC 0",
            "ACS CL Reader SAM 0",
        ]
        .map(String::from);
        let msg = choose("acs", &names).unwrap_err().to_string();
        assert!(
            msg.contains("[1] ACS CL Reader PICC 0, [2] ACS CL Reader SAM 0"),
            "{msg}"
        );
    }
}
