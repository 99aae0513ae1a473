//! `batch --lrp-irreversible` through the real PC/SC stack (pcscd, vpcd, the simulated chip),
//! with the first tag pulled right after the irreversible switch. Needs `.ci/with-pcscd`
//! (TAG424_VPCD_PORT); skipped with a message without it, and failing under CI=true.

mod batchhelp;
mod run;

use tag424::provision::Journal;
use tag424::sim::dir::SimDir;

#[test]
fn an_lrp_batch_through_pcscd_survives_a_pull_right_after_the_switch() {
    let Some(port) = batchhelp::vpcd_port() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    // 9 APDUs: select, GetVersion ×3, Read_Sig, AuthenticateEV2First ×2, WriteData (the NDEF
    // file, still AES), the switch.
    let template = "https://verify.example/s?p={picc}&c={mac}";
    batchhelp::batch_with_a_pulled_tag(
        port,
        &tags,
        &out,
        3,
        &[
            "--lrp-irreversible",
            "--yes-irreversible",
            "--url",
            template,
        ],
    );
    // The pull came after the switch was sent: each tag's switch is journaled once (a tag
    // pulled before it would be switched, and journaled, again when finished).
    let text = std::fs::read_to_string(out.join(tag424::provision::journal::JOURNAL_FILE)).unwrap();
    assert_eq!(
        text.matches("\"event\":\"lrp_switch\"").count(),
        3,
        "{text}"
    );
    let journal = Journal::open(&out).unwrap();
    let sim = SimDir::open(&tags).unwrap();
    for state in sim.list().unwrap() {
        assert!(state.lrp);
        let entry = journal.tag(&hex::encode_upper(state.uid)).unwrap();
        for k in tag424::provision::keys::KeyNo::ALL {
            assert_eq!(&state.keys[k.get() as usize], entry.keys().unwrap().key(k));
        }
    }
}
