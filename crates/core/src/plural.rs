//! Counted nouns in messages: "1 tag", "2 tags", "0 tags" — the one plural rule every
//! message (the library's errors and the CLI's lines) goes through.

/// `n` and its noun, singular for exactly one: `count(1, "tag", "tags")` is "1 tag".
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(super::count(1, "tag", "tags"), "1 tag");
        assert_eq!(super::count(0, "tag", "tags"), "0 tags");
        assert_eq!(super::count(2, "entry", "entries"), "2 entries");
    }
}
