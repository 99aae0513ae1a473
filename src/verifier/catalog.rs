//! What the verifier knows: folders (an account id, a token, CORS) → tag groups (standard or
//! authentication, with their responses) → batches (active or not) → tags (XUID, key, UID,
//! CUID, per-tag response overrides). Built from `tag424 batch` output directories or CSV
//! files, checked, and handed to the store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::query::{parse_uid, valid_aid, valid_cuid, valid_token};
use crate::crypto::AesKey;
use crate::tag_code::{CodeList, Header};

/// Longest response text a rule may answer.
pub const MAX_RESPONSE_LEN: usize = 256;
/// Longest CORS origin.
pub const MAX_ORIGIN_LEN: usize = 100;

/// The `Access-Control-Allow-Origin` setting of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cors {
    /// No header (the default).
    #[default]
    None,
    /// `*`.
    Any,
    /// One origin, e.g. `https://shop.example.com`.
    Origin(String),
}

impl Cors {
    pub fn parse(s: &str) -> Result<Cors, CatalogError> {
        match s.trim() {
            "" | "none" => Ok(Cors::None),
            "*" => Ok(Cors::Any),
            o if o.len() <= MAX_ORIGIN_LEN
                && (o.starts_with("https://") || o.starts_with("http://"))
                && o.bytes().all(|c| c.is_ascii_graphic()) =>
            {
                Ok(Cors::Origin(o.to_string()))
            }
            o => Err(CatalogError::Invalid(format!(
                "CORS setting {o:?}: use none, * or one origin (http(s)://host[:port], up to {MAX_ORIGIN_LEN} characters)"
            ))),
        }
    }

    /// The header value, if any.
    pub fn header(&self) -> Option<&str> {
        match self {
            Cors::None => None,
            Cors::Any => Some("*"),
            Cors::Origin(o) => Some(o),
        }
    }
}

impl fmt::Display for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header().unwrap_or("none"))
    }
}

/// Standard tags answer their default response; authentication tags answer the pass response
/// when the SUN message verifies with a new counter, else the default response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    Standard,
    #[default]
    Authentication,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Standard => "standard",
            GroupKind::Authentication => "authentication",
        }
    }

    pub fn parse(s: &str) -> Option<GroupKind> {
        match s {
            "standard" => Some(GroupKind::Standard),
            "authentication" => Some(GroupKind::Authentication),
            _ => None,
        }
    }

    /// The default response of a group of this kind when none is configured.
    pub fn default_response(self) -> &'static str {
        match self {
            GroupKind::Standard => "Found",
            GroupKind::Authentication => "Fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub xuid: String,
    /// The SDM file read key (the KEY column of keys.csv).
    pub key: Option<AesKey>,
    pub uid: Option<[u8; 7]>,
    pub cuid: Option<String>,
    /// Per-tag overrides of the group's rules.
    pub default_response: Option<String>,
    pub pass_response: Option<String>,
}

