//! `--reader`: a simulated reader (`sim`, `sim:DIR`, options after `?` such as
//! `sim:DIR?latency=15ms`) or a PC/SC reader by name, number (from 0, as `tag424 readers` lists it) or unique part of its name; and
//! `tag424 readers`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tag424::sim::dir::{SimDir, SimReader, SimReaderOptions};
use tag424::transport::pcsc::{label, list_readers, PcscError, PcscReader};
use tag424::transport::{TagSource, Transport};

use super::{print_json, say, CliError, FORMAT_VERSION};

/// Where tags come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSpec {
    /// Simulated tags in a directory (default: `simulated-tags` in the output directory).
    Sim {
        dir: Option<PathBuf>,
        options: SimReaderOptions,
    },
    /// A PC/SC reader.
    Pcsc(String),
}

impl ReaderSpec {
    /// `sim`, `sim:DIR`, either followed by `?latency=15ms`; anything else names a PC/SC reader.
    pub fn parse(s: &str) -> Result<ReaderSpec, CliError> {
        let (base, query) = match s.split_once('?') {
            Some((b, q)) if b == "sim" || b.starts_with("sim:") => (b, Some(q)),
            _ => (s, None),
        };
        let dir = match base.split_once(':') {
            _ if base == "sim" => None,
            Some(("sim", dir)) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => return Ok(ReaderSpec::Pcsc(s.to_string())),
        };
        let options = SimReaderOptions::parse(query.unwrap_or("")).map_err(|e| CliError {
            code: 2,
            message: format!("--reader {s}: {e}"),
            help: Some("a simulated reader is `sim:DIR`, optionally with options such as `sim:DIR?latency=15ms` or `sim:DIR?drop=0.1&remove=0.05&seed=7` (docs/simulator.md)".into()),
        })?;
        Ok(ReaderSpec::Sim { dir, options })
    }

    pub fn is_sim(&self) -> bool {
        matches!(self, ReaderSpec::Sim { .. })
    }
}

