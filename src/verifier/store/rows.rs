//! The catalog as every backend stores it: one row type per table, text columns as stored,
//! and the one place where rows become a [`Catalog`] (parsing keys, UIDs, CORS and kinds,
//! linking tags to batches to groups to folders). Each backend only reads its tables into
//! [`CatalogRows`].

use std::collections::HashMap;

use crate::crypto::AesKey;
use crate::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, GroupKind, Tag};

pub struct FolderRow {
    pub id: i64,
    pub name: String,
    pub aid: String,
    pub token: Option<String>,
    pub cors: String,
    pub active: bool,
    /// JSON list of field names.
    pub fields: String,
}

pub struct GroupRow {
    pub id: i64,
    pub folder_id: i64,
    pub name: String,
    pub kind: String,
    pub default_response: String,
    pub pass_response: String,
    pub active: bool,
    /// JSON of the rule groups.
    pub rule_groups: String,
    /// JSON of the extended data.
    pub data: String,
}

pub struct BatchRow {
    pub id: i64,
    pub group_id: i64,
    pub name: String,
    pub active: bool,
    pub template: String,
    pub lrp: bool,
    pub read_ctr_limit: Option<u32>,
}

pub struct TagRow {
    pub batch_id: i64,
    pub xuid: String,
    /// 32 hex digits.
    pub key: Option<String>,
    /// 14 uppercase hex digits.
    pub uid: Option<String>,
    pub cuid: Option<String>,
    pub default_response: Option<String>,
    pub pass_response: Option<String>,
    /// 32 hex digits.
    pub meta_key: Option<String>,
    pub tagname: Option<String>,
    pub active: bool,
    /// JSON of the tag's own rule groups.
    pub rule_groups: Option<String>,
    /// JSON of the extended data.
    pub data: String,
    pub created_ms: i64,
}

/// The catalog tables, each in its stored order (by id; tags in insertion order).
#[derive(Default)]
pub struct CatalogRows {
    pub folders: Vec<FolderRow>,
    pub groups: Vec<GroupRow>,
    pub batches: Vec<BatchRow>,
    pub tags: Vec<TagRow>,
}

impl CatalogRows {
    /// The catalog these rows describe, and each tag's creation time; `Err` names the row
    /// that does not hold together.
    pub fn assemble(self) -> Result<(Catalog, HashMap<String, u64>), String> {
        let mut created = HashMap::with_capacity(self.tags.len());
        let mut folders: Vec<Folder> = Vec::with_capacity(self.folders.len());
        let mut folder_index = HashMap::new();
        for f in self.folders {
            let cors = Cors::parse(&f.cors).map_err(|x| format!("folder {}: {x}", f.name))?;
            folder_index.insert(f.id, folders.len());
            let fields = serde_json::from_str(&f.fields)
                .map_err(|x| format!("folder {}: fields: {x}", f.name))?;
            folders.push(Folder {
                name: f.name,
                aid: f.aid,
                token: f.token,
                cors,
                active: f.active,
                fields,
                groups: Vec::new(),
            });
        }
        let mut groups: Vec<(usize, Group)> = Vec::with_capacity(self.groups.len());
        let mut group_index = HashMap::new();
        for g in self.groups {
            let kind = GroupKind::parse(&g.kind)
                .ok_or_else(|| format!("group {}: unknown kind {}", g.name, g.kind))?;
            let fi = *folder_index
                .get(&g.folder_id)
                .ok_or_else(|| format!("group {}: no folder {}", g.name, g.folder_id))?;
            let rule_groups = serde_json::from_str(&g.rule_groups)
                .map_err(|x| format!("group {}: rule_groups: {x}", g.name))?;
            let data = serde_json::from_str(&g.data)
                .map_err(|x| format!("group {}: data: {x}", g.name))?;
            group_index.insert(g.id, groups.len());
            groups.push((
                fi,
                Group {
                    name: g.name,
                    kind,
                    active: g.active,
                    default_response: g.default_response,
                    pass_response: g.pass_response,
                    rule_groups,
                    data,
                    batches: Vec::new(),
                },
            ));
        }
        let mut batches: Vec<(usize, Batch)> = Vec::with_capacity(self.batches.len());
        let mut batch_index = HashMap::new();
        for b in self.batches {
            let gi = *group_index
                .get(&b.group_id)
                .ok_or_else(|| format!("batch {}: no group {}", b.name, b.group_id))?;
            batch_index.insert(b.id, batches.len());
            batches.push((
                gi,
                Batch {
                    name: b.name,
                    active: b.active,
                    template: b.template,
                    lrp: b.lrp,
                    read_ctr_limit: b.read_ctr_limit,
                    tags: Vec::new(),
                },
            ));
        }
        for t in self.tags {
            let xuid = t.xuid;
            let parse_key = |k: Option<String>| match k {
                Some(k) => k
                    .parse::<AesKey>()
                    .map(Some)
                    .map_err(|_| format!("tag {xuid}: bad key")),
                None => Ok(None),
            };
            let key = parse_key(t.key)?;
            let meta_key = parse_key(t.meta_key)?;
            let rule_groups = match t.rule_groups {
                Some(j) => Some(
                    serde_json::from_str(&j)
                        .map_err(|x| format!("tag {xuid}: rule_groups: {x}"))?,
                ),
                None => None,
            };
            let data =
                serde_json::from_str(&t.data).map_err(|x| format!("tag {xuid}: data: {x}"))?;
            let uid = match t.uid {
                Some(u) => Some(
                    crate::verifier::query::parse_uid(&u)
                        .ok_or_else(|| format!("tag {xuid}: bad UID"))?,
                ),
                None => None,
            };
            let bi = *batch_index
                .get(&t.batch_id)
                .ok_or_else(|| format!("tag {xuid}: no batch {}", t.batch_id))?;
            created.insert(xuid.clone(), t.created_ms.max(0) as u64);
            batches[bi].1.tags.push(Tag {
                xuid,
                key,
                meta_key,
                uid,
                cuid: t.cuid,
                tagname: t.tagname,
                active: Some(t.active),
                read_ctr: None,
                default_response: t.default_response,
                pass_response: t.pass_response,
                rule_groups,
                data,
            });
        }
        for (gi, b) in batches {
            groups[gi].1.batches.push(b);
        }
        for (fi, g) in groups {
            folders[fi].groups.push(g);
        }
        Ok((Catalog { folders }, created))
    }
}
