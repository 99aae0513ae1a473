//! LRP and TagTamper on the simulated chip, driven by the host's own commands: the switch to
//! LRP, LRP authentication and secure messaging (MAC and Full), LRP SUN checked by the
//! verifier; a TagTamper tag that taps closed, then open after its loop is cut. Where no
//! published vector exists (LRP secure messaging, TagTamper) host and chip check each other;
//! everything below them is vector-checked (tests/lrp_tt.rs).

use tag424::card::{Card, CardError, CommMode, Sw};
use tag424::crypto::sdm::SdmMode;
use tag424::crypto::AesKey;
use tag424::provision::layout::{layout, url_from_ndef};
use tag424::sim::{ChipState, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};

fn card(state: ChipState) -> Card<SimTransport> {
    let mut c = Card::new(SimTransport::new(SimChip::new(state)));
    c.select_ndef_application().unwrap();
    c
}

/// A phone's tap: a fresh activation, then an unauthenticated read of the NDEF file.
fn tap(state: &mut ChipState) -> String {
    let mut c = card(state.clone());
    let data = c.read_data(2, 0, 250).unwrap();
    *state = c.into_transport().chip.state;
    url_from_ndef(&data).unwrap()
}

fn keys() -> [AesKey; 5] {
    std::array::from_fn(|i| AesKey::new([0x10 + i as u8; 16]))
}

/// Personalises a factory tag as the batch does, in LRP after the switch.
fn personalise_lrp(template: &Template) -> (ChipState, [AesKey; 5]) {
    let k = keys();
    let mut c = card(ChipState::factory([0x04, 1, 2, 3, 4, 5, 6]));
    let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let c2 = s.enable_lrp().unwrap();
    // An LRP chip refuses a first authentication that does not ask for LRP.
    let e = c2.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap_err();
    assert_eq!(e.status(), Some(Sw::PermissionDenied), "{e}");
    c2.select_ndef_application().unwrap();
    let s = c2.authenticate_lrp_first(0, &AesKey::FACTORY).unwrap();
    assert_eq!(s.mode(), SdmMode::Lrp);
    assert_eq!(s.enc_ctr(), [0, 0, 0, 1]);
    let plan = layout(template, "tag1").unwrap();
    let s = s.write_data(2, 0, &plan.file, CommMode::Plain).unwrap();
    let s = s.change_file_settings(2, &plan.settings).unwrap();
    // MAC mode (GetFileSettings) and Full mode (ChangeKey) both verify both ways.
    let (s, fs) = s.get_file_settings(2).unwrap();
    assert_eq!(
        fs.sdm.unwrap().picc_data_offset,
        plan.settings.sdm.clone().unwrap().picc_data_offset
    );
    let mut s = s;
    for n in 1..=4u8 {
        s = s
            .change_key(n, &AesKey::FACTORY, &k[n as usize], 1)
            .unwrap();
    }
    let (s, v) = s.get_key_version(3).unwrap();
    assert_eq!(v, 1);
    // NonFirst keeps TI and CmdCtr, restarts EncCtr.
    let (ti, ctr) = (s.ti(), s.cmd_ctr());
    let s = s.authenticate_non_first(0, &AesKey::FACTORY).unwrap();
    assert_eq!((s.ti(), s.cmd_ctr(), s.enc_ctr()), (ti, ctr, [0; 4]));
    let (s, uid) = s.get_card_uid().unwrap();
    assert_eq!(uid, [0x04, 1, 2, 3, 4, 5, 6]);
    s.change_own_key(&k[0], 1).unwrap();
    let state = c.into_transport().chip.state;
    assert!(state.lrp);
    (state, k)
}

#[test]
fn lrp_tag_end_to_end_picc_and_mac() {
    let t = Template::parse("https://verify.example/s?p={picc}&c={mac}")
        .unwrap()
        .with_mode(SdmMode::Lrp);
    let (mut state, k) = personalise_lrp(&t);
    let sk = SunKeys {
        file_read: k[1].clone(),
        meta_read: Some(k[2].clone()),
    };
    let mut last = 0;
    for _ in 0..3 {
        let url = tap(&mut state);
        let scan = sun::parse_url(&t, &url).unwrap();
        assert_eq!(scan.picc.as_ref().unwrap().len(), 24, "{url}");
        let v = sun::verify(&scan, &sk).unwrap();
        assert!(v.genuine, "{url}: {:?}", v.reason);
        assert_eq!(v.mode, SdmMode::Lrp);
        assert!(v.read_ctr.unwrap() > last);
        last = v.read_ctr.unwrap();
    }
}

