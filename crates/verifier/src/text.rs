//! The one rule for the catalog's free text: every text field that comes from a file, the
//! configuration or the management API (folder, group and batch names, CUID, TAGNAME, Default
//! and Rule Group responses, extended data values) is bounded and holds no control character
//! (`char::is_control`: C0, DEL, C1 — ESC among them, which would otherwise reach terminals
//! through `tag424 scans` and logs).
//!
//! Limits, in characters: the platform documents none for these fields (platform.md: tokens
//! ≤ 32 and CORS origins ≤ 100 are its only text limits), so they are ours, written down in
//! docs/verifier.md: CUID 128 (also the query's `c`), TAGNAME 128, names 128, responses 256.

/// Longest CUID (custom id), in characters; also the longest `c=` of a query.
pub const MAX_CUID: usize = 128;
/// Longest TAGNAME, in characters.
pub const MAX_TAGNAME: usize = 128;
/// Longest folder, tag group or batch name, in characters.
pub const MAX_NAME: usize = 128;
/// Longest response text (Default Response, Rule Group response, extended data value), in
/// characters, before subtags are replaced.
pub const MAX_RESPONSE: usize = 256;

/// Whether `s` is 1 to `max` characters without a control character.
pub fn is_valid(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// [`is_valid`], or an error naming the field, its limit and the rule (the value itself is
/// shown only by its length: it may be megabytes of anything).
pub fn check(field: &str, s: &str, max: usize) -> Result<(), String> {
    if is_valid(s, max) {
        return Ok(());
    }
    let n = s.chars().count();
    let why = if s.is_empty() {
        "is empty".to_string()
    } else if n > max {
        format!("has {n} characters")
    } else {
        "holds a control character".to_string()
    };
    Err(format!(
        "{field} {why}: use 1 to {max} characters, no control characters (tab, newline, escape…)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_without_control_characters() {
        assert!(is_valid("Bottle 1 – ünïcode ✓", 128));
        assert!(is_valid(&"é".repeat(128), 128));
        assert!(!is_valid(&"é".repeat(129), 128));
        assert!(!is_valid("", 128));
        for c in ['\u{1b}', '\n', '\t', '\u{7f}', '\u{9b}'] {
            assert!(!is_valid(&format!("a{c}b"), 128), "{c:?}");
        }
        let e = check("TAGNAME", &"x".repeat(3_000_000), MAX_TAGNAME).unwrap_err();
        assert!(e.contains("3000000 characters") && e.len() < 200, "{e}");
    }
}
