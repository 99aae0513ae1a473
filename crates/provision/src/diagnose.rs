//! What `tag424 doctor` finds out about a reader, without printing: the time an exchange takes
//! (measured with a harmless, idempotent command), the tags per minute that time allows, the
//! ATR decoded (PC/SC part 3), and the known quirks of a reader model.
//!
//! Nothing here authenticates or writes: the measured exchange is the ISO SELECT of the NDEF
//! application, which changes nothing on the chip (no authentication is in progress to end).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::card::cmd::select::{select_by_name_apdu, NDEF_APP_DF_NAME};
use crate::transport::{Transport, TransportError};

/// APDU exchanges to provision a fresh tag with AES SDM (see `provision::encode`).
pub const AES_FRESH_EXCHANGES: u32 = 15;
/// APDU exchanges to provision a fresh tag in LRP mode (see `provision::lrp`).
pub const LRP_FRESH_EXCHANGES: u32 = 18;
/// Exchanges timed by default; the most a run may ask for.
pub const DEFAULT_SAMPLES: usize = 20;
/// The most exchanges a run may time (bounds the run: at most 1000 × the reader's delay).
pub const MAX_SAMPLES: usize = 1000;
/// What is timed, for reports.
pub const MEASURED_EXCHANGE: &str = "ISO SELECT of the NDEF application (changes nothing)";

/// Why the time per exchange could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The exchange did not complete.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The tag answered with another status than `9000` (not an NTAG 424 DNA, or no NDEF
    /// application).
    #[error("the tag refused ISO SELECT of the NDEF application (status {0})")]
    Refused(String),
    /// Asked for no samples or more than [`MAX_SAMPLES`].
    #[error("the number of exchanges to time must be 1 to {MAX_SAMPLES}, not {0}")]
    Samples(usize),
}

/// Times `samples` ISO SELECTs of the NDEF application on `t`, each from just before it is sent
/// to just after its answer came back.
pub fn measure(t: &mut dyn Transport, samples: usize) -> Result<Vec<Duration>, MeasureError> {
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(MeasureError::Samples(samples));
    }
    let apdu = select_by_name_apdu(&NDEF_APP_DF_NAME);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let answer = t.transmit(&apdu)?;
        out.push(started.elapsed());
        if !answer.ends_with(&[0x90, 0x00]) {
            let sw = answer
                .get(answer.len().saturating_sub(2)..)
                .map(hex::encode_upper)
                .unwrap_or_default();
            return Err(MeasureError::Refused(if sw.is_empty() {
                "none".into()
            } else {
                sw
            }));
        }
    }
    Ok(out)
}

/// The spread of measured exchange times, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// How many exchanges were timed.
    pub samples: usize,
    /// The median.
    pub median_ms: f64,
    /// The fastest.
    pub min_ms: f64,
    /// The slowest.
    pub max_ms: f64,
    /// The 10th percentile (nearest rank).
    pub p10_ms: f64,
    /// The 90th percentile (nearest rank).
    pub p90_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Timing {
    /// The summary of `samples`; `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Timing> {
        let mut s = samples.to_vec();
        s.sort();
        let n = s.len();
        let first = *s.first()?;
        let last = *s.last()?;
        // Nearest rank: the smallest value with at least p% of the samples at or below it.
        let rank = |p: usize| s[((p * n).div_ceil(100)).clamp(1, n) - 1];
        let median = if n % 2 == 1 {
            ms(s[n / 2])
        } else {
            (ms(s[n / 2 - 1]) + ms(s[n / 2])) / 2.0
        };
        Some(Timing {
            samples: n,
            median_ms: median,
            min_ms: ms(first),
            max_ms: ms(last),
            p10_ms: ms(rank(10)),
            p90_ms: ms(rank(90)),
        })
    }

    /// Tags per minute a reader of this median time allows for a tag of `exchanges` exchanges,
    /// from the exchanges' time alone (the operator's handling and the host's work add to it).
    pub fn tags_per_minute(&self, exchanges: u32) -> f64 {
        tags_per_minute(self.median_ms, exchanges)
    }
}

