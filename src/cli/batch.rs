//! `tag424 batch` and `tag424 encode`: the operator's main job.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tag424::provision::batch::{
    generate_xuids, read_xuids, run_batch, BatchEvent, BatchOptions, Summary,
};
use tag424::provision::{EncodeOptions, Journal, Outcome, Step};

use super::reader::{AnyReader, ReaderSpec};
use tag424::sun::{Template, DEFAULT_TEMPLATE};

use super::{print_json, say, CliError, FORMAT_VERSION};

/// Encode a stack of tags with the platform's tag codes (the main job).
///
/// Each tag gets its tag code's SUN URL and five fresh keys; keys.csv (XUID,KEY) and
/// associate.csv (XUID,UID) are written to the output directory.
///
/// Re-running with the same --out resumes: codes are never used twice, encoded tags are
/// skipped, and a tag whose encoding was interrupted is finished when presented again.
///
/// Example (simulated reader, 10 tags, local codes):
///   tag424 batch --reader sim:tags --generate-xuids 10 --out batch1
#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// The reader: a PC/SC reader's name, index or unique part of its name (see
    /// `tag424 readers`), `sim` (simulated tags kept in OUT/simulated-tags) or `sim:DIR`.
    #[arg(long, env = "TAG424_READER", default_value = "sim")]
    pub reader: String,
    /// The platform's tag code list: a CSV with an XUID column, or one code per line.
    #[arg(long, value_name = "FILE", required_unless_present = "generate_xuids")]
    pub xuids: Option<PathBuf>,
    /// Make N local 8-character tag codes instead of reading a list (tests and demos).
    #[arg(long, value_name = "N", conflicts_with = "xuids")]
    pub generate_xuids: Option<usize>,
    /// Output directory: the key journal, keys.csv, associate.csv. Created owner-only.
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
    pub trace: TraceArgs,
    /// Stop after N tags are encoded.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Accept chips signed with the simulator's test key (implied by a `sim` reader).
    #[arg(long)]
    pub trust_simulator: bool,
    /// One JSON event per line instead of the progress view.
    #[arg(long)]
    pub json: bool,
    /// Print every step and the APDU count of each tag.
    #[arg(long, short)]
    pub verbose: bool,
}

fn step_name(s: Step) -> &'static str {
    match s {
        Step::Identify => "Identifying",
        Step::Authenticate => "Authenticating",
        Step::WriteNdef => "Writing URL",
        Step::ChangeKeys => "Changing keys",
        Step::Verify => "Verifying",
    }
}

