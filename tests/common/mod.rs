//! One integration suite, run on every backend: the in-process simulator
//! (`tests/suite_sim.rs`) and the simulator behind the real pcscd (`tests/pcsc_vpcd.rs`).

use tag424::card::cmd::iso_binary::BinaryTarget;
use tag424::card::cmd::select::FID_NDEF;
use tag424::card::{Card, CommMode, Sw};
use tag424::crypto::AesKey;
use tag424::provision::encode::identify;
use tag424::provision::layout::{layout, url_from_ndef};
use tag424::provision::KeySet;
use tag424::sun::{self, SunKeys, Template};
use tag424::transport::Transport;

/// Personalises a factory tag through `card` step by step with the library's commands, then
/// checks it the way a phone and a second session see it.
pub fn personalise_and_check<T: Transport>(card: &mut Card<T>) {
    let id = identify(card, true).expect("an NTAG 424 DNA");
    let t = Template::default();
    let plan = layout(&t, "suite001").unwrap();
    let keys = KeySet::random();
    let s = card
        .authenticate_ev2_first(0, &AesKey::FACTORY)
        .expect("factory key 0");
    let s = s
        .write_data(2, 0, &plan.file, CommMode::Plain)
        .expect("NDEF written");
    let s = s.change_file_settings(2, &plan.settings).expect("SDM on");
    let mut s = s;
    for k in 1..=4u8 {
        s = s
            .change_key(k, &AesKey::FACTORY, keys.get(k).unwrap(), 1)
            .expect("key changed");
    }
    s.change_own_key(keys.get(0).unwrap(), 1)
        .expect("key 0 changed");

    // A phone: select the NDEF file, read NLEN, then the message.
    let sun_keys = SunKeys {
        file_read: keys.sdm_file_read().clone(),
        meta_read: None,
    };
    let mut last = 0;
    for _ in 0..2 {
        card.select_ndef_application().unwrap();
        card.select_file_id(FID_NDEF).unwrap();
        let nlen = card.iso_read_binary(BinaryTarget::Current(0), 2).unwrap();
        let n = u16::from_be_bytes([nlen[0], nlen[1]]) as usize;
        let mut file = nlen;
        file.extend(card.iso_read_binary(BinaryTarget::Current(2), n).unwrap());
        let url = url_from_ndef(&file).unwrap();
        let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &sun_keys).unwrap();
        assert!(v.genuine, "{url}");
        let ctr = v.read_ctr.unwrap();
        assert!(ctr > last, "the counter moves forward on every tap");
        last = ctr;
    }

    // A second session with the new master key sees the new state, MACed.
    let s = card
        .authenticate_ev2_first(0, keys.get(0).unwrap())
        .expect("new key 0");
    let (s, uid) = s.get_card_uid().unwrap();
    assert_eq!(uid, id.uid);
    let (s, v) = s.get_key_version(1).unwrap();
    assert_eq!(v, 1);
    let (s, fs) = s.get_file_settings(2).unwrap();
    assert!(fs.sdm.is_some());
    let (s, data) = s.read_data(2, 0, plan.file.len(), CommMode::Plain).unwrap();
    assert_eq!(
        &data[..10],
        &plan.file[..10],
        "authenticated reads are not mirrored"
    );
    let s = s
        .authenticate_ev2_non_first(1, keys.get(1).unwrap())
        .expect("NonFirst with key 1");
    drop(s);
    // The factory key no longer opens the tag.
    let e = card
        .authenticate_ev2_first(0, &AesKey::FACTORY)
        .unwrap_err();
    assert_eq!(e.status(), Some(Sw::AuthenticationError));
}
