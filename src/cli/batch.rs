//! `tag424 batch` and `tag424 encode`: the operator's main job.

use std::path::PathBuf;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tag424::provision::batch::{
    folder_codes, generate_xuids, read_xuids, BatchEvent, BatchOptions, Stop, Summary,
};
use tag424::provision::code_list::Header;
use tag424::provision::irreversible::Chosen;
use tag424::provision::rehearse::Rehearsal;
use tag424::provision::station::run_readers;
use tag424::provision::{EncodeOptions, Journal};

use super::reader::{AnyReader, ReaderSpec};
use super::station::StationView;
use tag424::sun::{Template, DEFAULT_TEMPLATE};

use super::{print_json, say, CliError, FORMAT_VERSION};

/// Encode a stack of tags with the platform's tag codes (the main job).
///
/// Each tag gets its tag code's SUN URL and five fresh keys; keys.csv (XUID,KEY) and
/// associate.csv (XUID,UID) are written to the output directory.
///
/// Re-running with the same --out resumes: codes are never used twice, encoded tags are
/// skipped, and a tag whose encoding was interrupted is finished when presented again.
/// One process writes a folder at a time; a second one is refused at once.
///
/// Several readers feed one batch: `--reader A --reader B` (or `--reader all`) runs one
/// worker per reader over the same journal and code list; a tag pulled from one reader is
/// finished on any other.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 batch --reader sim:tags --generate-xuids 10 --out batch1    # 10 simulated tags, local codes
  tag424 batch --reader PICC --xuids codes.csv --out batch2          # a PC/SC reader, the platform's codes
  tag424 batch --reader 0 --reader 1 --xuids codes.csv --out batch2  # two readers feed one batch
  tag424 batch --generate-xuids 2 --out batch3 --lock-ndef-permanently --freeze-settings --dry-run   # the plan, on a simulated tag
  tag424 batch --reader sim:tags4 --generate-xuids 2 --out batch4 --freeze-settings --yes-irreversible   # a script confirms with the flag")]
