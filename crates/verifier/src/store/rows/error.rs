//! Why stored rows cannot be read back: a value of the wrong kind ([`ValueError`]), a column
//! whose value the catalog's type refuses ([`ColumnError`]), a row that names its column and
//! row id, or rows that do not link up ([`RowError`]). The store wraps a [`RowError`] in
//! `StoreError::CorruptRow`, naming the database.

use super::Value;
use crate::catalog::CatalogError;
use crate::crypto::KeyParseError;

/// A column value of another kind than the column's (the value found).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Text (or `Null`) was expected.
    #[error("expected text, found {found:?}")]
    ExpectedText {
        /// The value found.
        found: Value,
    },
    /// `Null` in a column that needs a value.
    #[error("missing")]
    Missing,
    /// A boolean (or SQLite's 0/1 integer) was expected.
    #[error("expected a boolean, found {found:?}")]
    ExpectedBool {
        /// The value found.
        found: Value,
    },
    /// An integer was expected.
    #[error("expected an integer, found {found:?}")]
    ExpectedInt {
        /// The value found.
        found: Value,
    },
}

/// Why a stored value cannot become the row's field (a column's `set`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnError {
    /// The value is of the wrong kind.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A JSON column (fields, rule groups, extended data) does not parse.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A key column is not a key (the key text is never kept).
    #[error("bad key")]
    Key(#[source] KeyParseError),
    /// A UID column is not 14 hex digits (the text stored).
    #[error("bad UID")]
    Uid {
        /// The text stored.
        uid: String,
    },
    /// A group kind neither `standard` nor `authentication` (the text stored).
    #[error("unknown kind {kind}")]
    Kind {
        /// The text stored.
        kind: String,
    },
    /// A CORS setting the catalog refuses.
    #[error(transparent)]
    Cors(Box<CatalogError>),
    /// A `read_ctr_limit` out of the counter's range (the number stored).
    #[error("read_ctr_limit {limit}")]
    ReadCtrLimit {
        /// The number stored.
        limit: i64,
    },
}

