//! Load benchmark of the local verifier (`cargo bench --bench verifier_load`).
//!
//! An in-process `tag424 serve` (SQLite store on local disk, WAL, synchronous=FULL, group
//! commit) on a loopback port, and a small keep-alive HTTP/1.1 client in the same process.
//! Every request is a valid, fresh SUN scan (its own counter), so every answer must be a Pass
//! whose counter is on disk before the answer is sent.
//!
//! 1. Throughput: `BENCH_CONNS` connections (default 64) in a closed loop for `BENCH_SECONDS`
//!    (default 5): verified scans per second.
//! 2. Latency: an open loop at `BENCH_RATE` scans/s (default 5,000) for `BENCH_SECONDS`;
//!    latency is measured from each request's scheduled time (no coordinated omission).
//!
//! 3. PostgreSQL (when `BENCH_PG` or `TAG424_TEST_PG` names a server): the closed loop again,
//!    spread over 1, 2 and 3 verifier instances on one fresh database (each instance its own
//!    store, connection pool, group-commit writer and HTTP server, in this process): verified
//!    durable scans/s, database round trips per scan (counted by the stores) and server
//!    transactions per scan (`pg_stat_database.xact_commit`).
//!
//! Server and client share the machine's cores; the figures are for both together.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, GroupKind, Tag};
use tag424::verifier::server;
use tag424::verifier::store::{PgStats, PgStore, SqliteStore};
use tag424::verifier::Verifier;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `tags` tags with random keys, and their request lines: round r holds counter r+1 of every
/// tag, so a tag's next counter comes `tags` requests after its previous one.
fn setup(tags: usize, rounds: usize) -> (Catalog, Vec<Vec<u8>>) {
    let keys: Vec<(String, AesKey)> = (0..tags)
        .map(|i| (format!("bench{i:06}"), AesKey::random()))
        .collect();
    let mut reqs = Vec::with_capacity(tags * rounds);
    for r in 0..rounds {
        let ctr = r as u32 + 1;
        for (x, k) in &keys {
            let mac = sdm_mac(k, None, Some(ctr), b"");
            reqs.push(
                format!(
                    "GET /v1/t?x={x}&n={ctr:06X}&e={} HTTP/1.1\r\nHost: bench\r\n\r\n",
                    hex::encode_upper(mac)
                )
                .into_bytes(),
            );
        }
    }
    let catalog = Catalog {
        folders: vec![Folder {
            name: "bench".into(),
            aid: "bench".into(),
            token: None,
            cors: Cors::None,
            groups: vec![Group {
                name: "g".into(),
                kind: GroupKind::Authentication,
                default_response: "Fail".into(),
                pass_response: "Pass".into(),
                batches: vec![Batch {
                    name: "b".into(),
                    active: true,
                    tags: keys
                        .into_iter()
                        .map(|(x, k)| Tag {
                            key: Some(k),
                            ..Tag::new(&x)
                        })
                        .collect(),
                    ..Batch::default()
                }],
                ..Group::default()
            }],
            ..Folder::default()
        }],
    };
    (catalog, reqs)
}

