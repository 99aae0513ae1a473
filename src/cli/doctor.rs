//! `tag424 doctor`: what each reader is, what tag is on it, and how fast it exchanges APDUs.
//! Reads only: no authentication, nothing written to a tag or a file.

use std::path::PathBuf;

use serde::Serialize;
use tag424::card::cmd::get_version::VersionPart;
use tag424::card::Card;
use tag424::diagnose::{
    decode_atr, measure, quirks_of, AtrInfo, ReaderQuirk, Timing, AES_FRESH_EXCHANGES,
    DEFAULT_SAMPLES, LRP_FRESH_EXCHANGES, MEASURED_EXCHANGE,
};
use tag424::sim::dir::{DirTransport, SimDir};
use tag424::transport::pcsc::{list_readers, PcscError, PcscReader, ReaderAttributes};
use tag424::transport::Transport;

use super::reader::{pcsc_error, ReaderSpec};
use super::{print_json, say, CliError, FORMAT_VERSION};

/// Check readers before the first tag: name, vendor and firmware, the tag's ATR and what it
/// is, the time per APDU exchange and the tags per minute it allows, known quirks.
///
/// Reads only: no authentication, nothing is written to a tag or a file. With a tag on the
/// reader, it is asked GetVersion and timed with ISO SELECTs of the NDEF application (which
/// change nothing). Without --reader (or TAG424_READER), every PC/SC reader is checked. Exit status 4 when the
/// PC/SC service is not running or the reader is not found.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 doctor                                     # every PC/SC reader (or the one TAG424_READER names)
  tag424 doctor --reader PICC --json
  tag424 doctor --reader 'sim:tags?latency=15ms'    # simulated tags with a real reader's delay")]
pub struct DoctorArgs {
    /// The reader to check: a PC/SC reader's name, number (from 0) or unique part of its name,
    /// `all` (every PC/SC reader, the default), or `sim:DIR` (the first simulated tag in DIR;
    /// `sim:DIR?latency=15ms` adds a delay to every exchange).
    #[arg(long, env = "TAG424_READER", value_name = "READER")]
    pub reader: Option<String>,
    /// How many exchanges to time (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLES as u16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub exchanges: u16,
    /// One JSON object (shape in docs/readers.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct TagReport {
    product: &'static str,
    ntag424_dna: bool,
    uid: String,
    hardware: VersionPart,
    software: VersionPart,
}

#[derive(Debug, Serialize)]
struct TimingReport {
    exchange: &'static str,
    #[serde(flatten)]
    timing: Timing,
}

#[derive(Debug, Serialize)]
struct Rates {
    aes: f64,
    lrp: f64,
}

#[derive(Debug, Serialize)]
struct ReaderReport {
    name: String,
    number: Option<usize>,
    kind: &'static str,
    #[serde(flatten)]
    attributes: ReaderAttributes,
    protocol: Option<&'static str>,
    atr: Option<AtrInfo>,
    tag_present: bool,
    tag: Option<TagReport>,
    timing: Option<TimingReport>,
    tags_per_minute: Option<Rates>,
    problems: Vec<String>,
    quirks: Vec<ReaderQuirk>,
}

impl ReaderReport {
    fn new(name: String, number: Option<usize>, kind: &'static str) -> Self {
        ReaderReport {
            quirks: quirks_of(&name),
            name,
            number,
            kind,
            attributes: ReaderAttributes::default(),
            protocol: None,
            atr: None,
            tag_present: false,
            tag: None,
            timing: None,
            tags_per_minute: None,
            problems: Vec::new(),
        }
    }

    /// GetVersion, then the timed exchanges, on the tag in the field.
    fn probe(&mut self, t: &mut dyn Transport, samples: usize) {
        self.tag_present = true;
        let mut card = Card::new(&mut *t);
        match card
            .select_ndef_application()
            .and_then(|()| card.get_version())
        {
            Ok(v) => {
                self.tag = Some(TagReport {
                    product: v.product(),
                    ntag424_dna: v.is_ntag424_dna(),
                    uid: hex::encode_upper(v.uid),
                    hardware: v.hardware,
                    software: v.software,
                })
            }
            Err(e) => self.problems.push(format!("GetVersion: {e}")),
        }
        drop(card);
        match measure(t, samples) {
            Ok(s) => {
                if let Some(timing) = Timing::from_samples(&s) {
                    self.tags_per_minute = Some(Rates {
                        aes: timing.tags_per_minute(AES_FRESH_EXCHANGES),
                        lrp: timing.tags_per_minute(LRP_FRESH_EXCHANGES),
                    });
                    self.timing = Some(TimingReport {
                        exchange: MEASURED_EXCHANGE,
                        timing,
                    });
                }
            }
            Err(e) => self
                .problems
                .push(format!("time per exchange not measured: {e}")),
        }
    }
}

/// A simulated reader: the first tag of DIR (none: no tag present), with the reader's latency.
fn sim_report(
    dir: Option<PathBuf>,
    options: tag424::sim::dir::SimReaderOptions,
    samples: usize,
) -> Result<ReaderReport, CliError> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("simulated-tags"));
    let d = SimDir::open_existing(&dir).map_err(|e| CliError::input(e.to_string()))?;
    let mut name = super::reader::AnyReader::describe_sim(&dir);
    if !options.latency.is_zero() {
        name.push_str(&format!(
            " (latency {} per exchange)",
            humantime::format_duration(options.latency)
        ));
    }
    let mut r = ReaderReport::new(name, None, "simulated");
    let first = d
        .list()
        .map_err(|e| CliError::input(e.to_string()))?
        .into_iter()
        .next();
    if let Some(state) = first {
        let mut t = DirTransport::new(d, state).with_latency(options.latency);
        r.probe(&mut t, samples);
    }
    Ok(r)
}

