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

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::dir::SimDirError;
use super::SimChip;

mod attach;
pub use attach::{
    attach, attach_with, AttachEnd, AttachEvent, AttachPolicy, AttachSummary, Pull, Removal,
    RemovedBy, TagReport,
};

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
    /// At [`TapEvent::Apdu`]: remove the tag before its answer leaves (the chip applied the
    /// command; the host never gets the answer), as a tag pulled mid-exchange. At any other
    /// event the same as [`Flow::Remove`].
    RemoveUnanswered,
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
                        // The hook sees the exchange before the answer leaves: it may save the
                        // chip's state first, or pull the tag so the answer never arrives.
                        let flow = hook(
                            TapEvent::Apdu {
                                index: apdus,
                                command,
                                response: &response,
                                changed,
                            },
                            chip,
                        )?;
                        if flow == Flow::RemoveUnanswered {
                            return Ok(end(TapEndReason::Removed, apdus, true));
                        }
                        if let Err(e) = send(&mut s, &response) {
                            return closed_or(e, end(TapEndReason::ReaderClosed, apdus, true), io);
                        }
                        flow
                    }
                }
            }
        };
        if flow != Flow::Continue {
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
            if hook(tick, chip)? != Flow::Continue {
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
