//! Issue 21, the chip's lifecycle options on the simulator: `batch --random-uid` (Random ID,
//! SetConfiguration 00/02, NT4H2421Gx §10.5.1) and `--read-counter-limit N`
//! (SDMReadCtrLimit, §9.3.2). Taps verify and the verifier finds a Random ID tag by its real
//! UID; a tag pulled at any step of the Random ID flow is found again and finished with the
//! journal's keys and no failed authentication; at its limit the chip refuses reads and the
//! verifier tells a copy of the last read from a forgery; the options are per batch.

mod batchhelp;
mod run;
mod vhelp;

use std::path::Path;

use tag424::card::Card;
use tag424::provision::lifecycle::Lifecycle;
use tag424::provision::{encode_tag, EncodeOptions, Journal};
use tag424::sim::{ChipState, FaultKind, SimChip, SimTransport};
use tag424::sun::Template;
use vhelp::*;

/// (xuid, uid) of each row of the batch's associate.csv.
fn associated(out: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(out.join("associate.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (f.next().unwrap().to_string(), f.next().unwrap().to_string())
        })
        .collect()
}

/// The UIDs the simulator holds (the chips' real UIDs).
fn sim_uids(tags: &Path) -> Vec<String> {
    let mut v: Vec<String> = tag424::sim::dir::SimDir::open(tags)
        .unwrap()
        .list()
        .unwrap()
        .iter()
        .map(|s| hex::encode_upper(s.uid))
        .collect();
    v.sort();
    v
}

