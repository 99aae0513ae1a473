//! Aligned text tables for the CLI's human output: every cell escaped by the one escaping
//! function ([`super::printable`]) and measured in terminal columns (`unicode-width`: wide
//! CJK and emoji count two, combining marks none), so columns stay aligned for any content —
//! long values, non-ASCII text, empty cells.

use unicode_width::UnicodeWidthStr;

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Padded on the right.
    Left,
    /// Padded on the left (numbers).
    Right,
}

/// Lines of a table: the header, then one line per row. Each column is as wide as its widest
/// cell; an empty cell shows `-`; the last column is not padded.
pub fn render(header: &[(&str, Align)], rows: &[Vec<String>]) -> Vec<String> {
    let cell = |s: &str| -> String {
        if s.is_empty() {
            "-".to_string()
        } else {
            super::printable(s).into_owned()
        }
    };
    let head: Vec<String> = header.iter().map(|(h, _)| h.to_string()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..header.len())
                .map(|i| cell(r.get(i).map_or("", |s| s)))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.width()).collect();
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.width());
        }
    }
    std::iter::once(&head)
        .chain(&body)
        .map(|r| {
            let last = r.len().saturating_sub(1);
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                let pad = " ".repeat(widths[i] - c.width());
                if i > 0 {
                    line.push(' ');
                }
                match (header[i].1, i == last) {
                    (Align::Right, _) => {
                        line.push_str(&pad);
                        line.push_str(c);
                    }
                    (Align::Left, true) => line.push_str(c),
                    (Align::Left, false) => {
                        line.push_str(c);
                        line.push_str(&pad);
                    }
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cells_hold() {
        let h = [("A", Align::Left), ("N", Align::Right), ("Z", Align::Left)];
        let rows = vec![
            vec!["日本語".into(), "1".into(), "x".into()],
            vec!["".into(), "12345".into(), "y".into()],
            vec!["a\u{1b}[31mb".into(), "".into(), "z".into()],
        ];
        let lines = render(&h, &rows);
        let col = |l: &str| l.find(['x', 'y', 'z', 'Z']).map(|b| l[..b].width());
        let first = col(&lines[0]);
        assert!(lines.iter().all(|l| col(l) == first), "{lines:#?}");
        assert!(!lines.concat().contains('\u{1b}'));
        assert!(lines[2].starts_with("- "), "{lines:#?}");
    }
}
