//! Every journal record carries its sequence number and a hash chain, and the folder keeps a
//! high-water mark of how far the journal reached (`journal.head`), so that a journal that lost
//! records, whole ones included, is told from a whole one.
//!
//! A record's line is its JSON object with two more members at its end:
//! `{"event":…,…,"seq":N,"chain":"HEX"}`. `seq` is the record's position in the journal
//! (from 1) and `chain` is SHA-256 of the previous record's chain (32 zero bytes before the
//! first record) followed by the line's bytes up to the `,"chain":"` that starts the member,
//! that is, the record and its `seq` exactly as written. A record of an older tag424 has
//! neither: its link is SHA-256 of the previous link and its whole line, and its position is
//! its `seq`. The chain is a fingerprint of the journal up to each record, not a secret: it
//! detects loss and replacement, not a forger who can write the folder.
//!
//! `journal.head` (owner-only, replaced atomically after each append, which is fsync'd
//! first; the head's data is fsync'd, its rename may lag) holds the record count and the last link. On opening, the journal must
//! reach the head: a head ahead of the journal, or a journal whose record at the head's count
//! has another link, lost records or was replaced. A journal one record past its head is a
//! crash between the two writes (never a loss: the journal only grows).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{LostRecords, Record};

/// The file holding how far the journal reached.
pub const HEAD_FILE: &str = "journal.head";

/// A record's link in the chain.
pub type Link = [u8; 32];

/// The link before the first record.
pub const GENESIS: Link = [0; 32];

const CHAIN_MEMBER: &[u8] = br#","chain":""#;

/// Appends `record`'s line (with `seq` and `chain`, and the newline) to `out` and returns its
/// link.
pub(super) fn write_line(
    record: &Record,
    seq: u64,
    prev: &Link,
    out: &mut Vec<u8>,
) -> Result<Link, serde_json::Error> {
    let start = out.len();
    serde_json::to_writer(&mut *out, record)?;
    // A record is a JSON object: its closing brace is replaced by the two members.
    if out.pop() != Some(b'}') {
        return Err(serde::ser::Error::custom(
            "a journal record is not an object",
        ));
    }
    out.extend_from_slice(format!(",\"seq\":{seq}").as_bytes());
    let link = link_of(prev, &out[start..]);
    out.extend_from_slice(CHAIN_MEMBER);
    out.extend_from_slice(hex::encode(link).as_bytes());
    out.extend_from_slice(b"\"}\n");
    Ok(link)
}

fn link_of(prev: &Link, body: &[u8]) -> Link {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

#[derive(Deserialize)]
struct Meta {
    seq: Option<u64>,
    chain: Option<String>,
}

/// Why a record line does not follow the record before it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The line's `seq` and `chain` members do not read.
    #[error(transparent)]
    Meta(serde_json::Error),
    /// One of `seq` and `chain` without the other.
    #[error("it has one of \"seq\" and \"chain\" without the other")]
    HalfChained,
    /// A record numbered past its position: the records between are missing.
    #[error(
        "it is record {written} but the journal has only {} records before it: {} records before it are missing",
        .at.saturating_sub(1),
        .written.saturating_sub(*.at)
    )]
    Missing {
        /// The `seq` written in the line.
        written: u64,
        /// Its position in the journal (from 1).
        at: u64,
    },
    /// A record numbered before its position: it stands twice.
    #[error("it is record {written} but stands at position {at}: a record was copied in twice")]
    Twice {
        /// The `seq` written in the line.
        written: u64,
        /// Its position in the journal (from 1).
        at: u64,
    },
    /// `chain` is not the line's last member.
    #[error("its \"chain\" is not the last member of the line")]
    ChainNotLast,
    /// `chain` is not the link of the record before and this line.
    #[error(
        "its chain does not follow the record before it: a record before it was removed or changed"
    )]
    Changed,
}

/// A record line that does not follow the one before it.
#[derive(Debug)]
pub(super) struct Broken {
    /// What is wrong.
    pub what: ChainError,
    /// The position and link the line claims, to check the lines after it against (so one
    /// gap is reported once).
    pub claims: Option<(u64, Link)>,
}

/// Checks a complete record line (without its newline) at position `seq` (from 1) after
/// `prev`; returns its link, or what is wrong with it.
pub(super) fn check_line(line: &[u8], seq: u64, prev: &Link) -> Result<Link, Broken> {
    let broken = |what: ChainError, claims| Broken { what, claims };
    let meta: Meta = serde_json::from_slice(line).map_err(|e| broken(ChainError::Meta(e), None))?;
    let (written_seq, chain) = match (meta.seq, meta.chain) {
        // A record of an older tag424: chained by its whole line, numbered by its position.
        (None, None) => return Ok(link_of(prev, line)),
        (Some(s), Some(c)) => (s, c),
        _ => return Err(broken(ChainError::HalfChained, None)),
    };
    let claimed: Option<Link> = hex::decode(&chain).ok().and_then(|b| b.try_into().ok());
    let claims = claimed.map(|l| (written_seq, l));
    if written_seq != seq {
        let (written, at) = (written_seq, seq);
        return Err(broken(
            if written_seq > seq {
                ChainError::Missing { written, at }
            } else {
                ChainError::Twice { written, at }
            },
            claims,
        ));
    }
    let Some(cut) = line
        .windows(CHAIN_MEMBER.len())
        .rposition(|w| w == CHAIN_MEMBER)
    else {
        return Err(broken(ChainError::ChainNotLast, claims));
    };
    let tail = &line[cut + CHAIN_MEMBER.len()..];
    let link = link_of(prev, &line[..cut]);
    let expected = hex::encode(link);
    if tail != [expected.as_bytes(), b"\"}"].concat().as_slice() || chain != expected {
        return Err(broken(ChainError::Changed, claims));
    }
    Ok(link)
}