pub struct BatchArgs {
    /// The reader (required; also TAG424_READER): a PC/SC reader's name, number (from 0) or unique part
    /// of its name (see `tag424 readers`), or `sim:DIR` for simulated tags kept in DIR
    /// (`sim` alone: OUT/simulated-tags; `sim:DIR?latency=15ms` answers like a real reader,
    /// `sim:DIR?drop=0.1` loses answers and `?remove=0.05` drops tags: see docs/simulator.md).
    /// Repeat for several readers; `all` for every PC/SC reader plugged in.
    #[arg(long, env = "TAG424_READER", value_name = "READER")]
    pub reader: Vec<String>,
    /// The platform's tag code list: a CSV whose first line names an XUID column (the
    /// platform's download), or one code per line with --no-header.
    #[arg(long, value_name = "FILE", required_unless_present = "generate_xuids")]
    pub xuids: Option<PathBuf>,
    /// The --xuids file has no header line: one code per line.
    #[arg(long, requires = "xuids")]
    pub no_header: bool,
    /// Resuming with a code list other than the one the folder was started with: add its new
    /// codes to the folder's list (without this, a different list is refused).
    #[arg(long)]
    pub add_codes: bool,
    /// Make N local 8-character tag codes instead of reading a list (tests and demos). On an
    /// existing folder its recorded codes are used (with --add-codes: N more).
    #[arg(long, value_name = "N", conflicts_with = "xuids")]
    pub generate_xuids: Option<usize>,
    /// Output directory: the key journal, keys.csv, associate.csv. A new name (created
    /// owner-only), an empty folder or a batch folder; a file or a folder of other files is
    /// refused.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// If the reader is not plugged in yet, wait for it (default: stop with an error).
    #[arg(long)]
    pub wait_for_reader: bool,
    /// URL template (see `tag424 verify --help`).
    #[arg(long = "url", value_name = "TEMPLATE", default_value = DEFAULT_TEMPLATE)]
    pub template: String,
    #[command(flatten)]
    pub master: super::keys::MasterKeySource,
    #[command(flatten)]
    pub at_rest: super::keys::AtRest,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Stop after N tags are encoded.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Accept chips signed with the simulator's test key (implied by a `sim` reader). The
    /// batch is then a rehearsal: the summary says so and summary.json has "simulated": true.
    #[arg(long)]
    pub trust_simulator: bool,
    /// One JSON event per line instead of the progress view.
    #[arg(long)]
    pub json: bool,
    /// Print every step and the APDU count of each tag.
    #[arg(long, short)]
    pub verbose: bool,
    /// Ring the terminal bell when a tag fails (heard across the room; works over SSH).
    #[arg(long)]
    pub beep: bool,
    /// Switch every factory tag of this batch to LRP mode (NXP's leakage-resilient crypto)
    /// before its keys are changed. IRREVERSIBLE: an LRP tag never goes back to AES, and its
    /// verifier must know it (48-digit PICC data tells by itself; plain mirrors need
    /// `--mode lrp`). Confirmed once per run: typed on a terminal, or --yes-irreversible.
    /// Costs 18 APDUs per tag (AES: 15).
    #[arg(long)]
    pub lrp_irreversible: bool,
    /// IRREVERSIBLE (like --lrp-irreversible; confirmed the same way): switch every tag's Random
    /// ID on (SetConfiguration, NT4H2421Gx §10.5.1). From then on the tag answers every
    /// reader and phone with a new random 4-byte ID (08…) instead of its UID, for good, so
    /// its UID cannot be used to track it; the real UID stays in its SUN message (PICCData)
    /// and is read only after authentication (GetCardUID). associate.csv, the journal and the
    /// verifier keep the real UID. A batch keeps the value it was started with.
    #[arg(long)]
    pub random_uid: bool,
    /// Let each tag give at most N SUN reads (SDMReadCtrLimit, NT4H2421Gx §9.3.2): when its
    /// read counter reaches N the chip refuses further reads of its URL (a phone then reads
    /// nothing). The encoding's own read-back is read 1, so phones get N-1 taps; 2 to
    /// 16777214. Set once per tag; re-encoding needs `tag424 reset`. A batch keeps the value
    /// it was started with; `tag424 serve` says "read limit reached" for a copy of the last read.
    #[arg(long, value_name = "N")]
    pub read_counter_limit: Option<u32>,
    /// Set every tag's failed-authentication counter (SetConfiguration 0Ah, NT4H2421Gx
    /// §10.5.1 Table 50): each key counts its failed authentications (+1) and successful ones
    /// (-DECR, not below 0); when a key's count reaches N, the chip refuses that key for
    /// authentication from then on (919D). A blocked key 1-4 comes back only when key 0 changes
    /// it; a blocked key 0 never does, and the tag can then never be re-keyed or reset (its URL
    /// still reads). N from 1 to 65535, DECR 0 to 65535 (default 10). The chip's own setting,
    /// kept when this is left out: on, N 1000, DECR 10. Not irreversible (key 0 may set it
    /// again). One more APDU per tag. A batch keeps the value it was started with.
    #[arg(long, value_name = "N[,DECR]", value_parser = parse_failed_auth_limit)]
    pub failed_auth_limit: Option<tag424::provision::lifecycle::FailedAuthConfig>,
    /// Lock every tag's NDEF file for good: its URL can never be rewritten, with any key
    /// (Write and ReadWrite access never, in a last ChangeFileSettings after the read-back
    /// verified). IRREVERSIBLE; needs --freeze-settings (the change right could otherwise lift
    /// the lock). The two cost 5 more APDUs per tag together (one last ChangeFileSettings).
    #[arg(long)]
    pub lock_ndef_permanently: bool,
    /// Freeze every tag's NDEF file settings for good (change access never): SUN mirrors and
    /// access rights can never change again, and `tag424 reset` cannot return them to
    /// factory. IRREVERSIBLE. 5 more APDUs per tag (with --lock-ndef-permanently too: the
    /// same 5).
    #[arg(long)]
    pub freeze_settings: bool,
    /// Confirms the irreversible options without the typed confirmation (scripts; a run
    /// without a terminal needs it).
    #[arg(long)]
    pub yes_irreversible: bool,
    /// Run the whole sequence on a throwaway simulated tag and print each step, its APDU
    /// exchanges and what cannot be undone; no reader is opened, nothing is written to --out
    /// (--reader is not needed).
    #[arg(long)]
    pub dry_run: bool,
}

