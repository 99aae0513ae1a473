//! Several readers, one batch: one worker thread per reader, one journal, one code list.
//!
//! Each worker waits for a tag on its reader and encodes it (or finishes it, or skips it); the
//! journal is held only for each lookup or append (see [`JournalAccess`]), so the readers'
//! radio time overlaps. A code is taken atomically: under the journal's lock, the first code
//! neither used in the journal nor claimed by another worker's tag in progress. A tag pulled
//! from one reader mid-sequence is in the journal, so whichever reader it is presented to
//! next finishes it. One reader is the same loop with one worker, run on the caller's thread.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::card::Card;
use crate::transport::{TagSource, Transport};

use super::batch::{unfinished, write_results, BatchEvent, BatchOptions, RunLog, Stop, Summary};
use super::encode::{encode_tag, Outcome, ProvisionError};
use super::journal::{Journal, JournalAccess, JournalError};

type Events<'e> = dyn FnMut(usize, BatchEvent<'_>) + Send + 'e;

/// What the workers share.
struct Station<'a, 'e> {
    journal: Mutex<&'a mut Journal>,
    /// Codes taken by a tag in progress and not yet journaled.
    claimed: Mutex<HashSet<String>>,
    /// Tags encoded in this run (for `count`).
    encoded: AtomicUsize,
    /// What the run saw; the summary is the journal's state against it.
    run: Mutex<RunLog>,
    /// The work is done (or failed for good): every worker leaves after its current tag.
    finished: AtomicBool,
    events: Mutex<&'a mut Events<'e>>,
    xuids: &'a [String],
    opts: &'a BatchOptions,
    /// How many readers feed the batch.
    readers: usize,
}

impl Station<'_, '_> {
    fn emit(&self, reader: usize, e: BatchEvent<'_>) {
        let mut f = self.events.lock().unwrap_or_else(|e| e.into_inner());
        (*f)(reader, e);
    }

    fn stopping(&self) -> bool {
        self.opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// Every code used and nothing left half-done, or `count` tags encoded.
    fn done(&self, journal: &Journal) -> bool {
        work_done(
            journal,
            self.xuids,
            self.opts,
            self.encoded.load(Ordering::SeqCst),
        )
    }

    fn run(&self) -> std::sync::MutexGuard<'_, RunLog> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop_with(&self, why: Stop) {
        let mut r = self.run();
        if r.stopped.is_none() {
            r.stopped = Some(why);
        }
    }

    /// A stop reason for a reader that ended its wait: the operator, or the reader itself.
    fn why(&self, reader_says: impl FnOnce() -> Stop) -> Stop {
        if self.stopping() {
            Stop::Interrupted
        } else {
            reader_says()
        }
    }
}

/// Every code used and nothing left half-done, or `count` tags encoded (`encoded` in this run).
fn work_done(journal: &Journal, xuids: &[String], opts: &BatchOptions, encoded: usize) -> bool {
    opts.count.is_some_and(|c| encoded >= c)
        || (!journal.tags().any(unfinished) && xuids.iter().all(|x| journal.xuid_used(x)))
}

