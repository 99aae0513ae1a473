//! The dry run (`tag424 batch … --dry-run`, `tag424 url-check --dry-run`): the whole
//! sequence of a fresh tag, as [`encode_tag`] runs it, on a throwaway simulated tag, with each
//! step's exchanges and what in it cannot be undone. Nothing outside a temporary folder of the
//! system's (its journal, removed at the end) is written, and no reader is opened. The caller
//! gives the throwaway tag (provisioning never builds a simulator itself: a factory simulated
//! tag, a TagTamper one when the template has `{tt}`, see [`needs_tag_tamper`]).

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::card::Card;
use crate::sun::template::Part;
use crate::transport::Transport;

use super::encode::{encode_tag, EncodeOptions, Outcome, ProvisionError, Step};
use super::irreversible::{FREEZE_SETTINGS, LOCK_NDEF, LRP, RANDOM_UID};
use super::journal::{Journal, JournalError};

/// One step of the rehearsed sequence.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsedStep {
    /// The step (`identify`, `authenticate`, `switch-to-lrp`, `write-ndef`, `change-keys`,
    /// `lock`, `verify`).
    pub step: &'static str,
    /// APDU exchanges of the step.
    pub exchanges: usize,
    /// The chip commands exchanged, in order (`GetVersion` three times: three exchanges).
    pub commands: Vec<&'static str>,
    /// What in this step can never be undone (the option's flag and effect); empty: nothing.
    pub irreversible: Vec<String>,
}

/// The rehearsed sequence of one fresh tag.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    /// The steps, in order.
    pub steps: Vec<RehearsedStep>,
    /// All exchanges of the tag.
    pub exchanges: usize,
    /// The URL as written to the tag (the mirrors as zeros); the simulated tag's read-back of
    /// it verified.
    pub url: String,
    /// The tag code used.
    pub xuid: String,
}

/// Why the rehearsal failed: the real batch would fail the same way on every tag.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// The simulated tag refused a step or its read-back did not verify.
    #[error("the dry run failed on the simulated tag: {0}")]
    Encode(#[from] ProvisionError),
    /// The temporary journal could not be written.
    #[error("the dry run's temporary journal: {0}")]
    Journal(#[from] JournalError),
    /// The temporary folder could not be made.
    #[error("the dry run's temporary folder: {0}")]
    Io(#[from] std::io::Error),
}

/// One exchange as the dry run keeps it: the command's name, its INS and its first data byte
/// (SetConfiguration's option, a file number), both plain on the wire.
type Sent = (&'static str, u8, u8);

fn step_id(s: Step) -> &'static str {
    match s {
        Step::Identify => "identify",
        Step::Authenticate => "authenticate",
        Step::SwitchToLrp => "switch-to-lrp",
        Step::RandomId => "random-id",
        Step::FailedAuthLimit => "failed-auth",
        Step::WriteNdef => "write-ndef",
        Step::ChangeKeys => "change-keys",
        Step::Lock => "lock",
        Step::Verify => "verify",
    }
}

/// The throwaway tag must be a TagTamper one: the template has `{tt}`.
pub fn needs_tag_tamper(opts: &EncodeOptions) -> bool {
    opts.template.has(&Part::Tt)
}

/// Encodes `tag`, a fresh throwaway simulated tag (TagTamper when [`needs_tag_tamper`]), with
/// `opts` (its own random keys: no master key is used) and tag code `xuid`.
pub fn rehearse<T: Transport>(
    opts: &EncodeOptions,
    xuid: &str,
    tag: T,
) -> Result<Rehearsal, RehearseError> {
    let tmp = tempfile::Builder::new()
        .prefix("tag424-dry-run")
        .tempdir()?;
    let mut journal = Journal::open(&tmp.path().join("batch"))?;
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let seen = log.clone();
    let mut card = Card::new(tag).with_observer(move |x| {
        // INS and the plain first data byte (SetConfiguration's option, a file number).
        let ins = x.command.get(1).copied().unwrap_or(0);
        let first = x.command.get(5).copied().unwrap_or(0);
        if let Ok(mut l) = seen.lock() {
            l.push((x.name, ins, first));
        }
    });
    let opts = EncodeOptions {
        trust_simulator: true,
        master: None,
        ..opts.clone()
    };
    let marks: Arc<Mutex<Vec<(Step, usize)>>> = Arc::default();
    let outcome = {
        let marks = marks.clone();
        let log = log.clone();
        encode_tag(
            &mut card,
            &mut journal,
            &opts,
            &mut |_| Some(xuid.to_string()),
            &mut |s| {
                let at = log.lock().map(|l| l.len()).unwrap_or(0);
                if let Ok(mut m) = marks.lock() {
                    m.push((s, at));
                }
            },
        )?
    };
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    let marks = marks.lock().map(|m| m.clone()).unwrap_or_default();
    let mut steps = Vec::new();
    for (i, (step, from)) in marks.iter().enumerate() {
        let to = marks.get(i + 1).map_or(log.len(), |m| m.1);
        let cmds = &log[(*from).min(log.len())..to.min(log.len())];
        let mut irreversible = Vec::new();
        for (_, ins, first) in cmds {
            match (ins, first) {
                (0x5C, 0x05) => irreversible.push(format!("{}: {}", LRP.flag, LRP.effect)),
                (0x5C, 0x00) => {
                    irreversible.push(format!("{}: {}", RANDOM_UID.flag, RANDOM_UID.effect))
                }
                (0x5C, 0x07) => irreversible.push(
                    "{tt} in --url: TagTamper is enabled for good (SetConfiguration 07h)".into(),
                ),
                (0x5F, _) if *step == Step::Lock => {
                    for o in [&LOCK_NDEF, &FREEZE_SETTINGS] {
                        let on = if o.id == LOCK_NDEF.id {
                            opts.locks.ndef
                        } else {
                            opts.locks.settings
                        };
                        if on {
                            irreversible.push(format!("{}: {}", o.flag, o.effect));
                        }
                    }
                }
                _ => {}
            }
        }
        steps.push(RehearsedStep {
            step: step_id(*step),
            exchanges: cmds.len(),
            commands: cmds.iter().map(|c| c.0).collect(),
            irreversible,
        });
    }
    let url = crate::layout::layout(&opts.template, xuid)
        .map(|l| l.url)
        .unwrap_or_default();
    let exchanges = match outcome {
        Outcome::Encoded { exchanges, .. } => exchanges,
        Outcome::AlreadyDone { .. } => 0,
    };
    Ok(Rehearsal {
        steps,
        exchanges,
        url,
        xuid: xuid.to_string(),
    })
}
