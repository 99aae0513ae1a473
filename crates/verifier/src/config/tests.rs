//! Tests of the configuration file: shapes, lines named in errors, typed causes.

use super::*;

mod file_tests {
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
fields = ["scancount"]

[[folder.group]]
name = "bottles"
kind = "authentication"
pass_response = "Pass"

[[folder.group.rule_group]]
rules = ["auth_pass", "scan_count < 10"]
response = "Pass {scount}"

[[folder.group.rule_group]]
rules = ["auth_pass"]
response = "Pass again"

[folder.group.data]
scancount = "{scount}"

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
        // It holds a token: readable by others, it is refused naming the fix.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = ConfigFile::load(&p).unwrap();
        assert_eq!(
            cfg.db.as_deref(),
            Some(d.path().join("verifier.db").as_path())
        );
        let cat = cfg.catalog(None).unwrap();
        cat.validate().unwrap();
        assert_eq!(cat.counts(), (1, 2, 2, 2));
        let g = &cat.folders[0].groups[0];
        assert_eq!(g.default_response, "Fail");
        assert_eq!(g.rule_groups.len(), 2);
        assert_eq!(
            g.data,
            vec![("scancount".to_string(), "{scount}".to_string())]
        );
        assert_eq!(
            g.batches[0].tags[0].default_response.as_deref(),
            Some("Recalled")
        );
        assert_eq!(cat.folders[0].groups[1].default_response, "Found");
        assert!(!cat.folders[0].groups[1].batches[0].active);
    }
}

/// What the config line tests share: a config file in a fresh folder, and the error of
/// loading one (or of making its catalog).
mod line_test_support {
    use super::*;

    /// The lines before a test's own: one folder `a` with one group `g` (lines 1 to 5).
    pub(super) const HEAD: &str =
        "[[folder]]\nname = \"a\"\naid = \"a\"\n[[folder.group]]\nname = \"g\"\n";

    /// `v.toml` holding `text` in a fresh folder (removed when the folder is dropped).
    pub(super) fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    /// The error of loading `text`, which must not load.
    pub(super) fn load_error(text: &str) -> String {
        let (_d, p) = config_file(text);
        ConfigFile::load(&p).unwrap_err().to_string()
    }

    /// The error of loading `text` or, if it loads, of making its catalog; it names the file.
    pub(super) fn load_or_catalog_error(text: &str) -> String {
        let (_d, p) = config_file(text);
        let e = match ConfigFile::load(&p) {
            Ok(cfg) => cfg.catalog(None).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(&p.display().to_string()), "{e}");
        e
    }
}

mod line_tests {
    use super::line_test_support::{load_error, HEAD};

