//! The batch loop: tag after tag from a reader, each encoded (or finished, or skipped), with
//! tag codes taken from the platform's list in order and never used twice.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::code_list::{CodeList, CodeListError, Header};

use super::encode::{EncodeOptions, Outcome, ProvisionError, Step};
use super::journal::{Journal, JournalError, TagEntry};

/// Reads the platform's batch download (a CSV with an `XUID` column) or, with
/// [`Header::None`], one code per line: the one code-list reader of `crate::tag_code`.
pub fn read_xuids(path: &Path, header: Header) -> Result<Vec<String>, CodeListError> {
    Ok(CodeList::read(path, header)?.codes())
}

/// Parses a code list's text (see [`CodeList::parse`]).
pub fn parse_xuids(text: &str, path: &str, header: Header) -> Result<Vec<String>, CodeListError> {
    Ok(CodeList::parse(text, path, header)?.codes())
}

/// The codes a batch folder was started with (`codes.csv`, XUID header), if recorded.
pub const CODES_FILE: &str = "codes.csv";

/// Why a code list does not fit the folder.
#[derive(Debug, thiserror::Error)]
pub enum CodesError {
    /// The folder was started with another code list and adding was not asked for.
    #[error("{dir} was started with another code list ({missing} of its {} not in this one, {} new)", crate::plural::count(*.started, "code is", "codes are"), crate::plural::count(*.new, "code here is", "codes here are"))]
    Differs {
        /// The batch folder.
        dir: String,
        /// Codes the folder was started with.
        started: usize,
        /// Of those, codes missing from the given list.
        missing: usize,
        /// Codes in the given list the folder does not have.
        new: usize,
    },
    /// A code list could not be read.
    #[error(transparent)]
    List(#[from] CodeListError),
    /// The folder's journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The codes of the folder: the ones it was started with, checked against `given`.
/// A new folder records `given`. A different list is refused unless `add` (then its new codes
/// are appended); `given = None` (`--generate-xuids` on a folder that has codes) resumes.
pub fn folder_codes(
    journal: &Journal,
    given: Option<Vec<String>>,
    add: bool,
) -> Result<Vec<String>, CodesError> {
    let path = journal.dir().join(CODES_FILE);
    let started = if path.exists() {
        Some(read_xuids(&path, Header::Required)?)
    } else {
        None
    };
    let codes = match (started, given) {
        (None, Some(g)) => g,
        (None, None) => Vec::new(),
        (Some(s), None) => return Ok(s),
        (Some(s), Some(g)) if s == g => return Ok(s),
        (Some(s), Some(g)) => {
            let known: std::collections::HashSet<&String> = s.iter().collect();
            let new: Vec<String> = g.iter().filter(|x| !known.contains(x)).cloned().collect();
            if !add {
                let given: std::collections::HashSet<&String> = g.iter().collect();
                return Err(CodesError::Differs {
                    dir: journal.dir().display().to_string(),
                    started: s.len(),
                    missing: s.iter().filter(|x| !given.contains(x)).count(),
                    new: new.len(),
                });
            }
            let mut all = s;
            all.extend(new);
            all
        }
    };
    let mut text = String::from("XUID\n");
    for c in &codes {
        crate::code_list::push_row(&mut text, &[c]).map_err(JournalError::from)?;
    }
    crate::private_fs::write_atomic(&path, text.as_bytes())
        .map_err(|source| JournalError::Io { path, source })?;
    Ok(codes)
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
    /// Waiting for the operator to present a tag.
    WaitingForTag,
    /// The tag left the field mid-sequence: the reader waits a moment for it to be put back
    /// (then [`BatchEvent::Retry`]), else the tag is reported failed (present it again).
    TagLeft,
    /// The encoder reached a step on the present tag.
    Step(Step),
    /// A tag was finished (encoded, or skipped as already done).
    Done {
        /// What happened to the tag.
        outcome: &'a Outcome,
        /// Time from the tag's arrival.
        elapsed: Duration,
    },
    /// A tag was refused or its encoding failed.
    Failed {
        /// Why.
        error: &'a ProvisionError,
    },
    /// An exchange was cut (the tag left the field, or its answer was lost) and the reader
    /// has the tag again: the batch resumes it from the journal and the chip's state.
    Retry {
        /// 1 for the first resume of this presentation of the tag.
        retry: usize,
        /// The cut exchange.
        error: &'a ProvisionError,
    },
    /// The tag can be taken off the reader.
    RemoveTag,
    /// After each tag's result: how many tags the journal holds unfinished now (a tag pulled
    /// from one reader and finished on another is no longer among them).
    Unfinished(usize),
}

/// Why a batch ended before its work was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum Stop {
    /// The operator pressed Ctrl-C (or the process got SIGTERM).
    Interrupted,
    /// The reader or the service stopped.
    Reader(String),
    /// The simulated reader ran out of tags.
    NoMoreTags,
}

/// Counts at the end of a batch: the journal's state at the end of the run against its state
/// at the start ([`RunLog`]), so they agree with `tag424 journal check` and keys.csv whatever
/// reader a tag went through, and each tag is counted once, by where it ended.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Tags done (verified) in the journal now that were not when the run started.
    pub encoded: usize,
    /// Of those, tags whose interrupted encoding was finished.
    pub recovered: usize,
    /// Tags presented that were done before this run: nothing written, no code used.
    pub skipped: usize,
    /// Tags the journal holds unfinished (planned, interrupted): present them again to
    /// finish them (`tag424 journal check` lists them).
    pub unfinished: usize,
    /// Tags refused or failed and not done since (the message says why; their codes are kept
    /// if planned); a tag not yet identified when it failed counts once per failure.
    pub failed: usize,
    /// Rows in the keys export.
    pub exported: usize,
    /// The keys export: `keys.csv`, or `keys.csv.age` for an encrypted batch.
    pub keys_file: &'static str,
    /// Codes of the list used by a tag (this run and before).
    pub codes_used: usize,
    /// Codes of the list not used yet.
    pub codes_left: usize,
    /// APDU exchanges with all tags.
    pub exchanges: usize,
    /// Times a tag was resumed on its reader after a cut exchange (the tag left the field,
    /// or the reader lost its answer) in this run.
    pub retries: usize,
    /// Tag presentations that needed at least one of those resumes.
    pub retried_tags: usize,
    /// A rehearsal: the batch accepts simulated chips ([`BatchOptions::simulated`]).
    pub simulated: bool,
    /// Why the batch ended before its work was done, if it did.
    pub stopped: Option<Stop>,
    /// The irreversible options the batch applies to every tag (ids of
    /// [`super::irreversible::ALL`], as its journal records them).
    pub irreversible: Vec<String>,
}

