//! Command-line interface: argument parsing (clap), output (text or `--json`) and exit codes.
//! Only this module prints, draws progress or asks questions.

mod batch;
mod demo;
mod doctor;
mod export;
#[cfg(test)]
mod help_tests;
mod identify;
mod keys;
mod log;
mod man;
mod profile;
mod reader;
mod secret;
mod serve;
mod sim;
mod sim_attach;
mod station;
mod table;
mod tag;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use tag424::plural::count;

/// Version of every `--json` document this tool prints.
pub const FORMAT_VERSION: u32 = 1;

/// Provision NXP NTAG 424 DNA tags with SUN URLs and fresh keys, and verify their scans.
///
/// Start with `tag424 demo` to see the whole story on simulated tags.
#[derive(Debug, Parser)]
#[command(
    name = "tag424",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Use the profile CONFIG/tag424/profiles/NAME.toml (`tag424 profile path` shows CONFIG)
    /// instead of ./tag424.toml (also TAG424_PROFILE=NAME). Options on the command line win
    /// over it.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Use no profile, not even ./tag424.toml; wins over TAG424_PROFILE (may be given twice,
    /// e.g. by a wrapper script and by hand).
    #[arg(
        long,
        global = true,
        conflicts_with = "profile",
        overrides_with = "no_profile"
    )]
    no_profile: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole story on simulated tags (start here).
    Demo(demo::DemoArgs),
    Batch(batch::BatchArgs),
    /// Encode the one tag on the reader with a given tag code.
    Encode(tag::EncodeArgs),
    /// List PC/SC readers and whether a tag is on each.
    Readers(reader::ReadersArgs),
    /// Check readers before the first tag: what each is, its tag, its time per exchange.
    Doctor(doctor::DoctorArgs),
    /// Show what the tag on the reader is (version, UID, signature, settings, key versions) and
    /// whose keys it has (factory, a journal's, unknown), without authenticating.
    Info(tag::InfoArgs),
    Reset(tag::ResetArgs),
    Export(export::ExportArgs),
    /// The key journal of a batch folder: `journal check` lists every tag and any damage.
    #[command(subcommand)]
    Journal(JournalCommand),
    Verify(verify::VerifyArgs),
    Identify(identify::IdentifyArgs),
    Serve(serve::ServeArgs),
    Scans(serve::ScansArgs),
    /// Show how a URL template is laid out in the NDEF file (offsets and SDM settings).
    UrlCheck(UrlCheckArgs),
    /// Simulated tags: make, list, tap, and attach to a virtual PC/SC reader.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Print a shell completion script (install steps per system: docs/readers.md).
    #[command(after_help = "Examples:
  tag424 completions bash | sudo tee /usr/share/bash-completion/completions/tag424 >/dev/null
  tag424 completions zsh > ~/.zfunc/_tag424          # with fpath+=~/.zfunc in ~/.zshrc
  tag424 completions fish > ~/.config/fish/completions/tag424.fish")]
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    Man(man::ManArgs),
    /// Profiles: a station's usual options in tag424.toml or --profile NAME.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// List every tag of a batch folder's journal with its state, and any damage (reads only).
    ///
    /// Exit status: 0 healthy (a torn last write is healed by the next encoding run),
    /// 3 damage: a damaged line in the middle, or records lost (journal.head or the folder's
    /// keys.csv, associate.csv or summary.json know more than the journal); encoding runs
    /// refuse the folder until it is repaired.
    #[command(after_help = "Examples:
  tag424 journal check --out batch1
  tag424 journal check --out batch1 --json")]
    Check {
        /// The batch folder (only read: no lock, nothing written).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn journal_check(out: &std::path::Path, json: bool) -> Result<u8, CliError> {
    let c = tag424::provision::Journal::check(out).map_err(journal_error)?;
    let code = if c.damaged.is_empty() && c.lost.is_empty() {
        0
    } else {
        3
    };
    let tags: Vec<_> = c.tags.iter().collect();
    let irreversible = tag424::provision::irreversible::of_folder(c.options.as_deref(), &tags)
        .map_err(|e| CliError::input(e.to_string()))?;
    if json {
        let tags: Vec<_> = c
            .tags
            .iter()
            .map(|t| serde_json::json!({"uid": t.uid, "xuid": t.xuid, "state": t.state(), "verified": t.verified, "reset": t.reset}))
            .collect();
        print_json(&serde_json::json!({
            "format": FORMAT_VERSION,
            "tags": tags,
            "torn_tail": c.torn.map(|(line, bytes)| serde_json::json!({"line": line, "bytes": bytes})),
            "damaged": c.damaged.iter().map(|(l, w)| serde_json::json!({"line": l, "what": w.to_string()})).collect::<Vec<_>>(),
            "lost": c.lost.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "torn_files": c.torn_files,
            "encrypted_to": c.encrypted_to,
            "irreversible": irreversible.ids(),
            "lifecycle": c.lifecycle.json(),
        }));
        return Ok(code);
    }
    say(&format!(
        "{} in {}",
        count(c.tags.len(), "tag", "tags"),
        out.display()
    ));
    if let Some(rs) = &c.encrypted_to {
        say(&format!(
            "Keys encrypted at rest to {} (keys.csv.age; --identity opens them)",
            rs.join(", ")
        ));
    }
    say(&format!(
        "Options: {} (cannot be undone); {}",
        irreversible.flags(),
        c.lifecycle.flags()
    ));
    for t in &c.tags {
        say(&format!("  {}  {:<16} {}", t.uid, t.xuid, t.state()));
    }
    if let Some((line, bytes)) = c.torn {
        say(&format!("Torn last write: line {line}, {} (never acted on; the next encoding run moves it to journal.torn-TIME)", count(bytes, "byte", "bytes")));
    }
    for (line, what) in &c.damaged {
        say(&format!("DAMAGED line {line}: {what}"));
    }
    for what in &c.lost {
        say(&format!("LOST records: {what}"));
    }
    if !c.lost.is_empty() {
        say("Encoding runs refuse this folder. Recovery: put back the newest backup of journal.jsonl, or see \"A journal that lost records\" in docs/operator-guide.md.");
    }
    for f in &c.torn_files {
        say(&format!("Kept torn write: {}", f.display()));
    }
    if c.damaged.is_empty() && c.lost.is_empty() && c.torn.is_none() {
        say("No damage.");
    }
    Ok(code)
}

