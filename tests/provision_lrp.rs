//! `batch --lrp-irreversible` on the simulator: tags switched to LRP, encoded and verified;
//! the APDU count; a tear-off before and after every command of the LRP flow, the switch
//! included, and every tag finishes with the journal's keys.

mod hostview;

mod batchhelp;
mod run;

use std::process::Command;

use tag424::card::Card;
use tag424::crypto::sdm::SdmMode;
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome};
use tag424::sim::dir::SimDir;
use tag424::sim::{ChipState, Fault, FaultKind, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};

use batchhelp::tap;

const TEMPLATE: &str = "https://verify.example/s?p={picc}&c={mac}";

/// APDU exchanges per fresh tag in LRP mode (docs/protocol.md §8.5).
const LRP_APDUS: usize = 18;
/// The exchange that switches a fresh tag to LRP (SetConfiguration 05).
const SWITCH: usize = 8;

fn opts() -> EncodeOptions {
    EncodeOptions {
        lifecycle: Default::default(),
        template: Template::parse(TEMPLATE).unwrap().with_mode(SdmMode::Lrp),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    }
}

#[test]
fn an_lrp_batch_verifies_and_costs_18_apdus_per_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let (sim, journal, summary) = batchhelp::sim_batch(
        &tmp.path().join("tags"),
        &tmp.path().join("out"),
        10,
        opts(),
    );
    assert_eq!((summary.encoded, summary.failed), (10, 0));
    assert_eq!(summary.exchanges, 10 * LRP_APDUS);
    let t = opts().template;
    for mut state in sim.list().unwrap() {
        assert!(state.lrp, "the tag is in LRP mode");
        let entry = journal.tag(&hex::encode_upper(state.uid)).unwrap().clone();
        assert!(entry.lrp && entry.lrp_switch);
        let keys = SunKeys {
            file_read: entry.keys().unwrap().sdm_file_read().clone(),
            meta_read: Some(entry.keys().unwrap().sdm_meta_read().clone()),
        };
        for _ in 0..2 {
            let url = tap(&mut state);
            let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &keys).unwrap();
            assert!(v.genuine, "{url}: {:?}", v.reason);
            assert_eq!(v.mode, SdmMode::Lrp);
        }
    }
}

#[test]
fn every_tear_off_point_of_the_lrp_flow_is_recovered() {
    // Exchange 8 is the switch (0 select, 1-3 GetVersion, 4 Read_Sig, 5-6 authentication,
    // 7 WriteData of the NDEF file, still in AES): torn before it is applied the tag is AES,
    // after it LRP with factory keys; either way the plan and the switch are journaled.
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        for at in 0..=LRP_APDUS {
            let tmp = tempfile::tempdir().unwrap();
            let mut journal = Journal::open(tmp.path()).unwrap();
            let xuids = ["tagaaaaa".to_string(), "tagbbbbb".to_string()];
            let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
            let uid = [0x04, 0x11, 0x21, 0x31, 0x41, 0x51, at as u8];
            let t = batchhelp::torn_encode(
                &mut journal,
                &opts(),
                &mut next,
                uid,
                (at, kind),
                LRP_APDUS,
            );
            if at == SWITCH {
                assert_eq!(t.chip.state.lrp, kind == FaultKind::AfterApply);
                let uid = hex::encode_upper(t.chip.state.uid);
                let entry = journal.tag(&uid).expect("planned before the switch");
                assert!(
                    entry.lrp && entry.lrp_switch,
                    "{kind:?}: the switch is journaled"
                );
            }
            if at < SWITCH {
                assert!(!t.chip.state.lrp, "{kind:?} at {at}: not switched yet");
            }
            let (mut card, entry) =
                batchhelp::finish_torn(t, &mut journal, &opts(), &mut next, (at, kind), 2);
            let chip = &card.transport().chip;
            assert!(chip.state.lrp, "{kind:?} at {at}: the tag ends in LRP mode");
            for k in tag424::provision::keys::KeyNo::ALL {
                assert_eq!(
                    &chip.state.keys[k.get() as usize],
                    entry.keys().unwrap().key(k),
                    "{kind:?} at {at}: key {k:?} not as journaled"
                );
            }
            assert_eq!(journal.export().unwrap(), 1, "{kind:?} at {at}");
        }
    }
}