/// `tag424 info --json` of the simulated tag `uid`: the ID its reader reports (`FF CA`).
fn reader_id(tags: &Path, uid: &str) -> String {
    let out = run(&[
        "info",
        "--reader",
        &format!("sim:{}", tags.display()),
        "--uid",
        uid,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["reader_uid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_uid_batch_taps_verify_and_the_verifier_finds_the_real_uid() {
    for template in [
        // Encrypted PICCData: the verifier finds the tag by the real UID inside it.
        "https://v.example/a?p={picc}&c={mac}",
        // The platform's u= form: the UID in clear (the real one, from the chip's mirror).
        "https://v.example/a?uid={uid}&ctr={ctr}&cmac={mac}",
    ] {
        let d = tempfile::tempdir().unwrap();
        let (tags, out) = (d.path().join("tags"), d.path().join("out"));
        run(&[
            "sim",
            "new",
            "--count",
            "3",
            "--dir",
            tags.to_str().unwrap(),
        ]);
        encode_batch(
            &tags,
            3,
            &out,
            &["--url", template, "--random-uid", "--yes-irreversible"],
        );
        // associate.csv holds the chips' real UIDs.
        let rows = associated(&out);
        let mut uids: Vec<String> = rows.iter().map(|(_, u)| u.clone()).collect();
        uids.sort();
        assert_eq!(uids, sim_uids(&tags), "{template}");
        // Every chip has Random ID on; its reader sees a new 08xxxxxx ID per activation.
        for (_, uid) in &rows {
            let (a, b) = (reader_id(&tags, uid), reader_id(&tags, uid));
            assert_eq!(a.len(), 8, "a 4-byte random ID: {a}");
            assert!(a.starts_with("08") && b.starts_with("08"), "{a} {b}");
            assert_ne!(a, b, "a new random ID per activation");
            assert_ne!(&a, uid);
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["lifecycle"]["random_uid"], true);
        // The one list of irreversible options (provision::irreversible) records it.
        assert_eq!(
            summary["summary"]["irreversible"],
            serde_json::json!(["random-uid"])
        );
        let cat = batch_catalog(&out);
        let c = client();
        for be in backends() {
            let s = be.start_default(&cat);
            for (xuid, uid) in &rows {
                let first = tap(&tags, uid);
                if template.contains("{uid}") {
                    assert!(
                        first.contains(&format!("uid={uid}")),
                        "the real UID: {first}"
                    );
                }
                let pass = format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#);
                assert_eq!(t(&c, &s.base, &first).await, pass, "{template} {uid}");
                let fail = format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#);
                assert_eq!(t(&c, &s.base, &first).await, fail, "{uid}: replay");
            }
            s.stop().await;
        }
    }
}

fn random_uid_opts(template: &str) -> EncodeOptions {
    EncodeOptions {
        lifecycle: Lifecycle {
            random_uid: true,
            read_ctr_limit: None,
            failed_auth: None,
        },
        template: Template::parse(template).unwrap(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    }
}

/// The Random ID flow is 16 exchanges; a pull before or after any of them leaves a tag that
/// is found again (by GetVersion's UID, by GetCardUID after the factory key, or by its SUN
/// message) and finished: its keys are the journal's, the journal knows it by its real UID,
/// Random ID is on, and no authentication failed on the chip.
#[test]
fn a_random_uid_tag_pulled_at_any_step_is_found_and_finished() {
    for template in [
        "https://v.example/a?x={xuid}&n={ctr}&e={mac}",
        "https://v.example/a?p={picc}&c={mac}",
    ] {
        let opts = random_uid_opts(template);
        for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
            for at in 0..17 {
                let tmp = tempfile::tempdir().unwrap();
                let mut journal = Journal::open(tmp.path()).unwrap();
                let xuids = ["tagaaaaa".to_string(), "tagbbbbb".to_string()];
                let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
                let uid = [0x04, 0x10, 0x20, 0x30, 0x40, 0x50, at as u8];
                let t = batchhelp::torn_encode(&mut journal, &opts, &mut next, uid, (at, kind), 16);
                let (mut card, entry) =
                    batchhelp::finish_torn(t, &mut journal, &opts, &mut next, (at, kind), 2);
                let chip = &card.transport().chip;
                assert_eq!(entry.uid, hex::encode_upper(uid), "{kind:?} at {at}");
                assert!(entry.verified && entry.random_id, "{kind:?} at {at}");
                assert!(chip.state.random_id, "{kind:?} at {at}: Random ID on");
                assert_eq!(
                    chip.state.failed_auths, 0,
                    "{kind:?} at {at}: no key tried in vain"
                );
                for k in 0..5u8 {
                    assert_eq!(
                        &chip.state.keys[k as usize],
                        entry.keys().unwrap().get(k).unwrap(),
                        "{kind:?} at {at}: key {k} not as journaled"
                    );
                }
                assert_eq!(
                    journal.tags().count(),
                    1,
                    "{kind:?} at {at}: one tag, one code"
                );
            }
        }
    }
}

/// A tag showing a random ID whose key 0 is changed but which is none of this journal's tags
/// is refused without a single authentication.
#[test]
fn an_unknown_random_id_tag_is_refused_without_trying_a_key() {
    let opts = random_uid_opts("https://v.example/a?x={xuid}&n={ctr}&e={mac}");
    let tmp = tempfile::tempdir().unwrap();
    let xuids = ["tagaaaaa".to_string()];
    // Encoded in one batch folder…
    let mut first = Journal::open(&tmp.path().join("one")).unwrap();
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    encode_tag(&mut card, &mut first, &opts, &mut next, &mut |_| {}).unwrap();
    // …presented to another.
    let mut t = card.into_transport();
    t.reinsert();
    let mut other = Journal::open(&tmp.path().join("two")).unwrap();
    let (mut card, auths) = batchhelp::counting_card(t);
    let e = encode_tag(&mut card, &mut other, &opts, &mut next, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, tag424::provision::ProvisionError::RandomIdUnknown),
        "{e}"
    );
    assert_eq!(*auths.lock().unwrap(), 0);
    assert_eq!(card.transport().chip.state.failed_auths, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_read_limit_the_tag_refuses_reads_and_the_verifier_says_so() {
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = (d.path().join("tags"), d.path().join("out"));
    run(&[
        "sim",
        "new",
        "--count",
        "1",
        "--dir",
        tags.to_str().unwrap(),
    ]);
    // Read 1 is the encoding's read-back; phones get reads 2 and 3.
    encode_batch(&tags, 1, &out, &["--read-counter-limit", "3"]);
    let (xuid, uid) = associated(&out).remove(0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["lifecycle"]["read_ctr_limit"], 3);
    assert_eq!(summary["summary"]["irreversible"], serde_json::json!([]));
    let two = tap(&tags, &uid);
    let three = tap(&tags, &uid);
    assert!(three.contains("n=000003"), "{three}");
    // §9.3.2: SDMReadCtr equals SDMReadCtrLimit: the chip refuses the read (ISOReadBinary
    // 6982), nothing is mirrored and the counter stays.
    let (code, _, stderr) =
        run::output(run::tag424().args(["sim", "tap", "--dir", tags.to_str().unwrap(), &uid]));
    assert_ne!(code, 0);
    assert!(stderr.contains("6982"), "{stderr}");
    let cat = batch_catalog(&out);
    assert_eq!(cat.folders[0].groups[0].batches[0].read_ctr_limit, Some(3));
    let c = client();
    for be in backends() {
        let s = be.start_default(&cat);
        let pass = format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#);
        let fail = format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#);
        let at_limit = format!(r#"{{"xuid":"{xuid}","response":"Fail","read_limit":"reached"}}"#);
        assert_eq!(t(&c, &s.base, &two).await, pass);
        // The last read passes; the page says it was the last.
        let p = page(&c, &s.base, &three).await;
        assert!(p.text.contains(r#"data-verdict="authentic""#), "{}", p.text);
        assert!(p.text.contains("last read"), "{}", p.text);
        // A copy of it: the API and the page say "limit reached", not "forged".
        assert_eq!(t(&c, &s.base, &three).await, at_limit);
        let p = page(&c, &s.base, &three).await;
        assert!(
            p.text.contains(r#"data-verdict="already-checked""#),
            "{}",
            p.text
        );
        assert!(p.text.contains("reached its read limit"), "{}", p.text);
        // A forgery (its MAC altered) and an older copy are not "limit reached".
        assert_eq!(t(&c, &s.base, &altered(&three)).await, fail);
        let p = page(&c, &s.base, &altered(&three)).await;
        assert!(
            p.text.contains(r#"data-verdict="not-authentic""#),
            "{}",
            p.text
        );
        assert!(!p.text.contains("read limit"), "{}", p.text);
        assert_eq!(t(&c, &s.base, &two).await, fail);
        s.stop().await;
    }
}

#[test]
fn a_resumed_batch_keeps_its_lifecycle_options() {
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = (d.path().join("tags"), d.path().join("out"));
    run(&[
        "sim",
        "new",
        "--count",
        "2",
        "--dir",
        tags.to_str().unwrap(),
    ]);
    let reader = format!("sim:{}", tags.display());
    let batch = |extra: &[&str]| {
        let mut a = vec![
            "batch",
            "--reader",
            &reader,
            "--generate-xuids",
            "2",
            "--count",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        // Consent to --random-uid without a terminal (the one rule of irreversible options).
        a.push("--yes-irreversible");
        run::output(run::tag424().args(a))
    };
    let (code, stdout, _) = batch(&["--random-uid", "--read-counter-limit", "10"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Random ID: ON, IRREVERSIBLE"), "{stdout}");
    assert!(stdout.contains("Read limit: 10"), "{stdout}");
    for other in [
        &[][..],
        &["--random-uid"][..],
        &["--read-counter-limit", "10"][..],
        &["--random-uid", "--read-counter-limit", "11"][..],
    ] {
        let (code, _, stderr) = batch(other);
        assert_eq!(code, 2, "{other:?}: {stderr}");
        assert!(
            stderr.contains("re-run with --random-uid --read-counter-limit 10"),
            "{other:?}: the fix is named: {stderr}"
        );
    }
    let (code, _, stderr) = batch(&["--random-uid", "--read-counter-limit", "10"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(associated(&out).len(), 2);
    // Out of range: refused before anything is touched.
    let (code, _, stderr) = batch(&["--read-counter-limit", "1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("from 2 to 16777214"), "{stderr}");
}

/// On a terminal `--random-uid` asks for the one typed confirmation of irreversible options
/// (`script` gives the batch a pseudo-terminal): anything else stops before any tag is
/// touched; `IRREVERSIBLE` goes on.
#[test]
fn random_uid_needs_the_typed_confirmation_on_a_terminal() {
    use std::io::Write;
    let sb = run::Sandbox::new();
    let tags = sb.path().join("tags");
    let out = sb.path().join("out");
    let ok = sb
        .tag424()
        .args(["sim", "new", "--count", "1", "--dir"])
        .arg(&tags)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let on_a_terminal = |typed: &str| {
        let cmd = format!(
            "tag424 --no-profile batch --reader sim:{} --generate-xuids 1 --out {} --random-uid",
            tags.display(),
            out.display()
        );
        let mut child = sb
            .command("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{typed}\n").as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let said = on_a_terminal("yes");
    assert!(said.contains("--random-uid: every tag answers"), "{said}");
    assert!(said.contains("Type IRREVERSIBLE to continue"), "{said}");
    assert!(said.contains("not confirmed: no tag was touched"), "{said}");
    assert!(!out.join("journal.jsonl").exists(), "no batch was started");
    let listed = sb
        .tag424()
        .args(["sim", "list", "--dir"])
        .arg(&tags)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("factory"));
    let said = on_a_terminal("IRREVERSIBLE");
    assert!(said.contains("Done: 1 tag encoded and verified"), "{said}");
}

/// A Random ID batch of 20 tags over a reader that loses answers and tags
/// (`drop=0.08&remove=0.03&seed=11`, as tests/flaky_reader.rs): every tag is finished without the operator, each code on one
/// tag, the chips' keys are the journal's (found again by GetCardUID or the SUN message when
/// the cut came after the switch), Random ID on every chip and no failed authentication.
#[test]
fn a_random_uid_batch_over_a_flaky_reader_finishes_every_tag() {
    use tag424::provision::batch::{generate_xuids, BatchEvent, BatchOptions};
    use tag424::provision::station::run_batch;
    use tag424::sim::dir::{SimDir, SimReader, SimReaderOptions};
    let tmp = tempfile::tempdir().unwrap();
    let n = 20;
    let sim = SimDir::open(&tmp.path().join("tags")).unwrap();
    let out = tmp.path().join("out");
    let mut journal = Journal::open(&out).unwrap();
    let xuids = generate_xuids(n);
    let mut reader = SimReader::new(sim.clone(), true)
        .unwrap()
        .with_options(SimReaderOptions::parse("drop=0.08&remove=0.03&seed=11").unwrap());
    let o = BatchOptions {
        encode: random_uid_opts("https://v.example/a?p={picc}&c={mac}"),
        count: None,
        stop: None,
        trace: None,
    };
    let mut retries = 0;
    let summary = run_batch(&mut reader, &mut journal, &xuids, &o, &mut |e| match e {
        BatchEvent::Retry { .. } => retries += 1,
        BatchEvent::Failed { error } => eprintln!("failed: {error}"),
        _ => {}
    })
    .unwrap();
    assert_eq!(summary.encoded, n, "{summary:?}");
    assert!(retries > 0, "the reader was flaky");
    drop(journal);
    let journal = batchhelp::verified_once(&out, n);
    let tags = sim.list().unwrap();
    assert_eq!(tags.len(), n);
    for state in &tags {
        let uid = hex::encode_upper(state.uid);
        let entry = journal.tag(&uid).expect("the journal knows the real UID");
        assert!(state.random_id && entry.random_id, "{uid}");
        assert_eq!(state.failed_auths, 0, "{uid}: no key tried in vain");
        for k in 0..5u8 {
            assert_eq!(
                &state.keys[k as usize],
                entry.keys().unwrap().get(k).unwrap()
            );
        }
    }
}
