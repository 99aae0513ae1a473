//! Whether a folder is a batch folder, and what its other files know that its journal does
//! not: the checks that refuse a journal that lost records (see [`super::chain`]) before a run
//! rewrites `keys.csv` from it or gives a used code to a new tag.

use std::collections::HashSet;
use std::path::Path;

use zeroize::Zeroizing;

use super::chain::{against_head, Head, HeadError, Link, HEAD_FILE};
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

/// One thing a batch folder's other files know that its journal does not (see
/// [`super::chain`]): a sentence of [`JournalError::Lost`] and of `tag424 journal check`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LostRecords {
    /// `journal.jsonl` is gone from a folder that holds these batch files.
    #[error(
        "{} is missing, but the folder holds {}: it is a batch folder whose journal was deleted or moved",
        JOURNAL_FILE,
        .files.join(", ")
    )]
    JournalGone {
        /// The batch files found, sorted.
        files: Vec<String>,
    },
    /// `journal.head` cannot be read.
    #[error(transparent)]
    Head(HeadError),
    /// `journal.head` counts more records than the journal has.
    #[error(
        "{} says the journal reached {head} records; {} has {journal}: its last {} records are missing",
        HEAD_FILE,
        JOURNAL_FILE,
        .head.saturating_sub(*.journal)
    )]
    HeadAhead {
        /// The head's record count.
        head: u64,
        /// The journal's.
        journal: u64,
    },
    /// The journal's record at the head's count has another link: another copy.
    #[error(
        "{} is not the journal {} recorded (its record {record} differs): it was replaced by another copy",
        JOURNAL_FILE,
        HEAD_FILE
    )]
    Replaced {
        /// The head's record count.
        record: u64,
    },
    /// `keys.csv` holds keys of tags the journal never verified.
    #[error(
        "{} holds the keys of {} tags the journal has no verified record of (codes {})",
        KEYS_CSV,
        .codes.len(),
        some_codes(.codes)
    )]
    KeysCsv {
        /// Their tag codes, in the file's order.
        codes: Vec<String>,
    },
    /// `associate.csv` lists tags the journal never verified.
    #[error(
        "{} lists {} tags the journal has no verified record of (codes {})",
        ASSOCIATE_CSV,
        .codes.len(),
        some_codes(.codes)
    )]
    AssociateCsv {
        /// Their tag codes, in the file's order.
        codes: Vec<String>,
    },
    /// `summary.json` counted more than the journal knows.
    #[error(
        "{} counted {codes_used} codes used and {exported} tags exported; the journal knows {codes} codes and {tags} tags",
        SUMMARY_FILE
    )]
    Summary {
        /// The summary's `codes_used`.
        codes_used: u64,
        /// The summary's `exported`.
        exported: u64,
        /// The codes the journal planned.
        codes: u64,
        /// The tags the journal knows.
        tags: u64,
    },
}

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
            what: vec![LostRecords::JournalGone { files: batch }],
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

