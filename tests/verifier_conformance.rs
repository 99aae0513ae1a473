//! Conformance: every request/answer example of the platform's documentation (copied into
//! tests/data/platform/) against `tag424 serve`, checking the exact JSON (keys, order,
//! values). Each case first checks that its request and answer are in the copied page, so the
//! table cannot drift from the documentation.

mod run;
mod vhelp;

use tag424::verifier::catalog::{GroupKind, Tag};
use vhelp::*;

const P000: &str = include_str!("data/platform/000_172c997fd0d67d65.txt");
const P002: &str = include_str!("data/platform/002_a75ef9878855756c.txt");
const PMD: &str = include_str!("data/platform/platform.md");

/// The documentation's JSON as one line, as the verifier writes it.
fn compact(doc: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(doc).unwrap();
    // Key order as written in the documentation (serde_json's map is sorted: rebuild).
    let mut keys: Vec<(usize, String)> = v
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (doc.find(&format!("\"{k}\"")).unwrap(), k.clone()))
        .collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|(_, k)| format!("\"{k}\":{}", v[k]))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Whitespace folded.
fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts the example is in `page` (request, and the answer's lines).
fn in_page(page: &str, request: &str, answer: &str) {
    let folded = fold(page);
    assert!(
        folded.contains(request),
        "request {request:?} is not in the page"
    );
    let inner = fold(answer.trim().trim_start_matches('{').trim_end_matches('}'));
    assert!(
        folded.contains(&inner),
        "answer {inner:?} is not in the page"
    );
}

fn cuid_tag(t: Tag) -> Tag {
    Tag {
        cuid: Some("yourcuid".into()),
        ..t
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_tag_examples_of_page_000() {
    for be in backends() {
        standard_tag_examples_of_page_000_on(&be).await;
    }
}

async fn standard_tag_examples_of_page_000_on(be: &Backend) {
    let c = client();
    // "Active Folder > Tag Group (standard type) > Batch > Tag Code", Default API Response 'Found'.
    let cat = one_group(
        "youraid",
        GroupKind::Standard,
        "Found",
        vec![],
        vec![cuid_tag(Tag::new("q8w3sbcz"))],
    );
    let s = be.start_default(&cat);
    let cases = [
        ("x=q8w3sbcz", r#"{"xuid": "q8w3sbcz", "response": "Found"}"#),
        (
            "a=youraid&c=yourcuid",
            r#"{"xuid": "q8w3sbcz", "cuid": "yourcuid", "response": "Found"}"#,
        ),
    ];
    for (q, want) in cases {
        in_page(P000, q, want);
        assert_eq!(t(&c, &s.base, q).await, compact(want), "{q}");
    }
    // A wrong AID; a CUID not found.
    let wrong_aid = r#"{"xuid": "", "cuid": "yourcuid", "error": "aid_not_found"}"#;
    in_page(P000, "a=youraid&c=yourcuid", wrong_aid);
    assert_eq!(
        t(&c, &s.base, "a=notmine&c=yourcuid").await,
        compact(wrong_aid)
    );
    s.stop().await;
    let cat = one_group(
        "youraid",
        GroupKind::Standard,
        "Found",
        vec![],
        vec![Tag::new("q8w3sbcz")],
    );
    let s = be.start_default(&cat);
    let not_found = r#"{"xuid": "", "cuid": "yourcuid", "error": "cuid_not_found"}"#;
    in_page(P000, "a=youraid&c=yourcuid", not_found);
    assert_eq!(
        t(&c, &s.base, "a=youraid&c=yourcuid").await,
        compact(not_found)
    );
    s.stop().await;
    // Batch inactive.
    let mut cat = one_group(
        "youraid",
        GroupKind::Standard,
        "Found",
        vec![],
        vec![Tag::new("q8w3sbcz")],
    );
    cat.folders[0].groups[0].batches[0].active = false;
    let s = be.start_default(&cat);
    let inactive = r#"{"xuid": "q8w3sbcz", "error": "batch_inactive"}"#;
    in_page(P000, "x=q8w3sbcz", inactive);
    assert_eq!(t(&c, &s.base, "x=q8w3sbcz").await, compact(inactive));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_examples_of_page_002() {
    for be in backends() {
        authentication_examples_of_page_002_on(&be).await;
    }
}

async fn authentication_examples_of_page_002_on(be: &Backend) {
    let c = client();
    // Tag Group (authentication type): Rule Group [Authentication Pass] → 'Pass', Default 'Fail'.
    let cat = one_group(
        "youraid",
        GroupKind::Authentication,
        "Fail",
        vec![rg(&["auth_pass"], "Pass")],
        vec![cuid_tag(keyed("q8w3sbcz"))],
    );
    let s = be.start_default(&cat);
    // The page's own request: its e (19 characters) cannot be a scan: the tag's Fail answer.
    let doc_request = "x=q8w3sbcz&n=000001&e=abcde12345abcde1234";
    let fail = r#"{"xuid": "q8w3sbcz", "response": "Fail"}"#;
    in_page(P002, doc_request, fail);
    assert_eq!(t(&c, &s.base, doc_request).await, compact(fail));
    // The same request with a genuine e: Pass; the refresh: Fail ("Single use").
    let pass = r#"{"xuid": "q8w3sbcz", "response": "Pass"}"#;
    in_page(P002, "x=q8w3sbcz&n=000001&e=", pass);
    let genuine = format!("x=q8w3sbcz&{}", ne(1));
    assert_eq!(t(&c, &s.base, &genuine).await, compact(pass));
    assert_eq!(t(&c, &s.base, &genuine).await, compact(fail));
    // By CUID and AID.
    let cuid_pass = r#"{"xuid": "q8w3sbcz", "cuid": "yourcuid", "response": "Pass"}"#;
    in_page(P002, "a=youraid&c=yourcuid&n=000001&e=", cuid_pass);
    let q = format!("a=youraid&c=yourcuid&{}", ne(2));
    assert_eq!(t(&c, &s.base, &q).await, compact(cuid_pass));
    // "The chip count can only move forward": an older genuine scan fails.
    let older = format!("x=q8w3sbcz&{}", ne(1));
    assert_eq!(t(&c, &s.base, &older).await, compact(fail));
    s.stop().await;
    let mut cat = one_group(
        "youraid",
        GroupKind::Authentication,
        "Fail",
        vec![],
        vec![keyed("q8w3sbcz")],
    );
    cat.folders[0].groups[0].batches[0].active = false;
    let s = be.start_default(&cat);
    let inactive = r#"{"xuid": "q8w3sbcz", "error": "batch_inactive"}"#;
    in_page(P002, "x=q8w3sbcz", inactive);
    assert_eq!(
        t(&c, &s.base, &format!("x=q8w3sbcz&{}", ne(3))).await,
        compact(inactive)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_data_example_of_platform_md() {
    for be in backends() {
        extended_data_example_of_platform_md_on(&be).await;
    }
}

async fn extended_data_example_of_platform_md_on(be: &Backend) {
    let c = client();
    let mut cat = one_group(
        "youraid",
        GroupKind::Authentication,
        "Fail",
        vec![rg(&["auth_pass"], "Pass")],
        vec![keyed("q8w3sbcz")],
    );
    cat.folders[0].fields = vec!["scancount".into()];
    cat.folders[0].groups[0].data = vec![("scancount".into(), "{scount}".into())];
    let s = be.start_default(&cat);
    let want = r#"{"xuid": "q8w3sbcz", "response": "Pass", "scancount": "123"}"#;
    assert!(PMD.contains(want), "platform.md example");
    for _ in 0..122 {
        t(&c, &s.base, "x=q8w3sbcz").await;
    }
    assert_eq!(
        t(&c, &s.base, &format!("x=q8w3sbcz&{}", ne(1))).await,
        compact(want)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_http_200_json_and_head_consumes_nothing() {
    for be in backends() {
        every_answer_is_http_200_json_and_head_consumes_nothing_on(&be).await;
    }
}

async fn every_answer_is_http_200_json_and_head_consumes_nothing_on(be: &Backend) {
    let c = client();
    let cat = one_group(
        "youraid",
        GroupKind::Authentication,
        "Fail",
        vec![],
        vec![keyed("q8w3sbcz")],
    );
    let s = be.start_default(&cat);
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let r = call(&c, m, &format!("{}/v1/t?x=q8w3sbcz", s.base), &[], None).await;
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.text, r#"{"xuid":"","error":"method_not_allowed"}"#, "{m}");
    }
    for path in ["/v1/t/", "/v1/", "/v1/nothing/here", "/v1/T"] {
        let r = call(&c, "GET", &format!("{}{path}", s.base), &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text, r#"{"xuid":"","error":"not_found"}"#, "{path}");
    }
    // HEAD (curl -I) of a fresh scan URL, then the GET: Pass.
    let q = format!("x=q8w3sbcz&{}", ne(5));
    let h = call(&c, "HEAD", &format!("{}/v1/t?{q}", s.base), &[], None).await;
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-type").as_deref(),
        Some("application/json")
    );
    let h = call(&c, "HEAD", &format!("{}/auth?{q}", s.base), &[], None).await;
    assert_eq!(h.status, 200);
    assert_eq!(
        t(&c, &s.base, &q).await,
        r#"{"xuid":"q8w3sbcz","response":"Pass"}"#
    );
    // OPTIONS answers the preflight (no CORS configured here: no allow-origin).
    let o = call(
        &c,
        "OPTIONS",
        &format!("{}/v1/t?{q}", s.base),
        &[("Origin", "https://x.example")],
        None,
    )
    .await;
    // HTTP 200 with a JSON body, as every answer of /v1/t.
    assert_eq!(o.status, 200);
    assert_eq!(o.text, r#"{"xuid":""}"#);
    assert_eq!(o.header("access-control-allow-origin"), None);
    s.stop().await;
}

/// Extended data keys come after `response` in the order the folder's `fields` declares them,
/// whichever level (group or tag code) sets each value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_data_keys_in_the_order_fields_declares() {
    for be in backends() {
        let c = client();
        let mut tag = Tag::new("q8w3sbcz");
        tag.data = vec![("alpha".into(), "tag's {xuid}".into())];
        let mut cat = one_group("youraid", GroupKind::Standard, "Found", vec![], vec![tag]);
        cat.folders[0].fields = vec!["zeta".into(), "alpha".into(), "scancount".into()];
        // As a config file's table gives them: sorted by name.
        cat.folders[0].groups[0].data = vec![
            ("alpha".into(), "A".into()),
            ("scancount".into(), "{scount}".into()),
            ("zeta".into(), "Z".into()),
        ];
        let s = be.start_default(&cat);
        assert_eq!(
            t(&c, &s.base, "x=q8w3sbcz").await,
            r#"{"xuid":"q8w3sbcz","response":"Found","zeta":"Z","alpha":"tag's q8w3sbcz","scancount":"1"}"#,
            "{}",
            be.name()
        );
        s.stop().await;
    }
}

/// The lookup id is echoed on every answer to a `c` or `u` lookup (the platform's examples
/// echo `"cuid"` with `"xuid": ""` on errors): refused queries and the rate limit included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_id_is_echoed_on_every_answer_to_a_c_or_u_lookup() {
    let c = client();
    let mut tag = cuid_tag(Tag::new("q8w3sbcz"));
    tag.uid = Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
    let cat = one_group("youraid", GroupKind::Standard, "Found", vec![], vec![tag]);
    let s = start_default(&cat);
    for (q, want) in [
        (
            "c=yourcuid",
            r#"{"xuid":"","cuid":"yourcuid","error":"missing_parameter"}"#,
        ),
        (
            "a=youraid&c=yourcuid&r=1&r=2",
            r#"{"xuid":"","cuid":"yourcuid","error":"malformed_parameter"}"#,
        ),
        (
            "a=you%ZZraid&u=04AABBCC112233",
            r#"{"xuid":"","uid":"04AABBCC112233","error":"malformed_parameter"}"#,
        ),
        (
            "a=youraid&u=04AABBCC112233",
            r#"{"xuid":"q8w3sbcz","uid":"04AABBCC112233","response":"Found"}"#,
        ),
        (
            "x=q8w3sbcz&c=yourcuid&n=1&n=2",
            r#"{"xuid":"q8w3sbcz","error":"malformed_parameter"}"#,
        ),
    ] {
        assert_eq!(t(&c, &s.base, q).await, want, "{q}");
    }
    s.stop().await;
    let s = start(
        &cat,
        tag424::verifier::Settings::default(),
        tag424::verifier::limits::Limits::with_rate(1),
    );
    let mut last = String::new();
    for _ in 0..6 {
        last = t(&c, &s.base, "a=youraid&c=yourcuid").await;
    }
    assert_eq!(
        last,
        r#"{"xuid":"","cuid":"yourcuid","error":"rate_limited"}"#
    );
    s.stop().await;
}
