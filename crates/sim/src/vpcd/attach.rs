//! An operator at a reader, simulated: [`attach`] presents a directory's tags one after another
//! through vpcd, removes each when the host is done with it (or tears it off mid-sequence for
//! recovery tests), and reports what happened to each.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{connect, serve, Control, Flow, TapEndReason, TapEvent, VpcdError, VpcdOptions};
use crate::dir::{SimDir, SimDirError};
use crate::{ChipState, SimChip};

/// Why a tag was removed from the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedBy {
    /// The host was done: the reader powered the tag off (`00`) after at least one APDU.
    PowerOff,
    /// `max_apdus` APDUs were answered (a tear-off in the middle of the host's sequence).
    MaxApdus,
    /// No APDU for the idle timeout (after at least one).
    Idle,
    /// The stop flag was raised (Ctrl-C).
    Stopped,
    /// vpcd closed the connection.
    ReaderClosed,
    /// Pulled at random mid-sequence ([`AttachPolicy::pull`]); presented again after.
    Pulled,
}

/// Tags pulled at random points of the host's sequence and put back (a flaky hand at a real
/// reader): at each APDU, with probability `ppm` parts per million, the tag leaves the field,
/// with even odds right after its answer or before it (the chip applied the command, the host
/// never hears back). The tag is presented again after the swap gap with its state as the
/// pull left it. A tag is pulled at most [`Pull::PER_TAG`] times, so every tag can finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pull {
    /// Probability of a pull at each APDU, in parts per million.
    pub ppm: u32,
    /// Seed of the draws: the same seed and APDUs give the same pulls.
    pub seed: u64,
}

impl Pull {
    /// The most pulls of one tag.
    pub const PER_TAG: usize = 3;
}

/// When an operator takes the tag off the reader: the host is done with it (it powered the tag
/// off after talking to it, or went quiet), or, for tear-off tests, after `max_apdus` APDUs.
/// A tag the host never talks to stays in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// Remove after this many APDUs (a tear-off test); `None`: never on a count.
    pub max_apdus: Option<usize>,
    /// Remove after this long without an APDU (after at least one).
    pub idle: Duration,
}

impl Removal {
    /// Whether this event ends the tap, and why.
    pub fn decide(&self, e: &TapEvent) -> Option<RemovedBy> {
        match *e {
            TapEvent::Control {
                control: Control::PowerOff,
                apdus,
            } if apdus > 0 => Some(RemovedBy::PowerOff),
            TapEvent::Apdu { index, .. } if self.max_apdus.is_some_and(|m| index >= m) => {
                Some(RemovedBy::MaxApdus)
            }
            TapEvent::Tick {
                since_last_apdu: Some(t),
                ..
            } if t >= self.idle => Some(RemovedBy::Idle),
            _ => None,
        }
    }
}

/// How [`attach`] presents the directory's tags.
#[derive(Debug, Clone)]
pub struct AttachPolicy {
    /// Distinct tags to present in total; `None`: until the stop flag (or the tags run out).
    pub count: Option<usize>,
    /// Remove the first tag after this many APDUs (answered; `0` acts as `1`), then present it
    /// again (with its saved state) so the host must finish it. The second presentation does
    /// not count in `count`. If the host is done with the first tag before, nothing is torn.
    pub tear_after: Option<usize>,
    /// Create factory tags when the directory's tags are used up.
    pub fresh: bool,
    /// Remove a tag when no APDU came for this long (after at least one).
    pub idle_timeout: Duration,
    /// Raised (e.g. by a Ctrl-C handler): remove the current tag and return.
    pub stop: Option<Arc<AtomicBool>>,
    /// Time between one tag leaving and the next arriving. pcscd learns of a removal only at
    /// its next presence poll of vpcd (every 400 ms); a faster swap is invisible to PC/SC, as
    /// if the same tag had stayed. A person swapping tags takes longer than this anyway.
    pub swap_gap: Duration,
    /// With `tear_after`: instead of presenting the torn tag again here, hand it to another
    /// reader's directory (its state moves there), as an operator who takes a pulled tag to
    /// the next reader does. An attach serving that directory presents it next.
    pub tear_to: Option<SimDir>,
    /// Pull tags at random points of the sequence and put them back ([`Pull`]).
    pub pull: Option<Pull>,
}

