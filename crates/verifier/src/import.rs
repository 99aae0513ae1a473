//! Reading batches: `tag424 batch` output directories (keys.csv, associate.csv, cuids.csv, the
//! key journal for the meta read key and the read-back counter, summary.json for the URL
//! template) and Associate Data CSV files as the platform takes them.
//!
//! Associate Data: a header `XUID` plus any of `KEY`, `UID`, `CUID`, `TAGNAME`, `RESPONSE`,
//! `STATUS` (`Active`/`Inactive`). A blank cell leaves the value unchanged. A column this
//! verifier does not know, or one of the platform's Flex Alpha columns it does not implement
//! (`ASSIGNED`, `NFT…`), is an error naming it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::catalog::{CatalogError, Tag};
use super::query::parse_uid;
use super::text;
use crate::crypto::AesKey;
use crate::provision::code_list::{CodeList, Header};
use crate::provision::journal::{Journal, JournalError, JOURNAL_FILE, KEYS_CSV, KEYS_CSV_AGE};
use crate::provision::sealed::Identity;

/// Columns of an Associate Data file (besides `XUID`).
pub const COLUMNS: [&str; 6] = ["KEY", "UID", "CUID", "TAGNAME", "RESPONSE", "STATUS"];
/// The platform's columns this verifier does not implement (Flex Alpha).
const UNSUPPORTED: [&str; 6] = [
    "ASSIGNED",
    "NFTCONTRACT",
    "NFTTOKEN",
    "NFTCHAIN",
    "NFTOWNER",
    "NFTMETA",
];

/// Tags merged by XUID, in first-seen order, with where each tag comes from.
#[derive(Default)]
struct TagMerge {
    order: Vec<String>,
    tags: HashMap<String, Tag>,
    /// The tag codes of the batch's key sources (its journal, a keys file: a CSV with a KEY
    /// column), when it has any: they are the batch.
    members: HashSet<String>,
    /// The key sources read, for messages.
    key_sources: Vec<String>,
    /// Rows of Associate Data without a KEY column: file, line, tag code.
    associated: Vec<(PathBuf, usize, String)>,
}

impl TagMerge {
    fn entry(&mut self, xuid: &str) -> &mut Tag {
        if !self.tags.contains_key(xuid) {
            self.order.push(xuid.to_string());
        }
        self.tags
            .entry(xuid.to_string())
            .or_insert_with(|| Tag::new(xuid))
    }

    /// The batch's tags. With a key source, the batch is its tags: an Associate Data row
    /// naming another tag code is refused with its file and line (the platform: "only
    /// associate Core Data to an XUID that is within that Batch"), never made a keyless tag.
    fn into_tags(mut self) -> Result<Vec<Tag>, CatalogError> {
        if !self.key_sources.is_empty() {
            if let Some((path, line, xuid)) = self
                .associated
                .iter()
                .find(|(_, _, x)| !self.members.contains(x))
            {
                return Err(CatalogError::Csv {
                    path: path.clone(),
                    line: *line,
                    what: format!(
                        "tag code {xuid} is in no batch: Associate Data only adds data to tags of its batch, \
                         whose tags are those of {} (the platform: \"only associate Core Data to an XUID \
                         that is within that Batch\"); remove the row, or import the tag's key with its batch",
                        self.key_sources.join(", ")
                    ),
                });
            }
        }
        Ok(self
            .order
            .iter()
            .filter_map(|x| self.tags.remove(x))
            .collect())
    }
}

/// Parses a STATUS cell.
pub fn parse_status(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "active" => Some(true),
        "inactive" => Some(false),
        _ => None,
    }
}

