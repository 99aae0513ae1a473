//! The verifier's configuration file (TOML): server settings and folder → tag group → batch,
//! rules, statuses and extended data. See docs/verifier.md for a commented example. Paths are
//! relative to the file's directory. Responses, subtags, rules and extended data fields are
//! checked when the file is loaded; an error names the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::catalog::{
    Batch, Catalog, CatalogError, Cors, ExtData, Folder, Group, GroupKind, RuleGroup,
};
use super::import::{batch_name, read_batch_sources};
use super::rules::Rule;
use super::subtags::Response;
use crate::crypto::sdm::SdmMode;
use crate::provision::sealed::Identity;

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

/// The top-level values whose line an error names (read beside [`ConfigFile`], whose
/// fields stay plain for its users).
#[derive(Deserialize)]
struct TopSpans {
    listen: Option<Spanned<String>>,
    cors: Option<Spanned<String>>,
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn fail(&self, s: &Spanned<String>, what: String) -> CatalogError {
        CatalogError::At {
            path: self.path.to_path_buf(),
            line: self.line(s),
            source: Box::new(CatalogError::Invalid(what)),
        }
    }

    fn line(&self, s: &Spanned<String>) -> usize {
        line_of(self.text, s.span().start)
    }

    fn response(&self, s: &Spanned<String>) -> Result<(), CatalogError> {
        Response::parse(s.get_ref())
            .map(|_| ())
            .map_err(|source| CatalogError::ConfigResponse {
                path: self.path.to_path_buf(),
                line: self.line(s),
                source,
            })
    }

