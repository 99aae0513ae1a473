//! Property tests: the parsers and the secure-messaging layer never panic on hostile input,
//! and what we encode we parse back unchanged.

use std::collections::VecDeque;

use proptest::prelude::*;
use tag424::card::file_settings::{Access, AccessRights, FileSettings, SdmSettings};
use tag424::card::{Card, CardError, CommMode, Session};
use tag424::crypto::ev2::SessionKeys;
use tag424::crypto::{pad_m2, unpad_m2, AesKey};
use tag424::sun::{self, Template};
use tag424::transport::{Transport, TransportError};

/// AN12196 Table 7: GetFileSettings of file 02 in CommMode.MAC, CmdCtr 0.
const T7_MAC_KEY: &str = "8248134A386E86EB7FAF54A52E536CB6";
const T7_TI: [u8; 4] = [0x7A, 0x21, 0x08, 0x5E];
const T7_RESPONSE: &str = "0040EEEE000100D1FE001F00004400004400002000006A00002A474282E7A479869100";
/// Data (25) and MACt (8) of the response; the last two bytes are the status word.
const T7_PROTECTED_LEN: usize = 33;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn t7_keys() -> SessionKeys {
    SessionKeys {
        enc: AesKey::new([0; 16]),
        mac: T7_MAC_KEY.parse().unwrap(),
    }
}

/// Answers with the given responses in order, whatever the command; then "tag removed".
struct Scripted(VecDeque<Vec<u8>>);

impl Transport for Scripted {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.pop_front().ok_or(TransportError::CardRemoved)
    }
}

/// The GetFileSettings layout: FileType, FileOption, AccessRights(2), FileSize(3), SDM part.
/// `encode_change` gives FileOption, AccessRights and the SDM part.
fn get_file_settings_bytes(fs: &FileSettings) -> Vec<u8> {
    let enc = fs.encode_change();
    let mut b = vec![fs.file_type];
    b.extend_from_slice(&enc[..3]);
    b.extend_from_slice(&fs.size.to_le_bytes()[..3]);
    b.extend_from_slice(&enc[3..]);
    b
}

fn nibble() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..=4, Just(0xE), Just(0xF), 0u8..=0xF]
}

/// Bytes shaped like a GetFileSettings answer (mostly valid nibbles and options), then noise.
fn file_settings_like() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop_oneof![
            Just(0x00u8),
            Just(0x01),
            Just(0x03),
            Just(0x40),
            Just(0x41),
            Just(0x43),
            any::<u8>()
        ],
        proptest::array::uniform4(nibble()),
        any::<[u8; 3]>(),
        prop_oneof![any::<u8>().prop_map(|o| o & !0x0E), any::<u8>()],
        nibble(),
        nibble(),
        nibble(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(ft, opt, ar, size, sdm_opt, ctr, meta, file, tail)| {
            let mut v = vec![ft, opt, ar[0] << 4 | ar[1], ar[2] << 4 | ar[3]];
            v.extend_from_slice(&size);
            v.extend_from_slice(&[sdm_opt, 0xF0 | ctr, meta << 4 | file]);
            v.extend_from_slice(&tail);
            v
        })
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        (0u8..=4).prop_map(Access::Key),
        Just(Access::Free),
        Just(Access::Never)
    ]
}

fn key_or_never() -> impl Strategy<Value = Access> {
    prop_oneof![(0u8..=4).prop_map(Access::Key), Just(Access::Never)]
}