/// Tags per minute when each of a tag's `exchanges` exchanges takes `per_exchange_ms`.
pub fn tags_per_minute(per_exchange_ms: f64, exchanges: u32) -> f64 {
    let per_tag = per_exchange_ms * f64::from(exchanges);
    if per_tag <= 0.0 {
        return f64::INFINITY;
    }
    60_000.0 / per_tag
}

/// What an ATR says, decoded per PC/SC part 3 (contactless cards through a PC/SC reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtrInfo {
    /// The ATR, hex.
    pub hex: String,
    /// `storage` (a PC/SC part 3 storage-card ATR with RID A0 00 00 03 06), `iso14443-4` (an
    /// ISO 14443-4 card, its historical bytes from the ATS or ATQB), or `other`.
    pub kind: &'static str,
    /// For `storage`: the standard byte's meaning (e.g. "ISO 14443 A, part 3").
    pub standard: Option<String>,
    /// For `storage`: the card name bytes' meaning; for `iso14443-4`: what the historical bytes
    /// suggest, when they are the ones known here.
    pub card_name: Option<String>,
    /// The historical bytes, hex.
    pub historical_bytes: String,
}

/// The PC/SC registered application provider identifier of storage-card ATRs.
const PCSC_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x06];

/// The standard byte of a PC/SC part 3 storage-card ATR.
fn standard_name(b: u8) -> String {
    match b {
        0x00 => "no information given".into(),
        0x01 => "ISO 14443 A, part 1".into(),
        0x02 => "ISO 14443 A, part 2".into(),
        0x03 => "ISO 14443 A, part 3".into(),
        0x05 => "ISO 14443 B, part 1".into(),
        0x06 => "ISO 14443 B, part 2".into(),
        0x07 => "ISO 14443 B, part 3".into(),
        0x09 => "ISO 15693, part 1".into(),
        0x0A => "ISO 15693, part 2".into(),
        0x0B => "ISO 15693, part 3".into(),
        0x0C => "ISO 15693, part 4".into(),
        0x11 => "FeliCa".into(),
        b => format!("standard {b:02X} (not known here)"),
    }
}

/// The card name bytes of a PC/SC part 3 storage-card ATR: the NXP names that matter here.
fn card_name(n: [u8; 2]) -> String {
    match n {
        [0x00, 0x01] => "MIFARE Classic 1K".into(),
        [0x00, 0x02] => "MIFARE Classic 4K".into(),
        [0x00, 0x03] => "MIFARE Ultralight (also NTAG 21x)".into(),
        [0x00, 0x26] => "MIFARE Mini".into(),
        [0x00, 0x3A] => "MIFARE Ultralight C".into(),
        [a, b] => format!("card {a:02X} {b:02X} (not known here)"),
    }
}

/// Decodes an ATR as a PC/SC contactless reader builds it (PC/SC part 3, 3.1.3.2.3):
/// `3B 8n 80 01` then n historical bytes and a check byte. A storage card's historical bytes are
/// `80 4F 0C` RID(A0 00 00 03 06) standard(1) card name(2) RFU(4); an ISO 14443-4 card's are
/// its ATS historical bytes (type A) or ATQB application data (type B).
pub fn decode_atr(atr: &[u8]) -> AtrInfo {
    let hex = hex::encode_upper(atr);
    let other = |hist: &[u8]| AtrInfo {
        hex: hex.clone(),
        kind: "other",
        standard: None,
        card_name: None,
        historical_bytes: hex::encode_upper(hist),
    };
    let (&[0x3B, t0, 0x80, 0x01], rest) = (atr.get(..4).unwrap_or(&[]), atr.get(4..)) else {
        return other(&[]);
    };
    let n = usize::from(t0 & 0x0F);
    let Some(hist) = rest.and_then(|r| r.get(..n)) else {
        return other(&[]);
    };
    if t0 & 0xF0 != 0x80 {
        return other(hist);
    }
    if let [0x80, 0x4F, 0x0C, rid @ .., standard, a, b, _, _, _, _] = hist {
        if rid == PCSC_RID {
            return AtrInfo {
                hex,
                kind: "storage",
                standard: Some(standard_name(*standard)),
                card_name: Some(card_name([*a, *b])),
                historical_bytes: hex::encode_upper(hist),
            };
        }
    }
    AtrInfo {
        hex: hex.clone(),
        kind: "iso14443-4",
        standard: None,
        card_name: match hist {
            // The ATS historical byte of NTAG 424 DNA and of MIFARE DESFire EV1/EV2/EV3.
            [0x80] => Some("NXP MIFARE DESFire family or NTAG 424 DNA (GetVersion tells)".into()),
            _ => None,
        },
        historical_bytes: hex::encode_upper(hist),
    }
}

