//! The verifier's configuration file (TOML): server settings and folder → tag group → batch,
//! rules, statuses and extended data. See docs/verifier.md for a commented example. Paths are
//! relative to the file's directory. Responses, subtags, rules and extended data fields are
//! checked when the file is loaded; an error names the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::catalog::{CatalogError, Cors, GroupKind};
use crate::crypto::sdm::SdmMode;

mod build;
mod check;
mod flags;

pub use flags::{FlagFolder, DEFAULT_AID, FLAG_FOLDER};

use check::{Checker, TopSpans};

/// The verifier's configuration file (`tag424 serve --config FILE`, TOML; docs/verifier.md).
/// Options given on the command line win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to listen on, `IP:PORT`.
    pub listen: Option<String>,
    /// The database: a SQLite file (a PostgreSQL URL is given with `--db`).
    pub db: Option<PathBuf>,
    /// CORS for answers that belong to no folder (unknown tag, malformed query).
    pub cors: Option<String>,
    /// HTTPS: PEM certificate chain (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: PEM private key (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// HTTPS with a self-signed certificate for the listen address and localhost, kept beside
    /// the database and reused.
    pub tls_self_signed: Option<bool>,
    /// Token of the management API (`PATCH /v1/x/…`, `/v1/a/…`); unset = API off.
    pub management_token: Option<String>,
    /// Requests per second per client address and per token (0 = off).
    pub rate_limit: Option<u32>,
    /// Connections one client address may hold open at once (0 = no per-address cap).
    pub connections_per_address: Option<usize>,
    /// Scan log retention (rows that did not pass): `Nd` days, `N` rows, `Nd,N`, or `all`;
    /// checked when the file is read, so an error names its line.
    #[serde(default, deserialize_with = "retention")]
    pub log_retention: Option<crate::store::Retention>,
    /// The folders (`[[folder]]`): accounts with their tag groups.
    #[serde(default)]
    pub folder: Vec<Spanned<FolderConfig>>,
    /// The file this was read from and its text, so that errors found later (a batch that
    /// cannot be read) name the file and line. `None` for a configuration made in code.
    #[serde(skip)]
    source: Option<Source>,
}

/// `log_retention` read through [`Retention::parse`](crate::store::Retention::parse).
fn retention<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::store::Retention>, D::Error> {
    let s = String::deserialize(d)?;
    crate::store::Retention::parse(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Where a configuration was read from.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
}

/// One folder (`[[folder]]`): the platform's account level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// The folder's name (`{folder}`).
    pub name: String,
    /// Account id, for `c=…&a=…` and `u=…&a=…` lookups.
    pub aid: String,
    /// API token (`r=…` or an `X-API-Key` header); unset: none needed.
    pub token: Option<String>,
    /// CORS for answers about this folder's tags: `none`, `*` or one origin.
    pub cors: Option<String>,
    /// Inactive folders answer every scan of theirs with an error.
    #[serde(default = "yes")]
    pub active: bool,
    /// Extended data fields added to the answer.
    #[serde(default)]
    pub fields: Vec<String>,
    /// The folder's tag groups (`[[folder.group]]`).
    #[serde(default)]
    pub group: Vec<Spanned<GroupConfig>>,
}

/// One Rule Group: `rules` (all must hold) and its `response`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroupConfig {
    /// The rules, one per string (docs/verifier.md), e.g. `"auth_pass"`, `"scan_count < 100"`.
    pub rules: Vec<Spanned<String>>,
    /// The Dynamic Response answered when every rule holds.
    pub response: Spanned<String>,
}

/// One tag group (`[[folder.group]]`): its kind, rules and batches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The group's name (`{taggroup}`).
    pub name: String,
    /// Authentication (SUN checked) or standard (tag code only).
    #[serde(default)]
    pub kind: GroupKind,
    /// Inactive groups answer `tg_inactive`.
    #[serde(default = "yes")]
    pub active: bool,
    /// The Default Response (default: `Fail` for authentication, `Found` for standard).
    pub default_response: Option<Spanned<String>>,
    /// The response of a verified scan when no Rule Group is set (default `Pass`).
    pub pass_response: Option<Spanned<String>>,
    /// Up to three ordered Rule Groups.
    #[serde(default)]
    pub rule_group: Vec<RuleGroupConfig>,
    /// Extended data values: field → text (may hold subtags).
    #[serde(default)]
    pub data: BTreeMap<String, Spanned<String>>,
    /// The group's batches (`[[folder.group.batch]]`), with where each is in the file.
    #[serde(default)]
    pub batch: Vec<Spanned<BatchConfig>>,
    /// Per-tag rule overrides.
    #[serde(default)]
    pub tag: Vec<TagConfig>,
}

