//! Limits of the verifier against one client: its share of the connections, the bound on a
//! request's head, the rate-limit tables that keep nothing a client invents, HTTP/1.1 only,
//! and answers of `/v1/t` that stay HTTP 200 with JSON (the CORS preflight too).
//!
//! "Another address" is a client socket bound to 127.0.0.2 (loopback on Linux, like
//! 127.0.0.1) before it connects: the server sees it as a different client address.

mod run;
mod vhelp;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tag424::verifier::catalog::{Cors, GroupKind};
use tag424::verifier::limits::{Limits, MAX_HEAD_BYTES};
use tag424::verifier::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// `GET /healthz` from 127.0.0.2: the status line and how long the answer took.
async fn healthz_from_another_address(addr: SocketAddr) -> (String, Duration) {
    let t0 = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(3), async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = sock.connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    })
    .await;
    let status = match answer {
        Ok(Ok(b)) => String::from_utf8_lossy(&b)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "no answer within 3 s".to_string(),
    };
    (status, t0.elapsed())
}

/// `/healthz` from another address answers 200, within 100 ms. The test's own load threads
/// share the machine's cores with the server and this probe: a probe that answered 200 but
/// late is tried again, up to three times (a refused or unanswered probe fails at once).
async fn assert_healthz_answers(addr: SocketAddr, when: &str) {
    let mut times = Vec::new();
    for _ in 0..3 {
        let (status, took) = healthz_from_another_address(addr).await;
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "{when}: /healthz from another address: {status}"
        );
        if took < Duration::from_millis(100) {
            return;
        }
        times.push(took);
    }
    panic!("{when}: /healthz from another address took {times:?}");
}

/// Sends `request` on a fresh connection and reads the answer (until EOF or 2 s); a reset
/// after the server refused is an empty answer.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections_and_another_still_gets_in() {
    let limits = Limits {
        max_connections: 100,
        per_address: 10,
        header_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let s = start(&catalog(), Settings::default(), limits);
    let addr = addr_of(&s.base);
    // One address opens more connections than the server has, each with half a request.
    let held: Vec<TcpStream> = (0..150)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            let _ = c.write_all(b"GET /v1/t?x=t1 HTTP/1.1\r\nHost: x\r\n");
            c
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        assert_healthz_answers(addr, &format!("probe {i}")).await;
    }
    // The connections beyond the address's share were closed at accept.
    let mut open = 0;
    for mut h in held {
        h.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut b = [0u8; 16];
        if let Err(e) = h.read(&mut b) {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                open += 1;
            }
        }
    }
    assert_eq!(open, 10, "connections of one address held open");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_is_refused_http1_only() {
    let s = start_default(&catalog());
    let addr = addr_of(&s.base);
    // The HTTP/2 connection preface, then an empty SETTINGS frame and a PING.
    let mut req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    req.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    req.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    let answer = tokio::task::spawn_blocking(move || exchange(addr, &req))
        .await
        .unwrap();
    // An HTTP/2 server answers with its SETTINGS frame (type 4 at byte 3); we close.
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "the server spoke HTTP/2: {:02x?}",
        &answer[..answer.len().min(32)]
    );
    s.stop().await;
}

/// Sends `request` on a fresh connection and reads the answer until the server closes the
/// connection (or 2 s pass): the answer, and how it ended (`"closed"`: EOF, or a reset after
/// the answer when the server closed with part of the request unread).
fn exchange_to_close(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, &'static str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let how = match s.read_to_end(&mut buf) {
        Ok(_) => "closed",
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "closed",
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "still open after 2 s"
        }
        Err(_) => "error",
    };
    (buf, how)
}

/// The answer without its `date` line (the one header that differs between two answers).
fn undated(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("date: "))
        .collect()
}

