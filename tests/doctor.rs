//! `tag424 doctor` on the simulated reader: the time per exchange it measures matches the
//! latency the simulated reader adds, the tags per minute follow from it, and nothing is
//! written. A correctness check of the measurement (with generous bounds for a loaded machine),
//! not a benchmark.

mod batchhelp;
mod run;

use batchhelp::bin;

fn doctor(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    bin()
        .current_dir(dir)
        .env_remove("TAG424_READER")
        .args(["--no-profile", "doctor"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn doctor_measures_the_simulated_readers_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let made = bin()
        .current_dir(tmp.path())
        .args(["--no-profile", "sim", "new", "--dir", "tags"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let snapshot = || {
        let mut v: Vec<_> = std::fs::read_dir(tmp.path().join("tags"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.clone(), std::fs::read(p).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot();

    let out = doctor(tmp.path(), &["--reader", "sim:tags?latency=20ms", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], 1);
    let r = &v["readers"][0];
    assert_eq!(r["kind"], "simulated");
    assert_eq!(r["tag_present"], true);
    assert_eq!(r["tag"]["product"], "NTAG 424 DNA");
    assert_eq!(r["tag"]["ntag424_dna"], true);
    assert_eq!(r["vendor"], serde_json::Value::Null);
    assert_eq!(r["problems"], serde_json::json!([]));
    let t = &r["timing"];
    assert_eq!(t["samples"], 20);
    let median = t["median_ms"].as_f64().unwrap();
    // 20 ms an exchange, within 25% (a sleep is never shorter; a loaded machine may be slower).
    assert!((15.0..=40.0).contains(&median), "median {median} ms");
    let (min, max) = (t["min_ms"].as_f64().unwrap(), t["max_ms"].as_f64().unwrap());
    let (p10, p90) = (t["p10_ms"].as_f64().unwrap(), t["p90_ms"].as_f64().unwrap());
    assert!(min >= 20.0, "a sleep of 20 ms lasts at least 20 ms: {min}");
    assert!(min <= p10 && p10 <= median && median <= p90 && p90 <= max);
    let rates = &r["tags_per_minute"];
    let aes = rates["aes"].as_f64().unwrap();
    let lrp = rates["lrp"].as_f64().unwrap();
    assert!((aes - 60_000.0 / (15.0 * median)).abs() < 0.01, "{aes}");
    assert!((lrp - 60_000.0 / (18.0 * median)).abs() < 0.01, "{lrp}");
    // 20 ms an exchange: about 200 AES tags a minute (150 to 267 with the bounds above).
    assert!((100.0..=267.0).contains(&aes), "{aes}");

    let out = doctor(
        tmp.path(),
        &["--reader", "sim:tags?latency=20ms", "--exchanges", "5"],
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "simulated reader tags (latency 20ms per exchange)",
        "NTAG 424 DNA, UID ",
        "time/exchange   median ",
        "over 5 exchanges",
        "tags per minute at most ",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    assert_eq!(snapshot(), before, "doctor wrote nothing to the tag");
}

#[test]
fn doctor_names_the_fix_for_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = doctor(tmp.path(), &["--reader", "sim:nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no simulated tag directory nowhere") && e.contains("sim new"),
        "{e}"
    );
    assert!(!tmp.path().join("nowhere").exists(), "nothing made");
    let out = doctor(tmp.path(), &["--reader", "sim:x?latency=fast"]);
    assert_eq!(out.status.code(), Some(2));
    let out = doctor(tmp.path(), &["--reader", "sim:x", "--exchanges", "0"]);
    assert_eq!(out.status.code(), Some(2));
    // An empty folder: no tag, nothing timed, not an error.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = doctor(tmp.path(), &["--reader", "sim:empty", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["readers"][0]["tag_present"], false);
    assert_eq!(v["readers"][0]["timing"], serde_json::Value::Null);
}

/// The exchange counts doctor's tags per minute use are what a fresh tag costs.
#[test]
fn tags_per_minute_use_the_exchanges_a_fresh_tag_takes() {
    use tag424::crypto::sdm::SdmMode;
    use tag424::diagnose::{AES_FRESH_EXCHANGES, LRP_FRESH_EXCHANGES};
    use tag424::provision::EncodeOptions;
    use tag424::sun::Template;
    for (template, per_tag) in [
        (Template::default(), AES_FRESH_EXCHANGES),
        (
            Template::default().with_mode(SdmMode::Lrp),
            LRP_FRESH_EXCHANGES,
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = EncodeOptions {
            lifecycle: Default::default(),
            template,
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        };
        let (_, _, summary) =
            batchhelp::sim_batch(&tmp.path().join("tags"), &tmp.path().join("out"), 2, opts);
        assert_eq!(summary.exchanges, 2 * per_tag as usize);
    }
}
