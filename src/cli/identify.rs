//! `tag424 identify`: which batch and tag a tap belongs to, and whether it is genuine, from
//! the batch folders' journals (no reader, no key on the command line).

use std::path::PathBuf;

use tag424::provision::identify::{self, Batch, Identified, IdentifyError, Verdict};
use tag424::provision::journal::{Journal, JournalError};
use tag424::sun::{Template, DEFAULT_TEMPLATE};

use super::{journal_error, print_json, say, CliError, FORMAT_VERSION};

/// Say which batch, tag code and UID a tap (a scanned URL) belongs to, and whether it is genuine.
///
/// The tag is looked up in each --out folder's key journal (read only: no lock, nothing
/// written) by the URL's tag code ({xuid}, x=), its UID ({uid}), or by decrypting {picc} with
/// each journaled tag's meta read key; the SDMMAC is then checked with that tag's journaled
/// key. No key is given on the command line. Each folder's URL template comes from its
/// summary.json (--url overrides it).
///
/// Verdicts: GENUINE (the MAC verifies and the counter is above the encoding's read-back and,
/// with --db, above the last scan the verifier database accepted), REPLAYED (the MAC
/// verifies but the counter was seen already, or the tag was reset since), FORGED (a journal
/// knows the tag but the URL does not verify with its key), UNKNOWN (no journal given knows
/// it). Offline (without --db) a copy of a later tap cannot be told from a fresh one.
///
/// Exit status (as `tag424 verify`): 0 genuine, 1 not genuine (replayed, forged, unknown),
/// 2 bad input (the URL fits no template, a folder is no batch, an encrypted batch knows
/// the tag and --identity is missing, …).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 identify --out batch1 \"$(tag424 sim tap --dir tags q8w3sbcz)\"      # a simulated tag's tap
  tag424 identify --out batch1 --out batch2 'https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=3F…'
  tag424 identify --out batch3 --identity line1.identity --json 'https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=3F…'
  tag424 identify --out batch1 --db tag424.db 'https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=3F…'   # replays against the verifier's counters")]
pub struct IdentifyArgs {
    /// The URL the phone opened (quote it: it contains '&').
    pub url: String,
    /// A batch folder whose journal may know the tag (repeat for several).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Vec<PathBuf>,
    #[command(flatten)]
    pub identity: super::keys::IdentityArg,
    /// The URL template for every folder, instead of each folder's summary.json (see
    /// `tag424 verify --help` for its placeholders).
    #[arg(long = "url", value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// A verifier database (SQLite file or postgres://…), only read: a counter not above the
    /// last one it accepted for the tag code is a replay.
    #[arg(long, value_name = "FILE|URL")]
    pub db: Option<String>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: IdentifyArgs) -> Result<u8, CliError> {
    let given = match &a.template {
        Some(t) => Some(Template::parse(t).map_err(|e| CliError::input(format!("--url: {e}")))?),
        None => None,
    };
    let access = a.identity.access()?;
    let mut batches = Vec::new();
    for dir in &a.out {
        let journal =
            Journal::read_only_with(dir, access.identity.as_ref()).map_err(|e| match e {
                JournalError::NotABatch(_) => CliError {
                    code: 2,
                    message: format!(
                        "{} is not a batch folder (it has no journal)",
                        dir.display()
                    ),
                    help: Some("give the --out folder the tags were encoded with".into()),
                },
                e => journal_error(e),
            })?;
        let template = match &given {
            Some(t) => t.clone(),
            None => {
                let text = tag424::verifier::import::read_summary_template(dir)
                    .map_err(|e| CliError::input(e.to_string()))?
                    .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
                Template::parse(&text).map_err(|e| {
                    CliError::input(format!("{}/summary.json: template: {e}", dir.display()))
                })?
            }
        };
        batches.push(Batch {
            dir: dir.clone(),
            journal,
            template,
        });
    }
    let counters = match &a.db {
        Some(db) => {
            let mut store = tag424::verifier::store::open_existing(db)
                .map_err(|e| CliError::input(format!("--db {db}: {e}")))?;
            Some(
                store
                    .load()
                    .map_err(|e| CliError::input(format!("--db {db}: {e}")))?
                    .counters,
            )
        }
        None => None,
    };
    let found = identify::identify(&a.url, &batches, counters.as_ref()).map_err(|e| {
        let help = match &e {
            IdentifyError::NoTemplate(_) => {
                "give the template the tags were encoded with: --url TEMPLATE (see `tag424 url-check`)"
            }
            IdentifyError::NothingToLookUp => {
                "a URL without {xuid}, {uid} or {picc} cannot name its tag; check it with `tag424 verify` and the tag's key"
            }
            IdentifyError::Sealed { .. } => {
                "add --identity FILE (the age identity file of one of the batch's recipients)"
            }
        };
        CliError {
            code: 2,
            message: e.to_string(),
            help: Some(help.into()),
        }
    })?;
    if a.json {
        print_json(&serde_json::json!({"format": FORMAT_VERSION, "identified": found}));
    } else {
        print_text(&found);
    }
    Ok(if found.verdict == Verdict::Genuine {
        0
    } else {
        1
    })
}

fn print_text(f: &Identified) {
    say(&format!("{}: {}", f.verdict.word(), f.reason));
    if let Some(b) = &f.batch {
        say(&format!("  batch    {}", b.display()));
    }
    if let Some(x) = &f.xuid {
        say(&format!("  xuid     {x}"));
    }
    if let Some(u) = &f.uid {
        say(&format!("  uid      {u}"));
    }
    if f.batch.is_some() {
        say("  keys     journaled (the journal's keys of this tag)");
    }
    if let Some(s) = f.state {
        say(&format!("  state    {s}"));
    }
    if let Some(c) = f.read_ctr {
        say(&format!("  counter  {c} ({c:06X})"));
    }
    if let Some(c) = f.journal_ctr {
        say(&format!("  encoded  read-back counter {c}"));
    }
    if let Some(c) = f.last_seen {
        say(&format!(
            "  last     counter {c} accepted by the verifier database"
        ));
    }
    if let Some(m) = f.mode {
        say(&format!("  mode     {m}"));
    }
    for s in &f.skipped {
        say(&format!("  skipped  {}: {}", s.dir.display(), s.why));
    }
    if !f.replay_checked && f.verdict == Verdict::Genuine {
        say("  note     checked offline: a copy of a later tap verifies here too; --db (the verifier's database) or tag424 serve refuses replays");
    }
}
