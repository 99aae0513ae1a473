//! Keys encrypted at rest (`batch --encrypt-to`): files tag424 seals open with the `age` tool
//! and back; a batch with a torn tag, finished with `--identity`; no key in clear anywhere in
//! the folder; `age -d` of keys.csv.age gives what `tag424 export --identity` writes; the
//! verifier imports the batch with the identity only. Uses the distribution's `age` tool:
//! without it the test says "skipped"; under CI=true it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod run;

use tag424::card::Card;
use tag424::provision::journal::{JournalError, KeyAccess};
use tag424::provision::sealed::{Identity, Recipients};
use tag424::provision::{encode_tag, EncodeOptions, Journal};
use tag424::sim::dir::SimDir;
use tag424::sim::{Fault, FaultKind, SimChip, SimTransport};
use tag424::sun::Template;
use tag424::verifier::import::read_batch_sources;

fn age_tool() -> bool {
    let found = Command::new("age").arg("--version").output().is_ok()
        && Command::new("age-keygen").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "the age tool is missing under CI=true: install the distribution's `age` package"
        );
        eprintln!("skipped: the age tool is not installed (apt install age)");
    }
    found
}

/// `age-keygen -o DIR/NAME`: the identity file and its recipient.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

/// `age -d -i IDENTITY FILE`: the plain bytes (the command must succeed).
fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tag424(args: &[&str]) -> Output {
    run::tag424().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, recursively, as bytes with its path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_encrypted_batch_keeps_no_key_in_clear_and_recovers_with_the_identity() {
    if !age_tool() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (id_path, recipient) = keygen(tmp.path(), "identity.txt");
    let (other_id, _) = keygen(tmp.path(), "other.txt");
    let out = tmp.path().join("batch");
    let tags = tmp.path().join("tags");
    let (o, t) = (out.to_str().unwrap(), tags.to_str().unwrap());
    let codes = tmp.path().join("codes.txt");
    std::fs::write(&codes, "enc00001\nenc00002\nenc00003\nenc00004\nenc00005\n").unwrap();

    // A tag pulled from the reader after its keys were planned (and some changed): the
    // journal holds its keys sealed, the chip is left half-done in the simulated stack.
    {
        let access = KeyAccess {
            encrypt_to: Some(Recipients::parse(std::slice::from_ref(&recipient)).unwrap()),
            identity: None,
        };
        let mut journal = Journal::open_with(&out, &access).unwrap();
        let sim = SimDir::open(&tags).unwrap();
        let chip = SimChip::new(sim.new_tag().unwrap());
        let mut card = Card::new(SimTransport::new(chip).with_fault(Fault {
            at: 11,
            kind: FaultKind::AfterApply,
        }));
        let opts = EncodeOptions {
            lifecycle: Default::default(),
            template: Template::default(),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        };
        let e = encode_tag(
            &mut card,
            &mut journal,
            &opts,
            &mut |_| Some("enc00001".to_string()),
            &mut |_| {},
        )
        .expect_err("the tag left the field");
        assert!(e.is_tear_off(), "{e}");
        sim.save(&card.into_transport().chip.state).unwrap();
    }
    let journal_text = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(
        journal_text.contains(r#""event":"sealed""#),
        "{journal_text}"
    );
    assert!(journal_text.contains(r#""keys":{"age":"#), "{journal_text}");

    let batch = [
        "batch",
        "--reader",
        &format!("sim:{t}"),
        "--xuids",
        codes.to_str().unwrap(),
        "--no-header",
        "--out",
        o,
    ];
    // Without the identity the folder is refused, naming the fix; nothing is written.
    let before = std::fs::read(out.join("journal.jsonl")).unwrap();
    let r = tag424(&batch);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("--identity"), "{}", text(&r));
    assert_eq!(std::fs::read(out.join("journal.jsonl")).unwrap(), before);
    // The wrong identity and other recipients are refused too.
    let id_s = id_path.to_str().unwrap();
    let r = tag424(&[&batch[..], &["--identity", other_id.to_str().unwrap()]].concat());
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("other recipients"), "{}", text(&r));
    let (_, stranger) = keygen(tmp.path(), "stranger.txt");
    let r = tag424(&[&batch[..], &["--identity", id_s, "--encrypt-to", &stranger]].concat());
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let r = tag424(
        &[
            &batch[..],
            &["--identity", id_s, "--trace", "/dev/null", "--trace-keys"],
        ]
        .concat(),
    );
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("--trace-keys"), "{}", text(&r));

    // --trace-keys on a new encrypted batch is refused before the folder is made.
    let fresh = tmp.path().join("fresh");
    let sim = format!("sim:{t}");
    let new_batch = [
        "batch",
        "--reader",
        &sim,
        "--generate-xuids",
        "1",
        "--out",
        fresh.to_str().unwrap(),
        "--encrypt-to",
        &recipient,
    ];
    let r = tag424(
        &[
            &new_batch[..],
            &[
                "--trace",
                tmp.path().join("trace.jsonl").to_str().unwrap(),
                "--trace-keys",
            ],
        ]
        .concat(),
    );
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(!fresh.join("journal.jsonl").exists());
    // An identity that does not open what the batch seals is refused before any tag.
    let r = tag424(&[&new_batch[..], &["--identity", other_id.to_str().unwrap()]].concat());
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("other recipients"), "{}", text(&r));

    // With it, the torn tag is finished and four more are encoded (the folder's recipient,
    // given twice, is the same set).
    let r = tag424(
        &[
            &batch[..],
            &["--identity", id_s, "--count", "5"],
            &["--encrypt-to", &recipient, "--encrypt-to", &recipient],
        ]
        .concat(),
    );
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("keys.csv.age has 5 rows"), "{}", text(&r));
    assert!(!out.join("keys.csv").exists());

    // Every key of every tag, read back with the identity: none is on disk in clear.
    let identity = Identity::load(&id_path).unwrap();
    let j = Journal::read_only_with(&out, Some(&identity)).unwrap();
    let done: Vec<_> = j.tags().filter(|t| t.verified).collect();
    assert_eq!(done.len(), 5);
    assert!(done.iter().any(|t| t.xuid == "enc00001"));
    let on_disk = files(&out);
    for t in &done {
        for k in t.keys().unwrap().0.iter() {
            let hex = k.to_hex().to_string();
            for (path, bytes) in &on_disk {
                for form in [hex.clone(), hex.to_ascii_lowercase()] {
                    assert!(!contains(bytes, &form), "{} holds a key", path.display());
                }
            }
        }
    }
    // A journal record's sealed keys are an age file too: the five keys as JSON.
    let line = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let age_b64 = line
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v["keys"]["age"].as_str()?.to_string())
        })
        .unwrap();
    use base64::Engine;
    let record = tmp.path().join("record.age");
    std::fs::write(
        &record,
        base64::engine::general_purpose::STANDARD
            .decode(age_b64)
            .unwrap(),
    )
    .unwrap();
    let five: Vec<String> = serde_json::from_slice(&age_decrypt(&id_path, &record)).unwrap();
    assert_eq!(five.len(), 5);
    assert!(done
        .iter()
        .any(|t| *t.keys().unwrap().0[1].to_hex() == five[1]));

    // Read without the identity, the journal lists the tags but gives no key.
    let sealed = Journal::read_only(&out).unwrap();
    let first = sealed.tags().next().unwrap();
    assert!(matches!(first.keys(), Err(JournalError::KeysSealed { .. })));
    // `journal check` says the batch is encrypted.
    let r = tag424(&["journal", "check", "--out", o]);
    assert!(text(&r).contains(&recipient), "{}", text(&r));

    // age -d gives exactly what `tag424 export --identity` writes.
    let dec = age_decrypt(&id_path, &out.join("keys.csv.age"));
    let r = tag424(&["export", "--out", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let r = tag424(&["export", "--out", o, "--identity", id_s]);
    assert!(r.status.success(), "{}", text(&r));
    let plain = std::fs::read(out.join("keys.csv")).unwrap();
    assert_eq!(dec, plain);
    assert_eq!(String::from_utf8_lossy(&plain).lines().count(), 6);
    // Elsewhere, or printed; every key file owner-only.
    let usb = tmp.path().join("usb-keys.csv");
    let r = tag424(&[
        "export",
        "--out",
        o,
        "--identity",
        id_s,
        "--to",
        usb.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(std::fs::read(&usb).unwrap(), dec);
    let r = tag424(&["export", "--out", o, "--identity", id_s, "--to", "-"]);
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(r.stdout, dec);
    for f in [out.join("keys.csv"), out.join("keys.csv.age"), usb] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    // While a run holds the folder, export is refused (it would write an older export).
    {
        let _held = tag424::provision::lock::lock_folder(&out).unwrap();
        let r = tag424(&["export", "--out", o, "--identity", id_s]);
        assert_eq!(r.status.code(), Some(2), "{}", text(&r));
        assert!(text(&r).contains("in use"), "{}", text(&r));
    }

    // The verifier imports the batch with the identity, not without (the plain keys.csv
    // beside the journal does not stand in for it).
    let e = read_batch_sources(std::slice::from_ref(&out), None).unwrap_err();
    assert!(e.to_string().contains("--identity"), "{e}");
    let read = read_batch_sources(std::slice::from_ref(&out), Some(&identity)).unwrap();
    assert_eq!(read.tags.len(), 5);
    for t in &read.tags {
        let entry = done.iter().find(|d| d.xuid == t.xuid).unwrap();
        let keys = entry.keys().unwrap();
        assert!(t.key.as_ref() == Some(keys.sdm_file_read()));
        assert!(t.meta_key.as_ref() == Some(keys.sdm_meta_read()));
        assert_eq!(t.read_ctr, entry.read_ctr);
    }

    // A test tag returned to factory: the reset needs the identity (it changes the tag's keys
    // from the journaled ones), and its row leaves keys.csv.age.
    let uid = done
        .iter()
        .find(|d| d.xuid == "enc00002")
        .unwrap()
        .uid
        .clone();
    let reset = [
        "reset",
        "--reader",
        &format!("sim:{t}"),
        "--uid",
        &uid,
        "--out",
        o,
    ];
    let r = tag424(&reset);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    let r = tag424(&[&reset[..], &["--identity", id_s]].concat());
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("left keys.csv.age"), "{}", text(&r));
    let csv = String::from_utf8(age_decrypt(&id_path, &out.join("keys.csv.age"))).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(!csv.contains("enc00002"), "{csv}");
    // The exported plain keys.csv was stale (it lists enc00002): the reset removed it, and
    // the verifier serves the four tags the journal has.
    assert!(!out.join("keys.csv").exists());
    let read = read_batch_sources(std::slice::from_ref(&out), Some(&identity)).unwrap();
    assert_eq!(read.tags.len(), 4);
}

#[test]
fn a_folder_with_keys_in_clear_is_not_encrypted_later() {
    if !age_tool() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipient) = keygen(tmp.path(), "identity.txt");
    let out = tmp.path().join("batch");
    let (o, t) = (
        out.to_str().unwrap().to_string(),
        format!("sim:{}", tmp.path().join("tags").display()),
    );
    let r = tag424(&[
        "batch",
        "--reader",
        &t,
        "--generate-xuids",
        "2",
        "--out",
        &o,
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let r = tag424(&[
        "batch",
        "--reader",
        &t,
        "--generate-xuids",
        "2",
        "--add-codes",
        "--out",
        &o,
        "--encrypt-to",
        &recipient,
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("in clear"), "{}", text(&r));
    assert!(text(&r).contains("new --out"), "{}", text(&r));
}

#[test]
fn several_readers_seal_into_one_encrypted_batch() {
    if !age_tool() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (id_path, recipient) = keygen(tmp.path(), "identity.txt");
    let out = tmp.path().join("batch");
    let readers: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|r| format!("sim:{}", tmp.path().join(r).display()))
        .collect();
    let mut args = vec!["batch", "--generate-xuids", "9", "--json"];
    for r in &readers {
        args.extend(["--reader", r.as_str()]);
    }
    args.extend(["--out", out.to_str().unwrap(), "--encrypt-to", &recipient]);
    let r = tag424(&args);
    assert!(r.status.success(), "{}", text(&r));
    let csv = String::from_utf8(age_decrypt(&id_path, &out.join("keys.csv.age"))).unwrap();
    assert_eq!(csv.lines().count(), 10, "{csv}");
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    for row in csv.lines().skip(1) {
        let key = row.split(',').nth(1).unwrap();
        assert!(!journal.contains(key) && !journal.contains(&key.to_ascii_lowercase()));
    }
}

#[test]
fn sealed_files_open_with_the_age_tool_and_back() {
    if !age_tool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(dir.path(), "identity.txt");
    assert!(recipient.starts_with("age1"), "{recipient}");
    let plain = b"XUID,KEY\nq8w3sbcz,00112233445566778899AABBCCDDEEFF\n";

    // tag424 seals, age opens.
    let sealed = Recipients::parse(std::slice::from_ref(&recipient))
        .unwrap()
        .seal(plain)
        .unwrap();
    let file = dir.path().join("keys.csv.age");
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(age_decrypt(&identity, &file), plain);

    // age seals, tag424 opens.
    let by_age = dir.path().join("by-age.age");
    let mut child = Command::new("age")
        .arg("-r")
        .arg(&recipient)
        .arg("-o")
        .arg(&by_age)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), plain).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let id = Identity::load(&identity).unwrap();
    assert_eq!(
        &id.open(&std::fs::read(&by_age).unwrap()).unwrap()[..],
        plain
    );
}

#[test]
fn identify_opens_an_encrypted_batch_with_its_identity_only() {
    if !age_tool() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(d.path(), "line1.identity");
    let b = d.path().join("b");
    let tags = d.path().join("tags");
    let plain = d.path().join("plain");
    let b = b.to_str().unwrap();
    let reader = format!("sim:{}", tags.display());
    let o = tag424(&[
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "2",
        "--out",
        b,
        "--encrypt-to",
        &recipient,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // A second, unencrypted batch with a {picc} template.
    let picc_tags = d.path().join("picc-tags");
    let o = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", picc_tags.display()),
        "--generate-xuids",
        "1",
        "--out",
        plain.to_str().unwrap(),
        "--url",
        "https://example.com/a?p={picc}&c={mac}",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let assoc = std::fs::read_to_string(d.path().join("b/associate.csv")).unwrap();
    let xuid = assoc
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let o = tag424(&["sim", "tap", "--dir", tags.to_str().unwrap(), &xuid]);
    assert!(o.status.success(), "{}", text(&o));
    let url = String::from_utf8(o.stdout).unwrap().trim().to_string();
    // Without the identity: bad input that names the fix.
    let o = tag424(&["identify", "--out", b, &url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--identity"), "{}", text(&o));
    // With it: genuine, in batch b.
    let o = tag424(&[
        "identify",
        "--out",
        b,
        "--identity",
        identity.to_str().unwrap(),
        "--json",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identified"]["xuid"], xuid.as_str());
    assert_eq!(v["identified"]["verdict"], "genuine");
    // A {picc} tap of another batch, searched without the identity: the encrypted batch is
    // skipped and said so, the tap found in its own batch.
    let o = tag424(&["sim", "tap", "--dir", picc_tags.to_str().unwrap(), &{
        let a = std::fs::read_to_string(plain.join("associate.csv")).unwrap();
        a.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .to_string()
    }]);
    let picc_url = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let o = tag424(&[
        "identify",
        "--url",
        "https://example.com/a?p={picc}&c={mac}",
        "--out",
        b,
        "--json",
        &picc_url,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identified"]["verdict"], "unknown");
    assert!(
        v["identified"]["skipped"][0]["why"]
            .as_str()
            .unwrap()
            .contains("--identity"),
        "{v}"
    );
    let o = tag424(&[
        "identify",
        "--out",
        b,
        "--out",
        plain.to_str().unwrap(),
        "--json",
        &picc_url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
