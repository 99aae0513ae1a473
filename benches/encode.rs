//! Host time and APDU exchanges per tag, encoding on the in-process simulator, in AES and in
//! LRP (`--lrp-irreversible`); and the time to verify one SUN message in each mode.
//! Run: `cargo bench --bench encode` (prints a table; not a test).

use std::time::Instant;

use tag424::card::Card;
use tag424::crypto::sdm::SdmMode;
use tag424::crypto::{sdm, sdm_lrp, AesKey};
use tag424::provision::batch::generate_xuids;
use tag424::provision::{encode_tag, EncodeOptions, Journal};
use tag424::sim::{ChipState, SimChip, SimTransport};
use tag424::sun::{self, SunKeys, Template};

fn encode(n: usize, template: Template, label: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut journal = Journal::open(tmp.path()).expect("journal");
    let xuids = generate_xuids(n);
    let opts = EncodeOptions {
        lifecycle: Default::default(),
        template,
        trust_simulator: true,
        master: None,
        locks: Default::default(),
    };
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut exchanges = 0;
    let started = Instant::now();
    for _ in 0..n {
        let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
        encode_tag(&mut card, &mut journal, &opts, &mut next, &mut |_| {}).expect("encodes");
        exchanges += card.exchanges();
    }
    let total = started.elapsed();
    println!("encode on the simulator, {label}, {n} tags (journal fsync'd on this disk):");
    println!(
        "  host time per tag   {:>8.3} ms",
        total.as_secs_f64() * 1000.0 / n as f64
    );
    println!("  APDUs per tag       {:>8.1}", exchanges as f64 / n as f64);
}

/// Verifying one `?p={picc}&c={mac}` scan, as the verifier does for every request.
fn verify(mode: SdmMode, n: usize) {
    let t = Template::parse("https://v.example/?p={picc}&c={mac}")
        .unwrap()
        .with_mode(mode);
    let (meta, file) = (AesKey::new([1; 16]), AesKey::new([2; 16]));
    let uid = [4, 1, 2, 3, 4, 5, 6];
    let (picc, mac) = match mode {
        SdmMode::Aes => (
            hex::encode_upper(sdm::encrypt_picc_data(&meta, Some(&uid), Some(7), &[9; 16])),
            sdm::sdm_mac(&file, Some(&uid), Some(7), b""),
        ),
        SdmMode::Lrp => (
            hex::encode_upper(sdm_lrp::encrypt_picc_data(
                &meta,
                Some(&uid),
                Some(7),
                &[3; 8],
                &[9; 16],
            )),
            sdm_lrp::sdm_mac(&file, Some(&uid), Some(7), b""),
        ),
    };
    let url = format!("https://v.example/?p={picc}&c={}", hex::encode_upper(mac));
    let keys = SunKeys {
        file_read: file,
        meta_read: Some(meta),
    };
    let started = Instant::now();
    for _ in 0..n {
        let v = sun::verify(&sun::parse_url(&t, &url).unwrap(), &keys).unwrap();
        assert!(v.genuine);
    }
    println!(
        "verify one {{picc}} scan, {mode}: {:>8.1} µs",
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    encode(200, Template::default(), "AES");
    encode(
        100,
        Template::parse("https://v.example/?p={picc}&c={mac}")
            .unwrap()
            .with_mode(SdmMode::Lrp),
        "LRP (switched from AES, --lrp-irreversible)",
    );
    verify(SdmMode::Aes, 2000);
    verify(SdmMode::Lrp, 2000);
}
