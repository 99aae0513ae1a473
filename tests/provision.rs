//! Encoding on the simulator: whole batches, every tear-off point, and bad input.

mod batchhelp;
mod run;

use tag424::card::Card;
use tag424::crypto::AesKey;
use tag424::provision::batch::{generate_xuids, parse_xuids, BatchOptions};
use tag424::provision::code_list::Header;
use tag424::provision::station::run_batch;
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome, ProvisionError};
use tag424::sim::{ChipState, Fault, FaultKind, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};

fn opts() -> EncodeOptions {
    EncodeOptions {
        lifecycle: Default::default(),
        template: Template::default(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    }
}

fn read_csv(path: &std::path::Path) -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|x| x.unwrap())
        .map(|x| (x[0].to_string(), x[1].to_string()))
        .collect()
}

#[test]
fn a_batch_of_100_tags_taps_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (sim, _journal, summary) =
        batchhelp::sim_batch(&tmp.path().join("tags"), &out, 100, opts());
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
    for mut state in tags {
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
        let url = batchhelp::tap(&mut state);
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

#[test]
fn every_tear_off_point_is_recovered() {
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..16 {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let xuids = ["tagaaaaa".to_string(), "tagbbbbb".to_string()];
            let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
            let uid = [0x04, 0x10, 0x20, 0x30, 0x40, 0x50, at as u8];
            let t = batchhelp::torn_encode(&mut journal, &opts(), &mut next, uid, (at, kind), 15);
            let (mut card, entry) =
                batchhelp::finish_torn(t, &mut journal, &opts(), &mut next, (at, kind), 1);
            let chip = &card.transport().chip;
            for k in 0..5u8 {
                assert_eq!(
                    &chip.state.keys[k as usize],
                    entry.keys().unwrap().get(k).unwrap(),
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
        lifecycle: Default::default(),
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
        lifecycle: Default::default(),
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

/// Fresh simulated factory tags, in memory, one per `next_tag`.
struct FreshTags;

impl tag424::transport::TagSource for FreshTags {
    type Tag = SimTransport;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(SimTransport::new(SimChip::new(
            ChipState::random_factory(),
        ))))
    }
}

fn one_more_tag(dir: &std::path::Path, xuids: &[String]) -> Journal {
    let mut journal = Journal::open(dir).unwrap();
    let o = BatchOptions {
        encode: opts(),
        count: Some(1),
        stop: None,
        trace: None,
    };
    let s = run_batch(&mut FreshTags, &mut journal, xuids, &o, &mut |_| {}).unwrap();
    assert_eq!(s.encoded, 1);
    journal
}

#[test]
fn a_torn_last_line_at_every_byte_offset_heals_and_three_more_runs_encode() {
    use tag424::provision::journal::Record;
    // Sweeps are fast on a memory file system where there is one.
    let base = std::path::Path::new("/dev/shm");
    let xuids = generate_xuids(8);
    let torn_record = serde_json::to_string(&Record::Planned {
        uid: "04112233445566".into(),
        xuid: "tornaway".into(),
        keys: tag424::provision::journal::PlannedKeys::Clear(tag424::provision::KeySet::random()),
        time: 1,
        lrp: false,
        locks: Default::default(),
    })
    .unwrap();
    for cut in 1..=torn_record.len() {
        let tmp = if base.is_dir() {
            tempfile::tempdir_in(base).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let dir = tmp.path().join("out");
        drop(one_more_tag(&dir, &xuids));
        let path = dir.join("journal.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &torn_record.as_bytes()[..cut]).unwrap();
        drop(f);
        for run in 0..3 {
            let j = one_more_tag(&dir, &xuids);
            let torn = j.torn_tail.clone();
            if run == 0 {
                let t = torn.unwrap_or_else(|| panic!("cut {cut}: torn tail not found"));
                assert_eq!(t.bytes, cut, "cut {cut}");
                let kept = std::fs::read(t.kept_in.unwrap()).unwrap();
                assert_eq!(
                    kept,
                    &torn_record.as_bytes()[..cut],
                    "cut {cut}: bytes kept"
                );
            } else {
                assert!(torn.is_none(), "cut {cut} run {run}: healed once");
            }
        }
        // Every line is a record; four tags, all verified; keys.csv is the journal's.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        let parsed = tag424::provision::journal::parse(text.as_bytes());
        assert!(
            parsed.torn.is_none() && parsed.damaged.is_empty(),
            "cut {cut}"
        );
        let j = Journal::read_only(&dir).unwrap();
        let tags: Vec<_> = j.tags().collect();
        assert_eq!(tags.len(), 4, "cut {cut}");
        assert!(tags.iter().all(|t| t.verified));
        let rows = read_csv(&dir.join("keys.csv"));
        assert_eq!(rows.len(), 4, "cut {cut}");
        for (t, (x, k)) in tags.iter().zip(&rows) {
            assert_eq!(&t.xuid, x);
            assert_eq!(t.keys().unwrap().sdm_file_read().to_hex(), *k);
        }
        let torn_files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("journal.torn-")
            })
            .count();
        assert_eq!(torn_files, 1, "cut {cut}");
    }
}

#[test]
fn a_damaged_middle_line_is_refused_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let xuids = generate_xuids(3);
    drop(one_more_tag(&dir, &xuids));
    let path = dir.join("journal.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(text.find('\n').unwrap() + 1, "{\"event\":\"plan\n");
    std::fs::write(&path, &text).unwrap();
    let e = Journal::open(&dir).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(e.help().contains("tag424 journal check"), "{}", e.help());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "nothing changed"
    );
}

#[test]
fn a_tag_another_batch_left_half_done_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let xuids = generate_xuids(2);
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    // Batch A is interrupted after ChangeFileSettings (SDM on, write access by key 3).
    let mut a = Journal::open(&tmp.path().join("a")).unwrap();
    let chip = SimChip::new(ChipState::random_factory());
    let mut card = Card::new(SimTransport::new(chip).with_fault(Fault {
        at: 8,
        kind: FaultKind::AfterApply,
    }));
    let e = encode_tag(&mut card, &mut a, &opts(), &mut next, &mut |_| {}).unwrap_err();
    assert!(e.is_tear_off(), "{e}");
    let mut t = card.into_transport();
    t.reinsert();
    let before = t.chip.state.clone();
    // Batch B, another folder and template, sees it next.
    let mut b = Journal::open(&tmp.path().join("b")).unwrap();
    let other = EncodeOptions {
        lifecycle: Default::default(),
        template: Template::parse("https://other.example/t/{xuid}?c={ctr}&m={mac}").unwrap(),
        ..opts()
    };
    let other_codes = generate_xuids(1);
    let mut next_b = |j: &Journal| other_codes.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(t);
    let e = encode_tag(&mut card, &mut b, &other, &mut next_b, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::OtherBatch { .. }), "{e}");
    assert!(e.to_string().contains("tag424 reset --out OLD_DIR"), "{e}");
    assert_eq!(
        card.transport().chip.state,
        before,
        "nothing written to the tag"
    );
    assert_eq!(b.tags().count(), 0, "nothing written to B's journal");
    assert!(!b.xuid_used(&other_codes[0]));
    // Its own batch finishes it.
    let mut t = card.into_transport();
    t.reinsert();
    let mut card = Card::new(t);
    assert!(matches!(
        encode_tag(&mut card, &mut a, &opts(), &mut next, &mut |_| {}).unwrap(),
        Outcome::Encoded {
            recovered: true,
            ..
        }
    ));
}
