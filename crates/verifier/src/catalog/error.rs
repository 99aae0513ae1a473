//! Why a catalog could not be read or is not valid: [`CatalogError`], which keeps the typed
//! error of the rule at fault (text, origin, rules, responses, extended data, template) as its
//! source, with where it is (folder, group, batch, tag, file and line).

use std::path::PathBuf;

use crate::provision::code_list::CodeListError;
use crate::provision::journal::JournalError;
use crate::rules::{RuleError, RuleSetError, RulesError};
use crate::subtags::ResponseError;
use crate::sun::TemplateError as SunTemplateError;
use crate::text::TextError;

use super::OriginError;

/// Why a catalog could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file has a bad line.
    #[error("{path} line {line}: {what}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// An Associate Data CSV file is not a code list (its error names the file and line).
    #[error(transparent)]
    CodeList(CodeListError),
    /// A batch directory's journal cannot be read (with the journal's help).
    #[error("{path}: {source} ({})", .source.help())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The journal's error.
        #[source]
        source: JournalError,
    },
    /// A tag's keys in a batch directory's journal cannot be had.
    #[error("{dir}: {source}")]
    JournalKeys {
        /// The batch directory.
        dir: PathBuf,
        /// The journal's error.
        #[source]
        source: JournalError,
    },
    /// A JSON file (a batch directory's `summary.json`) does not parse.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A CUID or TAGNAME cell of a CSV file breaks the text rule.
    #[error("{path} line {line}: {source}")]
    CsvText {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The text rule broken.
        #[source]
        source: TextError,
    },
    /// A RESPONSE cell of a CSV file does not compile.
    #[error("{path} line {line}: RESPONSE: {source}")]
    CsvResponse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why the response does not compile.
        #[source]
        source: ResponseError,
    },
    /// A rule of the configuration file does not parse.
    #[error("{path} line {line}: {source}")]
    ConfigRule {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line number of the rule.
        line: usize,
        /// Why the rule does not parse.
        #[source]
        source: RuleError,
    },
    /// A response or extended data value of the configuration file does not compile.
    #[error("{path} line {line}: {source}")]
    ConfigResponse {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line number of the response.
        line: usize,
        /// Why the response does not compile.
        #[source]
        source: ResponseError,
    },
    /// The configuration file is not TOML of the expected shape (toml's message names the
    /// line and column).
    #[error("{path}: {source}")]
    Toml {
        /// The configuration file.
        path: PathBuf,
        /// toml's error.
        #[source]
        source: toml::de::Error,
    },
    /// An error at a line of the configuration file (the folder, group, batch or tag entry
    /// that causes it).
    #[error("{path} line {line}: {source}")]
    At {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line number of the entry.
        line: usize,
        /// The error.
        #[source]
        source: Box<CatalogError>,
    },
    /// An error of the catalog a configuration file describes, no line known.
    #[error("{path}: {source}")]
    InFile {
        /// The configuration file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<CatalogError>,
    },
    /// A folder name, CUID or TAGNAME breaks the text rule.
    #[error(transparent)]
    Text(#[from] TextError),
    /// A group name breaks the text rule.
    #[error("folder {folder:?}: {source}")]
    GroupName {
        /// The group's folder.
        folder: String,
        /// The text rule broken.
        #[source]
        source: TextError,
    },
    /// A batch name breaks the text rule.
    #[error(
        "{source} (a batch is named after its files unless `name = \"…\"` is set in the config)"
    )]
    BatchName {
        /// The text rule broken.
        #[source]
        source: TextError,
    },
    /// A CORS setting is not `none`, `*` or an origin as a browser sends it.
    #[error("CORS origin {origin:?}: {source}. An origin is scheme://host[:port] exactly, as a browser sends it (e.g. https://shop.example.com); or use none or *")]
    Cors {
        /// The setting given.
        origin: String,
        /// Why it is not an origin.
        #[source]
        source: OriginError,
    },
    /// A folder's CORS origin is not one a browser sends.
    #[error("folder {folder:?}: CORS origin {origin:?}: {source}")]
    FolderCors {
        /// The folder.
        folder: String,
        /// Its origin.
        origin: String,
        /// Why it is not an origin.
        #[source]
        source: OriginError,
    },
    /// A tag group's Rule Set does not compile.
    #[error("folder {folder:?}, group {group:?}: {source}")]
    GroupRules {
        /// The folder.
        folder: String,
        /// The tag group.
        group: String,
        /// Why its Rule Set does not compile.
        #[source]
        source: RuleSetError,
    },
    /// A tag group's extended data is not valid.
    #[error("folder {folder:?}, group {group:?}: {source}")]
    GroupData {
        /// The folder.
        folder: String,
        /// The tag group.
        group: String,
        /// What is wrong with its extended data.
        #[source]
        source: DataError,
    },
    /// A tag's own Rule Set does not compile.
    #[error("tag {xuid}: {source}")]
    TagRules {
        /// The tag code.
        xuid: String,
        /// Why its Rule Set does not compile.
        #[source]
        source: RuleSetError,
    },
    /// A tag's extended data is not valid.
    #[error("tag {xuid}: {source}")]
    TagData {
        /// The tag code.
        xuid: String,
        /// What is wrong with its extended data.
        #[source]
        source: DataError,
    },
    /// An authentication batch's tags cannot be verified along its template.
    #[error("batch {batch:?} cannot be verified: {source}")]
    Template {
        /// The batch.
        batch: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
    /// Rules, responses or extended data could not be compiled into the registry.
    #[error(transparent)]
    Compile(#[from] RulesError),
    /// Extended data that breaks the folder's fields, where the place is said around it (a
    /// configuration file's line).
    #[error(transparent)]
    Data(#[from] DataError),
    /// The catalog breaks a rule of the model (described).
    #[error("{0}")]
    Invalid(String),
}

/// Why extended data values (of a group or a tag) are not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A field the folder does not declare.
    #[error("extended data field {field:?} is not declared by folder {folder:?} (fields = [...])")]
    Undeclared {
        /// The field.
        field: String,
        /// The folder.
        folder: String,
    },
    /// A value that does not compile as a response.
    #[error("{source}")]
    Value {
        /// The field.
        field: String,
        /// Why its value does not compile.
        #[source]
        source: ResponseError,
    },
}

/// Why the tags of an authentication batch cannot be verified along its template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template does not parse.
    #[error("template {template:?}: {source}")]
    Parse {
        /// The template.
        template: String,
        /// Why it does not parse.
        #[source]
        source: SunTemplateError,
    },
    /// The template names no tag.
    #[error(
        "template {template:?} has no {{xuid}}, {{uid}} or {{picc}}: a scan would not name its tag"
    )]
    NoTag {
        /// The template.
        template: String,
    },
    /// `{picc}` in the template, and a tag without its SDM meta read key.
    #[error("its template has {{picc}} and tag {xuid} has no SDM meta read key (import the batch directory, whose journal.jsonl holds it)")]
    NoMetaKey {
        /// The tag code.
        xuid: String,
    },
    /// The template identifies tags by UID, and a tag has none.
    #[error("its template identifies tags by UID and tag {xuid} has no UID (associate.csv)")]
    NoUid {
        /// The tag code.
        xuid: String,
    },
}