impl Tag {
    pub fn new(xuid: &str) -> Tag {
        Tag {
            xuid: xuid.to_string(),
            key: None,
            uid: None,
            cuid: None,
            default_response: None,
            pass_response: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Unique across the verifier (by default the directory or file it came from).
    pub name: String,
    pub active: bool,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    pub default_response: String,
    pub pass_response: String,
    pub batches: Vec<Batch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub name: String,
    /// The account id of `c=…&a=…` and `u=…&a=…` lookups.
    pub aid: String,
    /// API token: when set, `/v1/t` answers `token_refused` without it.
    pub token: Option<String>,
    pub cors: Cors,
    pub groups: Vec<Group>,
}

/// Everything the verifier serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    pub folders: Vec<Folder>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {what}")]
    Csv {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Catalog {
    /// Counts of folders, groups, batches and tags.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let groups = self.folders.iter().flat_map(|f| &f.groups);
        let batches: Vec<&Batch> = groups.clone().flat_map(|g| &g.batches).collect();
        (
            self.folders.len(),
            groups.count(),
            batches.len(),
            batches.iter().map(|b| b.tags.len()).sum(),
        )
    }

    /// Checks every rule of the model: unique names, ids and codes, valid settings.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |s: String| Err(CatalogError::Invalid(s));
        let mut folder_names = HashSet::new();
        let mut aids = HashSet::new();
        let mut batch_names = HashSet::new();
        let mut xuids = HashSet::new();
        for f in &self.folders {
            if f.name.is_empty() || !folder_names.insert(&f.name) {
                return bad(format!("folder name {:?} is empty or repeated", f.name));
            }
            if !valid_aid(&f.aid) || !aids.insert(&f.aid) {
                return bad(format!(
                    "folder {:?}: account id {:?} must be letters, digits, - or _ (up to 64) and unique",
                    f.name, f.aid
                ));
            }
            if let Some(t) = &f.token {
                if !valid_token(t) {
                    return bad(format!(
                        "folder {:?}: the API token must be alphanumeric, 1 to 32 characters",
                        f.name
                    ));
                }
            }
            let mut group_names = HashSet::new();
            let mut cuids = HashSet::new();
            let mut uids = HashSet::new();
            for g in &f.groups {
                if g.name.is_empty() || !group_names.insert(&g.name) {
                    return bad(format!(
                        "folder {:?}: group name {:?} is empty or repeated",
                        f.name, g.name
                    ));
                }
                check_response(&g.default_response)?;
                check_response(&g.pass_response)?;
                for b in &g.batches {
                    if b.name.is_empty() || !batch_names.insert(&b.name) {
                        return bad(format!("batch name {:?} is empty or repeated", b.name));
                    }
                    for t in &b.tags {
                        if let Err(e) = crate::tag_code::check(&t.xuid) {
                            return bad(e.to_string());
                        }
                        if !xuids.insert(&t.xuid) {
                            return bad(format!("tag code {} is in more than one batch", t.xuid));
                        }
                        if let Some(c) = &t.cuid {
                            if !valid_cuid(c) || !cuids.insert(c) {
                                return bad(format!(
                                    "custom id {c:?} (tag {}) is invalid or repeated in folder {:?}",
                                    t.xuid, f.name
                                ));
                            }
                        }
                        if let Some(u) = &t.uid {
                            if !uids.insert(*u) {
                                return bad(format!(
                                    "UID {} (tag {}) is repeated in folder {:?}",
                                    hex::encode_upper(u),
                                    t.xuid,
                                    f.name
                                ));
                            }
                        }
                        for r in [&t.default_response, &t.pass_response]
                            .into_iter()
                            .flatten()
                        {
                            check_response(r)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_response(r: &str) -> Result<(), CatalogError> {
    if r.is_empty() || r.len() > MAX_RESPONSE_LEN || r.chars().any(char::is_control) {
        return Err(CatalogError::Invalid(format!(
            "response {r:?}: 1 to {MAX_RESPONSE_LEN} characters, no control characters"
        )));
    }
    Ok(())
}

/// Tags merged by XUID, in first-seen order.
#[derive(Default)]
struct TagMerge {
    order: Vec<String>,
    tags: HashMap<String, Tag>,
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

    fn into_tags(mut self) -> Vec<Tag> {
        self.order
            .iter()
            .filter_map(|x| self.tags.remove(x))
            .collect()
    }
}

/// Reads one CSV file with a header naming `XUID` and any of `KEY`, `UID`, `CUID` into `merge`.
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
    // The one code-list reader and tag-code rule (crate::tag_code), shared with `batch`.
    let list = CodeList::parse(&text, &path.display().to_string(), Header::Required)
        .map_err(|e| CatalogError::Invalid(e.to_string()))?;
    let (ki, ui, ci) = (list.column("KEY"), list.column("UID"), list.column("CUID"));
    if ki.is_none() && ui.is_none() && ci.is_none() {
        return Err(csv_err(
            1,
            "the header needs KEY, UID or CUID next to XUID".into(),
        ));
    }
    let mut n = 0;
    for row in &list.rows {
        let (line, xuid) = (row.line, row.code.as_str());
        let rec = &row.fields;
        let t = merge.entry(xuid);
        if let Some(k) = ki.and_then(|k| rec.get(k)).filter(|k| !k.is_empty()) {
            let key: AesKey = k.parse().map_err(|e| csv_err(line, format!("KEY: {e}")))?;
            t.key = Some(key);
        }
        if let Some(u) = ui.and_then(|u| rec.get(u)).filter(|u| !u.is_empty()) {
            let uid = parse_uid(&u.to_ascii_uppercase())
                .ok_or_else(|| csv_err(line, format!("UID {u:?} must be 14 hex digits")))?;
            t.uid = Some(uid);
        }
        if let Some(c) = ci.and_then(|c| rec.get(c)).filter(|c| !c.is_empty()) {
            if !valid_cuid(c) {
                return Err(csv_err(line, format!("CUID {c:?} is not valid")));
            }
            t.cuid = Some(c.to_string());
        }
        n += 1;
    }
    Ok(n)
}

/// Files read for a `tag424 batch` output directory: `keys.csv` (required), `associate.csv`
/// and `cuids.csv` when present.
pub const DIR_FILES: [&str; 3] = ["keys.csv", "associate.csv", "cuids.csv"];

/// Reads a batch's tags from a `tag424 batch` output directory or from CSV files.
pub fn read_batch_sources(sources: &[PathBuf]) -> Result<Vec<Tag>, CatalogError> {
    let mut merge = TagMerge::default();
    for src in sources {
        if src.is_dir() {
            let keys = src.join(DIR_FILES[0]);
            if !keys.exists() {
                return Err(CatalogError::Invalid(format!(
                    "{}: no keys.csv (is this a `tag424 batch` output directory?)",
                    src.display()
                )));
            }
            for f in DIR_FILES {
                let p = src.join(f);
                if p.exists() {
                    read_csv(&p, &mut merge)?;
                }
            }
        } else {
            read_csv(src, &mut merge)?;
        }
    }
    Ok(merge.into_tags())
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
    fn csv_merge_and_validation() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("k.csv");
        std::fs::write(&k, "XUID,KEY\nabc,00112233445566778899AABBCCDDEEFF\ndef,\n").unwrap();
        let c = d.path().join("c.csv");
        std::fs::write(&c, "xuid,cuid\nabc,Bottle 1\n").unwrap();
        let tags = read_batch_sources(&[k.clone(), c]).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].cuid.as_deref(), Some("Bottle 1"));
        assert!(tags[0].key.is_some() && tags[1].key.is_none());
        std::fs::write(&k, "XUID,KEY\nabc,0011\n").unwrap();
        assert!(read_batch_sources(std::slice::from_ref(&k)).is_err());
        std::fs::write(&k, "XUID\nabc\n").unwrap();
        assert!(read_batch_sources(&[k]).is_err());
        assert_eq!(Cors::parse("*").unwrap(), Cors::Any);
        assert!(Cors::parse("example.com").is_err());
    }
}
