//! Host side of every exchange in `hardware-fixtures/`: the host, given the recorded randoms,
//! must send exactly the recorded commands and accept the recorded answers.

use tag424::card::file_settings::FileSettings;
use tag424::card::{Card, CommMode, FixedRandom, Session};
use tag424::crypto::ev2::SessionKeys;
use tag424::crypto::AesKey;
use tag424::originality::{classify, Originality};
use tag424::transport::replay::{parse_hex, Fixture, Replay};

macro_rules! fixture {
    ($file:literal) => {
        (
            $file,
            Fixture::parse(include_str!(concat!("../hardware-fixtures/", $file)))
                .expect("fixture parses"),
        )
    };
}

fn rng(fx: &Fixture) -> FixedRandom {
    FixedRandom::new(
        fx.meta_all("rnd_a")
            .flat_map(|h| parse_hex(h).unwrap())
            .collect(),
    )
}

fn key(hex: &str) -> AesKey {
    hex.parse().unwrap()
}

/// `@session TI ENC MAC CTR`
fn session<'c>(fx: &Fixture, card: &'c mut Card<Replay>) -> Session<'c, Replay> {
    let m: Vec<&str> = fx.meta("session").unwrap().split_whitespace().collect();
    let ti: [u8; 4] = parse_hex(m[0]).unwrap().try_into().unwrap();
    let keys = SessionKeys {
        enc: key(m[1]),
        mac: key(m[2]),
    };
    Session::from_parts(card, keys, ti, m[3].parse().unwrap(), 0)
}

fn done(card: Card<Replay>) {
    let r = card.into_transport();
    assert!(r.finished(), "only {} exchanges were played", r.played());
}

#[test]
fn personalize_ndef() {
    let (_, fx) = fixture!("an12196-personalize-ndef.apdu");
    let mut card = Card::new(Replay::new(&fx)).with_rng(rng(&fx));
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    assert_eq!(hex::encode_upper(s.ti()), fx.meta("ti").unwrap());
    let ndef = fx.meta_hex("ndef").unwrap();
    let s = s.write_data(2, 0, &ndef, CommMode::Full).unwrap();
    let fs = fx
        .meta("file_settings")
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    let fs = parse_hex(fs).unwrap();
    let mut settings = FileSettings::parse(
        &[&[0x00, fs[0], fs[1], fs[2], 0x00, 0x01, 0x00][..], &fs[3..]].concat(),
    )
    .unwrap();
    settings.size = 256;
    let s = s.change_file_settings(2, &settings).unwrap();
    assert_eq!(s.cmd_ctr(), 2);
    drop(s);
    done(card);
}

#[test]
fn keys_and_nonfirst() {
    let (_, fx) = fixture!("an12196-keys-and-nonfirst.apdu");
    let mut card = Card::new(Replay::new(&fx)).with_rng(rng(&fx));
    let s = card.authenticate_ev2_first(3, &AesKey::FACTORY).unwrap();
    let s = s
        .write_data(3, 0, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], CommMode::Full)
        .unwrap();
    let s = s.authenticate_ev2_non_first(0, &AesKey::FACTORY).unwrap();
    assert_eq!(s.cmd_ctr(), 1);
    let cc = parse_hex("FF0506E10500808283000000000000000000").unwrap();
    let s = s.write_data(1, 14, &cc, CommMode::Plain).unwrap();
    let new_keys: Vec<(u8, AesKey, u8)> = fx
        .meta_all("new_key")
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                key(f[1]),
                u8::from_str_radix(f[2], 16).unwrap(),
            )
        })
        .collect();
    let (k2, new2, v2) = &new_keys[0];
    let s = s.change_key(*k2, &AesKey::FACTORY, new2, *v2).unwrap();
    let (_, new0, v0) = &new_keys[1];
    s.change_own_key(new0, *v0).unwrap();
    done(card);
}

