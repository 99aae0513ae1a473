//! Encoding on the simulator: whole batches, every tear-off point, and bad input.

use std::sync::{Arc, Mutex};

use tag424::card::Card;
use tag424::crypto::AesKey;
use tag424::provision::batch::{generate_xuids, parse_xuids, run_batch, BatchOptions};
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome, ProvisionError};
use tag424::sim::dir::{SimDir, SimReader};
use tag424::sim::{ChipState, Fault, FaultKind, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};
use tag424::tag_code::Header;

fn opts() -> EncodeOptions {
    EncodeOptions {
        template: Template::default(),
        trust_simulator: true,
        master: None,
    }
}

fn read_csv(path: &std::path::Path) -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|x| x.unwrap())
        .map(|x| (x[0].to_string(), x[1].to_string()))
        .collect()
}

/// The URL a phone reads from a simulated chip.
fn tap(chip: &mut SimChip) -> String {
    let mut card = Card::new(SimTransport::new(std::mem::replace(
        chip,
        SimChip::new(ChipState::factory([0; 7])),
    )));
    card.select_ndef_application().unwrap();
    let data = card.read_data(2, 0, 200).unwrap();
    *chip = card.into_transport().chip;
    tag424::provision::layout::url_from_ndef(&data).unwrap()
}

#[test]
fn a_batch_of_100_tags_taps_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let sim = SimDir::open(&tmp.path().join("tags")).unwrap();
    let mut journal = Journal::open(&out).unwrap();
    let xuids = generate_xuids(100);
    let mut reader = SimReader::new(sim.clone(), true).unwrap();
    let o = BatchOptions {
        encode: opts(),
        count: Some(100),
        stop: None,
        trace: None,
        simulated: true,
    };
    let summary = run_batch(&mut reader, &mut journal, &xuids, &o, &mut |_| {}).unwrap();
    assert_eq!(summary.encoded, 100);
    assert_eq!(summary.failed, 0);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["summary"]["encoded"], 100);
    assert_eq!(summary.exchanges, 1500, "15 APDU exchanges per tag");
    let keys = read_csv(&out.join("keys.csv"));
    let assoc = read_csv(&out.join("associate.csv"));
    assert_eq!(keys.len(), 100);
    let tags = sim.list().unwrap();
    assert_eq!(tags.len(), 100);
    for state in tags {
        let uid = hex::encode_upper(state.uid);
        let (xuid, _) = assoc
            .iter()
            .find(|(_, u)| *u == uid)
            .expect("associate.csv has every UID");
        let key: AesKey = keys
            .iter()
            .find(|(x, _)| x == xuid)
            .unwrap()
            .1
            .parse()
            .unwrap();
        let mut chip = SimChip::new(state);
        let url = tap(&mut chip);
        let scan = sun::parse_url(&Template::default(), &url).unwrap();
        assert_eq!(scan.xuid.as_deref(), Some(xuid.as_str()));
        let v = sun::verify(
            &scan,
            &SunKeys {
                file_read: key,
                meta_read: None,
            },
        )
        .unwrap();
        assert!(v.genuine, "{url}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["journal.jsonl", "keys.csv", "associate.csv", "summary.json"] {
            let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
}

/// Counts AuthenticateEV2First part-1 commands seen by a card.
fn counting_card(t: SimTransport) -> (Card<SimTransport>, Arc<Mutex<usize>>) {
    let n = Arc::new(Mutex::new(0));
    let m = n.clone();
    let card = Card::new(t).with_observer(move |e| {
        if e.command.get(1) == Some(&0x71) {
            *m.lock().unwrap() += 1;
        }
    });
    (card, n)
}

#[test]
fn every_tear_off_point_is_recovered() {
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..16 {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let xuids = ["tagaaaaa".to_string(), "tagbbbbb".to_string()];
            let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
            let chip = SimChip::new(ChipState::factory([
                0x04, 0x10, 0x20, 0x30, 0x40, 0x50, at as u8,
            ]));
            let mut card = Card::new(SimTransport::new(chip).with_fault(Fault { at, kind }));
            let first = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {});
            let mut t = card.into_transport();
            if at < 15 {
                let e = first.expect_err("the tag left the field");
                assert!(e.is_tear_off(), "{kind:?} at {at}: {e}");
            }
            t.reinsert();
            let (mut card, auths) = counting_card(t);
            let outcome = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {})
                .unwrap_or_else(|e| panic!("{kind:?} at {at}: {e}"));
            assert!(
                *auths.lock().unwrap() <= 2,
                "{kind:?} at {at}: {} authentications",
                auths.lock().unwrap()
            );
            let uid = match &outcome {
                Outcome::Encoded { uid, .. } | Outcome::AlreadyDone { uid, .. } => uid.clone(),
            };
            let entry = journal.tag(&uid).unwrap().clone();
            let chip = &card.transport().chip;
            for k in 0..5u8 {
                assert_eq!(
                    &chip.state.keys[k as usize],
                    entry.keys.get(k).unwrap(),
                    "{kind:?} at {at}: key {k} not as journaled"
                );
            }
            journal.export().unwrap();
            let rows = read_csv(&tmp.path().join("keys.csv"));
            assert_eq!(rows.len(), 1, "{kind:?} at {at}: one keys.csv row per tag");
        }
    }
}