/// Show how a URL template is laid out on a tag.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 url-check --url 'https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}'
  tag424 url-check --url 'https://example.com/a?p={picc}&c={mac}' --lrp --json
  tag424 url-check --url 'https://example.com/a?p={picc}&c={mac}' --lrp --dry-run   # every step on a simulated tag")]
struct UrlCheckArgs {
    /// The URL template (see `tag424 verify --help` for its placeholders).
    #[arg(long = "url", value_name = "TEMPLATE", default_value = tag424::sun::DEFAULT_TEMPLATE)]
    template: String,
    /// An example tag code for the layout.
    #[arg(long, default_value = "q8w3sbcz")]
    xuid: String,
    /// Lay out for a tag in LRP mode (`batch --lrp-irreversible`): {picc} takes 48 characters.
    #[arg(long)]
    lrp: bool,
    /// One JSON object (the URL, the NDEF file's size, the SDM settings) instead of text.
    #[arg(long)]
    json: bool,
    /// Also encode a throwaway simulated tag with this template and print each step, its
    /// APDU exchanges and what cannot be undone (as `tag424 batch --dry-run`).
    #[arg(long)]
    dry_run: bool,
}

fn url_check(a: UrlCheckArgs) -> Result<u8, CliError> {
    let mut t = tag424::sun::Template::parse(&a.template)
        .map_err(|e| CliError::input(format!("--url: {e}")))?;
    if a.lrp {
        t = t.with_mode(tag424::crypto::sdm::SdmMode::Lrp);
    }
    let l = tag424::provision::layout::layout(&t, &a.xuid)
        .map_err(|e| CliError::input(e.to_string()))?;
    let sdm = l.settings.sdm.clone().unwrap_or_default();
    if a.dry_run {
        let chosen = tag424::provision::irreversible::Chosen::from_fn(|o| {
            o.id == tag424::provision::irreversible::LRP.id && a.lrp
        });
        let opts = tag424::provision::EncodeOptions {
            template: t,
            trust_simulator: true,
            master: None,
            locks: chosen.locks(),
            lifecycle: Default::default(),
        };
        let r = batch::rehearse(&opts, &a.xuid)?;
        batch::print_rehearsal(&r, &chosen, a.json);
        return Ok(0);
    }
    if a.json {
        print_json(
            &serde_json::json!({"format": FORMAT_VERSION, "url": l.url, "ndef_bytes": l.file.len(), "settings": l.settings}),
        );
        return Ok(0);
    }
    say(&format!("URL:        {}", l.url));
    say(&format!("NDEF file:  {} of 256 bytes", l.file.len()));
    for (what, off, len) in sdm.regions() {
        say(&format!(
            "  {what:<15} offset {off:>3}, {len:>2} characters"
        ));
    }
    if let Some(t) = sdm.tt_offset {
        say(&format!("  TTStatus        offset {t:>3},  2 characters"));
    }
    say(&format!(
        "  MAC input       offset {} to {}",
        sdm.mac_input_offset.unwrap_or(0),
        sdm.mac_offset.unwrap_or(0)
    ));
    say(&format!(
        "Access:     read {}, write {}, change {}",
        l.settings.access.read, l.settings.access.write, l.settings.access.change
    ));
    Ok(0)
}

