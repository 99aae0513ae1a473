//! The catalog as every backend stores it: one row type per table, each holding the catalog's
//! own type (a stored tag *is* a [`Tag`], with its row id, batch and creation time), column
//! values as both backends exchange them ([`Value`]), the description of a table's columns
//! ([`Table`], listed once in `schema`), and the one place where rows become a [`Catalog`]
//! (linking tags to batches to groups to folders). Backends only move [`Value`]s.

use std::collections::HashMap;

use crate::catalog::{Batch, Catalog, Folder, Group, Tag};

mod error;
pub use error::{ColumnError, RowError, ValueError};

/// A column value as both backends read and write it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// An integer (`INTEGER`, `bigint`).
    Int(i64),
    /// A boolean (`INTEGER` 0/1 in SQLite, `boolean` in PostgreSQL).
    Bool(bool),
    /// Text.
    Text(String),
}

/// Key text is wiped when a row of values is dropped through `Zeroizing`.
impl zeroize::Zeroize for Value {
    fn zeroize(&mut self) {
        if let Value::Text(s) = self {
            s.zeroize();
        }
        *self = Value::Null;
    }
}

impl Value {
    /// `Text`, or `Null` for `None`.
    pub fn text_or_null(s: Option<&str>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.to_string()))
    }

    /// The text, or `None` for `Null`.
    pub fn opt_text(self) -> Result<Option<String>, ValueError> {
        match self {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            found => Err(ValueError::ExpectedText { found }),
        }
    }

    /// The text (`Null` refused).
    pub fn text(self) -> Result<String, ValueError> {
        self.opt_text()?.ok_or(ValueError::Missing)
    }

    /// The text, borrowed (`None` for `Null` or another kind).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean (SQLite's 0/1 integers read as booleans).
    pub fn bool(self) -> Result<bool, ValueError> {
        match self {
            Value::Bool(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            found => Err(ValueError::ExpectedBool { found }),
        }
    }

    /// The boolean, borrowed (`None` for `Null` or another kind).
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            Value::Int(i) => Some(i != 0),
            _ => None,
        }
    }

    /// The integer.
    pub fn int(self) -> Result<i64, ValueError> {
        match self {
            Value::Int(i) => Ok(i),
            found => Err(ValueError::ExpectedInt { found }),
        }
    }

    /// The integer, or `None` for `Null`.
    pub fn opt_int(self) -> Result<Option<i64>, ValueError> {
        match self {
            Value::Null => Ok(None),
            v => v.int().map(Some),
        }
    }

    /// The integer, borrowed (`None` for `Null` or another kind).
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}

/// A column's SQL type, as each dialect spells it (see the migrations in `schema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `TEXT` / `text`.
    Text,
    /// `INTEGER` / `boolean`.
    Bool,
    /// `INTEGER` / `bigint`.
    Int,
}

/// How an import merges a column into a row already stored (the import merge, written once:
/// see `merge::import`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The imported value replaces the stored one (the configuration's values).
    Replace,
    /// The imported value replaces the stored one only when given (not `Null`): Associate
    /// Data, which a later import may leave out.
    WhenGiven,
    /// The stored value stays (the creation time).
    Kept,
}

/// One column of a catalog table: its name and type, how an import merges it, and how it
/// maps to the row type `R`.
pub struct Column<R> {
    /// The column's name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// How an import merges it.
    pub merge: Merge,
    /// The value of a new row when the import gives none (`Null`: none).
    pub new: Value,
    /// The row's value.
    pub get: fn(&R) -> Value,
    /// Sets the row's field from a stored value; `Err` says what is wrong with it.
    pub set: fn(&mut R, Value) -> Result<(), ColumnError>,
}

/// A row type with an id (the table's `id`, or SQLite's `rowid` for tags).
pub trait Row: Default {
    /// The row id.
    fn id_mut(&mut self) -> &mut i64;
}

/// A catalog table: its name, the columns of its conflict key (an import updates the row
/// with the same key), and its columns in order (the row id aside).
pub struct Table<R: 'static> {
    /// The table's name.
    pub name: &'static str,
    /// The unique key an upsert conflicts on (`name`, `folder_id, name`, `xuid`).
    pub key: &'static str,
    /// The columns, the row id aside.
    pub columns: &'static [Column<R>],
}