/// The batch's irreversible options from its flags: one line per option of
/// `tag424::provision::irreversible::ALL`.
fn chosen(args: &BatchArgs) -> Chosen {
    Chosen::from_fn(|o| match o.id {
        "lrp" => args.lrp_irreversible,
        "lock-ndef" => args.lock_ndef_permanently,
        "freeze-settings" => args.freeze_settings,
        "random-uid" => args.random_uid,
        _ => false,
    })
}

/// The word the operator types to confirm the irreversible options on a terminal.
const CONFIRM_WORD: &str = "IRREVERSIBLE";

/// The plan's lines: each irreversible option, what the chip is told and what it means.
fn plan_lines(chosen: &Chosen) -> Vec<String> {
    let mut l = vec!["Irreversible, on every tag of this batch:".to_string()];
    for o in chosen.iter() {
        l.push(format!("  {}: {}", o.flag, o.effect));
        l.push(format!("      ({})", o.command));
    }
    l
}

/// The one rule for irreversible options: confirmed once per run, by typing
/// [`CONFIRM_WORD`] on a terminal or with `--yes-irreversible`; a run without a terminal and
/// without the flag is refused before anything is opened.
fn confirm_irreversible(chosen: &Chosen, yes: bool) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    if chosen.is_empty() || yes {
        return Ok(());
    }
    let leave_out = chosen.flags();
    if !std::io::stdin().is_terminal() {
        return Err(CliError {
            code: 2,
            message: format!(
                "{leave_out} cannot be undone on a tag, and there is no terminal to confirm it: no tag was touched"
            ),
            help: Some(format!(
                "add --yes-irreversible to confirm in a script (see the plan first with --dry-run), or run on a terminal and type {CONFIRM_WORD}"
            )),
        });
    }
    let mut err = std::io::stderr();
    for l in plan_lines(chosen) {
        let _ = writeln!(err, "{l}");
    }
    let _ = write!(err, "Type {CONFIRM_WORD} to continue: ");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::input(format!("reading the confirmation: {e}")))?;
    if line.trim() != CONFIRM_WORD {
        return Err(CliError {
            code: 2,
            message: "not confirmed: no tag was touched".into(),
            help: Some(format!(
                "re-run and type {CONFIRM_WORD}, or leave out {leave_out}"
            )),
        });
    }
    Ok(())
}

/// `--dry-run`: the sequence of one fresh tag on a throwaway simulated tag, printed.
fn dry_run(
    template: &Template,
    chosen: &Chosen,
    lifecycle: tag424::provision::lifecycle::Lifecycle,
    xuid: &str,
    json: bool,
) -> Result<u8, CliError> {
    let opts = EncodeOptions {
        template: template.clone(),
        trust_simulator: true,
        master: None,
        locks: chosen.locks(),
        lifecycle,
    };
    let r = rehearse(&opts, xuid)?;
    print_rehearsal(&r, chosen, json);
    Ok(0)
}

/// The dry run of `opts` on a throwaway simulated tag (a TagTamper one for `{tt}`).
pub(super) fn rehearse(opts: &EncodeOptions, xuid: &str) -> Result<Rehearsal, CliError> {
    use tag424::provision::rehearse;
    use tag424::sim::{ChipState, SimChip, SimTransport};
    let mut state = ChipState::random_factory();
    if rehearse::needs_tag_tamper(opts) {
        state = ChipState::factory_tag_tamper(state.uid);
    }
    rehearse::rehearse(opts, xuid, SimTransport::new(SimChip::new(state)))
        .map_err(|e| CliError::input(e.to_string()))
}

