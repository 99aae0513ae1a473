//! `--lock-ndef-permanently` and `--freeze-settings` on the simulator: the locks hold against
//! the old (factory) keys and the new ones, with the chip's status words (NT4H2421Gx §10.8.2
//! Table 83, §10.7.1 Table 71, §10.9.3); a tag pulled at any exchange of the 20 is finished
//! with its keys equal to the journal's and its locks set; a frozen tag is never reset half.

mod hostview;

mod batchhelp;
mod run;

use tag424::card::file_settings::Access;
use tag424::card::{Card, CommMode, Sw};
use tag424::crypto::AesKey;
use tag424::provision::irreversible::Locks;
use tag424::provision::layout::layout;
use tag424::provision::reset::reset_tag;
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome, ProvisionError};
use tag424::sim::{ChipState, FaultKind, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};
use tag424::transport::Transport;

/// Exchanges of a fresh AES tag with locks: 15 + ISOSelectFile, ReadData (the read-back
/// before the lock), AuthenticateEV2First (2), ChangeFileSettings.
const APDUS: usize = 20;
/// The last ChangeFileSettings (0-based exchange index): 7 WriteData, 8 ChangeFileSettings,
/// 9–12 ChangeKey 1–4, 13 ISOSelectFile, 14 ReadData, 15–16 authentication, 17 the lock.
const LOCK_AT: usize = 17;

fn opts() -> EncodeOptions {
    EncodeOptions {
        template: Template::default(),
        trust_simulator: true,
        master: None,
        locks: Locks {
            ndef: true,
            settings: true,
        },
        lifecycle: Default::default(),
    }
}

fn codes() -> Vec<String> {
    vec!["tagaaaaa".to_string(), "tagbbbbb".to_string()]
}

fn assert_locked(state: &ChipState, what: &str) {
    let fs = hostview::settings(state.file(2).unwrap());
    assert_eq!(fs.access.write, Access::Never, "{what}");
    assert_eq!(fs.access.read_write, Access::Never, "{what}");
    assert_eq!(fs.access.change, Access::Never, "{what}");
    assert_eq!(fs.access.read, Access::Free, "{what}: phones still read it");
    assert!(fs.sdm.is_some(), "{what}: SUN still on");
}

fn status<T>(r: Result<T, tag424::card::CardError>) -> Option<Sw> {
    r.err().and_then(|e| e.status())
}

/// Every way to change the NDEF file with `key` as key `key_no` (and without a key) is
/// refused as the chip refuses it; the file and its settings are unchanged.
fn try_everything(state: &ChipState, keys: &[(u8, AesKey)], what: &str) -> ChipState {
    let before = state.clone();
    let mut card = Card::new(SimTransport::new(SimChip::new(state.clone())));
    card.select_ndef_application().unwrap();
    // No key (a factory tag's NDEF file is free to write): WriteData 919D, ISOUpdateBinary 6982.
    assert_eq!(
        status(card.write_data(2, 0, b"xx")),
        Some(Sw::PermissionDenied),
        "{what}"
    );
    let fs = card.get_file_settings(2).unwrap();
    let wide_open = tag424::provision::reset::factory_ndef_settings();
    let t = card.transport();
    assert_eq!(
        t.transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x04])
            .unwrap(),
        [0x90, 0x00]
    );
    assert_eq!(
        t.transmit(&[0x00, 0xD6, 0x00, 0x00, 0x02, 0x41, 0x42])
            .unwrap(),
        [0x69, 0x82],
        "{what}: ISOUpdateBinary"
    );
    card.select_ndef_application().unwrap();
    for (no, key) in keys {
        let s = card.authenticate_ev2_first(*no, key).unwrap();
        assert_eq!(
            status(s.write_data(2, 0, b"xx", CommMode::Plain)),
            Some(Sw::PermissionDenied),
            "{what}: WriteData with key {no}"
        );
        for settings in [&fs, &wide_open] {
            let s = card.authenticate_ev2_first(*no, key).unwrap();
            assert_eq!(
                status(s.change_file_settings(2, settings)),
                Some(Sw::PermissionDenied),
                "{what}: ChangeFileSettings with key {no}"
            );
        }
    }
    let after = card.into_transport().chip.state;
    assert_eq!(after.file(2), before.file(2), "{what}: file 02 unchanged");
    after
}

#[test]
fn locks_hold_against_the_new_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let codes = codes();
    let mut next = |j: &Journal| codes.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    let out = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap();
    let Outcome::Encoded { uid, exchanges, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(exchanges, APDUS);
    let state = card.into_transport().chip.state;
    assert_locked(&state, "encoded");
    let keys = journal.tag(&uid).unwrap().keys().unwrap().clone();
    let new: Vec<(u8, AesKey)> = (0..5).map(|k| (k, keys.get(k).unwrap().clone())).collect();
    let mut state = try_everything(&state, &new, "new keys");
    // A phone's tap still verifies, with the new keys.
    let url = batchhelp::tap(&mut state);
    let scan = sun::parse_url(&Template::default(), &url).unwrap();
    let v = sun::verify(
        &scan,
        &SunKeys {
            file_read: keys.sdm_file_read().clone(),
            meta_read: None,
        },
    )
    .unwrap();
    assert!(v.genuine, "{url}");
    // `tag424 reset`: refused by name at its first command, nothing changed, keys kept.
    let before = state.clone();
    let mut card = Card::new(SimTransport::new(SimChip::new(state)));
    let e = reset_tag(&mut card, &mut journal, true, false).unwrap_err();
    assert!(matches!(e, ProvisionError::Frozen { .. }), "{e}");
    assert!(e.to_string().contains("--freeze-settings"), "{e}");
    assert_eq!(card.into_transport().chip.state.keys, before.keys);
    assert!(
        journal.tag(&uid).unwrap().verified,
        "still done in the journal"
    );
}

