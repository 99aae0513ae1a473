//! Several readers, one batch, in process: three simulated readers with a latency, one
//! journal, one code list; a tag pulled from one reader mid-sequence is finished on another.

mod batchhelp;
mod run;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tag424::provision::batch::{generate_xuids, BatchEvent, BatchOptions};
use tag424::provision::keys::KeyNo;
use tag424::provision::station::{run_batch, run_readers};
use tag424::provision::{EncodeOptions, Journal, Outcome};
use tag424::sim::dir::{DirTransport, SimDir, SimReader, SimReaderOptions};
use tag424::sim::{Fault, FaultKind, SimChip, SimTransport};
use tag424::sun::Template;
use tag424::transport::TagSource;

type Err = Box<dyn std::error::Error + Send + Sync>;
/// A tag pulled from a reader: its directory and UID.
type Pulled = Arc<Mutex<Option<(SimDir, [u8; 7])>>>;

/// A simulated reader whose first tag is pulled after `pull_at` exchanges (if set), and which
/// presents a tag pulled elsewhere when one is waiting in `pulled`.
struct Reader {
    sim: SimReader,
    dir: SimDir,
    pull_at: Option<usize>,
    /// (directory, UID) of a tag pulled from some reader, to present here.
    pulled: Pulled,
    torn_uid: Option<[u8; 7]>,
    take_pulled: bool,
}

impl TagSource for Reader {
    type Tag = DirTransport;
    fn next_tag(&mut self) -> Result<Option<DirTransport>, Err> {
        if let Some(uid) = self.torn_uid.take() {
            // The operator took the torn tag to another reader.
            *self.pulled.lock().unwrap() = Some((self.dir.clone(), uid));
        }
        if self.take_pulled {
            if let Some((dir, uid)) = self.pulled.lock().unwrap().take() {
                let path = dir.path().join(format!("{}.json", hex::encode_upper(uid)));
                let state = SimDir::load_file(&path)?;
                return Ok(Some(
                    DirTransport::new(dir, state).with_latency(Duration::from_millis(2)),
                ));
            }
        }
        let Some(mut t) = self.sim.next_tag()? else {
            return Ok(None);
        };
        if let Some(at) = self.pull_at.take() {
            let state = t.state().clone();
            self.torn_uid = Some(state.uid);
            t.inner = SimTransport::new(SimChip::new(state))
                .with_latency(Duration::from_millis(2))
                .with_fault(Fault {
                    at,
                    kind: FaultKind::AfterApply,
                });
        }
        Ok(Some(t))
    }
}

#[test]
fn three_readers_share_one_journal_and_finish_a_pulled_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut journal = Journal::open(&out).unwrap();
    let xuids = generate_xuids(30);
    let pulled: Pulled = Arc::new(Mutex::new(None));
    let options = SimReaderOptions {
        latency: Duration::from_millis(2),
        ..SimReaderOptions::default()
    };
    let mut readers: Vec<Reader> = (0..3)
        .map(|i| {
            let dir = SimDir::open(&tmp.path().join(format!("reader{i}"))).unwrap();
            Reader {
                sim: SimReader::new(dir.clone(), true)
                    .unwrap()
                    .with_options(options),
                dir,
                // Reader 0's first tag leaves after ChangeKey 2 (exchange 11), keys journaled.
                pull_at: (i == 0).then_some(10),
                pulled: pulled.clone(),
                torn_uid: None,
                take_pulled: i == 2,
            }
        })
        .collect();
    let opts = BatchOptions {
        encode: EncodeOptions {
            lifecycle: Default::default(),
            template: Template::default(),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        },
        count: None,
        stop: None,
        trace: None,
    };
    let mut per_reader = [0usize; 3];
    let mut finished_elsewhere = Vec::new();
    let summary = run_readers(&mut readers, &mut journal, &xuids, &opts, &mut |r, e| {
        if let BatchEvent::Done {
            outcome: Outcome::Encoded { recovered, uid, .. },
            ..
        } = e
        {
            per_reader[r] += 1;
            if *recovered {
                finished_elsewhere.push((r, uid.clone()));
            }
        }
    })
    .unwrap();
    // Counted once, done: the summary is the journal's state at the end, so the tag pulled
    // from reader 0 and finished on reader 2 is not also "left mid-encoding".
    assert_eq!(summary.encoded, 30, "{summary:?}");
    assert_eq!(summary.recovered, 1);
    assert_eq!(summary.unfinished, 0, "{summary:?}");
    assert_eq!((summary.failed, summary.skipped), (0, 0), "{summary:?}");
    assert!(summary.stopped.is_none(), "{summary:?}");
    assert!(summary.simulated, "trust_simulator: a rehearsal");
    // summary.json says the same, and so does the journal check.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["summary"], serde_json::to_value(&summary).unwrap());
    assert_eq!(written["simulated"], true);
    let check = Journal::check(&out).unwrap();
    assert!(check.tags.iter().all(|t| t.verified), "every tag done");
    assert!(
        per_reader.iter().all(|&n| n > 0),
        "every reader worked: {per_reader:?}"
    );
    assert_eq!(finished_elsewhere.len(), 1);
    assert_eq!(
        finished_elsewhere[0].0, 2,
        "the pulled tag was finished on reader 2"
    );

    // One journal: every code on exactly one verified tag, every chip holding the journal's keys.
    let journal = batchhelp::verified_once(&out, 30);
    let mut chips = 0;
    for i in 0..3 {
        for state in SimDir::open(&tmp.path().join(format!("reader{i}")))
            .unwrap()
            .list()
            .unwrap()
        {
            let uid = hex::encode_upper(state.uid);
            let Some(t) = journal.tag(&uid) else {
                // A fresh tag presented after the last code was taken: left untouched.
                assert!(
                    state.keys.iter().all(|k| k.is_factory()),
                    "{uid} changed without a journal entry"
                );
                continue;
            };
            for k in KeyNo::ALL {
                assert_eq!(
                    &state.keys[k.get() as usize],
                    t.keys().unwrap().key(k),
                    "{uid} key {}",
                    k.get()
                );
            }
            chips += 1;
        }
    }
    assert_eq!(chips, 30);
    batchhelp::assert_keys_csv_rows(&out, 30);
}