/// An error the operator can act on, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    pub help: Option<String>,
}

impl CliError {
    /// Bad input: exit status 2.
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
            help: None,
        }
    }
}

/// A file or folder refused by the owner-only rule (`tag424::private_fs::check`): exit 2,
/// the fix under it. `what` says where the path came from (`--key-file`, `--db`, …).
pub fn not_private(what: &str, e: tag424::private_fs::NotPrivate) -> CliError {
    CliError {
        code: 2,
        help: Some(e.help()),
        message: format!("{what}: {e}"),
    }
}

/// Opens a batch folder's journal for writing (the folder's one writer), errors mapped to
/// exit codes: in use or a key option missing 2, damaged 3.
pub fn open_journal(
    dir: &std::path::Path,
    keys: &tag424::provision::journal::KeyAccess,
) -> Result<tag424::provision::Journal, CliError> {
    let j = tag424::provision::Journal::open_with(dir, keys).map_err(journal_error)?;
    if let Some(mode) = j.tightened_from() {
        eprintln!("{}", tightened_note(dir, mode));
    }
    Ok(j)
}

/// The note for a batch folder that was the user's own and readable by others, made
/// owner-only before any key went into it.
pub fn tightened_note(dir: &std::path::Path, mode: u32) -> String {
    format!(
        "note: {} was open to other users (mode {mode:04o}); tag424 made it owner-only (chmod 700) before writing keys into it",
        dir.display()
    )
}

/// A journal error for the operator: in use → 2, anything else → 3, with the fix.
pub fn journal_error(e: tag424::provision::journal::JournalError) -> CliError {
    use tag424::provision::journal::JournalError;
    let code = match e {
        JournalError::Locked(_)
        | JournalError::NotPrivate(_)
        | JournalError::NotABatch(_)
        | JournalError::NotAFolder(_)
        | JournalError::Foreign { .. }
        | JournalError::IdentityNeeded { .. }
        | JournalError::KeysSealed { .. }
        | JournalError::ClearFolder { .. }
        | JournalError::OtherRecipients { .. }
        | JournalError::Sealed {
            source: tag424::provision::sealed::SealError::WrongIdentity { .. },
            ..
        } => 2,
        _ => 3,
    };
    CliError {
        code,
        help: Some(e.help()),
        message: e.to_string(),
    }
}

