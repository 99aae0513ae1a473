//! The schema, written once for both stores: the list of migrations (each with its SQLite
//! and its PostgreSQL text side by side: the only place the two dialects differ in table
//! definitions) and run by one loop ([`migrate`]), and the catalog tables' columns: how each
//! maps to a field of the catalog's own types and how an import merges it (read by the one
//! import merge, `merge`, and by both backends' generic SQL).
//!
//! Adding a field to a tag: a migration here (both texts), a column in [`TAGS`], the field on
//! [`crate::catalog::Tag`]; nothing in the backends.
//!
//! No migration crate: the maintained runners that serve both rusqlite and tokio-postgres
//! (refinery) keep their own history table and one SQL text per migration file, while the
//! databases already deployed count their migrations in SQLite's `user_version` and in
//! PostgreSQL's `schema_migrations`; a list and a loop of a few lines keep both.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::rows::{
    BatchRow, Column, ColumnError, FolderRow, GroupRow, Kind, Merge, Table, TagRow, Value,
};
use super::StoreError;
use crate::catalog::{Cors, GroupKind};
use crate::crypto::AesKey;

/// One schema migration: its number (1, 2, … in order), what it adds, and its text in each
/// dialect (same tables and meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version this migration brings a database to.
    pub version: u32,
    /// What it adds.
    pub what: &'static str,
    /// Its SQLite text.
    pub sqlite: &'static str,
    /// Its PostgreSQL text.
    pub postgres: &'static str,
}

/// The schema migrations of both stores, in order. PostgreSQL's first one also creates the
/// `catalog_version` other instances watch; its tags have a `bigserial` id where SQLite uses
/// the `rowid`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "catalog, counters, scan log.",
        sqlite: "CREATE TABLE folders(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        aid TEXT NOT NULL UNIQUE,
        token TEXT,
        cors TEXT NOT NULL);
     CREATE TABLE groups(
        id INTEGER PRIMARY KEY,
        folder_id INTEGER NOT NULL REFERENCES folders(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        default_response TEXT NOT NULL,
        pass_response TEXT NOT NULL,
        UNIQUE(folder_id, name));
     CREATE TABLE batches(
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL REFERENCES groups(id),
        name TEXT NOT NULL UNIQUE,
        active INTEGER NOT NULL);
     CREATE TABLE tags(
        xuid TEXT PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES batches(id),
        key TEXT,
        uid TEXT,
        cuid TEXT,
        default_response TEXT,
        pass_response TEXT);
     CREATE TABLE counters(
        xuid TEXT PRIMARY KEY,
        ctr INTEGER NOT NULL,
        time_ms INTEGER NOT NULL);
     CREATE TABLE scans(
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        query TEXT NOT NULL,
        xuid TEXT NOT NULL,
        ctr INTEGER,
        result TEXT NOT NULL,
        passed INTEGER NOT NULL,
        reason TEXT NOT NULL,
        remote TEXT NOT NULL);",
        postgres: "CREATE TABLE folders(
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        aid text NOT NULL UNIQUE,
        token text,
        cors text NOT NULL);
     CREATE TABLE groups(
        id bigserial PRIMARY KEY,
        folder_id bigint NOT NULL REFERENCES folders(id),
        name text NOT NULL,
        kind text NOT NULL,
        default_response text NOT NULL,
        pass_response text NOT NULL,
        UNIQUE(folder_id, name));
     CREATE TABLE batches(
        id bigserial PRIMARY KEY,
        group_id bigint NOT NULL REFERENCES groups(id),
        name text NOT NULL UNIQUE,
        active boolean NOT NULL);
     CREATE TABLE tags(
        id bigserial UNIQUE,
        xuid text PRIMARY KEY,
        batch_id bigint NOT NULL REFERENCES batches(id),
        key text,
        uid text,
        cuid text,
        default_response text,
        pass_response text);
     CREATE TABLE counters(
        xuid text PRIMARY KEY,
        ctr bigint NOT NULL,
        time_ms bigint NOT NULL);
     CREATE TABLE scans(
        id bigserial PRIMARY KEY,
        time_ms bigint NOT NULL,
        endpoint text NOT NULL,
        query text NOT NULL,
        xuid text NOT NULL,
        ctr bigint,
        result text NOT NULL,
        passed boolean NOT NULL,
        reason text NOT NULL,
        remote text NOT NULL);
     CREATE INDEX scans_xuid ON scans(xuid);
     CREATE TABLE catalog_version(one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL);
     INSERT INTO catalog_version(version) VALUES (0);",
    },
    Migration {
        version: 2,
        what: "statuses, rules, extended data, templates, meta keys, change log (issue 10).",
        sqlite: "ALTER TABLE folders ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE folders ADD COLUMN fields TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE groups ADD COLUMN rule_groups TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN data TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE batches ADD COLUMN template TEXT NOT NULL
        DEFAULT 'https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}';
     ALTER TABLE tags ADD COLUMN meta_key TEXT;
     ALTER TABLE tags ADD COLUMN tagname TEXT;
     ALTER TABLE tags ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE tags ADD COLUMN rule_groups TEXT;
     ALTER TABLE tags ADD COLUMN data TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE tags ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE changes(
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        xuid TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT,
        new TEXT,
        remote TEXT NOT NULL);
     CREATE INDEX scans_time ON scans(time_ms);",
        postgres: "ALTER TABLE folders ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE folders ADD COLUMN fields text NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE groups ADD COLUMN rule_groups text NOT NULL DEFAULT '[]';
     ALTER TABLE groups ADD COLUMN data text NOT NULL DEFAULT '[]';
     ALTER TABLE batches ADD COLUMN template text NOT NULL
        DEFAULT 'https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}';
     ALTER TABLE tags ADD COLUMN meta_key text;
     ALTER TABLE tags ADD COLUMN tagname text;
     ALTER TABLE tags ADD COLUMN active boolean NOT NULL DEFAULT true;
     ALTER TABLE tags ADD COLUMN rule_groups text;
     ALTER TABLE tags ADD COLUMN data text NOT NULL DEFAULT '[]';
     ALTER TABLE tags ADD COLUMN created_ms bigint NOT NULL DEFAULT 0;
     CREATE TABLE changes(
        id bigserial PRIMARY KEY,
        time_ms bigint NOT NULL,
        xuid text NOT NULL,
        field text NOT NULL,
        old text,
        new text,
        remote text NOT NULL);
     CREATE INDEX scans_time ON scans(time_ms);",
    },
    Migration {
        version: 3,
        what: "the batch's SUN mode (issue 12: LRP batches).",
        sqlite: "ALTER TABLE batches ADD COLUMN lrp INTEGER NOT NULL DEFAULT 0;",
        postgres: "ALTER TABLE batches ADD COLUMN lrp boolean NOT NULL DEFAULT false;",
    },
    Migration {
        version: 4,
        what: "the batch's SDMReadCtrLimit (issue 21: `batch --read-counter-limit`).",
        sqlite: "ALTER TABLE batches ADD COLUMN read_ctr_limit INTEGER;",
        postgres: "ALTER TABLE batches ADD COLUMN read_ctr_limit bigint;",
    },
];

