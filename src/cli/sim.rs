//! `tag424 sim …`: simulated tags in a directory.

use std::path::PathBuf;

use tag424::card::cmd::iso_binary::BinaryTarget;
use tag424::card::cmd::select::FID_NDEF;
use tag424::card::Card;
use tag424::provision::layout::url_from_ndef;
use tag424::sim::dir::{DirTransport, SimDir};
use tag424::sim::ChipState;

use super::sim_attach;
use super::{print_json, say, CliError};

/// Simulated NTAG 424 DNA tags (test devices; their keys are stored in their files).
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Make factory-fresh simulated tags.
    #[command(after_help = "Examples:
  tag424 sim new --count 5 --dir tags             # five tags, one UID.json each
  tag424 sim new --tag-tamper --dir tt-tags       # a TagTamper tag")]
    New {
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// The folder of simulated tags (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Make NTAG 424 DNA TagTamper tags (NT4H2421Tx): a tamper loop that
        /// `tag424 sim tamper` can open. TagTamper itself is enabled when the tag is encoded.
        #[arg(long)]
        tag_tamper: bool,
    },
    /// Open the tamper loop of a simulated TagTamper tag, as cutting its wire would. From the
    /// next tap on, the tag reports it open (TTPermStatus stays open for good).
    #[command(after_help = "Examples:
  tag424 sim tamper --dir tt-tags 04A1B2C3D4E5F6         # by UID
  tag424 sim tamper --dir tt-tags q8w3sbcz --close       # by tag code: close the loop again")]
    Tamper {
        /// The folder of simulated tags (must exist).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The tag's UID (14 hex digits) or its tag code (XUID).
        tag: String,
        /// Close the loop again (the permanent status stays open once measured open).
        #[arg(long)]
        close: bool,
    },
    /// List the simulated tags with their state (factory, encoded, tag code).
    #[command(after_help = "Examples:
  tag424 sim list --dir tags
  tag424 sim list --dir tags --json")]
    List {
        /// The folder of simulated tags (must exist; only read).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Tap a tag with a phone: print the URL it reads now (the tag's counter moves, as on the chip).
    #[command(after_help = "Examples:
  tag424 sim tap --dir tags q8w3sbcz              # by tag code
  tag424 sim tap --dir tags 04A1B2C3D4E5F6        # by UID")]
    Tap {
        /// The folder of simulated tags (must exist).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The tag's UID (14 hex digits) or its tag code (XUID).
        tag: String,
    },
    Attach(sim_attach::AttachArgs),
}

fn open(dir: &std::path::Path) -> Result<SimDir, CliError> {
    SimDir::open(dir).map_err(|e| CliError::input(e.to_string()))
}

/// A directory that must already exist: list and tap only read it, tamper changes a tag
/// already in it; a mistyped `--dir` is never created.
fn open_existing(dir: &std::path::Path) -> Result<SimDir, CliError> {
    SimDir::open_existing(dir).map_err(|e| CliError::input(e.to_string()))
}

/// The URL an NDEF file holds, without tapping (no counter moves).
pub fn stored_url(s: &ChipState) -> Option<String> {
    s.file(2).and_then(|f| url_from_ndef(&f.data))
}

fn xuid_of(s: &ChipState) -> Option<String> {
    let url = stored_url(s)?;
    let q = url.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("x="))
        .map(str::to_string)
}

/// Reads the NDEF file as a phone does: select the application, the NDEF file, read NLEN,
/// then the message, through the host API against the simulated chip.
pub fn tap(dir: &SimDir, state: ChipState) -> Result<String, CliError> {
    let mut card = Card::new(DirTransport::new(dir.clone(), state));
    let err = |e: tag424::card::CardError| CliError::input(format!("tap: {e}"));
    card.select_ndef_application().map_err(err)?;
    card.select_file_id(FID_NDEF).map_err(err)?;
    let nlen = card
        .iso_read_binary(BinaryTarget::Current(0), 2)
        .map_err(err)?;
    let [hi, lo] = nlen[..] else {
        return Err(CliError::input(
            "tap: the tag's NDEF file is shorter than its length field",
        ));
    };
    let n = u16::from_be_bytes([hi, lo]) as usize;
    if n == 0 {
        return Err(CliError::input(
            "the tag's NDEF file is empty (a factory tag?)",
        ));
    }
    let mut file = nlen;
    file.extend(
        card.iso_read_binary(BinaryTarget::Current(2), n.min(254))
            .map_err(err)?,
    );
    url_from_ndef(&file).ok_or_else(|| CliError::input("the tag's NDEF file holds no URI record"))
}

