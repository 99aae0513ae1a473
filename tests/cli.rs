//! The real `tag424` binary, run as an operator would.

use std::process::Command;

fn tag424(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tag424"))
        .args(args)
        .env_remove("TAG424_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ZERO: &str = "00000000000000000000000000000000";

/// A key file holding the all-zero key (keys never go on the command line).
fn zero_key_file() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("zero.key");
    // Owner-only, as tag424 asks of every key file.
    tag424::private_fs::write_atomic(&p, ZERO.as_bytes()).unwrap();
    let s = p.to_str().unwrap().to_string();
    (d, s)
}

/// AN12196 §3.4 example URLs with their templates.
const EXAMPLES: &[(&str, &str)] = &[
    ("https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086", "https://ntag.nxp.com/424?e={picc}&c={mac}"),
    (
        "https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6",
        "https://www.my424dna.com/?picc_data={picc}&enc={enc}&cmac={mac}",
    ),
    (
        "https://my424dna.com/?picc_data=FDE4AFA99B5C820A2C1BB0F1C792D0EB&enc=94592FDE69FA06E8E3B6CA686A22842B&cmac=C48B89C17A233B2C",
        "https://my424dna.com/?picc_data={picc}&enc={enc}&cmac={mac}",
    ),
];

#[test]
fn verify_accepts_an12196_examples_and_rejects_any_flipped_nibble() {
    let (_d, zero) = zero_key_file();
    for (url, template) in EXAMPLES {
        let (code, out, err) = tag424(&[
            "verify",
            url,
            "--url",
            template,
            "--key-file",
            &zero,
            "--meta-key-file",
            &zero,
            "--json",
        ]);
        assert_eq!(code, 0, "{url}: {out} {err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["genuine"], true);
        assert_eq!(v["format"], 1);
        let q = url.find('?').unwrap();
        for i in (q..url.len())
            .filter(|&i| url.as_bytes()[i].is_ascii_hexdigit() && url.as_bytes()[i - 1] != b'&')
        {
            let mut b = url.as_bytes().to_vec();
            if !b[i].is_ascii_hexdigit() {
                continue;
            }
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let flipped = String::from_utf8(b).unwrap();
            if flipped == *url {
                continue;
            }
            let (code, _, _) = tag424(&[
                "verify",
                &flipped,
                "--url",
                template,
                "--key-file",
                &zero,
                "--meta-key-file",
                &zero,
            ]);
            assert_ne!(code, 0, "{flipped} verified");
        }
    }
}

#[test]
fn verify_bad_input_exits_2_with_a_message() {
    let (d, zero) = zero_key_file();
    let (code, _, err) = tag424(&["verify", "https://other.example/", "--key-file", &zero]);
    assert_eq!(code, 2);
    assert!(err.contains("does not match the template"), "{err}");
    let short = d.path().join("short.key");
    tag424::private_fs::write_atomic(&short, b"00").unwrap();
    let (code, _, err) = tag424(&[
        "verify",
        "https://x/",
        "--key-file",
        short.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("32 hex digits"), "{err}");
    let (code, _, err) = tag424(&["verify", "https://x/"]);
    assert_eq!(code, 2);
    assert!(err.contains("no key"), "{err}");
}

#[test]
fn demo_runs_the_whole_story() {
    let (code, out, err) = tag424(&["demo", "--tags", "3"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("rejected as a replay"), "{out}");
    assert!(out.contains("Demo OK."), "{out}");
}

#[test]
fn batch_resumes_and_never_reuses_a_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let tags = format!("sim:{}", tmp.path().join("tags").display());
    let codes = tmp.path().join("codes.csv");
    std::fs::write(&codes, "XUID\naaaa1111\naaaa2222\naaaa3333\naaaa4444\n").unwrap();
    let o = out.to_str().unwrap();
    let c = codes.to_str().unwrap();
    let (code, stdout, err) = tag424(&[
        "batch", "--reader", &tags, "--xuids", c, "--out", o, "--count", "2", "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("\"event\":\"tag\""))
            .count(),
        2
    );
    let (code, stdout, err) = tag424(&[
        "batch", "--reader", &tags, "--xuids", c, "--out", o, "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("already_done"), "{stdout}");
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert_eq!(keys.lines().count(), 5, "{keys}");
    for x in ["aaaa1111", "aaaa2222", "aaaa3333", "aaaa4444"] {
        assert_eq!(keys.matches(x).count(), 1, "{keys}");
    }
    let (code, list, _) = tag424(&[
        "sim",
        "list",
        "--dir",
        tmp.path().join("tags").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0);
    assert!(list.contains("aaaa3333"));
    // A phone taps the tag; the URL verifies offline with the key from keys.csv.
    let (code, url, err) = tag424(&[
        "sim",
        "tap",
        "--dir",
        tmp.path().join("tags").to_str().unwrap(),
        "aaaa1111",
    ]);
    assert_eq!(code, 0, "{err}");
    let key = keys
        .lines()
        .find(|l| l.starts_with("aaaa1111,"))
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap();
    let key_file = tmp.path().join("key.txt");
    tag424::private_fs::write_atomic(&key_file, key.as_bytes()).unwrap();
    let (code, out, err) = tag424(&[
        "verify",
        url.trim(),
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("GENUINE"), "{out}");
}

#[test]
fn batch_refuses_bad_input_before_touching_a_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let codes = tmp.path().join("codes.txt");
    std::fs::write(&codes, "abc\nabc\n").unwrap();
    let tags = format!("sim:{}", tmp.path().join("tags").display());
    let o = tmp.path().join("out");
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        &tags,
        "--xuids",
        codes.to_str().unwrap(),
        "--no-header",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("twice"), "{err}");
    assert!(!o.exists(), "no folder was created");
    assert!(
        !tmp.path().join("tags").exists(),
        "no tag was created or touched"
    );
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        &tags,
        "--generate-xuids",
        "2",
        "--out",
        o.to_str().unwrap(),
        "--url",
        "https://a.com/?x={xuid}&e={mac}",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("counter"), "{err}");
}

#[test]
fn encode_info_reset_and_encode_again() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let (_, uid, _) = tag424(&["sim", "new", "--dir", tags.to_str().unwrap()]);
    let uid = uid.trim();
    let reader = format!("sim:{}", tags.display());
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let (code, info, err) = tag424(&["info", "--reader", &reader, "--uid", uid, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(v["state"], "factory");
    assert_eq!(v["originality"], "simulated");
    let (code, _, err) = tag424(&[
        "encode", "--xuid", "code0001", "--reader", &reader, "--uid", uid, "--out", o,
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, info, _) = tag424(&[
        "info", "--reader", &reader, "--uid", uid, "--out", o, "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(v["state"], "encoded");
    assert_eq!(v["xuid"], "code0001");
    let (code, _, err) = tag424(&[
        "encode", "--xuid", "code0001", "--reader", &reader, "--uid", uid, "--out", o,
    ]);
    assert_eq!(code, 2, "a code is never used twice: {err}");
    let (code, _, err) = tag424(&["reset", "--reader", &reader, "--uid", uid, "--out", o]);
    assert_eq!(code, 0, "{err}");
    let (_, info, _) = tag424(&["info", "--reader", &reader, "--uid", uid, "--json"]);
    let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(v["state"], "factory");
    let (code, _, err) = tag424(&[
        "encode", "--xuid", "code0002", "--reader", &reader, "--uid", uid, "--out", o,
    ]);
    assert_eq!(code, 0, "{err}");
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert!(
        keys.contains("code0002") && !keys.contains("code0001"),
        "{keys}"
    );
}

#[test]
fn pcsc_without_service_is_a_clear_error() {
    // Point the PC/SC client at a socket where no service listens (pcsc-lite reads this).
    let out = Command::new(env!("CARGO_BIN_EXE_tag424"))
        .arg("readers")
        .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PC/SC service is not running"), "{err}");
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn a_trace_replays_as_a_fixture_with_keys_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let (_, uid, _) = tag424(&["sim", "new", "--dir", tags.to_str().unwrap()]);
    let trace = tmp.path().join("trace.apdu");
    let reader = format!("sim:{}", tags.display());
    let (code, _, err) = tag424(&[
        "encode",
        "--xuid",
        "trace001",
        "--reader",
        &reader,
        "--uid",
        uid.trim(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let fx = tag424::transport::replay::Fixture::parse(&text).unwrap();
    assert_eq!(
        fx.exchanges.len(),
        10,
        "15 exchanges, the 5 ChangeKeys redacted"
    );
    assert_eq!(text.matches("redacted").count(), 5);
}
