//! The one rule for tag codes (the platform's XUIDs).
//!
//! A tag code is 1 to 64 ASCII letters and digits, with `-` and `_` allowed inside but never
//! first. The rule is shared by the batch's code list, the key journal, the verifier's import
//! and every CSV this tool writes (their reader and writer: `tag424_provision::code_list`).

/// Longest tag code.
pub const MAX_LEN: usize = 64;

/// The rule in words.
pub const RULE: &str =
    "1 to 64 letters and digits, with '-' and '_' allowed after the first character";

/// Why a tag code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag code {0:?} must be {RULE}")]
pub struct BadTagCode(pub String);

/// True when `code` follows the rule.
pub fn is_valid(code: &str) -> bool {
    let b = code.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// `Ok` when `code` follows the rule, else the error that quotes it.
pub fn check(code: &str) -> Result<(), BadTagCode> {
    if is_valid(code) {
        Ok(())
    } else {
        Err(BadTagCode(code.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        for ok in ["a", "q8w3sbcz", "A-1", "a_b", "a-"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "-A1", "_a", "a b", "=1", "é", &"a".repeat(65)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
