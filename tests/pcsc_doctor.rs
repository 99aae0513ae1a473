//! `tag424 doctor` through the real PC/SC stack: pcscd with vsmartcard's vpcd readers and a
//! simulated tag presented by `tag424 sim attach`. Needs `.ci/with-pcscd`; skipped with a
//! message when it is not running, but a failure under CI=true.

mod batchhelp;
mod run;

use std::time::{Duration, Instant};

use tag424::transport::pcsc::PcscReader;

use batchhelp::bin;

/// Waits (bounded) until a tag is on the reader.
fn wait_for_tag(name: &str) {
    let started = Instant::now();
    loop {
        let present = PcscReader::open(name)
            .and_then(|r| r.card_present())
            .unwrap_or(false);
        if present {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no tag on {name} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn doctor_names_the_virtual_reader_and_times_its_tag() {
    let Some(port) = batchhelp::vpcd_port() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    batchhelp::settle_vpcd();
    let mut bridge = batchhelp::sim_attach(port, &tags, &["--count", "1", "--idle", "1.5"]);
    wait_for_tag("Virtual PCD 00 00");

    let out = bin()
        .current_dir(tmp.path())
        .env_remove("TAG424_READER")
        .args([
            "--no-profile",
            "doctor",
            "--reader",
            "Virtual PCD 00 00",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["readers"][0];
    assert_eq!(r["name"], "Virtual PCD 00 00");
    assert_eq!(r["kind"], "pcsc");
    assert!(r["number"].is_u64());
    assert_eq!(r["tag_present"], true);
    assert_eq!(r["atr"]["hex"], "3B8180018080");
    assert_eq!(r["atr"]["kind"], "iso14443-4");
    assert_eq!(r["atr"]["historical_bytes"], "80");
    assert!(r["protocol"].is_string(), "{r}");
    assert_eq!(r["tag"]["product"], "NTAG 424 DNA");
    assert_eq!(r["timing"]["samples"], 20);
    assert!(r["timing"]["median_ms"].as_f64().unwrap() > 0.0);
    assert!(r["tags_per_minute"]["aes"].as_f64().unwrap() > 0.0);
    assert_eq!(r["problems"], serde_json::json!([]), "{r}");
    assert!(
        r["quirks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["reader"] == "Virtual PCD (vsmartcard vpcd)"),
        "{r}"
    );
    eprintln!("doctor through vpcd: {r}");

    // Every reader (no --reader), as text: the virtual readers are named, the one with the
    // tag is timed.
    let out = bin()
        .current_dir(tmp.path())
        .env_remove("TAG424_READER")
        .args(["--no-profile", "doctor", "--exchanges", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "] Virtual PCD 00 00",
        "] Test NFC Reader 00 00",
        "3B8180018080  ISO 14443-4 card, historical bytes 80",
        "over 3 exchanges",
        "tag             none on the reader",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }

    // The bridge presents its one tag, sees it idle and leaves (bounded).
    let started = Instant::now();
    while bridge.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = bridge.kill();
            panic!("sim attach did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
