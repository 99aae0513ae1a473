//! `tag424 verify`: check a scanned SUN URL offline.

use serde::Serialize;
use tag424::crypto::sdm::SdmMode;
use tag424::sun::{self, SunKeys, Template};

use super::keys::{KeyFrom, KeySource, MetaKeySource};
use super::{print_json, say, CliError, FORMAT_VERSION};

/// Check a scanned SUN URL with the tag's keys, offline.
///
/// The key comes from --key-file FILE, TAG424_KEY, or a prompt without echo: never from the
/// command line. --key-file also takes a batch's keys.csv (XUID,KEY rows): the row is picked
/// by the URL's tag code ({xuid}, x=).
///
/// Offline, a replayed (copied) URL verifies as well as a fresh tap: only a verifier that
/// stores counters (tag424 serve) refuses replays.
///
/// Exit status: 0 genuine, 1 not genuine, 2 bad input (the URL does not fit the template,
/// a key is malformed, …).
///
/// AES and LRP tags: encrypted PICC data tells the mode by its length (32 hex digits AES,
/// 48 LRP). A template without {picc} looks the same in both modes: give --mode lrp for an
/// LRP tag.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 verify --key-file key.txt 'https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=3F…'
  tag424 verify --key-file batch1/keys.csv 'https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=3F…'    # the row of tag code q8w3sbcz
  tag424 verify --key-file key.txt \"$(tag424 sim tap --dir tags q8w3sbcz)\"    # a simulated tag's tap
  tag424 verify --key-file key.txt --meta-key-file meta.txt --url 'https://example.com/a?p={picc}&c={mac}' 'https://example.com/a?p=…&c=…'
  tag424 verify --mode lrp --url 'https://example.com/a?uid={uid}&ctr={ctr}&cmac={mac}' --json 'https://example.com/a?uid=…'")]
pub struct VerifyArgs {
    /// The URL the phone opened (quote it: it contains '&').
    pub url: String,
    #[command(flatten)]
    pub key: KeySource,
    #[command(flatten)]
    pub meta_key: MetaKeySource,
    /// The URL template the tag was encoded with. Placeholders: {xuid} static tag code,
    /// {uid} UID, {ctr} read counter, {picc} encrypted UID+counter, {enc} encrypted file data,
    /// {tt} TagTamper status, {macstart} where the MAC input starts (default: at {enc}, or
    /// empty), {mac} SDMMAC.
    #[arg(long = "url", value_name = "TEMPLATE", default_value = sun::DEFAULT_TEMPLATE)]
    pub template: String,
    /// The tag's mode: aes (factory) or lrp. Default: from the PICC data's length, else aes.
    /// A --mode that contradicts the PICC data is an error.
    #[arg(long, value_name = "aes|lrp", value_parser = parse_mode)]
    pub mode: Option<SdmMode>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    format: u32,
    #[serde(flatten)]
    verdict: &'a sun::Verified,
    /// Always false: offline, a replayed URL cannot be told from a fresh tap.
    replay_checked: bool,
}

/// The one line the human output says about replays.
const NO_REPLAY_CHECK: &str = "  note     checked offline: a replayed (copied) URL verifies here too; only tag424 serve, which stores counters, refuses replays";

pub fn run(args: VerifyArgs) -> Result<u8, CliError> {
    let template =
        Template::parse(&args.template).map_err(|e| CliError::input(format!("--url: {e}")))?;
    args.meta_key.refuse_removed()?;
    let parse =
        || sun::parse_url(&template, args.url.trim()).map_err(|e| CliError::input(e.to_string()));
    // Parsed here only for a keys.csv (its row is picked by the tag code): a key error
    // comes before a URL error otherwise.
    let code = || {
        parse()?
            .xuid
            .filter(|x| !x.is_empty())
            .ok_or_else(|| CliError {
                code: 2,
                message: "the URL has no tag code ({xuid}, e.g. x=…), so the keys.csv row cannot be picked".into(),
                help: Some("give the tag's own key: put its KEY cell in a file and pass that with --key-file".into()),
            })
    };
    let (file_read, from) = args.key.resolve_for(code)?.ok_or_else(|| CliError {
        code: 2,
        message: "no key: the SDM file read key (the KEY column of keys.csv) is needed".into(),
        help: Some(
            "pass --key-file FILE or set TAG424_KEY (in a terminal, tag424 asks for it)".into(),
        ),
    })?;
    let needs_meta = template.has(&tag424::sun::template::Part::Picc);
    let keys = SunKeys {
        file_read,
        meta_read: args.meta_key.resolve(needs_meta)?,
    };
    let scan = parse()?;
    let v = sun::verify_as(&scan, &keys, args.mode).map_err(|e| CliError::input(e.to_string()))?;
    if args.json {
        print_json(&Report {
            format: FORMAT_VERSION,
            verdict: &v,
            replay_checked: false,
        });
    } else {
        if v.genuine {
            say("GENUINE: the SDMMAC verifies with this key");
        } else {
            say(&format!(
                "NOT GENUINE: {}",
                v.reason.as_deref().unwrap_or("verification failed")
            ));
        }
        if let Some(x) = &v.xuid {
            say(&format!("  xuid     {x}"));
        }
        if let Some(u) = v.uid {
            say(&format!("  uid      {}", hex::encode_upper(u)));
        }
        if let Some(c) = v.read_ctr {
            say(&format!("  counter  {c} ({c:06X})"));
        }
        if let Some(d) = &v.file_data {
            say(&format!("  data     {}", hex::encode_upper(d)));
        }
        if let Some(t) = v.tamper {
            say(&format!("  tamper   {} ({})", t.word(), t.as_string()));
        }
        say(&format!("  mode     {}", v.mode));
        if let KeyFrom::KeysCsv { xuid, line } = &from {
            say(&format!(
                "  key      the keys.csv row of {xuid} (line {line})"
            ));
        }
        say(NO_REPLAY_CHECK);
    }
    Ok(if v.genuine { 0 } else { 1 })
}

fn parse_mode(s: &str) -> Result<SdmMode, String> {
    s.parse()
}
