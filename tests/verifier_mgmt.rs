//! The management API: PATCH a tag's Default Response, status and CUID (form or JSON, by XUID
//! or by AID with ix_c / ix_u), the next /v1/t answer shows it, an empty ix_dr reverts, the
//! change survives a restart and is logged; tokens, correlation id, 429.

mod run;
mod vhelp;

use tag424::verifier::catalog::GroupKind;
use tag424::verifier::limits::Limits;
use tag424::verifier::store::Store;
use tag424::verifier::Settings;
use vhelp::*;

const MGMT: &str = "Mgmt123";

fn settings() -> Settings {
    Settings {
        management_token: Some(MGMT.into()),
        ..Settings::default()
    }
}

fn catalog() -> tag424::verifier::catalog::Catalog {
    let mut t = keyed("q8w3sbcz");
    t.cuid = Some("Bottle-1".into());
    t.uid = Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
    one_group(
        "acme",
        GroupKind::Authentication,
        "Fail",
        vec![rg(&["auth_pass"], "Pass")],
        vec![t],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_the_next_answer_and_reverts() {
    for be in backends() {
        patch_changes_the_next_answer_and_reverts_on(&be).await;
    }
}

async fn patch_changes_the_next_answer_and_reverts_on(be: &Backend) {
    let c = client();
    let s = be.start(&catalog(), settings(), Limits::default());
    let url = format!("{}/v1/x/q8w3sbcz", s.base);
    let form = |b: &str| Some(("application/x-www-form-urlencoded", b.to_string()));
    let tok = [("X-API-Key", MGMT), ("X-Correlation-Id", "abc-123")];

    let r = call(&c, "PATCH", &url, &tok, form("ix_dr=Recalled%20{xuid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["response"], "Recalled {xuid}");
    assert_eq!(r.header("x-correlation-id").as_deref(), Some("abc-123"));
    assert_eq!(r.header("api-supported-versions").as_deref(), Some("1"));
    assert_eq!(
        t(&c, &s.base, &format!("x=q8w3sbcz&{}", ne(1))).await,
        r#"{"xuid":"q8w3sbcz","response":"Recalled q8w3sbcz"}"#
    );
    // JSON body, by AID and CUID: status Inactive.
    let json = Some((
        "application/json",
        r#"{"ix_status":"Inactive"}"#.to_string(),
    ));
    let r = call(
        &c,
        "PATCH",
        &format!("{}/v1/a/acme", s.base),
        &[("Ixkio-R", MGMT), ("ix_c", "Bottle-1")],
        json,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "Inactive");
    assert!(r.header("x-correlation-id").is_some_and(|v| v.len() == 36));
    assert_eq!(
        t(&c, &s.base, "x=q8w3sbcz").await,
        r#"{"xuid":"q8w3sbcz","error":"tag_inactive"}"#
    );
    // By UID: active again, a new CUID, and the Default Response reverted.
    let r = call(
        &c,
        "PATCH",
        &format!("{}/v1/a/acme", s.base),
        &[("X-Api-Key", MGMT), ("ix_u", "04AABBCC112233")],
        form("ix_status=Active&ix_cuid=Bottle-2&ix_dr="),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        t(&c, &s.base, &format!("a=acme&c=Bottle-2&{}", ne(2))).await,
        r#"{"xuid":"q8w3sbcz","cuid":"Bottle-2","response":"Pass"}"#
    );
    assert_eq!(
        t(&c, &s.base, "a=acme&c=Bottle-1").await,
        r#"{"xuid":"","cuid":"Bottle-1","error":"cuid_not_found"}"#
    );
    // Refused: wrong token, no token, two tokens; bad fields; unknown tag; not PATCH.
    for h in [
        vec![("X-API-Key", "Wrong12")],
        vec![],
        vec![("X-API-Key", MGMT), ("Ixkio-R", MGMT)],
    ] {
        let r = call(&c, "PATCH", &url, &h, form("ix_dr=x")).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (401, Some("token_refused"))
        );
    }
    let r = call(&c, "PATCH", &url, &tok, form("ix_colour=red")).await;
    assert_eq!(r.status, 400);
    let r = call(&c, "PATCH", &url, &tok, form("ix_dr=Hi%20{nope}")).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("{nope}"), "{}", r.text);
    let r = call(&c, "PATCH", &url, &tok, form("ix_status=Sleeping")).await;
    assert_eq!(r.status, 400);
    // A Default Response of spaces would be an empty one: refused, naming the revert.
    let r = call(&c, "PATCH", &url, &tok, form("ix_dr=%20%20")).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("revert"), "{}", r.text);
    let r = call(
        &c,
        "PATCH",
        &format!("{}/v1/x/nosuch", s.base),
        &tok,
        form("ix_dr=x"),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call(&c, "GET", &url, &tok, None).await;
    assert_eq!(r.status, 405);
    // Persisted and logged: a restart from the database alone keeps the CUID.
    let keep = (s.dir, s.store);
    if let Some(r) = s.running {
        r.stop(std::time::Duration::from_secs(5)).await.unwrap();
    }
    let mut st = keep.1.store();
    let changes = st.changes().unwrap();
    assert_eq!(
        changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
        [
            "default_response",
            "status",
            "default_response",
            "status",
            "cuid"
        ]
    );
    assert!(changes.iter().all(|c| c.remote == "127.0.0.1"));
    let t0 = st.load().unwrap().catalog.folders[0].groups[0].batches[0].tags[0].clone();
    assert_eq!(t0.cuid.as_deref(), Some("Bottle-2"));
    assert_eq!(t0.default_response, None);
    drop(keep);
}

/// Each PATCH's answer is what the next scan sees, also when the instance's own change
/// notifications arrive in between (on PostgreSQL, a reload that read the catalog before a
/// change committed must never replace the state that change produced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_patches_each_seen_by_the_next_scan() {
    for be in backends() {
        let c = client();
        let s = be.start(&catalog(), settings(), Limits::default());
        let url = format!("{}/v1/x/q8w3sbcz", s.base);
        for i in 0..60 {
            let cuid = format!("Bottle-{}", 100 + i);
            let r = call(
                &c,
                "PATCH",
                &url,
                &[("X-API-Key", MGMT)],
                Some((
                    "application/x-www-form-urlencoded",
                    format!("ix_cuid={cuid}&ix_dr=R{i}"),
                )),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(
                t(&c, &s.base, &format!("a=acme&c={cuid}&{}", ne(i + 1))).await,
                format!(r#"{{"xuid":"q8w3sbcz","cuid":"{cuid}","response":"R{i}"}}"#),
                "{} after PATCH {i}",
                be.name()
            );
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_without_a_token_and_rate_limited_with_429() {
    for be in backends() {
        off_without_a_token_and_rate_limited_with_429_on(&be).await;
    }
}

async fn off_without_a_token_and_rate_limited_with_429_on(be: &Backend) {
    let c = client();
    let s = be.start(&catalog(), Settings::default(), Limits::default());
    let r = call(
        &c,
        "PATCH",
        &format!("{}/v1/x/q8w3sbcz", s.base),
        &[("X-API-Key", MGMT)],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    s.stop().await;
    let s = be.start(&catalog(), settings(), Limits::with_rate(1));
    let mut last = None;
    for _ in 0..4 {
        last = Some(
            call(
                &c,
                "PATCH",
                &format!("{}/v1/x/q8w3sbcz", s.base),
                &[("X-API-Key", MGMT)],
                Some(("application/x-www-form-urlencoded", "ix_dr=A".into())),
            )
            .await,
        );
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429, "{}", r.text);
    for h in [
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
    ] {
        assert!(r.header(h).is_some(), "{h}");
    }
    s.stop().await;
}

/// Every management answer names the tag first (`xuid`), then the lookup id it was found by
/// (`cuid` for `ix_c`, `uid` for `ix_u`), then its fields in the platform's order; each error
/// code has its own message (an unknown account is not "no such tag code").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_the_platform_order_and_each_error_its_own_message() {
    for be in backends() {
        let c = client();
        let s = be.start(&catalog(), settings(), Limits::default());
        let form = |b: &str| Some(("application/x-www-form-urlencoded", b.to_string()));
        let tok = ("X-API-Key", MGMT);
        let r = call(
            &c,
            "PATCH",
            &format!("{}/v1/x/q8w3sbcz", s.base),
            &[tok],
            form("ix_dr=Recalled"),
        )
        .await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (
                200,
                r#"{"xuid":"q8w3sbcz","cuid":"Bottle-1","status":"Active","response":"Recalled"}"#
            ),
            "{}",
            be.name()
        );
        let r = call(
            &c,
            "PATCH",
            &format!("{}/v1/a/acme", s.base),
            &[tok, ("ix_u", "04AABBCC112233")],
            form("ix_status=Inactive"),
        )
        .await;
        assert_eq!(
            r.text,
            r#"{"xuid":"q8w3sbcz","cuid":"Bottle-1","uid":"04AABBCC112233","status":"Inactive","response":"Recalled"}"#
        );
        // The errors: each its code, its message, and the lookup id echoed.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
        let cases: [Case; 5] = [
            (
                "/v1/x/nosuch",
                &[],
                404,
                r#"{"xuid":"nosuch","error":"xuid_not_found","#,
            ),
            (
                "/v1/a/nosuch",
                &[("ix_c", "Bottle-1")],
                404,
                r#"{"xuid":"","cuid":"Bottle-1","error":"aid_not_found","#,
            ),
            (
                "/v1/a/acme",
                &[("ix_c", "bottle-1")],
                404,
                r#"{"xuid":"","cuid":"bottle-1","error":"cuid_not_found","#,
            ),
            (
                "/v1/a/acme",
                &[("ix_u", "04AABBCC112234")],
                404,
                r#"{"xuid":"","uid":"04AABBCC112234","error":"uid_not_found","#,
            ),
            (
                "/v1/a/acme",
                &[("ix_c", "Bottle-1")],
                400,
                r#"{"xuid":"q8w3sbcz","cuid":"Bottle-1","error":"bad_request","#,
            ),
        ];
        let mut messages = Vec::new();
        for (path, extra, status, head) in cases {
            let mut h = vec![tok];
            h.extend_from_slice(extra);
            let body = if status == 400 {
                "ix_colour=red"
            } else {
                "ix_dr=x"
            };
            let r = call(&c, "PATCH", &format!("{}{path}", s.base), &h, form(body)).await;
            assert_eq!(r.status, status, "{path}: {}", r.text);
            assert!(r.text.starts_with(head), "{path}: {}", r.text);
            let m = r.json()["message"].as_str().unwrap().to_string();
            assert!(!m.contains("no such tag code"), "{path}: {m}");
            messages.push(m);
        }
        assert!(messages[1].contains("account id nosuch"), "{}", messages[1]);
        messages.sort();
        messages.dedup();
        assert_eq!(messages.len(), 5, "{messages:?}");
        // Refused before the lookup: the tag code is not revealed, the lookup id is echoed.
        let r = call(
            &c,
            "PATCH",
            &format!("{}/v1/a/acme", s.base),
            &[("X-API-Key", "Wrong12"), ("ix_c", "Bottle-1")],
            form("ix_dr=x"),
        )
        .await;
        assert_eq!(r.status, 401);
        assert!(
            r.text
                .starts_with(r#"{"xuid":"","cuid":"Bottle-1","error":"token_refused","message":"#),
            "{}",
            r.text
        );
        s.stop().await;
    }
}