    #[test]
    fn an_unknown_subtag_or_rule_is_refused_with_its_line() {
        for (bad, word) in [
            ("response = \"Pass {scnt}\"", "{scnt}"),
            ("response = \"Pass {os}\"", "{os}"),
        ] {
            let e = load_error(&format!(
                "{HEAD}[[folder.group.rule_group]]\nrules = [\"auth_pass\"]\n{bad}\n"
            ));
            assert!(e.contains("line 8") && e.contains(word), "{e}");
        }
        let e = load_error(&format!("{HEAD}[folder.group.data]\ncolour = \"red\"\n"));
        assert!(e.contains("line 7") && e.contains("colour"), "{e}");
        let e = load_error(&format!(
            "{HEAD}[[folder.group.rule_group]]\nrules = [\"auth_pass\",\n  \"mobile_os = ios\"]\nresponse = \"x\"\n"
        ));
        assert!(
            e.contains("line 8") && e.contains("unknown rule kind"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_rule_or_response_is_typed_with_its_line() {
        use super::line_test_support::config_file;
        use super::{CatalogError, ConfigFile};
        use crate::rules::RuleError;
        use crate::subtags::ResponseError;
        let (_d, p) = config_file(&format!(
            "{HEAD}[[folder.group.rule_group]]\nrules = [\"auth_pass\",\n  \"mobile_os = ios\"]\nresponse = \"x\"\n"
        ));
        assert!(matches!(
            ConfigFile::load(&p).err(),
            Some(CatalogError::ConfigRule {
                line: 8,
                source: RuleError::UnknownKind { rule },
                ..
            }) if rule == "mobile_os = ios"
        ));
        let (_d, p) = config_file(&format!(
            "{HEAD}[[folder.group.rule_group]]\nrules = [\"auth_pass\"]\nresponse = \"Pass {{scnt}}\"\n"
        ));
        assert!(matches!(
            ConfigFile::load(&p).err(),
            Some(CatalogError::ConfigResponse {
                line: 8,
                source: ResponseError::Unknown { subtag },
                ..
            }) if subtag == "scnt"
        ));
    }

    #[test]
    fn undeclared_extended_data_is_the_catalogs_rule_at_its_line() {
        use super::line_test_support::config_file;
        use super::{CatalogError, ConfigFile};
        use crate::catalog::DataError;
        let (_d, p) = config_file(&format!("{HEAD}[folder.group.data]\nnote = \"hi\"\n"));
        let e = ConfigFile::load(&p).expect_err("refused");
        let CatalogError::At { line, source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 7);
        assert!(
            matches!(
                &**source,
                CatalogError::Data(DataError::Undeclared { field, folder })
                    if field == "note" && folder == "a"
            ),
            "{source:?}"
        );
        assert!(
            e.to_string().ends_with(
                "line 7: extended data field \"note\" is not declared by folder \"a\" (fields = [...])"
            ),
            "{e}"
        );
    }

    #[test]
    fn an_entry_error_keeps_its_typed_cause_under_the_line() {
        use super::line_test_support::config_file;
        use super::{CatalogError, ConfigFile};
        use crate::catalog::OriginError;
        let (_d, p) =
            config_file("[[folder]]\nname = \"a\"\naid = \"a\"\ncors = \"https://a.example/\"\n");
        let e = ConfigFile::load(&p).unwrap().catalog(None).unwrap_err();
        let CatalogError::At { line, source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 1);
        assert!(matches!(
            &**source,
            CatalogError::Cors {
                source: OriginError::TrailingSlash { .. },
                ..
            }
        ));
        assert!(e.to_string().ends_with(
            "v.toml line 1: CORS origin \"https://a.example/\": no trailing slash: browsers send https://a.example without it. An origin is scheme://host[:port] exactly, as a browser sends it (e.g. https://shop.example.com); or use none or *"
        ), "{e}");
        let (_d, p) = config_file("[[folder]\n");
        assert!(matches!(
            ConfigFile::load(&p),
            Err(CatalogError::Toml { .. })
        ));
    }
}

mod batch_line_tests {
    use super::line_test_support::{load_error, load_or_catalog_error, HEAD};
    use super::*;

    fn load_err(body: &str) -> String {
        load_or_catalog_error(&format!("{HEAD}{body}"))
    }

    #[test]
    fn a_missing_batch_dir_names_the_file_and_line() {
        let e = load_err("[[folder.group.batch]]\nname = \"b\"\ndir = \"batch9\"\n");
        assert!(
            e.contains("line 8") && e.contains("batch9") && e.contains("does not exist"),
            "{e}"
        );
        let e = load_err("[[folder.group.batch]]\nfiles = [\"k.csv\",\n \"gone.csv\"]\n");
        assert!(e.contains("line 7") && e.contains("k.csv"), "{e}");
    }

    #[test]
    fn a_batch_without_dir_or_files_names_the_file_and_line() {
        let e = load_err("\n[[folder.group.batch]]\nname = \"b\"\n");
        assert!(
            (e.contains("line 7") || e.contains("line 8")) && e.contains("needs `dir`"),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_batch_names_the_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("notabatch")).unwrap();
        let p = d.path().join("v.toml");
        std::fs::write(
            &p,
            format!("{HEAD}[[folder.group.batch]]\ndir = \"notabatch\"\n"),
        )
        .unwrap();
        let e = ConfigFile::load(&p)
            .unwrap()
            .catalog(None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("v.toml line 7") && e.contains("no keys.csv"),
            "{e}"
        );
    }

    #[test]
    fn a_rule_broken_by_an_entry_names_its_line() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.csv", "b.csv"] {
            std::fs::write(
                d.path().join(f),
                "XUID,KEY\nq8w3sbcz,00112233445566778899AABBCCDDEEFF\n",
            )
            .unwrap();
        }
        let p = d.path().join("v.toml");
        for (body, line, what) in [
            // The second batch repeats a tag code of the first: its line.
            (
                "[[folder.group.batch]]\nfiles = [\"a.csv\"]\n\n[[folder.group.batch]]\nfiles = [\"b.csv\"]\n",
                "line 9",
                "more than one batch",
            ),
            // A second group of the same name.
            ("[[folder.group]]\nname = \"g\"\n", "line 6", "group name"),
            // A second folder with the same account id.
            (
                "[[folder]]\nname = \"b\"\naid = \"a\"\n",
                "line 6",
                "account id",
            ),
            // A token that is not alphanumeric, on the folder's line.
            (
                "[[folder]]\nname = \"b\"\naid = \"b\"\ntoken = \"no-dashes\"\n",
                "line 6",
                "API token",
            ),
            // A CORS origin that is not one.
            (
                "[[folder]]\nname = \"b\"\naid = \"b\"\ncors = \"ftp://x y\"\n",
                "line 6",
                "",
            ),
        ] {
            std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
            // A file holding a token must be owner-only.
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let e = ConfigFile::load(&p)
                .unwrap()
                .catalog(None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("v.toml {line}")) && e.contains(what),
                "{body}: {e}"
            );
        }
    }

    #[test]
    fn a_bad_listen_address_or_cors_names_its_line() {
        for (body, what) in [
            ("db = \"x.db\"\nlisten = \"localhost\"\n", "listen"),
            ("db = \"x.db\"\ncors = \"ftp://x y\"\n", "cors"),
        ] {
            let e = load_error(body);
            assert!(e.contains("v.toml line 2") && e.contains(what), "{e}");
        }
    }

    #[test]
    fn syntax_and_shape_errors_name_the_file_and_line() {
        for (body, line) in [
            ("colour = \"red\"\n", "line 6"),
            ("[[folder.group.batch]]\ndir = batch1\n", "line 7"),
            ("[[folder]]\nname = \"b\"\n", "line 6"),
        ] {
            let e = load_err(body);
            assert!(e.contains(line), "{body}: {e}");
        }
    }
}

mod retention_line_tests {
    use super::line_test_support::{config_file, load_error};
    use super::*;

    /// A bad `log_retention` in the file is an error naming the file and line (issue 19.16).
    #[test]
    fn a_bad_log_retention_names_the_file_and_line() {
        let e = load_error("listen = \"127.0.0.1:0\"\nlog_retention = \"90 days\"\n");
        assert!(e.contains("v.toml") && e.contains("line 2"), "{e}");
        assert!(e.contains("expected Nd (days)"), "{e}");
        let (_d, p) = config_file("log_retention = \"30d,1000\"\n");
        let r = ConfigFile::load(&p).unwrap().log_retention.unwrap();
        assert_eq!(r.max_rows, Some(1000));
        assert_eq!(r.max_age_ms, Some(30 * 86_400_000));
    }
}