/// Why stored rows do not make a catalog: a row that cannot be read, or one that names a
/// parent row that is not there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// A row without even its id.
    #[error("empty row")]
    Empty,
    /// The row id is not an integer.
    #[error(transparent)]
    Id(ValueError),
    /// A column of a row cannot be read (table, row id, column).
    #[error("{table} row {id}: {column}: {source}")]
    Column {
        /// The table.
        table: &'static str,
        /// The row id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What is wrong with its value.
        #[source]
        source: ColumnError,
    },
    /// A group names a folder that is not stored.
    #[error("group {group}: no folder {folder_id}")]
    NoFolder {
        /// The group's name.
        group: String,
        /// The folder id it names.
        folder_id: i64,
    },
    /// A batch names a group that is not stored.
    #[error("batch {batch}: no group {group_id}")]
    NoGroup {
        /// The batch's name.
        batch: String,
        /// The group id it names.
        group_id: i64,
    },
    /// The batch a tag is in is not stored (the batch id).
    #[error("no batch {batch_id}")]
    MissingBatch {
        /// The batch id looked up.
        batch_id: i64,
    },
    /// The group a batch is in is not stored (the group id).
    #[error("no group {group_id}")]
    MissingGroup {
        /// The group id looked up.
        group_id: i64,
    },
    /// A tag names a batch that is not stored.
    #[error("tag {xuid}: no batch {batch_id}")]
    NoBatch {
        /// The tag code.
        xuid: String,
        /// The batch id it names.
        batch_id: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::super::super::schema::{FOLDERS, GROUPS, TAGS};
    use super::super::{CatalogRows, GroupRow, TagRow};
    use super::*;

    fn folder_row(cors: &str, active: Value) -> Vec<Value> {
        vec![
            Value::Int(7),
            Value::Text("acme".into()),
            Value::Text("acme".into()),
            Value::Null,
            Value::Text(cors.into()),
            active,
            Value::Text("[]".into()),
        ]
    }

    #[test]
    fn a_bad_value_names_table_row_and_column() {
        assert!(FOLDERS
            .read(&mut folder_row("none", Value::Bool(true)))
            .is_ok());
        let e = FOLDERS
            .read(&mut folder_row("none", Value::Text("yes".into())))
            .unwrap_err();
        assert!(matches!(
            &e,
            RowError::Column {
                table: "folders",
                id: 7,
                column: "active",
                source: ColumnError::Value(ValueError::ExpectedBool { found: Value::Text(t) }),
            } if t == "yes"
        ));
        assert_eq!(
            e.to_string(),
            r#"folders row 7: active: expected a boolean, found Text("yes")"#
        );
        let e = FOLDERS
            .read(&mut folder_row("ftp://x", Value::Bool(true)))
            .unwrap_err();
        let RowError::Column {
            column: "cors",
            source: ColumnError::Cors(c),
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert!(matches!(
            **c,
            CatalogError::Cors {
                source: crate::catalog::OriginError::Scheme,
                ..
            }
        ));
        let mut bad_json = folder_row("none", Value::Bool(true));
        bad_json[6] = Value::Text("{".into());
        let e = FOLDERS.read(&mut bad_json).unwrap_err();
        assert!(matches!(
            e,
            RowError::Column {
                column: "fields",
                source: ColumnError::Json(_),
                ..
            }
        ));
        assert!(matches!(
            FOLDERS.read(&mut []).unwrap_err(),
            RowError::Empty
        ));
        let e = FOLDERS.read(&mut [Value::Text("x".into())]).unwrap_err();
        assert_eq!(e.to_string(), r#"expected an integer, found Text("x")"#);
        assert!(matches!(e, RowError::Id(ValueError::ExpectedInt { .. })));
    }

    #[test]
    fn a_bad_key_or_kind_is_typed_and_keeps_its_cause() {
        let mut tag = vec![Value::Null; TAGS.columns.len() + 1];
        tag[0] = Value::Int(3);
        tag[1] = Value::Text("q8w3sbcz".into());
        tag[2] = Value::Int(1);
        tag[3] = Value::Text("00112233".into());
        let e = TAGS.read(&mut tag).unwrap_err();
        assert_eq!(e.to_string(), "tags row 3: key: bad key");
        assert!(matches!(
            e,
            RowError::Column {
                source: ColumnError::Key(KeyParseError::Length(8)),
                ..
            }
        ));
        let mut group = vec![Value::Null; GROUPS.columns.len() + 1];
        group[0] = Value::Int(2);
        group[1] = Value::Int(1);
        group[2] = Value::Text("g".into());
        group[3] = Value::Text("premium".into());
        let e = GROUPS.read(&mut group).unwrap_err();
        assert_eq!(e.to_string(), "groups row 2: kind: unknown kind premium");
        assert!(matches!(
            e,
            RowError::Column { source: ColumnError::Kind { kind }, .. } if kind == "premium"
        ));
    }

    #[test]
    fn rows_that_do_not_link_name_the_missing_parent() {
        let mut rows = CatalogRows::default();
        rows.groups.push(GroupRow {
            id: 1,
            folder_id: 9,
            ..GroupRow::default()
        });
        let e = rows.assemble().unwrap_err();
        assert!(matches!(e, RowError::NoFolder { folder_id: 9, .. }));
        let mut rows = CatalogRows::default();
        let mut t = TagRow {
            batch_id: 4,
            ..TagRow::default()
        };
        t.tag.xuid = "q8w3sbcz".into();
        rows.tags.push(t);
        let e = rows.assemble().unwrap_err();
        assert_eq!(e.to_string(), "tag q8w3sbcz: no batch 4");
        assert!(matches!(e, RowError::NoBatch { batch_id: 4, xuid } if xuid == "q8w3sbcz"));
    }
}