/// A resumed batch over a simulated reader's folder is presented only the tags it has not
/// finished: the interrupted one (finished now) and fresh ones, never the ones already done.
#[test]
fn a_resumed_simulated_batch_presents_only_the_tags_not_done() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let dir = SimDir::open(&tmp.path().join("tags")).unwrap();
    let xuids = generate_xuids(5);
    let opts = |count| BatchOptions {
        encode: EncodeOptions {
            lifecycle: Default::default(),
            template: Template::default(),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        },
        count,
        stop: None,
        trace: None,
    };
    let mut journal = Journal::open(&out).unwrap();
    let mut reader = SimReader::new(dir.clone(), true).unwrap();
    let first = run_batch(
        &mut reader,
        &mut journal,
        &xuids,
        &opts(Some(3)),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(first.encoded, 3);
    // A fourth tag of the folder is pulled after ChangeKey 2: its keys are journaled.
    let state = dir.new_tag().unwrap();
    let torn_uid = hex::encode_upper(state.uid);
    let mut t = DirTransport::new(dir.clone(), state.clone());
    t.inner = SimTransport::new(SimChip::new(state)).with_fault(Fault {
        at: 10,
        kind: FaultKind::AfterApply,
    });
    let mut card = tag424::card::Card::new(t);
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let e = tag424::provision::encode_tag(
        &mut card,
        &mut journal,
        &opts(None).encode,
        &mut next,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.is_tear_off(), "{e}");
    drop(journal);

    // The same folder again, all codes: the torn tag is finished, one fresh tag takes the last
    // code, and none of the three done tags is presented.
    let mut journal = Journal::open(&out).unwrap();
    let mut reader = SimReader::new(dir.clone(), true).unwrap();
    let mut presented = Vec::new();
    let second = run_batch(&mut reader, &mut journal, &xuids, &opts(None), &mut |e| {
        if let BatchEvent::Done { outcome, .. } = e {
            presented.push(outcome.clone());
        }
    })
    .unwrap();
    assert!(
        !presented
            .iter()
            .any(|o| matches!(o, Outcome::AlreadyDone { .. })),
        "a done tag was presented again: {presented:?}"
    );
    assert_eq!(presented.len(), 2, "{presented:?}");
    assert!(
        matches!(&presented[0], Outcome::Encoded { uid, recovered: true, .. } if *uid == torn_uid),
        "{presented:?}"
    );
    assert_eq!(
        (
            second.encoded,
            second.recovered,
            second.skipped,
            second.unfinished
        ),
        (2, 1, 0, 0),
        "{second:?}"
    );
    // Every tag of the folder holds its journaled keys.
    drop(journal);
    batchhelp::verified_once(&out, 5);
    assert_eq!(dir.list().unwrap().len(), 5);
}

/// A folder that accepted simulated chips stays a rehearsal: a later run without
/// trust_simulator still says "simulated" (its keys.csv lists simulated tags' keys).
#[test]
fn a_rehearsal_folder_stays_simulated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let xuids = generate_xuids(2);
    let opts = |trust| BatchOptions {
        encode: EncodeOptions {
            lifecycle: Default::default(),
            template: Template::default(),
            trust_simulator: trust,
            master: None,
            locks: Default::default(),
        },
        count: Some(1),
        stop: None,
        trace: None,
    };
    let dir = SimDir::open(&tmp.path().join("tags")).unwrap();
    let mut journal = Journal::open(&out).unwrap();
    let mut reader = SimReader::new(dir.clone(), true).unwrap();
    let first = run_batch(&mut reader, &mut journal, &xuids, &opts(true), &mut |_| {}).unwrap();
    assert!(first.simulated && first.encoded == 1, "{first:?}");
    // No tag this time (an empty stack), and simulated chips are not accepted.
    let mut empty = SimReader::new(SimDir::open(&tmp.path().join("none")).unwrap(), false).unwrap();
    let second = run_batch(&mut empty, &mut journal, &xuids, &opts(false), &mut |_| {}).unwrap();
    assert!(second.simulated, "{second:?}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["simulated"], true);
}
