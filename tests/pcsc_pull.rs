//! Tags pulled at random points mid-sequence, through the real pcscd (issue 21): the vpcd
//! bridge (`tag424 sim attach --pull P`) takes the tag off the reader after an answer or
//! before it (the chip applied the command, the host never heard back) and puts it back; the
//! batch reconnects when the tag is back, re-selects, re-authenticates with the journaled keys
//! and resumes at the step the chip shows. Every tag finishes without the operator, every code
//! is on exactly one tag, every key of every chip is the journal's and was changed once, and
//! the retries are reported. Needs `.ci/with-pcscd`; skipped with a message when it is not
//! running, but a failure under CI=true.

mod batchhelp;
mod run;

use std::process::Stdio;
use std::time::{Duration, Instant};

use tag424::sim::dir::SimDir;

use batchhelp::bin;

#[test]
fn a_batch_whose_tags_are_pulled_at_random_points_finishes_every_tag() {
    let Some(port) = batchhelp::vpcd_port() else {
        return;
    };
    const N: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    std::fs::create_dir_all(&tags).unwrap();
    let out = tmp.path().join("out");
    let trace = tmp.path().join("batch.trace");
    batchhelp::settle_vpcd();
    let n = N.to_string();
    let mut bridge = bin()
        .args([
            "sim",
            "attach",
            "--vpcd",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(&tags)
        .args(["--count", &n, "--idle", "0.4", "--gap", "0.6"])
        .args(["--pull", "0.08", "--seed", "21", "--json"])
        .stdout(std::fs::File::create(tmp.path().join("attach.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut batch = bin()
        .args([
            "batch",
            "--reader",
            "Virtual PCD 00 00",
            "--generate-xuids",
            &n,
        ])
        .args(["--count", &n, "--trust-simulator", "--json", "--trace"])
        .arg(&trace)
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(tmp.path().join("batch.out")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("batch.err")).unwrap())
        .spawn()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(240);
    while batch.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = batch.kill();
            let _ = batch.wait();
            let _ = bridge.kill();
            let _ = bridge.wait();
            panic!(
                "the batch did not finish in 240 s\n{}\n{}",
                read("batch.out"),
                read("batch.err")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = batch.wait().unwrap();
    // The bridge ends by itself after N tags (the last one is powered off when the batch
    // exits); bounded all the same.
    let bridge_deadline = Instant::now() + Duration::from_secs(20);
    while bridge.try_wait().unwrap().is_none() && Instant::now() < bridge_deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = bridge.kill();
    let _ = bridge.wait();
    let stdout = read("batch.out");
    assert!(status.success(), "{stdout}\n{}", read("batch.err"));

    // The bridge pulled tags mid-sequence.
    let attach: serde_json::Value = serde_json::from_str(&read("attach.out"))
        .unwrap_or_else(|e| panic!("attach --json: {e}: {}", read("attach.out")));
    let pulled = attach["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["removed_by"] == "pulled")
        .count();
    assert!(pulled >= 3, "few pulls to prove anything: {attach}");

    // Every tag finished, none failed or left unfinished, without the operator: every pull
    // the host noticed was a retry on the same presentation (no "failed" event).
    let events = batchhelp::events(&stdout);
    assert_eq!(batchhelp::done(&events).len(), N, "{stdout}");
    assert!(
        !events.iter().any(|e| e["event"] == "failed"),
        "no tag failed: {stdout}"
    );
    let retry_events = events.iter().filter(|e| e["event"] == "retry").count();
    assert!(
        retry_events >= 1 && retry_events <= pulled,
        "{retry_events} retries for {pulled} pulls: {stdout}"
    );
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "retry")
            .all(|e| e["tear_off"] == true),
        "a PC/SC retry follows a tag that left: {stdout}"
    );
    batchhelp::assert_tag_left_before_each_tear_off_retry(&events);
    eprintln!("{N} tags, {pulled} pulls, {retry_events} retries");
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["summary"]["encoded"], N, "{summary}");
    assert_eq!(summary["summary"]["failed"], 0, "{summary}");
    assert_eq!(summary["summary"]["unfinished"], 0, "{summary}");
    assert_eq!(summary["summary"]["retries"], retry_events, "{summary}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["summary"]["retries"], retry_events, "{written}");

    // Every code on exactly one verified tag; each chip holds the journal's five keys, each
    // changed exactly once (never a second ChangeKey from a wrong old key).
    let journal = batchhelp::verified_once(&out, N);
    let states = SimDir::open(&tags).unwrap().list().unwrap();
    batchhelp::assert_chips_hold_the_journals_keys(&journal, &states, N);
    batchhelp::assert_keys_csv_rows(&out, N);

    // The trace shows each retry where it happened.
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(
        trace.matches("# retry ").count(),
        retry_events,
        "every retry is in the trace"
    );
}
