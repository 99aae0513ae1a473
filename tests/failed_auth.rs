//! Issue 21, the failed-authentication counter (SetConfiguration 0Ah, NT4H2421Gx §10.5.1
//! Table 50; §9): `tag424 batch --failed-auth-limit N[,DECR]` sets it on every tag in the
//! factory key-0 session, shows it before the first tag, records it in the journal and
//! summary.json, refuses a resume with another value naming the fix; and on the simulated tag
//! N wrong-key authentications then block that key (919D, DS Table 39); a tag pulled at any
//! step gets it too when finished.

mod batchhelp;
mod run;

use std::path::Path;

use tag424::card::{Card, Sw};
use tag424::crypto::AesKey;
use tag424::provision::lifecycle::{parse_failed_auth, Lifecycle};
use tag424::provision::{EncodeOptions, Journal};
use tag424::sim::dir::{DirTransport, SimDir};
use tag424::sim::FaultKind;
use tag424::sun::Template;

fn tag424(args: &[&str]) -> (i32, String, String) {
    run::output(run::tag424().args(args))
}

fn batch(tags: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let reader = format!("sim:{}", tags.display());
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
    tag424(&a)
}

#[test]
fn a_batch_sets_the_failed_auth_limit_and_three_wrong_keys_block_that_key() {
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = (d.path().join("tags"), d.path().join("out"));
    let (code, _, stderr) = tag424(&[
        "sim",
        "new",
        "--count",
        "2",
        "--dir",
        tags.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = batch(&tags, &out, &["--failed-auth-limit", "3,1"]);
    assert_eq!(code, 0, "{stderr}");
    // Shown before the first tag.
    let shown = stdout
        .find("Failed-authentication limit: 3 per key")
        .expect(&stdout);
    assert!(shown < stdout.find("Verified").expect(&stdout), "{stdout}");
    // One SetConfiguration more than a plain AES tag (15).
    assert!(stdout.contains("(16 APDUs)"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["lifecycle"]["failed_auth_limit"],
        serde_json::json!({"limit": 3, "decrement": 1})
    );
    assert_eq!(summary["summary"]["irreversible"], serde_json::json!([]));

    // A resume with another value (or none) is refused, naming the fix.
    for other in [&[][..], &["--failed-auth-limit", "3"][..]] {
        let (code, _, stderr) = batch(&tags, &out, other);
        assert_eq!(code, 2, "{other:?}: {stderr}");
        assert!(
            stderr.contains("re-run with --failed-auth-limit 3,1"),
            "{other:?}: the fix is named: {stderr}"
        );
    }
    // Out of range: refused by the parser, nothing touched.
    let (code, _, stderr) = batch(&tags, &out, &["--failed-auth-limit", "0,1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the chip refuses 0"), "{stderr}");

    // `tag424 encode` (one tag) into the folder applies the folder's limit as well.
    let other = SimDir::open(&tags)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.fail_ctr.limit == 1000)
        .expect("the tag the batch left");
    let (code, _, stderr) = tag424(&[
        "encode",
        "--reader",
        &format!("sim:{}", tags.display()),
        "--uid",
        &hex::encode_upper(other.uid),
        "--xuid",
        "oneaaaaa",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    // The encoded tags on the simulator: their chips hold the setting.
    let dir = SimDir::open(&tags).unwrap();
    assert!(dir.list().unwrap().iter().all(|s| s.fail_ctr.limit == 3));
    let state = dir
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.fail_ctr.limit == 3)
        .expect("the encoded tag");
    assert!(state.fail_ctr.enabled);
    assert_eq!(
        (state.fail_ctr.decrement, state.fail_ctr.total),
        (1, [0; 5])
    );
    let uid = state.uid;

    // Three wrong-key authentications with key 3 count to the limit ...
    let mut card = Card::new(DirTransport::new(dir, state));
    card.select_ndef_application().unwrap();
    let wrong = AesKey::from_slice(&[0x5A; 16]).unwrap();
    for _ in 0..3 {
        let e = card.authenticate_ev2_first(3, &wrong).err().unwrap();
        assert_eq!(e.status(), Some(Sw::AuthenticationError));
    }
    // ... and key 3 is blocked: refused at Part 1, before any key is tried (so even the
    // right key cannot authenticate), not counted as another failure.
    for key in [&wrong, &AesKey::FACTORY] {
        let e = card.authenticate_ev2_first(3, key).err().unwrap();
        assert_eq!(e.status(), Some(Sw::PermissionDenied));
    }
    // Kept in the tag's non-volatile state (its file).
    let saved = SimDir::open(&tags)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.uid == uid)
        .unwrap();
    assert_eq!(saved.fail_ctr.total[3], 3);
    assert!(saved.fail_ctr.blocked(3));
    assert!(!saved.fail_ctr.blocked(2));
}

/// A tag pulled at any exchange of an encoding with a failed-authentication limit (before or
/// after the chip applied it) is finished with it set, and no key tried in vain.
#[test]
fn a_tag_pulled_at_any_step_is_finished_with_the_limit_set() {
    let opts = EncodeOptions {
        lifecycle: Lifecycle {
            failed_auth: Some(parse_failed_auth("3,1").unwrap()),
            ..Default::default()
        },
        template: Template::parse("https://v.example/a?x={xuid}&n={ctr}&e={mac}").unwrap(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    };
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..17 {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let xuids = ["tagaaaaa".to_string(), "tagbbbbb".to_string()];
            let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
            let uid = [0x04, 0x10, 0x20, 0x30, 0x40, 0x51, at as u8];
            let t = batchhelp::torn_encode(&mut journal, &opts, &mut next, uid, (at, kind), 16);
            let (mut card, entry) =
                batchhelp::finish_torn(t, &mut journal, &opts, &mut next, (at, kind), 2);
            let state = &card.transport().chip.state;
            assert!(entry.verified, "{kind:?} at {at}");
            let fc = &state.fail_ctr;
            assert_eq!(
                (fc.enabled, fc.limit, fc.decrement, fc.total),
                (true, 3, 1, [0; 5]),
                "{kind:?} at {at}"
            );
            assert_eq!(
                state.failed_auths, 0,
                "{kind:?} at {at}: no key tried in vain"
            );
        }
    }
}