impl Default for AttachPolicy {
    fn default() -> Self {
        AttachPolicy {
            count: None,
            tear_after: None,
            fresh: true,
            idle_timeout: Duration::from_secs(5),
            stop: None,
            swap_gap: Duration::from_millis(900),
            tear_to: None,
            pull: None,
        }
    }
}

/// One presentation of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagReport {
    /// The tag's UID.
    pub uid: [u8; 7],
    /// C-APDUs answered.
    pub apdus: usize,
    /// Why it left the field.
    pub removed_by: RemovedBy,
    /// The reader saw the tag (answered the ATR request at least once).
    pub in_field: bool,
    /// The tag's state changed (and was saved).
    pub changed: bool,
    /// The tag was new (created by `fresh`).
    pub created: bool,
    /// The second presentation of a torn tag.
    pub again: bool,
}

/// Why [`attach`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachEnd {
    /// `count` tags were presented.
    Count,
    /// The directory's tags were used up (and `fresh` was off).
    Exhausted,
    /// The stop flag was raised.
    Stopped,
}

/// Every presentation, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSummary {
    /// Every presentation, in order (a torn tag appears twice).
    pub tags: Vec<TagReport>,
    /// Why the attach returned.
    pub end: AttachEnd,
}

/// Progress of [`attach_with`].
#[derive(Debug, Clone, Copy)]
pub enum AttachEvent<'a> {
    /// A tag is about to be presented (connecting).
    Presenting {
        /// The tag's UID.
        uid: [u8; 7],
        /// The tag was just created (factory state).
        created: bool,
        /// The second presentation of a torn tag.
        again: bool,
    },
    /// The reader accepted it: the tag is in the field.
    InField {
        /// The tag's UID.
        uid: [u8; 7],
    },
    /// Every event of the tap, for tracing.
    Tap {
        /// The tag's UID.
        uid: [u8; 7],
        /// The event.
        event: &'a TapEvent<'a>,
    },
    /// The tag was removed.
    Removed(&'a TagReport),
}

/// A stack of tags from `dir`, one after another: the directory's existing tags in UID order
/// (each once per run, factory or not), then (with `policy.fresh`) new factory tags. Each tag
/// is in the field until [`Removal`] says the host is done; its state is saved to `dir` after
/// every APDU that changed it.
pub fn attach(
    opts: &VpcdOptions,
    dir: &SimDir,
    policy: &AttachPolicy,
) -> Result<AttachSummary, VpcdError> {
    attach_with(opts, dir, policy, &mut |_| {})
}