/// The line that tells the operator a torn last write was healed, if one was.
pub fn healed_line(j: &tag424::provision::Journal) -> Option<String> {
    let t = j.torn_tail.as_ref()?;
    Some(match &t.kept_in {
        Some(p) => format!(
            "note: the journal's last write (line {}, {}) was cut short by a crash or a full disk; it was never acted on. Its bytes are kept in {} and the journal continues from its last complete record.",
            t.line,
            count(t.bytes, "byte", "bytes"),
            p.display()
        ),
        None => format!(
            "note: the journal's last write (line {}, {}) was cut short; the next encoding run moves it aside.",
            t.line,
            count(t.bytes, "byte", "bytes")
        ),
    })
}

/// The one escaping of text the CLI prints: every control character (C0, DEL and C1: escape,
/// bell, carriage return, newline…) as its Rust escape (`\u{1b}`, `\n`), so that data from
/// files, tags, the network or the database can neither drive the terminal (colours, title,
/// cursor) nor forge a line. Every print goes through it (`say`, `say_err`, the error report);
/// `tag424 scans` applies it to each field before aligning the columns.
///
/// Bidirectional text controls (U+202E RIGHT-TO-LEFT OVERRIDE can make a terminal show a line
/// in another order than it is) are escaped too; imported text may hold the marks (an Arabic
/// or Hebrew TAGNAME), so only what is printed escapes them.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if escaped(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether [`printable`] escapes `c`: control characters (C0, DEL, C1) and the bidirectional
/// controls (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069).
fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` made safe for a terminal by [`printable`], line by line (its own line breaks kept).
fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints a line to stdout (control characters escaped, see [`printable`]); a closed pipe is
/// not an error.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", terminal_lines(line));
}

/// Prints a line to stderr, escaped as [`say`] does.
pub fn say_err(line: &str) {
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "{}", terminal_lines(line));
}

/// Prints one JSON document on one line. JSON escapes C0 controls itself; DEL and C1 (which
/// some terminals obey) are written as `\u007f`-style escapes, still the same JSON.
pub fn print_json<T: serde::Serialize>(value: &T) {
    if let Ok(s) = serde_json::to_string(value) {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if c.is_control() {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
        }
        say(&out);
    }
}

pub fn main() -> ExitCode {
    use clap::CommandFactory;
    log::install();
    let (args, applied, profile) =
        match profile::apply(std::env::args_os().collect(), &Cli::command()) {
            Ok(x) => x,
            Err(e) => return report(e),
        };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            if let Some(e) = clap_error_from_profile(&applied, &e) {
                return report(e);
            }
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Verify(a) => verify::run(a),
        Command::Identify(a) => identify::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Batch(a) => batch::run(a),
        Command::Readers(a) => reader::readers(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Encode(a) => tag::encode(a),
        Command::Info(a) => tag::info(a),
        Command::Reset(a) => tag::reset(a),
        Command::Export(a) => export::export(a),
        Command::Journal(JournalCommand::Check { out, json }) => journal_check(&out, json),
        Command::Sim(c) => sim::run(c),
        Command::UrlCheck(a) => url_check(a),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tag424", &mut buf);
            let _ = std::io::stdout().lock().write_all(&buf);
            Ok(0)
        }
        Command::Man(a) => man::run(a, Cli::command()),
        Command::Profile(c) => profile::run(c, profile, &Cli::command()),
        Command::Serve(a) => serve::serve(a),
        Command::Scans(a) => serve::scans(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(profile::attribute(&applied, e)),
    }
}

/// A clap error about a value the profile set (`rate-limit = "abc"`), as an error naming the
/// profile file and key; `None` for any other clap error (clap prints it).
fn clap_error_from_profile(applied: &[profile::Applied], e: &clap::Error) -> Option<CliError> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    applied.iter().find(|a| a.long == long)?;
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let e = CliError::input(first.trim_start_matches("error: "));
    Some(profile::attribute(applied, e))
}

fn report(e: CliError) -> ExitCode {
    say_err(&format!("error: {}", e.message));
    if let Some(h) = e.help {
        say_err(&format!("help: {h}"));
    }
    ExitCode::from(e.code)
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    /// Control characters as their Rust escapes; bidirectional controls as `\u{…}`; other
    /// text, right-to-left letters included, unchanged.
    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(printable("\u{2066}t\u{2069}"), "\\u{2066}t\\u{2069}");
        assert_eq!(printable("שלום ab"), "שלום ab");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
