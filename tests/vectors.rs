//! Every worked example of `tests/data/nxp.json` (NXP AN12196, AN12304, AN12321; see
//! `tests/data/README.md`) as one test named by its id. The data is read from the file; each
//! kind of vector has one checker below.

mod vecdata;

use serde_json::Value;
use tag424::card::file_settings::{Access, AccessRights, FileSettings, SdmSettings};
use tag424::card::{Card, CommMode, FixedRandom};
use tag424::crypto::ev2::{self, SessionKeys};
use tag424::crypto::{self, lrp, sdm, AesKey};
use tag424::originality;
use tag424::sun::{self, SunKeys, Template};
use tag424::transport::{Transport, TransportError};

use vecdata::{h, hx, key, replay, s};

const VECTORS: &str = include_str!("data/nxp.json");

fn find(id: &str) -> Value {
    vecdata::find(VECTORS, id)
}

fn a16(b: &[u8]) -> [u8; 16] {
    b.try_into().unwrap()
}

fn byte(v: &Value, field: &str) -> u8 {
    h(v, field)[0]
}

/// A replay from (command, response) pairs.
/// Records commands and refuses them all (for vectors that publish only the command).
#[derive(Default)]
struct Recorder(Vec<Vec<u8>>);
impl Transport for Recorder {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.push(command.to_vec());
        Ok(vec![0x91, 0xAE])
    }
}

fn run(id: &str) {
    let v = find(id);
    assert_eq!(v["verified"], true, "{id}: only verified vectors are used");
    let (i, e) = (&v["inputs"], &v["expected"]);
    match s(&v, "kind") {
        "aes_auth_ev2_first" => auth_first(i, e),
        "aes_auth_ev2_nonfirst" => auth_non_first(i, e),
        "ev2_sm_exchange" => sm_exchange(i, e),
        "apdu_framing" => framing(i, e),
        "ev2_change_key" => change_key(i, e),
        "file_settings_decode" => settings_decode(i, e),
        "file_settings_encode" => settings_encode(i, e),
        "sdm_session_keys_aes" => sdm_keys(i, e),
        "sdm_picc_decrypt_aes" => picc(i, e),
        "sdm_enc_file_data_aes" => enc_file(i, e),
        "sdm_sun_aes" => sun_url(i, e),
        "originality_signature" => signature(i, e),
        "lrp_keygen" => lrp_keygen(i, e),
        "lrp_eval" => lrp_eval(i, e),
        "lrp_cmac" => lrp_cmac(i, e),
        "lrp_cmac_subkeys" => lrp_subkeys(i, e),
        "lricb" => lricb(i, e),
        "lrp_auth_first" => lrp_auth(i, e),
        other => panic!("{id}: no checker for kind {other}"),
    }
}

fn auth_first(i: &Value, e: &Value) {
    let k = key(i, "key");
    let rnd_a = a16(&h(i, "rnd_a"));
    let rnd_b = a16(&h(e, "rnd_b"));
    let mut t = replay(&[
        (h(e, "c_apdu_part1"), h(i, "r_apdu_part1")),
        (h(e, "c_apdu_part2"), h(i, "r_apdu_part2")),
    ]);
    let mut card = Card::new(&mut t).with_rng(FixedRandom::new(rnd_a.to_vec()));
    let session = card
        .authenticate_ev2_first(byte(i, "key_no"), &k)
        .expect("authenticates");
    assert_eq!(hx(session.ti()), s(e, "ti"));
    assert_eq!(session.cmd_ctr(), 0);
    drop(session);
    assert!(t.finished());
    assert_eq!(
        hx(ev2::session_vector([0xA5, 0x5A], &rnd_a, &rnd_b)),
        s(e, "sv1")
    );
    assert_eq!(
        hx(ev2::session_vector([0x5A, 0xA5], &rnd_a, &rnd_b)),
        s(e, "sv2")
    );
    let keys = ev2::derive_session_keys(&k, &rnd_a, &rnd_b);
    assert_eq!(keys.enc.to_hex(), s(e, "ses_auth_enc_key"));
    assert_eq!(keys.mac.to_hex(), s(e, "ses_auth_mac_key"));
    if let Some(rot) = e.get("rnd_b_rotl") {
        assert_eq!(hx(crypto::rotl1(&rnd_b)), rot.as_str().unwrap());
        assert_eq!(hx(crypto::rotl1(&rnd_a)), s(e, "rnd_a_rotl"));
    }
}

