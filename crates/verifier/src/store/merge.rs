//! The catalog logic of both stores, written once: loading the stored state, the import merge
//! and the management API's change rules. Each runs inside one transaction of a backend,
//! which only moves rows ([`CatalogTx`]: the SQL, where the dialects differ); what is merged,
//! checked and logged is decided here.

use std::collections::HashMap;

use super::rows::{
    BatchRow, CatalogRows, FolderRow, GroupRow, Row, RowError, Table, TagRow, Value,
};
use super::schema::{BATCHES, FOLDERS, GROUPS, TAGS};
use super::{ChangeRecord, Loaded, ScanCounts, StoreError, TagPatch};
use crate::catalog::Catalog;

/// What a backend does inside one catalog transaction (its own SQL; no decisions).
pub(super) trait CatalogTx {
    /// Rows of `table` (the row id, then its columns in order), in insertion order; only
    /// those whose column `filter.0` equals `filter.1` when given.
    async fn select<R: Row>(
        &mut self,
        table: &Table<R>,
        filter: Option<(&str, &Value)>,
    ) -> Result<Vec<Vec<Value>>, StoreError>;
    /// Inserts `row` (column values in order), or updates the row with the same key
    /// ([`Table::key`]) to these values; returns its row id.
    async fn upsert<R: Row>(&mut self, table: &Table<R>, row: &[Value]) -> Result<i64, StoreError>;
    /// [`CatalogTx::upsert`] of many rows (one statement where the dialect allows).
    async fn upsert_all<R: Row>(
        &mut self,
        table: &Table<R>,
        rows: &[Vec<Value>],
    ) -> Result<(), StoreError>;
    /// Raises each tag's counter to the one given, forward only (`time_ms` = `now`).
    async fn raise_counters(
        &mut self,
        counters: &[(&str, u32)],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Last accepted counter per tag.
    async fn counters(&mut self) -> Result<HashMap<String, u32>, StoreError>;
    /// Scans logged per tag ([`super::COUNTS_AS_SCAN`]).
    async fn scan_counts(&mut self) -> Result<HashMap<String, ScanCounts>, StoreError>;
    /// Appends to the change log.
    async fn log_changes(&mut self, changes: &[ChangeRecord]) -> Result<(), StoreError>;
    /// Names the database in an error (its file, or `postgres://user@host:port/db`).
    fn db(&self) -> String;
    /// The error for stored rows that cannot be read or do not hold together, naming the
    /// database.
    fn corrupt_row(&self, source: RowError) -> StoreError {
        StoreError::CorruptRow {
            db: self.db(),
            source,
        }
    }
}

async fn rows<T: CatalogTx, R: Row>(
    tx: &mut T,
    table: &Table<R>,
    filter: Option<(&str, &Value)>,
) -> Result<Vec<R>, StoreError> {
    let mut out = Vec::new();
    for v in tx.select(table, filter).await? {
        let mut v = zeroize::Zeroizing::new(v);
        out.push(table.read(&mut v).map_err(|e| tx.corrupt_row(e))?);
    }
    Ok(out)
}

/// Everything stored.
pub(super) async fn load<T: CatalogTx>(tx: &mut T) -> Result<Loaded, StoreError> {
    let all = CatalogRows {
        folders: rows(tx, &FOLDERS, None).await?,
        groups: rows(tx, &GROUPS, None).await?,
        batches: rows(tx, &BATCHES, None).await?,
        tags: rows(tx, &TAGS, None).await?,
    };
    let (catalog, created) = all.assemble().map_err(|e| tx.corrupt_row(e))?;
    Ok(Loaded {
        catalog,
        created,
        counters: tx.counters().await?,
        scan_counts: tx.scan_counts().await?,
    })
}

/// Merges `catalog` into the stored one (see [`super::Store::import`]): folders, groups and
/// batches by name take the imported values; each tag's columns merge by their
/// [`super::rows::Merge`]; a read-back counter raises the tag's counter. `Invalid` (and the
/// caller rolls back) when the merged catalog does not hold together.
pub(super) async fn import<T: CatalogTx>(
    tx: &mut T,
    catalog: Catalog,
    now: i64,
) -> Result<(), StoreError> {
    let mut stored: HashMap<String, zeroize::Zeroizing<Vec<Value>>> = HashMap::new();
    for mut v in tx.select(&TAGS, None).await? {
        let values = v.split_off(1);
        if let Some(x) = values.first().and_then(Value::as_text) {
            stored.insert(x.to_string(), zeroize::Zeroizing::new(values));
        }
    }
    for mut f in catalog.folders {
        let groups = std::mem::take(&mut f.groups);
        let row = FolderRow { id: 0, folder: f };
        let folder_id = tx.upsert(&FOLDERS, &FOLDERS.values(&row)).await?;
        for mut g in groups {
            let batches = std::mem::take(&mut g.batches);
            let row = GroupRow {
                id: 0,
                folder_id,
                group: g,
            };
            let group_id = tx.upsert(&GROUPS, &GROUPS.values(&row)).await?;
            for mut b in batches {
                let tags = std::mem::take(&mut b.tags);
                let row = BatchRow {
                    id: 0,
                    group_id,
                    batch: b,
                };
                let batch_id = tx.upsert(&BATCHES, &BATCHES.values(&row)).await?;
                let read: Vec<(String, u32)> = tags
                    .iter()
                    .filter_map(|t| t.read_ctr.map(|c| (t.xuid.clone(), c)))
                    .collect();
                let mut merged = zeroize::Zeroizing::new(Vec::with_capacity(tags.len()));
                for tag in tags {
                    let old = stored.get(&tag.xuid).map(|v| v.as_slice());
                    let row = TagRow {
                        id: 0,
                        batch_id,
                        created_ms: now,
                        tag,
                    };
                    merged.push(TAGS.merge(TAGS.values(&row), old));
                }
                tx.upsert_all(&TAGS, &merged).await?;
                if !read.is_empty() {
                    let read: Vec<(&str, u32)> =
                        read.iter().map(|(x, c)| (x.as_str(), *c)).collect();
                    tx.raise_counters(&read, now).await?;
                }
            }
        }
    }
    // The merged catalog must hold together (e.g. a CUID now used twice in a folder):
    // otherwise nothing is imported.
    let merged = load(tx).await?;
    merged.catalog.validate().map_err(|err| {
        StoreError::Invalid(format!("importing would make the catalog invalid: {err}"))
    })
}

/// The folder row id of the batch `batch_id`.
async fn folder_of<T: CatalogTx>(tx: &mut T, batch_id: i64) -> Result<i64, StoreError> {
    let batch = rows(tx, &BATCHES, Some(("id", &Value::Int(batch_id)))).await?;
    let group_id = batch.first().map(|b| b.group_id);
    let group_id = group_id.ok_or_else(|| tx.corrupt_row(RowError::MissingBatch { batch_id }))?;
    let group = rows(tx, &GROUPS, Some(("id", &Value::Int(group_id)))).await?;
    let folder_id = group.first().map(|g| g.folder_id);
    folder_id.ok_or_else(|| tx.corrupt_row(RowError::MissingGroup { group_id }))
}

/// A management API change (see [`super::Store::update_tag`]): each changed field is logged
/// with its old and new value; `Invalid` (nothing changed) when the tag is unknown or the new
/// CUID is another tag's in the same folder.
pub(super) async fn update_tag<T: CatalogTx>(tx: &mut T, p: &TagPatch) -> Result<(), StoreError> {
    let xuid = Value::Text(p.xuid.clone());
    let Some(mut t) = rows(tx, &TAGS, Some(("xuid", &xuid))).await?.pop() else {
        return Err(StoreError::Invalid(format!("no tag code {}", p.xuid)));
    };
    let status = |a: bool| if a { "Active" } else { "Inactive" }.to_string();
    let mut log = Vec::new();
    let mut change = |field: &str, old: Option<String>, new: Option<String>| {
        log.push(ChangeRecord {
            time_ms: p.time_ms,
            xuid: p.xuid.clone(),
            field: field.to_string(),
            old,
            new,
            remote: p.remote.clone(),
        })
    };
    if let Some(dr) = &p.default_response {
        let old = std::mem::replace(&mut t.tag.default_response, dr.clone());
        change("default_response", old, dr.clone());
    }
    if let Some(a) = p.active {
        let old = t.tag.active.replace(a).unwrap_or(true);
        change("status", Some(status(old)), Some(status(a)));
    }
    if let Some(c) = &p.cuid {
        let folder = folder_of(tx, t.batch_id).await?;
        for other in rows(tx, &TAGS, Some(("cuid", &Value::Text(c.clone())))).await? {
            if other.tag.xuid != p.xuid && folder_of(tx, other.batch_id).await? == folder {
                return Err(StoreError::Invalid(format!(
                    "CUID {c:?} is already tag {}'s in this folder",
                    other.tag.xuid
                )));
            }
        }
        let old = t.tag.cuid.replace(c.clone());
        change("cuid", old, Some(c.clone()));
    }
    let values = zeroize::Zeroizing::new(TAGS.values(&t));
    tx.upsert(&TAGS, &values).await?;
    tx.log_changes(&log).await
}
