//! The batch loop: tag after tag from a reader, each encoded (or finished, or skipped), with
//! tag codes taken from the platform's list in order and never used twice.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::card::Card;
use crate::sim::dir::{SimDirError, SimReader};
use crate::transport::Transport;

use super::encode::{encode_tag, EncodeOptions, Outcome, ProvisionError, Step};
use super::journal::{Journal, JournalError};
use super::layout::check_xuid;

/// Where tags come from: a reader presenting one tag at a time.
pub trait TagSource {
    type Tag: Transport;
    /// Waits for the next tag; `None` when no more will come.
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>>;
    /// The operator removes the tag.
    fn remove(&mut self, _tag: Self::Tag) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

impl TagSource for crate::transport::pcsc::PcscReader {
    type Tag = crate::transport::pcsc::PcscCard;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        match self.wait_for_tag() {
            Ok(card) => Ok(Some(card)),
            Err(crate::transport::pcsc::PcscError::Cancelled) => Ok(None),
            Err(e) => Err(Box::new(e)),
        }
    }
    fn remove(&mut self, tag: Self::Tag) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        tag.release();
        match self.wait_for_removal() {
            Ok(()) | Err(crate::transport::pcsc::PcscError::Cancelled) => Ok(()),
            Err(e) => Err(Box::new(e)),
        }
    }
}

impl TagSource for SimReader {
    type Tag = crate::sim::dir::DirTransport;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        SimReader::next_tag(self).map_err(|e: SimDirError| Box::new(e) as _)
    }
}

/// Why a tag code list was refused.
#[derive(Debug, thiserror::Error)]
pub enum XuidListError {
    #[error("cannot read the tag code file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the tag code file {0} has no tag codes")]
    Empty(String),
    #[error("{path} line {line}: {what}")]
    Bad {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{path}: tag code {xuid} appears twice (lines {first} and {second})")]
    Duplicate {
        path: String,
        xuid: String,
        first: usize,
        second: usize,
    },
}

/// Reads the platform's batch download: a CSV with an `XUID` column, or one code per line.
pub fn read_xuids(path: &Path) -> Result<Vec<String>, XuidListError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| XuidListError::Read {
        path: p.clone(),
        source,
    })?;
    parse_xuids(&text, &p)
}

/// Parses a tag code list: a CSV whose header has an `XUID` column (quoted fields, other
/// columns and a byte-order mark allowed), or one code per line. Blank lines are skipped; a
/// bad or repeated code is an error naming its line.
pub fn parse_xuids(text: &str, path: &str) -> Result<Vec<String>, XuidListError> {
    let text = text.trim_start_matches('\u{feff}');
    let bad = |line: usize, what: String| XuidListError::Bad {
        path: path.to_string(),
        line,
        what,
    };
    // One record per line (a code list has no multi-line fields), so errors name file lines.
    let mut rows = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(l.as_bytes());
        let rec = match rdr.records().next() {
            Some(Ok(rec)) => rec,
            Some(Err(e)) => return Err(bad(i + 1, e.to_string())),
            None => continue,
        };
        rows.push((i + 1, rec));
    }
    let Some((_, first)) = rows.first() else {
        return Err(XuidListError::Empty(path.to_string()));
    };
    let column = first
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("XUID"));
    let data = if column.is_some() {
        &rows[1..]
    } else {
        &rows[..]
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (line, rec) in data {
        let xuid = match column {
            Some(c) => rec
                .get(c)
                .ok_or_else(|| bad(*line, "the row has no XUID column".into()))?,
            None if rec.len() == 1 => rec.get(0).unwrap_or_default(),
            None => return Err(bad(*line, "several columns but no XUID header".into())),
        }
        .trim()
        .to_string();
        check_xuid(&xuid).map_err(|e| bad(*line, e.to_string()))?;
        if let Some(first) = seen.insert(xuid.clone(), *line) {
            return Err(XuidListError::Duplicate {
                path: path.to_string(),
                xuid,
                first,
                second: *line,
            });
        }
        out.push(xuid);
    }
    if out.is_empty() {
        return Err(XuidListError::Empty(path.to_string()));
    }
    Ok(out)
}

/// `n` local 8-character tag codes (lowercase letters and digits), for tests and demos.
pub fn generate_xuids(n: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..n)
        .map(|_| {
            crate::crypto::random_bytes::<8>()
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect()
        })
        .collect()
}