fn auth_non_first(i: &Value, e: &Value) {
    let k = key(i, "key");
    let rnd_a = a16(&h(i, "rnd_a"));
    let rnd_b = a16(&h(e, "rnd_b"));
    let ti: [u8; 4] = h(i, "ti_kept").try_into().unwrap();
    let ctr = i["cmd_ctr_kept"].as_u64().unwrap() as u16;
    let mut t = replay(&[
        (h(e, "c_apdu_part1"), h(i, "r_apdu_part1")),
        (h(e, "c_apdu_part2"), h(i, "r_apdu_part2")),
    ]);
    let mut card = Card::new(&mut t).with_rng(FixedRandom::new(rnd_a.to_vec()));
    let prior = SessionKeys {
        enc: AesKey::new([1; 16]),
        mac: AesKey::new([2; 16]),
    };
    let session = tag424::card::Session::from_parts(&mut card, prior, ti, ctr, 0);
    let session = session
        .authenticate_ev2_non_first(byte(i, "key_no"), &k)
        .expect("authenticates");
    assert_eq!(session.ti(), ti);
    assert_eq!(session.cmd_ctr(), ctr);
    drop(session);
    assert!(t.finished());
    assert_eq!(
        hx(ev2::session_vector([0xA5, 0x5A], &rnd_a, &rnd_b)),
        s(e, "sv1")
    );
    let keys = ev2::derive_session_keys(&k, &rnd_a, &rnd_b);
    assert_eq!(keys.enc.to_hex(), s(e, "ses_auth_enc_key"));
    assert_eq!(keys.mac.to_hex(), s(e, "ses_auth_mac_key"));
}

fn session_keys(i: &Value) -> SessionKeys {
    SessionKeys {
        enc: i
            .get("ses_auth_enc_key")
            .map(|_| key(i, "ses_auth_enc_key"))
            .unwrap_or(AesKey::new([0; 16])),
        mac: key(i, "ses_auth_mac_key"),
    }
}

fn sm_exchange(i: &Value, e: &Value) {
    let keys = session_keys(i);
    let ti: [u8; 4] = h(i, "ti").try_into().unwrap();
    let ctr = i["cmd_ctr"].as_u64().unwrap() as u16;
    let header = h(i, "cmd_header");
    let data = h(i, "cmd_data");
    let cmd = byte(i, "cmd");
    // The crypto steps the document prints.
    if let Some(iv) = e.get("iv_cmd") {
        assert_eq!(
            hx(ev2::iv_command(&keys.enc, &ti, ctr)),
            iv.as_str().unwrap()
        );
    }
    if let Some(p) = e.get("padded_plain") {
        assert_eq!(hx(crypto::pad_m2(&data)), p.as_str().unwrap());
    }
    let body = match e.get("ciphertext") {
        Some(c) => {
            let ct = crypto::cbc_encrypt(
                &keys.enc,
                &ev2::iv_command(&keys.enc, &ti, ctr),
                &crypto::pad_m2(&data),
            )
            .unwrap();
            assert_eq!(hx(&ct), c.as_str().unwrap());
            ct
        }
        None => data.clone(),
    };
    if let Some(mi) = e.get("mac_input") {
        let input = ev2::command_mac_input(cmd, ctr, &ti, &header, &body);
        assert_eq!(hx(&input), mi.as_str().unwrap());
        if let Some(c) = e.get("cmac") {
            assert_eq!(hx(crypto::cmac(&keys.mac, &input)), c.as_str().unwrap());
        }
        assert_eq!(hx(crypto::mact(&keys.mac, &input)), s(e, "mact"));
    }
    if let Some(iv) = e.get("iv_resp") {
        assert_eq!(
            hx(ev2::iv_response(&keys.enc, &ti, ctr + 1)),
            iv.as_str().unwrap()
        );
    }
    // The exchange itself, through the typed command.
    let mut t = replay(&[(h(e, "c_apdu"), h(i, "r_apdu"))]);
    let mut card = Card::new(&mut t);
    let session = tag424::card::Session::from_parts(&mut card, keys.clone(), ti, ctr, 0);
    let session = match cmd {
        0xF5 => {
            let (s2, fs) = session
                .get_file_settings(header[0])
                .expect("GetFileSettings");
            assert_eq!(
                hx(FileSettings::parse(&h(e, "resp_data"))
                    .unwrap()
                    .encode_change()),
                hx(fs.encode_change())
            );
            s2
        }
        0x8D => {
            let off = u32::from_le_bytes([header[1], header[2], header[3], 0]);
            session
                .write_data(header[0], off, &data, CommMode::Full)
                .expect("WriteData")
        }
        0x5F => {
            let mut fs = FileSettings::parse(
                &[
                    &[0x00, data[0], data[1], data[2], 0x00, 0x01, 0x00][..],
                    &data[3..],
                ]
                .concat(),
            )
            .expect("settings decode");
            fs.size = 256;
            session
                .change_file_settings(header[0], &fs)
                .expect("ChangeFileSettings")
        }
        0x5C => session
            .set_configuration(header[0], &data)
            .expect("SetConfiguration"),
        0x51 => {
            let (s2, uid) = session.get_card_uid().expect("GetCardUID");
            assert_eq!(hx(uid), s(e, "resp_data"));
            s2
        }
        other => panic!("no typed command for {other:02X}"),
    };
    assert_eq!(
        session.cmd_ctr() as u64,
        e["cmd_ctr_after"].as_u64().unwrap()
    );
    drop(session);
    assert!(t.finished());
    if let Some(rmi) = e.get("resp_mac_input") {
        let r = h(i, "r_apdu");
        let resp_data = &r[..r.len() - 10];
        assert_eq!(
            hx(ev2::response_mac_input(0x00, ctr + 1, &ti, resp_data)),
            rmi.as_str().unwrap()
        );
    }
}

