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

/// What is wrong with a text field ([`TextError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextProblem {
    /// It is empty.
    Empty,
    /// It has more characters than allowed (how many it has).
    TooLong(usize),
    /// It holds a control character.
    Control,
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextProblem::Empty => f.write_str("is empty"),
            TextProblem::TooLong(n) => write!(f, "has {n} characters"),
            TextProblem::Control => f.write_str("holds a control character"),
        }
    }
}

/// A text field that breaks the rule: which field, what is wrong and its limit (the value
/// itself is kept out: it may be megabytes of anything; [`TextProblem::TooLong`] has its
/// length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} {problem}: use 1 to {max} characters, no control characters (tab, newline, escape…)"
)]
#[non_exhaustive]
pub struct TextError {
    /// The field, as the message names it (e.g. `TAGNAME`, `a folder name`).
    pub field: String,
    /// What is wrong with it.
    pub problem: TextProblem,
    /// Its limit, in characters.
    pub max: usize,
}

/// [`is_valid`], or an error naming the field, its limit and the rule.
pub fn check(field: &str, s: &str, max: usize) -> Result<(), TextError> {
    if is_valid(s, max) {
        return Ok(());
    }
    let n = s.chars().count();
    let problem = if s.is_empty() {
        TextProblem::Empty
    } else if n > max {
        TextProblem::TooLong(n)
    } else {
        TextProblem::Control
    };
    Err(TextError {
        field: field.to_string(),
        problem,
        max,
    })
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
        assert_eq!(e.problem, TextProblem::TooLong(3_000_000));
        assert_eq!((e.field.as_str(), e.max), ("TAGNAME", MAX_TAGNAME));
        let e = e.to_string();
        assert!(e.contains("3000000 characters") && e.len() < 200, "{e}");
        assert_eq!(
            check("CUID", "a\u{1b}", MAX_CUID).unwrap_err().to_string(),
            "CUID holds a control character: use 1 to 128 characters, no control characters (tab, newline, escape…)"
        );
        assert_eq!(
            check("CUID", "", 9).unwrap_err().problem,
            TextProblem::Empty
        );
    }
}
