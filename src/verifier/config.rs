//! The verifier's configuration file (TOML): server settings and folder → tag group → batch.
//! See docs/verifier.md for a commented example. Paths are relative to the file's directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::catalog::{
    batch_name, read_batch_sources, Batch, Catalog, CatalogError, Cors, Folder, Group, GroupKind,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub db: Option<PathBuf>,
    /// CORS for answers that belong to no folder (unknown tag, malformed query).
    pub cors: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    #[serde(default)]
    pub folder: Vec<FolderConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    pub name: String,
    pub aid: String,
    pub token: Option<String>,
    pub cors: Option<String>,
    #[serde(default)]
    pub group: Vec<GroupConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    #[serde(default)]
    pub kind: GroupKind,
    pub default_response: Option<String>,
    pub pass_response: Option<String>,
    #[serde(default)]
    pub batch: Vec<BatchConfig>,
    /// Per-tag rule overrides.
    #[serde(default)]
    pub tag: Vec<TagConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    pub name: Option<String>,
    /// A `tag424 batch` output directory.
    pub dir: Option<PathBuf>,
    /// CSV files with XUID,KEY / XUID,UID / XUID,CUID headers.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    pub xuid: String,
    pub default_response: Option<String>,
    pub pass_response: Option<String>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: ConfigFile = toml::from_str(&text)
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = cfg.db.as_mut() {
            // A PostgreSQL URL is no path.
            if !p
                .to_str()
                .is_some_and(crate::verifier::store::is_postgres_url)
            {
                rel(p)
            }
        }
        if let Some(p) = cfg.tls_cert.as_mut() {
            rel(p)
        }
        if let Some(p) = cfg.tls_key.as_mut() {
            rel(p)
        }
        for f in &mut cfg.folder {
            for g in &mut f.group {
                for b in &mut g.batch {
                    if let Some(p) = b.dir.as_mut() {
                        rel(p)
                    }
                    b.files.iter_mut().for_each(rel);
                }
            }
        }
        Ok(cfg)
    }

    /// Reads every batch the file names and builds the catalog.
    pub fn catalog(&self) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::default();
        for f in &self.folder {
            let mut folder = Folder {
                name: f.name.clone(),
                aid: f.aid.clone(),
                token: f.token.clone(),
                cors: Cors::parse(f.cors.as_deref().unwrap_or("none"))?,
                groups: Vec::new(),
            };
            for g in &f.group {
                let mut group = Group {
                    name: g.name.clone(),
                    kind: g.kind,
                    default_response: g
                        .default_response
                        .clone()
                        .unwrap_or_else(|| g.kind.default_response().to_string()),
                    pass_response: g.pass_response.clone().unwrap_or_else(|| "Pass".into()),
                    batches: Vec::new(),
                };
                for b in &g.batch {
                    let mut sources: Vec<PathBuf> = b.dir.iter().cloned().collect();
                    sources.extend(b.files.iter().cloned());
                    if sources.is_empty() {
                        return Err(CatalogError::Invalid(format!(
                            "group {:?}: a batch needs `dir` or `files`",
                            g.name
                        )));
                    }
                    group.batches.push(Batch {
                        name: b.name.clone().unwrap_or_else(|| batch_name(&sources)),
                        active: b.active,
                        tags: read_batch_sources(&sources)?,
                    });
                }
                for o in &g.tag {
                    let t = group
                        .batches
                        .iter_mut()
                        .flat_map(|b| b.tags.iter_mut())
                        .find(|t| t.xuid == o.xuid)
                        .ok_or_else(|| {
                            CatalogError::Invalid(format!(
                                "group {:?}: override for tag {} which is in none of its batches",
                                g.name, o.xuid
                            ))
                        })?;
                    t.default_response = o.default_response.clone();
                    t.pass_response = o.pass_response.clone();
                }
                folder.groups.push(group);
            }
            cat.folders.push(folder);
        }
        Ok(cat)
    }
}

/// The folder that `--batch` flags fill (when no config file names one).
#[derive(Debug, Clone)]
pub struct FlagFolder {
    pub aid: String,
    pub token: Option<String>,
    pub cors: Cors,
    pub kind: GroupKind,
    pub default_response: Option<String>,
    pub pass_response: String,
}

impl FlagFolder {
    /// One folder "default" with one group "default" holding one batch per `--batch` value
    /// (a directory, or CSV files separated by commas).
    pub fn catalog(&self, batches: &[String]) -> Result<Catalog, CatalogError> {
        let mut group = Group {
            name: "default".into(),
            kind: self.kind,
            default_response: self
                .default_response
                .clone()
                .unwrap_or_else(|| self.kind.default_response().to_string()),
            pass_response: self.pass_response.clone(),
            batches: Vec::new(),
        };
        for b in batches {
            let sources: Vec<PathBuf> = b.split(',').map(PathBuf::from).collect();
            group.batches.push(Batch {
                name: batch_name(&sources),
                active: true,
                tags: read_batch_sources(&sources)?,
            });
        }
        Ok(Catalog {
            folders: vec![Folder {
                name: "default".into(),
                aid: self.aid.clone(),
                token: self.token.clone(),
                cors: self.cors.clone(),
                groups: vec![group],
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("batch1")).unwrap();
        std::fs::write(
            d.path().join("batch1/keys.csv"),
            "XUID,KEY\nq8w3sbcz,00112233445566778899AABBCCDDEEFF\n",
        )
        .unwrap();
        std::fs::write(d.path().join("cuids.csv"), "XUID,CUID\nplain1,Shelf-A\n").unwrap();
        let p = d.path().join("verifier.toml");
        std::fs::write(
            &p,
            r#"
listen = "127.0.0.1:8424"
db = "verifier.db"

[[folder]]
name = "acme"
aid = "acme01"
token = "Secret123"
cors = "*"

[[folder.group]]
name = "bottles"
kind = "authentication"
pass_response = "Pass"

[[folder.group.batch]]
dir = "batch1"

[[folder.group.tag]]
xuid = "q8w3sbcz"
default_response = "Recalled"

[[folder.group]]
name = "shelves"
kind = "standard"

[[folder.group.batch]]
name = "shelf-labels"
files = ["cuids.csv"]
active = false
"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(&p).unwrap();
        assert_eq!(
            cfg.db.as_deref(),
            Some(d.path().join("verifier.db").as_path())
        );
        let cat = cfg.catalog().unwrap();
        cat.validate().unwrap();
        assert_eq!(cat.counts(), (1, 2, 2, 2));
        let g = &cat.folders[0].groups[0];
        assert_eq!(g.default_response, "Fail");
        assert_eq!(
            g.batches[0].tags[0].default_response.as_deref(),
            Some("Recalled")
        );
        assert_eq!(cat.folders[0].groups[1].default_response, "Found");
        assert!(!cat.folders[0].groups[1].batches[0].active);
    }
}