fn framing(i: &Value, e: &Value) {
    let expected = s(e, "c_apdu");
    if i.get("authenticated").is_some() {
        // A Plain command inside a session: no MAC, but the counter moves.
        let header = h(i, "cmd_header");
        let ctr = i["cmd_ctr_before"].as_u64().unwrap() as u16;
        let mut t = replay(&[(h(e, "c_apdu"), h(i, "r_apdu"))]);
        let mut card = Card::new(&mut t);
        let keys = SessionKeys {
            enc: AesKey::new([0; 16]),
            mac: AesKey::new([0; 16]),
        };
        let session = tag424::card::Session::from_parts(&mut card, keys, [0; 4], ctr, 0);
        let off = u32::from_le_bytes([header[1], header[2], header[3], 0]);
        let session = session
            .write_data(header[0], off, &h(i, "cmd_data"), CommMode::Plain)
            .expect("WriteData");
        assert_eq!(
            session.cmd_ctr() as u64,
            e["cmd_ctr_after"].as_u64().unwrap()
        );
        return;
    }
    let mut rec = Recorder::default();
    let mut card = Card::new(&mut rec);
    match s(i, "cla") {
        "00" => {
            let _ = card.select_ndef_application();
        }
        _ => {
            let _ = card.get_file_settings(h(i, "cmd_header")[0]);
        }
    }
    drop(card);
    assert_eq!(hx(&rec.0[0]), expected);
}

fn change_key(i: &Value, e: &Value) {
    let keys = session_keys(i);
    let ti: [u8; 4] = h(i, "ti").try_into().unwrap();
    let ctr = i["cmd_ctr"].as_u64().unwrap() as u16;
    let key_no = byte(i, "key_no");
    let (old, new) = (key(i, "old_key"), key(i, "new_key"));
    let ver = byte(i, "key_version");
    let same = key_no == byte(i, "auth_key_no");
    let key_data = if same {
        tag424::card::cmd::change_key::key_data_same(&new, ver)
    } else {
        assert_eq!(hx(crypto::crc32nk(new.as_bytes())), s(e, "crc32nk"));
        tag424::card::cmd::change_key::key_data_other(&new, &old, ver)
    };
    assert_eq!(hx(&key_data[..]), s(e, "key_data"));
    assert_eq!(hx(crypto::pad_m2(&key_data)), s(e, "padded_plain"));
    assert_eq!(hx(ev2::iv_command(&keys.enc, &ti, ctr)), s(e, "iv_cmd"));
    let mut t = replay(&[(h(e, "c_apdu"), h(i, "r_apdu"))]);
    let mut card = Card::new(&mut t);
    let session =
        tag424::card::Session::from_parts(&mut card, keys, ti, ctr, byte(i, "auth_key_no"));
    if same {
        session
            .change_own_key(&new, ver)
            .expect("ChangeKey of the authenticated key");
    } else {
        let s2 = session
            .change_key(key_no, &old, &new, ver)
            .expect("ChangeKey");
        assert_eq!(s2.cmd_ctr(), ctr + 1);
    }
    assert!(t.finished());
}

fn access(v: &Value, f: &str) -> Access {
    Access::from_nibble(v[f].as_u64().unwrap() as u8).unwrap()
}

fn opt_u32(v: &Value, f: &str) -> Option<u32> {
    v.get(f).and_then(|x| x.as_u64()).map(|x| x as u32)
}

