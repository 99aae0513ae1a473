//! Several real `tag424 serve` processes on one PostgreSQL database: the database is the
//! arbiter of single use across all of them, a killed instance loses no answered Pass, and a
//! change made through one instance reaches the others within the documented bound.
//! Needs TAG424_TEST_PG (skipped locally without it; a failure under CI=true).

mod backends;
mod run;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backends::Db;
use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::store::{self, WATCH_POLL};

/// Kills its servers when dropped (also when a test fails half-way).
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tag424 serve` with ARGS, no rate limit and no per-address connection cap (the tests send
/// far more than 100 requests a second, over hundreds of connections, from one address, as a
/// load balancer does).
fn serve(args: &[&str]) -> (Child, String) {
    let mut all = args.to_vec();
    all.extend(["--rate-limit", "0", "--connections-per-address", "0"]);
    backends::serve(&all)
}

fn pg_db() -> Option<Db> {
    backends::pg_url().map(|u| backends::fresh_pg(&u))
}

fn key_of(i: usize) -> [u8; 16] {
    let mut k = [0x42u8; 16];
    k[0] = i as u8;
    k[1] = (i >> 8) as u8;
    k
}

/// `XUID,KEY` for tags `prefix0…prefix(n-1)`.
fn keys_csv(dir: &Path, name: &str, prefix: &str, n: usize) -> PathBuf {
    let mut s = String::from("XUID,KEY\n");
    for i in 0..n {
        s.push_str(&format!("{prefix}{i},{}\n", hex::encode_upper(key_of(i))));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

fn sun(xuid: &str, key: [u8; 16], ctr: u32) -> String {
    let mac = sdm_mac(&AesKey::new(key), None, Some(ctr), b"");
    format!("x={xuid}&n={ctr:06X}&e={}", hex::encode_upper(mac))
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn ask(c: &reqwest::Client, base: &str, query: &str) -> serde_json::Value {
    let r = c.get(format!("{base}/v1/t?{query}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn response(v: &serde_json::Value) -> String {
    v["response"]
        .as_str()
        .or(v["error"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// Three instances; the first imports the batch, the others serve from the database.
fn three(db: &Db, csv: &Path) -> (Servers, Vec<String>) {
    let (c1, b1) = serve(&["--db", &db.arg, "--batch", csv.to_str().unwrap()]);
    let (c2, b2) = serve(&["--db", &db.arg]);
    let (c3, b3) = serve(&["--db", &db.arg]);
    (Servers(vec![c1, c2, c3]), vec![b1, b2, b3])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scan_sent_1000_times_to_three_instances_passes_once() {
    let Some(db) = pg_db() else { return };
    let d = tempfile::tempdir().unwrap();
    let csv = keys_csv(d.path(), "b.csv", "tag", 1);
    let (_servers, bases) = three(&db, &csv);
    let c = client();
    let q = sun("tag0", key_of(0), 42);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (c, url) = (c.clone(), format!("{}/v1/t?{q}", bases[i % 3]));
        set.spawn(async move {
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            response(&r.json().await.unwrap())
        });
    }
    let mut got: HashMap<String, usize> = HashMap::new();
    while let Some(r) = set.join_next().await {
        *got.entry(r.unwrap()).or_default() += 1;
    }
    assert_eq!(got.get("Pass"), Some(&1), "{got:?}");
    assert_eq!(got.get("Fail"), Some(&999), "{got:?}");

    // A newer scan through one instance; the same and older counters through the others fail,
    // although those instances never saw the newer counter themselves.
    let pass = |s: &str| s == "Pass";
    assert!(pass(&response(
        &ask(&c, &bases[0], &sun("tag0", key_of(0), 100)).await
    )));
    for (b, ctr) in [(1, 99), (2, 100), (1, 43), (2, 50)] {
        let got = response(&ask(&c, &bases[b], &sun("tag0", key_of(0), ctr)).await);
        assert_eq!(got, "Fail", "counter {ctr} on instance {b}");
    }
    // And forward again through another instance.
    assert!(pass(&response(
        &ask(&c, &bases[2], &sun("tag0", key_of(0), 101)).await
    )));
    let log = store::open_existing(&db.arg).unwrap().scans(None).unwrap();
    let passed: Vec<u32> = log
        .iter()
        .filter(|r| r.passed)
        .filter_map(|r| r.ctr)
        .collect();
    assert_eq!(passed, vec![42, 100, 101]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_under_load_loses_no_answered_pass() {
    let Some(db) = pg_db() else { return };
    let d = tempfile::tempdir().unwrap();
    const TAGS: usize = 30;
    const ROUNDS: u32 = 40;
    let csv = keys_csv(d.path(), "b.csv", "tag", TAGS);
    let (mut servers, bases) = three(&db, &csv);
    let c = client();
    // Every scan goes to two instances at once: at most one of them may pass it.
    let mut work: Vec<(usize, u32, usize)> = Vec::new();
    for ctr in 1..=ROUNDS {
        for t in 0..TAGS {
            let first = (t + ctr as usize) % 3;
            work.push((t, ctr, first));
            work.push((t, ctr, (first + 1) % 3));
        }
    }
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    // (tag, counter, instance, answer or None when the connection failed, sent after the kill)
    type Seen = (usize, u32, usize, Option<String>, bool);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (c, bases, work, next, killed, seen) = (
            c.clone(),
            bases.clone(),
            work.clone(),
            next.clone(),
            killed.clone(),
            seen.clone(),
        );
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(t, ctr, inst)) = work.get(i) else {
                    break;
                };
                let after = killed.load(Ordering::SeqCst);
                let url = format!(
                    "{}/v1/t?{}",
                    bases[inst],
                    sun(&format!("tag{t}"), key_of(t), ctr)
                );
                let answer = match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .map(|v| response(&v)),
                    _ => None,
                };
                seen.lock().unwrap().push((t, ctr, inst, answer, after));
            }
        });
    }
    // Kill instance 0 once a third of the work is under way.
    while next.load(Ordering::SeqCst) < work.len() / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    servers.0[0].kill().unwrap(); // SIGKILL
    servers.0[0].wait().unwrap();
    killed.store(true, Ordering::SeqCst);
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), work.len());

    // No counter passed twice; the survivors answered everything, also after the kill.
    let mut passes: HashSet<(usize, u32)> = HashSet::new();
    for (t, ctr, inst, answer, after) in &seen {
        if *inst != 0 {
            assert!(
                answer.is_some(),
                "instance {inst} did not answer tag{t} {ctr}"
            );
            assert_ne!(answer.as_deref(), Some("store_unavailable"), "tag{t} {ctr}");
        }
        if answer.as_deref() == Some("Pass") {
            assert!(
                passes.insert((*t, *ctr)),
                "tag{t} counter {ctr} passed twice"
            );
            let _ = after;
        }
    }
    let survivors_after_kill = seen
        .iter()
        .filter(|s| s.4 && s.2 != 0 && s.3.as_deref() == Some("Pass"))
        .count();
    assert!(survivors_after_kill > 0, "no Pass after the kill");
    // Every answered Pass is in the database, which holds no counter passed twice either.
    let log = store::open_existing(&db.arg).unwrap().scans(None).unwrap();
    let mut in_db: HashSet<(usize, u32)> = HashSet::new();
    for r in log.iter().filter(|r| r.passed) {
        let t: usize = r.xuid.trim_start_matches("tag").parse().unwrap();
        assert!(
            in_db.insert((t, r.ctr.unwrap())),
            "{} counter {:?} passed twice in the database",
            r.xuid,
            r.ctr
        );
    }
    for p in &passes {
        assert!(
            in_db.contains(p),
            "answered Pass {p:?} is not in the database"
        );
    }
    eprintln!(
        "kill -9 under load: {} requests, {} passes answered, {} in the database, {} passes by survivors after the kill",
        seen.len(),
        passes.len(),
        in_db.len(),
        survivors_after_kill
    );
}

/// A config file with folder "f", group "g", and the given batches (name, csv, active).
fn config(dir: &Path, name: &str, batches: &[(&str, &Path, bool)]) -> PathBuf {
    let mut s = String::from(
        "[[folder]]\nname = \"f\"\naid = \"f01\"\n\n  [[folder.group]]\n  name = \"g\"\n  kind = \"authentication\"\n",
    );
    for (b, csv, active) in batches {
        s.push_str(&format!(
            "\n    [[folder.group.batch]]\n    name = \"{b}\"\n    files = [\"{}\"]\n    active = {active}\n",
            csv.display()
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// Polls `base` until `query` answers `want`; the time it took.
async fn until(c: &reqwest::Client, base: &str, query: &str, want: &str) -> Duration {
    let bound = WATCH_POLL + Duration::from_secs(3);
    let t0 = Instant::now();
    loop {
        let got = response(&ask(c, base, query).await);
        if got == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < bound,
            "{query} on {base}: still {got:?} after {bound:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_reaches_the_others_within_the_bound() {
    let Some(db) = pg_db() else { return };
    let d = tempfile::tempdir().unwrap();
    let b1 = keys_csv(d.path(), "b1.csv", "one", 2);
    let b2 = keys_csv(d.path(), "b2.csv", "two", 2);
    let cfg1 = config(d.path(), "1.toml", &[("b1", &b1, true)]);
    let (a, base_a) = serve(&["--db", &db.arg, "--config", cfg1.to_str().unwrap()]);
    let _servers = Servers(vec![a]);
    let c = client();
    assert_eq!(
        response(&ask(&c, &base_a, "x=two0").await),
        "xuid_not_found"
    );
    assert_eq!(response(&ask(&c, &base_a, "x=one0").await), "Fail");

    // An import through another instance: A serves the new batch.
    let cfg2 = config(d.path(), "2.toml", &[("b1", &b1, true), ("b2", &b2, true)]);
    let (b, base_b) = serve(&["--db", &db.arg, "--config", cfg2.to_str().unwrap()]);
    let _b = Servers(vec![b]);
    let took = until(&c, &base_a, "x=two0", "Fail").await;
    eprintln!("import through B seen by A after {took:?}");
    assert_eq!(
        response(&ask(&c, &base_a, &sun("two1", key_of(1), 5)).await),
        "Pass"
    );
    assert_eq!(
        response(&ask(&c, &base_b, &sun("two1", key_of(1), 5)).await),
        "Fail"
    );

    // A status change through a third instance: batch b1 made inactive.
    let cfg3 = config(d.path(), "3.toml", &[("b1", &b1, false), ("b2", &b2, true)]);
    let (c3, _) = serve(&["--db", &db.arg, "--config", cfg3.to_str().unwrap()]);
    let _c = Servers(vec![c3]);
    let took = until(&c, &base_a, "x=one0", "batch_inactive").await;
    eprintln!("status change through C seen by A after {took:?}");
    until(&c, &base_b, "x=one0", "batch_inactive").await;

    // Management PATCHes through one instance (a tag's Default Response, then its status):
    // another instance answers accordingly.
    // The management token from an owner-only file (never on the command line).
    let mgmt = d.path().join("mgmt.token");
    {
        use std::io::Write;
        let mut f = tag424::private_fs::create_new(&mgmt).unwrap();
        f.write_all(b"Mgmt123\n").unwrap();
    }
    let mgmt = mgmt.to_str().unwrap();
    let (m, base_m) = serve(&["--db", &db.arg, "--management-token-file", mgmt]);
    let _m = Servers(vec![m]);
    let patch_x = |base: &str, xuid: &str, body: String| {
        let (c, url) = (c.clone(), format!("{base}/v1/x/{xuid}"));
        async move {
            let r = c
                .patch(url)
                .header("X-API-Key", "Mgmt123")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let patch = |base: &str, body: &str| patch_x(base, "two0", body.to_string());
    patch(&base_m, "ix_dr=Recalled").await;
    let took = until(&c, &base_a, "x=two0", "Recalled").await;
    eprintln!("PATCH through M seen by A after {took:?}");
    patch(&base_m, "ix_status=Inactive").await;
    let took = until(&c, &base_b, "x=two0", "tag_inactive").await;
    eprintln!("status PATCH through M seen by B after {took:?}");

    // Changes through two instances at the same time: each instance serves both.
    // (An instance's own change, committed before it loaded the other's, must not count the
    // other's as loaded.)
    let (n, base_n) = serve(&["--db", &db.arg, "--management-token-file", mgmt]);
    let _n = Servers(vec![n]);
    for round in 0..5 {
        let (from_m, from_n) = (format!("M{round}"), format!("N{round}"));
        tokio::join!(
            patch_x(&base_m, "two0", format!("ix_status=Active&ix_dr={from_m}")),
            patch_x(&base_n, "two1", format!("ix_dr={from_n}")),
        );
        for base in [&base_m, &base_n, &base_a] {
            until(&c, base, "x=two0", &from_m).await;
            until(&c, base, "x=two1", &from_n).await;
        }
    }
}
