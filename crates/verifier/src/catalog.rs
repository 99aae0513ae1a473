//! What the verifier knows: folders (an account id, a token, CORS) → tag groups (standard or
//! authentication, with their responses) → batches (active or not) → tags (XUID, key, UID,
//! CUID, per-tag response overrides). Built from `tag424 batch` output directories or CSV
//! files, checked, and handed to the store.

use std::collections::HashSet;
use std::fmt;

use super::query::{valid_aid, valid_token};
// Rules are the lower layer: the catalog names their types, never the other way round.
use super::rules::RuleSet;
pub use super::rules::{GroupKind, RuleGroup, MAX_RULE_GROUPS};
use super::subtags::Response;
use super::text;
use crate::crypto::AesKey;
use crate::sun::template::Part;
use crate::sun::Template;

mod error;
mod origin;
pub use error::{CatalogError, DataError, TemplateError};
pub use origin::{check_origin, OriginError, MAX_ORIGIN_LEN};

/// The `Access-Control-Allow-Origin` setting of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
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
    /// Reads `none` (or empty), `*` or one origin exactly as a browser sends it in its
    /// `Origin` header: `http(s)://host[:port]`, up to [`MAX_ORIGIN_LEN`] characters
    /// ([`check_origin`]).
    pub fn parse(s: &str) -> Result<Cors, CatalogError> {
        match s.trim() {
            "" | "none" => Ok(Cors::None),
            "*" => Ok(Cors::Any),
            o => match check_origin(o) {
                Ok(()) => Ok(Cors::Origin(o.to_string())),
                Err(source) => Err(CatalogError::Cors {
                    origin: o.to_string(),
                    source,
                }),
            },
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

/// Most extended data fields of a folder. The platform's pages say "up to five" and, for
/// Flex plans, "Up to 2"; this verifier takes the larger (docs/verifier.md, Differences).
pub const MAX_FIELDS: usize = 5;

/// Extended data: `(field, value)` pairs added to the API answer as string keys; the value
/// may hold subtags.
pub type ExtData = Vec<(String, String)>;

/// One tag code and what the verifier knows about its tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tag {
    /// The tag code (XUID), unique across the verifier.
    pub xuid: String,
    /// The SDM file read key (the KEY column of keys.csv): SDMMAC and `{enc}`.
    pub key: Option<AesKey>,
    /// The SDM meta read key (from the batch journal): decrypts `{picc}`.
    pub meta_key: Option<AesKey>,
    /// The tag's UID (from the batch journal): `u=` lookups and templates without `{xuid}`.
    pub uid: Option<[u8; 7]>,
    /// The custom id of `c=` lookups, unique in the folder.
    pub cuid: Option<String>,
    /// TAGNAME (Associate Data).
    pub tagname: Option<String>,
    /// Tag code status; `None` = leave as stored (new tags are active).
    pub active: Option<bool>,
    /// The counter read back while encoding (journal): a scan at or below it is a replay.
    pub read_ctr: Option<u32>,
    /// The Tag Code's own Default Response (RESPONSE, `ix_dr`): set, it replaces the group's
    /// rules (unless the group layers them with `{tagcodedr}`).
    pub default_response: Option<String>,
    /// Shorthand for an own Rule Group `[auth_pass] → pass_response` (authentication groups).
    pub pass_response: Option<String>,
    /// The Tag Code's own Rule Groups (replace the group's).
    pub rule_groups: Option<Vec<RuleGroup>>,
    /// Extended data values overriding the group's.
    pub data: ExtData,
}

impl Tag {
    /// A tag with this code and nothing else known.
    pub fn new(xuid: &str) -> Tag {
        Tag {
            xuid: xuid.to_string(),
            ..Tag::default()
        }
    }

    /// Whether the tag code has rules of its own (which replace its group's).
    pub fn has_own_rules(&self) -> bool {
        self.default_response.is_some()
            || self.pass_response.is_some()
            || self.rule_groups.is_some()
    }
}

/// A batch of tags encoded with one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Unique across the verifier (by default the directory or file it came from).
    pub name: String,
    /// Batch status: an inactive batch answers `batch_inactive`.
    pub active: bool,
    /// The URL template the batch was encoded with (`summary.json` of its directory).
    pub template: String,
    /// The tags are in LRP mode (`batch --lrp-irreversible`, read from the batch journal, or
    /// `mode = "lrp"` in the configuration): the SUN message is checked with LRP.
    pub lrp: bool,
    /// The tags' SDMReadCtrLimit (`batch --read-counter-limit`, read from the batch journal):
    /// a copy of a tag's read at the limit is told apart from a forgery (docs/verifier.md).
    pub read_ctr_limit: Option<u32>,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            name: String::new(),
            active: true,
            template: crate::sun::DEFAULT_TEMPLATE.to_string(),
            lrp: false,
            read_ctr_limit: None,
            tags: Vec::new(),
        }
    }
}