pub fn run(cmd: SimCommand) -> Result<u8, CliError> {
    match cmd {
        SimCommand::Attach(a) => return sim_attach::run(a),
        SimCommand::New {
            count,
            dir,
            tag_tamper,
        } => {
            let d = open(&dir)?;
            for _ in 0..count {
                let s = if tag_tamper {
                    let s = ChipState::factory_tag_tamper(ChipState::random_factory().uid);
                    d.save(&s).map(|_| s)
                } else {
                    d.new_tag()
                }
                .map_err(|e| CliError::input(e.to_string()))?;
                say(&hex::encode_upper(s.uid));
            }
        }
        SimCommand::Tamper { dir, tag, close } => {
            // The tag must exist: a mistyped --dir is not created.
            let d = open_existing(&dir)?;
            let mut state = find(&d, &dir, &tag)?;
            let uid = hex::encode_upper(state.uid);
            let Some(t) = state.tag_tamper.as_mut() else {
                return Err(CliError::input(format!(
                    "tag {uid} is not a TagTamper tag: make one with `tag424 sim new --tag-tamper`"
                )));
            };
            t.loop_open = !close;
            let enabled = t.enabled;
            d.save(&state).map_err(|e| CliError::input(e.to_string()))?;
            say(&format!(
                "tag {uid}: tamper loop {}{}",
                if close { "closed" } else { "open" },
                if enabled {
                    ""
                } else {
                    " (TagTamper is not enabled on this tag yet: it reports II until it is)"
                }
            ));
        }
        SimCommand::List { dir, json } => {
            let d = open_existing(&dir)?;
            let tags = d.list().map_err(|e| CliError::input(e.to_string()))?;
            let rows: Vec<serde_json::Value> = tags
                .iter()
                .map(|s| {
                    let state = if s.has_factory_keys() {
                        "factory"
                    } else {
                        "encoded"
                    };
                    serde_json::json!({
                        "uid": hex::encode_upper(s.uid),
                        "state": state,
                        "xuid": xuid_of(s),
                        "read_ctr": s.file(2).map(|f| f.sdm_read_ctr),
                        "mode": if s.lrp { "lrp" } else { "aes" },
                        "tag_tamper": s.tag_tamper.as_ref().map(|t| serde_json::json!({
                            "enabled": t.enabled, "loop_open": t.loop_open, "opened": t.opened,
                        })),
                    })
                })
                .collect();
            if json {
                print_json(&serde_json::json!({"format": super::FORMAT_VERSION, "tags": rows}));
            } else {
                say(&format!(
                    "{:<16} {:<8} {:<12} {:<8} {:<4} {}",
                    "UID", "STATE", "XUID", "COUNTER", "MODE", "TAMPER"
                ));
                for r in &rows {
                    let tamper = match &r["tag_tamper"] {
                        serde_json::Value::Null => "-",
                        t if t["enabled"] != true => "off",
                        t if t["opened"] == true || t["loop_open"] == true => "open",
                        _ => "closed",
                    };
                    say(&format!(
                        "{:<16} {:<8} {:<12} {:<8} {:<4} {}",
                        r["uid"].as_str().unwrap_or(""),
                        r["state"].as_str().unwrap_or(""),
                        r["xuid"].as_str().unwrap_or("-"),
                        r["read_ctr"].as_u64().unwrap_or(0),
                        r["mode"].as_str().unwrap_or(""),
                        tamper
                    ));
                }
            }
        }
        SimCommand::Tap { dir, tag } => {
            let d = open_existing(&dir)?;
            let state = find(&d, &dir, &tag)?;
            say(&tap(&d, state)?);
        }
    }
    Ok(0)
}

/// The tag with this UID or tag code.
fn find(d: &SimDir, dir: &std::path::Path, tag: &str) -> Result<ChipState, CliError> {
    let tags = d.list().map_err(|e| CliError::input(e.to_string()))?;
    let want = tag.to_ascii_uppercase();
    tags.into_iter()
        .find(|s| hex::encode_upper(s.uid) == want || xuid_of(s).as_deref() == Some(tag))
        .ok_or_else(|| CliError::input(format!("no simulated tag {tag} in {}", dir.display())))
}