/// A PC/SC reader: its attributes, and the tag on it now (never waits for one).
fn pcsc_report(reader: &PcscReader, samples: usize) -> ReaderReport {
    let mut r = ReaderReport::new(reader.name(), Some(reader.number()), "pcsc");
    let tag = match reader.connect_present() {
        Ok(t) => t,
        Err(e) => {
            r.tag_present = matches!(e, PcscError::TagInUse(_));
            r.problems.push(e.to_string());
            None
        }
    };
    r.attributes = reader.attributes(tag.as_ref());
    if let Some(mut tag) = tag {
        match tag.status() {
            Ok(s) => {
                r.protocol = s.protocol;
                r.atr = Some(decode_atr(&s.atr));
            }
            Err(e) => r.problems.push(format!("tag status: {e}")),
        }
        r.probe(&mut tag, samples);
        tag.release();
    }
    r
}

pub fn run(a: DoctorArgs) -> Result<u8, CliError> {
    let samples = usize::from(a.exchanges);
    let wanted = a
        .reader
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("all"));
    let reports = match wanted.map(ReaderSpec::parse).transpose()? {
        Some(ReaderSpec::Sim { dir, options }) => vec![sim_report(dir, options, samples)?],
        Some(ReaderSpec::Pcsc(name)) => {
            let reader = PcscReader::open(&name).map_err(pcsc_error)?;
            vec![pcsc_report(&reader, samples)]
        }
        None => {
            let list = list_readers().map_err(pcsc_error)?;
            if list.is_empty() {
                return Err(pcsc_error(PcscError::NoReaders));
            }
            let mut out = Vec::new();
            for info in list {
                match PcscReader::open(&info.name) {
                    Ok(reader) => out.push(pcsc_report(&reader, samples)),
                    Err(e) => {
                        let mut r = ReaderReport::new(info.name, Some(info.index), "pcsc");
                        r.problems.push(e.to_string());
                        out.push(r);
                    }
                }
            }
            out
        }
    };
    if a.json {
        print_json(&serde_json::json!({"format": FORMAT_VERSION, "readers": reports}));
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    Ok(0)
}

fn given(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("not given")
}

fn print_report(r: &ReaderReport) {
    say(&match r.number {
        Some(n) => tag424::transport::pcsc::label(n, &r.name),
        None => r.name.clone(),
    });
    let line = |k: &str, v: &str| say(&format!("  {k:<16}{v}"));
    if r.kind == "pcsc" {
        line("vendor", given(&r.attributes.vendor));
        line("model", given(&r.attributes.model));
        line("firmware", given(&r.attributes.firmware));
        if let Some(s) = &r.attributes.serial {
            line("serial", s);
        }
        if r.tag_present {
            line("protocol", r.protocol.unwrap_or("not given"));
        }
        if let Some(atr) = &r.atr {
            line("ATR", &atr_text(atr));
        }
    } else {
        line(
            "vendor",
            "none (simulated reader: no PC/SC attributes, no ATR)",
        );
    }
    match (&r.tag, r.tag_present) {
        (Some(t), _) => line(
            "tag",
            &format!(
                "{}, UID {}{}",
                t.product,
                t.uid,
                if t.ntag424_dna {
                    ""
                } else {
                    " (not an NTAG 424 DNA: tag424 will refuse it)"
                }
            ),
        ),
        (None, true) => line("tag", "present, but GetVersion failed (below)"),
        (None, false) => line(
            "tag",
            "none on the reader (put one on to time the exchanges)",
        ),
    }
    if let Some(t) = &r.timing {
        line(
            "time/exchange",
            &format!(
                "median {:.1} ms (p10 {:.1}, p90 {:.1}, min {:.1}, max {:.1}) over {}",
                t.timing.median_ms,
                t.timing.p10_ms,
                t.timing.p90_ms,
                t.timing.min_ms,
                t.timing.max_ms,
                super::count(t.timing.samples, "exchange", "exchanges"),
            ),
        );
        line("timed exchange", t.exchange);
    }
    if let Some(rate) = &r.tags_per_minute {
        line(
            "tags per minute",
            &format!(
                "at most {:.0} AES ({AES_FRESH_EXCHANGES} exchanges a fresh tag), {:.0} LRP ({LRP_FRESH_EXCHANGES}); the operator's handling adds to it",
                rate.aes, rate.lrp
            ),
        );
    }
    for p in &r.problems {
        line("problem", p);
    }
    if r.quirks.is_empty() {
        line("known quirks", "none listed in docs/readers.md");
    } else {
        say("  known quirks");
        for q in &r.quirks {
            say(&format!("    - {} (source: {})", q.quirk, q.source));
        }
    }
}

fn atr_text(a: &AtrInfo) -> String {
    let what = match a.kind {
        "storage" => format!(
            "PC/SC storage card: {}, {}",
            a.standard.as_deref().unwrap_or("?"),
            a.card_name.as_deref().unwrap_or("?")
        ),
        "iso14443-4" => format!(
            "ISO 14443-4 card, historical bytes {}{}",
            a.historical_bytes,
            a.card_name
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        _ => "not a PC/SC contactless ATR".into(),
    };
    format!("{}  {what}", a.hex)
}
