//! Shared helpers of the encoding and batch suites: the in-process simulator ones
//! (`tests/provision.rs`, `tests/provision_lrp.rs`, `tests/station.rs`) and the ones through
//! the real pcscd (`tests/pcsc_vpcd.rs`, `tests/pcsc_lrp.rs`, `tests/pcsc_station.rs`): a vpcd
//! port or a skip, `sim attach` bridges, a batch with a pulled tag, a tear-off and its
//! recovery, and the journal's one-code-per-tag check.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tag424::card::Card;
use tag424::provision::batch::{generate_xuids, BatchOptions, Summary};
use tag424::provision::journal::TagEntry;
use tag424::provision::station::run_batch;
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome};
use tag424::sim::dir::{SimDir, SimReader};
use tag424::sim::{ChipState, Fault, FaultKind, SimChip, SimTransport};

/// The `tag424` binary, hermetic (tests/run: `--no-profile`, cleared environment).
pub fn bin() -> Command {
    crate::run::tag424()
}

/// The vpcd port of `.ci/with-pcscd` (TAG424_VPCD_PORT), or `None` with a skip message; a
/// failure under CI=true, where a skipped test must never count as a pass.
pub fn vpcd_port() -> Option<u16> {
    match std::env::var("TAG424_VPCD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        Some(p) => Some(p),
        None => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but TAG424_VPCD_PORT is not set: run the tests through .ci/with-pcscd"
            );
            eprintln!("skipped: no pcscd with vpcd (run through .ci/with-pcscd to include the PC/SC tests)");
            None
        }
    }
}

/// Waits for vpcd's driver, which notices a previous bridge's disconnect (an earlier test's,
/// or another test file's) at its next poll and would close a connection made before that.
pub fn settle_vpcd() {
    std::thread::sleep(Duration::from_millis(1500));
}