#[test]
fn locks_hold_against_the_old_keys_and_the_tag_is_finished() {
    // Pulled right after the last ChangeFileSettings: locked, key 0 still the factory key.
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let codes = codes();
    let mut next = |j: &Journal| codes.iter().find(|x| !j.xuid_used(x)).cloned();
    let uid = [0x04, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56];
    let mut t = batchhelp::torn_encode(
        &mut journal,
        &opts(),
        &mut next,
        uid,
        (LOCK_AT, FaultKind::AfterApply),
        APDUS,
    );
    t.reinsert();
    let state = t.chip.state.clone();
    assert_locked(&state, "pulled after the lock");
    assert!(state.keys[0].is_factory(), "key 0 changes after the lock");
    let old: Vec<(u8, AesKey)> = vec![(0, AesKey::FACTORY)];
    let state = try_everything(&state, &old, "factory key 0");
    // Another batch is refused by name, before anything is written.
    let other = tempfile::tempdir().unwrap();
    let mut b = Journal::open(other.path()).unwrap();
    let mut card = Card::new(SimTransport::new(SimChip::new(state.clone())));
    let e = encode_tag(&mut card, &mut b, &opts(), &mut next, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::LockedForGood { .. }), "{e}");
    assert_eq!(card.into_transport().chip.state.file(2), state.file(2));
    assert_eq!(b.tags().count(), 0);
    // Its own batch finishes it: key 0 changes, the read-back verifies.
    let t = SimTransport::new(SimChip::new(state));
    let (mut card, entry) = batchhelp::finish_torn(
        t,
        &mut journal,
        &opts(),
        &mut next,
        (LOCK_AT, FaultKind::AfterApply),
        1,
    );
    assert!(entry.verified);
    let chip = &card.transport().chip.state;
    for k in 0..5u8 {
        assert_eq!(
            &chip.keys[k as usize],
            entry.keys().unwrap().get(k).unwrap()
        );
    }
    assert_locked(chip, "finished");
}

#[test]
fn every_tear_off_point_is_finished_with_its_locks() {
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..=APDUS {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let codes = codes();
            let mut next = |j: &Journal| codes.iter().find(|x| !j.xuid_used(x)).cloned();
            let uid = [0x04, 0x61, 0x62, 0x63, 0x64, 0x65, at as u8];
            let t =
                batchhelp::torn_encode(&mut journal, &opts(), &mut next, uid, (at, kind), APDUS);
            // One authentication of key 0 to find where it is, and the lock's own.
            let (mut card, entry) =
                batchhelp::finish_torn(t, &mut journal, &opts(), &mut next, (at, kind), 2);
            let chip = &card.transport().chip.state;
            for k in 0..5u8 {
                assert_eq!(
                    &chip.keys[k as usize],
                    entry.keys().unwrap().get(k).unwrap(),
                    "{kind:?} at {at}: key {k} not as journaled"
                );
            }
            assert!(entry.verified, "{kind:?} at {at}");
            assert_eq!(
                entry.locks,
                opts().locks,
                "{kind:?} at {at}: the plan's locks"
            );
            assert_locked(chip, &format!("{kind:?} at {at}"));
            let planned = layout(&Template::default(), &entry.xuid).unwrap();
            let fs = hostview::settings(chip.file(2).unwrap());
            assert_eq!(fs.sdm, planned.settings.sdm, "{kind:?} at {at}");
        }
    }
}

#[test]
fn a_batch_without_locks_is_unchanged() {
    // 15 exchanges and the usual rights: write by key 3, change by key 0.
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let codes = codes();
    let mut next = |j: &Journal| codes.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    let o = EncodeOptions {
        locks: Locks::default(),
        ..opts()
    };
    let out = encode_tag(&mut card, &mut journal, &o, &mut next, &mut |_| {}).unwrap();
    assert!(
        matches!(out, Outcome::Encoded { exchanges: 15, .. }),
        "{out:?}"
    );
    let fs = hostview::settings(card.transport().chip.state.file(2).unwrap());
    assert_eq!(fs.access.write, Access::Key(3));
    assert_eq!(fs.access.change, Access::Key(0));
}

#[test]
fn every_tear_off_point_of_an_lrp_batch_with_locks_is_finished() {
    // 18 exchanges of the LRP flow and the 5 of the lock (its authentication in LRP).
    let o = EncodeOptions {
        template: Template::parse("https://verify.example/s?p={picc}&c={mac}")
            .unwrap()
            .with_mode(tag424::crypto::sdm::SdmMode::Lrp),
        ..opts()
    };
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..=23 {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let codes = codes();
            let mut next = |j: &Journal| codes.iter().find(|x| !j.xuid_used(x)).cloned();
            let uid = [0x04, 0x71, 0x72, 0x73, 0x74, 0x75, at as u8];
            let t = batchhelp::torn_encode(&mut journal, &o, &mut next, uid, (at, kind), 23);
            let (mut card, entry) =
                batchhelp::finish_torn(t, &mut journal, &o, &mut next, (at, kind), 3);
            let chip = &card.transport().chip.state;
            assert!(chip.lrp, "{kind:?} at {at}");
            for k in 0..5u8 {
                assert_eq!(
                    &chip.keys[k as usize],
                    entry.keys().unwrap().get(k).unwrap(),
                    "{kind:?} at {at}: key {k} not as journaled"
                );
            }
            assert!(entry.verified, "{kind:?} at {at}");
            assert_locked(chip, &format!("LRP, {kind:?} at {at}"));
        }
    }
}
