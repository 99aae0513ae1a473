//! One-tag commands: `encode`, `info`, `reset`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;
use tag424::card::file_settings::FileSettings;
use tag424::card::Card;
use tag424::originality::Originality;
use tag424::provision::identify::{find_uid, key_state, KeyState};
use tag424::provision::reset::{reset_tag, ResetOutcome};
use tag424::provision::{encode_tag, EncodeOptions, Journal, Outcome};
use tag424::sim::dir::{DirTransport, SimDir};
use tag424::sun::{Template, DEFAULT_TEMPLATE};
use tag424::transport::{TagSource, Transport};

use super::reader::{AnyReader, ReaderSpec};
use super::{print_json, say, CliError, FORMAT_VERSION};

/// Which tag: the reader, and for a simulated reader optionally one tag by UID.
#[derive(Debug, Clone, clap::Args)]
pub struct TagArgs {
    /// The reader (required; also TAG424_READER): a PC/SC reader's name, number (from 0) or unique part
    /// of its name, or `sim:DIR` for simulated tags in DIR (see `tag424 batch --help`).
    #[arg(long, env = "TAG424_READER", value_name = "READER")]
    pub reader: Option<String>,
    /// With a simulated reader: the tag's UID (default: the first tag in the directory).
    #[arg(long, value_name = "UID")]
    pub uid: Option<String>,
    /// Accept chips signed with the simulator's test key (implied by a `sim` reader).
    #[arg(long)]
    pub trust_simulator: bool,
    #[command(flatten)]
    pub trace: super::batch::TraceArgs,
}

impl TagArgs {
    /// The reader: required, never a default.
    fn spec(&self) -> Result<ReaderSpec, CliError> {
        super::reader::required(self.reader.as_deref())
    }

    /// A card on the tag, traced when asked. `read_only`: a simulated directory must exist.
    fn card(
        &self,
        default_sim_dir: &std::path::Path,
        read_only: bool,
    ) -> Result<Card<Box<dyn Transport + Send>>, CliError> {
        let card = Card::new(self.one(default_sim_dir, read_only)?);
        Ok(
            match self
                .trace
                .open(self.reader.as_deref().unwrap_or_default())?
            {
                Some(t) => card.with_observer(t.observer()),
                None => card,
            },
        )
    }

