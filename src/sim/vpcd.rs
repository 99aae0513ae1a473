//! A bridge from the simulated chip to PC/SC: the tag speaks the vsmartcard **vpcd** protocol,
//! so pcscd (with the `libifdvpcd` driver) shows it as a card in a reader and any PC/SC program
//! (`tag424 batch --reader pcsc:…`, `pcsc_scan`, a phone-less test rig) talks to it for real.
//!
//! vpcd (inside pcscd) listens on TCP; the tag connects in. One TCP connection = one tag in the
//! field; closing it = the tag removed. Every message, both ways, is a 2-byte big-endian length
//! and the payload. From vpcd: `00` power off, `01` power on, `02` reset (no answer: the chip
//! loses its volatile state), `04` get ATR (answer: the ATR), anything of 2 bytes or more is a
//! C-APDU (answer: the R-APDU). See `/work/shared/notes/pcsc-vpcd.md` for the checked recipe.
//!
//! [`present`] puts one tag in the field; [`attach`] presents a directory's tags one after
//! another, as an operator with a stack of tags at a reader.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dir::{SimDir, SimDirError};
use super::{ChipState, SimChip};

/// The ATR an NTAG 424 DNA gives through a PC/SC contactless reader (PC/SC part 3 ATR for an
/// ISO 14443-4 card without historical bytes). pcscd picks T=1 with it.
pub const ATR: [u8; 6] = [0x3B, 0x81, 0x80, 0x01, 0x80, 0x80];

/// The port of the first slot in the `/etc/reader.conf.d/vpcd` Debian ships (0x8C7B).
pub const DEFAULT_PORT: u16 = 35963;

/// How often [`TapEvent::Tick`] is reported (also the socket read timeout).
pub const TICK: Duration = Duration::from_millis(100);

/// Where the vpcd reader listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcdOptions {
    /// `HOST:PORT` of the vpcd slot, e.g. `127.0.0.1:29363`.
    pub addr: String,
    /// How long to keep retrying the TCP connection while nothing listens yet.
    pub connect_timeout: Duration,
}

impl VpcdOptions {
    /// `addr` with a 5 s connect retry budget.
    pub fn new(addr: impl Into<String>) -> Self {
        VpcdOptions {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    /// Nothing accepts connections at the vpcd address.
    #[error("no vpcd reader at {addr}: is pcscd running with the vpcd driver? ({source})")]
    NoReader {
        /// The vpcd address (`host:port`).
        addr: String,
        /// The connection error.
        #[source]
        source: io::Error,
    },
    /// The vpcd address does not parse or resolve.
    #[error("bad vpcd address {addr}: {why}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        why: String,
    },
    /// The connection to vpcd failed while in use.
    #[error("vpcd connection to {addr}: {source}")]
    Io {
        /// The vpcd address.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The tag directory failed.
    #[error(transparent)]
    Dir(#[from] SimDirError),
}

/// A vpcd control byte (a one-byte message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `00`: the reader switched the field off.
    PowerOff,
    /// `01`: the reader switched the field on.
    PowerOn,
    /// `02`: warm reset (pcscd sends it on `SCardDisconnect(SCARD_RESET_CARD)`).
    Reset,
}

/// What happened while a tag was in the field; the `stop` callback of [`present`] sees every one.
#[derive(Debug, Clone, Copy)]
pub enum TapEvent<'a> {
    /// The reader asked for the ATR and got [`ATR`]. `first`: the reader has just accepted the
    /// connection, i.e. the tag is now in its field (until then the connection may only be
    /// queued by the kernel while vpcd still serves an earlier one).
    Atr {
        /// The first ATR request of this connection: the tag is now in the field.
        first: bool,
    },
    /// Power off / on / reset: the chip lost its volatile state (selection, authentication).
    Control {
        /// Which control byte.
        control: Control,
        /// APDUs answered so far on this tap.
        apdus: usize,
    },
    /// One C-APDU answered. `index` counts from 1 on this tap; `changed`: the chip's
    /// non-volatile state changed.
    Apdu {
        /// Number of this APDU on the tap, from 1.
        index: usize,
        /// The C-APDU.
        command: &'a [u8],
        /// The R-APDU, status word included.
        response: &'a [u8],
        /// The chip's non-volatile state changed.
        changed: bool,
    },
    /// About every [`TICK`], whatever the traffic.
    Tick {
        /// APDUs answered so far on this tap.
        apdus: usize,
        /// The reader has accepted the connection (sent at least one message).
        in_field: bool,
        /// Time since the connection to vpcd was opened.
        since_connect: Duration,
        /// Time since the last APDU; `None` before the first.
        since_last_apdu: Option<Duration>,
    },
}

/// What the `stop` callback wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep the tag in the field.
    Continue,
    /// Remove the tag now (close the connection).
    Remove,
}