/// A reader model's quirks as reported in public sources (the table of docs/readers.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReaderQuirk {
    /// The model.
    pub reader: &'static str,
    /// What was reported.
    pub quirk: &'static str,
    /// Where it was reported.
    pub source: &'static str,
    /// Lower-case parts of a PC/SC reader name that identify the model (any one matches).
    #[serde(skip)]
    pub matches: &'static [&'static str],
}

/// The known quirks, one entry per reported fact, in the order of docs/readers.md.
pub const QUIRKS: &[ReaderQuirk] = &[
    ReaderQuirk {
        reader: "ACS ACR122U",
        quirk: "escape commands (firmware, LED, buzzer) need the driver's escape setting enabled (Windows: the EscapeCommandEnable registry value); tag424 sends none",
        source: "drusifer/ntag424_sdm_provisioner (project history)",
        matches: &["acr122"],
    },
    ReaderQuirk {
        reader: "ACS ACR122U",
        quirk: "reports a 64-byte frame size (FSDI) and chains longer frames",
        source: "Proxmark/proxmark3 issue #70",
        matches: &["acr122"],
    },
    ReaderQuirk {
        reader: "ACS ACR122U",
        quirk: "NXP's TagXplorer refused it for one user",
        source: "NXP community thread \"NTAG424 programming tool recommendations with TagXplorer\"",
        matches: &["acr122"],
    },
    ReaderQuirk {
        reader: "ACS ACR1281",
        quirk: "extended APDUs over 255 bytes were not passed (tag424 sends short APDUs only)",
        source: "acshk/acsccid issue #42",
        matches: &["acr1281"],
    },
    ReaderQuirk {
        reader: "ACS ACR1252U",
        quirk: "GoToTags tells users to update its firmware",
        source: "a r/NFC thread",
        matches: &["acr1252"],
    },
    ReaderQuirk {
        reader: "Identiv uTrust 3700 F",
        quirk: "used by practitioners for NTAG 424 DNA; nfcpy does not support it (tag424 uses PC/SC)",
        source: "nfcpy issue #183",
        matches: &["3700 f", "3700f"],
    },
    ReaderQuirk {
        reader: "Virtual PCD (vsmartcard vpcd)",
        quirk: "a tag leaving mid-exchange comes back as an answer without a status word (tag424 treats it as a tear-off)",
        source: "this project's tests (tests/pcsc_vpcd.rs)",
        matches: &["virtual pcd"],
    },
];

