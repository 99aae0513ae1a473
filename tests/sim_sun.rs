//! The simulated chip mirrors exactly NXP's published SUN URLs (AN12196 §3.4): given the same
//! UID, counter, keys, file data and PICCData random bytes, a phone's read of the simulated tag
//! returns the document's URL byte for byte — PICCData, encrypted file data and SDMMAC included.

mod hostview;

use serde_json::Value;
use tag424::card::cmd::iso_binary::BinaryTarget;
use tag424::card::cmd::select::FID_NDEF;
use tag424::card::{Card, FixedRandom};
use tag424::crypto::{aes_decrypt_block, AesKey};
use tag424::provision::layout::{layout, url_from_ndef};
use tag424::sim::{ChipState, SimChip, SimTransport};
use tag424::sun::template::{Part, Template};

fn vector(id: &str) -> Value {
    let all: Vec<Value> = serde_json::from_str(include_str!("data/nxp.json")).unwrap();
    all.into_iter().find(|v| v["id"] == id).unwrap()
}

fn phone_read(chip: SimChip) -> String {
    let mut card = Card::new(SimTransport::new(chip));
    card.select_ndef_application().unwrap();
    card.select_file_id(FID_NDEF).unwrap();
    let nlen = card.iso_read_binary(BinaryTarget::Current(0), 2).unwrap();
    let n = u16::from_be_bytes([nlen[0], nlen[1]]) as usize;
    let mut file = nlen;
    file.extend(card.iso_read_binary(BinaryTarget::Current(2), n).unwrap());
    url_from_ndef(&file).unwrap()
}

fn check(id: &str) {
    let v = vector(id);
    let (i, e) = (&v["inputs"], &v["expected"]);
    let url = i["url"].as_str().unwrap();
    let picc = i["picc_enc_data"].as_str().unwrap();
    let enc = i["enc_file_data"].as_str().unwrap();
    let mac = i["sdmmac"].as_str().unwrap();
    let mut t = url.replace(picc, "{picc}").replace(mac, "{mac}");
    if !enc.is_empty() {
        t = t.replace(enc, "{enc}");
    }
    let template = Template::parse(&t).unwrap();
    let mut plan = layout(&template, "x").unwrap();
    // The file data the chip encrypts into {enc}: the published plaintext.
    if let Some((off, _)) = plan.settings.sdm.as_ref().unwrap().enc_file_data {
        let plain = hex::decode(e["file_data"].as_str().unwrap()).unwrap();
        plan.file[off as usize..off as usize + plain.len()].copy_from_slice(&plain);
    }
    assert!(template.has(&Part::Picc));
    // PICCData's random padding: what the published block decrypts to (keys are all zero here).
    let meta = AesKey::from_slice(&hex::decode(i["sdm_meta_read_key"].as_str().unwrap()).unwrap())
        .unwrap();
    let plain_picc = aes_decrypt_block(&meta, &hex::decode(picc).unwrap().try_into().unwrap());
    let uid: [u8; 7] = hex::decode(e["uid"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let ctr = e["read_ctr_int"].as_u64().unwrap() as u32;
    let mut state = ChipState::factory(uid);
    {
        let f = state.file_mut(2).unwrap();
        f.data[..plan.file.len()].copy_from_slice(&plan.file);
        hostview::set_settings(f, &plan.settings);
        f.sdm_read_ctr = ctr - 1;
    }
    let chip = SimChip::with_rng(state, FixedRandom::new(plain_picc.to_vec()));
    assert_eq!(phone_read(chip), url, "{id}");
}

#[test]
fn an12196_t4_sdmmac_empty_input() {
    check("an12196-t4-sdmmac-empty-input");
}

#[test]
fn an12196_t5_sdmmac_input_at_offset() {
    check("an12196-t5-sdmmac-input-at-offset");
}

#[test]
fn an12196_t3_sun_url_picc_enc_cmac() {
    check("an12196-t3-sun-url-picc-enc-cmac");
}