/// The reader of an encoding command: `--reader` or `TAG424_READER`, never a default (a
/// forgotten flag must not "encode" simulated tags with the platform's codes).
pub fn required(reader: Option<&str>) -> Result<ReaderSpec, CliError> {
    if let Some(r) = reader.filter(|r| !r.trim().is_empty()) {
        return ReaderSpec::parse(r);
    }
    let found = match list_readers() {
        Ok(l) if l.is_empty() => "no PC/SC reader is plugged in".to_string(),
        Ok(l) => format!(
            "PC/SC readers found: {}",
            l.iter()
                .map(|r| label(r.index, &r.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("no PC/SC reader listed ({e})"),
    };
    Err(CliError {
        code: 2,
        message: format!("no reader given; {found}"),
        help: Some("pass --reader NAME (a reader's name, number or unique part of its name; `tag424 readers` lists them) or set TAG424_READER; `--reader sim:DIR` is the simulated reader (test tags kept in DIR)".into()),
    })
}

/// The readers of an encoding command: each `--reader` (or `TAG424_READER`), or `all` for
/// every PC/SC reader plugged in. Never a default; no reader twice; simulated and PC/SC
/// readers are not mixed in one batch.
pub fn required_all(readers: &[String]) -> Result<Vec<ReaderSpec>, CliError> {
    let readers: Vec<&String> = readers.iter().filter(|r| !r.trim().is_empty()).collect();
    if readers.is_empty() {
        return required(None).map(|s| vec![s]);
    }
    let mut specs = Vec::new();
    for r in &readers {
        if r.trim().eq_ignore_ascii_case("all") {
            let list = list_readers().map_err(pcsc_error)?;
            if list.is_empty() {
                return Err(pcsc_error(PcscError::NoReaders));
            }
            specs.extend(list.into_iter().map(|r| ReaderSpec::Pcsc(r.name)));
        } else {
            specs.push(ReaderSpec::parse(r)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &specs {
        let key = match s {
            ReaderSpec::Sim { dir, .. } => format!(
                "sim:{}",
                dir.as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            ),
            ReaderSpec::Pcsc(n) => n.clone(),
        };
        if !seen.insert(key.clone()) {
            return Err(CliError {
                code: 2,
                message: format!("--reader {key} is given twice"),
                help: Some("give each reader once (`--reader all` already means every PC/SC reader); simulated readers need a folder each: --reader sim:A --reader sim:B".into()),
            });
        }
    }
    if specs.iter().any(|s| s.is_sim()) && !specs.iter().all(|s| s.is_sim()) {
        return Err(CliError {
            code: 2,
            message: "simulated and PC/SC readers in one batch".into(),
            help: Some(
                "a batch is simulated (sim:DIR readers only) or real (PC/SC readers only)".into(),
            ),
        });
    }
    Ok(specs)
}

/// An open reader of either kind.
pub enum AnyReader {
    Sim(SimReader),
    Pcsc(PcscReader),
}

pub fn pcsc_error(e: PcscError) -> CliError {
    if let PcscError::Cancelled = e {
        return CliError {
            code: 130,
            message: "stopped by Ctrl-C; nothing was changed".into(),
            help: None,
        };
    }
    let help = match &e {
        PcscError::NoService => Some("start the PC/SC service: `sudo systemctl start pcscd` (Linux) — see docs/readers.md".to_string()),
        PcscError::NoReaders => Some("plug in the reader; `tag424 readers` lists what the PC/SC service sees".to_string()),
        PcscError::NoSuchReader { .. } | PcscError::Ambiguous { .. } => Some("pass --reader with the exact name or its number from `tag424 readers`, or set TAG424_READER".to_string()),
        PcscError::TagInUse(_) => Some("close the other program using the reader (a browser extension, a smart card manager) and present the tag again".to_string()),
        PcscError::ReaderGone(_) => Some("plug the reader back in and re-run the same command: nothing is lost".to_string()),
        _ => None,
    };
    // The option that chose the reader is named (and, set by a profile, the profile's key).
    let message = match &e {
        PcscError::NoSuchReader { .. } | PcscError::Ambiguous { .. } => format!("--reader: {e}"),
        _ => e.to_string(),
    };
    CliError {
        code: 4,
        message,
        help,
    }
}

impl AnyReader {
    /// Opens the reader; `default_sim_dir` is used for a plain `sim`. Ctrl-C sets `stop` and
    /// wakes a PC/SC wait. `read_only`: a simulated directory must exist and no tag is made.
    pub fn open(
        spec: &ReaderSpec,
        default_sim_dir: &Path,
        stop: &Arc<AtomicBool>,
        wait_for_reader: bool,
        read_only: bool,
    ) -> Result<AnyReader, CliError> {
        match spec {
            ReaderSpec::Sim { dir, options } => {
                let dir = dir.as_deref().unwrap_or(default_sim_dir);
                let d = if read_only {
                    SimDir::open_existing(dir)
                } else {
                    SimDir::open(dir)
                }
                .map_err(|e| CliError::input(e.to_string()))?;
                install_ctrlc(stop.clone(), None);
                Ok(AnyReader::Sim(
                    SimReader::new(d, !read_only)
                        .map_err(|e| CliError::input(e.to_string()))?
                        .with_options(*options),
                ))
            }
            ReaderSpec::Pcsc(name) if wait_for_reader => {
                let flag = stop.clone();
                let r = PcscReader::open_waiting(name, &|c| install_ctrlc(flag.clone(), Some(c)), &mut || {
                    eprintln!("Waiting for a reader matching {name:?} to be plugged in (Ctrl-C to stop)…")
                })
                .map_err(pcsc_error)?;
                Ok(AnyReader::Pcsc(r))
            }
            ReaderSpec::Pcsc(name) => {
                let r = PcscReader::open(name).map_err(pcsc_error)?;
                install_ctrlc(stop.clone(), Some(r.canceller()));
                Ok(AnyReader::Pcsc(r))
            }
        }
    }

    /// How a simulated reader of the folder `dir` is named.
    pub fn describe_sim(dir: &std::path::Path) -> String {
        format!("simulated reader {}", dir.display())
    }

    /// The reader's number ([`tag424::transport::reader_number`]); `place`: its place among
    /// the batch's readers.
    pub fn number(&self, place: usize) -> usize {
        tag424::transport::reader_number(self, place)
    }

    pub fn describe(&self) -> String {
        match self {
            AnyReader::Sim(r) => AnyReader::describe_sim(r.dir().path()),
            AnyReader::Pcsc(r) => r.name(),
        }
    }
}

/// The PC/SC waits Ctrl-C wakes: every reader of the run.
static CANCELLERS: std::sync::Mutex<Vec<tag424::transport::pcsc::Canceller>> =
    std::sync::Mutex::new(Vec::new());
static HANDLER: std::sync::Once = std::sync::Once::new();

/// One Ctrl-C handler for the process (the ctrlc crate allows one): sets `stop` and wakes
/// every registered reader's wait, so each reader finishes its current tag and stops.
fn install_ctrlc(stop: Arc<AtomicBool>, canceller: Option<tag424::transport::pcsc::Canceller>) {
    if let Some(c) = canceller {
        CANCELLERS.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(move || {
            // Every Ctrl-C (any number, however quick) ends the same way: the current tag's
            // exchange finishes on every reader (well under a second), then the summary and the
            // re-run hint.
            if !stop.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\nCtrl-C: stopping after the current tag on every reader; no key is lost."
                );
            }
            for c in CANCELLERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                c.cancel();
            }
        });
    });
}

impl TagSource for AnyReader {
    type Tag = Box<dyn Transport + Send>;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(match self {
            AnyReader::Sim(r) => TagSource::next_tag(r)?.map(|t| Box::new(t) as Self::Tag),
            AnyReader::Pcsc(r) => TagSource::next_tag(r)?.map(|t| Box::new(t) as Self::Tag),
        })
    }
    fn remove(&mut self, tag: Self::Tag) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        drop(tag);
        match self {
            AnyReader::Sim(_) => Ok(()),
            AnyReader::Pcsc(r) => match r.wait_for_removal() {
                Ok(()) | Err(PcscError::Cancelled) => Ok(()),
                Err(e) => Err(Box::new(e)),
            },
        }
    }
    fn waker(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        match self {
            AnyReader::Sim(r) => r.waker(),
            AnyReader::Pcsc(r) => r.waker(),
        }
    }
    fn skip_finished(&mut self, finished: &dyn Fn(&[u8; 7]) -> bool) {
        match self {
            AnyReader::Sim(r) => r.skip_finished(finished),
            AnyReader::Pcsc(r) => r.skip_finished(finished),
        }
    }
    fn number(&self) -> Option<usize> {
        match self {
            AnyReader::Sim(r) => TagSource::number(r),
            AnyReader::Pcsc(r) => Some(r.number()),
        }
    }
}

