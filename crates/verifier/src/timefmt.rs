//! UTC timestamps: `YYYY-MM-DDTHH:MM:SS.mmmZ` for the scan log, `{dtcreated}` and the
//! rate-limit reset header, and parsing of the date-time rule's bounds.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// The last millisecond RFC 3339 has four year digits for (9999-12-31T23:59:59.999Z).
const MAX_MS: u64 = 253_402_300_800_000 - 1;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch (calendar by `humantime`);
/// a time past the year 9999 is shown as its last millisecond.
pub fn utc(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.min(MAX_MS));
    let mut s = String::with_capacity(24);
    // Within MAX_MS the timestamp always formats (humantime refuses only years past 9999).
    let _ = write!(s, "{}", humantime::format_rfc3339_millis(t));
    s
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]Z` (UTC) into milliseconds since the epoch
/// (calendar by `humantime`: a day the month does not have, or a year before 1970, is `None`).
pub fn parse_utc(s: &str) -> Option<u64> {
    // Each form as the one humantime reads strictly, YYYY-MM-DDTHH:MM:SSZ (which checks
    // every digit and separator).
    let full = match s.len() {
        10 => format!("{s}T00:00:00Z"),
        17 if s.ends_with('Z') => format!("{}:00Z", s.get(..16)?),
        20 => s.to_string(),
        _ => return None,
    };
    // humantime reads a leap second (60) as 59: a bound is an ordinary second.
    if full.get(17..19) == Some("60") {
        return None;
    }
    let t = humantime::parse_rfc3339(&full).ok()?;
    u64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_both_ways() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(parse_utc("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_utc("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_utc("2000-02-29T00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(parse_utc("9999-12-31T23:59:59Z"), Some(MAX_MS - 999));
        assert_eq!(utc(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(utc(u64::MAX), "9999-12-31T23:59:59.999Z");
        // Every day of 1999..=2001 both ways, against days counted from the epoch.
        let mut ms = parse_utc("1999-01-01").unwrap();
        for _ in 0..3 * 366 {
            let text = utc(ms);
            assert_eq!(parse_utc(&format!("{}Z", &text[..19])), Some(ms), "{text}");
            assert_eq!(parse_utc(&text[..10]), Some(ms), "{text}");
            ms += 86_400_000;
        }
        for bad in [
            "2023-02-29",
            "2023-04-31",
            "2023-1-011",
            "1969-12-31",
            "2000-02-29T23:59:60Z",
            "2000-02-29T00:00:00.5Z",
            "2000-13-01",
            "2000-02-29T25:00Z",
            "yesterday",
            "2000-02-29T00:00",
            "",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