/// What the batch loop reports, for the operator's view or `--json`.
#[derive(Debug)]
pub enum BatchEvent<'a> {
    WaitingForTag,
    Step(Step),
    Done {
        outcome: &'a Outcome,
        elapsed: Duration,
    },
    Failed {
        error: &'a ProvisionError,
    },
    RemoveTag,
}

/// `Summary::stopped` when the operator pressed Ctrl-C.
pub const INTERRUPTED: &str = "interrupted";

/// Counts at the end of a batch.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub encoded: usize,
    pub recovered: usize,
    pub skipped: usize,
    /// Tags that left the field mid-encoding (finished when presented again; not failures).
    pub torn: usize,
    pub failed: usize,
    pub exported: usize,
    pub exchanges: usize,
    /// Why the batch ended early (reader unplugged, service stopped, Ctrl-C), if it did.
    pub stopped: Option<String>,
}

/// Options of a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub encode: EncodeOptions,
    /// Stop after this many tags were encoded (default: when the codes run out).
    pub count: Option<usize>,
    /// Set (from a Ctrl-C handler) to stop after the current tag.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Record every APDU exchange (the `hardware-fixtures/` format).
    pub trace: Option<crate::card::trace::Trace>,
}

/// Runs the batch until `count` tags are encoded, the codes run out or the reader has no more
/// tags. `keys.csv` and `associate.csv` are rewritten after every verified tag.
pub fn run_batch<S: TagSource>(
    source: &mut S,
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
    on_event: &mut dyn FnMut(BatchEvent<'_>),
) -> Result<Summary, JournalError> {
    let mut summary = Summary::default();
    let mut next_xuid = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    loop {
        if opts.count.is_some_and(|c| summary.encoded >= c) {
            break;
        }
        let unfinished = journal.tags().any(|t| !t.verified && !t.reset);
        if !unfinished && xuids.iter().all(|x| journal.xuid_used(x)) {
            break;
        }
        let stopping = || {
            opts.stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
        };
        if stopping() {
            summary.stopped = Some(INTERRUPTED.into());
            break;
        }
        on_event(BatchEvent::WaitingForTag);
        let tag = match source.next_tag() {
            Ok(Some(t)) => t,
            Ok(None) => {
                if stopping() {
                    summary.stopped = Some(INTERRUPTED.into());
                }
                break;
            }
            Err(e) => {
                summary.stopped = Some(e.to_string());
                break;
            }
        };
        let started = Instant::now();
        let mut card = Card::new(tag);
        if let Some(t) = &opts.trace {
            t.comment(&format!("tag presented at {}", super::journal::now()));
            card = card.with_observer(t.observer());
        }
        let result = encode_tag(&mut card, journal, &opts.encode, &mut next_xuid, &mut |s| {
            on_event(BatchEvent::Step(s))
        });
        summary.exchanges += card.exchanges();
        match result {
            Ok(outcome) => {
                match &outcome {
                    Outcome::Encoded { recovered, .. } => {
                        summary.encoded += 1;
                        if *recovered {
                            summary.recovered += 1;
                        }
                        summary.exported = journal.export()?;
                    }
                    Outcome::AlreadyDone { .. } => summary.skipped += 1,
                }
                on_event(BatchEvent::Done {
                    outcome: &outcome,
                    elapsed: started.elapsed(),
                });
            }
            Err(ProvisionError::Journal(e)) => return Err(e),
            Err(ProvisionError::NoXuidLeft { .. }) => break,
            Err(error) => {
                if error.is_tear_off() {
                    summary.torn += 1;
                } else {
                    summary.failed += 1;
                }
                on_event(BatchEvent::Failed { error: &error });
            }
        }
        on_event(BatchEvent::RemoveTag);
        if let Err(e) = source.remove(card.into_transport()) {
            summary.stopped = Some(e.to_string());
            break;
        }
    }
    summary.exported = journal.export()?;
    let path = journal.dir().join("summary.json");
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "format": 1,
        "finished": super::journal::now(),
        // The verifier (`tag424 serve --batch DIR`) checks scans along this template.
        "template": opts.encode.template.to_string(),
        "summary": &summary,
    }))
    .unwrap_or_default();
    super::journal::write_atomic(&path, &json)
        .map_err(|source| JournalError::Io { path, source })?;
    Ok(summary)
}
