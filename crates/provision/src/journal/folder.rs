//! Whether a folder is a batch folder, and what its other files know that its journal does
//! not: the checks that refuse a journal that lost records (see [`super::chain`]) before a run
//! rewrites `keys.csv` from it or gives a used code to a new tag.

use std::collections::HashSet;
use std::path::Path;

use zeroize::Zeroizing;

use super::chain::{against_head, Head, Link, HEAD_FILE};
use super::{io, Journal, JournalError, ASSOCIATE_CSV, JOURNAL_FILE, KEYS_CSV, KEYS_CSV_AGE};
use crate::batch::CODES_FILE;
use crate::lock::LOCK_FILE;

/// The summary a run writes in the folder.
pub const SUMMARY_FILE: &str = "summary.json";

/// Files only a batch folder has: with no journal beside them, the journal is lost.
const BATCH_FILES: [&str; 6] = [
    HEAD_FILE,
    KEYS_CSV,
    KEYS_CSV_AGE,
    ASSOCIATE_CSV,
    SUMMARY_FILE,
    CODES_FILE,
];

/// What a folder without a journal may hold and still be started as a batch: the lock file
/// (of a run that stopped before its journal was made), the default simulated tags, and what
/// a file manager leaves in a folder it showed.
const MAY_PRECEDE: [&str; 5] = [
    LOCK_FILE,
    "simulated-tags",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
];

/// Refuses `dir` as a batch folder to write: a file, a folder of other files, or a batch folder
/// whose journal is gone. A missing folder, an empty one and a batch folder pass.
pub(super) fn refuse_foreign(dir: &Path) -> Result<(), JournalError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
        Ok(m) if !m.is_dir() => return Err(JournalError::NotAFolder(dir.to_path_buf())),
        Ok(_) => {}
    }
    if std::fs::symlink_metadata(dir.join(JOURNAL_FILE)).is_ok() {
        return Ok(());
    }
    let mut batch = Vec::new();
    let mut other = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = e
            .map_err(io(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name == JOURNAL_FILE {
            // Another run made it since the check above: a batch folder (the lock decides).
            return Ok(());
        }
        if BATCH_FILES.contains(&name.as_str()) || name.starts_with("journal.torn-") {
            batch.push(name);
        } else if !MAY_PRECEDE.contains(&name.as_str()) {
            other.push(name);
        }
    }
    batch.sort();
    other.sort();
    if !batch.is_empty() {
        return Err(JournalError::Lost {
            dir: dir.to_path_buf(),
            what: vec![format!(
                "{JOURNAL_FILE} is missing, but the folder holds {}: it is a batch folder whose journal was deleted or moved",
                batch.join(", ")
            )],
        });
    }
    if !other.is_empty() {
        let shown: Vec<&str> = other.iter().take(3).map(String::as_str).collect();
        let more = other.len().saturating_sub(3);
        return Err(JournalError::Foreign {
            dir: dir.to_path_buf(),
            found: if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            },
        });
    }
    Ok(())
}

/// The data rows of a CSV export in the folder (header skipped), first cell and second cell;
/// `None` when the file is not there.
fn rows(path: &Path) -> Result<Option<Zeroizing<String>>, JournalError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(Zeroizing::new(
            String::from_utf8_lossy(&Zeroizing::new(b)).into_owned(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn cells(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut c = l.split(',').map(|c| c.trim().trim_matches('"'));
            (c.next().unwrap_or(""), c.next().unwrap_or(""))
        })
}

fn some_codes(codes: &[&str]) -> String {
    let shown: Vec<&str> = codes.iter().take(5).copied().collect();
    if codes.len() > 5 {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// What the folder's other files know that the journal does not, one sentence each: the head
/// ahead of the journal or naming another journal, rows of `keys.csv` and `associate.csv` of
/// tags the journal never verified (exports are written from the journal, after it), and a
/// `summary.json` that counted more. Empty: the journal
/// holds everything the folder knows.
pub(super) fn lost_records(
    j: &Journal,
    head: &Result<Option<Head>, String>,
    links: &[Link],
) -> Result<Vec<String>, JournalError> {
    let mut lost = Vec::new();
    match head {
        Err(e) => lost.push(e.clone()),
        Ok(Some(h)) => lost.extend(against_head(h, links)),
        Ok(None) => {}
    }
    let dir = j.dir();
    if let Some(text) = rows(&dir.join(KEYS_CSV))? {
        let verified: HashSet<&str> = j.verified_pairs.iter().map(|(x, _)| x.as_str()).collect();
        let unknown: Vec<&str> = cells(&text)
            .map(|(x, _)| x)
            .filter(|x| !verified.contains(x))
            .collect();
        if !unknown.is_empty() {
            lost.push(format!(
                "{KEYS_CSV} holds the keys of {} tags the journal has no verified record of (codes {})",
                unknown.len(),
                some_codes(&unknown)
            ));
        }
    }
    if let Some(text) = rows(&dir.join(ASSOCIATE_CSV))? {
        let unknown: Vec<&str> = cells(&text)
            .filter(|(x, uid)| {
                !j.verified_pairs
                    .contains(&((*x).to_string(), (*uid).to_string()))
            })
            .map(|(x, _)| x)
            .collect();
        if !unknown.is_empty() {
            lost.push(format!(
                "{ASSOCIATE_CSV} lists {} tags the journal has no verified record of (codes {})",
                unknown.len(),
                some_codes(&unknown)
            ));
        }
    }
    if let Some(text) = rows(&dir.join(SUMMARY_FILE))? {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let count = |k: &str| v["summary"][k].as_u64().unwrap_or(0);
        let tags = j.tags().count() as u64;
        let codes = j.planned_xuids.len() as u64;
        if count("codes_used") > codes || count("exported") > tags {
            lost.push(format!(
                "{SUMMARY_FILE} counted {} codes used and {} tags exported; the journal knows {codes} codes and {tags} tags",
                count("codes_used"),
                count("exported"),
            ));
        }
    }
    Ok(lost)
}