/// One batch of a tag group: where its tags and keys are read from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The batch's name (`{batch}`; default: its sources' paths).
    pub name: Option<String>,
    /// A `tag424 batch` output directory.
    pub dir: Option<Spanned<PathBuf>>,
    /// Associate Data CSV files (XUID plus KEY, UID, CUID, TAGNAME, RESPONSE, STATUS).
    #[serde(default)]
    pub files: Vec<Spanned<PathBuf>>,
    /// The URL template the batch was encoded with, when its directory does not record it.
    pub template: Option<String>,
    /// `"aes"` or `"lrp"`: the tags' mode, when the batch's journal does not record it
    /// (Associate Data files of LRP tags).
    pub mode: Option<SdmMode>,
    /// Inactive batches answer `batch_inactive`.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// One tag code's overrides (`[[folder.group.tag]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    /// The tag code.
    pub xuid: Spanned<String>,
    /// The tag's own Default Response.
    pub default_response: Option<Spanned<String>>,
    /// The tag's own pass response.
    pub pass_response: Option<Spanned<String>>,
    /// The tag's own Rule Groups (replace the group's).
    pub rule_group: Option<Vec<RuleGroupConfig>>,
    /// The tag's extended data values (replace the group's, field by field).
    #[serde(default)]
    pub data: BTreeMap<String, Spanned<String>>,
    /// The tag code's status (`Inactive` answers an error).
    pub active: Option<bool>,
}

impl ConfigFile {
    /// Reads and checks a configuration file; errors name the line.
    pub fn load(path: &Path) -> Result<ConfigFile, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // toml's message names the line and column and shows it.
        let toml_err = |source| CatalogError::Toml {
            path: path.to_path_buf(),
            source,
        };
        let mut cfg: ConfigFile = toml::from_str(&text).map_err(toml_err)?;
        // Tokens are secrets: a file holding one is owner-only, as a token file must be.
        let holds_token = cfg.management_token.is_some()
            || cfg.folder.iter().any(|f| f.get_ref().token.is_some());
        if holds_token {
            let meta = std::fs::metadata(path).map_err(|source| CatalogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if crate::private_fs::others_can_access(&meta) {
                return Err(CatalogError::Invalid(format!(
                    "{}: holds a token (management_token or a folder's token) and is readable by others; make it owner-only: chmod 600 {}",
                    path.display(),
                    path.display()
                )));
            }
        }
        // Every response, subtag and rule, with its line.
        let ck = Checker { path, text: &text };
        // The server-wide values the library can check, with their line.
        let top: TopSpans = toml::from_str(&text).map_err(toml_err)?;
        if let Some(l) = &top.listen {
            if l.get_ref().parse::<std::net::SocketAddr>().is_err() {
                return Err(ck.fail(
                    l,
                    format!(
                        "listen = {:?}: expected IP:PORT, e.g. 127.0.0.1:8424",
                        l.get_ref()
                    ),
                ));
            }
        }
        if let Some(c) = &top.cors {
            Cors::parse(c.get_ref()).map_err(|e| ck.fail(c, format!("cors: {e}")))?;
        }
        for f in cfg.folder.iter().map(Spanned::get_ref) {
            for g in f.group.iter().map(Spanned::get_ref) {
                for r in g.default_response.iter().chain(&g.pass_response) {
                    ck.response(r)?;
                }
                ck.groups(&g.rule_group)?;
                ck.data(&f.name, &f.fields, &g.data)?;
                for t in &g.tag {
                    for r in t.default_response.iter().chain(&t.pass_response) {
                        ck.response(r)?;
                    }
                    ck.groups(t.rule_group.as_deref().unwrap_or(&[]))?;
                    ck.data(&f.name, &f.fields, &t.data)?;
                }
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = cfg.db.as_mut() {
            // A PostgreSQL URL is no path.
            if !p.to_str().is_some_and(crate::store::is_postgres_url) {
                rel(p)
            }
        }
        if let Some(p) = cfg.tls_cert.as_mut() {
            rel(p)
        }
        if let Some(p) = cfg.tls_key.as_mut() {
            rel(p)
        }
        for f in cfg.folder.iter_mut().map(Spanned::get_mut) {
            for g in f.group.iter_mut().map(Spanned::get_mut) {
                for b in &mut g.batch {
                    let b = b.get_mut();
                    if let Some(p) = b.dir.as_mut() {
                        rel(p.get_mut())
                    }
                    b.files.iter_mut().for_each(|p| rel(p.get_mut()));
                }
            }
        }
        cfg.source = Some(Source {
            path: path.to_path_buf(),
            text,
        });
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests;
