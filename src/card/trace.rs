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

    /// An observer for [`super::Card::with_observer`].
    pub fn observer(&self) -> impl FnMut(&Exchange<'_>) + Send + 'static {
        let t = self.clone();
        move |e| t.record(e)
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
}
