//! The local verifier over real HTTP: a server on an ephemeral loopback port (in-process, or
//! the real `tag424 serve` binary), a real client (reqwest), every answer of `GET /v1/t`.
//! Every test runs on each store (SQLite, and PostgreSQL when TAG424_TEST_PG is set; see
//! tests/backends).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, GroupKind, Tag};
use tag424::verifier::server::{self, Running, Tls};
use tag424::verifier::store;
use tag424::verifier::Verifier;

mod run;
mod vhelp;
use vhelp::backends::{self, column, encode_batch, run, serve, tap, Db};
use vhelp::{altered, call};

const KEY: [u8; 16] = [0x5A; 16];
const KEY2: [u8; 16] = [0x3C; 16];
const TOKEN: &str = "Secret123";
const ORIGIN: &str = "https://shop.example.com";

fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tag(xuid: &str) -> Tag {
    Tag::new(xuid)
}

fn keyed(xuid: &str, key: [u8; 16]) -> Tag {
    Tag {
        key: Some(AesKey::new(key)),
        ..Tag::new(xuid)
    }
}

/// Three folders: "open" (no token, no CORS), "locked" (token, CORS *), "shop" (one origin).
fn catalog() -> Catalog {
    let auth = |name: &str, batches: Vec<Batch>| Group {
        name: name.into(),
        kind: GroupKind::Authentication,
        default_response: "Fail".into(),
        pass_response: "Pass".into(),
        batches,
        ..Group::default()
    };
    let standard = |name: &str, batches: Vec<Batch>| Group {
        name: name.into(),
        kind: GroupKind::Standard,
        default_response: "Found".into(),
        pass_response: "Pass".into(),
        batches,
        ..Group::default()
    };
    let batch = |name: &str, active: bool, tags: Vec<Tag>| Batch {
        name: name.into(),
        active,
        tags,
        ..Batch::default()
    };
    let mut with_ids = keyed("auth1", KEY);
    with_ids.uid = Some([0x04, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]);
    with_ids.cuid = Some("Bottle-1".into());
    let mut overridden = keyed("special", KEY2);
    overridden.default_response = Some("Recalled".into());
    overridden.pass_response = Some("Genuine".into());
    let mut plain = tag("plain1");
    plain.cuid = Some("Shelf-A".into());
    plain.uid = Some([0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
    Catalog {
        folders: vec![
            Folder {
                name: "open".into(),
                aid: "open01".into(),
                token: None,
                cors: Cors::None,
                groups: vec![
                    auth(
                        "bottles",
                        vec![
                            batch("b1", true, vec![with_ids, keyed("auth2", KEY), overridden]),
                            batch("b-off", false, vec![keyed("asleep", KEY)]),
                        ],
                    ),
                    standard(
                        "shelves",
                        vec![batch("s1", true, vec![plain, tag("nokeytag")])],
                    ),
                    auth("nokeys", vec![batch("nk", true, vec![tag("keyless")])]),
                ],
                ..Folder::default()
            },
            Folder {
                name: "locked".into(),
                aid: "locked01".into(),
                token: Some(TOKEN.into()),
                cors: Cors::Any,
                groups: vec![auth(
                    "g",
                    vec![batch("l1", true, {
                        let mut t = keyed("secret1", KEY);
                        t.cuid = Some("Locked-1".into());
                        vec![t]
                    })],
                )],
                ..Folder::default()
            },
            Folder {
                name: "shop".into(),
                aid: "shop01".into(),
                token: None,
                cors: Cors::Origin(ORIGIN.into()),
                groups: vec![standard("g", vec![batch("sh1", true, vec![tag("shop1")])])],
                ..Folder::default()
            },
        ],
    }
}

fn start(db: &Db, cat: Option<&Catalog>) -> Running {
    start_with(db, cat, Cors::None)
}

fn start_with(db: &Db, cat: Option<&Catalog>, cors: Cors) -> Running {
    let v = Verifier::open(db.store(), cat, cors).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    server::spawn(Arc::new(v), l, None).unwrap()
}

fn client() -> reqwest::Client {
    init_tls();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The query part of a scan of the default template with counter `ctr`.
fn sun(xuid: &str, key: [u8; 16], ctr: u32) -> String {
    let mac = sdm_mac(&AesKey::new(key), None, Some(ctr), b"");
    format!("x={xuid}&n={ctr:06X}&e={}", hex::encode_upper(mac))
}

struct Got {
    status: u16,
    cors: Option<String>,
    json: serde_json::Value,
}

async fn get(c: &reqwest::Client, base: &str, query: &str, headers: &[(&str, &str)]) -> Got {
    let r = call(c, "GET", &format!("{base}/v1/t?{query}"), headers, None).await;
    let ct = r.header("content-type").unwrap_or_default();
    assert_eq!(ct, "application/json", "{query}");
    Got {
        status: r.status,
        cors: r.header("access-control-allow-origin"),
        json: serde_json::from_str(&r.text).unwrap(),
    }
}

async fn answer(c: &reqwest::Client, base: &str, query: &str) -> serde_json::Value {
    let g = get(c, base, query, &[]).await;
    assert_eq!(g.status, 200, "{query}");
    g.json
}

fn j(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

/// Runs `test` once per backend: a fresh database and a directory of its own.
async fn each_db(test: impl AsyncFn(&Db, &Path)) {
    let d = tempfile::tempdir().unwrap();
    for db in backends::fresh_all(d.path()) {
        let dir = d.path().join(db.name);
        std::fs::create_dir_all(&dir).unwrap();
        test(&db, &dir).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_every_error() {
    each_db(lookups_and_every_error_on).await;
}

async fn lookups_and_every_error_on(db: &Db, _: &Path) {
    let srv = start(db, Some(&catalog()));
    let base = format!("http://{}", srv.addr);
    let c = client();
    let cases: &[(&str, &str)] = &[
        // Standard tags answer their default response, by each lookup.
        ("x=plain1", r#"{"xuid":"plain1","response":"Found"}"#),
        (
            "c=Shelf-A&a=open01",
            r#"{"xuid":"plain1","cuid":"Shelf-A","response":"Found"}"#,
        ),
        (
            "u=04010203040506&a=open01",
            r#"{"xuid":"plain1","uid":"04010203040506","response":"Found"}"#,
        ),
        // n and e are ignored on a standard tag.
        (
            "x=nokeytag&n=000001&e=0000000000000000",
            r#"{"xuid":"nokeytag","response":"Found"}"#,
        ),
        // Authentication tags without a SUN message, or without a key: default response.
        ("x=auth1", r#"{"xuid":"auth1","response":"Fail"}"#),
        (
            "c=Bottle-1&a=open01",
            r#"{"xuid":"auth1","cuid":"Bottle-1","response":"Fail"}"#,
        ),
        (
            "u=04AABBCC112233&a=open01",
            r#"{"xuid":"auth1","uid":"04AABBCC112233","response":"Fail"}"#,
        ),
        ("x=special", r#"{"xuid":"special","response":"Recalled"}"#),
        (
            "x=keyless&n=000001&e=0000000000000000",
            r#"{"xuid":"keyless","response":"Fail"}"#,
        ),
        // Errors.
        (
            "x=nosuchtag",
            r#"{"xuid":"nosuchtag","error":"xuid_not_found"}"#,
        ),
        ("x=asleep", r#"{"xuid":"asleep","error":"batch_inactive"}"#),
        (
            "c=Shelf-A&a=nobody",
            r#"{"xuid":"","cuid":"Shelf-A","error":"aid_not_found"}"#,
        ),
        (
            "u=04010203040506&a=nobody",
            r#"{"xuid":"","uid":"04010203040506","error":"aid_not_found"}"#,
        ),
        (
            "c=shelf-a&a=open01",
            r#"{"xuid":"","cuid":"shelf-a","error":"cuid_not_found"}"#,
        ),
        (
            "u=04FFFFFFFFFFFF&a=open01",
            r#"{"xuid":"","uid":"04FFFFFFFFFFFF","error":"uid_not_found"}"#,
        ),
        ("", r#"{"xuid":"","error":"missing_parameter"}"#),
        ("x=", r#"{"xuid":"","error":"missing_parameter"}"#),
        // The lookup id is echoed on every answer to a c or u lookup.
        (
            "c=Shelf-A",
            r#"{"xuid":"","cuid":"Shelf-A","error":"missing_parameter"}"#,
        ),
        (
            "u=04010203040506",
            r#"{"xuid":"","uid":"04010203040506","error":"missing_parameter"}"#,
        ),
        ("x=auth1&n=000001", r#"{"xuid":"auth1","response":"Fail"}"#),
        (
            "x=auth1&e=0011223344556677",
            r#"{"xuid":"auth1","response":"Fail"}"#,
        ),
        (
            "x=auth1&x=auth2",
            r#"{"xuid":"","error":"malformed_parameter"}"#,
        ),
        (
            "x=auth1&n=1&e=0011223344556677",
            r#"{"xuid":"auth1","response":"Fail"}"#,
        ),
        (
            "x=auth1&n=000001&e=00112233",
            r#"{"xuid":"auth1","response":"Fail"}"#,
        ),
        (
            "x=auth1&n=00000G&e=0011223344556677",
            r#"{"xuid":"auth1","response":"Fail"}"#,
        ),
        (
            "u=04aabbcc112233&a=open01",
            r#"{"xuid":"","error":"malformed_parameter"}"#,
        ),
        ("x=%ZZ", r#"{"xuid":"","error":"malformed_parameter"}"#),
        ("x=a%3Cb", r#"{"xuid":"","error":"malformed_parameter"}"#),
    ];
    for (q, want) in cases {
        assert_eq!(answer(&c, &base, q).await, j(want), "query {q:?}");
    }
    let long = format!("x={}", "a".repeat(5000));
    assert_eq!(
        answer(&c, &base, &long).await,
        j(r#"{"xuid":"","error":"malformed_parameter"}"#)
    );
    // Other endpoints.
    let h = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.json::<serde_json::Value>().await.unwrap()["tags"], 9);
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_each_place() {
    each_db(token_in_each_place_on).await;
}

async fn token_in_each_place_on(db: &Db, _: &Path) {
    let srv = start(db, Some(&catalog()));
    let base = format!("http://{}", srv.addr);
    let c = client();
    let refused = j(r#"{"xuid":"secret1","error":"token_refused"}"#);
    let ok = j(r#"{"xuid":"secret1","response":"Fail"}"#);
    assert_eq!(answer(&c, &base, "x=secret1").await, refused);
    assert_eq!(answer(&c, &base, "x=secret1&r=Wrong123").await, refused);
    assert_eq!(answer(&c, &base, "x=secret1&r=Secret12").await, refused);
    assert_eq!(answer(&c, &base, &format!("x=secret1&r={TOKEN}")).await, ok);
    for h in ["X-API-Key", "X-Api-Key", "Ixkio-R"] {
        let g = get(&c, &base, "x=secret1", &[(h, TOKEN)]).await;
        assert_eq!(g.json, ok, "header {h}");
        let g = get(&c, &base, "x=secret1", &[(h, "nope")]).await;
        assert_eq!(g.json, refused, "header {h}");
    }
    // A c lookup refused does not reveal the tag code.
    assert_eq!(
        answer(&c, &base, "c=Locked-1&a=locked01").await,
        j(r#"{"xuid":"","cuid":"Locked-1","error":"token_refused"}"#)
    );
    assert_eq!(
        answer(&c, &base, &format!("c=Locked-1&a=locked01&r={TOKEN}")).await,
        j(r#"{"xuid":"secret1","cuid":"Locked-1","response":"Fail"}"#)
    );
    // A token given to a folder without one is ignored.
    assert_eq!(
        answer(&c, &base, "x=plain1&r=Anything1").await,
        j(r#"{"xuid":"plain1","response":"Found"}"#)
    );
    // A Pass through a token.
    let q = format!("{}&r={TOKEN}", sun("secret1", KEY, 7));
    assert_eq!(
        answer(&c, &base, &q).await,
        j(r#"{"xuid":"secret1","response":"Pass"}"#)
    );
    // The /auth page is the tag's own URL: no token needed.
    let page = c
        .get(format!("{base}/auth?{}", sun("secret1", KEY, 8)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-authentic=\"true\""), "{page}");
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_in_each_setting() {
    each_db(cors_in_each_setting_on).await;
}

async fn cors_in_each_setting_on(db: &Db, d: &Path) {
    let srv = start(db, Some(&catalog()));
    let base = format!("http://{}", srv.addr);
    let c = client();
    assert_eq!(get(&c, &base, "x=plain1", &[]).await.cors, None);
    assert_eq!(
        get(&c, &base, "x=secret1", &[]).await.cors.as_deref(),
        Some("*")
    );
    assert_eq!(
        get(&c, &base, "x=shop1", &[]).await.cors.as_deref(),
        Some(ORIGIN)
    );
    // No folder (unknown tag): the server-wide setting, none here.
    assert_eq!(get(&c, &base, "x=unknown", &[]).await.cors, None);
    // Preflight for a header token.
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/t"))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No tag named: only an origin some folder names exactly is allowed.
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("X-API-Key"));
    srv.stop(Duration::from_secs(5)).await.unwrap();

    // Server-wide CORS applies to answers of no folder.
    let db = match db.is_postgres() {
        true => backends::fresh_pg(&backends::pg_url().unwrap()),
        false => backends::fresh_sqlite(d),
    };
    let srv = start_with(&db, Some(&catalog()), Cors::Origin(ORIGIN.into()));
    let base = format!("http://{}", srv.addr);
    assert_eq!(
        get(&c, &base, "x=unknown", &[]).await.cors.as_deref(),
        Some(ORIGIN)
    );
    assert_eq!(get(&c, &base, "x=plain1", &[]).await.cors, None);
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_then_fail_on_replay_older_counter_and_wrong_mac() {
    each_db(pass_then_fail_on_replay_older_counter_and_wrong_mac_on).await;
}

async fn pass_then_fail_on_replay_older_counter_and_wrong_mac_on(db: &Db, _: &Path) {
    let srv = start(db, Some(&catalog()));
    let base = format!("http://{}", srv.addr);
    let c = client();
    let pass = j(r#"{"xuid":"auth1","response":"Pass"}"#);
    let fail = j(r#"{"xuid":"auth1","response":"Fail"}"#);
    // Wrong MAC (flipped nibble, or another tag's key): Fail, and the counter is not consumed.
    let good = sun("auth1", KEY, 5);
    assert_eq!(answer(&c, &base, &altered(&good)).await, fail);
    assert_eq!(answer(&c, &base, &sun("auth1", KEY2, 5)).await, fail);
    assert_eq!(answer(&c, &base, &good).await, pass);
    // Replay: the same URL again.
    assert_eq!(answer(&c, &base, &good).await, fail);
    // The same counter and MAC in lowercase hex is the same scan.
    assert_eq!(answer(&c, &base, &good.to_lowercase()).await, fail);
    // Older counter (valid MAC).
    assert_eq!(answer(&c, &base, &sun("auth1", KEY, 4)).await, fail);
    // Forward: a later counter passes, even with a gap.
    assert_eq!(answer(&c, &base, &sun("auth1", KEY, 9)).await, pass);
    assert_eq!(answer(&c, &base, &sun("auth1", KEY, 6)).await, fail);
    // By CUID and by UID lookups, with n and e.
    assert_eq!(
        answer(
            &c,
            &base,
            &sun("auth1", KEY, 10).replace("x=auth1", "c=Bottle-1&a=open01")
        )
        .await,
        j(r#"{"xuid":"auth1","cuid":"Bottle-1","response":"Pass"}"#)
    );
    assert_eq!(
        answer(
            &c,
            &base,
            &sun("auth1", KEY, 11).replace("x=auth1", "u=04AABBCC112233&a=open01")
        )
        .await,
        j(r#"{"xuid":"auth1","uid":"04AABBCC112233","response":"Pass"}"#)
    );
    // Per-tag overrides of both responses.
    assert_eq!(
        answer(&c, &base, &sun("special", KEY2, 1)).await,
        j(r#"{"xuid":"special","response":"Genuine"}"#)
    );
    assert_eq!(
        answer(&c, &base, &sun("special", KEY2, 1)).await,
        j(r#"{"xuid":"special","response":"Recalled"}"#)
    );
    // Counters are per tag.
    assert_eq!(
        answer(&c, &base, &sun("auth2", KEY, 1)).await,
        j(r#"{"xuid":"auth2","response":"Pass"}"#)
    );
    srv.stop(Duration::from_secs(5)).await.unwrap();

    // Restart from the database alone: the counters stay, the scan log holds every request.
    let srv = start(db, None);
    let base = format!("http://{}", srv.addr);
    assert_eq!(answer(&c, &base, &sun("auth1", KEY, 11)).await, fail);
    assert_eq!(answer(&c, &base, &sun("auth1", KEY, 12)).await, pass);
    srv.stop(Duration::from_secs(5)).await.unwrap();
    let mut s = store::open_existing(&db.arg).unwrap();
    let log = s.scans(None).unwrap();
    assert_eq!(log.len(), 15);
    assert_eq!(log.iter().filter(|r| r.passed).count(), 7);
    assert!(log.iter().all(|r| r.remote == "127.0.0.1"));
    assert_eq!(log[0].reason, "bad_mac");
    assert_eq!(log[3].reason, "replay");
    assert_eq!(log[5].reason, "old_counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_of_one_url_pass_once() {
    each_db(thousand_concurrent_requests_of_one_url_pass_once_on).await;
}

async fn thousand_concurrent_requests_of_one_url_pass_once_on(db: &Db, _: &Path) {
    // A thousand connections from one address, as a proxy in front sends them: no
    // per-address cap (its default would refuse most at accept).
    let v = Verifier::open(db.store(), Some(&catalog()), Cors::None).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let limits = tag424::verifier::limits::Limits {
        per_address: 0,
        ..Default::default()
    };
    let srv = server::spawn_with(Arc::new(v), l, None, limits).unwrap();
    let url = format!("http://{}/v1/t?{}", srv.addr, sun("auth2", KEY, 42));
    let c = client();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let c = c.clone();
        let url = url.clone();
        set.spawn(async move {
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["response"]
                .as_str()
                .unwrap()
                .to_string()
        });
    }
    let mut passes = 0;
    let mut fails = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap().as_str() {
            "Pass" => passes += 1,
            "Fail" => fails += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((passes, fails), (1, 999));
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate() {
    init_tls();
    each_db(https_on).await;
}

async fn https_on(db: &Db, _: &Path) {
    let v = Verifier::open(db.store(), Some(&catalog()), Cors::None).unwrap();
    let tls = server::rustls_config(&Tls::SelfSigned {
        names: vec!["localhost".into()],
        keep: None,
    })
    .unwrap()
    .unwrap();
    let pem = tls.self_signed_pem.clone().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let srv = server::spawn(Arc::new(v), l, Some(tls.config)).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    assert_eq!(
        answer(&c, &base, &sun("auth1", KEY, 1)).await,
        j(r#"{"xuid":"auth1","response":"Pass"}"#)
    );
    // Plain HTTP to the TLS port gets no answer.
    let plain = client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

// ---- The real binary -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_story_on_the_real_binary() {
    each_db(the_full_story_on_the_real_binary_on).await;
}

async fn the_full_story_on_the_real_binary_on(db: &Db, d: &Path) {
    let (tags, out) = (d.join("tags"), d.join("batch1"));
    let (out_s, db_s) = (out.to_str().unwrap(), db.arg.as_str());
    encode_batch(&tags, 2, &out, &[]);
    let xuid = column(&out, "keys.csv", 0);
    let (mut child, base) = serve(&["--batch", out_s, "--db", db_s]);
    let c = client();
    let pass = j(&format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#));
    let fail = j(&format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#));

    let first = tap(&tags, &xuid);
    assert_eq!(answer(&c, &base, &first).await, pass);
    let second = tap(&tags, &xuid);
    let ctr =
        |q: &str| u32::from_str_radix(q.split("n=").nth(1).unwrap().get(..6).unwrap(), 16).unwrap();
    assert_eq!(ctr(&second), ctr(&first) + 1);
    assert_eq!(answer(&c, &base, &second).await, pass);
    assert_eq!(answer(&c, &base, &first).await, fail);
    assert_eq!(answer(&c, &base, &second).await, fail);
    // The UID from associate.csv finds the tag.
    let uid = column(&out, "associate.csv", 1);
    assert_eq!(
        answer(&c, &base, &format!("u={uid}&a=local")).await,
        j(&format!(
            r#"{{"xuid":"{xuid}","uid":"{uid}","response":"Fail"}}"#
        ))
    );

    // SIGTERM: graceful stop, exit 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let log = run(&["scans", "--db", db_s, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&log).unwrap();
    let rows = v["scans"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().filter(|r| r["passed"] == true).count(), 2);
    assert_eq!(rows[2]["reason"], "old_counter");
    assert_eq!(rows[3]["reason"], "replay");
    let text = run(&["scans", "--db", db_s]);
    assert!(text.contains("5 scans, 2 passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_a_pass_then_the_same_url_fails() {
    each_db(kill_9_right_after_a_pass_then_the_same_url_fails_on).await;
}

async fn kill_9_right_after_a_pass_then_the_same_url_fails_on(db: &Db, d: &Path) {
    let (tags, out) = (d.join("tags"), d.join("b"));
    let (out_s, db_s) = (out.to_str().unwrap(), db.arg.as_str());
    encode_batch(&tags, 1, &out, &[]);
    let xuid = column(&out, "keys.csv", 0);
    let c = client();
    let pass = j(&format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#));
    let fail = j(&format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#));
    let mut last = String::new();
    for round in 0..3 {
        // The first round imports the batch; later ones serve from the database alone.
        let (mut child, base) = if round == 0 {
            serve(&["--batch", out_s, "--db", db_s])
        } else {
            serve(&["--db", db_s])
        };
        if round > 0 {
            assert_eq!(answer(&c, &base, &last).await, fail, "round {round}");
        }
        last = tap(&tags, &xuid);
        assert_eq!(answer(&c, &base, &last).await, pass);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
}

#[test]
fn plain_http_on_a_non_loopback_address_warns_and_tls_does_not() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    for (extra, warns) in [(&[][..], true), (&["--tls-self-signed"][..], false)] {
        let mut child = run::tag424()
            .args([
                "serve",
                "--listen",
                "0.0.0.0:0",
                "--db",
                db.to_str().unwrap(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = out
            .by_ref()
            .map(|l| l.unwrap())
            .find(|l| l.contains("listening on"))
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(err.contains("warning: serving plain HTTP"), warns, "{err}");
        assert_eq!(listening.contains("https://"), !warns, "{listening}");
    }
}

/// A server process, killed when dropped (also when an assertion fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tag424 serve ARGS` until its "listening on" line: the child and every line printed.
fn serve_lines(args: &[&str]) -> (Killed, Vec<String>) {
    let mut child = run::tag424()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for l in BufReader::new(child.stdout.take().unwrap()).lines() {
        let l = l.unwrap();
        let done = l.contains("listening on");
        lines.push(l);
        if done {
            return (Killed(child), lines);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tag424 serve {args:?} printed no listening line: {lines:?}");
}

/// `--tls-self-signed`: the certificate is kept owner-only beside the database and served
/// again at the next start (a phone that accepted it does not warn again); its subject names
/// tag424 and the host; on 0.0.0.0 the start line gives the URL a phone opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_kept_beside_the_database_and_reused() {
    init_tls();
    use rustls::pki_types::pem::PemObject;
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    let kept = d.path().join("v.db.tls.pem");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--db",
        db.to_str().unwrap(),
    ];
    let mut first_pem = None;
    for (round, says) in [(0, "made now and kept in"), (1, "reused from")] {
        let (child, lines) = serve_lines(&args);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(says) && l.contains(kept.to_str().unwrap())),
            "round {round}: {lines:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "round {round}");
        }
        let text = std::fs::read_to_string(&kept).unwrap();
        let first = first_pem.get_or_insert_with(|| text.clone());
        assert_eq!(*first, text, "round {round}: the kept file is unchanged");
        // The served certificate is the kept one: a client trusting only it connects.
        let der = rustls::pki_types::CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
        assert!(
            der.windows(22).any(|w| w == b"tag424 serve localhost"),
            "subject names tag424 and the host"
        );
        let port = lines
            .last()
            .unwrap()
            .split("https://127.0.0.1:")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        let c = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(text.as_bytes()).unwrap()])
            .resolve("localhost", ([127, 0, 0, 1], port).into())
            .build()
            .unwrap();
        let r = c
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        drop(child);
    }
    // On an unspecified address: the URL a phone opens (or why there is none).
    let all = [
        "--listen",
        "0.0.0.0:0",
        "--tls-self-signed",
        "--db",
        db.to_str().unwrap(),
    ];
    let (child, lines) = serve_lines(&all);
    drop(child);
    let phone = lines
        .iter()
        .find(|l| {
            l.contains("from a phone on this network open https://") || l.contains("no LAN address")
        })
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(!phone.contains("0.0.0.0"), "{phone}");
    // The names changed (the machine's addresses): made again, and said so.
    if phone.contains("https://") {
        assert!(
            lines.iter().any(|l| l.contains("phones warn once more")),
            "{lines:?}"
        );
    }
}
