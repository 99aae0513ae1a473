//! SIGKILL at random moments during a simulated batch, then resume: no key is ever lost and
//! no tag code is used twice.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use tag424::crypto::AesKey;
use tag424::provision::journal::{PlannedKeys, Record};
use tag424::sim::dir::SimDir;

mod run;

#[test]
fn killed_batches_resume_without_losing_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    let codes = tmp.path().join("codes.txt");
    let list: Vec<String> = (0..120).map(|i| format!("kill{i:04}")).collect();
    std::fs::write(&codes, list.join("\n")).unwrap();
    let reader = format!("sim:{}", tags.display());
    let args = [
        "batch",
        "--reader",
        &reader,
        "--xuids",
        codes.to_str().unwrap(),
        "--no-header",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    // Deterministic "random" kill times between 15 and 300 ms.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = 15 + x % 285;
        let mut child = run::tag424()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let status = run::tag424()
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the final run finishes");

    // The journal: the latest planned keys per UID, and every code planned at most once.
    let text = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let mut planned: HashMap<String, [AesKey; 5]> = HashMap::new();
    let mut used = HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(r) = serde_json::from_str::<Record>(line) else {
            continue;
        };
        if let Record::Planned {
            uid,
            xuid,
            keys: PlannedKeys::Clear(keys),
            ..
        } = r
        {
            assert!(used.insert(xuid.clone()), "tag code {xuid} used twice");
            planned.insert(uid, keys.0);
        }
    }
    let sim = SimDir::open(&tags).unwrap();
    let mut encoded = 0;
    for state in sim.list().unwrap() {
        if state.has_factory_keys() {
            continue;
        }
        encoded += 1;
        let uid = hex::encode_upper(state.uid);
        let keys = planned
            .get(&uid)
            .unwrap_or_else(|| panic!("tag {uid} has non-factory keys the journal does not know"));
        for (k, (have, planned)) in state.keys.iter().zip(keys.iter()).enumerate() {
            assert_eq!(have, planned, "tag {uid} key {k}");
        }
    }
    let csv = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let unique: HashSet<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    assert_eq!(unique.len(), rows.len(), "one keys.csv row per code");
    assert_eq!(rows.len(), encoded, "every encoded tag is exported");
    assert_eq!(rows.len(), 120, "all codes were used in the end");
}
