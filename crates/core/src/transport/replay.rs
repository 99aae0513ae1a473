//! Replay of recorded APDU exchanges, and the fixture file format of `hardware-fixtures/`.
//!
//! A fixture is a text file:
//!
//! ```text
//! # comment
//! @source NXP AN12196 rev 2.0 §5.6 Table 14
//! @rnd_a 13C5DB8A5930439FC3DEF9A4C675360F
//! > 90 71 00 00 02 00 00 00          (command APDU, hex, spaces allowed)
//! < A04C124213C186F22399D33AC2A3021591AF   (response APDU)
//! ```
//!
//! `@name value` lines carry metadata (the provenance, the randoms to inject, chip state);
//! `>`/`<` lines alternate, one command then its response. [`Replay`] plays the responses back
//! and fails on the first byte that differs from the recording.

use super::{Transport, TransportError};

pub mod check;

/// A parsed fixture.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    /// `@name value` lines, in file order.
    pub meta: Vec<(String, String)>,
    /// (command, response) pairs.
    pub exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A fixture file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixtureError {
    /// A line that is not a `@` meta line, a `>` command or a `<` response after one.
    #[error("line {line}: {what}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
}

impl Fixture {
    /// Reads a fixture: `# comments`, `@key value` meta lines and `>` command / `<` response hex pairs.
    pub fn parse(text: &str) -> Result<Fixture, FixtureError> {
        let mut fx = Fixture::default();
        let mut pending: Option<Vec<u8>> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            // A `>`/`<` line may end in a `# comment` (a trace's time per exchange).
            let l = match l.split_once('#') {
                Some((data, _)) if l.starts_with(['>', '<']) => data.trim(),
                _ => l,
            };
            let err = |what: &str| FixtureError::Syntax {
                line,
                what: what.to_string(),
            };
            if let Some(rest) = l.strip_prefix('@') {
                let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                fx.meta.push((k.to_string(), v.trim().to_string()));
            } else if let Some(rest) = l.strip_prefix('>') {
                if pending.is_some() {
                    return Err(err("two commands in a row; expected a '<' response line"));
                }
                pending = Some(parse_hex(rest).ok_or_else(|| err("command is not hex"))?);
            } else if let Some(rest) = l.strip_prefix('<') {
                let cmd = pending
                    .take()
                    .ok_or_else(|| err("response without a command"))?;
                let resp = parse_hex(rest).ok_or_else(|| err("response is not hex"))?;
                if resp.len() < 2 {
                    return Err(err("a response needs at least SW1 SW2"));
                }
                fx.exchanges.push((cmd, resp));
            } else {
                return Err(err("expected '#', '@', '>' or '<'"));
            }
        }
        if pending.is_some() {
            return Err(FixtureError::Syntax {
                line: text.lines().count(),
                what: "last command has no response".into(),
            });
        }
        Ok(fx)
    }

    /// The first value of a metadata field.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a metadata field.
    pub fn meta_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.meta
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A metadata field decoded from hex.
    pub fn meta_hex(&self, name: &str) -> Option<Vec<u8>> {
        self.meta(name).and_then(parse_hex)
    }
}

/// Hex with optional spaces; `None` when not hex.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(t).ok()
}

/// A transport that answers from a recording and checks every command byte for byte.
#[derive(Debug)]
pub struct Replay {
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Replay {
    /// A replay of the fixture's exchanges, from the first.
    pub fn new(fixture: &Fixture) -> Self {
        Replay {
            exchanges: fixture.exchanges.clone(),
            next: 0,
        }
    }

    /// True when every recorded exchange was played.
    pub fn finished(&self) -> bool {
        self.next == self.exchanges.len()
    }

    /// Exchanges played so far.
    pub fn played(&self) -> usize {
        self.next
    }
}

impl Transport for Replay {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some((expected, response)) = self.exchanges.get(self.next) else {
            return Err(TransportError::ReplayExhausted(
                self.next,
                hex::encode_upper(command),
            ));
        };
        if expected.as_slice() != command {
            return Err(TransportError::ReplayMismatch {
                index: self.next,
                expected: hex::encode_upper(expected),
                sent: hex::encode_upper(command),
            });
        }
        self.next += 1;
        Ok(response.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_replays() {
        let fx = Fixture::parse("# c\n@source X\n> 00 A4\n< 9000\n").unwrap();
        assert_eq!(fx.meta("source"), Some("X"));
        let mut r = Replay::new(&fx);
        assert!(matches!(
            r.transmit(&[0, 0xA5]),
            Err(TransportError::ReplayMismatch { .. })
        ));
        assert_eq!(r.transmit(&[0, 0xA4]).unwrap(), vec![0x90, 0]);
        assert!(matches!(
            r.transmit(&[0]),
            Err(TransportError::ReplayExhausted(..))
        ));
        assert!(r.finished());
    }

    #[test]
    fn rejects_bad_files() {
        assert!(Fixture::parse("> 00\n> 00\n").is_err());
        assert!(Fixture::parse("< 9000\n").is_err());
        assert!(Fixture::parse("> zz\n< 9000\n").is_err());
        assert!(Fixture::parse("> 00\n").is_err());
        assert!(Fixture::parse("> 00\n< 90\n").is_err());
        assert!(Fixture::parse("hello").is_err());
    }
}
