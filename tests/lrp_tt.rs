//! Every vector of `tests/data/lrp-tt.json` (NXP AN12321 Tables 2 and 3, a real tag's switch to
//! LRP, LRP SUN URLs made with an independent implementation; see `tests/data/README.md`) as one
//! test named by its id, with the count pinned. Each is checked on both sides: the host sends
//! and accepts the published bytes, and the simulated chip answers (or mirrors) them byte for
//! byte given the published randoms.

mod hostview;

mod vecdata;

use serde_json::Value;
use tag424::card::{Card, FixedRandom};
use tag424::crypto::ev2::{self, SessionKeys};
use tag424::crypto::sdm::SdmMode;
use tag424::crypto::{lrp, sdm_lrp, AesKey};
use tag424::sim::{ChipState, SimChip};
use tag424::sun::{self, SunKeys, Template};

use vecdata::{h, hx, key, replay, s};

const VECTORS: &str = include_str!("data/lrp-tt.json");

fn find(id: &str) -> Value {
    vecdata::find(VECTORS, id)
}

/// The simulated chip answers the published commands byte for byte, given the published
/// chip randoms (RndB, then TI).
fn chip_replay(state: ChipState, randoms: Vec<u8>, pairs: &[(Vec<u8>, Vec<u8>)]) -> SimChip {
    let mut chip = SimChip::with_rng(state, FixedRandom::new(randoms));
    chip.select_application();
    for (c, r) in pairs {
        assert_eq!(hx(chip.process(c)), hx(r), "chip answer to {}", hx(c));
    }
    chip
}

fn run(id: &str) {
    let v = find(id);
    assert_eq!(v["verified"], true, "{id}: only verified vectors are used");
    let (i, e) = (&v["inputs"], &v["expected"]);
    match s(&v, "kind") {
        "lrp_auth_session_vector" => session_vector(i, e),
        "lrp_auth_session_keys" => session_keys(i, e),
        "lrp_cmac" => auth_cmac(i, e),
        "lrp_lricb_decrypt" => picc_decrypt(i, e),
        "lrp_authenticate_first_transcript" => auth_transcript(i, e),
        "set_configuration_enable_lrp_aes_sm" => enable_lrp(i, e),
        "aes_authenticate_first_transcript" => aes_auth(i, e),
        "lrp_sun_url" => sun_url(i, e),
        other => panic!("{id}: no checker for kind {other}"),
    }
}

fn session_vector(i: &Value, e: &Value) {
    assert_eq!(
        hx(lrp::auth_session_vector(&h(i, "RndA"), &h(i, "RndB")).unwrap()),
        s(e, "SV")
    );
}

fn session_keys(i: &Value, e: &Value) {
    let kx = key(i, "Kx");
    let l = lrp::Lrp::new(&kx);
    assert_eq!(l.updated_key(0).unwrap().to_hex(), s(e, "AuthUpdateKey"));
    assert_eq!(hx(l.plaintext(0).unwrap()), s(e, "AuthSPT_0"));
    let master = l.cmac(&h(i, "SV"));
    assert_eq!(hx(master), s(e, "SesAuthMasterKey"));
    let keys = lrp::LrpSessionKeys::from_master(&AesKey::new(master));
    assert_eq!(keys.mac_key().to_hex(), s(e, "SesAuthMACUpdateKey"));
    assert_eq!(keys.enc_key().to_hex(), s(e, "SesAuthENCUpdateKey"));
}

fn auth_keys(i: &Value) -> lrp::LrpSessionKeys {
    lrp::derive_auth_session_keys(&key(i, "Kx"), &h(i, "RndA"), &h(i, "RndB")).unwrap()
}

fn auth_cmac(i: &Value, e: &Value) {
    let keys = auth_keys(i);
    assert_eq!(s(i, "key"), "SesAuthMACKey");
    let (a, b) = (h(i, "RndA"), h(i, "RndB"));
    match s(i, "message") {
        "RndA||RndB" => assert_eq!(
            hx(lrp::auth_pcd_response(&keys, &a, &b).unwrap()),
            s(e, "PCDResponse")
        ),
        "RndB||RndA||PICCData" => {
            let pd = h(i, "PICCData");
            assert_eq!(
                hx(lrp::auth_picc_response(&keys, &a, &b, &pd).unwrap()),
                s(e, "PICCResponse")
            );
            let mut wrong = h(e, "PICCResponse");
            wrong[15] ^= 1;
            assert!(!lrp::verify_auth_picc_response(&keys, &a, &b, &pd, &wrong).unwrap());
        }
        other => panic!("unknown message {other}"),
    }
}