impl<R: Row> Table<R> {
    /// The row's values, in column order.
    pub fn values(&self, r: &R) -> Vec<Value> {
        self.columns.iter().map(|c| (c.get)(r)).collect()
    }

    /// The row of `values` (the row id first, then the columns in order), taken out of
    /// them: moved, not copied, so key text exists once (the caller wipes what is left).
    pub fn read(&self, values: &mut [Value]) -> Result<R, RowError> {
        let mut r = R::default();
        let (id, cols) = values.split_first_mut().ok_or(RowError::Empty)?;
        let id = std::mem::take(id).int().map_err(RowError::Id)?;
        *r.id_mut() = id;
        for (c, v) in self.columns.iter().zip(cols) {
            (c.set)(&mut r, std::mem::take(v)).map_err(|source| RowError::Column {
                table: self.name,
                id,
                column: c.name,
                source,
            })?;
        }
        Ok(r)
    }

    /// The row an import stores: each column of `incoming` merged with the stored row's
    /// (`stored`, in column order) by the column's [`Merge`].
    pub fn merge(&self, incoming: Vec<Value>, stored: Option<&[Value]>) -> Vec<Value> {
        self.columns
            .iter()
            .zip(incoming)
            .enumerate()
            .map(|(i, (c, v))| {
                let old = stored.and_then(|s| s.get(i));
                let v = match (c.merge, old) {
                    (Merge::Kept, Some(old)) => old.clone(),
                    (Merge::WhenGiven, Some(old)) if v == Value::Null => old.clone(),
                    _ => v,
                };
                if v == Value::Null && old.is_none() {
                    c.new.clone()
                } else {
                    v
                }
            })
            .collect()
    }
}

/// A stored folder.
#[derive(Debug, Default)]
pub struct FolderRow {
    pub id: i64,
    pub folder: Folder,
}

/// A stored tag group.
#[derive(Debug, Default)]
pub struct GroupRow {
    pub id: i64,
    pub folder_id: i64,
    pub group: Group,
}

/// A stored batch.
#[derive(Debug, Default)]
pub struct BatchRow {
    pub id: i64,
    pub group_id: i64,
    pub batch: Batch,
}

/// A stored tag: the catalog's [`Tag`] (its `read_ctr` lives in `counters`), its batch and
/// when it was first imported.
#[derive(Debug, Default)]
pub struct TagRow {
    pub id: i64,
    pub batch_id: i64,
    pub created_ms: i64,
    pub tag: Tag,
}

macro_rules! row_id {
    ($($t:ty),*) => {$(
        impl Row for $t {
            fn id_mut(&mut self) -> &mut i64 {
                &mut self.id
            }
        }
    )*};
}
row_id!(FolderRow, GroupRow, BatchRow, TagRow);

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
    pub fn assemble(self) -> Result<(Catalog, HashMap<String, u64>), RowError> {
        let mut created = HashMap::with_capacity(self.tags.len());
        let mut folders: Vec<Folder> = Vec::with_capacity(self.folders.len());
        let mut folder_index = HashMap::new();
        for f in self.folders {
            folder_index.insert(f.id, folders.len());
            folders.push(f.folder);
        }
        let mut groups: Vec<(usize, Group)> = Vec::with_capacity(self.groups.len());
        let mut group_index = HashMap::new();
        for g in self.groups {
            let fi = *folder_index
                .get(&g.folder_id)
                .ok_or_else(|| RowError::NoFolder {
                    group: g.group.name.clone(),
                    folder_id: g.folder_id,
                })?;
            group_index.insert(g.id, groups.len());
            groups.push((fi, g.group));
        }
        let mut batches: Vec<(usize, Batch)> = Vec::with_capacity(self.batches.len());
        let mut batch_index = HashMap::new();
        for b in self.batches {
            let gi = *group_index
                .get(&b.group_id)
                .ok_or_else(|| RowError::NoGroup {
                    batch: b.batch.name.clone(),
                    group_id: b.group_id,
                })?;
            batch_index.insert(b.id, batches.len());
            batches.push((gi, b.batch));
        }
        for t in self.tags {
            let bi = *batch_index
                .get(&t.batch_id)
                .ok_or_else(|| RowError::NoBatch {
                    xuid: t.tag.xuid.clone(),
                    batch_id: t.batch_id,
                })?;
            created.insert(t.tag.xuid.clone(), t.created_ms.max(0) as u64);
            batches[bi].1.tags.push(t.tag);
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