/// Reads one Associate Data CSV file into `merge`.
fn read_csv(path: &Path, merge: &mut TagMerge) -> Result<usize, CatalogError> {
    let io = |source| CatalogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let csv_err = |line: usize, what: String| CatalogError::Csv {
        path: path.to_path_buf(),
        line,
        what,
    };
    let csv_text = |line: usize, source| CatalogError::CsvText {
        path: path.to_path_buf(),
        line,
        source,
    };
    // The one code-list reader and tag-code rule (crate::tag_code), shared with `batch`.
    let list = CodeList::parse(&text, &path.display().to_string(), Header::Required)
        .map_err(CatalogError::CodeList)?;
    let headers = &list.header;
    for h in headers {
        if UNSUPPORTED.contains(&h.as_str()) {
            return Err(csv_err(
                1,
                format!("column {h} is a platform (Flex Alpha) column this verifier does not implement; remove it"),
            ));
        }
        if h != "XUID" && !COLUMNS.contains(&h.as_str()) {
            // Named only when it looks like a column name: the file may be anything.
            let looks_like_a_name = h.len() <= 32
                && h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b' ');
            let which = if looks_like_a_name {
                format!("unknown column {h:?}")
            } else {
                "an unknown column (not shown)".to_string()
            };
            return Err(csv_err(
                1,
                format!("{which}: expected XUID and any of {}", COLUMNS.join(", ")),
            ));
        }
    }
    if headers.len() < 2 {
        return Err(csv_err(
            1,
            format!(
                "the header needs at least one of {} next to XUID",
                COLUMNS.join(", ")
            ),
        ));
    }
    let cell = |rec: &[String], name: &str| -> Option<String> {
        list.column(name)
            .and_then(|i| rec.get(i))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let keys_file = list.column("KEY").is_some();
    if keys_file {
        merge.key_sources.push(path.display().to_string());
    }
    let mut n = 0;
    for row in &list.rows {
        let (line, xuid, rec) = (row.line, row.code.as_str(), row.fields.as_slice());
        if keys_file {
            merge.members.insert(xuid.to_string());
        } else {
            merge
                .associated
                .push((path.to_path_buf(), line, xuid.to_string()));
        }
        let t = merge.entry(xuid);
        if let Some(k) = cell(rec, "KEY") {
            let key: AesKey = k.parse().map_err(|e| csv_err(line, format!("KEY: {e}")))?;
            t.key = Some(key);
        }
        if let Some(u) = cell(rec, "UID") {
            let uid = parse_uid(&u.to_ascii_uppercase())
                .ok_or_else(|| csv_err(line, "UID: expected 14 hex digits".into()))?;
            t.uid = Some(uid);
        }
        if let Some(c) = cell(rec, "CUID") {
            text::check("CUID", &c, text::MAX_CUID).map_err(|e| csv_text(line, e))?;
            t.cuid = Some(c);
        }
        if let Some(name) = cell(rec, "TAGNAME") {
            text::check("TAGNAME", &name, text::MAX_TAGNAME).map_err(|e| csv_text(line, e))?;
            t.tagname = Some(name);
        }
        if let Some(r) = cell(rec, "RESPONSE") {
            if r.trim().is_empty() {
                return Err(csv_err(
                    line,
                    "RESPONSE is only spaces: leave the cell empty to keep the tag group's rules"
                        .into(),
                ));
            }
            super::subtags::Response::parse(&r).map_err(|source| CatalogError::CsvResponse {
                path: path.to_path_buf(),
                line,
                source,
            })?;
            t.default_response = Some(r);
        }
        if let Some(s) = cell(rec, "STATUS") {
            t.active = Some(
                parse_status(&s)
                    .ok_or_else(|| csv_err(line, "STATUS: expected Active or Inactive".into()))?,
            );
        }
        n += 1;
    }
    Ok(n)
}

/// Files read for a `tag424 batch` output directory when present: `keys.csv`, `associate.csv`
/// and `cuids.csv`. The directory needs `keys.csv` or, for an encrypted batch, `keys.csv.age`
/// (whose keys are read from the journal with the identity).
pub const DIR_FILES: [&str; 3] = ["keys.csv", "associate.csv", "cuids.csv"];

