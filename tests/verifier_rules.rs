//! Rules over HTTP, table-driven: three Rule Groups in order, AND within a group, scan count,
//! authentication, a tag's own rules, revert (management API) and `{tagcodedr}` layering, our
//! chip-count and date rules, subtags replaced, statuses.

mod run;
mod vhelp;

use tag424::verifier::catalog::{GroupKind, Tag};
use tag424::verifier::limits::Limits;
use tag424::verifier::Settings;
use vhelp::*;

fn resp(x: &str, r: &str) -> String {
    format!(r#"{{"xuid":"{x}","response":"{r}"}}"#)
}

/// Each case: rule groups, default, then requests (`n` = a genuine scan with counter n, 0 =
/// no SUN) and the responses expected in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_sets_table() {
    for be in backends() {
        rule_sets_table_on(&be).await;
    }
}

async fn rule_sets_table_on(be: &Backend) {
    let c = client();
    type Case = (
        &'static str,
        Vec<(&'static [&'static str], &'static str)>,
        &'static str,
        Vec<(u32, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "first matching group answers; AND within a group; scan count",
            vec![
                (&["auth_pass", "scan_count < 3"], "Pass early {scount}"),
                (&["auth_pass"], "Pass late {scount}"),
                (&["scan_count > 4"], "Many"),
            ],
            "Fail",
            vec![
                (1, "Pass early 1"),
                (2, "Pass early 2"),
                (0, "Fail"),
                (3, "Pass late 4"),
                (0, "Many"),
                (3, "Many"),
            ],
        ),
        (
            "equal / not equal",
            vec![(&["scan_count = 2"], "Second"), (&["scan_count != 2", "auth_pass"], "Ok")],
            "Fail",
            vec![(1, "Ok"), (0, "Second"), (0, "Fail"), (5, "Ok")],
        ),
        (
            "chip count (ours)",
            vec![(&["auth_pass", "chip_count > 10"], "High {ccount}"), (&["auth_pass"], "Low {ccount}")],
            "Fail {ccount}",
            vec![(5, "Low 5"), (11, "High 11"), (11, "Fail 11"), (0, "Fail 11")],
        ),
        (
            "date window (ours)",
            vec![
                (&["auth_pass", "date >= 2000-01-01", "date < 2999-01-01T00:00Z"], "In window"),
                (&["auth_pass", "date >= 2999-01-01"], "Future"),
            ],
            "Fail",
            vec![(1, "In window")],
        ),
        (
            "tamper rules do not hold while the status is unknown",
            vec![(&["tamper = open"], "Opened"), (&["tamper != open"], "Closed")],
            "Unknown",
            vec![(1, "Unknown")],
        ),
        (
            "a Rule Group with an empty response is not active (the platform)",
            vec![(&["scan_count < 100"], ""), (&["auth_pass"], "Pass")],
            "Fail",
            vec![(1, "Pass"), (0, "Fail")],
        ),
        (
            "every subtag",
            vec![(&["auth_pass"], "{xuid}|{cuid}|{uid}|{scount}|{ccount}|{folder}|{batch}|{taggroup}|{tagname}|{TAGCODEDR}")],
            "Fail",
            vec![(7, "t1|C-1|04AABBCC112233|1|7|f|b|g|Bottle|Fail")],
        ),
    ];
    for (name, groups, default, steps) in cases {
        let mut tag = keyed("t1");
        tag.cuid = Some("C-1".into());
        tag.uid = Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
        tag.tagname = Some("Bottle".into());
        let groups = groups.iter().map(|(r, resp)| rg(r, resp)).collect();
        let cat = one_group(
            "acme",
            GroupKind::Authentication,
            default,
            groups,
            vec![tag],
        );
        let s = be.start_default(&cat);
        for (i, (ctr, want)) in steps.iter().enumerate() {
            let q = if *ctr == 0 {
                "x=t1".to_string()
            } else {
                format!("x=t1&{}", ne(*ctr))
            };
            assert_eq!(
                t(&c, &s.base, &q).await,
                resp("t1", want),
                "{name}, step {i}"
            );
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_date_subtags_are_replaced() {
    for be in backends() {
        random_and_date_subtags_are_replaced_on(&be).await;
    }
}

async fn random_and_date_subtags_are_replaced_on(be: &Backend) {
    let c = client();
    let cat = one_group(
        "acme",
        GroupKind::Standard,
        "{randnum} {randhex} {dtcreated}",
        vec![],
        vec![Tag::new("s1")],
    );
    let s = be.start_default(&cat);
    let j: serde_json::Value = serde_json::from_str(&t(&c, &s.base, "x=s1").await).unwrap();
    let r = j["response"].as_str().unwrap();
    let parts: Vec<&str> = r.split(' ').collect();
    assert!(parts[0].parse::<u32>().unwrap() < 1_000_000, "{r}");
    assert_eq!(parts[1].len(), 8, "{r}");
    assert!(parts[2].ends_with('Z') && parts[2].len() == 24, "{r}");
    assert!(!r.contains('{'), "{r}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_rules_override_revert_and_layering() {
    for be in backends() {
        tag_rules_override_revert_and_layering_on(&be).await;
    }
}

async fn tag_rules_override_revert_and_layering_on(be: &Backend) {
    let c = client();
    let mut own = keyed("own");
    own.rule_groups = Some(vec![rg(&["auth_pass"], "Own pass")]);
    own.default_response = Some("Own fail".into());
    let cat = one_group(
        "acme",
        GroupKind::Authentication,
        "Fail",
        vec![rg(&["auth_pass"], "Pass")],
        vec![keyed("plain"), own],
    );
    let s = be.start(
        &cat,
        Settings {
            management_token: Some("Mgmt1".into()),
            ..Settings::default()
        },
        Limits::default(),
    );
    assert_eq!(
        t(&c, &s.base, &format!("x=own&{}", ne(1))).await,
        resp("own", "Own pass")
    );
    assert_eq!(t(&c, &s.base, "x=own").await, resp("own", "Own fail"));
    assert_eq!(
        t(&c, &s.base, &format!("x=plain&{}", ne(1))).await,
        resp("plain", "Pass")
    );
    // A Tag Code Default Response replaces the group's rules: even a genuine scan answers it.
    let patch = |x: &str, dr: &str| {
        let c = c.clone();
        let url = format!("{}/v1/x/{x}", s.base);
        let body = format!("ix_dr={dr}");
        async move {
            call(
                &c,
                "PATCH",
                &url,
                &[("X-API-Key", "Mgmt1")],
                Some(("application/x-www-form-urlencoded", body)),
            )
            .await
        }
    };
    assert_eq!(patch("plain", "Recalled").await.status, 200);
    assert_eq!(
        t(&c, &s.base, &format!("x=plain&{}", ne(2))).await,
        resp("plain", "Recalled")
    );
    // Empty ix_dr reverts to the group's rules.
    assert_eq!(patch("plain", "").await.status, 200);
    assert_eq!(
        t(&c, &s.base, &format!("x=plain&{}", ne(3))).await,
        resp("plain", "Pass")
    );
    s.stop().await;

    // Layering: {tagcodedr} in the group's rules runs them with the tag's Default Response.
    let mut recalled = keyed("r1");
    recalled.default_response = Some("Recalled".into());
    let cat = one_group(
        "acme",
        GroupKind::Authentication,
        "Fail ({tagcodedr})",
        vec![rg(&["auth_pass"], "Pass: {tagcodedr}")],
        vec![keyed("p1"), recalled],
    );
    let s = be.start_default(&cat);
    assert_eq!(
        t(&c, &s.base, &format!("x=r1&{}", ne(1))).await,
        resp("r1", "Pass: Recalled")
    );
    assert_eq!(t(&c, &s.base, "x=r1").await, resp("r1", "Fail (Recalled)"));
    // No Tag Code Default Response: {tagcodedr} is the group's own Default Response.
    assert_eq!(t(&c, &s.base, "x=p1").await, resp("p1", "Fail (Fail ())"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_answer_their_errors() {
    for be in backends() {
        statuses_answer_their_errors_on(&be).await;
    }
}

async fn statuses_answer_their_errors_on(be: &Backend) {
    let c = client();
    let err = |x: &str, e: &str| format!(r#"{{"xuid":"{x}","error":"{e}"}}"#);
    for (level, code) in [
        ("folder", "folder_inactive"),
        ("group", "tg_inactive"),
        ("batch", "batch_inactive"),
        ("tag", "tag_inactive"),
    ] {
        let mut cat = one_group(
            "acme",
            GroupKind::Authentication,
            "Fail",
            vec![],
            vec![keyed("t1")],
        );
        let f = &mut cat.folders[0];
        match level {
            "folder" => f.active = false,
            "group" => f.groups[0].active = false,
            "batch" => f.groups[0].batches[0].active = false,
            _ => f.groups[0].batches[0].tags[0].active = Some(false),
        }
        let s = be.start_default(&cat);
        assert_eq!(
            t(&c, &s.base, &format!("x=t1&{}", ne(1))).await,
            err("t1", code),
            "{level}"
        );
        s.stop().await;
    }
}

#[test]
fn serve_refuses_a_config_with_an_unknown_subtag_naming_its_line() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("v.toml");
    std::fs::write(
        &cfg,
        "[[folder]]\nname = \"a\"\naid = \"a\"\n\n[[folder.group]]\nname = \"g\"\ndefault_response = \"Fail {scont}\"\n",
    )
    .unwrap();
    let out = run::tag424()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .args(["--db"])
        .arg(d.path().join("v.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 7") && err.contains("{scont}"), "{err}");
}

/// Page views need no token, so only a tap (a genuine SUN message with a new counter) counts
/// as a scan there: views without one, refreshes and lookups by CUID/UID cannot push a tag's
/// scan count past a rule, before or after a restart (issue 18.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_without_a_tap_do_not_count_or_reveal_the_tag_code() {
    for be in backends() {
        page_views_on(&be).await;
    }
}

async fn page_views_on(be: &Backend) {
    let c = client();
    let mut tag = keyed("t1");
    tag.cuid = Some("C-1".into());
    tag.uid = Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
    let mut cat = one_group(
        "acme",
        GroupKind::Authentication,
        "Fail {xuid} {scount}",
        vec![rg(&["auth_pass", "scan_count < 5"], "Pass {scount}")],
        vec![tag],
    );
    cat.folders[0].token = Some("Secret123".into());
    let s = be.start_default(&cat);
    let api = |q: String| format!("x=t1&{q}&r=Secret123");
    let code_cell = "<td>t1</td>";
    // Views without a tap: no SUN, an altered one, lookups by CUID and UID.
    for q in [
        "x=t1".to_string(),
        altered(&format!("x=t1&{}", ne(9))),
        "c=C-1&a=acme".into(),
        format!("c=C-1&a=acme&{}", altered(&ne(9))),
        "u=04AABBCC112233&a=acme".into(),
    ] {
        for _ in 0..3 {
            let p = page(&c, &s.base, &q).await;
            assert!(p.text.contains("data-authentic=\"false\""), "{q}");
            if !q.starts_with("x=") {
                // The API refuses these without the token and names no tag code; the page
                // does not reveal it either (nor the result, which may hold {xuid}).
                assert!(!p.text.contains("t1"), "{}: {q}: {}", be.name(), p.text);
            } else {
                // The query named the code; the result (subtags) stays behind the token.
                assert!(p.text.contains(code_cell), "{q}: {}", p.text);
                assert!(!p.text.contains("Fail"), "{q}: {}", p.text);
            }
        }
    }
    assert_eq!(
        t(&c, &s.base, "c=C-1&a=acme").await,
        r#"{"xuid":"","cuid":"C-1","error":"token_refused"}"#
    );
    // A tap on the page counts (scan 1), its refreshes do not.
    let tap = format!("x=t1&{}", ne(1));
    let p = page(&c, &s.base, &tap).await;
    assert!(p.text.contains("data-authentic=\"true\""), "{}", p.text);
    assert!(p.text.contains(code_cell) && p.text.contains("Pass 1"));
    for _ in 0..5 {
        let p = page(&c, &s.base, &tap).await;
        assert!(p.text.contains("already-checked"), "{}", p.text);
    }
    // A tap by CUID shows the tag: the SUN message is genuine.
    let p = page(&c, &s.base, &format!("c=C-1&a=acme&{}", ne(2))).await;
    assert!(
        p.text.contains(code_cell) && p.text.contains("Pass 2"),
        "{}",
        p.text
    );
    assert_eq!(t(&c, &s.base, &api(ne(3))).await, resp("t1", "Pass 3"));
    // After a restart the scan count comes from the log: still 3.
    let s = s.restart().await;
    for _ in 0..3 {
        page(&c, &s.base, "x=t1").await;
    }
    assert_eq!(
        t(&c, &s.base, &api(ne(4))).await,
        resp("t1", "Pass 4"),
        "{}",
        be.name()
    );
    s.stop().await;
}

/// Every imported text field has a bound and refuses control characters, by the one text rule
/// (as RESPONSE had): a 3 MB TAGNAME, an ESC in a TAGNAME, CUID, RESPONSE or name is refused
/// naming the file and line, without quoting the value (issue 18.6).
#[test]
fn imported_text_fields_are_bounded_and_refuse_control_characters() {
    use tag424::verifier::config::FlagFolder;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("assoc.csv");
    let import = |body: &str| {
        std::fs::write(&f, format!("XUID,TAGNAME,CUID,RESPONSE\n{body}\n")).unwrap();
        FlagFolder {
            kind: Some(GroupKind::Standard),
            ..FlagFolder::default()
        }
        .catalog(&[f.display().to_string()], None)
    };
    let huge = "N".repeat(3 << 20);
    for (body, field) in [
        (format!("t1,{huge},,"), "TAGNAME"),
        ("t1,Bad\u{1b}]0;title\u{7},,".to_string(), "TAGNAME"),
        ("t1,,C\u{1b}[31m,".to_string(), "CUID"),
        (format!("t1,,{},", "c".repeat(129)), "CUID"),
        ("t1,,,Hi\u{1b}[2J".to_string(), "RESPONSE"),
    ] {
        let e = import(&body).expect_err(field).to_string();
        assert!(e.contains("assoc.csv line 2") && e.contains(field), "{e}");
        assert!(e.len() < 400 && !e.contains('\u{1b}'), "{field}: {e:.400}");
    }
    // At the limit (in characters, not bytes) it is taken and answered by {tagname}.
    let name = "é".repeat(128);
    let cat = import(&format!("t1,{name},C-1,{{tagname}}")).unwrap();
    cat.validate().unwrap();
    // The same rule for the configuration's names, checked with every catalog.
    let mut bad = one_group(
        "acme",
        GroupKind::Standard,
        "Found",
        vec![],
        vec![Tag::new("t1")],
    );
    bad.folders[0].groups[0].name = "g\u{1b}[31m".into();
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("group name") && e.contains("control"), "{e}");
    bad.folders[0].groups[0].name = "g".into();
    bad.folders[0].groups[0].batches[0].tags[0].tagname = Some(huge);
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("TAGNAME of tag t1") && e.len() < 400, "{e:.400}");
}

/// A template that names its tag by the plain UID mirror does not learn the tag code without
/// the folder's token, on the API (`token_refused` with `"xuid": ""`) or the page (issue 18.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uid_template_learns_no_tag_code_without_the_token() {
    let c = client();
    let mut tag = keyed("t1");
    tag.uid = Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
    let mut cat = one_group(
        "acme",
        GroupKind::Authentication,
        "Fail {xuid}",
        vec![],
        vec![tag],
    );
    cat.folders[0].token = Some("Secret123".into());
    cat.folders[0].groups[0].batches[0].template =
        "https://e.com/auth?uid={uid}&ctr={ctr}&cmac={mac}".into();
    let s = start_default(&cat);
    let q = "uid=04AABBCC112233&ctr=000001&cmac=0011223344556677";
    assert_eq!(
        t(&c, &s.base, q).await,
        r#"{"xuid":"","error":"token_refused"}"#
    );
    assert_eq!(
        t(&c, &s.base, &format!("{q}&r=Secret123")).await,
        resp("t1", "Fail t1")
    );
    let p = page(&c, &s.base, q).await;
    assert!(p.text.contains("not-authentic"), "{}", p.text);
    assert!(!p.text.contains("t1"), "{}", p.text);
    s.stop().await;
}

/// The platform's "You must have a Rule Set and set a Default Response": an empty Default
/// Response is refused; more extended data fields than the platform allows (5) are refused;
/// an inactive Rule Group (empty response) is named for the operator.
#[test]
fn empty_default_responses_and_too_many_fields_are_refused() {
    use tag424::verifier::catalog::MAX_FIELDS;
    let cat = |default: &str| {
        one_group(
            "acme",
            GroupKind::Authentication,
            default,
            vec![rg(&["auth_pass"], "Pass"), rg(&["scan_count > 1"], " ")],
            vec![keyed("t1")],
        )
    };
    for empty in ["", "  "] {
        let e = cat(empty).validate().unwrap_err().to_string();
        assert!(e.contains("Default Response is empty"), "{e}");
    }
    let ok = cat("Fail");
    ok.validate().unwrap();
    let notes = ok.inactive_rule_groups();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("Rule Group 2") && notes[0].contains("not active"),
        "{notes:?}"
    );
    let mut own = cat("Fail");
    own.folders[0].groups[0].batches[0].tags[0].default_response = Some(String::new());
    let e = own.validate().unwrap_err().to_string();
    assert!(e.contains("tag t1") && e.contains("empty"), "{e}");
    let mut fields = cat("Fail");
    fields.folders[0].fields = (0..MAX_FIELDS).map(|i| format!("f{i}")).collect();
    fields.validate().unwrap();
    fields.folders[0].fields.push("one_more".into());
    let e = fields.validate().unwrap_err().to_string();
    assert!(e.contains("up to 5"), "{e}");
    fields.folders[0].fields = vec!["a".into(), "a".into()];
    assert!(fields.validate().unwrap_err().to_string().contains("twice"));
}