#[test]
fn the_cli_batch_with_lrp_irreversible_verifies_with_tag424_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    let run = bin;
    let (code, _, err) = run(&[
        "sim",
        "new",
        "--count",
        "3",
        "--dir",
        tags.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let reader = format!("sim:{}", tags.display());
    let (code, out_text, err) = run(&[
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--url",
        TEMPLATE,
        "--lrp-irreversible",
        "--yes-irreversible",
        "--json",
    ]);
    assert_eq!(code, 0, "{out_text} {err}");
    let journal = Journal::open(&out).unwrap();
    let sim = SimDir::open(&tags).unwrap();
    for state in sim.list().unwrap() {
        let uid = hex::encode_upper(state.uid);
        let entry = journal.tag(&uid).unwrap();
        let (code, url, err) = run(&["sim", "tap", "--dir", tags.to_str().unwrap(), &uid]);
        assert_eq!(code, 0, "{err}");
        let url = url.trim();
        assert_eq!(
            url.len(),
            "https://verify.example/s?p=&c=".len() + 48 + 16,
            "{url}"
        );
        let (code, v, err) = bin_keys(
            &["verify", url, "--url", TEMPLATE, "--json"],
            &entry.keys().unwrap().sdm_file_read().to_hex(),
            Some(&entry.keys().unwrap().sdm_meta_read().to_hex()),
        );
        assert_eq!(code, 0, "{url}: {v} {err}");
        assert!(v.contains("\"mode\":\"lrp\""), "{v}");
    }
}

fn bin(args: &[&str]) -> (i32, String, String) {
    run_bin(run::tag424().args(args))
}

/// `tag424 ARGS` with the SDM keys in the environment (never on the command line).
fn bin_keys(args: &[&str], key: &str, meta: Option<&str>) -> (i32, String, String) {
    let mut cmd = run::tag424();
    cmd.args(args).env("TAG424_KEY", key);
    if let Some(m) = meta {
        cmd.env("TAG424_META_KEY", m);
    }
    run_bin(&mut cmd)
}

fn run_bin(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_tag_tamper_tag_taps_closed_then_open_after_sim_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    let dir = tags.to_str().unwrap();
    let (code, uid, err) = bin(&["sim", "new", "--tag-tamper", "--dir", dir]);
    assert_eq!(code, 0, "{err}");
    let uid = uid.trim().to_string();
    let t = "https://v.example/t?x={xuid}&{macstart}n={ctr}&tt={tt}&c={mac}";
    let reader = format!("sim:{dir}");
    let (code, o, err) = bin(&[
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--url",
        t,
        "--json",
    ]);
    assert_eq!(code, 0, "{o} {err}");
    assert!(
        o.contains("\"exchanges\":16"),
        "TagTamper costs one more APDU: {o}"
    );
    let journal = Journal::open(&out).unwrap();
    let key = journal
        .tag(&uid)
        .unwrap()
        .keys()
        .unwrap()
        .sdm_file_read()
        .to_hex();
    let verify = |url: &str| {
        let (code, v, err) = bin_keys(&["verify", url, "--url", t, "--json"], &key, None);
        assert_eq!(code, 0, "{url}: {v} {err}");
        let j: serde_json::Value = serde_json::from_str(v.trim()).unwrap();
        j["tamper"]["status"].as_str().unwrap().to_string()
    };
    let (_, url, _) = bin(&["sim", "tap", "--dir", dir, &uid]);
    assert_eq!(verify(url.trim()), "closed", "{url}");
    let (code, _, err) = bin(&["sim", "tamper", "--dir", dir, &uid]);
    assert_eq!(code, 0, "{err}");
    let (_, url, _) = bin(&["sim", "tap", "--dir", dir, &uid]);
    assert!(url.contains("&tt=OO&"), "{url}");
    assert_eq!(verify(url.trim()), "open");
    // Closing the loop again does not hide that it was opened.
    bin(&["sim", "tamper", "--close", "--dir", dir, &uid]);
    let (_, url, _) = bin(&["sim", "tap", "--dir", dir, &uid]);
    assert!(url.contains("&tt=OC&"), "{url}");
    assert_eq!(verify(url.trim()), "open");
    // The text view says it too.
    let (_, text, _) = bin_keys(&["verify", url.trim(), "--url", t], &key, None);
    assert!(text.contains("tamper   open (OC)"), "{text}");
}

#[test]
fn tt_templates_need_tag_tamper_tags_and_lrp_tags_need_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let mut next = |_: &Journal| Some("tagx".to_string());
    let tt = EncodeOptions {
        lifecycle: Default::default(),
        template: Template::parse("https://v.example/?{macstart}n={ctr}&t={tt}&c={mac}").unwrap(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    };
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::factory([4; 7]))));
    let e = encode_tag(&mut card, &mut journal, &tt, &mut next, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("TagTamper"), "{e}");
    assert!(card.transport().chip.state.has_factory_keys());
    // An LRP tag (reset after an LRP batch) without --lrp-irreversible: a clear refusal.
    let mut state = ChipState::factory([5; 7]);
    state.lrp = true;
    let aes = EncodeOptions {
        lifecycle: Default::default(),
        template: Template::default(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    };
    let mut card = Card::new(SimTransport::new(SimChip::new(state)));
    let e = encode_tag(&mut card, &mut journal, &aes, &mut next, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("--lrp-irreversible"), "{e}");
}