pub fn run(args: BatchArgs) -> Result<u8, CliError> {
    let template =
        Template::parse(&args.template).map_err(|e| CliError::input(format!("--url: {e}")))?;
    let xuids = match (&args.xuids, args.generate_xuids) {
        (Some(p), _) => read_xuids(p).map_err(|e| CliError::input(e.to_string()))?,
        (None, Some(n)) => generate_xuids(n),
        (None, None) => return Err(CliError::input("give --xuids FILE or --generate-xuids N")),
    };
    // Refuse a template that cannot hold these codes before any tag is touched.
    for x in &xuids {
        tag424::provision::layout::layout(&template, x)
            .map_err(|e| CliError::input(format!("--url with tag code {x}: {e}")))?;
    }
    let spec = ReaderSpec::parse(&args.reader)?;
    let mut journal = Journal::open(&args.out).map_err(|e| CliError::input(e.to_string()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut reader = AnyReader::open(
        &spec,
        &args.out.join("simulated-tags"),
        &stop,
        args.wait_for_reader,
    )?;
    let opts = BatchOptions {
        encode: EncodeOptions {
            template,
            trust_simulator: args.trust_simulator || spec.is_sim(),
            master: args.master.resolve()?,
        },
        count: args.count,
        stop: Some(stop),
        trace: args.trace.open(&args.reader)?,
    };
    let total = args
        .count
        .unwrap_or(xuids.iter().filter(|x| !journal.xuid_used(x)).count()) as u64;
    if !args.json {
        say(&format!(
            "Reader: {}. Output: {}",
            reader.describe(),
            args.out.display()
        ));
    }
    let summary = if args.json {
        run_json(&mut reader, &mut journal, &xuids, &opts)?
    } else {
        run_view(
            &mut reader,
            &mut journal,
            &xuids,
            &opts,
            total,
            args.verbose,
        )?
    };
    if args.json {
        print_json(
            &serde_json::json!({"format": FORMAT_VERSION, "event": "summary", "summary": summary}),
        );
    } else {
        say(&format!(
            "Done: {} encoded ({} finished after a tear-off), {} skipped, {} failed; {} rows in {}",
            summary.encoded,
            summary.recovered,
            summary.skipped,
            summary.failed,
            summary.exported,
            args.out.join("keys.csv").display()
        ));
    }
    if let Some(why) = &summary.stopped {
        if why == tag424::provision::batch::INTERRUPTED {
            eprintln!("Stopped by Ctrl-C. Re-run the same command to continue; nothing is lost.");
            return Ok(130);
        }
        return Err(CliError {
            code: 4,
            message: format!("the reader stopped: {why}"),
            help: Some("fix the reader (plug it in, start pcscd) and re-run the same command: finished tags are kept, an interrupted tag is finished when presented again".into()),
        });
    }
    Ok(if summary.failed > 0 { 1 } else { 0 })
}

fn run_json(
    reader: &mut AnyReader,
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
) -> Result<Summary, CliError> {
    run_batch(reader, journal, xuids, opts, &mut |e| match e {
        BatchEvent::Done { outcome, elapsed } => {
            print_json(&serde_json::json!({"format": FORMAT_VERSION, "event": "tag", "result": outcome, "seconds": elapsed.as_secs_f64()}))
        }
        BatchEvent::Failed { error } => {
            print_json(&serde_json::json!({"format": FORMAT_VERSION, "event": "failed", "error": error.to_string(), "tear_off": error.is_tear_off()}))
        }
        _ => {}
    })
    .map_err(|e| CliError { code: 3, message: e.to_string(), help: Some("the key journal could not be written: free space or fix permissions, then re-run the same command to resume".into()) })
}

fn run_view(
    reader: &mut AnyReader,
    journal: &mut Journal,
    xuids: &[String],
    opts: &BatchOptions,
    total: u64,
    verbose: bool,
) -> Result<Summary, CliError> {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.green/dim} {pos}/{len} tags  {per_sec:.dim}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    // Without a terminal the bar is hidden: print the operator's lines plainly instead.
    let plain = bar.is_hidden();
    let line = |bar: &ProgressBar, text: String| {
        if plain {
            say(&text);
        } else {
            bar.println(text);
        }
    };
    let r = run_batch(reader, journal, xuids, opts, &mut |e| match e {
        BatchEvent::WaitingForTag => bar.set_message("Present tag"),
        BatchEvent::Step(s) => bar.set_message(step_name(s)),
        BatchEvent::Done { outcome, elapsed } => match outcome {
            Outcome::Encoded {
                uid,
                xuid,
                exchanges,
                recovered,
                ..
            } => {
                bar.inc(1);
                let how = if *recovered {
                    "Finished interrupted"
                } else {
                    "Verified"
                };
                let text = format!("{how} {uid} → {xuid} in {:.2} s", elapsed.as_secs_f64());
                if verbose || plain {
                    line(&bar, format!("{text} ({exchanges} APDUs)"));
                }
                bar.set_message(text);
            }
            Outcome::AlreadyDone { uid, xuid } => {
                line(&bar, format!("Skipped {uid}: already encoded as {xuid}"))
            }
        },
        BatchEvent::Failed { error } => {
            let hint = if error.is_tear_off() {
                " — present it again to finish it"
            } else {
                ""
            };
            line(&bar, format!("Failed: {error}{hint}"));
        }
        BatchEvent::RemoveTag => bar.set_message("Remove tag"),
    });
    bar.finish_and_clear();
    r.map_err(|e| CliError { code: 3, message: e.to_string(), help: Some("the key journal could not be written: free space or fix permissions, then re-run the same command to resume".into()) })
}

/// Recording the APDU exchanges.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Append every APDU exchange to FILE in the hardware-fixtures format (key-bearing
    /// commands redacted).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// With --trace: write key-bearing commands in full (test tags only).
    #[arg(long, requires = "trace")]
    pub trace_keys: bool,
}

impl TraceArgs {
    pub fn open(&self, reader: &str) -> Result<Option<tag424::card::trace::Trace>, CliError> {
        let Some(path) = &self.trace else {
            return Ok(None);
        };
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| CliError::input(format!("--trace {}: {e}", path.display())))?;
        let t = tag424::card::trace::Trace::new(Box::new(f), self.trace_keys);
        t.comment(&format!(
            "tag424 {} trace; reader: {reader}",
            env!("CARGO_PKG_VERSION")
        ));
        t.comment("@document: add the reader model, the tag and the date here");
        Ok(Some(t))
    }
}