/// `GetVersion ×3, Read_Sig`: repeated commands once, with their count.
fn runs(commands: &[&str]) -> String {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for c in commands {
        match out.last_mut() {
            Some((last, n)) if last == c => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out.iter()
        .map(|(c, n)| {
            if *n == 1 {
                c.to_string()
            } else {
                format!("{c} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a dry run (also `tag424 url-check --dry-run`).
pub(super) fn print_rehearsal(r: &Rehearsal, chosen: &Chosen, json: bool) {
    let irreversible = r
        .steps
        .iter()
        .filter(|s| !s.irreversible.is_empty())
        .count();
    if json {
        print_json(&serde_json::json!({
            "format": FORMAT_VERSION, "event": "dry_run", "options": chosen.ids(),
            "url": r.url, "xuid": r.xuid, "exchanges": r.exchanges, "steps": r.steps,
            "irreversible_steps": r.steps.iter().filter(|s| !s.irreversible.is_empty()).map(|s| s.step).collect::<Vec<_>>(),
        }));
        return;
    }
    say("Dry run on a throwaway simulated tag: no reader opened, nothing written to --out.");
    say(&format!("URL:  {}", r.url));
    for (i, s) in r.steps.iter().enumerate() {
        let mark = if s.irreversible.is_empty() {
            ""
        } else {
            "   IRREVERSIBLE"
        };
        say(&format!(
            "{:>2}. {:<14} {:>2} {}: {}{mark}",
            i + 1,
            s.step,
            s.exchanges,
            if s.exchanges == 1 {
                "exchange "
            } else {
                "exchanges"
            },
            runs(&s.commands)
        ));
        for what in &s.irreversible {
            say(&format!("      cannot be undone: {what}"));
        }
    }
    say(&format!(
        "{} per fresh tag; the read-back verified.",
        super::count(r.exchanges, "exchange", "exchanges")
    ));
    if irreversible == 0 {
        say("Nothing in this sequence is irreversible.");
    } else if chosen.is_empty() {
        say(&format!(
            "{} irreversible (from the template: {{tt}} enables TagTamper for good).",
            super::count(irreversible, "step is", "steps are")
        ));
    } else {
        say(&format!(
            "{} irreversible: a real run with {} asks you to type {CONFIRM_WORD} on a terminal, or --yes-irreversible.",
            super::count(irreversible, "step is", "steps are"),
            chosen.flags()
        ));
    }
}

pub fn run(args: BatchArgs) -> Result<u8, CliError> {
    let mut template =
        Template::parse(&args.template).map_err(|e| CliError::input(format!("--url: {e}")))?;
    if args.lrp_irreversible {
        template = template.with_mode(tag424::crypto::sdm::SdmMode::Lrp);
    }
    // Everything is checked before the folder is created or locked.
    let header = if args.no_header {
        Header::None
    } else {
        Header::Required
    };
    let given = match (&args.xuids, args.generate_xuids) {
        (Some(p), _) => Some(read_xuids(p, header).map_err(|e| CliError::input(e.to_string()))?),
        (None, Some(_)) => None,
        (None, None) => return Err(CliError::input("give --xuids FILE or --generate-xuids N")),
    };
    check_layout(&template, given.as_deref().unwrap_or_default())?;
    let chosen = chosen(&args);
    if chosen.locks().ndef && !chosen.locks().settings {
        return Err(CliError {
            code: 2,
            message: "--lock-ndef-permanently alone is not permanent: the NDEF file's change right (key 0) could lift the lock with a ChangeFileSettings".into(),
            help: Some("add --freeze-settings as well (both are irreversible), or leave out --lock-ndef-permanently".into()),
        });
    }
    let lifecycle = tag424::provision::lifecycle::Lifecycle {
        random_uid: args.random_uid,
        read_ctr_limit: args.read_counter_limit,
        failed_auth: args.failed_auth_limit,
    };
    lifecycle.check().map_err(|e| CliError {
        code: 2,
        message: e.to_string(),
        help: Some(
            "give --read-counter-limit a number in that range, or leave it out for no limit".into(),
        ),
    })?;
    if args.dry_run {
        let sample = given
            .as_ref()
            .and_then(|g| g.first().cloned())
            .unwrap_or_else(|| generate_xuids(1).remove(0));
        return dry_run(&template, &chosen, lifecycle, &sample, args.json);
    }
    let specs = super::reader::required_all(&args.reader)?;
    let simulated = specs.iter().all(|s| s.is_sim());
    let master = args.master.resolve()?;
    confirm_irreversible(&chosen, args.yes_irreversible)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sim_dir = args.out.join("simulated-tags");
    // Two specs of one simulated folder (`sim` and `sim:OUT/simulated-tags`, `sim:T` and
    // `sim:T/`) are refused before anything is opened or created.
    let mut sim_dirs: Vec<PathBuf> = Vec::new();
    for spec in &specs {
        if let ReaderSpec::Sim { dir, .. } = spec {
            let d = dir.clone().unwrap_or_else(|| sim_dir.clone());
            let d = std::fs::canonicalize(&d).unwrap_or(d);
            if sim_dirs.contains(&d) {
                return Err(reader_twice(&format!("sim:{}", d.display())));
            }
            sim_dirs.push(d);
        }
    }
    // A reader that cannot be opened (unplugged, a typo) leaves no folder behind; only the
    // default simulated directory lives inside the folder and is opened after it.
    let mut early = Vec::new();
    for spec in &specs {
        early.push(match spec {
            ReaderSpec::Sim { dir: None, .. } => None,
            _ => Some(AnyReader::open(
                spec,
                &sim_dir,
                &stop,
                args.wait_for_reader,
                false,
            )?),
        });
    }
    // The same reader named twice (`--reader 0 --reader NAME`): refused before the folder.
    let names: Vec<String> = early
        .iter()
        .map(|r| match r {
            Some(r) => r.describe(),
            None => AnyReader::describe_sim(&sim_dir),
        })
        .collect();
    if let Some(n) = names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
    {
        return Err(reader_twice(n.1));
    }
    let access = args.at_rest.access()?;
    args.trace.check_sealed(access.encrypt_to.is_some(), None)?;
    let mut journal = super::open_journal(&args.out, &access)?;
    args.trace.check_sealed(false, Some(&journal))?;
    // The batch's options, irreversible and lifecycle, are one record: a refusal names every
    // option to re-run with.
    let options = tag424::provision::options::BatchOptions::new(chosen.clone(), lifecycle);
    let lifecycle = options.lifecycle();
    tag424::provision::options::settle(&mut journal, &options).map_err(|e| {
        use tag424::provision::options::OptionsError;
        match e {
            OptionsError::Journal(e) => super::journal_error(e),
            e @ OptionsError::Differs { .. } => CliError {
                code: 2,
                message: e.to_string(),
                help: Some(format!(
                    "{} to resume this batch, or give another --out to start a new batch with {}",
                    match tag424::provision::options::BatchOptions::recorded(&journal) {
                        Ok(r) if r == tag424::provision::options::BatchOptions::none() =>
                            "re-run without these options".to_string(),
                        Ok(r) => format!("re-run with {}", r.flags()),
                        Err(_) => "re-run with the options it was started with".to_string(),
                    },
                    options.flags()
                )),
            },
            e => CliError::input(e.to_string()),
        }
    })?;
    let has_codes = args.out.join(tag424::provision::batch::CODES_FILE).exists();
    let given = match (given, args.generate_xuids) {
        (Some(g), _) => Some(g),
        (None, Some(n)) if !has_codes || args.add_codes => Some(generate_xuids(n)),
        _ => None,
    };
    let xuids = folder_codes(&journal, given, args.add_codes).map_err(|e| match e {
        tag424::provision::batch::CodesError::Differs { .. } => CliError {
            code: 2,
            message: e.to_string(),
            help: Some("check --out (a typo starts nothing: this folder is another batch), or pass --add-codes to add this list's new codes to the folder".into()),
        },
        e => CliError::input(e.to_string()),
    })?;
    check_layout(&template, &xuids)?;
    let used = xuids.iter().filter(|x| journal.xuid_used(x)).count();
    let opts = BatchOptions {
        encode: EncodeOptions {
            template,
            // Simulated readers hold simulated chips: such a batch is a rehearsal
            // (`BatchOptions::simulated`), as one with --trust-simulator is.
            trust_simulator: args.trust_simulator || simulated,
            master,
            lifecycle,
            locks: chosen.locks(),
        },
        count: args.count,
        stop: Some(stop.clone()),
        trace: args.trace.open(&args.reader.join(", "))?,
    };
    let total = args.count.unwrap_or(xuids.len() - used) as u64;
    let opening = if journal.created {
        format!(
            "New batch in {}: {}",
            args.out.display(),
            super::count(xuids.len(), "code", "codes")
        )
    } else {
        format!(
            "Resuming {}: {used} of {} used, {} left",
            args.out.display(),
            super::count(xuids.len(), "code", "codes"),
            xuids.len() - used
        )
    };
    let healed = super::healed_line(&journal);
    if args.json {
        print_json(
            &serde_json::json!({"format": FORMAT_VERSION, "event": "start", "new": journal.created, "codes": xuids.len(), "codes_used": used, "healed": healed, "irreversible": chosen.ids()}),
        );
    } else {
        say(&opening);
        if !chosen.is_empty() {
            for l in plan_lines(&chosen) {
                say(&l);
            }
        }
    }
    if let Some(h) = &healed {
        eprintln!("{h}");
    }
    // The lifecycle options, before the first tag.
    if args.json {
        // The options' own shape (summary.json's `lifecycle`), flat in the event.
        let mut event = lifecycle.json();
        event["format"] = FORMAT_VERSION.into();
        event["event"] = "lifecycle".into();
        print_json(&event);
    } else {
        for line in lifecycle_lines(&lifecycle) {
            say(&line);
        }
    }
    if lifecycle.random_uid && opts.encode.template.has(&tag424::sun::template::Part::Uid) {
        eprintln!("note: the URL template's {{uid}} puts each tag's real UID in every URL in clear, which Random ID hides from readers; {{picc}} carries it encrypted");
    }
    let mut readers = Vec::new();
    for (spec, early) in specs.iter().zip(early) {
        readers.push(match early {
            Some(r) => r,
            None => AnyReader::open(spec, &sim_dir, &stop, args.wait_for_reader, false)?,
        });
    }
    // Each reader's number (the one `tag424 readers` shows) and name.
    let numbered: Vec<(usize, String)> = readers
        .iter()
        .enumerate()
        .map(|(place, r)| r.number(place))
        .zip(names.iter().cloned())
        .collect();
    if !args.json {
        say(&match numbered.as_slice() {
            [(_, one)] => format!("Reader: {one}"),
            many => format!(
                "{} readers: {}",
                many.len(),
                many.iter()
                    .map(|(n, name)| tag424::transport::pcsc::label(*n, name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let summary = if args.json {
        run_json(&mut readers, &names, &mut journal, &xuids, &opts)?
    } else {
        let view = StationView::new(numbered, total, args.verbose, args.beep);
        let r = run_readers(&mut readers, &mut journal, &xuids, &opts, &mut |i, e| {
            view.event(i, e)
        });
        view.finish();
        r.map_err(super::journal_error)?
    };
    if args.json {
        print_json(
            &serde_json::json!({"format": FORMAT_VERSION, "event": "summary", "summary": summary}),
        );
    } else {
        for l in summary_lines(&summary, &args.out) {
            say(&l);
        }
    }
    match &summary.stopped {
        Some(Stop::Interrupted) => {
            eprintln!("Stopped by Ctrl-C. Re-run the same command to continue; nothing is lost.");
            Ok(130)
        }
        Some(Stop::Reader(why)) => Err(CliError {
            code: 4,
            message: format!("the reader stopped: {why}"),
            help: Some("fix the reader (plug it in, start pcscd) and re-run the same command: finished tags are kept, an interrupted tag is finished when presented again".into()),
        }),
        Some(Stop::NoMoreTags) | None => Ok(if summary.failed > 0 { 1 } else { 0 }),
    }
}

/// clap's parser of `--failed-auth-limit N[,DECR]`.
fn parse_failed_auth_limit(
    s: &str,
) -> Result<tag424::provision::lifecycle::FailedAuthConfig, String> {
    tag424::provision::lifecycle::parse_failed_auth(s).map_err(|e| e.to_string())
}

/// The lifecycle options in words (none: no line).
fn lifecycle_lines(l: &tag424::provision::lifecycle::Lifecycle) -> Vec<String> {
    let mut v = Vec::new();
    if l.random_uid {
        v.push("Random ID: ON, IRREVERSIBLE: each tag will answer readers with a new random ID for good (associate.csv and the verifier keep its real UID).".into());
    }
    if let Some(c) = l.failed_auth {
        v.push(format!("Failed-authentication limit: {} per key (each success takes {} off); at the limit the chip refuses that key for good unless key 0 changes it (key 0 itself: never again). Chip default: 1000, 10.", c.limit, c.decrement));
    }
    if let Some(n) = l.read_ctr_limit {
        v.push(format!("Read limit: {n} SUN reads per tag (the encoding's read-back is read 1: {} taps), then the tag refuses to be read.", n - 1));
    }
    v
}

fn reader_twice(name: &str) -> CliError {
    CliError {
        code: 2,
        message: format!("--reader names {name} twice"),
        help: Some("give each reader once; `tag424 readers` lists them".into()),
    }
}

fn check_layout(template: &Template, xuids: &[String]) -> Result<(), CliError> {
    // Refuse a template that cannot hold these codes before any tag is touched.
    for x in xuids {
        tag424::provision::layout::layout(template, x)
            .map_err(|e| CliError::input(format!("--url with tag code {x}: {e}")))?;
    }
    Ok(())
}

/// The end of a batch in words.
fn summary_lines(s: &Summary, out: &std::path::Path) -> Vec<String> {
    let mut l = Vec::new();
    let mut done = format!(
        "Done: {} encoded and verified",
        super::count(s.encoded, "tag", "tags")
    );
    if s.recovered > 0 {
        done.push_str(&format!(
            " ({} of them finished after an interruption)",
            s.recovered
        ));
    }
    l.push(done + ".");
    if s.skipped > 0 {
        l.push(format!(
            "  {} skipped: already encoded in this folder; nothing written, no code used.",
            super::count(s.skipped, "tag", "tags")
        ));
    }
    if s.unfinished > 0 {
        l.push(format!(
            "  {} unfinished (left a reader mid-encoding): present {} again (same command) to finish {}; `tag424 journal check` lists {}.",
            super::count(s.unfinished, "tag", "tags"),
            if s.unfinished == 1 { "it" } else { "them" },
            if s.unfinished == 1 { "it" } else { "them" },
            if s.unfinished == 1 { "it" } else { "them" }
        ));
    }
    if s.retries > 0 {
        l.push(format!(
            "  {} on {} (a tag left the field or the reader lost an answer): each resumed from the journal and the tag's state.",
            super::count(s.retries, "retry", "retries"),
            super::count(s.retried_tags, "tag", "tags")
        ));
    }
    if s.failed > 0 {
        l.push(format!(
            "  {} refused or failed: see the messages above; nothing of theirs is lost.",
            super::count(s.failed, "tag", "tags")
        ));
    }
    l.push(format!(
        "  Codes: {} used, {} left. {} has {}: {}",
        s.codes_used,
        s.codes_left,
        s.keys_file,
        super::count(s.exported, "row", "rows"),
        out.join(s.keys_file).display()
    ));
    if !s.irreversible.is_empty() {
        l.push(format!(
            "  Irreversible options applied to every tag: {} (summary.json \"irreversible\").",
            s.irreversible.join(", ")
        ));
    }
    if s.simulated {
        l.push("  Simulated reader: these are simulated tags, not real ones (a rehearsal: do not upload its keys).".into());
    }
    l
}

fn run_json(
    readers: &mut [AnyReader],
    names: &[String],
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
) -> Result<Summary, CliError> {
    // With one reader the events are as they always were; with several each names its reader.
    let several = readers.len() > 1;
    let with_reader = |mut v: serde_json::Value, i: usize| {
        if several {
            v["reader"] = serde_json::Value::from(names[i].clone());
        }
        v
    };
    run_readers(readers, journal, xuids, opts, &mut |i, e| match e {
        BatchEvent::Done { outcome, elapsed } => print_json(&with_reader(
            serde_json::json!({"format": FORMAT_VERSION, "event": "tag", "result": outcome, "seconds": elapsed.as_secs_f64()}),
            i,
        )),
        BatchEvent::Failed { error } => print_json(&with_reader(
            serde_json::json!({"format": FORMAT_VERSION, "event": "failed", "error": error.to_string(), "help": error.help(), "tear_off": error.is_tear_off()}),
            i,
        )),
        BatchEvent::TagLeft => print_json(&with_reader(
            serde_json::json!({"format": FORMAT_VERSION, "event": "tag_left"}),
            i,
        )),
        BatchEvent::Retry { retry, error } => print_json(&with_reader(
            serde_json::json!({"format": FORMAT_VERSION, "event": "retry", "retry": retry, "error": error.to_string(), "tear_off": error.is_tear_off()}),
            i,
        )),
        _ => {}
    })
    .map_err(super::journal_error)
}

/// Recording the APDU exchanges.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Append every APDU exchange to FILE in the hardware-fixtures format, with its name and
    /// time; shareable: authentication randoms and key-bearing data redacted (see the
    /// operator guide, "Sharing a trace"). With several readers, each tag's exchanges are
    /// written together when it is done.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// With --trace: write everything, authentication randoms and key-bearing commands
    /// included, so the trace replays as a fixture (test tags only: the file then gives the
    /// keys; not with --encrypt-to, whose keys never go to disk in clear).
    #[arg(long, requires = "trace")]
    pub trace_keys: bool,
}

impl TraceArgs {
    /// Refuses `--trace-keys` for an encrypted batch (its keys never go to disk in clear):
    /// asked for (`encrypting`, checked before anything is written) or the folder one already.
    pub fn check_sealed(
        &self,
        encrypting: bool,
        journal: Option<&Journal>,
    ) -> Result<(), CliError> {
        let sealed = journal.is_some_and(|j| j.sealed_to().is_some());
        if self.trace_keys && (encrypting || sealed) {
            return Err(CliError {
                code: 2,
                message: "--trace-keys would write this encrypted batch's keys in clear (its folder keeps them sealed)".into(),
                help: Some("leave out --trace-keys; --trace alone records every exchange without key material".into()),
            });
        }
        Ok(())
    }

    pub fn open(&self, reader: &str) -> Result<Option<tag424::card::trace::Trace>, CliError> {
        let Some(path) = &self.trace else {
            return Ok(None);
        };
        // 0600 from creation; with --trace-keys it holds ChangeKey commands, so an existing
        // file must also be the user's own and closed to others.
        let f = if self.trace_keys {
            tag424::private_fs::open_append(path).map_err(|e| match e {
                tag424::private_fs::PrivateError::NotPrivate(e) => {
                    super::not_private("--trace with --trace-keys", e)
                }
                e => CliError::input(format!("--trace {e}")),
            })?
        } else {
            tag424::private_fs::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| CliError::input(format!("--trace {}: {e}", path.display())))?
        };
        let t = tag424::card::trace::Trace::new(Box::new(f), self.trace_keys);
        t.comment(&format!(
            "tag424 {} trace; reader: {reader}",
            env!("CARGO_PKG_VERSION")
        ));
        t.comment("@document: add the reader model, the tag and the date here");
        Ok(Some(t))
    }
}
