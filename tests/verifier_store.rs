//! The verifier's store on each backend (SQLite, and PostgreSQL when TAG424_TEST_PG is set):
//! counters only move forward, imports are all or nothing, read-back counters, management
//! changes and retention behave the same.

mod backends;
mod run;

use backends::Db;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, RuleGroup, Tag};
use tag424::verifier::store::{Claim, Retention, ScanCounts, ScanWrite, StoreError, TagPatch};

fn catalog(cuid_of_b: &str) -> Catalog {
    let tag = |x: &str, c: &str| Tag {
        cuid: Some(c.into()),
        key: Some(AesKey::new([1; 16])),
        active: Some(true),
        ..Tag::new(x)
    };
    Catalog {
        folders: vec![Folder {
            name: "f".into(),
            aid: "f01".into(),
            cors: Cors::Any,
            fields: vec!["scancount".into()],
            groups: vec![Group {
                name: "g".into(),
                rule_groups: vec![RuleGroup {
                    rules: vec!["auth_pass".into(), "scan_count < 10".into()],
                    response: "Pass {scount}".into(),
                }],
                data: vec![("scancount".into(), "{scount}".into())],
                batches: vec![Batch {
                    name: "b".into(),
                    tags: vec![tag("a", "A"), tag("b", cuid_of_b)],
                    ..Batch::default()
                }],
                ..Group::default()
            }],
            ..Folder::default()
        }],
    }
}

fn claim(xuid: &str, ctr: u32) -> ScanWrite {
    ScanWrite {
        time_ms: 1,
        endpoint: "api",
        query: String::new(),
        xuid: xuid.into(),
        ctr: Some(ctr),
        result: "Pass".into(),
        reason: "pass",
        remote: "127.0.0.1:1".into(),
        claim: Some(Claim {
            ctr,
            refused_result: "Fail".into(),
        }),
    }
}

#[test]
fn counters_only_move_forward_and_survive_reopening() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        counters_on(&db);
    }
}

fn counters_on(db: &Db) {
    let mut s = db.store();
    s.import(&catalog("B")).unwrap();
    let got = s
        .commit(&[
            claim("a", 5),
            claim("a", 5),
            claim("b", 1),
            claim("a", 4),
            claim("a", 6),
        ])
        .unwrap();
    assert_eq!(got, vec![true, false, true, false, true]);
    drop(s);
    let mut s = db.store();
    let l = s.load().unwrap();
    assert_eq!(l.catalog, catalog("B"));
    assert_eq!(l.counters["a"], 6);
    assert_eq!(
        l.scan_counts["a"],
        ScanCounts {
            answered: 4,
            genuine: 2
        }
    );
    let log = s.scans(Some(2)).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].reason.as_str(), log[0].result.as_str()),
        ("replay", "Fail")
    );
    assert!(log[1].passed);
}

#[test]
fn an_import_that_breaks_the_merged_catalog_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        broken_import_on(&db);
    }
}

fn broken_import_on(db: &Db) {
    let mut s = db.store();
    s.import(&catalog("B")).unwrap();
    // Another batch in the same folder reusing CUID "A".
    let mut other = catalog("B");
    let b = &mut other.folders[0].groups[0].batches[0];
    b.name = "b2".into();
    b.tags = vec![Tag {
        cuid: Some("A".into()),
        ..Tag::new("c")
    }];
    assert!(matches!(s.import(&other), Err(StoreError::Invalid(_))));
    assert_eq!(s.load().unwrap().catalog, catalog("B"));
}

/// The import merge is one rule on both stores: Associate Data (key, UID, meta key, TAGNAME,
/// CUID, status) a later import leaves out stays as stored, the configuration's values
/// replace, the creation time stays; a CUID is unique in its folder only.
#[test]
fn an_import_merges_associate_data_only_when_given() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        merge_on(&db);
    }
}

