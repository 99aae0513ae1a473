//! The folder that `tag424 serve --batch` flags fill, without a configuration file.

use std::path::PathBuf;

use crate::catalog::{Batch, Catalog, CatalogError, Cors, Folder, Group, GroupKind};
use crate::import::{batch_name, read_batch_sources};
use crate::provision::sealed::Identity;

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