fn some_codes(codes: &[String]) -> String {
    let shown: Vec<&str> = codes.iter().take(5).map(String::as_str).collect();
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
    head: Result<Option<Head>, HeadError>,
    links: &[Link],
) -> Result<Vec<LostRecords>, JournalError> {
    let mut lost = Vec::new();
    match head {
        Err(e) => lost.push(LostRecords::Head(e)),
        Ok(Some(h)) => lost.extend(against_head(&h, links)),
        Ok(None) => {}
    }
    let dir = j.dir();
    if let Some(text) = rows(&dir.join(KEYS_CSV))? {
        let verified: HashSet<&str> = j.verified_pairs.iter().map(|(x, _)| x.as_str()).collect();
        let codes: Vec<String> = cells(&text)
            .map(|(x, _)| x)
            .filter(|x| !verified.contains(x))
            .map(str::to_string)
            .collect();
        if !codes.is_empty() {
            lost.push(LostRecords::KeysCsv { codes });
        }
    }
    if let Some(text) = rows(&dir.join(ASSOCIATE_CSV))? {
        let codes: Vec<String> = cells(&text)
            .filter(|(x, uid)| {
                !j.verified_pairs
                    .contains(&((*x).to_string(), (*uid).to_string()))
            })
            .map(|(x, _)| x.to_string())
            .collect();
        if !codes.is_empty() {
            lost.push(LostRecords::AssociateCsv { codes });
        }
    }
    if let Some(text) = rows(&dir.join(SUMMARY_FILE))? {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let count = |k: &str| v["summary"][k].as_u64().unwrap_or(0);
        let tags = j.tags().count() as u64;
        let codes = j.planned_xuids.len() as u64;
        let (codes_used, exported) = (count("codes_used"), count("exported"));
        if codes_used > codes || exported > tags {
            lost.push(LostRecords::Summary {
                codes_used,
                exported,
                codes,
                tags,
            });
        }
    }
    Ok(lost)
}