#[test]
fn an_encoded_tag_is_skipped_without_using_a_code() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let xuids = generate_xuids(3);
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    assert!(matches!(
        encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap(),
        Outcome::Encoded { .. }
    ));
    let mut t = card.into_transport();
    t.reinsert();
    let mut card = Card::new(t);
    assert!(matches!(
        encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap(),
        Outcome::AlreadyDone { .. }
    ));
    assert_eq!(xuids.iter().filter(|x| journal.xuid_used(x)).count(), 1);
}

#[test]
fn foreign_and_wrong_chips_are_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let xuids = generate_xuids(2);
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    // Encoded by someone else: key 0 is not the factory key and the journal does not know it.
    let mut state = ChipState::random_factory();
    state.keys[0] = AesKey::new([7; 16]);
    let before = state.clone();
    let mut card = Card::new(SimTransport::new(SimChip::new(state)));
    let e = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::Foreign { .. }), "{e}");
    let after = &card.transport().chip.state;
    assert_eq!(after.keys, before.keys);
    assert_eq!(after.files, before.files);
    // Not an NTAG 424 DNA.
    let mut state = ChipState::random_factory();
    state.version_hw = vec![0x04, 0x01, 0x01, 0x33, 0x00, 0x1A, 0x05];
    let mut card = Card::new(SimTransport::new(SimChip::new(state)));
    let e = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::NotNtag424 { .. }), "{e}");
    // A simulated chip when simulated signatures are not trusted.
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    let strict = EncodeOptions {
        trust_simulator: false,
        ..opts()
    };
    let e = encode_tag(&mut card, &mut journal, &strict, &mut next, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::Simulated { .. }), "{e}");
    assert!(e.to_string().contains("--trust-simulator"), "{e}");
    assert!(
        xuids.iter().all(|x| !journal.xuid_used(x)),
        "no code used by refused tags"
    );
}

#[test]
fn tag_code_lists_are_checked() {
    assert_eq!(
        parse_xuids("XUID,Batch\nabc,1\ndef,1\n", "f", Header::Required).unwrap(),
        vec!["abc", "def"]
    );
    assert_eq!(
        parse_xuids("abc\n\ndef\n", "f", Header::None).unwrap(),
        vec!["abc", "def"]
    );
    assert!(parse_xuids("", "f", Header::Required).is_err());
    assert!(parse_xuids("XUID\n", "f", Header::Required).is_err());
    assert!(parse_xuids("abc\nabc\n", "f", Header::None)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    assert!(parse_xuids("a b\n", "f", Header::None).is_err());
    // A header that is not XUID is never taken for a code.
    let e = parse_xuids("Code\nabc\n", "f", Header::Required)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no XUID column"), "{e}");
    // The tag-code rule: '-' and '_' inside, never first (a spreadsheet formula).
    assert!(parse_xuids("XUID\n-A1\n", "f", Header::Required).is_err());
    assert_eq!(
        parse_xuids("XUID\nA-1_b\n", "f", Header::Required).unwrap(),
        vec!["A-1_b"]
    );
}

#[test]
fn an_unwritable_output_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert!(Journal::open(&file.join("out")).is_err());
}

#[test]
fn diversified_keys_can_be_rederived_from_the_uid() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let master: AesKey = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
    let o = EncodeOptions {
        master: Some(master.clone()),
        ..opts()
    };
    let xuids = generate_xuids(1);
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    encode_tag(&mut card, &mut journal, &o, &mut next, &mut |_| {}).unwrap();
    let state = &card.transport().chip.state;
    let derived = tag424::provision::KeySet::diversified(&master, &state.uid).unwrap();
    for k in 0..5u8 {
        assert_eq!(&state.keys[k as usize], derived.get(k).unwrap());
    }
    assert_ne!(
        derived.get(0).unwrap(),
        derived.get(1).unwrap(),
        "each key number gets its own key"
    );
}

#[test]
fn tag_code_csv_follows_csv_rules() {
    // Quoted fields with commas, extra columns, a byte-order mark, CRLF line ends.
    let text = "\u{feff}\"Batch, name\",XUID\r\n\"a, b\",abc\r\n\"c\",\"def\"\r\n";
    assert_eq!(
        parse_xuids(text, "f", Header::Required).unwrap(),
        vec!["abc", "def"]
    );
    let e = parse_xuids("XUID\nabc\n\nabc\n", "f", Header::Required)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lines 2 and 4"), "{e}");
    assert!(parse_xuids("abc,def\n", "f", Header::Required)
        .unwrap_err()
        .to_string()
        .contains("no XUID column"));
    assert!(parse_xuids("abc,def\n", "f", Header::None)
        .unwrap_err()
        .to_string()
        .contains("give the XUID header"));
}