/// SDM settings built to satisfy the chip's rules: mirrors laid out in order with random gaps.
fn valid_file_settings() -> impl Strategy<Value = FileSettings> {
    (
        (access(), access(), access(), access()),
        (access(), access(), key_or_never()),
        (any::<bool>(), any::<bool>(), any::<bool>(), 1u32..=3),
        proptest::option::of(0u32..=0xFF_FFFF),
        proptest::collection::vec(0u32..40, 8),
        any::<u32>(),
        prop_oneof![
            Just(CommMode::Plain),
            Just(CommMode::Mac),
            Just(CommMode::Full)
        ],
        any::<bool>(),
    )
        .prop_map(
            |(
                ar,
                (ctr_ret, meta, file),
                (uid, ctr, enc, enc_blocks),
                limit,
                gaps,
                mi,
                mode,
                sdm_on,
            )| {
                let access = AccessRights {
                    read: ar.0,
                    write: ar.1,
                    read_write: ar.2,
                    change: ar.3,
                };
                let (mut uid, ctr) = (uid, ctr);
                if matches!(meta, Access::Key(_)) && !uid && !ctr {
                    uid = true;
                }
                let mut s = SdmSettings {
                    uid_mirror: uid,
                    read_ctr_mirror: ctr,
                    ascii: true,
                    ctr_ret: Some(ctr_ret),
                    meta_read: Some(meta),
                    file_read: Some(file),
                    read_ctr_limit: if ctr { limit } else { None },
                    ..Default::default()
                };
                let mut pos = gaps[0];
                if meta == Access::Free && uid {
                    s.uid_offset = Some(pos);
                    pos += 14 + gaps[1];
                }
                if meta == Access::Free && ctr {
                    s.read_ctr_offset = Some(pos);
                    pos += 6 + gaps[2];
                }
                if matches!(meta, Access::Key(_)) {
                    s.picc_data_offset = Some(pos);
                    pos += 32 + gaps[3];
                }
                if file != Access::Never {
                    s.mac_input_offset = Some(mi % (pos + 1));
                    if enc && uid && ctr {
                        let len = 32 * enc_blocks;
                        s.enc_file_data = Some((pos, len));
                        pos += len + gaps[4];
                    }
                    s.mac_offset = Some(pos);
                    pos += 16;
                }
                FileSettings {
                    file_type: 0,
                    comm_mode: mode,
                    access,
                    size: pos + gaps[5],
                    sdm: sdm_on.then_some(s),
                }
            },
        )
}

/// A URL-ish string: template fragments, hex digits and noise.
fn url_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("https://yourdomain.com/auth?x=".to_string()),
            Just("&n=".to_string()),
            Just("&e=".to_string()),
            "[0-9A-Fa-f]{1,20}",
            "[a-z0-9]{1,8}",
            any::<char>().prop_map(String::from),
        ],
        0..10,
    )
    .prop_map(|v| v.concat())
}