fn merge_on(db: &Db) {
    let mut s = db.store();
    let mut c = catalog("B");
    {
        let t = &mut c.folders[0].groups[0].batches[0].tags[0];
        t.uid = Some([4, 1, 2, 3, 4, 5, 6]);
        t.meta_key = Some(AesKey::new([2; 16]));
        t.tagname = Some("first".into());
        t.pass_response = Some("Yes".into());
    }
    let mut f2 = c.folders[0].clone();
    f2.name = "f2".into();
    f2.aid = "f02".into();
    f2.groups[0].batches[0].name = "b2".into();
    f2.groups[0].batches[0].tags = vec![Tag {
        cuid: Some("X".into()),
        ..Tag::new("z")
    }];
    c.folders.push(f2);
    s.import(&c).unwrap();
    let created = s.load().unwrap().created["a"];
    let mut again = c.clone();
    {
        let t = &mut again.folders[0].groups[0].batches[0].tags[0];
        (t.key, t.uid, t.meta_key) = (None, None, None);
        (t.tagname, t.cuid, t.active, t.pass_response) = (None, None, None, None);
    }
    s.import(&again).unwrap();
    let l = s.load().unwrap();
    let t = &l.catalog.folders[0].groups[0].batches[0].tags[0];
    assert_eq!(t.key, Some(AesKey::new([1; 16])), "{}", db.name);
    assert_eq!(t.uid, Some([4, 1, 2, 3, 4, 5, 6]), "{}", db.name);
    assert_eq!(t.meta_key, Some(AesKey::new([2; 16])), "{}", db.name);
    assert_eq!(t.tagname.as_deref(), Some("first"), "{}", db.name);
    assert_eq!(t.cuid.as_deref(), Some("A"), "{}", db.name);
    assert_eq!(t.active, Some(true), "{}", db.name);
    assert_eq!(
        t.pass_response, None,
        "{}: the config's value replaces",
        db.name
    );
    assert_eq!(l.created["a"], created, "{}", db.name);
    // Folder f2's CUID "X" is free in folder f; "B" (tag b, same folder) is not.
    let to = |cuid: &str| TagPatch {
        xuid: "a".into(),
        cuid: Some(cuid.into()),
        ..TagPatch::default()
    };
    s.update_tag(&to("X")).unwrap();
    assert!(matches!(
        s.update_tag(&to("B")),
        Err(StoreError::Invalid(_))
    ));
    let t = s.load().unwrap().catalog.folders[0].groups[0].batches[0].tags[0].clone();
    assert_eq!(t.cuid.as_deref(), Some("X"), "{}", db.name);
}

#[test]
fn read_back_counters_patches_and_retention() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        patches_on(&db);
    }
}

fn patches_on(db: &Db) {
    let mut s = db.store();
    let mut c = catalog("B");
    c.folders[0].groups[0].batches[0].tags[0].read_ctr = Some(7);
    s.import(&c).unwrap();
    assert_eq!(s.load().unwrap().counters["a"], 7);
    // A lower read-back counter never lowers it; a claim at it is refused.
    c.folders[0].groups[0].batches[0].tags[0].read_ctr = Some(3);
    s.import(&c).unwrap();
    assert_eq!(
        s.commit(&[claim("a", 7), claim("a", 8)]).unwrap(),
        vec![false, true]
    );
    let patch = TagPatch {
        xuid: "a".into(),
        default_response: Some(Some("Recalled".into())),
        active: Some(false),
        cuid: Some("A2".into()),
        remote: "127.0.0.1".into(),
        time_ms: 5,
    };
    s.update_tag(&patch).unwrap();
    // Re-importing the same catalog (no RESPONSE/STATUS given) keeps the changes.
    let mut c2 = catalog("B");
    c2.folders[0].groups[0].batches[0].tags[0].active = None;
    c2.folders[0].groups[0].batches[0].tags[0].cuid = None;
    s.import(&c2).unwrap();
    let t = s.load().unwrap().catalog.folders[0].groups[0].batches[0].tags[0].clone();
    assert_eq!(t.default_response.as_deref(), Some("Recalled"));
    assert_eq!((t.active, t.cuid.as_deref()), (Some(false), Some("A2")));
    let ch = s.changes().unwrap();
    assert_eq!(ch.len(), 3);
    assert_eq!(ch[1].new.as_deref(), Some("Inactive"));
    // CUID taken in the folder; unknown tag.
    let taken = TagPatch {
        xuid: "a".into(),
        cuid: Some("B".into()),
        ..TagPatch::default()
    };
    assert!(matches!(s.update_tag(&taken), Err(StoreError::Invalid(_))));
    let nobody = TagPatch {
        xuid: "zz".into(),
        active: Some(true),
        ..TagPatch::default()
    };
    assert!(matches!(s.update_tag(&nobody), Err(StoreError::Invalid(_))));
    // Retention: failing rows beyond the newest 2 go; passes stay.
    let mut fail = claim("b", 1);
    fail.claim = None;
    fail.result = "Fail".into();
    fail.reason = "bad_mac";
    s.commit(&[fail.clone(), fail.clone(), fail.clone(), fail])
        .unwrap();
    let keep = Retention {
        max_rows: Some(2),
        max_age_ms: None,
    };
    assert!(s.prune(&keep, 0).unwrap() >= 2);
    let log = s.scans(None).unwrap();
    assert_eq!(log.iter().filter(|r| !r.passed).count(), 2);
    assert!(log.iter().any(|r| r.passed));
}