fn settings_decode(i: &Value, e: &Value) {
    let fs = FileSettings::parse(&h(i, "data")).expect("decodes");
    assert_eq!(fs.file_type as u64, e["file_type"].as_u64().unwrap());
    assert_eq!(fs.comm_mode, CommMode::Plain);
    assert_eq!(fs.access.read, access(e, "ar_read"));
    assert_eq!(fs.access.write, access(e, "ar_write"));
    assert_eq!(fs.access.read_write, access(e, "ar_read_write"));
    assert_eq!(fs.access.change, access(e, "ar_change"));
    assert_eq!(fs.size as u64, e["file_size"].as_u64().unwrap());
    let sdm = fs.sdm.clone().expect("SDM enabled");
    assert_eq!(e["sdm_enabled"], true);
    assert_eq!(sdm.uid_mirror, e["sdm_uid_mirror"].as_bool().unwrap());
    assert_eq!(
        sdm.read_ctr_mirror,
        e["sdm_read_ctr_mirror"].as_bool().unwrap()
    );
    assert_eq!(
        sdm.read_ctr_limit.is_some(),
        e["sdm_read_ctr_limit"].as_bool().unwrap()
    );
    assert_eq!(
        sdm.enc_file_data.is_some(),
        e["sdm_enc_file_data"].as_bool().unwrap()
    );
    assert_eq!(sdm.ascii, e["sdm_ascii"].as_bool().unwrap());
    assert_eq!(sdm.ctr_ret, Some(access(e, "sdm_ctr_ret")));
    assert_eq!(sdm.meta_read, Some(access(e, "sdm_meta_read")));
    assert_eq!(sdm.file_read, Some(access(e, "sdm_file_read")));
    assert_eq!(sdm.uid_offset, opt_u32(e, "uid_offset"));
    assert_eq!(sdm.read_ctr_offset, opt_u32(e, "read_ctr_offset"));
    assert_eq!(sdm.picc_data_offset, opt_u32(e, "picc_data_offset"));
    assert_eq!(sdm.mac_input_offset, opt_u32(e, "mac_input_offset"));
    assert_eq!(sdm.enc_file_data.map(|x| x.0), opt_u32(e, "enc_offset"));
    assert_eq!(sdm.enc_file_data.map(|x| x.1), opt_u32(e, "enc_length"));
    assert_eq!(sdm.mac_offset, opt_u32(e, "mac_offset"));
    assert_eq!(sdm.read_ctr_limit, opt_u32(e, "read_ctr_limit"));
    fs.validate().expect("the published settings are valid");
}

fn settings_encode(i: &Value, e: &Value) {
    let fs = FileSettings {
        file_type: 0,
        comm_mode: CommMode::Plain,
        access: AccessRights {
            read: access(i, "ar_read"),
            write: access(i, "ar_write"),
            read_write: access(i, "ar_read_write"),
            change: access(i, "ar_change"),
        },
        size: 256,
        sdm: Some(SdmSettings {
            uid_mirror: i["sdm_uid_mirror"].as_bool().unwrap(),
            read_ctr_mirror: i["sdm_read_ctr_mirror"].as_bool().unwrap(),
            read_ctr_limit: None,
            enc_file_data: None,
            ascii: i["sdm_ascii"].as_bool().unwrap(),
            ctr_ret: Some(access(i, "sdm_ctr_ret")),
            meta_read: Some(access(i, "sdm_meta_read")),
            file_read: Some(access(i, "sdm_file_read")),
            uid_offset: None,
            read_ctr_offset: None,
            tt_offset: None,
            lrp: false,
            picc_data_offset: opt_u32(i, "picc_data_offset"),
            mac_input_offset: opt_u32(i, "mac_input_offset"),
            mac_offset: opt_u32(i, "mac_offset"),
        }),
    };
    fs.validate().expect("valid");
    assert_eq!(hx(fs.encode_change()), s(e, "data"));
}

fn uid7(v: &Value, f: &str) -> [u8; 7] {
    h(v, f).try_into().unwrap()
}