/// One keep-alive connection: sends a request, reads one response, returns whether it passed.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).ok();
        Conn {
            s,
            buf: Vec::with_capacity(4096),
        }
    }

    async fn call(&mut self, req: &[u8]) -> bool {
        self.s.write_all(req).await.expect("write");
        self.buf.clear();
        let mut tmp = [0u8; 2048];
        loop {
            let n = self.s.read(&mut tmp).await.expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&tmp[..n]);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("ascii head");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .expect("content-length");
                while self.buf.len() < end + 4 + len {
                    let n = self.s.read(&mut tmp).await.expect("read body");
                    assert!(n > 0);
                    self.buf.extend_from_slice(&tmp[..n]);
                }
                let body = &self.buf[end + 4..end + 4 + len];
                return find(body, b"\"response\":\"Pass\"").is_some();
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The load comes from one address, as from a proxy in front of the verifier: no per-address
/// connection cap (the rest of the default limits hold).
fn one_proxy() -> tag424::verifier::limits::Limits {
    tag424::verifier::limits::Limits {
        per_address: 0,
        ..Default::default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `conns` keep-alive connections, spread over `addrs`, each sending the next prepared request
/// as soon as the previous one is answered, for `seconds`: (requests, passes, elapsed).
fn closed_loop(
    rt: &tokio::runtime::Runtime,
    addrs: &[SocketAddr],
    conns: usize,
    seconds: u64,
    reqs: &Arc<Vec<Vec<u8>>>,
    next: &Arc<AtomicUsize>,
) -> (usize, usize, Duration) {
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for k in 0..conns {
            let (reqs, next, addr) = (reqs.clone(), next.clone(), addrs[k % addrs.len()]);
            set.spawn(async move {
                let mut c = Conn::open(addr).await;
                let (mut done, mut passed) = (0usize, 0usize);
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = reqs.get(i) else { break };
                    passed += usize::from(c.call(r).await);
                    done += 1;
                }
                (done, passed)
            });
        }
        let (mut d, mut p) = (0, 0);
        while let Some(r) = set.join_next().await {
            let (a, b) = r.unwrap();
            d += a;
            p += b;
        }
        (d, p, start.elapsed())
    })
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing: run only when asked.
    if !std::env::args().any(|a| a == "--bench") {
        println!("verifier_load: run with `cargo bench --bench verifier_load`");
        return;
    }
    let seconds = env("BENCH_SECONDS", 5) as u64;
    let conns = env("BENCH_CONNS", 64);
    let rate = env("BENCH_RATE", 5_000);
    let tags = env("BENCH_TAGS", 10_000);
    let server_threads = env("BENCH_SERVER_THREADS", 2);
    // Enough scans for a throughput of up to 100,000/s, plus the latency phase.
    let rounds =
        ((100_000 * seconds as usize) / tags).max(1) + (rate * seconds as usize) / tags + 2;
    let t = Instant::now();
    let (catalog, reqs) = setup(tags, rounds);
    let reqs = Arc::new(reqs);
    println!(
        "verifier_load: {} tags, {} requests prepared in {:.1} s",
        tags,
        reqs.len(),
        t.elapsed().as_secs_f64()
    );

    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into());
    std::fs::create_dir_all(&base).expect("BENCH_DIR");
    let dir = tempfile::Builder::new()
        .prefix("tag424-bench-")
        .tempdir_in(&base)
        .expect("temp dir");
    let db = dir.path().join("verifier.db");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(server_threads)
        .enable_all()
        .build()
        .unwrap();
    let v = Verifier::open(SqliteStore::open(&db).unwrap(), Some(&catalog), Cors::None).unwrap();
    let running = server_rt
        .block_on(async {
            server::spawn_with(
                Arc::new(v),
                TcpListener::bind("127.0.0.1:0").unwrap(),
                None,
                one_proxy(),
            )
        })
        .unwrap();
    let addr = running.addr;
    println!(
        "verifier_load: server on {addr} ({server_threads} worker threads), database {}",
        db.display()
    );
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));

    // 1. Throughput, closed loop.
    let stats = running.verifier.writer().stats();
    let (c0, w0) = (
        stats.commits.load(Ordering::Relaxed),
        stats.writes.load(Ordering::Relaxed),
    );
    let (done, passed, elapsed) = closed_loop(&client_rt, &[addr], conns, seconds, &reqs, &next);
    let commits = stats.commits.load(Ordering::Relaxed) - c0;
    let writes = stats.writes.load(Ordering::Relaxed) - w0;
    println!(
        "throughput: {} connections, {:.1} s: {} requests, {} Pass ({} not Pass): {:.0} verified scans/s; \
         {} durable commits, {:.1} scans per commit",
        conns,
        elapsed.as_secs_f64(),
        done,
        passed,
        done - passed,
        passed as f64 / elapsed.as_secs_f64(),
        commits,
        writes as f64 / commits.max(1) as f64
    );

    // 2. Latency at a fixed rate, open loop.
    let total = rate * seconds as usize;
    let base = next.load(Ordering::Relaxed);
    assert!(base + total <= reqs.len(), "not enough prepared requests");
    let lat_conns = conns.max(rate / 50).min(512);
    let (lat, passed) = client_rt.block_on(async {
        let t0 = tokio::time::Instant::now() + Duration::from_millis(50);
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let mut set = tokio::task::JoinSet::new();
        for k in 0..lat_conns {
            let reqs = reqs.clone();
            set.spawn(async move {
                let mut c = Conn::open(addr).await;
                let mut lat = Vec::with_capacity(total / lat_conns + 1);
                let mut passed = 0usize;
                let mut i = k;
                while i < total {
                    let at = t0 + interval * i as u32;
                    tokio::time::sleep_until(at).await;
                    passed += usize::from(c.call(&reqs[base + i]).await);
                    lat.push(at.elapsed());
                    i += lat_conns;
                }
                (lat, passed)
            });
        }
        let mut all = Vec::with_capacity(total);
        let mut p = 0;
        while let Some(r) = set.join_next().await {
            let (l, q) = r.unwrap();
            all.extend(l);
            p += q;
        }
        (all, p)
    });
    let mut lat = lat;
    lat.sort();
    println!(
        "latency at {rate} scans/s for {seconds} s ({lat_conns} connections): {} requests, {} Pass; \
         p50 {}, p99 {}, p99.9 {}, max {}",
        lat.len(),
        passed,
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.999)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    );
    server_rt
        .block_on(running.stop(Duration::from_secs(5)))
        .unwrap();

    // 3. PostgreSQL: 1, 2 and 3 instances on one server (BENCH_PG, else TAG424_TEST_PG).
    let Some(pg) = std::env::var("BENCH_PG")
        .or_else(|_| std::env::var("TAG424_TEST_PG"))
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("postgres: skipped (set BENCH_PG=postgres://USER@HOST:PORT/DB)");
        return;
    };
    for n in 1..=3 {
        pg_run(
            &pg, n, &catalog, &server_rt, &client_rt, conns, seconds, &reqs, &next,
        );
    }
}