#[test]
fn an_lrp_tag_resets_to_factory_keys_and_encodes_again() {
    let tmp = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let xuids = ["one".to_string(), "two".to_string()];
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::factory([6; 7]))));
    encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap();
    let mut t = card.into_transport();
    t.reinsert();
    let mut card = Card::new(t);
    tag424::provision::reset::reset_tag(&mut card, &mut journal, true, false).unwrap();
    let state = &card.transport().chip.state;
    assert!(state.lrp && state.has_factory_keys());
    let mut t = card.into_transport();
    t.reinsert();
    let mut card = Card::new(t);
    let o = encode_tag(&mut card, &mut journal, &opts(), &mut next, &mut |_| {}).unwrap();
    // Already LRP: no switch; the AES authentication is answered 919D at once: 16 APDUs.
    assert!(matches!(o, Outcome::Encoded { exchanges: 16, .. }), "{o:?}");
}

#[test]
fn lrp_with_macstart_from_the_start_of_the_url_and_from_the_picc_data() {
    for (template, starts) in [
        (
            "https://{macstart}verify.example/s?p={picc}&c={mac}",
            "verify.example/s?p=",
        ),
        ("https://verify.example/s?p={macstart}{picc}&c={mac}", ""),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(tmp.path()).unwrap();
        let o = EncodeOptions {
            lifecycle: Default::default(),
            template: Template::parse(template).unwrap().with_mode(SdmMode::Lrp),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        };
        let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::factory([7; 7]))));
        let mut next = |_: &Journal| Some("m".to_string());
        encode_tag(&mut card, &mut journal, &o, &mut next, &mut |_| {}).unwrap();
        let mut state = card.into_transport().chip.state;
        let entry = journal.tag("07070707070707").unwrap();
        let keys = SunKeys {
            file_read: entry.keys().unwrap().sdm_file_read().clone(),
            meta_read: Some(entry.keys().unwrap().sdm_meta_read().clone()),
        };
        let url = tap(&mut state);
        let scan = sun::parse_url(&o.template, &url).unwrap();
        assert!(scan.mac_input.starts_with(starts.as_bytes()), "{url}");
        assert!(scan.mac_input.len() >= 48 + 3);
        assert!(sun::verify(&scan, &keys).unwrap().genuine, "{url}");
        // One nibble of the PICC data flipped: refused.
        let p = url.find("?p=").unwrap() + 3;
        let mut b = url.clone().into_bytes();
        b[p + 20] = if b[p + 20] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(b).unwrap();
        let v = sun::verify(&sun::parse_url(&o.template, &forged).unwrap(), &keys).unwrap();
        assert!(!v.genuine);
    }
}

