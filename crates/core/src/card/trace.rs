//! Writing APDU exchanges in the `hardware-fixtures/` format (`> command`, `< response`), so a
//! session at a real reader can become a replayable fixture.
//!
//! Key-bearing commands (ChangeKey, SetConfiguration) are written as comments with their
//! payload redacted unless keys were asked for: with the factory key, anyone holding the
//! trace could otherwise decrypt the new keys.

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
    /// Traces into `out`; `keys`: write key-bearing commands in full.
    pub fn new(out: Box<dyn Write + Send>, keys: bool) -> Self {
        Trace {
            out: Arc::new(Mutex::new(out)),
            keys,
        }
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

    /// Records one exchange.
    pub fn record(&self, e: &Exchange<'_>) {
        let Ok(mut o) = self.out.lock() else { return };
        if e.sensitive && !self.keys {
            let _ = writeln!(
                o,
                "# > {} … ({}, redacted: carries key material)",
                spaced(&e.command[..e.command.len().min(6)]),
                e.name
            );
            let _ = writeln!(o, "# < {}", spaced(e.response));
        } else {
            let _ = writeln!(o, "> {}", spaced(e.command));
            let _ = writeln!(o, "< {}", spaced(e.response));
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
        });
        t.record(&Exchange {
            name: "ChangeKey",
            command: &[0x90, 0xC4, 0, 0, 0x29, 1, 2, 3],
            response: &[0x91, 0x00],
            sensitive: true,
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let fx = Fixture::parse(&text).unwrap();
        assert_eq!(fx.exchanges.len(), 1);
        assert!(!text.contains("01 02 03"), "{text}");
    }

    #[test]
    fn grouped_traces_write_each_tag_whole() {
        let buf = Buf::default();
        let t = Trace::new(Box::new(buf.clone()), false);
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