#[test]
fn getfilesettings_mac() {
    let (_, fx) = fixture!("an12196-t7-getfilesettings-mac.apdu");
    let mut card = Card::new(Replay::new(&fx));
    let (s, fs) = session(&fx, &mut card).get_file_settings(2).unwrap();
    assert_eq!(s.cmd_ctr(), 1);
    assert_eq!(fs.size, 256);
    assert!(fs.sdm.is_some());
    drop(s);
    done(card);
}

#[test]
fn setconfiguration() {
    let (_, fx) = fixture!("an12196-t27-setconfiguration.apdu");
    let mut card = Card::new(Replay::new(&fx));
    let s = session(&fx, &mut card)
        .set_configuration(0x00, &[0x02])
        .unwrap();
    drop(s);
    done(card);
}

/// The one call `batch --random-uid` makes sends AN12196 Table 27's bytes exactly (option
/// `00`, data `02`, NT4H2421Gx §10.5.1 Table 50) and verifies the answer's MACt.
#[test]
fn enable_random_id_is_table_27() {
    let (_, fx) = fixture!("an12196-t27-setconfiguration.apdu");
    let mut card = Card::new(Replay::new(&fx));
    let s = session(&fx, &mut card).enable_random_id().unwrap();
    drop(s);
    done(card);
}

#[test]
fn getcarduid() {
    let (_, fx) = fixture!("an12196-t28-getcarduid.apdu");
    let mut card = Card::new(Replay::new(&fx));
    let (s, uid) = session(&fx, &mut card).get_card_uid().unwrap();
    assert_eq!(hex::encode_upper(uid), "04958CAA5C5E80");
    drop(s);
    done(card);
}

#[test]
fn readsig() {
    let (_, fx) = fixture!("an12196-readsig.apdu");
    let mut card = Card::new(Replay::new(&fx));
    let sig = card.read_sig().unwrap();
    assert_eq!(
        classify(&fx.meta_hex("uid").unwrap(), &sig, false),
        Originality::GenuineNxp
    );
    done(card);
}

#[test]
fn select_ndef_app() {
    let (_, fx) = fixture!("an12196-t9-select-ndef-app.apdu");
    let mut card = Card::new(Replay::new(&fx));
    card.select_ndef_application().unwrap();
    done(card);
}

#[test]
fn a_changed_byte_fails_the_replay() {
    let (_, fx) = fixture!("an12196-personalize-ndef.apdu");
    let mut card = Card::new(Replay::new(&fx)).with_rng(FixedRandom::new(vec![0x42]));
    let err = card
        .authenticate_ev2_first(0, &AesKey::FACTORY)
        .unwrap_err();
    assert!(err.to_string().contains("replay mismatch"), "{err}");
}