fn ctr_le(v: &Value, f: &str) -> u32 {
    let b = h(v, f);
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

fn sdm_keys(i: &Value, e: &Value) {
    let k = key(i, "sdm_file_read_key");
    let uid = uid7(i, "uid");
    let ctr = ctr_le(i, "sdm_read_ctr");
    assert_eq!(
        hx(sdm::session_vector([0xC3, 0x3C], Some(&uid), Some(ctr))),
        s(e, "sv1")
    );
    assert_eq!(
        hx(sdm::session_vector([0x3C, 0xC3], Some(&uid), Some(ctr))),
        s(e, "sv2")
    );
    let keys = sdm::session_keys(&k, &uid, ctr);
    assert_eq!(keys.enc.to_hex(), s(e, "ses_sdm_file_read_enc_key"));
    assert_eq!(keys.mac.to_hex(), s(e, "ses_sdm_file_read_mac_key"));
}

fn picc(i: &Value, e: &Value) {
    let k = key(i, "sdm_meta_read_key");
    let enc = h(i, "picc_enc_data");
    assert_eq!(hx(crypto::aes_decrypt_block(&k, &a16(&enc))), s(e, "plain"));
    let p = sdm::decrypt_picc_data(&k, &enc).unwrap();
    assert_eq!(p.tag, byte(e, "picc_data_tag"));
    assert_eq!(hx(p.uid.unwrap()), s(e, "uid"));
    assert_eq!(p.read_ctr, Some(ctr_le(e, "sdm_read_ctr")));
    assert_eq!(
        p.read_ctr.unwrap() as u64,
        e["read_ctr_int"].as_u64().unwrap()
    );
}

fn enc_file(i: &Value, e: &Value) {
    let k = key(i, "sdm_file_read_key");
    let uid = uid7(i, "uid");
    let ctr = ctr_le(i, "sdm_read_ctr");
    let ks = sdm::enc_session_key(&k, &uid, ctr);
    assert_eq!(ks.to_hex(), s(e, "ses_sdm_file_read_enc_key"));
    let mut ivin = [0u8; 16];
    ivin[..3].copy_from_slice(&sdm::ctr_le(ctr));
    assert_eq!(hx(ivin), s(e, "iv_input"));
    assert_eq!(hx(crypto::aes_encrypt_block(&ks, &ivin)), s(e, "iv"));
    let plain = sdm::decrypt_file_data(&k, &uid, ctr, &h(i, "enc_file_data")).unwrap();
    assert_eq!(hx(&plain), s(e, "plain"));
    assert_eq!(
        hx(sdm::encrypt_file_data(&k, &uid, ctr, &plain).unwrap()),
        s(i, "enc_file_data")
    );
}

/// The template of a published URL: its mirrored values replaced by placeholders.
fn template_of(i: &Value) -> Template {
    let mut t = s(i, "url").to_string();
    t = t.replace(s(i, "picc_enc_data"), "{picc}");
    if !s(i, "enc_file_data").is_empty() {
        t = t.replace(s(i, "enc_file_data"), "{enc}");
    }
    t = t.replace(s(i, "sdmmac"), "{mac}");
    Template::parse(&t).expect("template")
}

fn sun_url(i: &Value, e: &Value) {
    let t = template_of(i);
    let url = s(i, "url");
    let scan = sun::parse_url(&t, url).expect("URL matches");
    assert_eq!(scan.mac_input, s(i, "mac_input_ascii").as_bytes());
    let keys = SunKeys {
        file_read: key(i, "sdm_file_read_key"),
        meta_read: Some(key(i, "sdm_meta_read_key")),
    };
    let v = sun::verify(&scan, &keys).unwrap();
    assert!(v.genuine, "{:?}", v.reason);
    assert_eq!(v.genuine, e["mac_valid"].as_bool().unwrap());
    assert_eq!(hx(v.uid.unwrap()), s(e, "uid"));
    assert_eq!(v.read_ctr, Some(ctr_le(e, "sdm_read_ctr")));
    if let Some(fd) = e.get("file_data") {
        assert_eq!(hx(v.file_data.clone().unwrap()), fd.as_str().unwrap());
    }
    if let Some(k) = e.get("ses_sdm_file_read_mac_key") {
        let mk = sdm::mac_session_key(&keys.file_read, v.uid.as_ref(), v.read_ctr);
        assert_eq!(mk.to_hex(), k.as_str().unwrap());
    }
    if let Some(sv2) = e.get("sv2") {
        assert_eq!(
            hx(sdm::session_vector(
                [0x3C, 0xC3],
                v.uid.as_ref(),
                v.read_ctr
            )),
            sv2.as_str().unwrap()
        );
    }
    // One nibble flipped anywhere in the mirrored data: not genuine (or not parseable).
    for field in ["picc_enc_data", "enc_file_data", "sdmmac"] {
        let val = s(i, field);
        if val.is_empty() {
            continue;
        }
        for pos in 0..val.len() {
            let mut b = val.as_bytes().to_vec();
            b[pos] = if b[pos] == b'0' { b'1' } else { b'0' };
            let flipped = url.replace(val, std::str::from_utf8(&b).unwrap());
            let ok = sun::parse_url(&t, &flipped)
                .ok()
                .and_then(|sc| sun::verify(&sc, &keys).ok())
                .is_some_and(|v| v.genuine);
            assert!(!ok, "{field} with character {pos} flipped still verifies");
        }
    }
}

fn signature(i: &Value, e: &Value) {
    let pk = h(i, "public_key");
    let uid = h(i, "uid");
    let sig = h(i, "signature");
    let valid = e["valid"].as_bool().unwrap();
    assert_eq!(originality::verify_with(&pk, &uid, &sig), valid);
    assert_eq!(s(i, "public_key"), originality::NXP_NTAG424_PUBLIC_KEY);
    let class = originality::classify(&uid, &sig, true);
    assert_eq!(class == originality::Originality::GenuineNxp, valid);
    if let Some(apdu) = e.get("read_sig_c_apdu") {
        let mut rec = Recorder::default();
        let mut card = Card::new(&mut rec);
        let _ = card.read_sig();
        drop(card);
        assert_eq!(hx(&rec.0[0]), apdu.as_str().unwrap());
    }
}

fn lrp_key(i: &Value) -> AesKey {
    key(i, "key")
}

fn lrp_keygen(i: &Value, e: &Value) {
    let l = lrp::Lrp::new(&lrp_key(i));
    for (k, val) in e.as_object().unwrap() {
        let (kind, n) = k.rsplit_once('_').unwrap();
        let n: usize = n.parse().unwrap();
        let got = if kind == "plaintext" {
            l.plaintext(n).unwrap()
        } else {
            *l.updated_key(n).unwrap().as_bytes()
        };
        assert_eq!(hx(got), val.as_str().unwrap(), "{k}");
    }
}

fn lrp_eval(i: &Value, e: &Value) {
    let l = lrp::Lrp::new(&lrp_key(i));
    let idx = i["updated_key_index"].as_u64().unwrap() as usize;
    let out = l
        .eval_with_key_index(idx, &h(i, "input"), i["final"].as_bool().unwrap())
        .unwrap();
    assert_eq!(hx(out), s(e, "output"));
}

fn lrp_cmac(i: &Value, e: &Value) {
    assert_eq!(
        hx(lrp::Lrp::new(&lrp_key(i)).cmac(&h(i, "message"))),
        s(e, "mac")
    );
}

fn lrp_subkeys(i: &Value, e: &Value) {
    assert_eq!(hx(lrp::Lrp::new(&lrp_key(i)).cmac_subkeys().1), s(e, "k2"));
}

fn lricb(i: &Value, e: &Value) {
    let l = lrp::Lrp::new(&lrp_key(i));
    let pad = i["padding"].as_bool().unwrap();
    let mut ctr = h(i, "counter");
    let ct = if pad {
        l.lricb_encrypt_padded(&mut ctr, &h(i, "plaintext"))
    } else {
        l.lricb_encrypt(&mut ctr, &h(i, "plaintext"))
    };
    assert_eq!(hx(ct.unwrap()), s(e, "ciphertext"));
    let mut ctr = h(i, "counter");
    let pt = if pad {
        l.lricb_decrypt_padded(&mut ctr, &h(e, "ciphertext"))
    } else {
        l.lricb_decrypt(&mut ctr, &h(e, "ciphertext"))
    };
    assert_eq!(hx(pt.unwrap()), s(i, "plaintext"));
}

fn lrp_auth(i: &Value, e: &Value) {
    let k = lrp_key(i);
    let rnd_a = h(i, "rnd_a");
    let p1 = h(i, "r_apdu_part1");
    assert_eq!(hx(&p1[..1]), s(e, "auth_mode"));
    let rnd_b = p1[1..17].to_vec();
    assert_eq!(hx(&rnd_b), s(e, "rnd_b"));
    assert_eq!(
        hx(lrp::auth_session_vector(&rnd_a, &rnd_b).unwrap()),
        s(e, "sv")
    );
    let keys = lrp::derive_auth_session_keys(&k, &rnd_a, &rnd_b).unwrap();
    assert_eq!(keys.mac_key().to_hex(), s(e, "ses_auth_mac_update_key"));
    assert_eq!(keys.enc_key().to_hex(), s(e, "ses_auth_enc_update_key"));
    let pcd = lrp::auth_pcd_response(&keys, &rnd_a, &rnd_b).unwrap();
    assert_eq!(hx(pcd), s(e, "pcd_response"));
    let c2 = [&[0x90, 0xAF, 0x00, 0x00, 0x20][..], &rnd_a, &pcd, &[0x00]].concat();
    assert_eq!(hx(c2), s(e, "c_apdu_part2"));
    let p2 = h(i, "r_apdu_part2");
    let picc_enc = &p2[..16];
    assert_eq!(hx(picc_enc), s(e, "picc_data_enc"));
    assert_eq!(
        hx(lrp::auth_picc_response(&keys, &rnd_a, &rnd_b, picc_enc).unwrap()),
        s(e, "picc_response")
    );
    let pd = lrp::decrypt_auth_picc_data(&keys, picc_enc).unwrap();
    assert_eq!(hx(pd.plain), s(e, "picc_data_plain"));
    assert_eq!(hx(pd.ti), s(e, "ti"));
    assert_eq!(hx(pd.pd_cap2), s(e, "pd_cap2"));
    assert_eq!(hx(pd.pcd_cap2), s(e, "pcd_cap2_echo"));
    assert_eq!(hx(pd.enc_ctr), s(e, "enc_ctr_after"));
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
    "an12196-t14-auth-ev2first-key0",
    "an12196-t19-auth-ev2first-key3",
    "an12196-t23-auth-ev2nonfirst-key0",
    "an12196-t7-getfilesettings-commmode-mac",
    "an12196-t17-writedata-ndef-commmode-full",
    "an12196-t18-changefilesettings-commmode-full",
    "an12196-t21-writedata-proprietary-commmode-full",
    "an12196-t24-writedata-cc-plain-while-authenticated",
    "an12196-t25-changekey-key2-not-auth-key",
    "an12196-t26-changekey-key0-is-auth-key",
    "an12196-t27-setconfiguration-randomid-commmode-full",
    "an12196-t28-getcarduid-commmode-full",
    "an12196-t9-isoselect-ndef-app",
    "an12196-t10-getfilesettings-plain",
    "an12196-t7-filesettings-decode",
    "an12196-t18-filesettings-encode",
    "an12196-t1-sdm-session-keys",
    "an12196-t2-picc-data-decrypt",
    "an12196-t3-sdmencfiledata-decrypt",
    "an12196-t3-sun-url-picc-enc-cmac",
    "an12196-t4-sdmmac-empty-input",
    "an12196-t5-sdmmac-input-at-offset",
    "an12304-lrp-plaintexts-updatedkeys",
    "an12304-lrp-eval-1",
    "an12304-lrp-eval-2",
    "an12304-lrp-eval-3",
    "an12304-lrp-cmac-subkey",
    "an12304-lrp-cmac-vec1",
    "an12304-lrp-cmac-vec2",
    "an12304-lrp-cmac-vec5",
    "an12304-lrp-cmac-vec6",
    "an12304-lrp-cmac-vec7",
    "an12304-lrp-cmac-vec8",
    "an12304-lrp-cmac-vec9",
    "an12304-lrp-cmac-vec16",
    "an12304-lrp-cmac-vec18",
    "an12304-lrp-cmac-vec19",
    "an12304-lrp-cmac-vec24",
    "an12304-lrp-cmac-vec50",
    "an12304-lricb-vec1",
    "an12304-lricb-vec2",
    "an12304-lricb-vec4",
    "an12304-lricb-vec10",
    "an12304-lricb-vec13",
    "an12304-lricb-vec19",
    "an12304-lricb-vec22",
    "an12304-lricb-vec24",
    "an12304-lricb-vec29",
    "an12304-lricb-vec37",
    "an12321-t2-auth-lrp-first",
    "an12196-originality-signature",
    "an12196-originality-wrong-uid",
];

#[test]
fn vector_count_is_pinned() {
    let ids: Vec<String> = vecdata::all(VECTORS)
        .iter()
        .map(|v| s(v, "id").to_string())
        .collect();
    assert_eq!(ids.len(), 52, "the vector set changed: update the tests");
    assert_eq!(ids, IDS, "every vector has a test below, in file order");
}

vector!(
    an12196_t14_auth_ev2first_key0,
    "an12196-t14-auth-ev2first-key0"
);
vector!(
    an12196_t19_auth_ev2first_key3,
    "an12196-t19-auth-ev2first-key3"
);
vector!(
    an12196_t23_auth_ev2nonfirst_key0,
    "an12196-t23-auth-ev2nonfirst-key0"
);
vector!(
    an12196_t7_getfilesettings_commmode_mac,
    "an12196-t7-getfilesettings-commmode-mac"
);
vector!(
    an12196_t17_writedata_ndef_commmode_full,
    "an12196-t17-writedata-ndef-commmode-full"
);
vector!(
    an12196_t18_changefilesettings_commmode_full,
    "an12196-t18-changefilesettings-commmode-full"
);
vector!(
    an12196_t21_writedata_proprietary_commmode_full,
    "an12196-t21-writedata-proprietary-commmode-full"
);
vector!(
    an12196_t24_writedata_cc_plain_while_authenticated,
    "an12196-t24-writedata-cc-plain-while-authenticated"
);
vector!(
    an12196_t25_changekey_key2_not_auth_key,
    "an12196-t25-changekey-key2-not-auth-key"
);
vector!(
    an12196_t26_changekey_key0_is_auth_key,
    "an12196-t26-changekey-key0-is-auth-key"
);
vector!(
    an12196_t27_setconfiguration_randomid_commmode_full,
    "an12196-t27-setconfiguration-randomid-commmode-full"
);
vector!(
    an12196_t28_getcarduid_commmode_full,
    "an12196-t28-getcarduid-commmode-full"
);
vector!(
    an12196_t9_isoselect_ndef_app,
    "an12196-t9-isoselect-ndef-app"
);
vector!(
    an12196_t10_getfilesettings_plain,
    "an12196-t10-getfilesettings-plain"
);
vector!(
    an12196_t7_filesettings_decode,
    "an12196-t7-filesettings-decode"
);
vector!(
    an12196_t18_filesettings_encode,
    "an12196-t18-filesettings-encode"
);
vector!(an12196_t1_sdm_session_keys, "an12196-t1-sdm-session-keys");
vector!(an12196_t2_picc_data_decrypt, "an12196-t2-picc-data-decrypt");
vector!(
    an12196_t3_sdmencfiledata_decrypt,
    "an12196-t3-sdmencfiledata-decrypt"
);
vector!(
    an12196_t3_sun_url_picc_enc_cmac,
    "an12196-t3-sun-url-picc-enc-cmac"
);
vector!(
    an12196_t4_sdmmac_empty_input,
    "an12196-t4-sdmmac-empty-input"
);
vector!(
    an12196_t5_sdmmac_input_at_offset,
    "an12196-t5-sdmmac-input-at-offset"
);
vector!(
    an12304_lrp_plaintexts_updatedkeys,
    "an12304-lrp-plaintexts-updatedkeys"
);
vector!(an12304_lrp_eval_1, "an12304-lrp-eval-1");
vector!(an12304_lrp_eval_2, "an12304-lrp-eval-2");
vector!(an12304_lrp_eval_3, "an12304-lrp-eval-3");
vector!(an12304_lrp_cmac_subkey, "an12304-lrp-cmac-subkey");
vector!(an12304_lrp_cmac_vec1, "an12304-lrp-cmac-vec1");
vector!(an12304_lrp_cmac_vec2, "an12304-lrp-cmac-vec2");
vector!(an12304_lrp_cmac_vec5, "an12304-lrp-cmac-vec5");
vector!(an12304_lrp_cmac_vec6, "an12304-lrp-cmac-vec6");
vector!(an12304_lrp_cmac_vec7, "an12304-lrp-cmac-vec7");
vector!(an12304_lrp_cmac_vec8, "an12304-lrp-cmac-vec8");
vector!(an12304_lrp_cmac_vec9, "an12304-lrp-cmac-vec9");
vector!(an12304_lrp_cmac_vec16, "an12304-lrp-cmac-vec16");
vector!(an12304_lrp_cmac_vec18, "an12304-lrp-cmac-vec18");
vector!(an12304_lrp_cmac_vec19, "an12304-lrp-cmac-vec19");
vector!(an12304_lrp_cmac_vec24, "an12304-lrp-cmac-vec24");
vector!(an12304_lrp_cmac_vec50, "an12304-lrp-cmac-vec50");
vector!(an12304_lricb_vec1, "an12304-lricb-vec1");
vector!(an12304_lricb_vec2, "an12304-lricb-vec2");
vector!(an12304_lricb_vec4, "an12304-lricb-vec4");
vector!(an12304_lricb_vec10, "an12304-lricb-vec10");
vector!(an12304_lricb_vec13, "an12304-lricb-vec13");
vector!(an12304_lricb_vec19, "an12304-lricb-vec19");
vector!(an12304_lricb_vec22, "an12304-lricb-vec22");
vector!(an12304_lricb_vec24, "an12304-lricb-vec24");
vector!(an12304_lricb_vec29, "an12304-lricb-vec29");
vector!(an12304_lricb_vec37, "an12304-lricb-vec37");
vector!(an12321_t2_auth_lrp_first, "an12321-t2-auth-lrp-first");
vector!(
    an12196_originality_signature,
    "an12196-originality-signature"
);
vector!(
    an12196_originality_wrong_uid,
    "an12196-originality-wrong-uid"
);