/// A tag the journal counts as done: verified and not reset since.
pub fn finished(t: &TagEntry) -> bool {
    t.verified && !t.reset
}

/// A tag the journal holds unfinished: planned, not verified, not reset.
pub fn unfinished(t: &TagEntry) -> bool {
    !t.verified && !t.reset
}

/// What a run saw that the journal does not hold, by tag: the journal's finished tags at the
/// start, and the tags finished after an interruption, skipped or refused during the run.
#[derive(Debug, Default, Clone)]
pub struct RunLog {
    started_done: HashSet<String>,
    /// The folder's summary.json said "simulated" when the run started.
    started_simulated: bool,
    recovered: HashSet<String>,
    skipped: HashSet<String>,
    failed: HashSet<String>,
    /// Failures before the tag was identified (no UID to count it by).
    failed_unknown: usize,
    /// APDU exchanges with all tags.
    pub exchanges: usize,
    /// Resumes after a cut exchange.
    retries: usize,
    /// Tag presentations with at least one resume.
    retried_tags: usize,
    /// Why the batch ended before its work was done, if it did.
    pub stopped: Option<Stop>,
}

impl RunLog {
    /// A run starting on `journal`.
    pub fn start(journal: &Journal) -> RunLog {
        RunLog {
            started_done: journal
                .tags()
                .filter(|t| finished(t))
                .map(|t| t.uid.clone())
                .collect(),
            started_simulated: was_simulated(journal.dir()),
            ..RunLog::default()
        }
    }

    /// Records that a tag presentation was resumed `retries` times after cut exchanges.
    pub fn retried(&mut self, retries: usize) {
        self.retries += retries;
        self.retried_tags += usize::from(retries > 0);
    }