/// Why a tap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TapEndReason {
    /// The callback asked for removal.
    Removed,
    /// vpcd closed the connection (pcscd stopped or the driver was unloaded).
    ReaderClosed,
}

/// How a tap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapEnd {
    /// Why the tap ended.
    pub reason: TapEndReason,
    /// C-APDUs answered.
    pub apdus: usize,
    /// The reader accepted the connection (the tag was seen).
    pub in_field: bool,
}

/// One tag in the field: connects to vpcd at `opts.addr`, answers the reader until `stop`
/// returns [`Flow::Remove`] or vpcd closes the connection, then closes it (= tag removed).
/// Returns why it ended. The chip is power-cycled on every `00`/`01`/`02`.
///
/// [`Removal`] is the usual `stop` policy: `|e| removal.decide(&e).map_or(Flow::Continue, |_| Flow::Remove)`.
pub fn present(
    opts: &VpcdOptions,
    chip: &mut SimChip,
    stop: &dyn Fn(TapEvent) -> Flow,
) -> Result<TapEnd, VpcdError> {
    let stream = connect(opts)?;
    serve(&opts.addr, stream, chip, &mut |e, _| Ok(stop(e)))
}

/// Connects to vpcd, retrying for `opts.connect_timeout` while the port refuses.
pub fn connect(opts: &VpcdOptions) -> Result<TcpStream, VpcdError> {
    let addrs: Vec<SocketAddr> = opts
        .addr
        .to_socket_addrs()
        .map_err(|e| VpcdError::BadAddress {
            addr: opts.addr.clone(),
            why: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(VpcdError::BadAddress {
            addr: opts.addr.clone(),
            why: "resolves to no address".into(),
        });
    }
    let deadline = Instant::now() + opts.connect_timeout;
    loop {
        let mut last = None;
        for a in &addrs {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(100), Duration::from_secs(2));
            match TcpStream::connect_timeout(a, left) {
                Ok(s) => {
                    let io = |source| VpcdError::Io {
                        addr: opts.addr.clone(),
                        source,
                    };
                    s.set_nodelay(true).map_err(io)?;
                    s.set_read_timeout(Some(TICK)).map_err(io)?;
                    s.set_write_timeout(Some(Duration::from_secs(5)))
                        .map_err(io)?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(VpcdError::NoReader {
                addr: opts.addr.clone(),
                source: last.unwrap_or_else(|| io::ErrorKind::TimedOut.into()),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(target_os = "linux")]
fn quickack(s: &TcpStream) {
    use std::os::linux::net::TcpStreamExt;
    // Without it every APDU waits ~40 ms for a delayed ACK (vpcd 0.8 sends the length and the
    // body in two writes with Nagle on). Not fatal if it fails.
    let _ = s.set_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quickack(_: &TcpStream) {}

enum Read2 {
    Frame(Vec<u8>),
    Timeout,
    Eof,
}

/// Reads vpcd frames without losing a partial one at a read timeout.
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    fn take(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let n = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
        if self.buf.len() < 2 + n {
            return None;
        }
        let frame = self.buf[2..2 + n].to_vec();
        self.buf.drain(..2 + n);
        Some(frame)
    }

    fn next(&mut self, s: &mut TcpStream) -> io::Result<Read2> {
        loop {
            if let Some(f) = self.take() {
                return Ok(Read2::Frame(f));
            }
            let mut tmp = [0u8; 1024];
            match s.read(&mut tmp) {
                Ok(0) => return Ok(Read2::Eof),
                Ok(n) => {
                    // ACK at once: after the header (so vpcd sends the body) and after the body.
                    quickack(s);
                    self.buf.extend_from_slice(&tmp[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Read2::Timeout)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(Read2::Eof)
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn send(s: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    s.write_all(&out) // one write: header and body in one segment
}

type Hook<'h> = dyn FnMut(TapEvent, &SimChip) -> Result<Flow, VpcdError> + 'h;

/// Serves one connection until the hook asks for removal or vpcd closes it.
fn serve(
    addr: &str,
    mut s: TcpStream,
    chip: &mut SimChip,
    hook: &mut Hook<'_>,
) -> Result<TapEnd, VpcdError> {
    let io = |source| VpcdError::Io {
        addr: addr.to_string(),
        source,
    };
    let connected = Instant::now();
    let mut last_tick = connected;
    let mut last_apdu: Option<Instant> = None;
    let mut apdus = 0usize;
    let mut in_field = false;
    let mut atr_sent = false;
    let mut framer = Framer { buf: Vec::new() };
    let end = |reason, apdus, in_field| TapEnd {
        reason,
        apdus,
        in_field,
    };
    loop {
        let msg = match framer.next(&mut s) {
            Ok(m) => m,
            // A broken connection is the reader going away, like a clean close.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Read2::Eof,
            Err(e) => return Err(io(e)),
        };
        let flow = match msg {
            Read2::Eof => return Ok(end(TapEndReason::ReaderClosed, apdus, in_field)),
            Read2::Timeout => Flow::Continue,
            Read2::Frame(f) => {
                in_field = true;
                match f.as_slice() {
                    [0x04] => {
                        let first = !atr_sent;
                        atr_sent = true;
                        if let Err(e) = send(&mut s, &ATR) {
                            return closed_or(e, end(TapEndReason::ReaderClosed, apdus, true), io);
                        }
                        hook(TapEvent::Atr { first }, chip)?
                    }
                    [c @ (0x00..=0x02)] => {
                        chip.power_cycle();
                        let control = match c {
                            0x00 => Control::PowerOff,
                            0x01 => Control::PowerOn,
                            _ => Control::Reset,
                        };
                        hook(TapEvent::Control { control, apdus }, chip)?
                    }
                    // An empty frame or an unknown control byte: vpcd 0.8 sends neither and
                    // expects no answer.
                    [] | [_] => Flow::Continue,
                    command => {
                        let before = chip.state.clone();
                        let response = chip.process(command);
                        let changed = chip.state != before;
                        apdus += 1;
                        last_apdu = Some(Instant::now());
                        if let Err(e) = send(&mut s, &response) {
                            return closed_or(e, end(TapEndReason::ReaderClosed, apdus, true), io);
                        }
                        hook(
                            TapEvent::Apdu {
                                index: apdus,
                                command,
                                response: &response,
                                changed,
                            },
                            chip,
                        )?
                    }
                }
            }
        };
        if flow == Flow::Remove {
            return Ok(end(TapEndReason::Removed, apdus, in_field));
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let tick = TapEvent::Tick {
                apdus,
                in_field,
                since_connect: connected.elapsed(),
                since_last_apdu: last_apdu.map(|t| t.elapsed()),
            };
            if hook(tick, chip)? == Flow::Remove {
                return Ok(end(TapEndReason::Removed, apdus, in_field));
            }
        }
    }
}

fn closed_or(
    e: io::Error,
    closed: TapEnd,
    io: impl Fn(io::Error) -> VpcdError,
) -> Result<TapEnd, VpcdError> {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => Ok(closed),
        _ => Err(io(e)),
    }
}

/// Why a tag was removed from the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedBy {
    /// The host was done: the reader powered the tag off (`00`) after at least one APDU.
    PowerOff,
    /// `max_apdus` APDUs were answered (a tear-off in the middle of the host's sequence).
    MaxApdus,
    /// No APDU for the idle timeout (after at least one).
    Idle,
    /// The stop flag was raised (Ctrl-C).
    Stopped,
    /// vpcd closed the connection.
    ReaderClosed,
}

/// When an operator takes the tag off the reader: the host is done with it (it powered the tag
/// off after talking to it, or went quiet), or, for tear-off tests, after `max_apdus` APDUs.
/// A tag the host never talks to stays in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// Remove after this many APDUs (a tear-off test); `None`: never on a count.
    pub max_apdus: Option<usize>,
    /// Remove after this long without an APDU (after at least one).
    pub idle: Duration,
}

impl Removal {
    /// Whether this event ends the tap, and why.
    pub fn decide(&self, e: &TapEvent) -> Option<RemovedBy> {
        match *e {
            TapEvent::Control {
                control: Control::PowerOff,
                apdus,
            } if apdus > 0 => Some(RemovedBy::PowerOff),
            TapEvent::Apdu { index, .. } if self.max_apdus.is_some_and(|m| index >= m) => {
                Some(RemovedBy::MaxApdus)
            }
            TapEvent::Tick {
                since_last_apdu: Some(t),
                ..
            } if t >= self.idle => Some(RemovedBy::Idle),
            _ => None,
        }
    }
}

/// How [`attach`] presents the directory's tags.
#[derive(Debug, Clone)]
pub struct AttachPolicy {
    /// Distinct tags to present in total; `None`: until the stop flag (or the tags run out).
    pub count: Option<usize>,
    /// Remove the first tag after this many APDUs (answered; `0` acts as `1`), then present it
    /// again (with its saved state) so the host must finish it. The second presentation does
    /// not count in `count`. If the host is done with the first tag before, nothing is torn.
    pub tear_after: Option<usize>,
    /// Create factory tags when the directory's tags are used up.
    pub fresh: bool,
    /// Remove a tag when no APDU came for this long (after at least one).
    pub idle_timeout: Duration,
    /// Raised (e.g. by a Ctrl-C handler): remove the current tag and return.
    pub stop: Option<Arc<AtomicBool>>,
    /// Time between one tag leaving and the next arriving. pcscd learns of a removal only at
    /// its next presence poll of vpcd (every 400 ms); a faster swap is invisible to PC/SC, as
    /// if the same tag had stayed. A person swapping tags takes longer than this anyway.
    pub swap_gap: Duration,
    /// With `tear_after`: instead of presenting the torn tag again here, hand it to another
    /// reader's directory (its state moves there), as an operator who takes a pulled tag to
    /// the next reader does. An attach serving that directory presents it next.
    pub tear_to: Option<SimDir>,
}

impl Default for AttachPolicy {
    fn default() -> Self {
        AttachPolicy {
            count: None,
            tear_after: None,
            fresh: true,
            idle_timeout: Duration::from_secs(5),
            stop: None,
            swap_gap: Duration::from_millis(900),
            tear_to: None,
        }
    }
}

/// One presentation of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagReport {
    /// The tag's UID.
    pub uid: [u8; 7],
    /// C-APDUs answered.
    pub apdus: usize,
    /// Why it left the field.
    pub removed_by: RemovedBy,
    /// The reader saw the tag (answered the ATR request at least once).
    pub in_field: bool,
    /// The tag's state changed (and was saved).
    pub changed: bool,
    /// The tag was new (created by `fresh`).
    pub created: bool,
    /// The second presentation of a torn tag.
    pub again: bool,
}

/// Why [`attach`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachEnd {
    /// `count` tags were presented.
    Count,
    /// The directory's tags were used up (and `fresh` was off).
    Exhausted,
    /// The stop flag was raised.
    Stopped,
}

/// Every presentation, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSummary {
    /// Every presentation, in order (a torn tag appears twice).
    pub tags: Vec<TagReport>,
    /// Why the attach returned.
    pub end: AttachEnd,
}

/// Progress of [`attach_with`].
#[derive(Debug, Clone, Copy)]
pub enum AttachEvent<'a> {
    /// A tag is about to be presented (connecting).
    Presenting {
        /// The tag's UID.
        uid: [u8; 7],
        /// The tag was just created (factory state).
        created: bool,
        /// The second presentation of a torn tag.
        again: bool,
    },
    /// The reader accepted it: the tag is in the field.
    InField {
        /// The tag's UID.
        uid: [u8; 7],
    },
    /// Every event of the tap, for tracing.
    Tap {
        /// The tag's UID.
        uid: [u8; 7],
        /// The event.
        event: &'a TapEvent<'a>,
    },
    /// The tag was removed.
    Removed(&'a TagReport),
}

/// A stack of tags from `dir`, one after another: the directory's existing tags in UID order
/// (each once per run, factory or not), then (with `policy.fresh`) new factory tags. Each tag
/// is in the field until [`Removal`] says the host is done; its state is saved to `dir` after
/// every APDU that changed it.
pub fn attach(
    opts: &VpcdOptions,
    dir: &SimDir,
    policy: &AttachPolicy,
) -> Result<AttachSummary, VpcdError> {
    attach_with(opts, dir, policy, &mut |_| {})
}

/// [`attach`], reporting progress to `on`.
pub fn attach_with(
    opts: &VpcdOptions,
    dir: &SimDir,
    policy: &AttachPolicy,
    on: &mut dyn FnMut(AttachEvent),
) -> Result<AttachSummary, VpcdError> {
    let stopped = || {
        policy
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    };
    let mut queue: Vec<[u8; 7]> = dir.list()?.into_iter().map(|s| s.uid).collect();
    queue.reverse();
    let mut seen: HashSet<[u8; 7]> = HashSet::new();
    let mut tags: Vec<TagReport> = Vec::new();
    let mut distinct = 0usize;
    // A tag to present again (torn, or never reached the reader), and whether it was counted.
    let mut again: Option<(ChipState, bool, bool)> = None; // (state, created, counted)
    loop {
        if stopped() {
            return Ok(AttachSummary {
                tags,
                end: AttachEnd::Stopped,
            });
        }
        let (state, created, counted, is_again) = match again.take() {
            Some((s, created, counted)) => (s, created, counted, true),
            None => {
                if policy.count.is_some_and(|c| distinct >= c) {
                    return Ok(AttachSummary {
                        tags,
                        end: AttachEnd::Count,
                    });
                }
                match next_tag(dir, &mut queue, &mut seen, policy.fresh)? {
                    // A tag handed over from another reader was counted there.
                    Some((s, Arrival::HandedOver)) => (s, false, true, true),
                    Some((s, arrival)) => (s, arrival == Arrival::Created, false, false),
                    None => {
                        return Ok(AttachSummary {
                            tags,
                            end: AttachEnd::Exhausted,
                        })
                    }
                }
            }
        };
        let uid = state.uid;
        seen.insert(uid);
        on(AttachEvent::Presenting {
            uid,
            created,
            again: is_again,
        });
        let removal = Removal {
            // Only the first tag the host talks to is torn (its second presentation counts
            // as already presented, so it is not torn again).
            max_apdus: policy.tear_after.filter(|_| distinct == 0),
            idle: policy.idle_timeout,
        };
        let mut chip = SimChip::new(state);
        let mut removed_by = None;
        let mut changed = false;
        if !tags.is_empty() {
            std::thread::sleep(policy.swap_gap);
        }
        let stream = connect(opts)?;
        let end = serve(&opts.addr, stream, &mut chip, &mut |e, chip| {
            if let TapEvent::Atr { first: true } = e {
                on(AttachEvent::InField { uid });
            }
            on(AttachEvent::Tap { uid, event: &e });
            if let TapEvent::Apdu { changed: true, .. } = e {
                changed = true;
                dir.save(&chip.state)?;
            }
            if stopped() {
                removed_by = Some(RemovedBy::Stopped);
                return Ok(Flow::Remove);
            }
            removed_by = removal.decide(&e);
            Ok(removed_by.map_or(Flow::Continue, |_| Flow::Remove))
        })?;
        let removed_by = match end.reason {
            TapEndReason::ReaderClosed => RemovedBy::ReaderClosed,
            TapEndReason::Removed => removed_by.unwrap_or(RemovedBy::Stopped),
        };
        let report = TagReport {
            uid,
            apdus: end.apdus,
            removed_by,
            in_field: end.in_field,
            changed,
            created,
            again: is_again,
        };
        on(AttachEvent::Removed(&report));
        tags.push(report);
        if removed_by == RemovedBy::ReaderClosed && end.apdus == 0 {
            // The reader went away before the host talked to this tag: offer it again (the
            // next connect fails clearly if pcscd is gone for good).
            chip.power_cycle();
            again = Some((chip.state, created, counted));
            continue;
        }
        if !counted && end.apdus > 0 {
            distinct += 1;
        }
        if removed_by == RemovedBy::MaxApdus {
            chip.power_cycle();
            match &policy.tear_to {
                Some(other) => {
                    other.save(&chip.state)?;
                    let here = dir.path().join(format!("{}.json", hex::encode_upper(uid)));
                    std::fs::remove_file(&here)
                        .map_err(|source| SimDirError::Io { path: here, source })?;
                }
                None => again = Some((chip.state, created, true)),
            }
        }
    }
}

/// How the next tag came to be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// In the directory when the run started.
    Listed,
    /// Put into the directory while the run went on (handed over from another reader).
    HandedOver,
    /// A new factory tag.
    Created,
}

fn next_tag(
    dir: &SimDir,
    queue: &mut Vec<[u8; 7]>,
    seen: &mut HashSet<[u8; 7]>,
    fresh: bool,
) -> Result<Option<(ChipState, Arrival)>, VpcdError> {
    while let Some(uid) = queue.pop() {
        if seen.contains(&uid) {
            continue;
        }
        let path = dir.path().join(format!("{}.json", hex::encode_upper(uid)));
        match SimDir::load_file(&path) {
            Ok(s) => return Ok(Some((s, Arrival::Listed))),
            // Deleted since the run started: skip it.
            Err(SimDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    // A tag put into the directory since (another reader's pulled tag) comes before new ones.
    if let Some(s) = dir.list()?.into_iter().find(|s| !seen.contains(&s.uid)) {
        return Ok(Some((s, Arrival::HandedOver)));
    }
    if fresh {
        Ok(Some((dir.new_tag()?, Arrival::Created)))
    } else {
        Ok(None)
    }
}
