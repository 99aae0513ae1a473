//! A flaky reader (`sim:DIR?drop=P`, `sim:DIR?remove=P`): every tag is finished without the
//! operator, every code is on exactly one tag, the chips' keys are the journal's, and the
//! retries are counted.

mod batchhelp;
mod run;

use tag424::provision::batch::{generate_xuids, BatchEvent, BatchOptions, Summary};
use tag424::provision::station::run_batch;
use tag424::provision::{EncodeOptions, Journal};
use tag424::sim::dir::{SimDir, SimReader, SimReaderOptions};
use tag424::sun::Template;

/// A batch of `n` codes over a simulated reader with `query`; returns the summary, the
/// number of retry events and the number of failed events.
fn flaky_batch(tmp: &std::path::Path, query: &str, n: usize) -> (Summary, usize, usize) {
    flaky_batch_in(tmp, query, n, Template::default())
}

fn flaky_batch_in(
    tmp: &std::path::Path,
    query: &str,
    n: usize,
    template: Template,
) -> (Summary, usize, usize) {
    let sim = SimDir::open(&tmp.join("tags")).unwrap();
    let out = tmp.join("out");
    let mut journal = Journal::open(&out).unwrap();
    let xuids = generate_xuids(n);
    let mut reader = SimReader::new(sim.clone(), true)
        .unwrap()
        .with_options(SimReaderOptions::parse(query).unwrap());
    let o = BatchOptions {
        encode: EncodeOptions {
            lifecycle: Default::default(),
            template,
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        },
        count: None,
        stop: None,
        trace: None,
    };
    let (mut retries, mut failed) = (0, 0);
    let (mut tag_left, mut torn_retries) = (0, 0);
    let summary = run_batch(&mut reader, &mut journal, &xuids, &o, &mut |e| match e {
        BatchEvent::TagLeft => tag_left += 1,
        BatchEvent::Retry { retry, error } => {
            assert!(retry >= 1);
            assert!(error.is_interrupted(), "{error}");
            retries += 1;
            torn_retries += usize::from(error.is_tear_off());
        }
        BatchEvent::Failed { error } => {
            eprintln!("failed: {error}");
            failed += 1
        }
        _ => {}
    })
    .unwrap();
    // Every tag that left was announced (put it back) before its retry.
    assert_eq!(tag_left, torn_retries, "one TagLeft per tag that left");
    drop(journal);
    // Every code on exactly one verified tag.
    let journal = batchhelp::verified_once(&out, n);
    assert!(journal.tags().all(|t| t.verified));
    // The chips (their state files, as the simulated reader saved them) hold the journal's keys.
    batchhelp::assert_chips_hold_the_journals_keys(&journal, &sim.list().unwrap(), n);
    // summary.json counts the same retries.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["summary"]["retries"], summary.retries);
    assert_eq!(written["summary"]["retried_tags"], summary.retried_tags);
    (summary, retries, failed)
}

#[test]
fn a_reader_that_loses_one_answer_in_ten_finishes_every_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, retries, failed) = flaky_batch(tmp.path(), "drop=0.1&seed=424", 50);
    assert_eq!((s.encoded, s.unfinished, s.failed, failed), (50, 0, 0, 0));
    assert_eq!(s.retries, retries, "every retry is reported");
    assert!(
        s.retries > 50,
        "one answer in ten lost: {} retries",
        s.retries
    );
    assert!(s.retried_tags > 0 && s.retried_tags <= 50);
}

#[test]
fn tags_pulled_mid_sequence_are_finished_when_they_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, retries, failed) = flaky_batch(tmp.path(), "remove=0.05&seed=7", 50);
    assert_eq!((s.encoded, s.unfinished, s.failed, failed), (50, 0, 0, 0));
    assert_eq!(s.retries, retries, "every retry is reported");
    assert!(
        s.retries > 10,
        "one exchange in twenty pulls the tag: {} retries",
        s.retries
    );
}

#[test]
fn a_clean_reader_retries_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, retries, _) = flaky_batch(tmp.path(), "drop=0&remove=0", 5);
    assert_eq!(
        (s.encoded, s.retries, s.retried_tags, retries),
        (5, 0, 0, 0)
    );
    assert_eq!(s.exchanges, 75, "15 APDU exchanges per tag");
}

#[test]
fn an_lrp_batch_over_a_flaky_reader_finishes_every_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let template = Template::default().with_mode(tag424::crypto::sdm::SdmMode::Lrp);
    let (s, retries, failed) =
        flaky_batch_in(tmp.path(), "drop=0.08&remove=0.03&seed=11", 20, template);
    assert_eq!((s.encoded, s.unfinished, s.failed, failed), (20, 0, 0, 0));
    assert_eq!(s.retries, retries);
    assert!(s.retries > 0);
}

#[test]
fn an_authentication_delay_is_not_retried() {
    use tag424::card::Card;
    use tag424::card::{CardError, Sw};
    use tag424::crypto::AesKey;
    use tag424::sim::chip::DELAY_THRESHOLD;
    use tag424::sim::{ChipState, SimChip, SimTransport};
    // After failed authentications the chip answers part 1 with 91AD: the tool stops there
    // (issue 21: it explains the delay; the operator presents the tag again later) and sends
    // no second attempt into the chip's failed-attempt counter.
    let mut state = ChipState::factory([0x04, 9, 8, 7, 6, 5, 4]);
    state.failed_auths = DELAY_THRESHOLD;
    let mut card = Card::new(SimTransport::new(SimChip::new(state)));
    card.select_ndef_application().unwrap();
    let Err(err) = card.authenticate_ev2_first(0, &AesKey::FACTORY) else {
        panic!("91AD ends the authentication");
    };
    assert!(
        matches!(
            &err,
            CardError::Status {
                sw: Sw::AuthenticationDelay,
                ..
            }
        ),
        "{err:?}"
    );
}