/// Every `*.apdu` file of the folder, named, without a list to keep: a contributed fixture is
/// replayed as soon as it is there (`replay::check`: every authentication opened with a key
/// the file names or learns, every MAC recomputed); one that does not replay fails with its name.
#[test]
fn every_fixture_in_the_folder_replays() {
    use tag424::transport::replay::check::check;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/hardware-fixtures");
    let mut failures = Vec::new();
    let mut replayed = 0;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".apdu"))
        .collect();
    names.sort();
    for name in &names {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        match Fixture::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|fx| check(&fx).map_err(|e| e.to_string()))
        {
            Ok(done) => {
                eprintln!("{name}: {done:?}");
                replayed += 1;
            }
            Err(e) => failures.push(format!("hardware-fixtures/{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(replayed >= 8, "{replayed} fixtures");
}

/// The check catches what it claims to: a changed MAC byte, a key it does not know, a
/// redacted trace, a fixture without provenance.
#[test]
fn the_folder_replay_refuses_a_changed_byte_an_unknown_key_and_a_redacted_trace() {
    use tag424::transport::replay::check::{check, CheckError};
    let (_, fx) = fixture!("an12196-personalize-ndef.apdu");
    assert!(check(&fx).unwrap().macs >= 4);
    // The last byte before Le of WriteData is its MAC.
    let mut bad = fx.clone();
    let c = &mut bad.exchanges[2].0;
    let n = c.len();
    c[n - 2] ^= 1;
    let e = check(&bad).unwrap_err();
    assert!(matches!(e, CheckError::At { index: 2, .. }), "{e}");
    let mut bad = fx.clone();
    let r = &mut bad.exchanges[3].1;
    r[0] ^= 1;
    assert!(check(&bad)
        .unwrap_err()
        .to_string()
        .contains("response MAC"));
    // Key 3 of the other fixture is the factory key: with another key 0 only, key 3 still
    // opens; an authentication with an unknown key is named.
    let mut bad = fx.clone();
    bad.exchanges[1].0[6] ^= 1;
    let e = check(&bad).unwrap_err().to_string();
    assert!(e.contains("no key the fixture knows for key 0"), "{e}");
    let mut redacted = fx.clone();
    redacted.meta.push(("redacted".into(), String::new()));
    assert_eq!(check(&redacted).unwrap_err(), CheckError::Redacted);
    let mut anonymous = fx.clone();
    anonymous.meta.retain(|(k, _)| k != "document");
    assert_eq!(check(&anonymous).unwrap_err(), CheckError::NoProvenance);
}

/// A ChangeKey chain is followed: the keys set in the recording open the later sessions.
#[test]
fn keys_set_by_change_key_are_learnt() {
    use tag424::transport::replay::check::check;
    let (_, fx) = fixture!("an12196-keys-and-nonfirst.apdu");
    let mut fx = fx;
    fx.meta.retain(|(k, _)| k != "new_key");
    let done = check(&fx).unwrap();
    assert_eq!(done.keys_learnt, 2, "{done:?}");
    assert_eq!(done.authentications, 2, "{done:?}");
}

/// AN12321 Table 2 (AuthenticateLRPFirst) on the host side: given the published RndA, the
/// host sends exactly the published commands and accepts the chip's answer (TI, EncCtr 1).
#[test]
fn an12321_lrp_first() {
    let (_, fx) = fixture!("an12321-t2-auth-lrp.apdu");
    let mut card = Card::new(Replay::new(&fx)).with_rng(rng(&fx));
    let s = card.authenticate_lrp_first(0, &AesKey::FACTORY).unwrap();
    assert_eq!(hex::encode_upper(s.ti()), fx.meta("ti").unwrap());
    assert_eq!((s.cmd_ctr(), s.enc_ctr()), (0, [0, 0, 0, 1]));
    s.end();
    done(card);
}

/// The folder replay opens the published LRP authentication with the factory key and names
/// a changed byte of either proof; the key number in part 1 (03 or 00 in the sources) does
/// not matter, both keys being all-zero on that tag.
#[test]
fn the_folder_replay_opens_an12321_and_refuses_a_changed_proof() {
    use tag424::transport::replay::check::check;
    let (_, fx) = fixture!("an12321-t2-auth-lrp.apdu");
    let done = check(&fx).unwrap();
    assert_eq!((done.authentications, done.macs), (1, 0), "{done:?}");
    let mut key3 = fx.clone();
    key3.exchanges[0].0[5] = 0x03;
    assert_eq!(check(&key3).unwrap().authentications, 1);
    // The last byte of PCDResponse (before Le): no key opens it.
    let mut bad = fx.clone();
    let c = &mut bad.exchanges[1].0;
    let n = c.len();
    c[n - 2] ^= 1;
    let e = check(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("exchange 1 ")
            && e.contains("no key the fixture knows for key 0 opens this LRP"),
        "{e}"
    );
    // The chip's PICCResponse, or its PICCData (which the PICCResponse covers).
    for at in [20, 3] {
        let mut bad = fx.clone();
        bad.exchanges[1].1[at] ^= 1;
        let e = check(&bad).unwrap_err().to_string();
        assert!(e.contains("chip's proof (PICCResponse)"), "{e}");
    }
    // RndB changed in part 1: the host's PCDResponse verifies under no key.
    let mut bad = fx.clone();
    bad.exchanges[0].1[1] ^= 1;
    assert!(check(&bad).unwrap_err().to_string().contains("no key"));
}

/// A simulated LRP session with encrypted parts both ways before a ChangeKey: the replay
/// follows EncCtr through Full-mode commands (ChangeFileSettings, WriteData) and Full-mode
/// answers (ReadData, GetCardUID), past MAC mode (GetFileSettings), so the ChangeKey
/// cryptogram decrypts and its key is learnt; a NonFirst restarts EncCtr at 0.
#[test]
fn an_lrp_session_is_followed_through_encrypted_commands_and_answers() {
    use std::sync::{Arc, Mutex};
    use tag424::card::file_settings::{Access, AccessRights};
    use tag424::sim::{ChipState, SimChip, SimTransport};
    use tag424::transport::replay::check::check;
    let mut state = ChipState::factory([0x04, 1, 2, 3, 4, 5, 6]);
    state.lrp = true;
    type Log = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;
    let log = Log::default();
    let sink = log.clone();
    let mut card = Card::new(SimTransport::new(SimChip::new(state))).with_observer(move |e| {
        sink.lock()
            .unwrap()
            .push((e.command.to_vec(), e.response.to_vec()))
    });
    card.select_ndef_application().unwrap();
    let new1 = AesKey::new([0x11; 16]);
    let new0 = AesKey::new([0x22; 16]);
    let s = card.authenticate_lrp_first(0, &AesKey::FACTORY).unwrap();
    let (s, mut fs) = s.get_file_settings(3).unwrap();
    fs.comm_mode = CommMode::Full;
    fs.access = AccessRights {
        read: Access::Key(0),
        write: Access::Key(0),
        read_write: Access::Key(0),
        change: Access::Key(0),
    };
    let s = s.change_file_settings(3, &fs).unwrap();
    let data: Vec<u8> = (0..40u8).collect();
    let s = s.write_data(3, 0, &data, CommMode::Full).unwrap();
    let (s, back) = s.read_data(3, 0, 40, CommMode::Full).unwrap();
    assert_eq!(back, data);
    let (s, _) = s.get_card_uid().unwrap();
    // 1 (PICCData) + 1 (settings) + 3 (40 bytes written) + 3 (read) + 1 (UID).
    assert_eq!(s.enc_ctr(), [0, 0, 0, 9]);
    let s = s.change_key(1, &AesKey::FACTORY, &new1, 1).unwrap();
    let s = s.authenticate_non_first(1, &new1).unwrap();
    let (s, _) = s.get_file_settings(2).unwrap();
    let s = s.authenticate_non_first(0, &AesKey::FACTORY).unwrap();
    let (s, _) = s.read_data(3, 0, 40, CommMode::Full).unwrap();
    s.change_own_key(&new0, 1).unwrap();
    card.authenticate_lrp_first(0, &new0).unwrap().end();

    let fx = Fixture {
        meta: vec![("document".into(), "simulated LRP tag, test".into())],
        exchanges: log.lock().unwrap().clone(),
    };
    let done = check(&fx).unwrap();
    // Authentications: First, NonFirst key 1 (learnt), NonFirst, First with the new key 0.
    // MACs: GetFileSettings 2, ChangeFileSettings 2, WriteData 2, ReadData 2, GetCardUID 2,
    // ChangeKey 2; GetFileSettings 2; ReadData 2, ChangeKey (own key) 1.
    assert_eq!(
        (done.authentications, done.macs, done.keys_learnt),
        (4, 17, 2),
        "{done:?}"
    );
}
