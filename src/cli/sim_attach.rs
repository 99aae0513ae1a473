//! `tag424 sim attach`: put the simulated tags of a directory, one after another, in a vpcd
//! reader of pcscd, so PC/SC programs see them as real tags.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tag424::sim::dir::SimDir;
use tag424::sim::vpcd::{
    attach_with, AttachEnd, AttachEvent, AttachPolicy, RemovedBy, TapEvent, VpcdError, VpcdOptions,
};

use super::{print_json, say, CliError};

/// Present simulated tags to PC/SC through pcscd's vpcd reader (vsmartcard), one after another.
///
/// Needs pcscd running with the vpcd driver (package vsmartcard-vpcd), which listens on
/// HOST:PORT. Each tag stays on the reader until the host is done with it (it powered the tag
/// off after using it, or sent nothing for --idle seconds); then the next one is presented.
/// Every change is saved to the tag's file at once. Step by step: docs/readers.md.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 sim attach --vpcd 127.0.0.1:29363 --dir tags               # until Ctrl-C
  tag424 sim attach --vpcd 127.0.0.1:29363 --dir tags --count 3 --no-fresh")]
pub struct AttachArgs {
    /// The vpcd slot to connect to (Debian's shipped config listens on 35963 and 35964).
    #[arg(long, value_name = "HOST:PORT")]
    vpcd: String,
    /// The simulated tags (one UID.json each; made if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// How many tags to present (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Tear-off test: remove the first tag after N APDUs, then present it again to be finished.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    tear_after: Option<u64>,
    /// With --tear-after: move the torn tag to DIR (another `sim attach`'s --dir) instead of
    /// presenting it again here, as an operator takes a pulled tag to the next reader.
    #[arg(long, value_name = "DIR", requires = "tear_after")]
    tear_to: Option<PathBuf>,
    /// Flaky-hand test: at each APDU, pull the tag with probability P (0 to 0.5), right after
    /// its answer or before it, and put it back after --gap; at most 3 pulls per tag.
    #[arg(long, value_name = "P")]
    pull: Option<f64>,
    /// The seed of --pull's draws (the same seed and APDUs give the same pulls).
    #[arg(long, value_name = "N", requires = "pull", default_value_t = 0)]
    seed: u64,
    /// Present only the directory's existing tags (default: make factory tags when they run out).
    #[arg(long)]
    no_fresh: bool,
    /// Remove a tag when the host sent nothing for this many seconds after talking to it.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    idle: f64,
    /// Seconds between one tag leaving and the next arriving (pcscd notices a removal only at
    /// its next poll, every 0.4 s; a faster swap looks to PC/SC as if the tag never left).
    #[arg(long, value_name = "SECS", default_value_t = 0.9)]
    gap: f64,
    /// Print each APDU (C-APDU and R-APDU in hex).
    #[arg(long)]
    trace: bool,
    /// Print a JSON summary at the end instead of progress lines.
    #[arg(long)]
    json: bool,
}

fn removed_text(r: RemovedBy) -> &'static str {
    match r {
        RemovedBy::PowerOff => "the host was done (power off)",
        RemovedBy::MaxApdus => "torn off (--tear-after)",
        RemovedBy::Idle => "the host went quiet (--idle)",
        RemovedBy::Stopped => "stopped",
        RemovedBy::ReaderClosed => "the reader closed the connection",
        RemovedBy::Pulled => "pulled mid-sequence (--pull), presented again",
    }
}

pub fn run(a: AttachArgs) -> Result<u8, CliError> {
    if !(a.idle.is_finite() && a.idle > 0.0) {
        return Err(CliError::input("--idle: a positive number of seconds"));
    }
    let pull = match a.pull {
        None => None,
        Some(p) if (0.0..=0.5).contains(&p) => Some(tag424::sim::vpcd::Pull {
            ppm: (p * 1e6).round() as u32,
            seed: a.seed,
        }),
        Some(_) => {
            return Err(CliError::input(
                "--pull: a probability from 0 to 0.5 (e.g. --pull 0.05)",
            ))
        }
    };
    let dir = SimDir::open(&a.dir).map_err(|e| CliError::input(e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C: remove the tag in the field and stop after it.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let policy = AttachPolicy {
        count: a.count,
        tear_after: a.tear_after.map(|n| n as usize),
        fresh: !a.no_fresh,
        idle_timeout: Duration::from_secs_f64(a.idle),
        stop: Some(stop),
        swap_gap: Duration::from_secs_f64(a.gap),
        tear_to: match &a.tear_to {
            Some(d) => Some(SimDir::open(d).map_err(|e| CliError::input(e.to_string()))?),
            None => None,
        },
        pull,
    };
    let opts = VpcdOptions::new(a.vpcd.clone());
    let progress = !a.json;
    if progress {
        say(&format!(
            "presenting tags from {} at vpcd {} (Ctrl-C to stop)",
            a.dir.display(),
            a.vpcd
        ));
    }
    let mut label = "";
    let result = attach_with(&opts, &dir, &policy, &mut |e| match e {
        AttachEvent::Presenting { created, again, .. } => {
            label = match (again, created) {
                (true, _) => " again",
                (false, true) => " (new factory tag)",
                _ => "",
            };
        }
        AttachEvent::InField { uid } if progress => {
            say(&format!("{}: on the reader{label}", hex::encode_upper(uid)));
        }
        AttachEvent::Tap {
            event: TapEvent::Apdu {
                command, response, ..
            },
            ..
        } if a.trace => {
            say(&format!(
                "  > {}\n  < {}",
                hex::encode_upper(command),
                hex::encode_upper(response)
            ));
        }
        AttachEvent::Removed(r) if progress => {
            say(&format!(
                "{}: removed after {}: {}{}",
                hex::encode_upper(r.uid),
                super::count(r.apdus, "APDU", "APDUs"),
                removed_text(r.removed_by),
                if r.changed { ", state saved" } else { "" }
            ));
        }
        _ => {}
    });
    let summary = result.map_err(|e| {
        let no_reader = matches!(e, VpcdError::NoReader { .. });
        CliError {
            code: if matches!(e, VpcdError::BadAddress { .. }) {
                2
            } else {
                1
            },
            message: e.to_string(),
            help: no_reader.then(|| {
                "start it, e.g. `pcscd --foreground --config DIR` with a reader.conf whose \
                 DEVICENAME is /dev/null:PORT and LIBPATH the libifdvpcd.so of vsmartcard-vpcd"
                    .into()
            }),
        }
    })?;
    let end = match summary.end {
        AttachEnd::Count => "count",
        AttachEnd::Exhausted => "exhausted",
        AttachEnd::Stopped => "stopped",
    };
    if a.json {
        let tags: Vec<serde_json::Value> = summary
            .tags
            .iter()
            .map(|t| {
                serde_json::json!({
                    "uid": hex::encode_upper(t.uid),
                    "apdus": t.apdus,
                    "removed_by": t.removed_by,
                    "in_field": t.in_field,
                    "changed": t.changed,
                    "created": t.created,
                    "again": t.again,
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "format": super::FORMAT_VERSION,
            "end": summary.end,
            "tags": tags,
        }));
    } else {
        say(&format!(
            "{}; ended: {end}",
            super::count(summary.tags.len(), "presentation", "presentations")
        ));
    }
    Ok(0)
}
