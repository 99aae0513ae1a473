//! Chip side of every exchange in `hardware-fixtures/`: the simulated chip, given the
//! recorded chip randoms (`@rnd_b`, `@ti`) and state, answers exactly the recorded bytes.
//! The host-side replay (`tests/fixtures.rs`) uses the same files in the other direction, so
//! host and simulator are each checked against NXP's exchanges, not against each other.

use tag424::card::FixedRandom;
use tag424::crypto::ev2::SessionKeys;
use tag424::sim::{ChipState, SimChip};
use tag424::transport::replay::{parse_hex, Fixture};

fn chip_for(fx: &Fixture) -> SimChip {
    let uid: [u8; 7] = fx
        .meta_hex("uid")
        .map(|u| u.try_into().unwrap())
        .unwrap_or([0x04, 1, 2, 3, 4, 5, 6]);
    let mut state = ChipState::factory(uid);
    // `@chip_mode lrp`: a tag already switched to LRP (SetConfiguration option 05).
    state.lrp = fx.meta("chip_mode") == Some("lrp");
    for line in fx.meta_all("chip_file_settings") {
        let (no, hex) = line.split_once(' ').unwrap();
        state.file_mut(no.parse().unwrap()).unwrap().settings = parse_hex(hex).unwrap();
    }
    // The chip's randoms in the order it draws them: RndB at each Part 1, TI at EV2First Part 2.
    let randoms: Vec<u8> = fx
        .meta
        .iter()
        .filter(|(k, _)| k == "rnd_b" || k == "ti")
        .flat_map(|(_, v)| parse_hex(v).unwrap())
        .collect();
    if let Some(sig) = fx.exchanges.iter().find(|(c, _)| c[1] == 0x3C) {
        state.signature = sig.1[..56].to_vec();
    }
    let mut chip = SimChip::with_rng(state, FixedRandom::new(randoms));
    chip.select_application();
    if let Some(s) = fx.meta("session") {
        let m: Vec<&str> = s.split_whitespace().collect();
        let keys = SessionKeys {
            enc: m[1].parse().unwrap(),
            mac: m[2].parse().unwrap(),
        };
        chip.set_session(
            keys,
            parse_hex(m[0]).unwrap().try_into().unwrap(),
            m[3].parse().unwrap(),
            0,
        );
    }
    chip
}

fn replay(text: &str) {
    let fx = Fixture::parse(text).unwrap();
    let mut chip = chip_for(&fx);
    for (i, (cmd, resp)) in fx.exchanges.iter().enumerate() {
        let got = chip.process(cmd);
        assert_eq!(
            hex::encode_upper(&got),
            hex::encode_upper(resp),
            "exchange {i}: {}",
            hex::encode_upper(cmd)
        );
    }
}

macro_rules! chip_replays {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(include_str!(concat!("../hardware-fixtures/", $file)));
            }
        )*
    };
}

chip_replays! {
    personalize_ndef => "an12196-personalize-ndef.apdu",
    keys_and_nonfirst => "an12196-keys-and-nonfirst.apdu",
    getfilesettings_mac => "an12196-t7-getfilesettings-mac.apdu",
    setconfiguration => "an12196-t27-setconfiguration.apdu",
    getcarduid => "an12196-t28-getcarduid.apdu",
    readsig => "an12196-readsig.apdu",
    select_ndef_app => "an12196-t9-select-ndef-app.apdu",
    auth_lrp_first => "an12321-t2-auth-lrp.apdu",
}

// Every file of the folder is replayed by `tests/fixtures.rs::every_fixture_in_the_folder_replays`
// (no list to keep); the chip-side replays above are for NXP's published exchanges, whose
// chip randoms and state the files give.