/// A tag group: the kind and responses its tags share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Unique in the folder.
    pub name: String,
    /// Standard or authentication.
    pub kind: GroupKind,
    /// Tag group status: an inactive group answers `tg_inactive`.
    pub active: bool,
    /// The Rule Set's Default Response.
    pub default_response: String,
    /// Shorthand: with no `rule_groups`, an authentication group has one Rule Group
    /// `[auth_pass] → pass_response`.
    pub pass_response: String,
    /// Up to three ordered Rule Groups.
    pub rule_groups: Vec<RuleGroup>,
    /// Extended data values (fields declared by the folder).
    pub data: ExtData,
    /// Its batches.
    pub batches: Vec<Batch>,
}

impl Default for Group {
    fn default() -> Group {
        Group {
            name: String::new(),
            kind: GroupKind::Authentication,
            active: true,
            default_response: "Fail".into(),
            pass_response: "Pass".into(),
            rule_groups: Vec::new(),
            data: Vec::new(),
            batches: Vec::new(),
        }
    }
}

/// A folder: one account, with its own id, token and CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Unique across the verifier.
    pub name: String,
    /// The account id of `c=…&a=…` and `u=…&a=…` lookups.
    pub aid: String,
    /// API token: when set, `/v1/t` answers `token_refused` without it.
    pub token: Option<String>,
    /// The `Access-Control-Allow-Origin` of its answers.
    pub cors: Cors,
    /// Folder status: an inactive folder answers `folder_inactive`.
    pub active: bool,
    /// Extended data fields added to the API answer (values set per group or tag).
    pub fields: Vec<String>,
    /// Its tag groups.
    pub groups: Vec<Group>,
}