    fn groups(&self, groups: &[RuleGroupConfig]) -> Result<(), CatalogError> {
        for g in groups {
            self.response(&g.response)?;
            for r in &g.rules {
                Rule::parse(r.get_ref()).map_err(|source| CatalogError::ConfigRule {
                    path: self.path.to_path_buf(),
                    line: self.line(r),
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn data(
        &self,
        fields: &[String],
        data: &BTreeMap<String, Spanned<String>>,
    ) -> Result<(), CatalogError> {
        for (k, v) in data {
            if !fields.contains(k) {
                return Err(self.fail(
                    v,
                    format!("extended data field {k:?} is not in the folder's fields = [...]"),
                ));
            }
            self.response(v)?;
        }
        Ok(())
    }
}

fn rule_groups(c: &[RuleGroupConfig]) -> Vec<RuleGroup> {
    c.iter()
        .map(|g| RuleGroup {
            rules: g.rules.iter().map(|r| r.get_ref().clone()).collect(),
            response: g.response.get_ref().clone(),
        })
        .collect()
}

fn ext_data(d: &BTreeMap<String, Spanned<String>>) -> ExtData {
    d.iter()
        .map(|(k, v)| (k.clone(), v.get_ref().clone()))
        .collect()
}

fn text(s: &Option<Spanned<String>>) -> Option<String> {
    s.as_ref().map(|s| s.get_ref().clone())
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
                ck.data(&f.fields, &g.data)?;
                for t in &g.tag {
                    for r in t.default_response.iter().chain(&t.pass_response) {
                        ck.response(r)?;
                    }
                    ck.groups(t.rule_group.as_deref().unwrap_or(&[]))?;
                    ck.data(&f.fields, &t.data)?;
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

    /// `FILE line N: what` for a place in the file read (just `what` without one).
    fn at(&self, span: std::ops::Range<usize>, what: String) -> CatalogError {
        self.located(span, CatalogError::Invalid(what))
    }

    /// `e` at a place in the file read ([`CatalogError::At`], `e` kept as its source; `e`
    /// itself without a file).
    fn located(&self, span: std::ops::Range<usize>, e: CatalogError) -> CatalogError {
        match &self.source {
            Some(s) => CatalogError::At {
                path: s.path.clone(),
                line: line_of(&s.text, span.start),
                source: Box::new(e),
            },
            None => e,
        }
    }

    /// Reads every batch the file names and builds the catalog, checked
    /// ([`Catalog::validate`]): an error names the file and the line of the folder, group,
    /// batch or tag entry that breaks a rule.
    pub fn catalog(&self, identity: Option<&Identity>) -> Result<Catalog, CatalogError> {
        let cat = self.build(identity, false)?;
        match cat.validate() {
            Ok(()) => Ok(cat),
            // Only on error: build again, checking after each entry, to find its line.
            Err(e) => match self.build(identity, true) {
                Err(located) => Err(located),
                Ok(_) => Err(match &self.source {
                    Some(s) => CatalogError::InFile {
                        path: s.path.clone(),
                        source: Box::new(e),
                    },
                    None => e,
                }),
            },
        }
    }

    /// Builds the catalog; with `locate`, checks it after each folder, group, batch and tag
    /// entry is added, so the first error is the one that entry caused, named with its line.
    fn build(&self, identity: Option<&Identity>, locate: bool) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::default();
        let check = |cat: &Catalog, span: std::ops::Range<usize>| {
            if locate {
                cat.validate().map_err(|e| self.located(span, e))
            } else {
                Ok(())
            }
        };
        for sf in &self.folder {
            let f = sf.get_ref();
            cat.folders.push(Folder {
                name: f.name.clone(),
                aid: f.aid.clone(),
                token: f.token.clone(),
                cors: Cors::parse(f.cors.as_deref().unwrap_or("none"))
                    .map_err(|e| self.located(sf.span(), e))?,
                active: f.active,
                fields: f.fields.clone(),
                groups: Vec::new(),
            });
            let fi = cat.folders.len() - 1;
            check(&cat, sf.span())?;
            for sg in &f.group {
                let g = sg.get_ref();
                cat.folders[fi].groups.push(Group {
                    name: g.name.clone(),
                    kind: g.kind,
                    active: g.active,
                    default_response: text(&g.default_response)
                        .unwrap_or_else(|| g.kind.default_response().to_string()),
                    pass_response: text(&g.pass_response).unwrap_or_else(|| "Pass".into()),
                    rule_groups: rule_groups(&g.rule_group),
                    data: ext_data(&g.data),
                    batches: Vec::new(),
                });
                let gi = cat.folders[fi].groups.len() - 1;
                check(&cat, sg.span())?;
                for sb in &g.batch {
                    let batch = self.batch(sb, &g.name, identity)?;
                    cat.folders[fi].groups[gi].batches.push(batch);
                    check(&cat, sb.span())?;
                }
                for o in &g.tag {
                    let t = cat.folders[fi].groups[gi]
                        .batches
                        .iter_mut()
                        .flat_map(|b| b.tags.iter_mut())
                        .find(|t| &t.xuid == o.xuid.get_ref())
                        .ok_or_else(|| {
                            self.at(
                                o.xuid.span(),
                                format!(
                                    "group {:?}: override for tag {} which is in none of its batches",
                                    g.name,
                                    o.xuid.get_ref()
                                ),
                            )
                        })?;
                    if o.default_response.is_some() {
                        t.default_response = text(&o.default_response);
                    }
                    t.pass_response = text(&o.pass_response);
                    t.rule_groups = o.rule_group.as_deref().map(rule_groups);
                    t.data = ext_data(&o.data);
                    if o.active.is_some() {
                        t.active = o.active;
                    }
                    check(&cat, o.xuid.span())?;
                }
            }
        }
        Ok(cat)
    }

    /// Reads one `[[folder.group.batch]]`; errors name its line.
    fn batch(
        &self,
        sb: &Spanned<BatchConfig>,
        group: &str,
        identity: Option<&Identity>,
    ) -> Result<Batch, CatalogError> {
        let b = sb.get_ref();
        let spanned: Vec<&Spanned<PathBuf>> = b.dir.iter().chain(&b.files).collect();
        if spanned.is_empty() {
            return Err(self.at(
                sb.span(),
                format!(
                    "a batch of group {group:?} needs `dir` (a `tag424 batch` output directory) or `files` (Associate Data CSV files)"
                ),
            ));
        }
        // A source that is not there: named with its own line.
        for s in &spanned {
            if !s.get_ref().exists() {
                let key = if b.dir.as_ref().is_some_and(|d| std::ptr::eq(d, *s)) {
                    "dir"
                } else {
                    "files"
                };
                return Err(self.at(
                    s.span(),
                    format!(
                        "{key}: {} does not exist (paths are relative to the config file's folder)",
                        s.get_ref().display()
                    ),
                ));
            }
        }
        let sources: Vec<PathBuf> = spanned.iter().map(|s| s.get_ref().clone()).collect();
        let read = read_batch_sources(&sources, identity)
            .map_err(|e| self.located(spanned[0].span(), e))?;
        let name = b.name.clone().unwrap_or_else(|| batch_name(&sources));
        let lrp = match b.mode {
            None => read.lrp,
            Some(SdmMode::Lrp) => true,
            Some(SdmMode::Aes) if read.lrp => {
                return Err(self.at(sb.span(), format!(
                    "batch {name:?}: mode = \"aes\" but its journal records LRP tags; remove `mode` or set it to \"lrp\""
                )))
            }
            Some(SdmMode::Aes) => false,
        };
        Ok(Batch {
            name,
            lrp,
            read_ctr_limit: read.read_ctr_limit,
            active: b.active,
            template: b
                .template
                .clone()
                .or(read.template)
                .unwrap_or_else(|| crate::sun::DEFAULT_TEMPLATE.to_string()),
            tags: read.tags,
        })
    }
}

/// The name of the folder (and of its one tag group) that `tag424 serve --batch` fills.
pub const FLAG_FOLDER: &str = "default";

/// The folder that `--batch` flags fill (folder [`FLAG_FOLDER`], group [`FLAG_FOLDER`]).
/// A setting left `None` is kept from the database when the folder is imported again
/// ([`FlagFolder::keep_stored`]), else takes its default.
#[derive(Debug, Clone, Default)]
pub struct FlagFolder {
    /// `--aid` (default `local`).
    pub aid: Option<String>,
    /// `--token T` (`Some(Some(T))`) or `--no-token` (`Some(None)`); default none.
    pub token: Option<Option<String>>,
    /// `--cors` (default none).
    pub cors: Option<Cors>,
    /// `--kind` (default authentication).
    pub kind: Option<GroupKind>,
    /// `--default-response` (default: the kind's, `Fail` or `Found`).
    pub default_response: Option<String>,
    /// `--pass-response` (default `Pass`).
    pub pass_response: Option<String>,
}

/// The account id of the `--batch` folder when neither `--aid` nor the database gives one.
pub const DEFAULT_AID: &str = "local";

impl FlagFolder {
    /// Fills every setting not given from the folder [`FLAG_FOLDER`] of `stored` (the catalog
    /// in the database), so that importing a batch again without `--token` (or `--aid`,
    /// `--cors`, `--kind`, responses) keeps what an earlier import set. Returns what was kept,
    /// one phrase each, for the operator (empty when nothing was).
    pub fn keep_stored(&mut self, stored: &Catalog) -> Vec<String> {
        let mut kept = Vec::new();
        let Some(f) = stored.folders.iter().find(|f| f.name == FLAG_FOLDER) else {
            return kept;
        };
        if self.token.is_none() {
            if let Some(t) = &f.token {
                self.token = Some(Some(t.clone()));
                kept.push("its API token (--no-token removes it)".to_string());
            }
        }
        if self.aid.is_none() && f.aid != DEFAULT_AID {
            self.aid = Some(f.aid.clone());
            kept.push(format!("account id {} (--aid)", f.aid));
        }
        if self.cors.is_none() && f.cors != Cors::None {
            self.cors = Some(f.cors.clone());
            kept.push(format!("CORS {} (--cors none removes it)", f.cors));
        }
        let Some(g) = f.groups.iter().find(|g| g.name == FLAG_FOLDER) else {
            return kept;
        };
        let kind_given = self.kind.is_some();
        let kind = *self.kind.get_or_insert(g.kind);
        if !kind_given && kind != GroupKind::default() {
            kept.push(format!("kind {} (--kind)", kind.as_str()));
        }
        // Responses only for the same kind (another kind has other defaults).
        if kind == g.kind {
            if self.default_response.is_none() && g.default_response != kind.default_response() {
                self.default_response = Some(g.default_response.clone());
                kept.push(format!(
                    "Default Response {:?} (--default-response)",
                    g.default_response
                ));
            }
            if self.pass_response.is_none() && g.pass_response != "Pass" {
                self.pass_response = Some(g.pass_response.clone());
                kept.push(format!(
                    "pass response {:?} (--pass-response)",
                    g.pass_response
                ));
            }
        }
        kept
    }

    /// One folder [`FLAG_FOLDER`] with one group [`FLAG_FOLDER`] holding one batch per
    /// `--batch` value (a directory, or CSV files separated by commas).
    pub fn catalog(
        &self,
        batches: &[String],
        identity: Option<&Identity>,
    ) -> Result<Catalog, CatalogError> {
        let kind = self.kind.unwrap_or_default();
        let mut group = Group {
            name: FLAG_FOLDER.into(),
            kind,
            default_response: self
                .default_response
                .clone()
                .unwrap_or_else(|| kind.default_response().to_string()),
            pass_response: self.pass_response.clone().unwrap_or_else(|| "Pass".into()),
            ..Group::default()
        };
        for b in batches {
            let sources: Vec<PathBuf> = b.split(',').map(PathBuf::from).collect();
            let read = read_batch_sources(&sources, identity)?;
            group.batches.push(Batch {
                name: batch_name(&sources),
                active: true,
                template: read
                    .template
                    .unwrap_or_else(|| crate::sun::DEFAULT_TEMPLATE.to_string()),
                lrp: read.lrp,
                read_ctr_limit: read.read_ctr_limit,
                tags: read.tags,
            });
        }
        Ok(Catalog {
            folders: vec![Folder {
                name: FLAG_FOLDER.into(),
                aid: self.aid.clone().unwrap_or_else(|| DEFAULT_AID.into()),
                token: self.token.clone().flatten(),
                cors: self.cors.clone().unwrap_or_default(),
                groups: vec![group],
                ..Folder::default()
            }],
        })
    }
}

#[cfg(test)]
mod tests;