/// List the PC/SC readers and whether a tag is on each.
///
/// Exit status 4 when the PC/SC service is not running.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 readers           # [0] ACS ACR1252 1S CL Reader PICC 0   (tag present)
  tag424 readers --json")]
pub struct ReadersArgs {
    /// One JSON object (index, name, tag present) instead of the list.
    #[arg(long)]
    pub json: bool,
}

pub fn readers(args: ReadersArgs) -> Result<u8, CliError> {
    let list = list_readers().map_err(pcsc_error)?;
    if args.json {
        print_json(&serde_json::json!({"format": FORMAT_VERSION, "readers": list}));
    } else if list.is_empty() {
        say("No readers. Plug one in (ACR122U, ACR1252U, uTrust 3700F, …); see docs/readers.md.");
    } else {
        for r in &list {
            say(&format!(
                "{}{}",
                label(r.index, &r.name),
                if r.card_present {
                    "  (tag present)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sim_reader_specs() {
        let sim = |dir: Option<&str>, ms: u64| ReaderSpec::Sim {
            dir: dir.map(PathBuf::from),
            options: SimReaderOptions {
                latency: Duration::from_millis(ms),
                ..SimReaderOptions::default()
            },
        };
        assert_eq!(ReaderSpec::parse("sim").unwrap(), sim(None, 0));
        assert_eq!(ReaderSpec::parse("sim:tags").unwrap(), sim(Some("tags"), 0));
        assert_eq!(
            ReaderSpec::parse("sim:tags?latency=15ms").unwrap(),
            sim(Some("tags"), 15)
        );
        assert_eq!(
            ReaderSpec::parse("sim?latency=1s").unwrap(),
            sim(None, 1000)
        );
        assert_eq!(
            ReaderSpec::parse("ACS ACR1252 1S CL Reader PICC 0").unwrap(),
            ReaderSpec::Pcsc("ACS ACR1252 1S CL Reader PICC 0".into())
        );
        // A PC/SC reader's name may hold a `?`; only `sim` takes options.
        assert_eq!(
            ReaderSpec::parse("Reader?x").unwrap(),
            ReaderSpec::Pcsc("Reader?x".into())
        );
        let flaky = ReaderSpec::parse("sim:tags?drop=0.1&remove=0.05&seed=7").unwrap();
        let ReaderSpec::Sim { options, .. } = flaky else {
            panic!("{flaky:?}")
        };
        assert_eq!(
            (
                options.flaky.drop_ppm,
                options.flaky.remove_ppm,
                options.seed
            ),
            (100_000, 50_000, Some(7))
        );
        for bad in [
            "sim:tags?latency=fast",
            "sim?speed=1",
            "sim:t?latency=1h",
            "sim:t?drop=0.9",
            "sim:t?drop=-0.1",
            "sim:t?remove=often",
            "sim:t?seed=x",
        ] {
            let e = ReaderSpec::parse(bad).unwrap_err();
            assert_eq!(e.code, 2, "{bad}");
            assert!(e.message.contains("--reader"), "{}", e.message);
        }
    }
}