/// Each thing the folder knows that its journal does not: typed, and in the words
/// `tag424 journal check` and a refused folder show, pinned to the exact text.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::chain::{write_line, GENESIS, HEAD_FILE};
    use std::error::Error as _;

    use super::super::chain::HeadError;
    use super::super::{Journal, JournalError, Record, ASSOCIATE_CSV, JOURNAL_FILE, KEYS_CSV};
    use super::{LostRecords, SUMMARY_FILE};

    /// A folder whose journal holds one record, a verified tag (code `A1`), and `files`
    /// beside it.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = Record::Verified {
            uid: "04112233445566".into(),
            xuid: "A1".into(),
            read_ctr: 0,
            time: 2,
        };
        let mut out = Vec::new();
        write_line(&r, 1, &GENESIS, &mut out).expect("write");
        std::fs::write(tmp.path().join(JOURNAL_FILE), &out).expect("write");
        for (name, text) in files {
            std::fs::write(tmp.path().join(name), text).expect("write");
        }
        tmp
    }

    fn lost(dir: &Path) -> Vec<String> {
        Journal::check(dir)
            .expect("check")
            .lost
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn each_lost_record_reads_as_it_always_did() {
        let d = folder(&[(HEAD_FILE, r#"{"format":1,"records":5,"chain":"00"}"#)]);
        assert_eq!(
            lost(d.path()),
            ["journal.head says the journal reached 5 records; journal.jsonl has 1: its last 4 records are missing"]
        );
        let d = folder(&[(HEAD_FILE, r#"{"format":1,"records":1,"chain":"00"}"#)]);
        assert_eq!(
            lost(d.path()),
            ["journal.jsonl is not the journal journal.head recorded (its record 1 differs): it was replaced by another copy"]
        );
        let d = folder(&[(HEAD_FILE, "x")]);
        assert_eq!(
            lost(d.path()),
            [format!(
                "{} is damaged (expected value at line 1 column 1)",
                d.path().join(HEAD_FILE).display()
            )]
        );
        let d = folder(&[]);
        std::fs::create_dir(d.path().join(HEAD_FILE)).expect("mkdir");
        assert_eq!(
            lost(d.path()),
            [format!(
                "{} cannot be read (Is a directory (os error 21))",
                d.path().join(HEAD_FILE).display()
            )]
        );
        let d = folder(&[
            (
                KEYS_CSV,
                "xuid,uid\nA1,04112233445566\nB1,x\nB2,x\nB3,x\nB4,x\nB5,x\nB6,x\n",
            ),
            (
                ASSOCIATE_CSV,
                "xuid,uid\nA1,04112233445566\nA1,04000000000000\n",
            ),
            (SUMMARY_FILE, r#"{"summary":{"codes_used":3,"exported":1}}"#),
        ]);
        assert_eq!(
            lost(d.path()),
            [
                "keys.csv holds the keys of 6 tags the journal has no verified record of (codes B1, B2, B3, B4, B5, …)",
                "associate.csv lists 1 tags the journal has no verified record of (codes A1)",
                "summary.json counted 3 codes used and 1 tags exported; the journal knows 0 codes and 0 tags",
            ]
        );
        let gone = tempfile::tempdir().expect("tempdir");
        std::fs::write(gone.path().join(KEYS_CSV), "xuid\n").expect("write");
        std::fs::write(gone.path().join(HEAD_FILE), "{}").expect("write");
        assert_eq!(
            lost(gone.path()),
            ["journal.jsonl is missing, but the folder holds journal.head, keys.csv: it is a batch folder whose journal was deleted or moved"]
        );
    }

    fn lost_typed(dir: &Path) -> Vec<LostRecords> {
        Journal::check(dir).expect("check").lost
    }

    /// Each lost record is its own variant with the values that tell it; an unreadable head
    /// keeps the system's or the JSON reader's error as its source.
    #[test]
    fn each_lost_record_is_typed() {
        let d = folder(&[(HEAD_FILE, r#"{"format":1,"records":5,"chain":"00"}"#)]);
        assert!(
            matches!(
                lost_typed(d.path())[..],
                [LostRecords::HeadAhead {
                    head: 5,
                    journal: 1
                }]
            ),
            "{:?}",
            lost_typed(d.path())
        );
        let d = folder(&[(HEAD_FILE, r#"{"format":1,"records":1,"chain":"00"}"#)]);
        assert!(matches!(
            lost_typed(d.path())[..],
            [LostRecords::Replaced { record: 1 }]
        ));
        let d = folder(&[(HEAD_FILE, "x")]);
        let head = d.path().join(HEAD_FILE);
        match &lost_typed(d.path())[..] {
            [e @ LostRecords::Head(HeadError::Damaged { path, source })] => {
                assert_eq!(path, &head);
                assert!(source.is_syntax(), "{source}");
                // `Head` is the head's error itself (transparent): its source is the JSON's.
                let inner = e.source();
                assert!(
                    inner.is_some_and(|s| s.is::<serde_json::Error>()),
                    "{inner:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        let d = folder(&[]);
        std::fs::create_dir(d.path().join(HEAD_FILE)).expect("mkdir");
        assert!(
            matches!(
                &lost_typed(d.path())[..],
                [LostRecords::Head(HeadError::Unreadable { source, .. })]
                    if source.kind() == std::io::ErrorKind::IsADirectory
            ),
            "{:?}",
            lost_typed(d.path())
        );
        let d = folder(&[
            (KEYS_CSV, "xuid,uid\nA1,04112233445566\nB1,x\nB2,x\n"),
            (ASSOCIATE_CSV, "xuid,uid\nA1,04000000000000\n"),
            (SUMMARY_FILE, r#"{"summary":{"codes_used":3,"exported":1}}"#),
        ]);
        match &lost_typed(d.path())[..] {
            [LostRecords::KeysCsv { codes: keys }, LostRecords::AssociateCsv { codes: assoc }, LostRecords::Summary {
                codes_used: 3,
                exported: 1,
                codes: 0,
                tags: 0,
            }] => {
                assert_eq!(keys, &["B1", "B2"]);
                assert_eq!(assoc, &["A1"]);
            }
            other => panic!("{other:?}"),
        }
        // Refused by every reader, with the same typed list.
        match Journal::read_only(d.path()) {
            Err(JournalError::Lost { dir, what }) => {
                assert_eq!(dir, d.path());
                assert_eq!(what.len(), 3);
                assert!(matches!(what[0], LostRecords::KeysCsv { .. }));
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let gone = tempfile::tempdir().expect("tempdir");
        std::fs::write(gone.path().join(KEYS_CSV), "xuid\n").expect("write");
        assert!(matches!(
            &lost_typed(gone.path())[..],
            [LostRecords::JournalGone { files }] if files == &["keys.csv"]
        ));
    }
}