#[test]
fn postgres_refuses_a_password_in_the_url_and_commits_that_are_not_durable() {
    let Some(admin) = backends::pg_url() else {
        return;
    };
    let e = tag424::verifier::store::open("postgres://u:secret@127.0.0.1:1/x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("PGPASSWORD") && !e.contains("secret"), "{e}");
    let db = backends::fresh_pg(&admin);
    let sep = if db.arg.contains('?') { '&' } else { '?' };
    let off = format!("{}{sep}options=-c%20synchronous_commit%3Doff", db.arg);
    let e = tag424::verifier::store::open(&off)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("synchronous_commit"), "{e}");
    // Nothing was created; with durable commits the store opens.
    assert!(tag424::verifier::store::open_existing(&db.arg).is_err());
    drop(db.store());
    assert!(tag424::verifier::store::open_existing(&db.arg).is_ok());
}

/// A database a newer tag424 migrated (more migrations than this one knows) is refused,
/// naming the fix, on each backend.
#[test]
fn a_database_from_a_newer_tag424_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        drop(db.store());
        if db.is_postgres() {
            let url = db.arg.clone();
            backends::on_own_runtime(move || async move {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                c.batch_execute("INSERT INTO schema_migrations(version) VALUES (99)")
                    .await
                    .unwrap();
            });
        } else {
            rusqlite::Connection::open(&db.arg)
                .unwrap()
                .pragma_update(None, "user_version", 99)
                .unwrap();
        }
        let e = match tag424::verifier::store::open(&db.arg) {
            Ok(_) => panic!("{}: a newer schema was opened", db.name),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("schema version 99") && e.contains("upgrade tag424"),
            "{}: {e}",
            db.name
        );
    }
}

/// One list of migrations serves both stores: a fresh database of each backend reaches the
/// same schema version (the list's last), and a database an older tag424 left at version 1
/// migrates to it keeping its rows, the later columns taking their defaults.
#[test]
fn both_stores_follow_one_list_of_migrations() {
    use tag424::verifier::store::{MIGRATIONS, SCHEMA_VERSION};
    assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
    const { assert!(SCHEMA_VERSION >= 3) };
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        assert_eq!(
            db.store().schema_version().unwrap(),
            SCHEMA_VERSION,
            "{}",
            db.name
        );
    }
    let key = "01".repeat(16);
    let rows = format!(
        "INSERT INTO folders(name, aid, token, cors) VALUES ('f', 'f01', NULL, '*');
         INSERT INTO groups(folder_id, name, kind, default_response, pass_response)
           VALUES (1, 'g', 'authentication', 'Fail', 'Pass');
         INSERT INTO batches(group_id, name, active) VALUES (1, 'b', true);
         INSERT INTO tags(xuid, batch_id, key, cuid) VALUES ('a', 1, '{key}', 'A');
         INSERT INTO counters(xuid, ctr, time_ms) VALUES ('a', 7, 1);"
    );
    for db in backends::fresh_all(d.path()) {
        let v1 = &MIGRATIONS[0];
        assert_eq!(v1.version, 1);
        if db.is_postgres() {
            let (url, rows) = (db.arg.clone(), rows.clone());
            backends::on_own_runtime(move || async move {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                c.batch_execute(v1.postgres).await.unwrap();
                c.batch_execute(
                    "CREATE TABLE schema_migrations(version integer PRIMARY KEY,
                       applied_at timestamptz NOT NULL DEFAULT now());
                     INSERT INTO schema_migrations(version) VALUES (1);",
                )
                .await
                .unwrap();
                c.batch_execute(&rows).await.unwrap();
            });
        } else {
            let c = rusqlite::Connection::open(&db.arg).unwrap();
            c.execute_batch(v1.sqlite).unwrap();
            c.execute_batch(&rows).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            drop(c);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&db.arg, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut s = db.store();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION, "{}", db.name);
        let loaded = s.load().unwrap();
        let f = &loaded.catalog.folders[0];
        assert!(f.active && f.fields.is_empty(), "{}", db.name);
        let b = &f.groups[0].batches[0];
        assert_eq!(b.template, tag424::sun::DEFAULT_TEMPLATE, "{}", db.name);
        assert!(!b.lrp, "{}", db.name);
        let t = &b.tags[0];
        assert_eq!(t.key, Some(AesKey::new([1; 16])), "{}", db.name);
        assert_eq!(t.cuid.as_deref(), Some("A"), "{}", db.name);
        assert_eq!(t.active, Some(true), "{}", db.name);
        assert_eq!(loaded.counters.get("a"), Some(&7), "{}", db.name);
        // And the migrated database takes imports as a fresh one does.
        s.import(&catalog("B")).unwrap();
        assert_eq!(
            s.load().unwrap().catalog.counts(),
            (1, 1, 1, 2),
            "{}",
            db.name
        );
    }
}

