//! The rules of the model, checked in one place ([`Catalog::validate`]): unique names, ids
//! and codes; bounded texts; origins a browser sends; Rule Sets, responses and extended data
//! that compile; templates that let every tag of an authentication batch be verified.

use std::collections::HashSet;

use super::{
    check_origin, Batch, Catalog, CatalogError, Cors, DataError, ExtData, Folder, GroupKind,
    TemplateError, MAX_FIELDS,
};
use crate::query::{valid_aid, valid_token};
use crate::rules::RuleSet;
use crate::subtags::Response;
use crate::sun::template::Part;
use crate::sun::Template;
use crate::text;

impl Catalog {
    /// Checks every rule of the model: unique names, ids and codes, valid settings.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |s: String| Err(CatalogError::Invalid(s));
        let mut folder_names = HashSet::new();
        let mut aids = HashSet::new();
        let mut batch_names = HashSet::new();
        let mut xuids = HashSet::new();
        for f in &self.folders {
            text::check("a folder name", &f.name, text::MAX_NAME)?;
            if !folder_names.insert(&f.name) {
                return bad(format!("folder name {:?} is repeated", f.name));
            }
            if !valid_aid(&f.aid) || !aids.insert(&f.aid) {
                return bad(format!(
                    "folder {:?}: account id {:?} must be letters, digits, - or _ (up to 64) and unique",
                    f.name, f.aid
                ));
            }
            if let Some(t) = &f.token {
                if !valid_token(t) {
                    return bad(format!(
                        "folder {:?}: the API token must be alphanumeric, 1 to 32 characters",
                        f.name
                    ));
                }
            }
            if let Cors::Origin(o) = &f.cors {
                check_origin(o).map_err(|source| CatalogError::FolderCors {
                    folder: f.name.clone(),
                    origin: o.clone(),
                    source,
                })?;
            }
            if f.fields.len() > MAX_FIELDS {
                return bad(format!(
                    "folder {:?}: {} extended data fields; the platform allows up to {MAX_FIELDS}",
                    f.name,
                    f.fields.len()
                ));
            }
            for (i, field) in f.fields.iter().enumerate() {
                if f.fields[..i].contains(field) {
                    return bad(format!(
                        "folder {:?}: extended data field {field:?} is declared twice",
                        f.name
                    ));
                }
                if !valid_field(field) {
                    return bad(format!(
                        "folder {:?}: extended data field {field:?}: lowercase letters, digits and _, up to 32, not xuid/cuid/uid/response/error",
                        f.name
                    ));
                }
            }
            let mut group_names = HashSet::new();
            let mut cuids = HashSet::new();
            let mut uids = HashSet::new();
            for g in &f.groups {
                text::check("a group name", &g.name, text::MAX_NAME).map_err(|source| {
                    CatalogError::GroupName {
                        folder: f.name.clone(),
                        source,
                    }
                })?;
                if !group_names.insert(&g.name) {
                    return bad(format!(
                        "folder {:?}: group name {:?} is repeated",
                        f.name, g.name
                    ));
                }
                let in_group = |what: String| {
                    CatalogError::Invalid(format!(
                        "folder {:?}, group {:?}: {what}",
                        f.name, g.name
                    ))
                };
                if g.default_response.trim().is_empty() {
                    return Err(in_group(
                        "the Default Response is empty; the platform requires one (\"You must have a Rule Set and set a Default Response\"): set default_response".into(),
                    ));
                }
                let set = RuleSet::effective(
                    g.kind,
                    &g.rule_groups,
                    Some(&g.pass_response),
                    &g.default_response,
                )
                .map_err(|source| CatalogError::GroupRules {
                    folder: f.name.clone(),
                    group: g.name.clone(),
                    source,
                })?;
                if g.kind == GroupKind::Standard && set.uses_auth() {
                    return Err(in_group(
                        "auth_pass and chip_count rules need an authentication group".into(),
                    ));
                }
                check_data(f, &g.data).map_err(|source| CatalogError::GroupData {
                    folder: f.name.clone(),
                    group: g.name.clone(),
                    source,
                })?;
                for b in &g.batches {
                    text::check("a batch name", &b.name, text::MAX_NAME)
                        .map_err(|source| CatalogError::BatchName { source })?;
                    if !batch_names.insert(&b.name) {
                        return bad(format!("batch name {:?} is repeated", b.name));
                    }
                    if g.kind == GroupKind::Authentication {
                        check_template(b).map_err(|source| CatalogError::Template {
                            batch: b.name.clone(),
                            source,
                        })?;
                    }
                    for t in &b.tags {
                        if let Err(e) = crate::tag_code::check(&t.xuid) {
                            return bad(e.to_string());
                        }
                        if !xuids.insert(&t.xuid) {
                            return bad(format!("tag code {} is in more than one batch", t.xuid));
                        }
                        if let Some(c) = &t.cuid {
                            text::check(&format!("CUID of tag {}", t.xuid), c, text::MAX_CUID)?;
                            if !cuids.insert(c) {
                                return bad(format!(
                                    "custom id {c:?} (tag {}) is repeated in folder {:?}",
                                    t.xuid, f.name
                                ));
                            }
                        }
                        if let Some(n) = &t.tagname {
                            text::check(
                                &format!("TAGNAME of tag {}", t.xuid),
                                n,
                                text::MAX_TAGNAME,
                            )?;
                        }
                        if let Some(u) = &t.uid {
                            if !uids.insert(*u) {
                                return bad(format!(
                                    "UID {} (tag {}) is repeated in folder {:?}",
                                    hex::encode_upper(u),
                                    t.xuid,
                                    f.name
                                ));
                            }
                        }
                        if t.default_response
                            .as_deref()
                            .is_some_and(|d| d.trim().is_empty())
                        {
                            return bad(format!(
                                "tag {}: its Default Response is empty: remove default_response to use the group's rules",
                                t.xuid
                            ));
                        }
                        if t.has_own_rules() {
                            RuleSet::effective(
                                g.kind,
                                t.rule_groups.as_deref().unwrap_or(&[]),
                                t.pass_response.as_deref(),
                                t.default_response.as_deref().unwrap_or(&g.default_response),
                            )
                            .map_err(|source| {
                                CatalogError::TagRules {
                                    xuid: t.xuid.clone(),
                                    source,
                                }
                            })?;
                        }
                        check_data(f, &t.data).map_err(|source| CatalogError::TagData {
                            xuid: t.xuid.clone(),
                            source,
                        })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Names an extended data field may not take (the answer's own keys).
const RESERVED_FIELDS: [&str; 5] = ["xuid", "cuid", "uid", "response", "error"];

/// A valid extended data field name: lowercase letters, digits and `_`, up to 32.
pub fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !RESERVED_FIELDS.contains(&name)
}

fn check_data(f: &Folder, data: &ExtData) -> Result<(), DataError> {
    for (k, v) in data {
        if !f.fields.contains(k) {
            return Err(DataError::Undeclared {
                field: k.clone(),
                folder: f.name.clone(),
            });
        }
        Response::parse(v).map_err(|source| DataError::Value {
            field: k.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Whether every tag of an authentication batch can be verified along its template.
fn check_template(b: &Batch) -> Result<(), TemplateError> {
    let t = Template::parse(&b.template).map_err(|source| TemplateError::Parse {
        template: b.template.clone(),
        source,
    })?;
    let picc = t.has(&Part::Picc);
    let by_uid = t.has(&Part::Uid);
    if !t.has(&Part::Xuid) && !picc && !by_uid {
        return Err(TemplateError::NoTag {
            template: b.template.clone(),
        });
    }
    for tag in &b.tags {
        if picc && tag.key.is_some() && tag.meta_key.is_none() {
            return Err(TemplateError::NoMetaKey {
                xuid: tag.xuid.clone(),
            });
        }
        if (picc || by_uid) && !t.has(&Part::Xuid) && tag.uid.is_none() {
            return Err(TemplateError::NoUid {
                xuid: tag.xuid.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::crypto::AesKey;

    /// One folder, one authentication group, one batch with one tag.
    fn one_tag() -> Catalog {
        let batch = Batch {
            name: "b1".into(),
            tags: vec![Tag {
                xuid: "q8w3sbcz".into(),
                ..Tag::default()
            }],
            ..Batch::default()
        };
        let group = Group {
            name: "g".into(),
            batches: vec![batch],
            ..Group::default()
        };
        Catalog {
            folders: vec![Folder {
                name: "acme".into(),
                aid: "acme".into(),
                fields: vec!["note".into()],
                groups: vec![group],
                ..Folder::default()
            }],
        }
    }

    #[test]
    fn validation_errors_keep_the_typed_cause() {
        use crate::rules::{RuleError, RuleSetError};
        use crate::subtags::ResponseError;
        use std::error::Error as _;
        assert!(one_tag().validate().is_ok());

        let mut c = one_tag();
        c.folders[0].groups[0].rule_groups = vec![RuleGroup {
            rules: vec!["scan_count >= 3".into()],
            response: "Hi".into(),
        }];
        let e = c.validate().unwrap_err();
        assert!(matches!(
            &e,
            CatalogError::GroupRules {
                folder,
                group,
                source: RuleSetError::Rule(RuleError::ScanCountComparison { rule }),
            } if folder == "acme" && group == "g" && rule == "scan_count >= 3"
        ));
        assert_eq!(
            e.to_string(),
            r#"folder "acme", group "g": rule "scan_count >= 3": scan_count takes <, >, = or != (as the platform's Scan Count rule)"#
        );
        // The chain is kept: CatalogError → RuleSetError (whose `Rule` is the RuleError itself).
        let inner = e.source().and_then(|s| s.downcast_ref::<RuleSetError>());
        assert!(matches!(inner, Some(RuleSetError::Rule(_))), "{inner:?}");

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].tags[0].data = vec![("note".into(), "{os}".into())];
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::TagData {
                source: DataError::Value {
                    source: ResponseError::NotOnApi { .. },
                    ..
                },
                ..
            }
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].data = vec![("colour".into(), "red".into())];
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::GroupData {
                source: DataError::Undeclared { field, .. },
                ..
            } if field == "colour"
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].template = "https://a.example/?p={picc}&m={mac}".into();
        c.folders[0].groups[0].batches[0].tags[0].key = Some(AesKey::from_slice(&[1; 16]).unwrap());
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::Template {
                source: TemplateError::NoMetaKey { xuid },
                ..
            } if xuid == "q8w3sbcz"
        ));

        let mut c = one_tag();
        c.folders[0].cors = Cors::Origin("https://acme.example/".into());
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::FolderCors {
                source: OriginError::TrailingSlash { .. },
                ..
            }
        ));

        let mut c = one_tag();
        c.folders[0].groups[0].batches[0].name = String::new();
        assert!(matches!(
            c.validate().unwrap_err(),
            CatalogError::BatchName {
                source: crate::text::TextError {
                    problem: crate::text::TextProblem::Empty,
                    ..
                }
            }
        ));
    }
}