fn mode_of(b: u8) -> CommMode {
    [CommMode::Plain, CommMode::Mac, CommMode::Full][b as usize % 3]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn file_settings_parse_never_panics_and_reencodes(
        b in prop_oneof![proptest::collection::vec(any::<u8>(), 0..48), file_settings_like()]
    ) {
        if let Ok(fs) = FileSettings::parse(&b) {
            let again = get_file_settings_bytes(&fs);
            prop_assert_eq!(FileSettings::parse(&again), Ok(fs));
        }
    }

    #[test]
    fn valid_sdm_settings_round_trip(fs in valid_file_settings()) {
        prop_assert_eq!(fs.validate(), Ok(()), "generator made invalid settings: {:?}", fs);
        let b = get_file_settings_bytes(&fs);
        prop_assert_eq!(FileSettings::parse(&b), Ok(fs));
    }

    #[test]
    fn pad_unpad_round_trip(data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let p = pad_m2(&data);
        prop_assert_eq!(p.len() % 16, 0);
        prop_assert!(p.len() > data.len() && p.len() - data.len() <= 16);
        prop_assert_eq!(unpad_m2(&p), Some(&data[..]));
        // Unpadding arbitrary data never panics and only ever strips a valid pad.
        if let Some(u) = unpad_m2(&data) {
            prop_assert_eq!(data[u.len()], 0x80);
            prop_assert!(data[u.len() + 1..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn parse_url_never_panics(url in prop_oneof![".{0,120}", url_like()], tpl in ".{0,40}") {
        let t = Template::default();
        let _ = sun::parse_url(&t, &url);
        let p = Template::parse("https://s.example/?p={picc}&d={enc}&m={mac}").unwrap();
        let _ = sun::parse_url(&p, &url);
        if let Ok(t) = Template::parse(&format!("https://{tpl}")) {
            let _ = sun::parse_url(&t, &url);
            let _ = sun::parse_url(&t, &t.render("abc"));
        }
    }

    #[test]
    fn default_template_url_round_trips(
        xuid in "[A-Za-z0-9_.~-]{0,24}",
        ctr in 0u32..=0xFF_FFFF,
        mac in any::<[u8; 8]>(),
        upper in any::<bool>(),
    ) {
        let t = Template::default();
        let mac_hex = if upper { hex::encode_upper(mac) } else { hex::encode(mac) };
        let url = t
            .render(&xuid)
            .replace("&n=000000", &format!("&n={ctr:06X}"))
            .replace("&e=0000000000000000", &format!("&e={mac_hex}"));
        let scan = sun::parse_url(&t, &url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert_eq!(scan.xuid.as_deref(), Some(xuid.as_str()));
        prop_assert_eq!(scan.read_ctr, Some(ctr));
        prop_assert_eq!(scan.mac, mac);
        prop_assert!(scan.mac_input.is_empty());
    }

    #[test]
    fn secure_messaging_never_panics(
        responses in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..6),
        op in 0u8..8,
        arg in any::<u8>(),
        ctr in prop_oneof![Just(0u16), Just(u16::MAX - 1), Just(u16::MAX), any::<u16>()],
    ) {
        let mut card = Card::new(Scripted(responses.into()));
        let s = Session::from_parts(&mut card, t7_keys(), T7_TI, ctr, 0);
        let new = AesKey::new([0x11; 16]);
        match op {
            0 => drop(s.get_file_settings(arg)),
            1..=3 => drop(s.read_data(2, 0, 1 + arg as usize, mode_of(op))),
            4 => drop(s.write_data(2, 0, &[arg; 40], mode_of(arg))),
            5 => drop(s.change_key(1 + arg % 4, &AesKey::FACTORY, &new, 1)),
            6 => drop(s.get_card_uid()),
            _ => drop(s.change_own_key(&new, arg)),
        }
    }

    #[test]
    fn altered_response_mac_is_rejected(bit in 0usize..T7_PROTECTED_LEN * 8) {
        let mut resp = unhex(T7_RESPONSE);
        resp[bit / 8] ^= 1 << (bit % 8);
        let mut card = Card::new(Scripted(vec![resp].into()));
        let s = Session::from_parts(&mut card, t7_keys(), T7_TI, 0, 0);
        let r = s.get_file_settings(2);
        prop_assert!(
            matches!(r, Err(CardError::ResponseMac { command: "GetFileSettings" })),
            "bit {} flipped: {:?}", bit, r.map(|(_, fs)| fs)
        );
    }
}

#[test]
fn t7_exchange_verifies_unaltered() {
    let mut card = Card::new(Scripted(vec![unhex(T7_RESPONSE)].into()));
    let s = Session::from_parts(&mut card, t7_keys(), T7_TI, 0, 0);
    let (s, fs) = s.get_file_settings(2).expect("Table 7 verifies");
    assert_eq!(s.cmd_ctr(), 1);
    assert_eq!(
        hex::encode_upper(get_file_settings_bytes(&fs)),
        &T7_RESPONSE[..50]
    );
}

/// Regression (fuzzing found it): a hex-only literal after `{enc}` cut the field short.
#[test]
fn enc_followed_by_a_hex_literal_still_verifies() {
    use tag424::crypto::{sdm, AesKey};
    let t = tag424::sun::Template::parse("https://s.example/?p={picc}&d={enc}A{mac}").unwrap();
    let (file_key, meta_key) = (AesKey::new([0x5A; 16]), AesKey::new([0xA5; 16]));
    let uid = [0x04, 1, 2, 3, 4, 5, 6];
    for fill in 0..50u8 {
        let picc = sdm::encrypt_picc_data(&meta_key, Some(&uid), Some(5), &[fill; 16]);
        let enc = sdm::encrypt_file_data(&file_key, &uid, 5, &[fill; 16]).unwrap();
        let enc_hex = hex::encode_upper(&enc);
        let mac = sdm::sdm_mac(
            &file_key,
            Some(&uid),
            Some(5),
            format!("{enc_hex}A").as_bytes(),
        );
        let url = format!(
            "https://s.example/?p={}&d={enc_hex}A{}",
            hex::encode_upper(picc),
            hex::encode_upper(mac)
        );
        let scan = tag424::sun::parse_url(&t, &url).unwrap();
        let keys = tag424::sun::SunKeys {
            file_read: file_key.clone(),
            meta_read: Some(meta_key.clone()),
        };
        assert!(tag424::sun::verify(&scan, &keys).unwrap().genuine, "{url}");
    }
}