/// Runs one batch over several readers until `count` tags are encoded, the codes run out, or
/// every reader stopped; events carry the reader's index in `sources`. `keys.csv`,
/// `associate.csv` and `summary.json` are rewritten after every verified tag. A reader that
/// chooses its tags (the simulated one) is told which tags the batch has finished
/// ([`TagSource::skip_finished`]). The summary is the journal's state at the end
/// ([`RunLog::summary`]).
pub fn run_readers<S: TagSource + Send>(
    sources: &mut [S],
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
    on_event: &mut Events<'_>,
) -> Result<Summary, JournalError> {
    let wakers: Vec<_> = sources.iter().filter_map(|s| s.waker()).collect();
    let finished = |uid: &[u8; 7]| {
        journal
            .tag(&hex::encode_upper(uid))
            .is_some_and(super::batch::finished)
    };
    for s in sources.iter_mut() {
        s.skip_finished(&finished);
    }
    let station = Station {
        run: Mutex::new(RunLog::start(journal)),
        journal: Mutex::new(journal),
        claimed: Mutex::new(HashSet::new()),
        encoded: AtomicUsize::new(0),
        finished: AtomicBool::new(false),
        events: Mutex::new(on_event),
        xuids,
        opts,
        readers: sources.len(),
    };
    let result: Result<(), JournalError> = if sources.len() == 1 {
        work(&station, 0, &mut sources[0])
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = sources
                .iter_mut()
                .enumerate()
                .map(|(i, s)| {
                    let st = &station;
                    scope.spawn(move || work(st, i, s))
                })
                .collect();
            // A reader asleep in a PC/SC wait does not see the batch end on another reader or a
            // Ctrl-C: wake the waits until every worker has left.
            while !handles.iter().all(|h| h.is_finished()) {
                if station.finished.load(Ordering::SeqCst) || station.stopping() {
                    wakers.iter().for_each(|w| w());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut first = Ok(());
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(JournalError::Io {
                        path: Default::default(),
                        source: std::io::Error::other("a reader's worker panicked"),
                    })
                });
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
    };
    let Station {
        journal,
        run,
        encoded,
        ..
    } = station;
    let journal = journal.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut run = run.into_inner().unwrap_or_else(|e| e.into_inner());
    result?;
    if work_done(journal, xuids, opts, encoded.into_inner())
        && run.stopped != Some(Stop::Interrupted)
    {
        run.stopped = None;
    }
    write_results(journal, xuids, opts, &run)
}

/// How many times one presentation of a tag is resumed after a cut exchange before it is
/// left unfinished (until it is presented again). Each resume starts with the tag's identity
/// and state (about 10 to 20 exchanges), so a reader that loses one answer in ten needs a few
/// on most tags and now and then twenty; a tag that never gets through costs at most this
/// many resumes.
pub const RETRIES: usize = 30;

/// One attempt at the tag on `card`: encodes it, or resumes it from the journal; a code taken
/// for it and not journaled is free again after.
fn attempt<T: Transport>(
    st: &Station<'_, '_>,
    reader: usize,
    card: &mut Card<T>,
    journal: &mut &Mutex<&mut Journal>,
) -> Result<Outcome, ProvisionError> {
    let mut mine: Option<String> = None;
    let mut next_xuid = |j: &Journal| {
        let mut claimed = st.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = st.opts.count {
            if st.encoded.load(Ordering::SeqCst) + claimed.len() >= c {
                return None;
            }
        }
        let x = st
            .xuids
            .iter()
            .find(|x| !j.xuid_used(x) && !claimed.contains(*x))?
            .clone();
        claimed.insert(x.clone());
        mine = Some(x.clone());
        Some(x)
    };
    let result = encode_tag(card, journal, &st.opts.encode, &mut next_xuid, &mut |s| {
        st.emit(reader, BatchEvent::Step(s))
    });
    if let Some(x) = mine.take() {
        // Journaled by now (the code is used) or never planned (the code is free again).
        st.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&x);
    }
    result
}