/// [`attach`], reporting progress to `on`.
pub fn attach_with(
    opts: &VpcdOptions,
    dir: &SimDir,
    policy: &AttachPolicy,
    on: &mut dyn FnMut(AttachEvent),
) -> Result<AttachSummary, VpcdError> {
    let stopped = || {
        policy
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    };
    let mut queue: Vec<[u8; 7]> = dir.list()?.into_iter().map(|s| s.uid).collect();
    queue.reverse();
    let mut seen: HashSet<[u8; 7]> = HashSet::new();
    let mut tags: Vec<TagReport> = Vec::new();
    let mut distinct = 0usize;
    // A tag to present again (torn, or never reached the reader), and whether it was counted.
    let mut again: Option<(ChipState, bool, bool)> = None; // (state, created, counted)
    let mut rng = policy.pull.map(|p| StdRng::seed_from_u64(p.seed));
    let mut pulls: HashMap<[u8; 7], usize> = HashMap::new();
    loop {
        if stopped() {
            return Ok(AttachSummary {
                tags,
                end: AttachEnd::Stopped,
            });
        }
        let (state, created, counted, is_again) = match again.take() {
            Some((s, created, counted)) => (s, created, counted, true),
            None => {
                if policy.count.is_some_and(|c| distinct >= c) {
                    return Ok(AttachSummary {
                        tags,
                        end: AttachEnd::Count,
                    });
                }
                match next_tag(dir, &mut queue, &mut seen, policy.fresh)? {
                    // A tag handed over from another reader was counted there.
                    Some((s, Arrival::HandedOver)) => (s, false, true, true),
                    Some((s, arrival)) => (s, arrival == Arrival::Created, false, false),
                    None => {
                        return Ok(AttachSummary {
                            tags,
                            end: AttachEnd::Exhausted,
                        })
                    }
                }
            }
        };
        let uid = state.uid;
        seen.insert(uid);
        on(AttachEvent::Presenting {
            uid,
            created,
            again: is_again,
        });
        let removal = Removal {
            // Only the first tag the host talks to is torn (its second presentation counts
            // as already presented, so it is not torn again).
            max_apdus: policy.tear_after.filter(|_| distinct == 0),
            idle: policy.idle_timeout,
        };
        let mut chip = SimChip::new(state);
        let mut removed_by = None;
        let mut changed = false;
        if !tags.is_empty() {
            std::thread::sleep(policy.swap_gap);
        }
        let stream = connect(opts)?;
        let end = serve(&opts.addr, stream, &mut chip, &mut |e, chip| {
            if let TapEvent::Atr { first: true } = e {
                on(AttachEvent::InField { uid });
            }
            on(AttachEvent::Tap { uid, event: &e });
            if let TapEvent::Apdu { changed: true, .. } = e {
                changed = true;
                dir.save(&chip.state)?;
            }
            if stopped() {
                removed_by = Some(RemovedBy::Stopped);
                return Ok(Flow::Remove);
            }
            removed_by = removal.decide(&e);
            if let (TapEvent::Apdu { .. }, None, Some(p), Some(rng)) =
                (e, removed_by, policy.pull, rng.as_mut())
            {
                let n = pulls.entry(uid).or_default();
                if *n < Pull::PER_TAG && rng.gen_range(0..1_000_000) < p.ppm {
                    *n += 1;
                    removed_by = Some(RemovedBy::Pulled);
                    return Ok(if rng.gen_bool(0.5) {
                        Flow::RemoveUnanswered
                    } else {
                        Flow::Remove
                    });
                }
            }
            Ok(removed_by.map_or(Flow::Continue, |_| Flow::Remove))
        })?;
        let removed_by = match end.reason {
            TapEndReason::ReaderClosed => RemovedBy::ReaderClosed,
            TapEndReason::Removed => removed_by.unwrap_or(RemovedBy::Stopped),
        };
        let report = TagReport {
            uid,
            apdus: end.apdus,
            removed_by,
            in_field: end.in_field,
            changed,
            created,
            again: is_again,
        };
        on(AttachEvent::Removed(&report));
        tags.push(report);
        if removed_by == RemovedBy::ReaderClosed && end.apdus == 0 {
            // The reader went away before the host talked to this tag: offer it again (the
            // next connect fails clearly if pcscd is gone for good).
            chip.power_cycle();
            again = Some((chip.state, created, counted));
            continue;
        }
        if !counted && end.apdus > 0 {
            distinct += 1;
        }
        if removed_by == RemovedBy::Pulled {
            chip.power_cycle();
            again = Some((chip.state, created, true));
            continue;
        }
        if removed_by == RemovedBy::MaxApdus {
            chip.power_cycle();
            match &policy.tear_to {
                Some(other) => {
                    other.save(&chip.state)?;
                    let here = dir.path().join(format!("{}.json", hex::encode_upper(uid)));
                    std::fs::remove_file(&here)
                        .map_err(|source| SimDirError::Io { path: here, source })?;
                }
                None => again = Some((chip.state, created, true)),
            }
        }
    }
}

/// How the next tag came to be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// In the directory when the run started.
    Listed,
    /// Put into the directory while the run went on (handed over from another reader).
    HandedOver,
    /// A new factory tag.
    Created,
}

fn next_tag(
    dir: &SimDir,
    queue: &mut Vec<[u8; 7]>,
    seen: &mut HashSet<[u8; 7]>,
    fresh: bool,
) -> Result<Option<(ChipState, Arrival)>, VpcdError> {
    while let Some(uid) = queue.pop() {
        if seen.contains(&uid) {
            continue;
        }
        let path = dir.path().join(format!("{}.json", hex::encode_upper(uid)));
        match SimDir::load_file(&path) {
            Ok(s) => return Ok(Some((s, Arrival::Listed))),
            // Deleted since the run started: skip it.
            Err(SimDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    // A tag put into the directory since (another reader's pulled tag) comes before new ones.
    if let Some(s) = dir.list()?.into_iter().find(|s| !seen.contains(&s.uid)) {
        return Ok(Some((s, Arrival::HandedOver)));
    }
    if fresh {
        Ok(Some((dir.new_tag()?, Arrival::Created)))
    } else {
        Ok(None)
    }
}