/// Landing-page views that did not pass are logged but count toward no scan count, and a flood
/// of them (or of any uncounted row) is pruned before a counted row (issue 18.5).
#[test]
fn page_views_without_a_pass_neither_count_nor_push_counted_rows_out() {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        page_views_on(&db);
    }
}

fn page_views_on(db: &Db) {
    let mut s = db.store();
    s.import(&catalog("B")).unwrap();
    let row = |endpoint: &'static str, reason: &'static str, xuid: &str| ScanWrite {
        claim: None,
        endpoint,
        reason,
        xuid: xuid.into(),
        result: "Fail".into(),
        ..claim("b", 1)
    };
    // Two counted API failures and one page tap (a pass) of "b".
    let mut page_pass = claim("b", 3);
    page_pass.endpoint = "auth";
    s.commit(&[
        row("api", "bad_mac", "b"),
        row("api", "no_sun", "b"),
        page_pass,
    ])
    .unwrap();
    // A flood of page views without a pass, and of rejected requests.
    let mut flood = Vec::new();
    for i in 0..40 {
        flood.push(row("auth", ["no_sun", "bad_mac", "replay"][i % 3], "b"));
        flood.push(row("api", "error", ""));
    }
    s.commit(&flood).unwrap();
    let counts = s.load().unwrap().scan_counts["b"];
    assert_eq!(
        counts,
        ScanCounts {
            answered: 3,
            genuine: 1
        },
        "{}",
        db.name
    );
    let keep = Retention {
        max_rows: Some(3),
        max_age_ms: None,
    };
    let counted = |s: &mut Box<dyn tag424::verifier::store::Store>| {
        s.scans(None)
            .unwrap()
            .into_iter()
            .filter(|r| r.xuid == "b" && (r.passed || r.endpoint == "api"))
            .map(|r| r.reason)
            .collect::<Vec<_>>()
    };
    assert_eq!(s.prune(&keep, 0).unwrap(), 77, "{}", db.name);
    assert_eq!(s.scans(None).unwrap().len(), 6, "{}", db.name);
    assert_eq!(
        counted(&mut s),
        ["bad_mac", "no_sun", "pass"],
        "{}",
        db.name
    );
    assert_eq!(s.load().unwrap().scan_counts["b"].answered, 3);
    // A counted failure goes only beyond the newest counted rows; the pass stays.
    let tight = Retention {
        max_rows: Some(2),
        max_age_ms: None,
    };
    assert_eq!(s.prune(&tight, 0).unwrap(), 2, "{}", db.name);
    assert_eq!(counted(&mut s), ["no_sun", "pass"], "{}", db.name);
    assert_eq!(s.scans(None).unwrap().len(), 4, "{}", db.name);
}