    /// Records what happened to a tag presented in this run.
    pub fn tag(&mut self, result: &Result<Outcome, ProvisionError>) {
        match result {
            Ok(Outcome::Encoded {
                uid,
                recovered: true,
                ..
            }) => {
                self.recovered.insert(uid.clone());
            }
            Ok(Outcome::Encoded { .. }) => {}
            Ok(Outcome::AlreadyDone { uid, .. }) => {
                self.skipped.insert(uid.clone());
            }
            // Not a failure: the tag is in the journal (present it again) or untouched.
            Err(e) if e.is_interrupted() => {}
            // A fresh tag after the last code was taken: left untouched, the run ends.
            Err(ProvisionError::NoXuidLeft { .. }) => {}
            Err(e) => match e.uid() {
                Some(uid) => {
                    self.failed.insert(uid.to_string());
                }
                None => self.failed_unknown += 1,
            },
        }
    }

    /// The run's counts from the journal's state now. `simulated`: this run accepts simulated
    /// chips; a folder that did before stays a rehearsal (its keys.csv lists their keys).
    pub fn summary(&self, journal: &Journal, xuids: &[String], simulated: bool) -> Summary {
        let done: HashSet<&str> = journal
            .tags()
            .filter(|t| finished(t))
            .map(|t| t.uid.as_str())
            .collect();
        let new: HashSet<&str> = done
            .iter()
            .copied()
            .filter(|u| !self.started_done.contains(*u))
            .collect();
        let codes_used = xuids.iter().filter(|x| journal.xuid_used(x)).count();
        Summary {
            encoded: new.len(),
            recovered: self
                .recovered
                .iter()
                .filter(|u| new.contains(u.as_str()))
                .count(),
            skipped: self
                .skipped
                .iter()
                .filter(|u| !new.contains(u.as_str()))
                .count(),
            unfinished: journal.tags().filter(|t| unfinished(t)).count(),
            failed: self.failed_unknown
                + self
                    .failed
                    .iter()
                    .filter(|u| !done.contains(u.as_str()))
                    .count(),
            exported: 0,
            keys_file: journal.keys_file(),
            codes_used,
            codes_left: xuids.len() - codes_used,
            exchanges: self.exchanges,
            retries: self.retries,
            retried_tags: self.retried_tags,
            simulated: simulated || self.started_simulated,
            stopped: self.stopped.clone(),
            irreversible: super::irreversible::recorded(journal)
                .map(|c| c.ids())
                .unwrap_or_default(),
        }
    }
}

/// Options of a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// How each tag is encoded.
    pub encode: EncodeOptions,
    /// Stop after this many tags were encoded (default: when the codes run out).
    pub count: Option<usize>,
    /// Set (from a Ctrl-C handler) to stop after the current tag.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Record every APDU exchange (the `hardware-fixtures/` format).
    pub trace: Option<crate::card::trace::Trace>,
}

impl BatchOptions {
    /// The batch is a rehearsal: it accepts simulated chips (a `sim:` reader, or
    /// `--trust-simulator` for simulated chips behind pcscd), so its keys are not a real
    /// batch's. The one rule for summary.json's `simulated` and the summary's line.
    pub fn simulated(&self) -> bool {
        self.encode.trust_simulator
    }
}

/// The folder's summary.json says the batch accepted simulated chips (missing or unreadable:
/// no; it is rewritten at the end of every run).
fn was_simulated(dir: &Path) -> bool {
    std::fs::read(dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["simulated"] == true)
}

/// The summary of a batch folder's last run.
pub const SUMMARY_FILE: &str = "summary.json";

/// keys.csv, associate.csv and summary.json, from the journal: they always agree. Returns
/// the summary written.
pub fn write_results(
    journal: &Journal,
    xuids: &[String],
    opts: &BatchOptions,
    run: &RunLog,
) -> Result<Summary, JournalError> {
    let mut summary = run.summary(journal, xuids, opts.simulated());
    summary.exported = journal.export()?;
    let path = journal.dir().join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "format": 1,
        "finished": super::journal::now(),
        "simulated": summary.simulated,
        // The verifier (`tag424 serve --batch DIR`) checks scans along this template.
        "template": opts.encode.template.to_string(),
        // The chip's lifecycle options as the journal records them; `irreversible` names
        // those that cannot be undone on the tags.
        "lifecycle": journal.lifecycle().json(),
        "summary": &summary,
    }))
    .unwrap_or_default();
    super::journal::write_atomic(&path, &json)
        .map_err(|source| JournalError::Io { path, source })?;
    Ok(summary)
}