/// One reader's loop.
fn work<S: TagSource>(
    st: &Station<'_, '_>,
    reader: usize,
    source: &mut S,
) -> Result<(), JournalError> {
    let finish_all = || st.finished.store(true, Ordering::SeqCst);
    let mut journal = &st.journal;
    loop {
        if st.finished.load(Ordering::SeqCst) || journal.with(|j| st.done(j)) {
            finish_all();
            return Ok(());
        }
        if st.stopping() {
            st.stop_with(Stop::Interrupted);
            return Ok(());
        }
        st.emit(reader, BatchEvent::WaitingForTag);
        let tag = match source.next_tag() {
            Ok(Some(t)) => t,
            Ok(None) if st.finished.load(Ordering::SeqCst) => return Ok(()),
            Ok(None) => {
                st.stop_with(st.why(|| Stop::NoMoreTags));
                return Ok(());
            }
            Err(e) if st.finished.load(Ordering::SeqCst) => {
                let _ = e;
                return Ok(());
            }
            Err(e) => {
                st.stop_with(st.why(|| Stop::Reader(e.to_string())));
                return Ok(());
            }
        };
        let started = Instant::now();
        let mut card = Card::new(tag);
        // With several readers each tag's exchanges are written as one block when it is done;
        // one reader writes them as they happen (a crash keeps every line before it).
        let trace = st.opts.trace.as_ref().map(|t| {
            if st.readers > 1 {
                t.grouped()
            } else {
                t.clone()
            }
        });
        if let Some(t) = &trace {
            t.comment(&format!(
                "tag presented at reader {}, {}",
                crate::transport::reader_number(source, reader),
                super::journal::now()
            ));
            card = card.with_observer(t.observer());
        }
        // A cut exchange (the tag left, or its answer was lost) is retried on the same tag:
        // the reader reconnects (which resets the tag's session) and `encode_tag` starts
        // again from the journal and the chip's state, as for a tag presented again.
        let mut retries = 0;
        let result = loop {
            let result = attempt(st, reader, &mut card, &mut journal);
            match &result {
                Err(e)
                    if e.is_interrupted() && retries < RETRIES && !st.stopping() && {
                        if e.is_tear_off() {
                            // A PC/SC reader waits here for the tag to be put back.
                            st.emit(reader, BatchEvent::TagLeft);
                        }
                        card.transport().reconnect()
                    } =>
                {
                    retries += 1;
                    if let Some(t) = &trace {
                        t.comment(&format!("retry {retries} after: {e}"));
                    }
                    st.emit(
                        reader,
                        BatchEvent::Retry {
                            retry: retries,
                            error: e,
                        },
                    );
                }
                _ => break result,
            }
        };
        {
            let mut r = st.run();
            r.exchanges += card.exchanges();
            r.retried(retries);
            r.tag(&result);
        }
        match result {
            Ok(outcome) => {
                if let Outcome::Encoded { .. } = &outcome {
                    st.encoded.fetch_add(1, Ordering::SeqCst);
                    journal.with(|j| write_results(j, st.xuids, st.opts, &st.run()))?;
                }
                st.emit(
                    reader,
                    BatchEvent::Done {
                        outcome: &outcome,
                        elapsed: started.elapsed(),
                    },
                );
            }
            Err(ProvisionError::Journal(e)) => {
                finish_all();
                return Err(e);
            }
            Err(ProvisionError::NoXuidLeft { .. }) => {
                // No code for a fresh tag on this reader: the others finish what is in
                // progress; a code they free again is not worth waiting for.
                return Ok(());
            }
            Err(error) => {
                st.emit(reader, BatchEvent::Failed { error: &error });
            }
        }
        let pending = journal.with(|j| j.tags().filter(|t| unfinished(t)).count());
        st.emit(reader, BatchEvent::Unfinished(pending));
        if journal.with(|j| st.done(j)) {
            // The work is done: release the tag without waiting for its removal.
            finish_all();
            return Ok(());
        }
        st.emit(reader, BatchEvent::RemoveTag);
        if let Err(e) = source.remove(card.into_transport()) {
            if !st.finished.load(Ordering::SeqCst) {
                st.stop_with(st.why(|| Stop::Reader(e.to_string())));
            }
            return Ok(());
        }
    }
}

/// Runs the batch on one reader until `count` tags are encoded, the codes run out or the
/// reader has no more tags; the run ends right after the last tag is verified (no wait for its
/// removal). `keys.csv`, `associate.csv` and `summary.json` are rewritten after every verified
/// tag. The loop is [`run_readers`] with one reader.
pub fn run_batch<S: TagSource + Send>(
    source: &mut S,
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
    on_event: &mut (dyn FnMut(BatchEvent<'_>) + Send),
) -> Result<Summary, JournalError> {
    run_readers(
        std::slice::from_mut(source),
        journal,
        xuids,
        opts,
        &mut |_, e| on_event(e),
    )
}