/// Runs `n` verifier instances (each its own store, pool, writer and HTTP server; the first
/// imports the catalog) on a fresh database of the server `admin` names, and the closed loop
/// spread over them.
#[allow(clippy::too_many_arguments)]
fn pg_run(
    admin: &str,
    n: usize,
    catalog: &Catalog,
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    conns: usize,
    seconds: u64,
    reqs: &Arc<Vec<Vec<u8>>>,
    next: &Arc<AtomicUsize>,
) {
    let name = format!("tag424_bench_{}_{n}", std::process::id());
    let sql = |q: String| {
        let admin = admin.to_string();
        client_rt.block_on(async move {
            let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("BENCH_PG: connect");
            tokio::spawn(conn);
            let rows = c.simple_query(&q).await.expect("BENCH_PG: query");
            rows.into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_default()
        })
    };
    sql(format!("CREATE DATABASE {name}"));
    let mut url: url::Url = admin.parse().expect("BENCH_PG is a URL");
    url.set_path(&name);
    let mut running = Vec::new();
    let mut stats = Vec::new();
    for i in 0..n {
        let store = PgStore::connect(url.as_str()).expect("PostgreSQL store");
        stats.push(store.stats());
        let v = Verifier::open(store, (i == 0).then_some(catalog), Cors::None).unwrap();
        running.push(
            server_rt
                .block_on(async {
                    server::spawn_with(
                        Arc::new(v),
                        TcpListener::bind("127.0.0.1:0").unwrap(),
                        None,
                        one_proxy(),
                    )
                })
                .unwrap(),
        );
    }
    let addrs: Vec<SocketAddr> = running.iter().map(|r| r.addr).collect();
    let xacts = || -> u64 {
        sql(format!(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'"
        ))
        .parse()
        .unwrap_or(0)
    };
    let sum = |f: &dyn Fn(&PgStats) -> u64| stats.iter().map(|s| f(s)).sum::<u64>();
    let (t0, c0, x0) = (
        sum(&|s| s.round_trips.load(Ordering::Relaxed)),
        sum(&|s| s.commits.load(Ordering::Relaxed)),
        xacts(),
    );
    let (done, passed, elapsed) = closed_loop(client_rt, &addrs, conns, seconds, reqs, next);
    let (trips, commits) = (
        sum(&|s| s.round_trips.load(Ordering::Relaxed)) - t0,
        sum(&|s| s.commits.load(Ordering::Relaxed)) - c0,
    );
    // pg_stat_database is updated when backends report (about every second): wait for it.
    std::thread::sleep(Duration::from_millis(1500));
    let x = xacts().saturating_sub(x0);
    println!(
        "postgres, {n} instance(s), {conns} connections, {:.1} s: {done} requests, {passed} Pass \
         ({} not Pass): {:.0} verified durable scans/s; {commits} group commits, {:.1} scans per \
         commit; {:.3} database round trips per scan; {:.3} server transactions per scan",
        elapsed.as_secs_f64(),
        done - passed,
        passed as f64 / elapsed.as_secs_f64(),
        passed as f64 / commits.max(1) as f64,
        trips as f64 / passed.max(1) as f64,
        x as f64 / passed.max(1) as f64,
    );
    for r in running {
        server_rt.block_on(r.stop(Duration::from_secs(5))).unwrap();
    }
    sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
