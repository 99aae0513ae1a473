//! Durable verified scans against `/healthz` under `wrk`, on the release `tag424 serve`
//! (`cargo bench --bench wrk_durable`; needs `wrk` on the PATH).
//!
//! One server process (the real binary: `tag424 serve --no-profile --rate-limit 0`, SQLite in a
//! private temporary folder, WAL, `synchronous=FULL`), and for each of `WRK_RUNS` rounds (default
//! 3), in this order: `wrk -t 2 -c 32 -d 10s` on `/healthz`, then the same on `/v1/t` with
//! `benches/wrk/durable.lua`, where every request is a fresh genuine SUN scan (its tag's next
//! counter, the tag's key imported from a keys.csv). After each scan run the scan log is read
//! back: every request wrk counted must be a row with `passed = 1` (a Pass is answered only
//! after its transaction is fsync'd), and no row may be other than a Pass. Printed per round:
//! both rates and their ratio; at the end the spread.
//!
//! Two more runs per round say where the rest of the time goes (set `WRK_PARTS=0` to skip
//! them): `/healthz` through a Lua `request()` (`benches/wrk/healthz.lua`: what wrk's own
//! scripting costs, since the scans need it), and replayed scans (the same genuine scans with a
//! counter the server has already seen: verified and logged like a Pass, but answered without
//! waiting for the disk).
//!
//! Each run also prints the CPU per request of the server and of wrk, read from `/proc` while
//! wrk's clock runs (not its set-up), and the ratio the two rates would have if both runs used
//! the whole machine (`/healthz`'s CPU per request over the scans'): on a machine whose cores
//! wrk shares with the server, the rates cannot differ by less than the CPU they cost. The
//! scan runs' CPU is divided by the rows the scan log gained in the same window: wrk's own
//! count also holds what its first thread sent while the second ran its `init` (reading the
//! prepared scans), before wrk's clock started, so wrk's rate reads high; the ratio from the
//! log's rate is printed too.
//!
//! Settings (environment): `WRK_SECONDS` (10), `WRK_THREADS` (2), `WRK_CONNS` (32),
//! `WRK_RUNS` (3), `WRK_TAGS` (10,000; even), `WRK_MAX_RATE` (scans/s prepared per run,
//! 120,000), `BENCH_DIR` (where the database goes; default `target/tmp`), `WRK_SERVER_THREADS`
//! (sets `TOKIO_WORKER_THREADS` for the server, unset by default), `WRK_SERVER_BIN` (another
//! `tag424` binary to serve, e.g. an older build to compare with), `WRK_STAT=EVENTS` (`perf stat -e EVENTS` of the server in each run, printed per request), `WRK_PAUSE` (seconds with no
//! load before each wrk run, default 1), `WRK_PERF=FILE` (`perf record -g` of the server for
//! 5 s in the middle of the last round's runs, into FILE.healthz and FILE.scans).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server process, stopped (SIGTERM, then waited for) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, keys: &Path) -> Server {
        let bin = std::env::var("WRK_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tag424").to_string());
        let mut cmd = Command::new(bin);
        cmd.args([
            "--no-profile",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
        ])
        .arg("--db")
        .arg(dir.join("verifier.db"))
        .arg("--batch")
        .arg(keys)
        .env_remove("TAG424_PROFILE")
        .env_remove("TAG424_DB_URL")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Ok(n) = std::env::var("WRK_SERVER_THREADS") {
            cmd.env("TOKIO_WORKER_THREADS", n);
        }
        let mut child = cmd.spawn().expect("start tag424 serve");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("tag424 serve stopped before listening")
                .expect("read the server's output");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().expect("address").to_string();
            }
        };
        // Keep draining its output.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One wrk run: what it counted, and the CPU each side used while wrk's clock ran.
struct Run {
    requests: u64,
    rate: f64,
    text: String,
    /// Scans logged per second while wrk's clock ran (read from the scan log; `None` for a
    /// run that logs nothing). wrk's own rate also counts what its first threads sent while
    /// the later ones ran their `init`, before its clock started, so it reads high for the
    /// scan runs.
    logged: Option<f64>,
    /// CPU per request in µs while the load ran (not wrk's set-up): the server, wrk.
    server_us: f64,
    wrk_us: f64,
    /// `WRK_STAT`'s events per request, or empty.
    counts: String,
}

impl Run {
    fn cpu(&self) -> f64 {
        self.server_us + self.wrk_us
    }

    fn show_cpu(&self) -> String {
        format!("{:.1} + {:.1} µs", self.server_us, self.wrk_us)
    }
}