/// The schema version a migrated database has: the last migration's.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How a backend keeps its schema version and applies one migration (the dialect part of
/// [`migrate`]).
pub(super) trait Migrator {
    /// The version the database is at (0: empty).
    async fn version(&mut self) -> Result<u32, StoreError>;
    /// Applies `m` and records its version (all or nothing).
    async fn apply(&mut self, m: &Migration) -> Result<(), StoreError>;
    /// Names the database in an error.
    fn db(&self) -> String;
}

/// Applies the migrations the database has not had yet, in order; a database migrated by a
/// newer tag424 (a version beyond [`SCHEMA_VERSION`]) is refused, as its tables may mean
/// what this one does not know.
pub(super) async fn migrate<M: Migrator>(m: &mut M) -> Result<u32, StoreError> {
    let version = m.version().await?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            db: m.db(),
            version,
            known: SCHEMA_VERSION,
        });
    }
    for mig in MIGRATIONS.iter().filter(|x| x.version > version) {
        m.apply(mig).await?;
    }
    Ok(SCHEMA_VERSION)
}

fn json<T: Serialize>(v: &T) -> Value {
    Value::Text(serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

fn from_json<T: DeserializeOwned>(v: Value) -> Result<T, ColumnError> {
    Ok(serde_json::from_str(&v.text()?)?)
}

fn key_text(k: &Option<AesKey>) -> Value {
    k.as_ref()
        .map_or(Value::Null, |k| Value::Text(k.to_hex().to_string()))
}

fn key_of(v: Value) -> Result<Option<AesKey>, ColumnError> {
    match v.opt_text()? {
        Some(k) => {
            let k = zeroize::Zeroizing::new(k);
            k.parse().map(Some).map_err(ColumnError::Key)
        }
        None => Ok(None),
    }
}

macro_rules! col {
    ($name:literal, $kind:ident, $merge:ident, $get:expr, $set:expr) => {
        Column {
            name: $name,
            kind: Kind::$kind,
            merge: Merge::$merge,
            new: Value::Null,
            get: $get,
            set: $set,
        }
    };
}

/// `folders`: one per folder, by name.
pub const FOLDERS: Table<FolderRow> = Table {
    name: "folders",
    key: "name",
    columns: &[
        col!(
            "name",
            Text,
            Replace,
            |r| Value::Text(r.folder.name.clone()),
            |r, v| {
                r.folder.name = v.text()?;
                Ok(())
            }
        ),
        col!(
            "aid",
            Text,
            Replace,
            |r| Value::Text(r.folder.aid.clone()),
            |r, v| {
                r.folder.aid = v.text()?;
                Ok(())
            }
        ),
        col!(
            "token",
            Text,
            Replace,
            |r| Value::text_or_null(r.folder.token.as_deref()),
            |r, v| {
                r.folder.token = v.opt_text()?;
                Ok(())
            }
        ),
        col!(
            "cors",
            Text,
            Replace,
            |r| Value::Text(r.folder.cors.to_string()),
            |r, v| {
                r.folder.cors =
                    Cors::parse(&v.text()?).map_err(|e| ColumnError::Cors(Box::new(e)))?;
                Ok(())
            }
        ),
        col!(
            "active",
            Bool,
            Replace,
            |r| Value::Bool(r.folder.active),
            |r, v| {
                r.folder.active = v.bool()?;
                Ok(())
            }
        ),
        col!(
            "fields",
            Text,
            Replace,
            |r| json(&r.folder.fields),
            |r, v| {
                r.folder.fields = from_json(v)?;
                Ok(())
            }
        ),
    ],
};

/// `groups`: one per tag group, by folder and name.
pub const GROUPS: Table<GroupRow> = Table {
    name: "groups",
    key: "folder_id, name",
    columns: &[
        col!(
            "folder_id",
            Int,
            Replace,
            |r| Value::Int(r.folder_id),
            |r, v| {
                r.folder_id = v.int()?;
                Ok(())
            }
        ),
        col!(
            "name",
            Text,
            Replace,
            |r| Value::Text(r.group.name.clone()),
            |r, v| {
                r.group.name = v.text()?;
                Ok(())
            }
        ),
        col!(
            "kind",
            Text,
            Replace,
            |r| Value::Text(r.group.kind.as_str().into()),
            |r, v| {
                let k = v.text()?;
                r.group.kind = GroupKind::parse(&k).ok_or(ColumnError::Kind { kind: k })?;
                Ok(())
            }
        ),
        col!(
            "default_response",
            Text,
            Replace,
            |r| Value::Text(r.group.default_response.clone()),
            |r, v| {
                r.group.default_response = v.text()?;
                Ok(())
            }
        ),
        col!(
            "pass_response",
            Text,
            Replace,
            |r| Value::Text(r.group.pass_response.clone()),
            |r, v| {
                r.group.pass_response = v.text()?;
                Ok(())
            }
        ),
        col!(
            "active",
            Bool,
            Replace,
            |r| Value::Bool(r.group.active),
            |r, v| {
                r.group.active = v.bool()?;
                Ok(())
            }
        ),
        col!(
            "rule_groups",
            Text,
            Replace,
            |r| json(&r.group.rule_groups),
            |r, v| {
                r.group.rule_groups = from_json(v)?;
                Ok(())
            }
        ),
        col!("data", Text, Replace, |r| json(&r.group.data), |r, v| {
            r.group.data = from_json(v)?;
            Ok(())
        }),
    ],
};

/// `batches`: one per batch, by name (unique across the verifier).
pub const BATCHES: Table<BatchRow> = Table {
    name: "batches",
    key: "name",
    columns: &[
        col!(
            "group_id",
            Int,
            Replace,
            |r| Value::Int(r.group_id),
            |r, v| {
                r.group_id = v.int()?;
                Ok(())
            }
        ),
        col!(
            "name",
            Text,
            Replace,
            |r| Value::Text(r.batch.name.clone()),
            |r, v| {
                r.batch.name = v.text()?;
                Ok(())
            }
        ),
        col!(
            "active",
            Bool,
            Replace,
            |r| Value::Bool(r.batch.active),
            |r, v| {
                r.batch.active = v.bool()?;
                Ok(())
            }
        ),
        col!(
            "template",
            Text,
            Replace,
            |r| Value::Text(r.batch.template.clone()),
            |r, v| {
                r.batch.template = v.text()?;
                Ok(())
            }
        ),
        col!(
            "lrp",
            Bool,
            Replace,
            |r| Value::Bool(r.batch.lrp),
            |r, v| {
                r.batch.lrp = v.bool()?;
                Ok(())
            }
        ),
        col!(
            "read_ctr_limit",
            Int,
            Replace,
            |r| r
                .batch
                .read_ctr_limit
                .map_or(Value::Null, |n| Value::Int(n.into())),
            |r, v| {
                r.batch.read_ctr_limit = match v.opt_int()? {
                    Some(n) => {
                        Some(u32::try_from(n).map_err(|_| ColumnError::ReadCtrLimit { limit: n })?)
                    }
                    None => None,
                };
                Ok(())
            }
        ),
    ],
};

/// `tags`: one per tag code. Associate Data (key, UID, CUID, TAGNAME, RESPONSE, STATUS, the
/// journal's meta key) replaces the stored values only when given; the configuration's
/// (pass response, rules, extended data) always replaces; the creation time stays.
pub const TAGS: Table<TagRow> = Table {
    name: "tags",
    key: "xuid",
    columns: &[
        col!(
            "xuid",
            Text,
            Replace,
            |r| Value::Text(r.tag.xuid.clone()),
            |r, v| {
                r.tag.xuid = v.text()?;
                Ok(())
            }
        ),
        col!(
            "batch_id",
            Int,
            Replace,
            |r| Value::Int(r.batch_id),
            |r, v| {
                r.batch_id = v.int()?;
                Ok(())
            }
        ),
        col!("key", Text, WhenGiven, |r| key_text(&r.tag.key), |r, v| {
            r.tag.key = key_of(v)?;
            Ok(())
        }),
        col!(
            "uid",
            Text,
            WhenGiven,
            |r| Value::text_or_null(r.tag.uid.map(hex::encode_upper).as_deref()),
            |r, v| {
                r.tag.uid = match v.opt_text()? {
                    Some(u) => match crate::query::parse_uid(&u) {
                        Some(uid) => Some(uid),
                        None => return Err(ColumnError::Uid { uid: u }),
                    },
                    None => None,
                };
                Ok(())
            }
        ),
        col!(
            "cuid",
            Text,
            WhenGiven,
            |r| Value::text_or_null(r.tag.cuid.as_deref()),
            |r, v| {
                r.tag.cuid = v.opt_text()?;
                Ok(())
            }
        ),
        col!(
            "default_response",
            Text,
            WhenGiven,
            |r| Value::text_or_null(r.tag.default_response.as_deref()),
            |r, v| {
                r.tag.default_response = v.opt_text()?;
                Ok(())
            }
        ),
        col!(
            "pass_response",
            Text,
            Replace,
            |r| Value::text_or_null(r.tag.pass_response.as_deref()),
            |r, v| {
                r.tag.pass_response = v.opt_text()?;
                Ok(())
            }
        ),
        col!(
            "meta_key",
            Text,
            WhenGiven,
            |r| key_text(&r.tag.meta_key),
            |r, v| {
                r.tag.meta_key = key_of(v)?;
                Ok(())
            }
        ),
        col!(
            "tagname",
            Text,
            WhenGiven,
            |r| Value::text_or_null(r.tag.tagname.as_deref()),
            |r, v| {
                r.tag.tagname = v.opt_text()?;
                Ok(())
            }
        ),
        Column {
            name: "active",
            kind: Kind::Bool,
            merge: Merge::WhenGiven,
            // A new tag is active unless its status says otherwise.
            new: Value::Bool(true),
            get: |r| r.tag.active.map_or(Value::Null, Value::Bool),
            set: |r, v| {
                r.tag.active = Some(v.bool()?);
                Ok(())
            },
        },
        col!(
            "rule_groups",
            Text,
            Replace,
            |r| r.tag.rule_groups.as_ref().map_or(Value::Null, json),
            |r, v| {
                r.tag.rule_groups = match v {
                    Value::Null => None,
                    v => Some(from_json(v)?),
                };
                Ok(())
            }
        ),
        col!("data", Text, Replace, |r| json(&r.tag.data), |r, v| {
            r.tag.data = from_json(v)?;
            Ok(())
        }),
        col!(
            "created_ms",
            Int,
            Kept,
            |r| Value::Int(r.created_ms),
            |r, v| {
                r.created_ms = v.int()?;
                Ok(())
            }
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.what);
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
        }
    }
}
