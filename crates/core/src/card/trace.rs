//! Writing APDU exchanges in the `hardware-fixtures/` format (`> command`, `< response`), so a
//! session at a real reader can become a replayable fixture, or be shared to debug a reader.
//!
//! A trace without `--trace-keys` can be shared: it keeps what debugging a reader needs (every
//! command's header and name, every length, every status word, every response MAC, the time
//! of every exchange) and writes as `#` comments, with their secret bytes replaced by
//! `[N bytes redacted]`, the exchanges that carry secrets ([`secret`]):
//!
//! - the authentications' randoms (AuthenticateEV2First/NonFirst and LRPFirst/NonFirst: the
//!   chip's RndB in part 1's answer, RndA and RndB in part 2 and its answer). They are
//!   encrypted under the key, but the key may be known (the factory key of a fresh tag, a test
//!   key, a key that leaks later), and with it they give RndA and RndB, hence the session keys,
//!   hence every encrypted byte of that session (the new keys of ChangeKey among them) and
//!   MACs an attacker could forge for it. Without them the session keys cannot be derived from
//!   the trace, whatever key is known.
//! - ChangeKey's cryptogram (the new key, XORed with the old one for other keys, under the
//!   session key) and SetConfiguration's data: key material or settings under the session key.
//!   Redundant once the randoms are gone, and kept out all the same (a second line of defence).
//!
//! Written in full: command codes and headers, key numbers, lengths, status words, response
//! data of plain commands (GetVersion with the UID, the NDEF file whose URL every phone
//! reads), other commands' encrypted data (undecipherable without the session keys) and the
//! 8-byte CMACs: a truncated AES-CMAC under a per-session key tells nothing about the key and
//! is what a "MAC does not verify" report needs. No plaintext the host decrypted is ever
//! written. With `--trace-keys` everything is written (test tags only): the trace then replays.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::Exchange;

