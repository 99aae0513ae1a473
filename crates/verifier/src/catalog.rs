//! What the verifier knows: folders (an account id, a token, CORS) → tag groups (standard or
//! authentication, with their responses) → batches (active or not) → tags (XUID, key, UID,
//! CUID, per-tag response overrides). Built from `tag424 batch` output directories or CSV
//! files, checked, and handed to the store.

use std::fmt;

// Rules are the lower layer: the catalog names their types, never the other way round.
pub use super::rules::{GroupKind, RuleGroup, MAX_RULE_GROUPS};
use crate::crypto::AesKey;

mod error;
mod origin;
mod validate;
pub use error::{CatalogError, DataError, TemplateError};
pub use origin::{check_origin, OriginError, MAX_ORIGIN_LEN};
pub use validate::valid_field;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_settings() {
        assert_eq!(Cors::parse("*").unwrap(), Cors::Any);
        assert!(Cors::parse("example.com").is_err());
    }
}