    /// Waits for one tag.
    fn one(
        &self,
        default_sim_dir: &std::path::Path,
        read_only: bool,
    ) -> Result<Box<dyn Transport + Send>, CliError> {
        let spec = self.spec()?;
        if let (ReaderSpec::Sim { dir, options }, Some(uid)) = (&spec, &self.uid) {
            let d = SimDir::open_existing(dir.as_deref().unwrap_or(default_sim_dir))
                .map_err(|e| CliError::input(e.to_string()))?;
            let want = uid.to_ascii_uppercase();
            let state = d
                .list()
                .map_err(|e| CliError::input(e.to_string()))?
                .into_iter()
                .find(|s| hex::encode_upper(s.uid) == want)
                .ok_or_else(|| {
                    CliError::input(format!("no simulated tag {uid} in {}", d.path().display()))
                })?;
            return Ok(Box::new(
                DirTransport::new(d, state).with_latency(options.latency),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut r = AnyReader::open(&spec, default_sim_dir, &stop, false, read_only)?;
        match r.next_tag() {
            Ok(Some(t)) => Ok(t),
            Ok(None) if read_only => Err(CliError::input("no tag in the simulated tag directory")),
            Ok(None) => Err(CliError {
                code: 130,
                message: "interrupted".into(),
                help: None,
            }),
            Err(e) => Err(CliError {
                code: 4,
                message: e.to_string(),
                help: None,
            }),
        }
    }

    fn trust(&self) -> bool {
        self.trust_simulator || self.spec().is_ok_and(|s| s.is_sim())
    }
}

/// A provisioning error: exit 1, with the chip's delay or a refused key explained.
fn provision_err(e: tag424::provision::ProvisionError) -> CliError {
    CliError {
        code: 1,
        help: e.help().map(str::to_string),
        message: e.to_string(),
    }
}

fn card_err(e: impl std::fmt::Display) -> CliError {
    CliError {
        code: 1,
        message: e.to_string(),
        help: None,
    }
}

/// Encode the one tag on the reader with the given tag code.
///
/// The same steps and key journal as `tag424 batch`, for one tag (a batch folder of its own or
/// an existing one).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 encode --reader sim:tags --xuid q8w3sbcz --out single     # one simulated tag
  tag424 encode --reader PICC --xuid q8w3sbcz --out batch2         # a tag on a PC/SC reader")]
pub struct EncodeArgs {
    /// The tag code (XUID) to write.
    #[arg(long)]
    pub xuid: String,
    #[command(flatten)]
    pub tag: TagArgs,
    /// Output directory (key journal, keys.csv, associate.csv): a new name (created
    /// owner-only), an empty folder or a batch folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// URL template (see `tag424 verify --help`; check one with `tag424 url-check`).
    #[arg(long = "url", value_name = "TEMPLATE", default_value = DEFAULT_TEMPLATE)]
    pub template: String,
    #[command(flatten)]
    pub master: super::keys::MasterKeySource,
    #[command(flatten)]
    pub at_rest: super::keys::AtRest,
    /// One JSON event per line instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn encode(a: EncodeArgs) -> Result<u8, CliError> {
    let template =
        Template::parse(&a.template).map_err(|e| CliError::input(format!("--url: {e}")))?;
    tag424::provision::layout::layout(&template, &a.xuid)
        .map_err(|e| CliError::input(e.to_string()))?;
    a.tag.spec()?;
    let master = a.master.resolve()?;
    let access = a.at_rest.access()?;
    a.tag
        .trace
        .check_sealed(access.encrypt_to.is_some(), None)?;
    let mut journal = super::open_journal(&a.out, &access)?;
    a.tag.trace.check_sealed(false, Some(&journal))?;
    if let Some(h) = super::healed_line(&journal) {
        eprintln!("{h}");
    }
    // A batch with irreversible options encodes (and finishes) its tags with `tag424 batch`,
    // where they are shown and confirmed.
    {
        let recorded = tag424::provision::irreversible::recorded(&journal)
            .map_err(|e| CliError::input(e.to_string()))?;
        if !recorded.is_empty() {
            return Err(CliError {
                code: 2,
                message: format!(
                    "{} was started with {}: `tag424 encode` does not apply irreversible options",
                    a.out.display(),
                    recorded.flags()
                ),
                help: Some(format!(
                    "use `tag424 batch --out {} {}` (it finishes interrupted tags too)",
                    a.out.display(),
                    recorded.flags()
                )),
            });
        }
    }
    // The folder's lifecycle options (a read limit, a failed-authentication limit) apply to
    // this tag as to the batch's other tags; Random ID, irreversible, only through `batch`.
    let lifecycle = journal.lifecycle();
    if lifecycle.random_uid {
        return Err(CliError {
            code: 2,
            message: format!(
                "{} was started with --random-uid: `tag424 encode` does not apply irreversible options",
                a.out.display()
            ),
            help: Some(format!(
                "use `tag424 batch --out {} {}` (it finishes interrupted tags too)",
                a.out.display(),
                lifecycle.flags()
            )),
        });
    }
    if journal.xuid_used(&a.xuid) {
        return Err(CliError::input(format!(
            "tag code {} is already used in {}",
            a.xuid,
            a.out.display()
        )));
    }
    let mut card = a.tag.card(&a.out.join("simulated-tags"), false)?;
    let opts = EncodeOptions {
        lifecycle,
        template,
        trust_simulator: a.tag.trust(),
        master,
        locks: Default::default(),
    };
    let xuid = a.xuid.clone();
    let outcome = encode_tag(
        &mut card,
        &mut journal,
        &opts,
        &mut |j: &Journal| (!j.xuid_used(&xuid)).then(|| xuid.clone()),
        &mut |_| {},
    )
    .map_err(provision_err)?;
    journal.export().map_err(super::journal_error)?;
    if a.json {
        print_json(&serde_json::json!({"format": FORMAT_VERSION, "result": outcome}));
    } else {
        match &outcome {
            Outcome::Encoded {
                uid,
                xuid,
                exchanges,
                ..
            } => say(&format!(
                "Verified {uid} → {xuid} ({})",
                super::count(*exchanges, "APDU", "APDUs")
            )),
            Outcome::AlreadyDone { uid, xuid } => {
                say(&format!("{uid} is already encoded as {xuid}"))
            }
        }
    }
    Ok(0)
}

/// Show what a tag is: version, UID, originality, file settings, key versions, and whose keys
/// it has.
///
/// Reads only: nothing on the tag or in DIR changes, and nothing authenticates (no key is
/// tried). The keys line says `factory` (every key version 00), `journaled (batch DIR, tag
/// CODE)` (an --out folder's journal holds them) or `unknown` (changed, and no --out journal
/// knows the UID). Key versions are readable without authentication; they are not proof.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 info --reader sim:tags --out batch1      # a simulated tag, with its tag code from batch1
  tag424 info --reader sim:tags --out batch1 --out batch3 --trace info.trace   # which of two batches; every APDU recorded
  tag424 info --reader PICC --json")]
pub struct InfoArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// A batch folder whose journal may know the tag (repeat for several; only read).
    #[arg(long, value_name = "DIR")]
    pub out: Vec<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Info {
    format: u32,
    product: &'static str,
    uid: String,
    originality: Originality,
    production_year: u16,
    production_week: u8,
    hardware: tag424::card::cmd::get_version::VersionPart,
    software: tag424::card::cmd::get_version::VersionPart,
    files: Vec<(u8, FileSettings)>,
    key_versions: Vec<u8>,
    state: &'static str,
    xuid: Option<String>,
    /// What the tag's keys are now: factory, journaled (batch, tag code) or unknown.
    keys: KeyState,
    /// The UID the reader reports (`FF CA 00 00 00`), where the reader supports it.
    reader_uid: Option<String>,
    /// Random ID is on: GetVersion's UID is zero (NT4H2421Gx Table 58); the real UID, which
    /// the originality signature and the journals go by, is read only after authentication.
    random_id: bool,
}

pub fn info(a: InfoArgs) -> Result<u8, CliError> {
    let default_dir = a
        .out
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("simulated-tags");
    // Read-only: the batch folders are neither created nor written (no lock, no healing).
    let mut journals = Vec::new();
    for d in &a.out {
        match Journal::read_only(d) {
            Ok(j) => journals.push((d.clone(), j)),
            // Said, never silently left out of "which journal knows it".
            Err(tag424::provision::journal::JournalError::NotABatch(_)) => {
                eprintln!(
                    "note: {} is not a batch folder (no journal): not searched for the tag",
                    d.display()
                )
            }
            Err(e) => return Err(super::journal_error(e)),
        }
    }
    let mut card = a.tag.card(&default_dir, true)?;
    // Readers answer this pseudo-APDU themselves; the chip (or simulator) refuses it. Optional.
    let reader_uid =
        match card.transceive("GetUID (reader)", &[0xFF, 0xCA, 0x00, 0x00, 0x00], false) {
            Ok((data, tag424::card::Sw::IsoOk)) if !data.is_empty() => {
                Some(hex::encode_upper(data))
            }
            _ => None,
        };
    card.select_ndef_application().map_err(card_err)?;
    let v = card.get_version().map_err(card_err)?;
    let sig = card.read_sig().map_err(card_err)?;
    let originality = tag424::originality::classify(&v.uid, &sig, a.tag.trust());
    let mut files = Vec::new();
    for f in 1..=3u8 {
        files.push((f, card.get_file_settings(f).map_err(card_err)?));
    }
    let mut key_versions = Vec::new();
    for k in 0..5u8 {
        key_versions.push(card.get_key_version(k).map_err(card_err)?);
    }
    let uid = hex::encode_upper(v.uid);
    let sdm = files.iter().any(|(_, f)| f.sdm.is_some());
    let state = if key_versions.iter().all(|k| *k == 0) && !sdm {
        "factory"
    } else {
        "encoded"
    };
    // What the keys are now, from the key versions (readable without authentication) and
    // the journals: nothing here authenticates, so no key is tried.
    let known = find_uid(&journals, &uid);
    let keys = key_state(&key_versions, known);
    let xuid = known.filter(|(_, t)| !t.reset).map(|(_, t)| t.xuid.clone());
    let (year, week) = v.production();
    let info = Info {
        format: FORMAT_VERSION,
        product: v.product(),
        uid,
        originality,
        production_year: year,
        production_week: week,
        hardware: v.hardware,
        software: v.software,
        files,
        key_versions,
        state,
        xuid,
        keys,
        reader_uid,
        random_id: v.uid == [0u8; 7],
    };
    if a.json {
        print_json(&info);
        return Ok(0);
    }
    let uid = if info.random_id {
        "hidden (Random ID is on)".to_string()
    } else {
        info.uid.clone()
    };
    say(&format!("{}  UID {}  ({})", info.product, uid, info.state));
    say(&format!(
        "  originality   {}",
        match info.originality {
            _ if info.random_id => "not checked: Random ID is on (the UID the signature covers is read only after authentication)",
            Originality::GenuineNxp => "genuine NXP signature",
            Originality::Simulated => "simulated chip (tag424 test key)",
            Originality::Invalid => "NOT GENUINE: signature does not verify",
        }
    ));
    say(&format!(
        "  produced      week {} of {}",
        info.production_week, info.production_year
    ));
    say(&format!("  key versions  {:?}", info.key_versions));
    for (n, f) in &info.files {
        say(&format!(
            "  file {n:02}       {} bytes, {}, read {}, write {}, change {}{}",
            f.size,
            f.comm_mode,
            f.access.read,
            f.access.write,
            f.access.change,
            if f.sdm.is_some() { ", SDM on" } else { "" }
        ));
    }
    if let Some(x) = &info.xuid {
        say(&format!("  tag code      {x}"));
    }
    if info.random_id {
        say("  keys          Random ID is on: the UID the journals know is read only after authentication, which `info` never does; `batch` with the tag's folder finds it (by its factory key 0 and GetCardUID, or by its SUN message)");
    } else {
        say(&format!(
            "  keys          {}",
            key_words(&info.keys, a.out.is_empty())
        ));
    }
    if let Some(r) = &info.reader_uid {
        let note = if *r == info.uid {
            ""
        } else if info.random_id {
            " (Random ID: a new one each tap)"
        } else {
            " (differs: Random ID is on)"
        };
        say(&format!("  reader UID    {r}{note}"));
    }
    Ok(0)
}

/// The `keys` line of `tag424 info`.
fn key_words(k: &KeyState, no_out: bool) -> String {
    match k {
        KeyState::Factory => "factory (every key version 00)".into(),
        KeyState::Journaled {
            batch,
            xuid,
            partly: false,
        } => format!("journaled (batch {}, tag {xuid})", batch.display()),
        KeyState::Journaled { batch, xuid, .. } => format!(
            "journaled, partly (batch {}, tag {xuid}): keys of version 00 are still the factory ones (an interrupted encoding; `encode` or `batch` with that folder finishes it)",
            batch.display()
        ),
        KeyState::Unknown if no_out => "unknown: changed (key versions not 00) and no --out folder given; give the batch folder it was encoded with".into(),
        KeyState::Unknown => "unknown: changed (key versions not 00) and no --out folder's journal knows this UID; no key is tried".into(),
    }
}

/// Return an encoded test tag to factory state, with the keys recorded in DIR.
///
/// The tag's row leaves keys.csv and associate.csv (the tag no longer has those keys: upload
/// the new keys.csv). Its tag code stays used, so no other tag gets a code that may be
/// printed on this one; `--reuse-code` frees it for the next tag (test tags).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 reset --reader sim:tags --out batch1                 # the first simulated tag in tags
  tag424 reset --reader PICC --out batch1 --reuse-code        # a test tag; its code may be used again")]
pub struct ResetArgs {
    #[command(flatten)]
    pub tag: TagArgs,
    /// The output directory the tag was encoded with.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Free the tag's code so the next tag encoded in DIR can take it again.
    #[arg(long)]
    pub reuse_code: bool,
    #[command(flatten)]
    pub identity: super::keys::IdentityArg,
}

pub fn reset(a: ResetArgs) -> Result<u8, CliError> {
    a.tag.spec()?;
    if !a
        .out
        .join(tag424::provision::journal::JOURNAL_FILE)
        .exists()
    {
        return Err(CliError {
            code: 2,
            message: format!(
                "{} is not a batch folder (it has no journal)",
                a.out.display()
            ),
            help: Some("give the --out folder the tag was encoded with".into()),
        });
    }
    let mut journal = super::open_journal(&a.out, &a.identity.access()?)?;
    if let Some(h) = super::healed_line(&journal) {
        eprintln!("{h}");
    }
    let mut card = a.tag.card(&a.out.join("simulated-tags"), true)?;
    let uid = match reset_tag(&mut card, &mut journal, a.tag.trust(), a.reuse_code)
        .map_err(provision_err)?
    {
        ResetOutcome::Reset { uid } => uid,
        ResetOutcome::AlreadyFactory { uid, in_batch } => {
            say(&if in_batch {
                format!("{uid} is already in factory state (it was reset before): nothing to do, nothing changed")
            } else {
                format!(
                    "{uid} is already in factory state and was never encoded in {}: nothing to do, nothing changed",
                    a.out.display()
                )
            });
            return Ok(0);
        }
    };
    journal.export().map_err(super::journal_error)?;
    let code = if a.reuse_code {
        "its code is free for the next tag"
    } else {
        "its code stays used (--reuse-code frees it)"
    };
    say(&format!(
        "{uid} is back to factory keys and settings; its row left {}, {code}",
        journal.keys_file()
    ));
    Ok(0)
}