/// How far the journal reached, as `journal.head` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The file's format.
    pub format: u32,
    /// The journal's record count.
    pub records: u64,
    /// The last record's link, hex (64 zeros for an empty journal).
    pub chain: String,
}

impl Head {
    /// The head of a journal of `records` records whose last link is `link`.
    pub fn new(records: u64, link: &Link) -> Head {
        Head {
            format: 1,
            records,
            chain: hex::encode(link),
        }
    }
}

/// Why `journal.head` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The file is there but cannot be read.
    #[error("{} cannot be read ({source})", .path.display())]
    Unreadable {
        /// The head file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a head.
    #[error("{} is damaged ({source})", .path.display())]
    Damaged {
        /// The head file.
        path: PathBuf,
        /// What the JSON reader said.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads `dir/journal.head`: `Ok(None)` when there is none (a folder of an older tag424, or
/// a new one), an error when it is unreadable or damaged.
pub(super) fn read_head(dir: &Path) -> Result<Option<Head>, HeadError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| HeadError::Damaged { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HeadError::Unreadable { path, source }),
    }
}

/// Replaces `dir/journal.head` atomically and durably (owner-only).
pub(super) fn write_head(dir: &Path, head: &Head) -> std::io::Result<()> {
    let mut b = serde_json::to_vec(head).map_err(std::io::Error::other)?;
    b.push(b'\n');
    // The journal's record is fsync'd before; the head may lag behind it after a power cut
    // (a journal past its head is accepted), so the folder's fsync is not needed here.
    crate::private_fs::replace_atomic(&dir.join(HEAD_FILE), &b)
}

/// What the head says of a journal with these `links` (one per record): `None` when the
/// journal reaches it, else what was lost.
pub(super) fn against_head(head: &Head, links: &[Link]) -> Option<LostRecords> {
    let n = links.len() as u64;
    if head.records > n {
        return Some(LostRecords::HeadAhead {
            head: head.records,
            journal: n,
        });
    }
    let at = match head.records {
        0 => GENESIS,
        r => links[(r - 1) as usize],
    };
    if hex::encode(at) != head.chain.to_ascii_lowercase() {
        return Some(LostRecords::Replaced {
            record: head.records,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_and_a_gap_or_change_is_named() {
        let r = Record::KeysChanged {
            uid: "04112233445566".into(),
            time: 1,
        };
        let mut out = Vec::new();
        let l1 = write_line(&r, 1, &GENESIS, &mut out).unwrap();
        let first = out.len();
        let l2 = write_line(&r, 2, &l1, &mut out).unwrap();
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        assert_eq!(check_line(lines[0], 1, &GENESIS).unwrap(), l1);
        assert_eq!(check_line(lines[1], 2, &l1).unwrap(), l2);
        // The record is still a record to serde.
        let back: Record = serde_json::from_slice(lines[0]).unwrap();
        assert_eq!(back, r);
        // The second record alone: missing its predecessor.
        let e = check_line(lines[1], 1, &GENESIS).unwrap_err().what;
        assert!(
            matches!(e, ChainError::Missing { written: 2, at: 1 }),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("1 records before it are missing"),
            "{e}"
        );
        // The first record again at position 2: copied in twice.
        let e = check_line(lines[0], 2, &l1).unwrap_err().what;
        assert!(
            matches!(e, ChainError::Twice { written: 1, at: 2 }),
            "{e:?}"
        );
        // A changed byte.
        let mut changed = out[first..out.len() - 1].to_vec();
        changed[30] ^= 1;
        assert!(check_line(&changed, 2, &l1).is_err());
        // An older tag424's line is chained by its bytes.
        let legacy = br#"{"event":"keys_changed","uid":"04112233445566","time":1}"#;
        assert_eq!(check_line(legacy, 5, &l2).unwrap(), link_of(&l2, legacy));
        // The head.
        let h = Head::new(2, &l2);
        assert!(against_head(&h, &[l1, l2]).is_none());
        assert!(against_head(&h, &[l1, l2, l1]).is_none());
        assert!(matches!(
            against_head(&h, &[l1]),
            Some(LostRecords::HeadAhead {
                head: 2,
                journal: 1
            })
        ));
        assert!(matches!(
            against_head(&h, &[l2, l1]),
            Some(LostRecords::Replaced { record: 2 })
        ));
        assert!(against_head(&Head::new(0, &GENESIS), &[]).is_none());
    }
}