/// The verification API's answer to a malformed query naming no tag, as the route makes it
/// (HTTP 200, JSON, the server's CORS headers), on a connection the client closes.
const MALFORMED: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
cache-control: no-store\r\nvary: Origin\r\naccess-control-allow-origin: https://shop.example.com\r\n\
content-length: 41\r\nconnection: close\r\n\r\n{\"xuid\":\"\",\"error\":\"malformed_parameter\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_bound_is_answered_200_malformed_parameter_and_closed() {
    let settings = Settings {
        cors: Cors::Origin("https://shop.example.com".into()),
        ..Settings::default()
    };
    let s = start(&catalog(), settings, Limits::default());
    let addr = addr_of(&s.base);
    let ask =
        move |req: Vec<u8>| tokio::task::spawn_blocking(move || exchange_to_close(addr, &req));
    let get = |target: &str, extra: String| {
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").into_bytes()
    };
    // A query over 4,096 bytes but within the head bound: the route answers
    // malformed_parameter (HTTP 200, JSON).
    let long_query = format!("/v1/t?x=t1&pad={}", "p".repeat(8000));
    let (answer, how) = ask(get(&long_query, String::new())).await.unwrap();
    assert_eq!(undated(&answer), MALFORMED, "{how}");
    // Heads over the bound, which hyper refuses before any route runs: the same answer, byte
    // for byte (but its date), and the connection closed. A 20 KiB query, a 400 kB token
    // header, and a 20 KiB query on a path of no route.
    for (what, req) in [
        (
            "a 20 KiB query",
            get(&format!("/v1/t?x={}", "a".repeat(20 * 1024)), String::new()),
        ),
        (
            "a 400 kB header",
            get(
                "/v1/t?x=t1",
                format!("X-API-Key: {}\r\n", "A".repeat(400_000)),
            ),
        ),
        (
            "a 20 KiB path",
            get(&format!("/{}", "a".repeat(20 * 1024)), String::new()),
        ),
    ] {
        let (answer, how) = ask(req).await.unwrap();
        assert_eq!(undated(&answer), MALFORMED, "{what}");
        assert_eq!(how, "closed", "{what}");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("\r\ndate: "), "{what}: {text}");
    }
    // A client that pipelines: the answer before the over-long head is sent as it is, then
    // the JSON answer, and the connection closed.
    let mut req = b"GET /v1/t HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    req.extend(get(
        &format!("/v1/t?x={}", "a".repeat(20 * 1024)),
        String::new(),
    ));
    let (answer, how) = ask(req).await.unwrap();
    let text = undated(&answer);
    let first = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
vary: Origin\r\naccess-control-allow-origin: https://shop.example.com\r\ncontent-length: 39\r\n\r\n\
{\"xuid\":\"\",\"error\":\"missing_parameter\"}";
    assert_eq!(text, format!("{first}{MALFORMED}"));
    assert_eq!(how, "closed");
    // Headers within the bound are served (HTTP 200, JSON).
    let fits = get(
        "/v1/t?x=t1",
        format!("X-Filler: {}\r\n", "b".repeat(MAX_HEAD_BYTES - 1024)),
    );
    let (answer, _) = ask(fits).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.ends_with(r#"{"xuid":"t1","response":"Fail"}"#),
        "{text}"
    );
    s.stop().await;
}