/// Runs wrk on `server`. Its CPU and the server's are read from `/proc` once wrk has started
/// its clock (after its scripts' `init`, which reads the prepared scans) and again `secs - 1`
/// seconds later, and divided by the requests in between: the rows the scan log gained when
/// `db` is given, else wrk's rate.
fn wrk(
    server: &Server,
    url: &str,
    script: Option<(&Path, &Path, usize)>,
    threads: usize,
    conns: usize,
    secs: usize,
    db: Option<&Path>,
) -> Run {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t")
        .arg(threads.to_string())
        .arg("-c")
        .arg(conns.to_string())
        .arg("-d")
        .arg(format!("{secs}s"));
    if let Some((lua, _, _)) = script {
        cmd.arg("-s").arg(lua);
    }
    cmd.arg(url);
    if let Some((_, paths, t)) = script {
        cmd.arg("--").arg(paths).arg(t.to_string());
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wrk (is it installed?)");
    // wrk starts its clock once its last thread is made, and it makes each after that
    // thread's `init`: wait for all of them (its output is buffered until it exits).
    let wrk_pid = child.id().to_string();
    let task = format!("/proc/{wrk_pid}/task");
    let started = Instant::now();
    while std::fs::read_dir(&task).map_or(0, |d| d.count()) < threads + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "wrk did not start its {threads} threads within 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = || (server_cpu(server), cpu_seconds(&wrk_pid));
    let last_row = || db.map(last_scan_id);
    let r0 = last_row();
    let (s0, w0) = cpu();
    let t0 = Instant::now();
    let wait = secs.saturating_sub(1).max(1);
    let stat = perf_stat(server, wait);
    std::thread::sleep(Duration::from_secs(wait as u64));
    let (s1, w1) = cpu();
    let r1 = last_row();
    let window = t0.elapsed().as_secs_f64();
    let done = child.wait_with_output().expect("wait for wrk");
    let text =
        String::from_utf8_lossy(&done.stdout).into_owned() + &String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "wrk failed:\n{text}");
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with("requests in")
                .then(|| n.parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    let logged = r0.zip(r1).map(|(a, b)| (b - a) as f64 / window);
    let per_request = |cpu: f64| 1e6 * cpu / (logged.unwrap_or(rate) * window).max(1.0);
    let mut counts = String::new();
    if let Some(stat) = stat {
        let out = stat.wait_with_output().expect("wait for perf stat");
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            // CSV: count,unit,event,…
            let f: Vec<&str> = line.split(',').collect();
            if let (Some(n), Some(event)) =
                (f.first().and_then(|n| n.parse::<f64>().ok()), f.get(2))
            {
                counts += &format!(" {event} {:.2};", n / (rate * window));
            }
        }
    }
    Run {
        requests,
        rate,
        text,
        logged,
        server_us: per_request(s1 - s0),
        wrk_us: per_request(w1 - w0),
        counts,
    }
}

/// WRK_STAT=EVENTS: `perf stat -e EVENTS` of the server for `secs` seconds (printed per
/// request after the run's line; perf's own cost then counts in the server's CPU).
fn perf_stat(server: &Server, secs: usize) -> Option<Child> {
    let events = std::env::var("WRK_STAT").ok()?;
    let child = Command::new("perf")
        .args(["stat", "-x", ",", "-e", &events, "-p"])
        .arg(server.child.id().to_string())
        .args(["--", "sleep", &secs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run perf stat");
    Some(child)
}

/// WRK_PERF=FILE: `perf record -g` of the server for 5 s, 2 s into the run, into FILE + `suffix`
/// (in the last round only: `last`).
fn perf_record(server: &Server, last: bool, suffix: &str) -> Option<std::thread::JoinHandle<bool>> {
    let out = std::env::var("WRK_PERF").ok().filter(|_| last)? + suffix;
    let pid = server.child.id().to_string();
    Some(std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        Command::new("perf")
            .args([
                "record", "-g", "-q", "-o", &out, "-p", &pid, "--", "sleep", "5",
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }))
}

fn perf_done(perf: Option<std::thread::JoinHandle<bool>>) {
    if let Some(p) = perf {
        assert!(p.join().unwrap_or(false), "perf record failed");
    }
}

/// CPU seconds a process has used so far (utime + stime, fields 14 and 15 of
/// `/proc/PID/stat`, all its threads), or 0 once it is gone.
fn cpu_seconds(pid: &str) -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output();
        out.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name (in parentheses) come fields 3 onwards.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    fields
        .get(11)
        .zip(fields.get(12))
        .map_or(0.0, |(u, s)| (u + s) / hz)
}

fn server_cpu(server: &Server) -> f64 {
    cpu_seconds(&server.child.id().to_string())
}

fn write_private(path: &Path, f: impl FnOnce(&mut dyn Write)) {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create a bench file");
    let mut w = std::io::BufWriter::new(file);
    f(&mut w);
    w.flush().expect("write a bench file");
}

/// The scan log's last row id (0 when empty): one lookup, cheap during a run.
fn last_scan_id(db: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only");
    c.query_row("SELECT coalesce(max(id), 0) FROM scans", [], |r| r.get(0))
        .expect("read the scan log's last id")
}

/// The scan log's rows after `after`: (last id, rows, passed rows).
fn scan_rows(db: &Path, after: i64) -> (i64, u64, u64) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only");
    c.query_row(
        "SELECT coalesce(max(id), ?1), count(*), coalesce(sum(passed), 0) FROM scans WHERE id > ?1",
        [after],
        |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )
    .expect("count the scan log")
}