/// A batch as read from its sources.
#[derive(Debug, Default)]
pub struct BatchRead {
    /// The tags, merged by tag code in first-seen order.
    pub tags: Vec<Tag>,
    /// The template recorded in the directory's `summary.json`, if any.
    pub template: Option<String>,
    /// The journal records the served tags as LRP tags (`batch --lrp-irreversible`).
    pub lrp: bool,
    /// The journal records the batch's SDMReadCtrLimit (`batch --read-counter-limit`).
    pub read_ctr_limit: Option<u32>,
}

/// Reads the key journal of a batch directory (the one journal reader,
/// [`Journal::read_only_with`]): every verified tag that was not reset, with its SDM file read
/// key, UID, meta read key and read-back counter. An encrypted batch (`keys.csv.age`) needs
/// `identity`. Returns whether the served tags were planned as LRP tags.
fn read_journal(
    dir: &Path,
    identity: Option<&Identity>,
    merge: &mut TagMerge,
) -> Result<(bool, Option<u32>), CatalogError> {
    let journal = match Journal::read_only_with(dir, identity) {
        Ok(j) => j,
        Err(JournalError::NotABatch(_)) => return Ok((false, None)),
        Err(e) => {
            return Err(CatalogError::Journal {
                path: dir.join(JOURNAL_FILE),
                source: e,
            })
        }
    };
    if journal.sealed_to().is_some() && identity.is_none() {
        return Err(CatalogError::Invalid(format!(
            "{}: an encrypted batch (keys.csv.age); give --identity FILE, the age identity file of one of its recipients",
            dir.display()
        )));
    }
    let (mut any_lrp, mut any_aes) = (false, false);
    merge
        .key_sources
        .push(dir.join(JOURNAL_FILE).display().to_string());
    for t in journal.tags().filter(|t| t.verified && !t.reset) {
        merge.members.insert(t.xuid.clone());
        let keys = t.keys().map_err(|source| CatalogError::JournalKeys {
            dir: dir.to_path_buf(),
            source,
        })?;
        let uid = parse_uid(&t.uid).ok_or_else(|| {
            CatalogError::Invalid(format!(
                "{}: tag {:?} has a UID that is not 14 hex digits",
                dir.display(),
                t.xuid
            ))
        })?;
        let tag = merge.entry(&t.xuid);
        tag.key = Some(keys.sdm_file_read().clone());
        tag.uid.get_or_insert(uid);
        tag.meta_key = Some(keys.sdm_meta_read().clone());
        tag.read_ctr = t.read_ctr;
        any_lrp |= t.lrp;
        any_aes |= !t.lrp;
    }
    if any_lrp && any_aes {
        // One batch is one mode (`batch --lrp-irreversible` is per run).
        return Err(CatalogError::Invalid(format!(
            "{}: the journal holds both LRP and AES tags; serve them as two batches",
            dir.join(JOURNAL_FILE).display()
        )));
    }
    Ok((any_lrp, journal.lifecycle().read_ctr_limit))
}

/// The URL template a batch folder's `summary.json` records (`None`: no summary.json or no template
/// in it); an unreadable summary is an error.
pub fn read_summary_template(dir: &Path) -> Result<Option<String>, CatalogError> {
    let path = dir.join("summary.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| CatalogError::Json {
            path: path.clone(),
            source,
        })?;
    Ok(v.get("template")
        .and_then(|t| t.as_str())
        .map(str::to_string))
}