fn picc_decrypt(i: &Value, e: &Value) {
    let keys = auth_keys(i);
    assert_eq!(s(i, "EncCtr"), "00000000");
    let pd = lrp::decrypt_auth_picc_data(&keys, &h(i, "ciphertext")).unwrap();
    assert_eq!(hx(pd.plain), s(e, "plaintext"));
    assert_eq!(hx(pd.ti), s(e, "TI"));
    assert_eq!(hx(pd.pd_cap2), s(e, "PDCap2"));
    assert_eq!(hx(pd.pcd_cap2), s(e, "PCDCap2"));
    assert_eq!(hx(pd.enc_ctr), s(e, "EncCtr_after"));
}

fn auth_transcript(i: &Value, e: &Value) {
    let kx = key(i, "Kx");
    let rnd_a = h(i, "RndA");
    let p1 = h(i, "part1_rapdu");
    assert_eq!(p1[0], 0x01, "AuthMode LRP");
    assert_eq!(hx(&p1[1..17]), s(e, "RndB"));
    // The host's own exchange against the published bytes.
    let c1 = h(i, "part1_capdu");
    let mut t = replay(&[
        (c1.clone(), p1.clone()),
        (h(e, "part2_capdu"), h(i, "part2_rapdu")),
    ]);
    let mut card = Card::new(&mut t).with_rng(FixedRandom::new(rnd_a.clone()));
    let session = card
        .authenticate_lrp_first(c1[5], &kx)
        .expect("authenticates in LRP mode");
    assert_eq!(hx(session.ti()), s(e, "TI"));
    assert_eq!(format!("{:04X}", session.cmd_ctr()), s(e, "CmdCtr_after"));
    assert_eq!(hx(session.enc_ctr()), s(e, "EncCtr_after"));
    assert_eq!(session.mode(), SdmMode::Lrp);
    drop(session);
    assert!(t.finished());
    assert_eq!(
        hx(lrp::decrypt_auth_picc_data(
            &lrp::derive_auth_session_keys(&kx, &rnd_a, &h(e, "RndB")).unwrap(),
            &h(i, "part2_rapdu")[..16]
        )
        .unwrap()
        .pd_cap2),
        s(e, "PDCap2")
    );
}

fn enable_lrp(i: &Value, e: &Value) {
    let keys = SessionKeys {
        enc: key(i, "SesAuthENCKey"),
        mac: key(i, "SesAuthMACKey"),
    };
    let ti: [u8; 4] = h(i, "TI").try_into().unwrap();
    assert_eq!(s(i, "Option"), "05");
    assert_eq!(s(i, "Data"), "00000000020000000000");
    if let Some(iv) = e.get("IVc") {
        assert_eq!(hx(ev2::iv_command(&keys.enc, &ti, 0)), iv.as_str().unwrap());
    }
    let mut t = replay(&[(h(e, "C_APDU"), h(e, "R_APDU"))]);
    let mut card = Card::new(&mut t);
    let session = tag424::card::Session::from_parts(&mut card, keys, ti, 0, 0);
    // The switch answers a bare 9100 (no MAC): the session ends and the card comes back.
    let _card = session.enable_lrp().expect("switches to LRP");
    assert!(t.finished());
    // The chip side, inside the same session: it accepts the published command, answers the
    // bare 9100, and is in LRP mode for good.
    let mut chip = SimChip::new(ChipState::factory([0x04, 0, 0, 0, 0, 0, 2]));
    chip.set_session(
        SessionKeys {
            enc: key(i, "SesAuthENCKey"),
            mac: key(i, "SesAuthMACKey"),
        },
        ti,
        0,
        0,
    );
    assert_eq!(hx(chip.process(&h(e, "C_APDU"))), s(e, "R_APDU"));
    assert!(chip.state.lrp && !chip.authenticated());
}

fn aes_auth(i: &Value, e: &Value) {
    let kx = key(i, "Kx");
    let mut t = replay(&[
        (h(i, "part1_capdu"), h(i, "part1_rapdu")),
        (h(e, "part2_capdu"), h(i, "part2_rapdu")),
    ]);
    let mut card = Card::new(&mut t).with_rng(FixedRandom::new(h(i, "RndA")));
    let session = card
        .authenticate_ev2_first(h(i, "KeyNo")[0], &kx)
        .expect("authenticates");
    assert_eq!(hx(session.ti()), s(e, "TI"));
    drop(session);
    assert!(t.finished());
    // The chip side: the same RndB and TI give the logged answers.
    chip_replay(
        ChipState::factory([0x04, 0, 0, 0, 0, 0, 3]),
        [h(e, "RndB"), h(e, "TI")].concat(),
        &[
            (h(i, "part1_capdu"), h(i, "part1_rapdu")),
            (h(e, "part2_capdu"), h(i, "part2_rapdu")),
        ],
    );
    let rnd_a: [u8; 16] = h(i, "RndA").try_into().unwrap();
    let rnd_b: [u8; 16] = h(e, "RndB").try_into().unwrap();
    let k = ev2::derive_session_keys(&kx, &rnd_a, &rnd_b);
    assert_eq!(k.enc.to_hex(), s(e, "SesAuthENCKey"));
    assert_eq!(k.mac.to_hex(), s(e, "SesAuthMACKey"));
}