/// A shared trace file.
#[derive(Clone)]
pub struct Trace {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    keys: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn spaced(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Trace {
    /// Traces into `out`; `keys`: write key-bearing commands in full. Without keys the trace
    /// starts with an `@redacted` line: the fixture check refuses it by that line.
    pub fn new(out: Box<dyn Write + Send>, keys: bool) -> Self {
        let t = Trace {
            out: Arc::new(Mutex::new(out)),
            keys,
        };
        if !keys {
            if let Ok(mut o) = t.out.lock() {
                let _ = writeln!(o, "@{REDACTED} {REDACTED_NOTE}");
                let _ = o.flush();
            }
        }
        t
    }

    /// A free-form `#` comment line (provenance, tag boundaries).
    pub fn comment(&self, text: &str) {
        if let Ok(mut o) = self.out.lock() {
            for line in text.lines() {
                let _ = writeln!(o, "# {line}");
            }
            let _ = o.flush();
        }
    }

    /// Records one exchange: the command with its name, the response with the time it took;
    /// without keys, an exchange that carries secrets as two `#` lines with them redacted.
    pub fn record(&self, e: &Exchange<'_>) {
        let Ok(mut o) = self.out.lock() else { return };
        let ms = e.elapsed.as_secs_f64() * 1000.0;
        match secret(e).filter(|_| !self.keys) {
            Some(cut) => {
                let command = if cut.command {
                    redact_command(e.command, cut.keep)
                } else {
                    spaced(e.command)
                };
                let response = if cut.response {
                    redact_response(e.response)
                } else {
                    spaced(e.response)
                };
                let _ = writeln!(o, "# > {command}  ({}; redacted: {})", e.name, cut.why);
                let _ = writeln!(o, "# < {response}  ({ms:.1} ms)");
            }
            None => {
                let _ = writeln!(o, "> {}  # {}", spaced(e.command), e.name);
                let _ = writeln!(o, "< {}  # {ms:.1} ms", spaced(e.response));
            }
        }
        let _ = o.flush();
    }

    /// A trace of one tag's sequence whose lines reach this trace's file as one block, when
    /// the last copy of it is dropped (the tag is done, failed or left the field). Several
    /// readers tracing into one file each write their tags whole, never interleaved.
    pub fn grouped(&self) -> Trace {
        Trace {
            out: Arc::new(Mutex::new(Box::new(Block {
                parent: self.out.clone(),
                buf: Vec::new(),
            }))),
            keys: self.keys,
        }
    }

    /// An observer for [`super::Card::with_observer`].
    pub fn observer(&self) -> impl FnMut(&Exchange<'_>) + Send + 'static {
        let t = self.clone();
        move |e| t.record(e)
    }
}

/// The `@` line that marks a trace written without `--trace-keys`.
pub const REDACTED: &str = "redacted";

const REDACTED_NOTE: &str = "authentication randoms and key material left out (recorded without --trace-keys): shareable, not replayable";

/// What of one exchange a shareable trace leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    /// Command bytes written before the redaction (header, key number or option).
    pub keep: usize,
    /// The command's data after `keep` is secret.
    pub command: bool,
    /// The response's data (all but SW1 SW2) is secret.
    pub response: bool,
    /// Why, as the trace says it.
    pub why: &'static str,
}

/// The one rule of what a trace without `--trace-keys` redacts (see the module text for why):
/// `None` for an exchange written in full.
pub fn secret(e: &Exchange<'_>) -> Option<Secret> {
    let ins = e.command.get(1).copied();
    if e.name.starts_with("Authenticate") {
        return Some(if matches!(ins, Some(0x71 | 0x77)) {
            Secret {
                keep: e.command.len(),
                command: false,
                response: true,
                why: "the chip's random RndB",
            }
        } else {
            Secret {
                keep: 5,
                command: true,
                response: true,
                why: "the randoms RndA and RndB, which give the session keys",
            }
        });
    }
    if e.sensitive || e.name == "ChangeKey" || e.name == "SetConfiguration" || ins == Some(0xC4) {
        return Some(Secret {
            keep: 6,
            command: true,
            response: false,
            why: "key material",
        });
    }
    None
}

/// The command with its bytes from `keep` to the end of its data replaced by their count (an
/// `Le` after the data is kept).
fn redact_command(c: &[u8], keep: usize) -> String {
    let data_end = match c.get(4) {
        Some(&lc) if c.len() > 5 => (5 + lc as usize).min(c.len()),
        _ => c.len(),
    };
    let keep = keep.min(data_end);
    let mut parts = vec![spaced(&c[..keep])];
    if data_end > keep {
        parts.push(format!("[{} bytes redacted]", data_end - keep));
    }
    if c.len() > data_end {
        parts.push(spaced(&c[data_end..]));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The response's data replaced by its length; the status word kept.
fn redact_response(r: &[u8]) -> String {
    if r.len() <= 2 {
        return spaced(r);
    }
    format!(
        "[{} bytes redacted] {}",
        r.len() - 2,
        spaced(&r[r.len() - 2..])
    )
}

/// The buffer of a [`Trace::grouped`] trace: written to the parent on drop.
struct Block {
    parent: Arc<Mutex<Box<dyn Write + Send>>>,
    buf: Vec<u8>,
}

impl Write for Block {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    /// Held until the block is dropped: that is what keeps a tag's lines together.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut o = self.parent.lock().unwrap_or_else(|e| e.into_inner());
        let _ = o.write_all(&self.buf);
        let _ = o.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::replay::Fixture;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_trace_is_a_fixture_and_redacts_keys() {
        let buf = Buf::default();
        let t = Trace::new(Box::new(buf.clone()), false);
        t.comment("reader: test");
        t.record(&Exchange {
            name: "GetVersion",
            command: &[0x90, 0x60, 0, 0, 0],
            response: &[0x91, 0xAF],
            sensitive: false,
            elapsed: std::time::Duration::from_micros(2500),
        });
        t.record(&Exchange {
            name: "ChangeKey",
            command: &[0x90, 0xC4, 0, 0, 0x29, 1, 2, 3],
            response: &[0x91, 0x00],
            sensitive: true,
            elapsed: std::time::Duration::ZERO,
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let fx = Fixture::parse(&text).unwrap();
        assert_eq!(fx.exchanges.len(), 1);
        assert_eq!(fx.meta(REDACTED).map(|_| ()), Some(()));
        assert!(!text.contains("01 02 03"), "{text}");
        assert!(text.contains("> 90 60 00 00 00  # GetVersion"), "{text}");
        assert!(text.contains("< 91 AF  # 2.5 ms"), "{text}");
        assert!(
            text.contains(
                "# > 90 C4 00 00 29 01 [2 bytes redacted]  (ChangeKey; redacted: key material)"
            ),
            "{text}"
        );
    }

    #[test]
    fn authentication_randoms_are_redacted_and_kept_with_keys() {
        let part1 = Exchange {
            name: "AuthenticateEV2First",
            command: &[0x90, 0x71, 0, 0, 2, 0, 0, 0],
            response: &[0xA0, 0x4C, 0x12, 0x42, 0x91, 0xAF],
            sensitive: false,
            elapsed: std::time::Duration::ZERO,
        };
        let part2 = Exchange {
            name: "AuthenticateEV2First",
            command: &[0x90, 0xAF, 0, 0, 4, 0x35, 0xC3, 0xE0, 0x5A, 0],
            response: &[0x3F, 0xA6, 0x4D, 0xB5, 0x91, 0x00],
            sensitive: false,
            elapsed: std::time::Duration::ZERO,
        };
        let buf = Buf::default();
        let t = Trace::new(Box::new(buf.clone()), false);
        t.record(&part1);
        t.record(&part2);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        for secret in ["A0 4C", "35 C3", "3F A6"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("# > 90 71 00 00 02 00 00 00  (Authenticate"),
            "{text}"
        );
        assert!(text.contains("# < [4 bytes redacted] 91 AF"), "{text}");
        assert!(
            text.contains("# > 90 AF 00 00 04 [4 bytes redacted] 00"),
            "{text}"
        );
        assert_eq!(Fixture::parse(&text).unwrap().exchanges.len(), 0);

        let buf = Buf::default();
        let t = Trace::new(Box::new(buf.clone()), true);
        t.record(&part1);
        t.record(&part2);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let fx = Fixture::parse(&text).unwrap();
        assert_eq!(fx.exchanges.len(), 2);
        assert_eq!(fx.meta(REDACTED), None);
        assert_eq!(fx.exchanges[1].0, part2.command);
    }

    #[test]
    fn grouped_traces_write_each_tag_whole() {
        let buf = Buf::default();
        let t = Trace::new(Box::new(buf.clone()), true);
        let (a, b) = (t.grouped(), t.grouped());
        let ex = |cla: u8| Exchange {
            name: "GetVersion",
            command: &[0x90, 0x60, 0, 0, 0],
            response: if cla == 0xA {
                &[0x91, 0xAF]
            } else {
                &[0x91, 0x00]
            },
            sensitive: false,
            elapsed: std::time::Duration::ZERO,
        };
        a.comment("tag A");
        b.comment("tag B");
        for _ in 0..3 {
            a.record(&ex(0xA));
            b.record(&ex(0xB));
        }
        assert!(
            buf.0.lock().unwrap().is_empty(),
            "nothing before a tag is done"
        );
        drop(b);
        drop(a);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# tag B");
        assert!(lines[1..7].iter().all(|l| !l.contains("AF")), "{text}");
        assert_eq!(lines[7], "# tag A");
        assert!(lines[8..]
            .iter()
            .filter(|l| l.starts_with('<'))
            .all(|l| l.contains("AF")));
    }
}