/// A tear-off at exchange `at` of a fresh LRP encoding; the tag reinserted.
fn torn_lrp(journal: &mut Journal, uid: [u8; 7], at: usize, kind: FaultKind) -> SimTransport {
    let mut next = |j: &Journal| Some(format!("c{}", j.tags().count()));
    let chip = SimChip::new(ChipState::factory(uid));
    let mut card = Card::new(SimTransport::new(chip).with_fault(Fault { at, kind }));
    let e = encode_tag(&mut card, journal, &opts(), &mut next, &mut |_| {}).unwrap_err();
    assert!(e.is_tear_off(), "{e}");
    let mut t = card.into_transport();
    t.reinsert();
    t
}

#[test]
fn an_lrp_batch_refuses_another_batchs_half_done_tag_before_the_switch() {
    use tag424::provision::ProvisionError;
    let tmp = tempfile::tempdir().unwrap();
    // An AES batch A is interrupted after ChangeFileSettings (SDM on, write access by key 3).
    let mut a = Journal::open(&tmp.path().join("a")).unwrap();
    let aes = EncodeOptions {
        lifecycle: Default::default(),
        template: Template::parse(TEMPLATE).unwrap(),
        ..opts()
    };
    let mut next = |_: &Journal| Some("aaaa".to_string());
    let chip = SimChip::new(ChipState::factory([8; 7]));
    let mut card = Card::new(SimTransport::new(chip).with_fault(Fault {
        at: 8,
        kind: FaultKind::AfterApply,
    }));
    let e = encode_tag(&mut card, &mut a, &aes, &mut next, &mut |_| {}).unwrap_err();
    assert!(e.is_tear_off(), "{e}");
    let mut t = card.into_transport();
    t.reinsert();
    let before = t.chip.state.clone();
    // An LRP batch B sees it: refused at the NDEF write, so it is never switched.
    let mut b = Journal::open(&tmp.path().join("b")).unwrap();
    let mut next_b = |_: &Journal| Some("bbbb".to_string());
    let mut card = Card::new(t);
    let e = encode_tag(&mut card, &mut b, &opts(), &mut next_b, &mut |_| {}).unwrap_err();
    assert!(matches!(e, ProvisionError::OtherBatch { .. }), "{e}");
    let state = &card.transport().chip.state;
    assert!(!state.lrp, "not switched to LRP");
    assert_eq!(state, &before, "nothing written to the tag");
    assert_eq!(b.tags().count(), 0, "nothing written to B's journal");
}

#[test]
fn reset_of_a_tag_planned_for_lrp_works_in_whichever_mode_it_is() {
    use tag424::provision::reset::{factory_ndef_settings, reset_tag};
    for kind in [FaultKind::BeforeApply, FaultKind::AfterApply] {
        let tmp = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(tmp.path()).unwrap();
        // Torn at the switch: the NDEF file is written already (it comes first), the tag is
        // AES (before) or LRP (after), with factory keys either way.
        let t = torn_lrp(&mut journal, [9; 7], SWITCH, kind);
        assert_eq!(t.chip.state.lrp, kind == FaultKind::AfterApply);
        assert!(t.chip.state.file(2).unwrap().data.iter().any(|b| *b != 0));
        let mut card = Card::new(t);
        reset_tag(&mut card, &mut journal, true, false).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let state = &card.transport().chip.state;
        assert_eq!(state.lrp, kind == FaultKind::AfterApply, "{kind:?}");
        assert!(state.has_factory_keys(), "{kind:?}");
        let f = state.file(2).unwrap();
        assert!(
            f.data.iter().all(|b| *b == 0),
            "{kind:?}: the NDEF file is cleared"
        );
        assert_eq!(hostview::settings(f), factory_ndef_settings(), "{kind:?}");
    }
}
