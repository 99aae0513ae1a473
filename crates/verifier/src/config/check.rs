//! Checks of the configuration file's text with the line of each value: the responses,
//! subtags, rules and extended data fields, and the top-level values the library can check.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::RuleGroupConfig;
use crate::catalog::{CatalogError, DataError};
use crate::rules::Rule;
use crate::subtags::Response;

/// The top-level values whose line an error names (read beside [`ConfigFile`], whose
/// fields stay plain for its users).
#[derive(Deserialize)]
pub(super) struct TopSpans {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) cors: Option<Spanned<String>>,
}

/// Line (1-based) of a byte offset.
pub(super) fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

pub(super) struct Checker<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Checker<'_> {
    pub(super) fn fail(&self, s: &Spanned<String>, what: String) -> CatalogError {
        self.at(s, CatalogError::Invalid(what))
    }

    /// `e` at the line of `s`.
    fn at(&self, s: &Spanned<String>, e: CatalogError) -> CatalogError {
        CatalogError::At {
            path: self.path.to_path_buf(),
            line: self.line(s),
            source: Box::new(e),
        }
    }

    fn line(&self, s: &Spanned<String>) -> usize {
        line_of(self.text, s.span().start)
    }

    pub(super) fn response(&self, s: &Spanned<String>) -> Result<(), CatalogError> {
        Response::parse(s.get_ref())
            .map(|_| ())
            .map_err(|source| CatalogError::ConfigResponse {
                path: self.path.to_path_buf(),
                line: self.line(s),
                source,
            })
    }

    pub(super) fn groups(&self, groups: &[RuleGroupConfig]) -> Result<(), CatalogError> {
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

    /// Extended data: each field declared by the folder (the rule and its words are
    /// [`DataError::Undeclared`]'s, as for a catalog from anywhere), each value a response.
    pub(super) fn data(
        &self,
        folder: &str,
        fields: &[String],
        data: &BTreeMap<String, Spanned<String>>,
    ) -> Result<(), CatalogError> {
        for (k, v) in data {
            if !fields.contains(k) {
                let undeclared = DataError::Undeclared {
                    field: k.clone(),
                    folder: folder.to_string(),
                };
                return Err(self.at(v, undeclared.into()));
            }
            self.response(v)?;
        }
        Ok(())
    }
}