impl Default for Folder {
    fn default() -> Folder {
        Folder {
            name: String::new(),
            aid: String::new(),
            token: None,
            cors: Cors::None,
            active: true,
            fields: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// Everything the verifier serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    /// The folders.
    pub folders: Vec<Folder>,
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

    /// The Rule Groups that are not active because their response is empty
    /// ([`RuleGroup::is_active`]), one line each, for the operator.
    pub fn inactive_rule_groups(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |whose: String, groups: &[RuleGroup]| {
            for (i, rg) in groups.iter().enumerate() {
                if !rg.is_active() {
                    out.push(format!(
                        "{whose}: Rule Group {} ({}) has an empty response: not active",
                        i + 1,
                        rg.rules.join(", ")
                    ));
                }
            }
        };
        for f in &self.folders {
            for g in &f.groups {
                note(
                    format!("folder {:?}, group {:?}", f.name, g.name),
                    &g.rule_groups,
                );
                for t in g.batches.iter().flat_map(|b| &b.tags) {
                    if let Some(own) = &t.rule_groups {
                        note(format!("tag {}", t.xuid), own);
                    }
                }
            }
        }
        out
    }

    /// Checks every rule of the model: unique names, ids and codes, valid settings.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |s: String| Err(CatalogError::Invalid(s));
        let mut folder_names = HashSet::new();
        let mut aids = HashSet::new();
        let mut batch_names = HashSet::new();
        let mut xuids = HashSet::new();
        for f in &self.folders {
            text::check("a folder name", &f.name, text::MAX_NAME)?;
            if !folder_names.insert(&f.name) {
                return bad(format!("folder name {:?} is repeated", f.name));
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
            if let Cors::Origin(o) = &f.cors {
                check_origin(o).map_err(|source| CatalogError::FolderCors {
                    folder: f.name.clone(),
                    origin: o.clone(),
                    source,
                })?;
            }
            if f.fields.len() > MAX_FIELDS {
                return bad(format!(
                    "folder {:?}: {} extended data fields; the platform allows up to {MAX_FIELDS}",
                    f.name,
                    f.fields.len()
                ));
            }
            for (i, field) in f.fields.iter().enumerate() {
                if f.fields[..i].contains(field) {
                    return bad(format!(
                        "folder {:?}: extended data field {field:?} is declared twice",
                        f.name
                    ));
                }
                if !valid_field(field) {
                    return bad(format!(
                        "folder {:?}: extended data field {field:?}: lowercase letters, digits and _, up to 32, not xuid/cuid/uid/response/error",
                        f.name
                    ));
                }
            }
            let mut group_names = HashSet::new();
            let mut cuids = HashSet::new();
            let mut uids = HashSet::new();
            for g in &f.groups {
                text::check("a group name", &g.name, text::MAX_NAME).map_err(|source| {
                    CatalogError::GroupName {
                        folder: f.name.clone(),
                        source,
                    }
                })?;
                if !group_names.insert(&g.name) {
                    return bad(format!(
                        "folder {:?}: group name {:?} is repeated",
                        f.name, g.name
                    ));
                }
                let in_group = |what: String| {
                    CatalogError::Invalid(format!(
                        "folder {:?}, group {:?}: {what}",
                        f.name, g.name
                    ))
                };
                if g.default_response.trim().is_empty() {
                    return Err(in_group(
                        "the Default Response is empty; the platform requires one (\"You must have a Rule Set and set a Default Response\"): set default_response".into(),
                    ));
                }
                let set = RuleSet::effective(
                    g.kind,
                    &g.rule_groups,
                    Some(&g.pass_response),
                    &g.default_response,
                )
                .map_err(|source| CatalogError::GroupRules {
                    folder: f.name.clone(),
                    group: g.name.clone(),
                    source,
                })?;
                if g.kind == GroupKind::Standard && set.uses_auth() {
                    return Err(in_group(
                        "auth_pass and chip_count rules need an authentication group".into(),
                    ));
                }
                check_data(f, &g.data).map_err(|source| CatalogError::GroupData {
                    folder: f.name.clone(),
                    group: g.name.clone(),
                    source,
                })?;
                for b in &g.batches {
                    text::check("a batch name", &b.name, text::MAX_NAME)
                        .map_err(|source| CatalogError::BatchName { source })?;
                    if !batch_names.insert(&b.name) {
                        return bad(format!("batch name {:?} is repeated", b.name));
                    }
                    if g.kind == GroupKind::Authentication {
                        check_template(b).map_err(|source| CatalogError::Template {
                            batch: b.name.clone(),
                            source,
                        })?;
                    }
                    for t in &b.tags {
                        if let Err(e) = crate::tag_code::check(&t.xuid) {
                            return bad(e.to_string());
                        }
                        if !xuids.insert(&t.xuid) {
                            return bad(format!("tag code {} is in more than one batch", t.xuid));
                        }
                        if let Some(c) = &t.cuid {
                            text::check(&format!("CUID of tag {}", t.xuid), c, text::MAX_CUID)?;
                            if !cuids.insert(c) {
                                return bad(format!(
                                    "custom id {c:?} (tag {}) is repeated in folder {:?}",
                                    t.xuid, f.name
                                ));
                            }
                        }
                        if let Some(n) = &t.tagname {
                            text::check(
                                &format!("TAGNAME of tag {}", t.xuid),
                                n,
                                text::MAX_TAGNAME,
                            )?;
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
                        if t.default_response
                            .as_deref()
                            .is_some_and(|d| d.trim().is_empty())
                        {
                            return bad(format!(
                                "tag {}: its Default Response is empty: remove default_response to use the group's rules",
                                t.xuid
                            ));
                        }
                        if t.has_own_rules() {
                            RuleSet::effective(
                                g.kind,
                                t.rule_groups.as_deref().unwrap_or(&[]),
                                t.pass_response.as_deref(),
                                t.default_response.as_deref().unwrap_or(&g.default_response),
                            )
                            .map_err(|source| {
                                CatalogError::TagRules {
                                    xuid: t.xuid.clone(),
                                    source,
                                }
                            })?;
                        }
                        check_data(f, &t.data).map_err(|source| CatalogError::TagData {
                            xuid: t.xuid.clone(),
                            source,
                        })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Names an extended data field may not take (the answer's own keys).
const RESERVED_FIELDS: [&str; 5] = ["xuid", "cuid", "uid", "response", "error"];

/// A valid extended data field name: lowercase letters, digits and `_`, up to 32.
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !RESERVED_FIELDS.contains(&name)
}

fn check_data(f: &Folder, data: &ExtData) -> Result<(), DataError> {
    for (k, v) in data {
        if !f.fields.contains(k) {
            return Err(DataError::Undeclared {
                field: k.clone(),
                folder: f.name.clone(),
            });
        }
        Response::parse(v).map_err(|source| DataError::Value {
            field: k.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Whether every tag of an authentication batch can be verified along its template.
fn check_template(b: &Batch) -> Result<(), TemplateError> {
    let t = Template::parse(&b.template).map_err(|source| TemplateError::Parse {
        template: b.template.clone(),
        source,
    })?;
    let picc = t.has(&Part::Picc);
    let by_uid = t.has(&Part::Uid);
    if !t.has(&Part::Xuid) && !picc && !by_uid {
        return Err(TemplateError::NoTag {
            template: b.template.clone(),
        });
    }
    for tag in &b.tags {
        if picc && tag.key.is_some() && tag.meta_key.is_none() {
            return Err(TemplateError::NoMetaKey {
                xuid: tag.xuid.clone(),
            });
        }
        if (picc || by_uid) && !t.has(&Part::Xuid) && tag.uid.is_none() {
            return Err(TemplateError::NoUid {
                xuid: tag.xuid.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_settings() {
        assert_eq!(Cors::parse("*").unwrap(), Cors::Any);
        assert!(Cors::parse("example.com").is_err());
    }

    /// One folder, one authentication group, one batch with one tag.
    fn one_tag() -> Catalog {
        let batch = Batch {
            name: "b1".into(),
            tags: vec![Tag {
                xuid: "q8w3sbcz".into(),
                ..Tag::default()
            }],
            ..Batch::default()
        };
        let group = Group {
            name: "g".into(),
            batches: vec![batch],
            ..Group::default()
        };
        Catalog {
            folders: vec![Folder {
                name: "acme".into(),
                aid: "acme".into(),
                fields: vec!["note".into()],
                groups: vec![group],
                ..Folder::default()
            }],
        }
    }

    #[test]
    fn validation_errors_keep_the_typed_cause() {
        use crate::rules::{RuleError, RuleSetError};
        use crate::subtags::ResponseError;
        use std::error::Error as _;
        assert!(one_tag().validate().is_ok());

        let mut c = one_tag();
        c.folders[0].groups[0].rule_groups = vec![RuleGroup {
            rules: vec!["scan_count >= 3".into()],
            response: "Hi".into(),
        }];
        let e = c.validate().unwrap_err();
        assert!(matches!(
            &e,
            CatalogError::GroupRules {
                folder,
                group,
                source: RuleSetError::Rule(RuleError::ScanCountComparison { rule }),
            } if folder == "acme" && group == "g" && rule == "scan_count >= 3"
        ));
        assert_eq!(
            e.to_string(),
            r#"folder "acme", group "g": rule "scan_count >= 3": scan_count takes <, >, = or != (as the platform's Scan Count rule)"#
        );
        // The chain is kept: CatalogError → RuleSetError → RuleError.
        let inner = e.source().and_then(|s| s.source()).unwrap();
        assert!(inner.downcast_ref::<RuleError>().is_some());

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].tags[0].data = vec![("note".into(), "{os}".into())];
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::TagData {
                source: DataError::Value {
                    source: ResponseError::NotOnApi { .. },
                    ..
                },
                ..
            }
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].data = vec![("colour".into(), "red".into())];
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::GroupData {
                source: DataError::Undeclared { field, .. },
                ..
            } if field == "colour"
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].template = "https://a.example/?p={picc}&m={mac}".into();
        c.folders[0].groups[0].batches[0].tags[0].key = Some(AesKey::from_slice(&[1; 16]).unwrap());
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::Template {
                source: TemplateError::NoMetaKey { xuid },
                ..
            } if xuid == "q8w3sbcz"
        ));

        let mut c = one_tag();
        c.folders[0].cors = Cors::Origin("https://acme.example/".into());
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::FolderCors {
                source: OriginError::TrailingSlash { .. },
                ..
            }
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].name = String::new();
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::BatchName {
                source: crate::text::TextError {
                    problem: crate::text::TextProblem::Empty,
                    ..
                }
            }
        ));
    }
}