fn sun_url(i: &Value, e: &Value) {
    let t = Template::parse(s(i, "template")).expect("template");
    let url = s(i, "url");
    let scan = sun::parse_url(&t, url).expect("URL matches");
    assert_eq!(scan.mac_input, s(e, "mac_input_ascii").as_bytes());
    let keys = SunKeys {
        file_read: key(i, "sdm_file_read_key"),
        meta_read: i
            .get("sdm_meta_read_key")
            .map(|_| key(i, "sdm_meta_read_key")),
    };
    // PICC data tells the mode by itself; plain mirrors need to be told.
    let mode = i.get("mode").map(|m| m.as_str().unwrap().parse().unwrap());
    let v = sun::verify_as(&scan, &keys, mode).unwrap();
    assert_eq!(v.genuine, e["valid"].as_bool().unwrap(), "{:?}", v.reason);
    assert_eq!(v.mode, SdmMode::Lrp);
    assert_eq!(v.uid.map(hx).as_deref(), e["uid"].as_str());
    assert_eq!(v.read_ctr.map(u64::from), e["read_ctr"].as_u64());
    assert_eq!(
        v.file_data.clone().map(hx).as_deref(),
        e["file_data"].as_str()
    );
    assert_eq!(
        hx(sdm_lrp::sdm_mac(
            &keys.file_read,
            v.uid.as_ref(),
            v.read_ctr,
            &scan.mac_input
        )),
        s(e, "sdmmac")
    );
    if let (Some(meta), Some(picc)) = (&keys.meta_read, &scan.picc) {
        // The chip side reproduces the published PICCData from its plaintext.
        let plain = h(e, "picc_plain");
        let tag = plain[0];
        let uid: Option<[u8; 7]> = (tag & 0x80 != 0).then(|| plain[1..8].try_into().unwrap());
        let mut random = [0u8; 16];
        random.copy_from_slice(&plain);
        let enc = sdm_lrp::encrypt_picc_data(
            meta,
            uid.as_ref(),
            v.read_ctr,
            &picc[..8].try_into().unwrap(),
            &random,
        );
        assert_eq!(hx(enc), hx(picc));
        // AES mode cannot be forced onto 48-digit PICC data.
        assert!(sun::verify_as(&scan, &keys, Some(SdmMode::Aes)).is_err());
    } else {
        // Plain mirrors in AES mode do not verify: the verifier must know the mode.
        assert!(!sun::verify(&scan, &keys).unwrap().genuine);
    }
    if let (Some(fd), Some(enc)) = (e["file_data"].as_str(), &scan.enc) {
        let uid = v.uid.unwrap();
        let re = sdm_lrp::encrypt_file_data(
            &keys.file_read,
            &uid,
            v.read_ctr.unwrap(),
            &hex::decode(fd).unwrap(),
        )
        .unwrap();
        assert_eq!(&re, enc);
    }
    // The chip side: a simulated LRP tag with these keys, UID, counter, file data and
    // randoms mirrors the same URL byte for byte.
    assert_eq!(chip_url(i, e, &t, &v, scan.picc.as_deref()), url);
    // One nibble flipped anywhere in the mirrored data: not genuine (or not parseable).
    let query = &url[url.find('?').unwrap() + 1..];
    for (name, val) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        for pos in 0..val.len() {
            let mut b = val.as_bytes().to_vec();
            b[pos] = if b[pos] == b'0' { b'1' } else { b'0' };
            let flipped = url.replace(val, std::str::from_utf8(&b).unwrap());
            let ok = sun::parse_url(&t, &flipped)
                .ok()
                .and_then(|sc| sun::verify_as(&sc, &keys, mode).ok())
                .is_some_and(|v| v.genuine);
            assert!(!ok, "{name} with character {pos} flipped still verifies");
        }
    }
}

