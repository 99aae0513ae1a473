//! `batch --lrp-irreversible` through the real PC/SC stack (pcscd, vpcd, the simulated chip),
//! with the first tag pulled right after the irreversible switch. Needs `.ci/with-pcscd`
//! (TAG424_VPCD_PORT); skipped with a message without it, and failing under CI=true.

use std::process::{Command, Stdio};

use tag424::provision::Journal;
use tag424::sim::dir::SimDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tag424"))
}

#[test]
fn an_lrp_batch_through_pcscd_survives_a_pull_right_after_the_switch() {
    let port: u16 = match std::env::var("TAG424_VPCD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        Some(p) => p,
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no pcscd with vpcd: run through .ci/with-pcscd"
            );
            eprintln!("skipped: no pcscd with vpcd (run through .ci/with-pcscd to include the PC/SC tests)");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    // vpcd's driver notices a previous bridge's disconnect (another test file's) at its next
    // poll and would close a connection made before that: let it settle.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // 9 APDUs: select, GetVersion ×3, Read_Sig, AuthenticateEV2First ×2, WriteData (the NDEF
    // file, still AES), the switch.
    let mut bridge = bin()
        .args([
            "sim",
            "attach",
            "--vpcd",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(&tags)
        .args([
            "--count",
            "3",
            "--tear-after",
            "9",
            "--idle",
            "0.4",
            "--gap",
            "0.6",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let template = "https://verify.example/s?p={picc}&c={mac}";
    let batch = bin()
        .args([
            "batch",
            "--reader",
            "Virtual PCD 00 00",
            "--generate-xuids",
            "3",
            "--count",
            "3",
            "--trust-simulator",
            "--lrp-irreversible",
            "--url",
            template,
            "--json",
            "--out",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = bridge.wait();
    let stdout = String::from_utf8_lossy(&batch.stdout);
    assert!(
        batch.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&batch.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "tag").collect();
    assert_eq!(done.len(), 3, "{stdout}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "failed" && e["tear_off"] == true),
        "the pulled tag was seen: {stdout}"
    );
    assert_eq!(
        done.iter()
            .filter(|e| e["result"]["recovered"] == true)
            .count(),
        1,
        "…and finished when presented again: {stdout}"
    );
    // The pull came after the switch was sent: each tag's switch is journaled once (a tag
    // pulled before it would be switched, and journaled, again when finished).
    let text = std::fs::read_to_string(out.join(tag424::provision::journal::JOURNAL_FILE)).unwrap();
    assert_eq!(
        text.matches("\"event\":\"lrp_switch\"").count(),
        3,
        "{text}"
    );
    let journal = Journal::open(&out).unwrap();
    let sim = SimDir::open(&tags).unwrap();
    for state in sim.list().unwrap() {
        assert!(state.lrp);
        let entry = journal.tag(&hex::encode_upper(state.uid)).unwrap();
        for k in tag424::provision::keys::KeyNo::ALL {
            assert_eq!(&state.keys[k.get() as usize], entry.keys().unwrap().key(k));
        }
    }
}
