//! `{macstart}`: the SDMMAC input starts where the template says, on the chip and in the
//! verifier. Encoded on the simulator (the read-back verifies), tapped, verified, and refused
//! with one character changed inside the MAC input.

use tag424::card::Card;
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome};
use tag424::sim::{ChipState, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};

fn tap(chip: SimChip) -> (String, SimChip) {
    let mut card = Card::new(SimTransport::new(chip));
    card.select_ndef_application().unwrap();
    let data = card.read_data(2, 0, 250).unwrap();
    let url = tag424::provision::layout::url_from_ndef(&data).unwrap();
    (url, card.into_transport().chip)
}

/// Encodes one simulated tag with `template`; returns the chip and its SunKeys.
fn encoded(template: &str) -> (Template, SimChip, SunKeys) {
    let tmp = tempfile::tempdir().unwrap();
    let t = Template::parse(template).unwrap();
    let mut journal = Journal::open(tmp.path()).unwrap();
    let opts = EncodeOptions {
        lifecycle: Default::default(),
        template: t.clone(),
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    };
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::factory([
        0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
    ]))));
    let out = encode_tag(
        &mut card,
        &mut journal,
        &opts,
        &mut |_| Some("tag1".into()),
        &mut |_| {},
    )
    .unwrap();
    assert!(matches!(out, Outcome::Encoded { .. }));
    let entry = journal.tag("04112233445566").unwrap().clone();
    let keys = SunKeys {
        file_read: entry.keys().unwrap().sdm_file_read().clone(),
        meta_read: Some(entry.keys().unwrap().sdm_meta_read().clone()),
    };
    (t, card.into_transport().chip, keys)
}

fn check(template: &str, mac_input_starts_with: &str) {
    let (t, chip, keys) = encoded(template);
    let (url, chip) = tap(chip);
    let scan = sun::parse_url(&t, &url).unwrap();
    let input = std::str::from_utf8(&scan.mac_input).unwrap();
    assert!(
        input.starts_with(mac_input_starts_with),
        "{input:?} for {url}"
    );
    assert!(sun::verify(&scan, &keys).unwrap().genuine, "{url}");
    // A second tap verifies too (new counter, new MAC).
    let (url2, _) = tap(chip);
    assert_ne!(url, url2);
    assert!(
        sun::verify(&sun::parse_url(&t, &url2).unwrap(), &keys)
            .unwrap()
            .genuine
    );
    // Any change inside the MAC input is caught: here the host name, before the mirrors.
    // (The template is changed the same way, so the URL parses and only the MAC can tell.)
    let forged = url.replace("example", "exampl3");
    let t2 = Template::parse(&template.replace("example", "exampl3")).unwrap();
    let v = sun::verify(&sun::parse_url(&t2, &forged).unwrap(), &keys).unwrap();
    assert!(!v.genuine, "{forged}");
}

#[test]
fn macstart_from_the_start_of_the_url() {
    check(
        "https://{macstart}example.com/a?x={xuid}&n={ctr}&e={mac}",
        "example.com/a?x=tag1&n=",
    );
}

#[test]
fn macstart_from_the_picc_data() {
    let (t, chip, keys) = encoded("https://example.com/?x={xuid}&p={macstart}{picc}&e={mac}");
    let (url, _) = tap(chip);
    let scan = sun::parse_url(&t, &url).unwrap();
    assert_eq!(scan.mac_input.len(), 32 + "&e=".len());
    assert!(scan.mac_input.ends_with(b"&e="));
    assert!(sun::verify(&scan, &keys).unwrap().genuine);
    // One nibble of the PICC data flipped: refused.
    let p = url.find("&p=").unwrap() + 3;
    let mut b = url.clone().into_bytes();
    b[p + 5] = if b[p + 5] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(b).unwrap();
    assert!(
        !sun::verify(&sun::parse_url(&t, &forged).unwrap(), &keys)
            .unwrap()
            .genuine
    );
}

#[test]
fn macstart_with_www_keeps_the_www_in_the_file() {
    // "https://www." is one URI prefix code; {macstart} after "https://" keeps "www." in the
    // file so the MAC covers it.
    check(
        "https://{macstart}www.example.com/?n={ctr}&e={mac}",
        "www.example.com/?n=",
    );
}

#[test]
fn macstart_rules() {
    for bad in [
        "{macstart}https://a.com/?n={ctr}&e={mac}",
        "https:/{macstart}/a.com/?n={ctr}&e={mac}",
        "https://a.com/?n={ctr}&e={mac}{macstart}",
        "https://a.com/?p={picc}&d={enc}{macstart}&e={mac}",
        "https://a.com/?n={ctr}&{macstart}x={macstart}&e={mac}",
        "https://a.com/?n={ctr}&t={tt}&e={mac}",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
    // Zero width: it may touch placeholders, but does not separate two of them.
    assert!(Template::parse("https://a.com/?p={macstart}{picc}&e={mac}").is_ok());
    assert!(Template::parse("https://a.com/?x={xuid}{macstart}{ctr}&e={mac}").is_err());
}
