//! Abuse: half-open connections do not starve the server and are closed by the header
//! timeout; garbage requests are logged compactly; the rate limit answers `rate_limited`
//! (HTTP 200) with its headers; exactly one token per request; CORS per folder.

mod run;
mod vhelp;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tag424::verifier::catalog::{Cors, GroupKind};
use tag424::verifier::limits::Limits;
use tag424::verifier::Settings;
use vhelp::*;

fn catalog() -> tag424::verifier::catalog::Catalog {
    one_group(
        "acme",
        GroupKind::Authentication,
        "Fail",
        vec![rg(&["auth_pass"], "Pass")],
        vec![keyed("t1")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_half_open_connections_do_not_starve_healthz() {
    for be in backends() {
        three_hundred_half_open_connections_do_not_starve_healthz_on(&be).await;
    }
}

async fn three_hundred_half_open_connections_do_not_starve_healthz_on(be: &Backend) {
    // No per-address cap here (it would refuse most of them at accept, see
    // tests/verifier_limits.rs): this is about the header timeout closing what is accepted.
    let limits = Limits {
        header_timeout: Duration::from_secs(2),
        per_address: 0,
        ..Limits::default()
    };
    let s = be.start(&catalog(), Settings::default(), limits);
    let addr = s.base.trim_start_matches("http://").to_string();
    let held: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut c = TcpStream::connect(&addr).unwrap();
            // Half a request: a header that never ends (or nothing at all).
            if i % 2 == 0 {
                c.write_all(b"GET /v1/t?x=t1 HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            c
        })
        .collect();
    // A keep-alive connection that asked once and then stays idle.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut first = [0u8; 1024];
    assert!(idle.read(&mut first).unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = client();
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = call(&c, "GET", &format!("{}/healthz", s.base), &[], None).await;
        let took = t0.elapsed();
        assert_eq!(r.status, 200);
        assert!(took < Duration::from_millis(100), "healthz took {took:?}");
    }
    // The header timeout closes them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut closed = 0;
    for mut h in held {
        h.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 512];
        match h.read(&mut buf) {
            Ok(_) => closed += 1, // EOF, or an error answer then EOF
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(
        closed, 300,
        "connections still open after the header timeout"
    );
    idle.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle keep-alive connection stays open: {other:?}"),
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_garbage_requests_grow_the_database_by_less_than_a_megabyte() {
    let s = start_default(&catalog());
    let db = s.db();
    let c = client();
    // Warm up (tables exist), then measure the database after a checkpointing close.
    t(&c, &s.base, "x=t1").await;
    let junk: String = "Zq%7E".repeat(100);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = c.clone();
        let base = s.base.clone();
        let junk = junk.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..625 {
                let q = match i % 3 {
                    0 => format!("x={junk}{w}{i}"),
                    1 => format!("c={junk}&u=zz{i}"),
                    _ => format!("x=nosuch{i}&n=000001&e={junk}"),
                };
                let r = call(&c, "GET", &format!("{base}/v1/t?{q}"), &[], None).await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let before_close = std::fs::metadata(&db).unwrap().len();
    let keep = (s.dir, s.store);
    if let Some(r) = s.running {
        r.stop(Duration::from_secs(5)).await.unwrap();
    }
    let size = std::fs::metadata(&db).unwrap().len();
    println!("database: {before_close} bytes before close, {size} after");
    assert!(
        size < 1_000_000,
        "the database is {size} bytes after 5,000 garbage requests"
    );
    let mut st = tag424::verifier::store::SqliteStore::open(&db).unwrap();
    let rows = tag424::verifier::store::Store::scans(&mut st, None).unwrap();
    assert_eq!(rows.len(), 5001);
    assert!(rows.iter().all(|r| r.query.len() <= 64 || r.xuid == "t1"));
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_answers_rate_limited_with_its_headers() {
    for be in backends() {
        over_the_rate_limit_answers_rate_limited_with_its_headers_on(&be).await;
    }
}

async fn over_the_rate_limit_answers_rate_limited_with_its_headers_on(be: &Backend) {
    let s = be.start(&catalog(), Settings::default(), Limits::with_rate(5));
    let c = client();
    let mut limited = None;
    for _ in 0..40 {
        let r = call(&c, "GET", &format!("{}/v1/t?x=t1", s.base), &[], None).await;
        assert_eq!(r.status, 200);
        if r.text.contains("rate_limited") {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no request was rate limited");
    assert_eq!(r.text, r#"{"xuid":"t1","error":"rate_limited"}"#);
    assert_eq!(r.header("x-rate-limit-limit").as_deref(), Some("1s"));
    assert_eq!(r.header("x-rate-limit-remaining").as_deref(), Some("0"));
    assert!(r.header("x-rate-limit-reset").unwrap().ends_with('Z'));
    let h = call(&c, "GET", &format!("{}/healthz", s.base), &[], None).await;
    assert!(h.json()["rate_limited"].as_u64().unwrap() >= 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_per_request_and_cors_per_folder() {
    for be in backends() {
        one_token_per_request_and_cors_per_folder_on(&be).await;
    }
}

async fn one_token_per_request_and_cors_per_folder_on(be: &Backend) {
    let mut cat = catalog();
    cat.folders[0].token = Some("Secret123".into());
    cat.folders[0].cors = Cors::Origin("https://shop.example.com".into());
    let mut other = one_group(
        "open",
        GroupKind::Standard,
        "Found",
        vec![],
        vec![tag424::verifier::catalog::Tag::new("s1")],
    );
    other.folders[0].name = "other".into();
    other.folders[0].groups[0].batches[0].name = "b2".into();
    other.folders[0].cors = Cors::Any;
    cat.folders.extend(other.folders);
    let s = be.start(
        &cat,
        Settings {
            cors: Cors::Origin("https://server.example".into()),
            ..Settings::default()
        },
        Limits::default(),
    );
    let c = client();
    let url = format!("{}/v1/t?x=t1", s.base);
    let refused = r#"{"xuid":"t1","error":"token_refused"}"#;
    let ok = r#"{"xuid":"t1","response":"Fail"}"#;
    let g = |h: Vec<(&'static str, &'static str)>, q: &'static str| {
        let c = c.clone();
        let url = format!("{url}{q}");
        async move { call(&c, "GET", &url, &h, None).await }
    };
    assert_eq!(g(vec![("X-API-Key", "Secret123")], "").await.text, ok);
    assert_eq!(
        g(
            vec![("X-API-Key", "Secret123"), ("Ixkio-R", "Secret123")],
            ""
        )
        .await
        .text,
        refused
    );
    assert_eq!(
        g(vec![("X-API-Key", "Wrong"), ("X-API-Key", "Secret123")], "")
            .await
            .text,
        refused
    );
    assert_eq!(
        g(vec![("X-API-Key", "Secret123")], "&r=Other").await.text,
        refused
    );
    assert_eq!(
        g(vec![("X-API-Key", "Secret123")], "&r=Secret123")
            .await
            .text,
        ok
    );
    // Errors about a known tag carry its folder's CORS, not the server-wide one.
    let r = g(vec![], "").await;
    assert_eq!(r.text, refused);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://shop.example.com")
    );
    let r = g(vec![("X-API-Key", "Secret123")], "&n=zz&e=zz").await;
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://shop.example.com")
    );
    // The preflight: the folder `*` does not open unknown tags to any origin.
    let pre = |q: &str, origin: &'static str| {
        let c = c.clone();
        let url = format!("{}/v1/t?{q}", s.base);
        async move {
            call(&c, "OPTIONS", &url, &[("Origin", origin)], None)
                .await
                .header("access-control-allow-origin")
        }
    };
    assert_eq!(
        pre("x=s1", "https://evil.example").await.as_deref(),
        Some("*")
    );
    assert_eq!(pre("x=unknown", "https://evil.example").await, None);
    assert_eq!(pre("x=t1", "https://evil.example").await, None);
    assert_eq!(
        pre("x=t1", "https://shop.example.com").await.as_deref(),
        Some("https://shop.example.com")
    );
    assert_eq!(
        pre("x=unknown", "https://shop.example.com")
            .await
            .as_deref(),
        Some("https://shop.example.com")
    );
    s.stop().await;
}

#[test]
fn self_signed_on_an_unspecified_address_names_the_machines_addresses() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let mut child = run::tag424()
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--tls-self-signed",
            "--db",
        ])
        .arg(d.path().join("v.db"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut names = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("self-signed certificate for ").nth(1) {
            names = Some(rest.to_string());
        }
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let names = names.expect("no certificate line");
    // localhost, 127.0.0.1 and every non-loopback interface address of this machine.
    let ifs: Vec<String> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .filter(|i| !i.ip().is_loopback())
        .map(|i| i.ip().to_string())
        .collect();
    assert!(
        names.contains("localhost") && names.contains("127.0.0.1"),
        "{names}"
    );
    for ip in ifs {
        assert!(names.contains(&ip), "{ip} missing from {names}");
    }
}
