//! The real `tag424` binary, run as an operator would.

mod batchhelp;
mod run;

fn tag424(args: &[&str]) -> (i32, String, String) {
    run::output(run::tag424().args(args))
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
    // Resumed: the simulated reader presents only the tags not done (two fresh ones here).
    assert!(!stdout.contains("already_done"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("\"event\":\"tag\""))
            .count(),
        2,
        "{stdout}"
    );
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
    let out = run::tag424()
        .arg("readers")
        .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PC/SC service is not running"), "{err}");
    assert!(err.contains("help:"), "{err}");
}

/// A `--trace` is shareable: none of the batch's keys, no authentication randoms (so no
/// session key can be derived, whatever key is known), no ChangeKey cryptogram; still every
/// command's name and header, every length, status word and time. With `--trace-keys` the
/// same session replays (`replay::check`: every authentication opened, every MAC recomputed,
/// the new keys learnt from the ChangeKey cryptograms equal the journal's).
#[test]
fn a_trace_is_shareable_without_keys_and_replays_with_them() {
    use tag424::transport::replay::check::check;
    use tag424::transport::replay::Fixture;
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, keys: bool| {
        let trace = tmp.path().join(format!("{name}.apdu"));
        let mut extra = vec!["--trace", trace.to_str().unwrap()];
        if keys {
            extra.push("--trace-keys");
        }
        sim_batch(tmp.path(), name, &format!("tags-{name}"), 3, &extra);
        let journal = tag424::provision::Journal::read_only(&tmp.path().join(name)).unwrap();
        let keys: Vec<String> = journal
            .tags()
            .flat_map(|t| {
                let k = t.keys().unwrap();
                (0..5u8)
                    .map(|n| hex::encode_upper(k.get(n).unwrap().as_bytes()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(keys.len(), 15);
        (std::fs::read_to_string(&trace).unwrap(), keys)
    };
    let spaced = |k: &str| {
        k.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    };

    let (text, keys) = run("shared", false);
    let flat: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    for k in &keys {
        assert!(
            !text.contains(&spaced(k)) && !flat.contains(k.as_str()),
            "key {k} in the trace"
        );
    }
    let mut fx = Fixture::parse(&text).unwrap();
    assert!(fx.meta("redacted").is_some(), "{text}");
    for (c, _) in &fx.exchanges {
        assert!(
            !(matches!(c[1], 0x71 | 0x77 | 0xC4) || (c[1] == 0xAF && c.len() > 6)),
            "an authentication or ChangeKey in clear: {}",
            hex::encode_upper(c)
        );
    }
    // Without the mark it still opens no session: the randoms are not there.
    fx.meta.retain(|(k, _)| k != "redacted");
    fx.meta.push(("document".into(), "test".into()));
    assert_eq!(check(&fx).unwrap().authentications, 0);
    // Useful to debug a reader: each authentication and ChangeKey is there by name, header,
    // lengths, status word and time.
    assert_eq!(
        text.matches("(AuthenticateEV2First; redacted").count(),
        2 * 3,
        "{text}"
    );
    assert!(
        text.contains("# > 90 AF 00 00 20 [32 bytes redacted] 00  (AuthenticateEV2First"),
        "{text}"
    );
    assert!(text.contains("# < [32 bytes redacted] 91 00  ("), "{text}");
    assert_eq!(
        text.matches("(ChangeKey; redacted: key material)").count(),
        5 * 3,
        "{text}"
    );
    assert!(
        text.contains("# > 90 C4 00 00 29 01 [40 bytes redacted] 00"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("< "))
            .all(|l| l.ends_with(" ms")),
        "{text}"
    );

    let (text, _) = run("full", true);
    assert!(!text.contains("redacted"), "{text}");
    let mut fx = Fixture::parse(&text).unwrap();
    fx.meta
        .push(("document".into(), "simulated tags, test".into()));
    let done = check(&fx).unwrap();
    assert_eq!(done.authentications, 3, "{done:?}");
    assert_eq!(done.keys_learnt, 5 * 3, "{done:?}");
}

/// `verify --key-file keys.csv` picks the row by the URL's tag code, names the row, says an
/// offline check cannot see replays (text and `replay_checked` in --json), and says so when
/// the URL has no tag code or the file no row for it (issue 19.14).
#[test]
fn verify_picks_the_keys_csv_row_by_tag_code_and_says_it_cannot_see_replays() {
    use tag424::crypto::sdm::sdm_mac;
    use tag424::crypto::AesKey;
    let d = tempfile::tempdir().unwrap();
    let keys = d.path().join("keys.csv");
    let key = [0x5Au8; 16];
    // Owner-only, as tag424 asks of every file that holds keys.
    tag424::private_fs::write_atomic(
        &keys,
        format!(
            "XUID,KEY\nother1,{}\nq8w3sbcz,{}\n",
            "11".repeat(16),
            hex::encode_upper(key)
        )
        .as_bytes(),
    )
    .unwrap();
    let keys = keys.to_str().unwrap();
    let mac = hex::encode_upper(sdm_mac(&AesKey::new(key), None, Some(42), b""));
    let url = format!("https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e={mac}");
    let (code, out, err) = tag424(&["verify", "--key-file", keys, &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("GENUINE") && out.contains("line 3"), "{out}");
    assert!(out.contains("replayed"), "{out}");
    let (code, out, _) = tag424(&["verify", "--key-file", keys, &url, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["replay_checked"], false, "{out}");
    assert_eq!(v["genuine"], true);
    // Another tag's code: its row's key does not verify this MAC.
    let other = url.replace("x=q8w3sbcz", "x=other1");
    assert_eq!(tag424(&["verify", "--key-file", keys, &other]).0, 1);
    // No row; no tag code in the URL.
    let (code, _, err) = tag424(&[
        "verify",
        "--key-file",
        keys,
        &url.replace("q8w3sbcz", "nosuch"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no row for tag code nosuch"), "{err}");
    let (code, _, err) = tag424(&[
        "verify",
        "--key-file",
        keys,
        "--url",
        "https://yourdomain.com/auth?n={ctr}&e={mac}",
        &format!("https://yourdomain.com/auth?n=00002A&e={mac}"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no tag code"), "{err}");
    // A single key file still works, with the same replay note.
    let one = d.path().join("one.key");
    tag424::private_fs::write_atomic(&one, hex::encode_upper(key).as_bytes()).unwrap();
    let (code, out, err) = tag424(&["verify", "--key-file", one.to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("replayed") && !out.contains("keys.csv row"),
        "{out}"
    );
}

/// A file that is not a code list is refused naming its file, line and what was expected,
/// never quoting its content: it may be someone's secret given by mistake (issue 18.8).
#[test]
fn an_import_error_names_file_and_line_but_never_the_content() {
    let d = tempfile::tempdir().unwrap();
    let secret = "SuperSecretPassw0rd";
    let f = d.path().join("secret.csv");
    for (text, line) in [
        (format!("{secret}\nabc\n"), "line 1"),
        (format!("XUID,KEY\n{secret}!,00\n"), "line 2"),
        (format!("XUID,{secret}!\nabc,1\n"), "line 1"),
    ] {
        std::fs::write(&f, &text).unwrap();
        let db = d.path().join("v.db");
        let (code, out, err) = tag424(&[
            "serve",
            "--no-profile",
            "--batch",
            f.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("secret.csv") && err.contains(line), "{err}");
        assert!(err.contains("expected"), "{err}");
        assert!(!err.contains(secret) && !out.contains(secret), "{err}");
    }
    // The batch's code list too.
    std::fs::write(&f, format!("{secret}\n")).unwrap();
    let (code, _, err) = tag424(&[
        "batch",
        "--no-profile",
        "--reader",
        &format!("sim:{}", d.path().join("tags").display()),
        "--xuids",
        f.to_str().unwrap(),
        "--out",
        d.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("line 1") && !err.contains(secret), "{err}");
}

/// `tag424 scans` escapes control characters in every field (an ESC must not recolour the
/// terminal or set its title) and keeps its columns aligned for long, non-ASCII and empty
/// fields (issues 18.6, 19.15).
#[test]
fn scans_escapes_control_characters_and_keeps_columns_aligned() {
    use tag424::verifier::store::{ScanWrite, SqliteStore, Store};
    use unicode_width::UnicodeWidthStr;
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    let mut s = SqliteStore::open(&db).unwrap();
    let row = |xuid: &str, result: &str, reason: &'static str, remote: &str| ScanWrite {
        time_ms: 1_700_000_000_000,
        endpoint: "api",
        query: String::new(),
        xuid: xuid.into(),
        ctr: Some(7),
        result: result.into(),
        reason,
        remote: remote.into(),
        claim: None,
    };
    s.commit(&[
        row("q8w3sbcz", "Pass", "pass", "127.0.0.1"),
        row(
            "",
            "\u{1b}]0;pwned\u{7}\u{1b}[31mRed",
            "bad_mac",
            "10.0.0.1",
        ),
        row("t1", &"Long result ".repeat(20), "replay", "::1"),
        row("日本", "日本語の結果 ✓ é", "no_sun", ""),
        row("x", "", "standard", "\u{9b}31m"),
    ])
    .unwrap();
    drop(s);
    let (code, out, err) = tag424(&["scans", "--no-profile", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for c in ['\u{1b}', '\u{7}', '\u{9b}'] {
        assert!(!out.contains(c), "{c:?} printed raw: {out:?}");
    }
    assert!(out.contains("\\u{1b}]0;pwned\\u{7}"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // Each REASON cell starts in the header's REASON column, whatever came before it.
    let col = |l: &str, word: &str| l.find(word).map(|b| l[..b].width());
    let at = col(lines[0], "REASON").unwrap();
    for (l, reason) in lines[1..6]
        .iter()
        .zip(["pass", "bad_mac", "replay", "no_sun", "standard"])
    {
        assert_eq!(
            col(l, &format!(" {reason} ")).map(|w| w + 1),
            Some(at),
            "{out}"
        );
    }
    let (code, out, _) = tag424(&[
        "scans",
        "--no-profile",
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{9b}'),
        "{out:?}"
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["scans"][4]["remote"], "\u{9b}31m");
}

// ---- tag424 serve: start-up refusals and what a re-import keeps -------------------------

/// How a bounded `tag424 serve` start ended.
enum Start {
    /// It exited (code, stdout, stderr).
    Exited(i32, String, String),
    /// It printed its "listening on" line: the process (still running), the lines printed so
    /// far, and its base URL.
    Listening(std::process::Child, Vec<String>, String),
}

impl Start {
    /// The refusal's stderr, asserting exit code 2.
    fn refused(self, what: &str) -> String {
        match self {
            Start::Exited(code, _, err) => {
                assert_eq!(code, 2, "{what}: {err}");
                err
            }
            Start::Listening(mut c, lines, _) => {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{what}: serve started instead of refusing: {lines:?}")
            }
        }
    }

    /// The lines up to "listening on" and the base URL, asserting it started; `check` runs
    /// while it serves, then it is stopped.
    fn started(self, what: &str, check: impl FnOnce(&str)) -> Vec<String> {
        match self {
            Start::Listening(c, lines, base) => {
                // Killed when dropped, also when `check` fails.
                struct Killed(std::process::Child);
                impl Drop for Killed {
                    fn drop(&mut self) {
                        let _ = self.0.kill();
                        let _ = self.0.wait();
                    }
                }
                let _c = Killed(c);
                check(&base);
                lines
            }
            Start::Exited(code, out, err) => panic!("{what}: exited {code}: {out} {err}"),
        }
    }
}

/// `tag424 --no-profile serve --listen 127.0.0.1:0 ARGS`, waited for at most 30 s.
fn serve(args: &[&str]) -> Start {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = run::tag424()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    for _ in 0..300 {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(l) => {
                let base = l
                    .split("listening on ")
                    .nth(1)
                    .map(|r| r.split_whitespace().next().unwrap().to_string());
                lines.push(l);
                if let Some(base) = base {
                    return Start::Listening(child, lines, base);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                return Start::Exited(status.code().unwrap_or(-1), lines.join("\n"), err);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tag424 serve {args:?} neither started nor exited within 30 s: {lines:?}");
}

/// The JSON body of `GET {base}/v1/t?{query}` (plain HTTP/1.1 over a socket).
fn get_v1t(base: &str, query: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET /v1/t?{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// One key file and one CUID file (a row naming a tag the keys do not have at line 3).
fn csv_batch(d: &std::path::Path) -> (String, String) {
    let keys = d.join("keys.csv");
    std::fs::write(&keys, format!("XUID,KEY\nq8w3sbcz,{}\n", "5A".repeat(16))).unwrap();
    let cuids = d.join("cuids.csv");
    std::fs::write(&cuids, "XUID,CUID\nq8w3sbcz,Bottle-1\nnosuch1,Bottle-2\n").unwrap();
    (
        keys.to_str().unwrap().to_string(),
        cuids.to_str().unwrap().to_string(),
    )
}

#[test]
fn serve_refuses_folder_flags_without_batch_and_a_reimport_keeps_the_token() {
    let d = tempfile::tempdir().unwrap();
    let (keys, _) = csv_batch(d.path());
    let db = d.path().join("v.db");
    let db = db.to_str().unwrap();
    let tok = d.path().join("token");
    std::fs::write(&tok, "Secret1\n").unwrap();
    std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let tok = tok.to_str().unwrap();
    // Without --batch, a flag of the --batch folder would be ignored: refused, naming it.
    for flags in [
        &["--token-file", tok][..],
        &["--no-token"],
        &["--aid", "acme"],
        &["--kind", "standard"],
        &["--default-response", "Nope"],
        &["--pass-response", "Yes"],
    ] {
        let mut args = vec!["--db", db];
        args.extend_from_slice(flags);
        let err = serve(&args).refused(flags[0]);
        assert!(
            err.contains(flags[0]) && err.contains("add --batch"),
            "{flags:?}: {err}"
        );
    }
    // Imported with a token: answers need it.
    serve(&["--db", db, "--batch", &keys, "--token-file", tok]).started("import", |base| {
        assert_eq!(
            get_v1t(base, "x=q8w3sbcz"),
            r#"{"xuid":"q8w3sbcz","error":"token_refused"}"#
        );
    });
    // Imported again without --token: the token is kept, and the start line says so.
    let lines = serve(&["--db", db, "--batch", &keys]).started("re-import", |base| {
        assert_eq!(
            get_v1t(base, "x=q8w3sbcz"),
            r#"{"xuid":"q8w3sbcz","error":"token_refused"}"#
        );
        assert_eq!(
            get_v1t(base, "x=q8w3sbcz&r=Secret1"),
            r#"{"xuid":"q8w3sbcz","response":"Fail"}"#
        );
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains("keeps from the database: its API token (--no-token removes it)")),
        "{lines:?}"
    );
    // --cors without --batch would not change the stored folder: refused.
    let err = serve(&["--db", db, "--cors", "*"]).refused("--cors");
    assert!(err.contains("--batch"), "{err}");
    // --no-token removes it.
    let lines =
        serve(&["--db", db, "--batch", &keys, "--no-token"]).started("--no-token", |base| {
            assert_eq!(
                get_v1t(base, "x=q8w3sbcz"),
                r#"{"xuid":"q8w3sbcz","response":"Fail"}"#
            );
        });
    assert!(!lines.iter().any(|l| l.contains("keeps")), "{lines:?}");
}

#[test]
fn serve_refuses_a_cors_origin_a_browser_never_sends() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("v.db");
    let db = db.to_str().unwrap();
    for (origin, why) in [
        ("https://shop.example.com/", "no trailing slash"),
        ("https://shop.example.com/shop", "path"),
        ("https://shop.example.com?a=1", "query"),
        ("https://shop.example.com:99999", "invalid port"),
        ("https://shop.example.com:0", "invalid port"),
        ("https://shop.example.com:", "invalid port"),
        ("https://shop.example.com:443", "default port"),
        ("https://Shop.Example.com", "lower case"),
        ("HTTPS://shop.example.com", "lower case"),
        ("https://user@shop.example.com", "user info"),
        ("shop.example.com", "https://"),
        ("https://shop_example.com", "not a host name"),
    ] {
        let err = serve(&["--db", db, "--cors", origin]).refused(origin);
        assert!(
            err.contains(why) && err.contains("scheme://host[:port]"),
            "{origin}: {err}"
        );
    }
    // The same rule for a folder of the config file.
    let cfg = d.path().join("v.toml");
    std::fs::write(
        &cfg,
        "[[folder]]\nname = \"acme\"\naid = \"acme\"\ncors = \"https://shop.example.com/\"\n",
    )
    .unwrap();
    let err = serve(&["--db", db, "--config", cfg.to_str().unwrap()]).refused("config");
    assert!(err.contains("no trailing slash"), "{err}");
    for origin in [
        "https://shop.example.com",
        "https://shop.example.com:8443",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "https://xn--bcher-kva.example",
        "*",
        "none",
    ] {
        serve(&["--db", db, "--cors", origin]).started(origin, |_| {});
    }
}

#[test]
fn serve_refuses_associate_data_for_a_tag_outside_its_batch() {
    let d = tempfile::tempdir().unwrap();
    let (keys, cuids) = csv_batch(d.path());
    let db = d.path().join("v.db");
    let db = db.to_str().unwrap();
    let both = format!("{keys},{cuids}");
    let err = serve(&["--db", db, "--batch", &both]).refused("cuids.csv");
    assert!(
        err.contains("cuids.csv line 3")
            && err.contains("nosuch1")
            && err.contains("within that Batch"),
        "{err}"
    );
    // Nothing was imported: the database serves no tag.
    let lines = serve(&["--db", db]).started("empty", |base| {
        assert_eq!(
            get_v1t(base, "x=nosuch1"),
            r#"{"xuid":"nosuch1","error":"xuid_not_found"}"#
        );
    });
    assert!(lines[0].contains(" 0 tags"), "{lines:?}");
    // A batch of plain tag codes (no keys) is its own list: a standard batch serves it.
    serve(&["--db", db, "--batch", &cuids, "--kind", "standard"]).started("standard", |base| {
        assert_eq!(
            get_v1t(base, "x=nosuch1"),
            r#"{"xuid":"nosuch1","response":"Found"}"#
        );
    });
}

#[test]
fn a_flaky_reader_reports_its_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let tags = format!(
        "sim:{}?drop=0.1&remove=0.02&seed=5",
        tmp.path().join("tags").display()
    );
    let o = out.to_str().unwrap();
    let (code, stdout, err) = tag424(&[
        "batch",
        "--reader",
        &tags,
        "--generate-xuids",
        "6",
        "--out",
        o,
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let retries = events.iter().filter(|e| e["event"] == "retry").count();
    assert!(retries > 0, "{stdout}");
    batchhelp::assert_tag_left_before_each_tear_off_retry(&events);
    assert!(events
        .iter()
        .filter(|e| e["event"] == "retry")
        .all(|e| e["retry"].as_u64().unwrap() >= 1 && e["error"].is_string()));
    let summary = &events.last().unwrap()["summary"];
    assert_eq!(summary["encoded"], 6, "{stdout}");
    assert_eq!(summary["retries"], retries, "{stdout}");
    assert!(summary["retried_tags"].as_u64().unwrap() >= 1);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["summary"]["retries"], retries);
    // In words: the retries and the tags they were on.
    let more = format!("sim:{}?drop=0.2&seed=1", tmp.path().join("more").display());
    let out2 = tmp.path().join("out2");
    let (code, words, err) = tag424(&[
        "batch",
        "--reader",
        &more,
        "--generate-xuids",
        "3",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{words}{err}");
    let all = format!("{words}{err}");
    assert!(all.contains("Retry 1 of at most 30 after:"), "{all}");
    assert!(
        all.contains("resumed from the journal and the tag's state"),
        "{all}"
    );
}

// ---- tag424 identify and info: which batch a tap or a tag belongs to -------------------

/// A simulated batch of `n` generated codes in `dir/out`, tags in `dir/sim`, with `extra`
/// options; returns (code, UID) per tag from associate.csv.
fn sim_batch(
    dir: &std::path::Path,
    out: &str,
    sim: &str,
    n: usize,
    extra: &[&str],
) -> Vec<(String, String)> {
    let o = dir.join(out);
    let reader = format!("sim:{}", dir.join(sim).display());
    let n = n.to_string();
    let mut args = vec!["batch", "--reader", &reader, "--generate-xuids", &n];
    args.extend_from_slice(&["--out", o.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let (code, _, err) = tag424(&args);
    assert_eq!(code, 0, "{err}");
    std::fs::read_to_string(o.join("associate.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (x, u) = l.split_once(',').unwrap();
            (x.to_string(), u.to_string())
        })
        .collect()
}

fn sim_tap(dir: &std::path::Path, sim: &str, xuid: &str) -> String {
    let s = dir.join(sim);
    let (code, out, err) = tag424(&["sim", "tap", "--dir", s.to_str().unwrap(), xuid]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

fn identify(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut a = vec!["identify", "--json"];
    a.extend_from_slice(args);
    let (code, out, err) = tag424(&a);
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, v["identified"].clone(), err)
}

#[test]
fn identify_names_the_batch_and_tag_of_a_tap_and_tells_genuine_forged_unknown() {
    let d = tempfile::tempdir().unwrap();
    let b1 = d.path().join("b1");
    let b2 = d.path().join("b2");
    let (b1, b2) = (b1.to_str().unwrap(), b2.to_str().unwrap());
    sim_batch(d.path(), "b1", "tags1", 3, &[]);
    let tags2 = sim_batch(d.path(), "b2", "tags2", 3, &[]);
    let (xuid, uid) = &tags2[1];
    let url = sim_tap(d.path(), "tags2", xuid);
    // Genuine, in the second folder given.
    let (code, v, err) = identify(&["--out", b1, "--out", b2, &url]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["verdict"], "genuine");
    assert_eq!(v["batch"], b2);
    assert_eq!(v["xuid"], xuid.as_str());
    assert_eq!(v["uid"], uid.as_str());
    assert_eq!(v["replay_checked"], false);
    // The text says the batch, the tag and that keys are the journal's.
    let (code, out, _) = tag424(&["identify", "--out", b1, "--out", b2, &url]);
    assert_eq!(code, 0);
    assert!(out.starts_with("GENUINE"), "{out}");
    assert!(
        out.contains(&format!("batch    {b2}")) && out.contains(xuid.as_str()),
        "{out}"
    );
    assert!(out.contains("checked offline"), "{out}");
    // Forged: one MAC digit changed.
    let i = url.rfind("e=").unwrap() + 2;
    let mut forged = url.clone();
    let c = if &url[i..i + 1] == "0" { "1" } else { "0" };
    forged.replace_range(i..i + 1, c);
    let (code, v, _) = identify(&["--out", b1, "--out", b2, &forged]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "forged");
    assert_eq!(v["batch"], b2);
    // Unknown: the tap of a batch that is not given.
    let (code, v, _) = identify(&["--out", b1, &url]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "unknown");
    assert_eq!(v["batch"], serde_json::Value::Null);
    // Bad input: a URL of another template, a folder that is no batch.
    let (code, _, err) = identify(&["--out", b1, "https://elsewhere.example/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--url TEMPLATE"), "{err}");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = identify(&["--out", empty.to_str().unwrap(), &url]);
    assert_eq!(code, 2);
    assert!(err.contains("not a batch folder"), "{err}");
}

#[test]
fn identify_finds_a_tap_by_its_encrypted_picc_data_alone() {
    let d = tempfile::tempdir().unwrap();
    let template = "https://example.com/a?p={picc}&c={mac}";
    sim_batch(d.path(), "plain", "tags1", 2, &[]);
    let tags = sim_batch(d.path(), "picc", "tags2", 3, &["--url", template]);
    let (xuid, uid) = &tags[2];
    let url = sim_tap(d.path(), "tags2", uid); // by UID: its code is not in this template
    assert!(
        !url.contains(xuid.as_str()) && !url.contains(uid.as_str()),
        "{url}"
    );
    let plain = d.path().join("plain");
    let picc = d.path().join("picc");
    let (code, v, err) = identify(&[
        "--out",
        plain.to_str().unwrap(),
        "--out",
        picc.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["verdict"], "genuine");
    assert_eq!(v["xuid"], xuid.as_str());
    assert_eq!(v["uid"], uid.as_str());
}

#[test]
fn identify_says_replayed_after_a_reset_and_against_the_verifiers_counters() {
    let d = tempfile::tempdir().unwrap();
    let tags = sim_batch(d.path(), "b", "tags", 2, &[]);
    let b = d.path().join("b");
    let b = b.to_str().unwrap();
    let (xuid, uid) = &tags[0];
    let first = sim_tap(d.path(), "tags", xuid);
    let second = sim_tap(d.path(), "tags", xuid);
    // The verifier sees the first tap.
    let db = d.path().join("v.db");
    let db = db.to_str().unwrap();
    let query = first.split_once('?').unwrap().1.to_string();
    serve(&["--db", db, "--batch", b, "--no-token"]).started("serve", |base| {
        let answer = get_v1t(base, &query);
        assert!(
            answer.contains("Pass") || answer.contains("pass"),
            "{answer}"
        );
    });
    let (code, v, err) = identify(&["--out", b, "--db", db, &first]);
    assert_eq!(code, 1, "{v} {err}");
    assert_eq!(v["verdict"], "replayed");
    assert_eq!(v["replay_checked"], true);
    let (code, v, _) = identify(&["--out", b, "--db", db, &second]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "genuine");
    assert_eq!(v["replay_checked"], true);
    // Offline, after the tag was reset: its old taps are from before the reset.
    let reader = format!("sim:{}", d.path().join("tags").display());
    let (code, _, err) = tag424(&["reset", "--reader", &reader, "--uid", uid, "--out", b]);
    assert_eq!(code, 0, "{err}");
    let (code, v, _) = identify(&["--out", b, &second]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "replayed");
    assert_eq!(v["replay_checked"], false);
}

#[test]
fn info_says_which_journal_holds_the_keys_without_authenticating() {
    let d = tempfile::tempdir().unwrap();
    let tags = sim_batch(d.path(), "b", "tags", 2, &[]);
    let (xuid, uid) = &tags[1];
    let b = d.path().join("b");
    let other = d.path().join("other");
    sim_batch(d.path(), "other", "tags-other", 1, &[]);
    let reader = format!("sim:{}", d.path().join("tags").display());
    let trace = d.path().join("trace.txt");
    let (code, out, err) = tag424(&[
        "info",
        "--reader",
        &reader,
        "--uid",
        uid,
        "--out",
        other.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "keys          journaled (batch {}, tag {xuid})",
            b.display()
        )),
        "{out}"
    );
    // No authentication: no AuthenticateEV2First (71), NonFirst (77) or Part 2 (AF after them).
    let t = std::fs::read_to_string(&trace).unwrap();
    let sent: Vec<&str> = t
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .filter(|l| l.starts_with("> "))
        .collect();
    assert!(sent.len() >= 10, "{t}");
    for l in &sent {
        assert!(
            !l.starts_with("> 90 71") && !l.starts_with("> 90 77"),
            "authenticated: {l}\n{t}"
        );
    }
    // No journal given: the changed keys are unknown; a factory tag says factory.
    let (code, out, _) = tag424(&["info", "--reader", &reader, "--uid", uid]);
    assert_eq!(code, 0);
    assert!(out.contains("keys          unknown"), "{out}");
    let fresh = d.path().join("fresh");
    let (code, _, err) = tag424(&["sim", "new", "--dir", fresh.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let reader = format!("sim:{}", fresh.display());
    let (code, out, err) = tag424(&["info", "--reader", &reader, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["keys"]["state"], "factory", "{v}");
}

#[test]
fn a_refused_tag_gets_one_authentication_per_run_and_the_delay_is_explained() {
    let d = tempfile::tempdir().unwrap();
    let tags = sim_batch(d.path(), "b", "tags", 1, &[]);
    let uid = &tags[0].1;
    let reader = format!("sim:{}", d.path().join("tags").display());
    // The tag belongs to batch b; encoding it under other folders is refused after one
    // authentication each, until the simulated chip imposes its delay (91AD).
    let mut delayed = None;
    for i in 0..5 {
        let out = d.path().join(format!("other{i}"));
        let trace = d.path().join(format!("trace{i}"));
        let (code, _, err) = tag424(&[
            "encode",
            "--reader",
            &reader,
            "--uid",
            uid,
            "--xuid",
            &format!("code{i}"),
            "--out",
            out.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{err}");
        let t = std::fs::read_to_string(&trace).unwrap();
        let auths = t
            .lines()
            .filter(|l| l.trim_start_matches("# ").starts_with("> 90 71"))
            .count();
        assert_eq!(auths, 1, "run {i}: {t}");
        assert!(err.contains("help: "), "{err}");
        if err.contains("answered 91AD") {
            assert!(
                err.contains("counts failed authentications")
                    && err.contains("present the tag again"),
                "{err}"
            );
            delayed = Some(i);
            break;
        }
        assert!(err.contains("tries no other"), "{err}");
    }
    assert!(delayed.is_some(), "the simulated chip never answered 91AD");
}
