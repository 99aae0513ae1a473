//! The catalog in memory, compiled and indexed for the lookups: folders, groups (their Rule
//! Sets and extended data compiled), batches (their templates parsed), tags (keys, counters
//! behind a lock, and the state the management API changes).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use super::catalog::{Catalog, CatalogError, Cors, GroupKind, Tag};
use super::rules::RuleSet;
pub use super::rules::RulesError;
use super::store::Loaded;
use super::subtags::Response;
use crate::crypto::sdm::SdmMode;
use crate::sun::template::Part;
use crate::sun::{Template, DEFAULT_TEMPLATE};

/// A folder as served.
#[derive(Debug)]
pub struct FolderEntry {
    /// Unique across the verifier.
    pub name: String,
    /// The account id of `c`/`u` lookups.
    pub aid: String,
    /// API token: when set, `/v1/t` answers `token_refused` without it.
    pub token: Option<String>,
    /// The `Access-Control-Allow-Origin` of its answers.
    pub cors: Cors,
    /// Folder status (inactive answers `folder_inactive`).
    pub active: bool,
}

/// A tag group as served.
pub struct GroupEntry {
    /// Unique in the folder.
    pub name: String,
    /// Standard or authentication.
    pub kind: GroupKind,
    /// Tag group status (inactive answers `tg_inactive`).
    pub active: bool,
    /// The group's Rule Set, compiled.
    pub rules: RuleSet,
    /// Extended data values, compiled.
    pub data: Vec<(String, Response)>,
}

/// A batch as served.
pub struct BatchEntry {
    /// Unique across the verifier.
    pub name: String,
    /// Batch status (inactive answers `batch_inactive`).
    pub active: bool,
    /// The batch's template, in the tags' mode (AES or LRP): it reads the batch's scans from
    /// the request's parameters ([`Template::read_params`]).
    pub template: Template,
    /// The template carries the tag code (`{xuid}`).
    pub names_tag: bool,
    /// The tags' SDMReadCtrLimit (`batch --read-counter-limit`): a copy of the read at the
    /// limit is [`Reason::ReadLimit`](super::Reason::ReadLimit), not a forgery.
    pub read_ctr_limit: Option<u32>,
}

/// What the management API can change about a tag.
pub struct TagState {
    /// The custom id of `c=` lookups (changed by the management API).
    pub cuid: Option<String>,
    /// Tag code status (inactive answers `tag_inactive`).
    pub active: bool,
    /// The Tag Code's Default Response (text as stored, compiled).
    pub default_response: Option<Arc<(String, Response)>>,
    /// The tag's own Rule Set, when it has rules of its own.
    pub own: Option<Arc<RuleSet>>,
}

/// A tag as served: the catalog's [`Tag`] (reached through `Deref`: `entry.key`,
/// `entry.uid`, …) with its place in the registry, its compiled data and its run-time state.
/// What the management API changes (CUID, status, the Tag Code's Default Response) is in
/// `state` only: the embedded tag has those fields taken out (`None`).
pub struct TagEntry {
    /// The tag as the catalog has it (its `cuid`, `active`, `default_response` and `read_ctr`
    /// are `None`: see `state` and `last_ctr`).
    pub tag: Tag,
    /// Index of its folder in [`Registry::folders`].
    pub folder: usize,
    /// Index of its group in [`Registry::groups`].
    pub group: usize,
    /// Index of its batch in [`Registry::batches`].
    pub batch: usize,
    /// When the tag was first imported (ms since the Unix epoch), for `{dtcreated}`.
    pub created_ms: u64,
    /// Extended data: the group's values with the tag's overrides, compiled.
    pub data: Vec<(String, Response)>,
    /// What the management API changes.
    pub state: RwLock<TagState>,
    /// The last accepted counter. Held across the durable write of a Pass.
    pub last_ctr: tokio::sync::Mutex<Option<u32>>,
    /// Answers about this tag (responses), and of those the genuine scans.
    pub answered: AtomicU64,
    /// Genuine scans (counted on a Pass).
    pub genuine: AtomicU64,
}