/// `tag424 sim attach --vpcd 127.0.0.1:PORT --dir DIR ARGS` in the background, output dropped.
pub fn sim_attach(port: u16, dir: &Path, args: &[&str]) -> Child {
    bin()
        .args([
            "sim",
            "attach",
            "--vpcd",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A `batch --json` of `n` tags on "Virtual PCD 00 00" (fresh tags of `tags`, the first pulled
/// after 9 APDUs), with `extra` arguments: checks all `n` are encoded, the pull was seen and the
/// pulled tag finished; returns its stdout.
pub fn batch_with_a_pulled_tag(
    port: u16,
    tags: &Path,
    out: &Path,
    n: usize,
    extra: &[&str],
) -> String {
    let n_text = n.to_string();
    settle_vpcd();
    let mut bridge = sim_attach(
        port,
        tags,
        &[
            "--count",
            &n_text,
            "--tear-after",
            "9",
            "--idle",
            "0.4",
            "--gap",
            "0.6",
        ],
    );
    let batch = bin()
        .args([
            "batch",
            "--reader",
            "Virtual PCD 00 00",
            "--generate-xuids",
            &n_text,
            "--count",
            &n_text,
            "--trust-simulator",
        ])
        .args(extra)
        .args(["--json", "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = bridge.wait();
    let stdout = String::from_utf8_lossy(&batch.stdout).into_owned();
    assert!(
        batch.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&batch.stderr)
    );
    let events = events(&stdout);
    let done = done(&events);
    assert_eq!(done.len(), n, "{stdout}");
    // Put back on the same reader, the tag is resumed as a retry of its presentation
    // (`PcscCard::reconnect`).
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "retry" && e["tear_off"] == true),
        "the pulled tag was seen: {stdout}"
    );
    assert_eq!(
        done.iter()
            .filter(|e| e["result"]["recovered"] == true)
            .count(),
        1,
        "…and finished when presented again: {stdout}"
    );
    stdout
}

/// The events of a `batch --json` output, one JSON object a line.
pub fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `--json`: a retry after the tag left the field (`tear_off`) comes right after the
/// `tag_left` event that said so (one reader).
pub fn assert_tag_left_before_each_tear_off_retry(events: &[serde_json::Value]) {
    for (i, e) in events.iter().enumerate() {
        if e["event"] == "retry" && e["tear_off"] == true {
            assert!(
                i > 0 && events[i - 1]["event"] == "tag_left",
                "event {i}, a retry after a tear-off, follows no tag_left event: {events:#?}"
            );
        }
    }
}

/// The `tag` events (one per encoded tag) among `events`.
pub fn done(events: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    events.iter().filter(|e| e["event"] == "tag").collect()
}

/// The journal of `out`, read only, after checking it holds `n` verified tags with `n`
/// different codes.
pub fn verified_once(out: &Path, n: usize) -> Journal {
    let journal = Journal::read_only(out).unwrap();
    let verified: Vec<_> = journal.tags().filter(|t| t.verified).collect();
    assert_eq!(verified.len(), n);
    let codes: HashSet<&String> = verified.iter().map(|t| &t.xuid).collect();
    assert_eq!(codes.len(), n, "no code used twice");
    journal
}

/// Checks that the `n` chips hold the journal's five keys, each changed exactly once (never a
/// second ChangeKey from a wrong old key).
pub fn assert_chips_hold_the_journals_keys(journal: &Journal, states: &[ChipState], n: usize) {
    assert_eq!(states.len(), n, "one simulated tag per code");
    for state in states {
        let uid = hex::encode_upper(state.uid);
        let entry = journal.tag(&uid).expect("every tag is in the journal");
        let keys = entry.keys().unwrap();
        for k in 0..5u8 {
            assert_eq!(
                &state.keys[k as usize],
                keys.get(k).unwrap(),
                "tag {uid}: key {k} is not the journal's"
            );
        }
        assert_eq!(
            state.key_versions, [1; 5],
            "tag {uid}: every key changed once"
        );
    }
}

/// Checks `out/keys.csv` has a header and `n` rows.
pub fn assert_keys_csv_rows(out: &Path, n: usize) {
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert_eq!(keys.lines().count(), n + 1);
}

/// `run_batch` of `n` fresh tags from the simulator folder `tags` into the journal at `out`.
pub fn sim_batch(
    tags: &Path,
    out: &Path,
    n: usize,
    encode: EncodeOptions,
) -> (SimDir, Journal, Summary) {
    let sim = SimDir::open(tags).unwrap();
    let mut journal = Journal::open(out).unwrap();
    let xuids = generate_xuids(n);
    let mut reader = SimReader::new(sim.clone(), true).unwrap();
    let o = BatchOptions {
        encode,
        count: Some(n),
        stop: None,
        trace: None,
    };
    let summary = run_batch(&mut reader, &mut journal, &xuids, &o, &mut |_| {}).unwrap();
    (sim, journal, summary)
}

/// The URL a phone reads from a simulated chip in `state` (which keeps the tap's counter).
pub fn tap(state: &mut ChipState) -> String {
    let mut card = Card::new(SimTransport::new(SimChip::new(state.clone())));
    card.select_ndef_application().unwrap();
    let data = card.read_data(2, 0, 200).unwrap();
    *state = card.into_transport().chip.state;
    tag424::provision::layout::url_from_ndef(&data).unwrap()
}

/// Counts AuthenticateEV2First part-1 commands seen by a card.
pub fn counting_card(t: SimTransport) -> (Card<SimTransport>, Arc<Mutex<usize>>) {
    let n = Arc::new(Mutex::new(0));
    let m = n.clone();
    let card = Card::new(t).with_observer(move |e| {
        if e.command.get(1) == Some(&0x71) {
            *m.lock().unwrap() += 1;
        }
    });
    (card, n)
}

/// Encodes a factory chip of UID `uid` pulled at exchange `at` (`kind`), checking it left the
/// field when `at < apdus` (the flow's exchange count); returns the chip's transport.
pub fn torn_encode(
    journal: &mut Journal,
    opts: &EncodeOptions,
    next: &mut dyn FnMut(&Journal) -> Option<String>,
    uid: [u8; 7],
    (at, kind): (usize, FaultKind),
    apdus: usize,
) -> SimTransport {
    let chip = SimChip::new(ChipState::factory(uid));
    let mut card = Card::new(SimTransport::new(chip).with_fault(Fault { at, kind }));
    let first = encode_tag(&mut card, journal, opts, next, &mut |_| {});
    let t = card.into_transport();
    if at < apdus {
        let e = first.expect_err("the tag left the field");
        assert!(e.is_tear_off(), "{kind:?} at {at}: {e}");
    }
    t
}

/// Presents the torn tag `t` again and encodes it, checking it took at most `max_auths`
/// authentications; returns the card and the tag's journal entry.
pub fn finish_torn(
    mut t: SimTransport,
    journal: &mut Journal,
    opts: &EncodeOptions,
    next: &mut dyn FnMut(&Journal) -> Option<String>,
    (at, kind): (usize, FaultKind),
    max_auths: usize,
) -> (Card<SimTransport>, TagEntry) {
    t.reinsert();
    let (mut card, auths) = counting_card(t);
    let outcome = encode_tag(&mut card, journal, opts, next, &mut |_| {})
        .unwrap_or_else(|e| panic!("{kind:?} at {at}: {e}"));
    assert!(
        *auths.lock().unwrap() <= max_auths,
        "{kind:?} at {at}: {} authentications",
        auths.lock().unwrap()
    );
    let uid = match &outcome {
        Outcome::Encoded { uid, .. } | Outcome::AlreadyDone { uid, .. } => uid.clone(),
    };
    let entry = journal.tag(&uid).unwrap().clone();
    (card, entry)
}
