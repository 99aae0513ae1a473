//! The catalog a configuration file describes: every batch it names read, the folders, tag
//! groups and tag overrides built and checked; an error names the line of the entry.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::check::line_of;
use super::{BatchConfig, ConfigFile, RuleGroupConfig};
use crate::catalog::{Batch, Catalog, CatalogError, Cors, ExtData, Folder, Group, RuleGroup};
use crate::crypto::sdm::SdmMode;
use crate::import::{batch_name, read_batch_sources};
use crate::provision::sealed::Identity;

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