/// The URL a phone reads from a simulated LRP tag set up with the vector's facts.
fn chip_url(i: &Value, e: &Value, t: &Template, v: &sun::Verified, picc: Option<&[u8]>) -> String {
    use tag424::provision::layout::{layout, url_from_ndef};
    let t = t.clone().with_mode(SdmMode::Lrp);
    let mut plan = layout(&t, "x").unwrap();
    let sdm = plan.settings.sdm.as_mut().unwrap();
    if picc.is_some() {
        // Mirror exactly what the PICCData tag says (counter-only has no UID).
        sdm.uid_mirror = h(e, "picc_plain")[0] & 0x80 != 0;
    }
    if let (Some((off, _)), Some(fd)) = (sdm.enc_file_data, e["file_data"].as_str()) {
        let plain = hex::decode(fd).unwrap();
        plan.file[off as usize..off as usize + plain.len()].copy_from_slice(&plain);
    }
    let uid: [u8; 7] = v.uid.unwrap_or([0x04, 0, 0, 0, 0, 0, 9]);
    let mut state = ChipState::factory(uid);
    state.lrp = true;
    state.keys[1] = key(i, "sdm_file_read_key");
    if i.get("sdm_meta_read_key").is_some() {
        state.keys[2] = key(i, "sdm_meta_read_key");
    }
    {
        let f = state.file_mut(2).unwrap();
        f.data[..plan.file.len()].copy_from_slice(&plan.file);
        hostview::set_settings(f, &plan.settings);
        f.sdm_read_ctr = v.read_ctr.unwrap() - 1;
    }
    // The chip's randoms: PICCData padding (the published plaintext), then PICCRand.
    let randoms = match picc {
        Some(p) => [h(e, "picc_plain"), p[..8].to_vec()].concat(),
        None => vec![],
    };
    let mut card = Card::new(tag424::sim::SimTransport::new(SimChip::with_rng(
        state,
        FixedRandom::new(randoms),
    )));
    card.select_ndef_application().unwrap();
    let data = card.read_data(2, 0, plan.file.len()).unwrap();
    url_from_ndef(&data).unwrap()
}

macro_rules! vector {
    ($name:ident, $id:literal) => {
        #[test]
        fn $name() {
            run($id);
        }
    };
}

/// The set is pinned: adding, removing or renaming a vector must update this list.
const IDS: &[&str] = &[
    "AN12321-T2-01-session-vector",
    "AN12321-T2-02-session-keys",
    "AN12321-T2-03-pcd-response",
    "AN12321-T2-04-picc-data-decrypt",
    "AN12321-T2-05-picc-response",
    "AN12321-T2-06-apdu-transcript",
    "AN12321-T3-setconfig-enable-lrp",
    "HW-MP-01-aes-auth-before-lrp-switch",
    "HW-MP-02-setconfig-enable-lrp",
    "gen-lrp-sun-picc",
    "gen-lrp-sun-picc-enc",
    "gen-lrp-sun-picc-ctr-only",
    "gen-lrp-plain-mirror-1",
    "gen-lrp-plain-mirror-2",
];

#[test]
fn vector_count_is_pinned() {
    let ids: Vec<String> = vecdata::all(VECTORS)
        .iter()
        .map(|v| s(v, "id").to_string())
        .collect();
    assert_eq!(ids.len(), 14, "the vector set changed: update the tests");
    assert_eq!(ids, IDS, "every vector has a test below, in file order");
}

vector!(an12321_t2_01_session_vector, "AN12321-T2-01-session-vector");
vector!(an12321_t2_02_session_keys, "AN12321-T2-02-session-keys");
vector!(an12321_t2_03_pcd_response, "AN12321-T2-03-pcd-response");
vector!(
    an12321_t2_04_picc_data_decrypt,
    "AN12321-T2-04-picc-data-decrypt"
);
vector!(an12321_t2_05_picc_response, "AN12321-T2-05-picc-response");
vector!(
    an12321_t2_06_apdu_transcript,
    "AN12321-T2-06-apdu-transcript"
);
vector!(
    an12321_t3_setconfig_enable_lrp,
    "AN12321-T3-setconfig-enable-lrp"
);
vector!(
    hw_mp_01_aes_auth_before_lrp_switch,
    "HW-MP-01-aes-auth-before-lrp-switch"
);
vector!(
    hw_mp_02_setconfig_enable_lrp,
    "HW-MP-02-setconfig-enable-lrp"
);
vector!(gen_lrp_sun_picc, "gen-lrp-sun-picc");
vector!(gen_lrp_sun_picc_enc, "gen-lrp-sun-picc-enc");
vector!(gen_lrp_sun_picc_ctr_only, "gen-lrp-sun-picc-ctr-only");
vector!(gen_lrp_plain_mirror_1, "gen-lrp-plain-mirror-1");
vector!(gen_lrp_plain_mirror_2, "gen-lrp-plain-mirror-2");