impl std::ops::Deref for TagEntry {
    type Target = Tag;
    fn deref(&self) -> &Tag {
        &self.tag
    }
}

impl TagEntry {
    /// The tag's own Rule Set given its Default Response (`None` when it has no own rules).
    pub fn own_rules(
        &self,
        kind: GroupKind,
        group_default: &str,
        dr: Option<&str>,
    ) -> Result<Option<RuleSet>, RulesError> {
        if dr.is_none() && self.tag.rule_groups.is_none() && self.tag.pass_response.is_none() {
            return Ok(None);
        }
        RuleSet::effective(
            kind,
            self.tag.rule_groups.as_deref().unwrap_or(&[]),
            self.tag.pass_response.as_deref(),
            dr.unwrap_or(group_default),
        )
        .map(Some)
        .map_err(RulesError::from)
    }
}

/// The catalog in memory, indexed for the three lookups and for templates that identify the
/// tag by UID or encrypted PICC data.
pub struct Registry {
    /// The folders, in catalog order.
    pub folders: Vec<FolderEntry>,
    /// The tag groups of all folders, in order.
    pub groups: Vec<GroupEntry>,
    /// The group's Default Response text (for a tag's own Rule Set).
    group_defaults: Vec<String>,
    /// The batches of all groups, in order.
    pub batches: Vec<BatchEntry>,
    /// Tags by tag code.
    pub by_xuid: HashMap<String, Arc<TagEntry>>,
    /// Folder index by account id.
    pub by_aid: HashMap<String, usize>,
    /// Tags by folder index and CUID (changed by the management API).
    pub by_cuid: RwLock<HashMap<(usize, String), Arc<TagEntry>>>,
    /// Tags by folder index and UID.
    pub by_uid: HashMap<(usize, [u8; 7]), Arc<TagEntry>>,
    /// Batches whose template does not carry the tag code, with their tags.
    pub anonymous: Vec<(usize, Vec<Arc<TagEntry>>)>,
}

fn compile_data(d: &[(String, String)]) -> Result<Vec<(String, Response)>, RulesError> {
    d.iter()
        .map(|(k, v)| {
            Response::parse(v)
                .map(|r| (k.clone(), r))
                .map_err(RulesError::from)
        })
        .collect()
}

/// Extended data values in the order the folder's `fields` declares them: the tag's value of
/// a field, else the group's (a field with neither is left out).
fn in_field_order(
    fields: &[String],
    group: &[(String, String)],
    tag: &[(String, String)],
) -> Vec<(String, String)> {
    let value =
        |d: &[(String, String)], f: &str| d.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
    fields
        .iter()
        .filter_map(|f| {
            value(tag, f)
                .or_else(|| value(group, f))
                .map(|v| (f.clone(), v))
        })
        .collect()
}