/// Over HTTPS too: the JSON answer is written inside TLS, and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_request_head_over_the_bound_is_answered_200_malformed_parameter() {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = tag424::verifier::server::rustls_config(&tag424::verifier::server::Tls::SelfSigned {
        names: vec!["localhost".into()],
        keep: None,
    })
    .unwrap()
    .unwrap();
    let pem = tls.self_signed_pem.clone().unwrap();
    let d = tempfile::tempdir().unwrap();
    let store = backends::fresh_sqlite(d.path());
    let settings = Settings {
        cors: Cors::Origin("https://shop.example.com".into()),
        ..Settings::default()
    };
    let v =
        tag424::verifier::Verifier::open_with(store.store(), Some(&catalog()), settings).unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let srv =
        tag424::verifier::server::spawn_with(Arc::new(v), l, Some(tls.config), Limits::default())
            .unwrap();
    let addr = srv.addr;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let ask = move |req: Vec<u8>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let conn =
                rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let _ = s.write_all(&req);
            let _ = s.flush();
            let mut buf = Vec::new();
            // A clean close (close_notify) is Ok; a reset after the answer is an error.
            let end = s.read_to_end(&mut buf).map(|_| ()).map_err(|e| e.kind());
            (buf, end)
        })
    };
    let over = format!(
        "GET /v1/t?x={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (answer, end) = ask(over.into_bytes()).await.unwrap();
    assert_eq!(undated(&answer), MALFORMED, "{end:?}");
    assert!(
        matches!(end, Ok(()) | Err(std::io::ErrorKind::ConnectionReset)),
        "{end:?}"
    );
    srv.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_answers_200_with_json() {
    let s = start_default(&catalog());
    let c = client();
    let r = call(
        &c,
        "OPTIONS",
        &format!("{}/v1/t?x=t1", s.base),
        &[("Origin", "https://shop.example.com")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, r#"{"xuid":""}"#);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    s.stop().await;
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Kills the server when dropped (also when the test fails half-way).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's peak resident memory stays under this through both attacks (measured: see
/// docs/verifier.md, "Limits").
const MEMORY_BOUND_KB: u64 = 64 * 1024;

/// `tag424 serve` as a process (its memory measured alone): one address opens more
/// connections than the server has while keep-alive clients load it, then sends 5,000
/// requests with distinct 400 kB tokens. `/healthz` from another address answers within
/// 100 ms throughout, and the server's peak RSS (VmHWM) stays under [`MEMORY_BOUND_KB`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_the_cap_and_5000_big_tokens_leave_memory_bounded() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    // A rate limit high enough that no request is refused by it: every token reaches the
    // limiter (as many addresses would).
    let (child, base) = backends::serve(&["--db", db.to_str().unwrap(), "--rate-limit", "1000000"]);
    let child = Child(child);
    let pid = child.0.id();
    let addr = addr_of(&base);
    let start_kb = vm_hwm_kb(pid);
    assert_healthz_answers(addr, "at start").await;

    // wrk-style load: keep-alive clients asking /v1/t in a loop (reconnecting if refused).
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let req = b"GET /v1/t?x=nosuch1 HTTP/1.1\r\nHost: x\r\n\r\n";
                let mut buf = [0u8; 4096];
                for _ in 0..200_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    for _ in 0..1000 {
                        if stop.load(Ordering::Relaxed)
                            || s.write_all(req).is_err()
                            || !matches!(s.read(&mut buf), Ok(n) if n > 0)
                        {
                            break;
                        }
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // One address opens more connections than the server's cap (4,096), each with half a
    // request, and holds them.
    let mut held = Vec::new();
    for i in 0..4200 {
        if let Ok(mut c) = TcpStream::connect(addr) {
            let _ = c.write_all(b"GET /v1/t?x=t1 HTTP/1.1\r\nHost: x\r\n");
            held.push(c);
        }
        if i % 500 == 499 {
            assert_healthz_answers(addr, &format!("{} connections opened", i + 1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        assert_healthz_answers(addr, &format!("connections held, probe {i}")).await;
    }
    // While it holds its share, the address reconnects as fast as it can (as wrk does when
    // its connections are closed): each is refused at accept; others still get in.
    let storm_stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let storm: Vec<_> = (0..2)
        .map(|_| {
            let (stop, refused) = (storm_stop.clone(), refused.clone());
            std::thread::spawn(move || {
                for _ in 0..1_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(mut c) = TcpStream::connect(addr) {
                        let _ = c.write_all(b"GET /v1/t?x=t1 HTTP/1.1\r\nHost: x\r\n\r\n");
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut b = [0u8; 64];
                        if matches!(c.read(&mut b), Ok(0) | Err(_)) {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_healthz_answers(addr, &format!("reconnect storm, probe {i}")).await;
    }
    storm_stop.store(true, Ordering::Relaxed);
    for t in storm {
        t.join().unwrap();
    }
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "no connection was refused"
    );
    drop(held);
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the load was never served"
    );
    let after_connections_kb = vm_hwm_kb(pid);

    // 5,000 requests, each with its own 400 kB token, from 8 clients.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = Arc::new(AtomicUsize::new(0));
    let answered_json = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|w| {
            let (done, answered_json) = (done.clone(), answered_json.clone());
            std::thread::spawn(move || {
                let pad = "A".repeat(400_000 - 8);
                for i in 0..625 {
                    let req = format!(
                        "GET /v1/t?x=t1 HTTP/1.1\r\nHost: x\r\nX-API-Key: {w:02}{i:06}{pad}\r\nConnection: close\r\n\r\n"
                    );
                    let (answer, _) = exchange_to_close(addr, req.as_bytes());
                    let text = String::from_utf8_lossy(&answer);
                    if text.starts_with("HTTP/1.1 200 OK\r\n")
                        && text.ends_with(r#"{"xuid":"","error":"malformed_parameter"}"#)
                    {
                        answered_json.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut next_probe = 0;
    while done.load(Ordering::Relaxed) < 5000 {
        if done.load(Ordering::Relaxed) >= next_probe {
            assert_healthz_answers(addr, &format!("{next_probe} big tokens sent")).await;
            next_probe += 500;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in senders {
        t.join().unwrap();
    }
    assert_healthz_answers(addr, "after the big tokens").await;
    let end_kb = vm_hwm_kb(pid);
    println!(
        "server VmHWM: {start_kb} kB at start, {after_connections_kb} kB after 4,200 connections \
         from one address and a reconnect storm ({} refused), {end_kb} kB after 5,000 distinct \
         400 kB tokens ({} answered HTTP 200 malformed_parameter); {} load requests served",
        refused.load(Ordering::Relaxed),
        answered_json.load(Ordering::Relaxed),
        served.load(Ordering::Relaxed)
    );
    assert!(
        end_kb < MEMORY_BOUND_KB,
        "the server's peak RSS is {end_kb} kB (bound {MEMORY_BOUND_KB} kB)"
    );
    assert!(answered_json.load(Ordering::Relaxed) > 0);
}

/// `tag424 serve ARGS` with the token variables set as given (and no others): exit status and
/// stderr, or the stdout line saying it listens (then the server is stopped).
fn serve_outcome(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let mut cmd = run::tag424();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(d.path().join("v.db"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Child(cmd.spawn().unwrap());
    let out = child.0.stdout.take().unwrap();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap();
        if line.contains("listening on") {
            return (None, line);
        }
    }
    let status = child.0.wait().unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn serve_takes_tokens_from_owner_only_files_or_the_environment_never_the_command_line() {
    use std::os::unix::fs::PermissionsExt;
    // On the command line: refused, naming the file flag and the variable.
    for (flag, file_flag, env) in [
        (
            "--management-token",
            "--management-token-file",
            "TAG424_MANAGEMENT_TOKEN",
        ),
        ("--token", "--token-file", "TAG424_API_TOKEN"),
    ] {
        let (code, err) = serve_outcome(&[flag, "Secret123"], &[]);
        assert_eq!(code, Some(2), "{flag}: {err}");
        for needle in ["process list", file_flag, env, "chmod 600"] {
            assert!(
                err.contains(needle),
                "{flag}: {needle:?} missing from {err}"
            );
        }
        assert!(!err.contains("Secret123"), "the token was printed: {err}");
    }
    // A token file others can read: refused with the fix; owner-only: taken.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("mgmt.token");
    std::fs::write(&file, "Mgmt123\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = file.to_str().unwrap();
    let (code, err) = serve_outcome(&["--management-token-file", f], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("chmod 600 {f}")), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, line) = serve_outcome(&["--management-token-file", f], &[]);
    assert_eq!(code, None, "{line}");
    // Not a token (the platform's: alphanumeric, up to 32): refused, not printed.
    std::fs::write(&file, "x".repeat(33)).unwrap();
    let (code, err) = serve_outcome(&["--management-token-file", f], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("alphanumeric, 1 to 32"), "{err}");
    // The environment.
    let (code, line) = serve_outcome(&[], &[("TAG424_MANAGEMENT_TOKEN", "Mgmt123")]);
    assert_eq!(code, None, "{line}");
}

#[test]
fn serve_help_states_the_limits_and_the_retention_default() {
    let out = run::tag424().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "Default 90d,1000000",
        "--connections-per-address",
        "Default 64",
        "HTTP/1.1 only",
        "16 KiB",
        "--management-token-file",
        "--token-file",
    ] {
        assert!(
            help.contains(needle),
            "{needle:?} missing from serve --help"
        );
    }
    assert!(!help.contains("--management-token <"), "{help}");
    // A wrong retention names the forms.
    let (code, err) = serve_outcome(&["--log-retention", "90x"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Nd (days), N (rows)"), "{err}");
    let (code, line) = serve_outcome(&["--log-retention", "30d,5000"], &[]);
    assert_eq!(code, None, "{line}");
}

#[test]
fn the_scan_log_keeps_rejected_rows_90_days_by_default() {
    use tag424::verifier::store::{ScanWrite, SqliteStore, Store};
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    let now = tag424::verifier::timefmt::now_ms();
    let day = 86_400_000;
    let row = |age_days: u64, query: &str| ScanWrite {
        time_ms: now - age_days * day,
        endpoint: "api",
        query: query.into(),
        xuid: String::new(),
        ctr: None,
        result: "xuid_not_found".into(),
        reason: "error",
        remote: "10.0.0.1".into(),
        claim: None,
    };
    {
        let mut st = SqliteStore::open(&db).unwrap();
        st.commit(&[row(120, "x=old"), row(89, "x=recent")])
            .unwrap();
    }
    // A verifier opened with the default settings applies the default retention at start.
    let v = tag424::verifier::Verifier::open_with(
        SqliteStore::open(&db).unwrap(),
        Some(&catalog()),
        Settings::default(),
    )
    .unwrap();
    v.close();
    let mut st = SqliteStore::open(&db).unwrap();
    let rows: Vec<String> = st
        .scans(None)
        .unwrap()
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(rows, vec!["x=recent".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_body_that_never_arrives_is_answered_within_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let settings = Settings {
        management_token: Some("Mgmt123".into()),
        ..Settings::default()
    };
    let s = start(&catalog(), settings, limits);
    let addr = addr_of(&s.base);
    // The head promises 100 bytes of body; 10 come, then nothing.
    let req = b"PATCH /v1/x/t1 HTTP/1.1\r\nHost: x\r\nX-API-Key: Mgmt123\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nix_dr=Slow"
        .to_vec();
    let answer = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(&req).unwrap();
        // Bounded: an answer (or the close) within 5 s, or the test fails.
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        buf
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    // Nothing changed.
    let c = client();
    assert_eq!(
        t(&c, &s.base, "x=t1").await,
        r#"{"xuid":"t1","response":"Fail"}"#
    );
    s.stop().await;
}