/// Reads a batch from a `tag424 batch` output directory and/or CSV files. `identity` opens
/// the keys of an encrypted batch directory.
pub fn read_batch_sources(
    sources: &[PathBuf],
    identity: Option<&Identity>,
) -> Result<BatchRead, CatalogError> {
    let mut merge = TagMerge::default();
    let mut template = None;
    let mut lrp = false;
    let mut read_ctr_limit = None;
    for src in sources {
        if src.is_dir() {
            if !src.join(KEYS_CSV).exists() && !src.join(KEYS_CSV_AGE).exists() {
                return Err(CatalogError::Invalid(format!(
                    "{}: no keys.csv nor keys.csv.age (is this a `tag424 batch` output directory?)",
                    src.display()
                )));
            }
            // A batch folder's keys come from its journal: a keys.csv beside it is an export
            // of it, possibly stale (an encrypted batch's plain copy from `tag424 export`).
            let has_journal = src.join(JOURNAL_FILE).is_file();
            for f in DIR_FILES {
                let p = src.join(f);
                if p.exists() && !(has_journal && f == KEYS_CSV) {
                    read_csv(&p, &mut merge)?;
                }
            }
            let (l, limit) = read_journal(src, identity, &mut merge)?;
            lrp |= l;
            read_ctr_limit = read_ctr_limit.or(limit);
            if let Some(t) = read_summary_template(src)? {
                template = Some(t);
            }
        } else {
            read_csv(src, &mut merge)?;
        }
    }
    Ok(BatchRead {
        tags: merge.into_tags()?,
        template,
        lrp,
        read_ctr_limit,
    })
}

/// A batch name from its sources: the canonical path of the first one.
pub fn batch_name(sources: &[PathBuf]) -> String {
    sources
        .iter()
        .map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associate_data_columns() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("k.csv");
        std::fs::write(&k, "XUID,KEY\nabc,00112233445566778899AABBCCDDEEFF\ndef,\n").unwrap();
        let c = d.path().join("c.csv");
        std::fs::write(
            &c,
            "xuid,cuid,TAGNAME,RESPONSE,STATUS\nabc,Bottle 1,My Tag,Recalled {xuid},Inactive\ndef,,,,\n",
        )
        .unwrap();
        let tags = read_batch_sources(&[k.clone(), c.clone()], None)
            .unwrap()
            .tags;
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].cuid.as_deref(), Some("Bottle 1"));
        assert_eq!(tags[0].tagname.as_deref(), Some("My Tag"));
        assert_eq!(tags[0].default_response.as_deref(), Some("Recalled {xuid}"));
        assert_eq!(tags[0].active, Some(false));
        assert!(tags[0].key.is_some() && tags[1].key.is_none());
        assert_eq!((tags[1].active, tags[1].cuid.as_ref()), (None, None));
        std::fs::write(&k, "XUID,KEY\nabc,0011\n").unwrap();
        assert!(read_batch_sources(std::slice::from_ref(&k), None).is_err());
        std::fs::write(&k, "XUID\nabc\n").unwrap();
        assert!(read_batch_sources(std::slice::from_ref(&k), None).is_err());
        for (head, word) in [("XUID,COLOUR", "COLOUR"), ("XUID,NFTOWNER", "NFTOWNER")] {
            std::fs::write(&k, format!("{head}\nabc,x\n")).unwrap();
            let e = read_batch_sources(std::slice::from_ref(&k), None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(word) && e.contains("line 1"), "{e}");
        }
        std::fs::write(&k, "XUID,STATUS\nabc,Sleeping\n").unwrap();
        let e = read_batch_sources(std::slice::from_ref(&k), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        // A batch directory's tags are its keys: associate.csv may name no other.
        let dir = d.path().join("b1");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("keys.csv"),
            "XUID,KEY\nabc,00112233445566778899AABBCCDDEEFF\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("associate.csv"),
            "XUID,UID\nabc,04AABBCC112233\nzzz,04AABBCC112234\n",
        )
        .unwrap();
        let e = read_batch_sources(std::slice::from_ref(&dir), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("associate.csv line 3") && e.contains("zzz"),
            "{e}"
        );
        std::fs::write(dir.join("associate.csv"), "XUID,UID\nabc,04AABBCC112233\n").unwrap();
        assert_eq!(
            read_batch_sources(std::slice::from_ref(&dir), None)
                .unwrap()
                .tags
                .len(),
            1
        );
        std::fs::write(&k, "XUID,RESPONSE\nabc,Hi {nope}\n").unwrap();
        let e = read_batch_sources(std::slice::from_ref(&k), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{nope}") && e.contains("line 2"), "{e}");
    }
}