#[test]
fn lrp_tag_with_file_data_and_plain_mirrors() {
    let t = Template::parse("https://v.example/?p={picc}&d={enc}&c={mac}")
        .unwrap()
        .with_mode(SdmMode::Lrp);
    let (mut state, k) = personalise_lrp(&t);
    let sk = SunKeys {
        file_read: k[1].clone(),
        meta_read: Some(k[2].clone()),
    };
    let url = tap(&mut state);
    let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &sk).unwrap();
    assert!(v.genuine, "{url}: {:?}", v.reason);
    assert!(v.file_data.is_some());

    let t = Template::parse("https://v.example/?u={uid}&n={ctr}&c={mac}")
        .unwrap()
        .with_mode(SdmMode::Lrp);
    let (mut state, k) = personalise_lrp(&t);
    let sk = SunKeys {
        file_read: k[1].clone(),
        meta_read: None,
    };
    let url = tap(&mut state);
    let scan = sun::parse_url(&t, &url).unwrap();
    assert!(
        sun::verify_as(&scan, &sk, Some(SdmMode::Lrp))
            .unwrap()
            .genuine
    );
    // Told nothing, the verifier checks AES and refuses: the mode must be stored per tag.
    assert!(!sun::verify(&scan, &sk).unwrap().genuine);
}

#[test]
fn an_aes_tag_asked_for_lrp_answers_in_aes() {
    let mut c = card(ChipState::factory([0x04, 9, 9, 9, 9, 9, 9]));
    match c.authenticate_lrp_first(0, &AesKey::FACTORY) {
        Err(CardError::WrongMode { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_lrp_key_is_refused() {
    let t = Template::parse("https://v.example/?p={picc}&c={mac}")
        .unwrap()
        .with_mode(SdmMode::Lrp);
    let (state, _) = personalise_lrp(&t);
    let mut c = card(state);
    let e = c.authenticate_lrp_first(0, &AesKey::FACTORY).unwrap_err();
    assert_eq!(e.status(), Some(Sw::AuthenticationError), "{e}");
}

#[test]
fn tag_tamper_taps_closed_then_open_after_the_loop_is_cut() {
    let t =
        Template::parse("https://v.example/?x={xuid}&{macstart}n={ctr}&t={tt}&c={mac}").unwrap();
    let k = keys();
    let mut c = card(ChipState::factory_tag_tamper([0x04, 7, 7, 7, 7, 7, 7]));
    // Before TagTamper is enabled the status is invalid.
    assert_eq!(c.get_tt_status().unwrap().as_string(), "II");
    let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let s = s.enable_tag_tamper().unwrap();
    let plan = layout(&t, "tag1").unwrap();
    let s = s.write_data(2, 0, &plan.file, CommMode::Plain).unwrap();
    let s = s.change_file_settings(2, &plan.settings).unwrap();
    let s = s.change_key(1, &AesKey::FACTORY, &k[1], 1).unwrap();
    s.change_own_key(&k[0], 1).unwrap();
    let mut state = c.into_transport().chip.state;
    let sk = SunKeys {
        file_read: k[1].clone(),
        meta_read: None,
    };
    let url = tap(&mut state);
    let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &sk).unwrap();
    assert!(v.genuine, "{url}: {:?}", v.reason);
    assert_eq!(v.tamper.unwrap().word(), "closed", "{url}");
    // GetTTStatus agrees (free to read, no authentication).
    let mut c = card(state.clone());
    assert_eq!(c.get_tt_status().unwrap().as_string(), "CC");
    // The loop is cut: the next activation measures it open, and it stays open.
    state.tag_tamper.as_mut().unwrap().loop_open = true;
    let url = tap(&mut state);
    let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &sk).unwrap();
    assert!(v.genuine);
    assert_eq!(v.tamper.unwrap().as_string(), "OO");
    state.tag_tamper.as_mut().unwrap().loop_open = false;
    let url = tap(&mut state);
    let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &sk).unwrap();
    assert_eq!(v.tamper.unwrap().as_string(), "OC");
    assert_eq!(v.tamper.unwrap().word(), "open");
    // Forging the status to "CC" breaks the MAC.
    let forged = url.replace("&t=OC", "&t=CC");
    assert!(
        !sun::verify(&sun::parse_url(&t, &forged).unwrap(), &sk)
            .unwrap()
            .genuine
    );
}

#[test]
fn a_damaged_tag_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let sim = tag424::sim::dir::SimDir::open(dir.path()).unwrap();
    let state = sim.new_tag().unwrap();
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("version_hw", serde_json::json!("0404")),
        ("batch", serde_json::json!("")),
        ("signature", serde_json::json!("00")),
    ];
    for (field, bad) in cases {
        let mut v = good.clone();
        v[field] = bad;
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        let e = tag424::sim::dir::SimDir::load_file(&path).unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // A file's settings cut short.
    let mut v = good.clone();
    v["files"][1]["settings"] = serde_json::json!("0040EEEE");
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    assert!(tag424::sim::dir::SimDir::load_file(&path).is_err());
    let _ = state;
}