/// The known quirks of the reader of this PC/SC name.
pub fn quirks_of(reader_name: &str) -> Vec<ReaderQuirk> {
    let name = reader_name.to_lowercase();
    QUIRKS
        .iter()
        .filter(|q| q.matches.iter().any(|m| name.contains(m)))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tag424_sim::{ChipState, SimChip, SimTransport};

    #[test]
    fn timing_summarises_samples() {
        let d = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(Timing::from_samples(&[]), None);
        let t = Timing::from_samples(&d(&[30, 10, 20])).unwrap();
        assert_eq!(
            (t.samples, t.median_ms, t.min_ms, t.max_ms),
            (3, 20.0, 10.0, 30.0)
        );
        let t = Timing::from_samples(&d(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).unwrap();
        assert_eq!((t.median_ms, t.p10_ms, t.p90_ms), (5.5, 1.0, 9.0));
        // 20 ms per exchange: 15 exchanges are 300 ms, 200 tags a minute; 18 are 360 ms.
        let t = Timing::from_samples(&d(&[20])).unwrap();
        assert!((t.tags_per_minute(AES_FRESH_EXCHANGES) - 200.0).abs() < 1e-9);
        assert!((t.tags_per_minute(LRP_FRESH_EXCHANGES) - 166.666).abs() < 0.01);
    }

    #[test]
    fn measure_times_harmless_selects() {
        let chip = SimChip::new(ChipState::random_factory());
        let before = chip.state.clone();
        let mut t = SimTransport::new(chip).with_latency(Duration::from_millis(2));
        let samples = measure(&mut t, 5).unwrap();
        assert_eq!(samples.len(), 5);
        // A sleep lasts at least its duration: a lower bound, not a benchmark.
        assert!(samples.iter().all(|s| *s >= Duration::from_millis(2)));
        assert_eq!(t.exchanges(), 5);
        assert_eq!(
            t.chip.state, before,
            "the measured exchange changes nothing"
        );
        assert!(matches!(measure(&mut t, 0), Err(MeasureError::Samples(0))));
        assert!(matches!(
            measure(&mut t, MAX_SAMPLES + 1),
            Err(MeasureError::Samples(_))
        ));
    }

    #[test]
    fn atrs_decode() {
        // NTAG 424 DNA through a PC/SC reader (the simulator's vpcd ATR).
        let a = decode_atr(&tag424_sim::vpcd::ATR);
        assert_eq!(a.kind, "iso14443-4");
        assert_eq!(a.historical_bytes, "80");
        assert!(a.card_name.unwrap().contains("NTAG 424 DNA"));
        // A MIFARE Classic 1K on an ACS reader (PC/SC part 3 storage card).
        let classic = [
            0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x6A,
        ];
        let a = decode_atr(&classic);
        assert_eq!(a.kind, "storage");
        assert_eq!(a.standard.as_deref(), Some("ISO 14443 A, part 3"));
        assert_eq!(a.card_name.as_deref(), Some("MIFARE Classic 1K"));
        let mut ul = classic;
        ul[14] = 0x03;
        assert!(decode_atr(&ul).card_name.unwrap().contains("Ultralight"));
        // A contact card's ATR and garbage are `other`, never a panic.
        assert_eq!(decode_atr(&[0x3B, 0x02, 0x14, 0x50]).kind, "other");
        assert_eq!(decode_atr(&[]).kind, "other");
        assert_eq!(decode_atr(&[0x3B, 0x8F, 0x80, 0x01, 0x80]).kind, "other");
    }

    #[test]
    fn quirks_match_reader_names_and_are_in_the_readers_doc() {
        let names = |n: &str| -> Vec<&str> { quirks_of(n).iter().map(|q| q.reader).collect() };
        assert_eq!(names("ACS ACR122U PICC Interface 00 00").len(), 3);
        assert_eq!(names("ACS ACR1252 1S CL Reader PICC 0"), ["ACS ACR1252U"]);
        assert_eq!(
            names("Identiv uTrust 3700 F CL Reader 0"),
            ["Identiv uTrust 3700 F"]
        );
        assert!(names("HID Global OMNIKEY 5422 CL 0").is_empty());
        // docs/readers.md lists every entry with its source (the docs are the table's twin).
        let doc = include_str!("../../../docs/readers.md");
        for q in QUIRKS {
            let row = format!("| {} | {} | {} |", q.reader, q.quirk, q.source);
            assert!(doc.contains(&row), "docs/readers.md lacks the row\n{row}");
        }
    }
}
