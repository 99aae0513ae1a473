//! `tag424 demo`: the whole story on simulated tags, in a temporary directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use tag424::crypto::AesKey;
use tag424::provision::batch::{generate_xuids, BatchEvent, BatchOptions};
use tag424::provision::station::run_batch;
use tag424::provision::{EncodeOptions, Journal, Outcome};
use tag424::sim::dir::{SimDir, SimReader};
use tag424::sun::{self, SunKeys, Template};

use super::{say, CliError};

/// Run the whole story on simulated tags: encode a batch with generated tag codes, export
/// keys.csv, tap every tag and verify its SUN URL, and show a replayed tap being rejected.
///
/// The demo works in a temporary folder that is removed when it ends: the paths it shows
/// (batch/keys.csv, …) are inside that folder and are gone afterwards. `--keep DIR` works in
/// DIR instead and keeps everything (the batch folder with its journal and keys.csv, the
/// simulated tags).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 demo                            # five simulated tags in a temporary folder
  tag424 demo --tags 20 --keep demo1     # twenty, and keep the folder to look at")]
pub struct DemoArgs {
    /// How many simulated tags (1 to 1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub tags: u16,
    /// Work in DIR and keep its files (the batch folder, keys.csv, the simulated tags).
    /// Without it the demo's folder is temporary and removed when the demo ends.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError {
        code: 1,
        message: format!("demo: {e}"),
        help: None,
    }
}

pub fn run(args: DemoArgs) -> Result<u8, CliError> {
    let tmp = tempfile::tempdir().map_err(fail)?;
    let work = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let out = work.join("batch");
    let tags_dir = work.join("tags");
    // A temporary folder's paths are not shown (they are gone when the operator looks):
    // paths inside it are shown relative to it.
    let shown = |p: &std::path::Path| match &args.keep {
        Some(_) => p.display().to_string(),
        None => p.strip_prefix(&work).unwrap_or(p).display().to_string(),
    };
    if args.keep.is_some() {
        say(&format!("Working in {} (kept)", work.display()));
    } else {
        say("Working in a temporary folder, removed when the demo ends (--keep DIR keeps the files)");
    }
    let n = usize::from(args.tags);
    say(&format!(
        "1. {}, {} from the platform (generated here)",
        super::count(
            n,
            "blank simulated NTAG 424 DNA tag",
            "blank simulated NTAG 424 DNA tags"
        ),
        super::count(n, "tag code", "tag codes")
    ));
    let xuids = generate_xuids(usize::from(args.tags));
    let template = Template::default();
    say(&format!("   URL template: {template}"));
    let mut journal = Journal::open(&out).map_err(fail)?;
    let sim = SimDir::open(&tags_dir).map_err(fail)?;
    let mut reader = SimReader::new(sim.clone(), true).map_err(fail)?;
    let opts = BatchOptions {
        encode: EncodeOptions {
            lifecycle: Default::default(),
            template: template.clone(),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
        },
        count: Some(usize::from(args.tags)),
        stop: None,
        trace: None,
    };
    say("2. Encoding (select, version, signature, authenticate, write URL, lock, change 5 keys, read back and verify):");
    let started = Instant::now();
    let summary = run_batch(&mut reader, &mut journal, &xuids, &opts, &mut |e| match e {
        BatchEvent::Done {
            outcome:
                Outcome::Encoded {
                    uid,
                    xuid,
                    exchanges,
                    ..
                },
            elapsed,
        } => say(&format!(
            "   Verified {uid} → {xuid} in {:.3} s ({})",
            elapsed.as_secs_f64(),
            super::count(*exchanges, "APDU", "APDUs")
        )),
        BatchEvent::Failed { error } => say(&format!("   Failed: {error}")),
        _ => {}
    })
    .map_err(fail)?;
    let secs = started.elapsed().as_secs_f64();
    say(&format!(
        "   {} in {secs:.2} s, {} in all",
        super::count(summary.encoded, "tag", "tags"),
        super::count(summary.exchanges as usize, "APDU", "APDUs")
    ));
    let keys_csv = out.join("keys.csv");
    let mut keys: HashMap<String, AesKey> = HashMap::new();
    let mut rdr = csv::Reader::from_path(&keys_csv).map_err(fail)?;
    for row in rdr.records() {
        let row = row.map_err(fail)?;
        keys.insert(row[0].to_string(), row[1].parse().map_err(fail)?);
    }
    say(&format!(
        "3. {} has {} (XUID,KEY) for the platform's Keys upload; associate.csv maps XUID → UID",
        shown(&keys_csv),
        super::count(keys.len(), "row", "rows")
    ));
    say("4. A phone taps each tag; the SUN URL is verified with the tag's key from keys.csv:");
    let mut last_ctr: HashMap<String, u32> = HashMap::new();
    let mut first_url = None;
    let mut all_ok = summary.encoded == usize::from(args.tags);
    for state in sim.list().map_err(fail)? {
        if state.has_factory_keys() {
            continue;
        }
        let url = super::sim::tap(&sim, state)?;
        let (xuid, v) = check(&template, &keys, &url)?;
        let ctr = v.read_ctr.unwrap_or(0);
        let fresh = last_ctr.get(&xuid).is_none_or(|c| ctr > *c);
        all_ok &= v.genuine && fresh;
        last_ctr.insert(xuid.clone(), ctr);
        say(&format!(
            "   {url}  → {}, counter {ctr}",
            if v.genuine { "genuine" } else { "NOT genuine" }
        ));
        first_url.get_or_insert(url);
    }
    if let Some(url) = first_url {
        let (xuid, v) = check(&template, &keys, &url)?;
        let seen = last_ctr.get(&xuid).copied().unwrap_or(0);
        let replay_rejected = v.read_ctr.is_some_and(|c| c <= seen);
        all_ok &= replay_rejected;
        say(&format!(
            "5. The same URL sent again (a copied link): MAC {} but counter {} was already used → {}",
            if v.genuine { "valid" } else { "invalid" },
            v.read_ctr.unwrap_or(0),
            if replay_rejected { "rejected as a replay" } else { "ACCEPTED (bug!)" }
        ));
    }
    if args.keep.is_some() {
        say(&format!("Files kept in {}", work.display()));
    } else {
        say("The temporary folder and its files are removed now; run `tag424 demo --keep DIR` to keep them.");
    }
    say(if all_ok { "Demo OK." } else { "Demo FAILED." });
    Ok(if all_ok { 0 } else { 1 })
}

/// Splits a tapped URL and verifies it with its tag's key from keys.csv.
fn check(
    template: &Template,
    keys: &HashMap<String, AesKey>,
    url: &str,
) -> Result<(String, sun::Verified), CliError> {
    let scan = sun::parse_url(template, url).map_err(fail)?;
    let xuid = scan.xuid.clone().unwrap_or_default();
    let key = keys
        .get(&xuid)
        .cloned()
        .ok_or_else(|| fail(format!("no key for {xuid}")))?;
    let v = sun::verify(
        &scan,
        &SunKeys {
            file_read: key,
            meta_read: None,
        },
    )
    .map_err(fail)?;
    Ok((xuid, v))
}