/// [`scan_rows`] once the writer has caught up: at least `answered` rows, and the log no longer
/// growing (scans in flight when wrk stopped, and the replays, logged without waiting).
fn settled(db: &Path, after: i64, answered: u64) -> (i64, u64, u64) {
    let mut seen = scan_rows(db, after);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        let now = scan_rows(db, after);
        if now == seen && now.1 >= answered {
            break;
        }
        seen = now;
    }
    seen
}

fn spread(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    format!(
        "min {:.0}, median {:.0}, max {:.0}",
        s[0],
        median,
        s[s.len() - 1]
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("wrk_durable: run with `cargo bench --bench wrk_durable`");
        return;
    }
    let secs = env("WRK_SECONDS", 10);
    let threads = env("WRK_THREADS", 2);
    let conns = env("WRK_CONNS", 32);
    let runs = env("WRK_RUNS", 3);
    let tags = env("WRK_TAGS", 10_000);
    let max_rate = env("WRK_MAX_RATE", 120_000);
    let pause = env("WRK_PAUSE", 1) as u64;
    let parts = env("WRK_PARTS", 1) == 1;
    assert!(
        tags.is_multiple_of(threads),
        "WRK_TAGS must be a multiple of WRK_THREADS (each tag is sent by one wrk thread)"
    );
    let rounds = (max_rate * secs).div_ceil(tags);

    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into());
    std::fs::create_dir_all(&base).expect("BENCH_DIR");
    let dir = tempfile::Builder::new()
        .prefix("tag424-wrk-")
        .tempdir_in(&base)
        .expect("temp dir");
    let t = Instant::now();
    let keys: Vec<(String, AesKey)> = (0..tags)
        .map(|i| (format!("wrk{i:06}"), AesKey::random()))
        .collect();
    let keys_csv = dir.path().join("keys.csv");
    write_private(&keys_csv, |w| {
        writeln!(w, "XUID,KEY").unwrap();
        for (x, k) in &keys {
            writeln!(w, "{x},{}", hex::encode_upper(k.as_bytes())).unwrap();
        }
    });
    // One file per run, counters continuing from the previous run's.
    let paths: Vec<PathBuf> = (0..runs)
        .map(|run| {
            let p = dir.path().join(format!("paths-{run}.txt"));
            write_private(&p, |w| {
                for r in 0..rounds {
                    let ctr = (run * rounds + r + 1) as u32;
                    for (x, k) in &keys {
                        let mac = sdm_mac(k, None, Some(ctr), b"");
                        writeln!(w, "/v1/t?x={x}&n={ctr:06X}&e={}", hex::encode_upper(mac))
                            .unwrap();
                    }
                }
            });
            p
        })
        .collect();
    // Scans the server has seen once every tag had a durable scan: counter 1 of every tag.
    let replays = dir.path().join("replays.txt");
    write_private(&replays, |w| {
        for (x, k) in &keys {
            let mac = sdm_mac(k, None, Some(1), b"");
            writeln!(w, "/v1/t?x={x}&n=000001&e={}", hex::encode_upper(mac)).unwrap();
        }
    });
    println!(
        "wrk_durable: {tags} tags, {runs} × {} scans prepared in {:.1} s",
        rounds * tags,
        t.elapsed().as_secs_f64()
    );

    let server = Server::start(dir.path(), &keys_csv);
    let db = dir.path().join("verifier.db");
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wrk/durable.lua");
    let healthz_lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wrk/healthz.lua");
    println!(
        "wrk_durable: tag424 serve on {} (pid {}), database {}; wrk -t {threads} -c {conns} -d {secs}s",
        server.addr,
        server.child.id(),
        db.display()
    );
    let (mut last_id, _, _) = scan_rows(&db, 0);
    let (mut health, mut durable, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut scripted, mut replayed, mut caps) = (Vec::new(), Vec::new(), Vec::new());
    let mut logged_ratios = Vec::new();
    for (run, p) in paths.iter().enumerate() {
        std::thread::sleep(Duration::from_secs(pause));
        let perf = perf_record(&server, run + 1 == runs, ".healthz");
        let hz = wrk(
            &server,
            &format!("http://{}/healthz", server.addr),
            None,
            threads,
            conns,
            secs,
            None,
        );
        let h = hz.rate;
        perf_done(perf);
        std::thread::sleep(Duration::from_secs(pause));
        let perf = perf_record(&server, run + 1 == runs, ".scans");
        let vmstat = std::env::var("WRK_VMSTAT").is_ok().then(|| {
            Command::new("vmstat")
                .args(["1", &(secs - 1).to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("vmstat")
        });
        let scans = wrk(
            &server,
            &format!("http://{}/v1/t", server.addr),
            Some((&lua, p, threads)),
            threads,
            conns,
            secs,
            Some(&db),
        );
        let (n, d, text) = (scans.requests, scans.rate, &scans.text);
        if let Some(v) = vmstat {
            let out = v.wait_with_output().expect("vmstat");
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        perf_done(perf);
        let (id, rows, passed) = settled(&db, last_id, n);
        last_id = id;
        // wrk counts the answers it read; the server may have logged a few more that were in
        // flight when wrk stopped.
        assert!(
            passed >= n && rows == passed,
            "run {run}: wrk read {n} answers, the scan log has {rows} rows of which {passed} passed:\n{text}"
        );
        println!(
            "run {}: /healthz {h:.0} req/s; durable verified scans {d:.0} /s ({n} answers, {passed} Pass rows); ratio {:.1} %",
            run + 1,
            100.0 * d / h
        );
        let in_log = scans.logged.unwrap_or(d);
        println!(
            "        in the scan log while wrk's clock ran: {in_log:.0} scans/s, ratio {:.1} %",
            100.0 * in_log / h
        );
        println!(
            "        CPU per request, server + wrk: /healthz {}, durable scans {} ({:.1} %: the ratio if both ran on all the CPU)",
            hz.show_cpu(),
            scans.show_cpu(),
            100.0 * hz.cpu() / scans.cpu()
        );
        for r in [&hz, &scans] {
            if !r.counts.is_empty() {
                println!("        server events per request:{}", r.counts);
            }
        }
        health.push(h);
        caps.push(100.0 * hz.cpu() / scans.cpu());
        durable.push(d);
        ratios.push(100.0 * d / h);
        logged_ratios.push(100.0 * in_log / h);
        if !parts {
            continue;
        }
        std::thread::sleep(Duration::from_secs(pause));
        let s = wrk(
            &server,
            &format!("http://{}/healthz", server.addr),
            Some((&healthz_lua, &replays, threads)),
            threads,
            conns,
            secs,
            None,
        );
        std::thread::sleep(Duration::from_secs(pause));
        let replay = wrk(
            &server,
            &format!("http://{}/v1/t", server.addr),
            Some((&lua, &replays, threads)),
            threads,
            conns,
            secs,
            Some(&db),
        );
        let (s, n, r, text) = (s.rate, replay.requests, replay.rate, &replay.text);
        let (id, rows, passed) = settled(&db, last_id, n);
        last_id = id;
        assert!(
            passed == 0 && rows >= n,
            "run {run}: {n} replays answered, the scan log has {rows} new rows of which {passed} passed:\n{text}"
        );
        println!(
            "        /healthz scripted {s:.0} req/s ({:.1} % of /healthz); replayed scans {r:.0} /s ({:.1} %; {:.0} /s in the log; CPU per request {}, {:.1} %)",
            100.0 * s / h,
            100.0 * r / h,
            replay.logged.unwrap_or(r),
            replay.show_cpu(),
            100.0 * hz.cpu() / replay.cpu()
        );
        if !replay.counts.is_empty() {
            println!("        server events per request:{}", replay.counts);
        }
        scripted.push(100.0 * s / h);
        replayed.push(100.0 * r / h);
    }
    println!("healthz req/s: {}", spread(&health));
    println!("durable scans/s: {}", spread(&durable));
    println!("ratio %: {}", spread(&ratios));
    println!(
        "ratio from the scan log's rate %: {}",
        spread(&logged_ratios)
    );
    println!("ratio at equal CPU %: {}", spread(&caps));
    if parts {
        println!("scripted /healthz, % of /healthz: {}", spread(&scripted));
        println!("replayed scans, % of /healthz: {}", spread(&replayed));
    }
    drop(server);
}