impl Registry {
    /// Builds the registry (checks the catalog first).
    pub fn build(loaded: &Loaded) -> Result<Registry, CatalogError> {
        let catalog: &Catalog = &loaded.catalog;
        catalog.validate()?;
        let mut r = Registry {
            folders: Vec::new(),
            groups: Vec::new(),
            group_defaults: Vec::new(),
            batches: Vec::new(),
            by_xuid: HashMap::new(),
            by_aid: HashMap::new(),
            by_cuid: RwLock::new(HashMap::new()),
            by_uid: HashMap::new(),
            anonymous: Vec::new(),
        };
        let mut by_cuid = HashMap::new();
        for (fi, f) in catalog.folders.iter().enumerate() {
            r.folders.push(FolderEntry {
                name: f.name.clone(),
                aid: f.aid.clone(),
                token: f.token.clone(),
                cors: f.cors.clone(),
                active: f.active,
            });
            r.by_aid.insert(f.aid.clone(), fi);
            for g in &f.groups {
                let gi = r.groups.len();
                let rules = RuleSet::effective(
                    g.kind,
                    &g.rule_groups,
                    Some(&g.pass_response),
                    &g.default_response,
                )
                .map_err(RulesError::from)?;
                r.groups.push(GroupEntry {
                    name: g.name.clone(),
                    kind: g.kind,
                    active: g.active,
                    rules,
                    data: compile_data(&in_field_order(&f.fields, &g.data, &[]))?,
                });
                r.group_defaults.push(g.default_response.clone());
                for b in &g.batches {
                    let bi = r.batches.len();
                    let template = Template::parse(&b.template).unwrap_or_else(|_| {
                        Template::parse(DEFAULT_TEMPLATE).expect("the default template parses")
                    });
                    let template =
                        template.with_mode(if b.lrp { SdmMode::Lrp } else { SdmMode::Aes });
                    let names_tag = template.has(&Part::Xuid);
                    r.batches.push(BatchEntry {
                        name: b.name.clone(),
                        active: b.active,
                        template,
                        names_tag,
                        read_ctr_limit: b.read_ctr_limit,
                    });
                    let mut anon = Vec::new();
                    for t in &b.tags {
                        let data = in_field_order(&f.fields, &g.data, &t.data);
                        let e = Arc::new(TagEntry {
                            tag: Tag {
                                cuid: None,
                                active: None,
                                default_response: None,
                                read_ctr: None,
                                ..t.clone()
                            },
                            folder: fi,
                            group: gi,
                            batch: bi,
                            created_ms: loaded.created.get(&t.xuid).copied().unwrap_or(0),
                            data: compile_data(&data)?,
                            state: RwLock::new(TagState {
                                cuid: t.cuid.clone(),
                                active: t.active.unwrap_or(true),
                                default_response: None,
                                own: None,
                            }),
                            last_ctr: tokio::sync::Mutex::new(
                                loaded.counters.get(&t.xuid).copied(),
                            ),
                            answered: AtomicU64::new(
                                loaded.scan_counts.get(&t.xuid).map_or(0, |c| c.answered),
                            ),
                            genuine: AtomicU64::new(
                                loaded.scan_counts.get(&t.xuid).map_or(0, |c| c.genuine),
                            ),
                        });
                        r.set_default_response(&e, t.default_response.as_deref())?;
                        if let Some(c) = &t.cuid {
                            by_cuid.insert((fi, c.clone()), e.clone());
                        }
                        if let Some(u) = t.uid {
                            r.by_uid.insert((fi, u), e.clone());
                        }
                        if !names_tag {
                            anon.push(e.clone());
                        }
                        r.by_xuid.insert(t.xuid.clone(), e);
                    }
                    if !names_tag && g.kind == GroupKind::Authentication {
                        r.anonymous.push((bi, anon));
                    }
                }
            }
        }
        r.by_cuid = RwLock::new(by_cuid);
        Ok(r)
    }

    /// Sets (or with `None` removes) a tag's Default Response and rebuilds its own rules.
    pub fn set_default_response(&self, t: &TagEntry, dr: Option<&str>) -> Result<(), RulesError> {
        let g = &self.groups[t.group];
        let own = t.own_rules(g.kind, &self.group_defaults[t.group], dr)?;
        let compiled = match dr {
            Some(d) => Some(Arc::new((d.to_string(), Response::parse(d)?))),
            None => None,
        };
        let mut s = t.state.write().map_err(|_| RulesError::Poisoned)?;
        s.default_response = compiled;
        s.own = own.map(Arc::new);
        Ok(())
    }

    /// Tags known.
    pub fn tag_count(&self) -> usize {
        self.by_xuid.len()
    }

    /// The tag with this code.
    pub fn tag(&self, xuid: &str) -> Option<&Arc<TagEntry>> {
        self.by_xuid.get(xuid)
    }

    /// The tag with this CUID in the folder.
    pub fn by_cuid(&self, folder: usize, cuid: &str) -> Option<Arc<TagEntry>> {
        self.by_cuid
            .read()
            .ok()?
            .get(&(folder, cuid.to_string()))
            .cloned()
    }
}
