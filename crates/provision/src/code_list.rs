//! The one reader of code lists and the one writer of the CSV files tag424 makes (keys.csv,
//! associate.csv, codes.txt): every code follows [`crate::tag_code`]'s rule, and no cell may
//! start with `=`, `+`, `-`, `@`, a tab or a carriage return (a spreadsheet would read it as a
//! formula).

use std::collections::HashMap;
use std::path::Path;

use crate::tag_code::{is_valid, RULE};

/// True when a spreadsheet could read the cell as a formula (or a control sequence).
pub fn is_formula_like(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// Why a CSV row could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to write the CSV cell {0:?}: a spreadsheet would read it as a formula")]
pub struct UnsafeCell(pub String);

/// Appends one CSV row of plain cells (codes, hex keys, UIDs) to `out`, refusing any cell a
/// spreadsheet would run as a formula.
pub fn push_row(out: &mut String, cells: &[&str]) -> Result<(), UnsafeCell> {
    for c in cells {
        if is_formula_like(c) || c.contains([',', '"', '\n']) {
            return Err(UnsafeCell(c.to_string()));
        }
    }
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(c);
    }
    out.push('\n');
    Ok(())
}

/// Whether a code list starts with a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The first line names the columns and one of them is `XUID` (the platform's download).
    Required,
    /// One code per line, no header (`--no-header`).
    None,
}

/// Why a code list was refused.
#[derive(Debug, thiserror::Error)]
pub enum CodeListError {
    /// The file could not be read.
    #[error("cannot read the tag code file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file (named) has no codes.
    #[error("the tag code file {0} has no tag codes")]
    Empty(String),
    /// A line that is not valid CSV, a header without `XUID`, or an invalid code.
    #[error("{path} line {line}: {what}")]
    Bad {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// Two codes that differ only in upper and lower case: one code to the platform's users.
    #[error("{path}: tag codes {:?} (line {}) and {:?} (line {}) differ only in upper and lower case, so they are one code written twice: keep the one the platform's download has and delete the other", first.1, first.0, second.1, second.0)]
    CaseDuplicate {
        /// The file.
        path: String,
        /// The first one's line and code.
        first: (usize, String),
        /// The second one's line and code.
        second: (usize, String),
    },
    /// A code that appears on two lines.
    #[error("{path}: tag code {xuid} appears twice (lines {first} and {second})")]
    Duplicate {
        /// The file.
        path: String,
        /// The repeated code.
        xuid: String,
        /// Line of its first appearance.
        first: usize,
        /// Line of its second appearance.
        second: usize,
    },
}

/// The message for a row that is one cell holding `;`: a list separated by semicolons (a
/// spreadsheet's CSV export in locales whose decimal mark is a comma).
fn semicolons(fields: &[String]) -> Option<String> {
    match fields {
        [one] if one.contains(';') => Some(format!(
            "{one:?} is separated by semicolons (;), not commas: export the list again as CSV with commas (in the spreadsheet's save dialog, field separator \",\"), or give a plain list of codes, one per line, with --no-header"
        )),
        _ => None,
    }
}

/// One row of a code list.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line number in the file.
    pub line: usize,
    /// The tag code (the `XUID` column, or the whole line without a header).
    pub code: String,
    /// All the row's fields (trimmed), in header order.
    pub fields: Vec<String>,
}

/// A parsed code list: its header (upper-cased) and rows with valid, unique codes.
#[derive(Debug, Clone)]
pub struct CodeList {
    /// Column names, upper-cased (`XUID` alone without a header).
    pub header: Vec<String>,
    /// The data rows, in file order.
    pub rows: Vec<Row>,
}

impl CodeList {
    /// The column named `name` (case-insensitive), if any.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    /// Every code, in file order.
    pub fn codes(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.code.clone()).collect()
    }

    /// Reads and parses the file at `path` (see [`CodeList::parse`]).
    pub fn read(path: &Path, header: Header) -> Result<CodeList, CodeListError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CodeListError::Read {
            path: p.clone(),
            source,
        })?;
        CodeList::parse(&text, &p, header)
    }

    /// Parses CSV text (quoted fields, CRLF, a byte-order mark allowed; one record per line so
    /// errors name file lines). With [`Header::Required`] the first line must have an `XUID`
    /// column; with [`Header::None`] every line is one code. Blank lines are skipped; a bad or
    /// repeated code is an error naming its line.
    pub fn parse(text: &str, path: &str, header: Header) -> Result<CodeList, CodeListError> {
        let text = text.trim_start_matches('\u{feff}');
        let bad = |line: usize, what: String| CodeListError::Bad {
            path: path.to_string(),
            line,
            what,
        };
        let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, l) in text.lines().enumerate() {
            // `lines` takes a CRLF ending off; a carriage return left inside a line would end
            // the CSV record there and cut the rest of the line (a code) off without a word.
            if l.contains('\r') {
                return Err(bad(
                    i + 1,
                    "a carriage return (CR) inside the line: the file mixes line endings or a code was cut short; save it again with one code per line (LF or CRLF endings)".into(),
                ));
            }
            if l.trim().is_empty() {
                continue;
            }
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes());
            match rdr.records().next() {
                Some(Ok(rec)) => {
                    rows.push((i + 1, rec.iter().map(|f| f.trim().to_string()).collect()))
                }
                Some(Err(e)) => return Err(bad(i + 1, e.to_string())),
                None => continue,
            }
        }
        let (head, data, column) = match header {
            Header::Required => {
                let Some((line, first)) = rows.first() else {
                    return Err(CodeListError::Empty(path.to_string()));
                };
                let column = first
                    .iter()
                    .position(|h| h.eq_ignore_ascii_case("XUID"))
                    .ok_or_else(|| match semicolons(first) {
                        Some(e) => bad(*line, e),
                        None => {
                        bad(
                            *line,
                            // The line itself is not shown: the file may be someone's
                            // secret given by mistake.
                            format!(
                                "the first line has no XUID column: expected a header naming XUID (and its other columns), as the platform's download starts; give --no-header for a plain list of codes ({} field{} found, not shown)",
                                first.len(),
                                if first.len() == 1 { "" } else { "s" }
                            ),
                        )
                        }
                    })?;
                let head = first.iter().map(|h| h.to_ascii_uppercase()).collect();
                (head, &rows[1..], column)
            }
            Header::None => (vec!["XUID".to_string()], &rows[..], 0),
        };
        let mut out = Vec::new();
        let mut seen: HashMap<String, (usize, String)> = HashMap::new();
        for (line, fields) in data {
            if let Some(e) = semicolons(fields) {
                return Err(bad(*line, e));
            }
            if header == Header::None && fields.len() != 1 {
                return Err(bad(
                    *line,
                    "several columns in a list without a header: give the XUID header".into(),
                ));
            }
            let code = fields
                .get(column)
                .ok_or_else(|| bad(*line, "the row has no XUID column".into()))?
                .clone();
            // Not quoted: a line that is no tag code may be anything (a key, a password).
            if !is_valid(&code) {
                return Err(bad(
                    *line,
                    format!("expected a tag code in the XUID column: {RULE}"),
                ));
            }
            // Codes that differ only in case are one code (see docs/operator-guide.md).
            if let Some((first, other)) =
                seen.insert(code.to_ascii_lowercase(), (*line, code.clone()))
            {
                return Err(if other == code {
                    CodeListError::Duplicate {
                        path: path.to_string(),
                        xuid: code,
                        first,
                        second: *line,
                    }
                } else {
                    CodeListError::CaseDuplicate {
                        path: path.to_string(),
                        first: (first, other),
                        second: (*line, code),
                    }
                });
            }
            out.push(Row {
                line: *line,
                code,
                fields: fields.clone(),
            });
        }
        if out.is_empty() {
            return Err(CodeListError::Empty(path.to_string()));
        }
        Ok(CodeList {
            header: head,
            rows: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_formula_is_written() {
        let mut s = String::new();
        push_row(&mut s, &["abc", "00FF"]).unwrap();
        assert_eq!(s, "abc,00FF\n");
        for c in ["=1", "+1", "-A1", "@x", "\tx", "\rx", "a,b"] {
            assert!(push_row(&mut s, &["x", c]).is_err(), "{c:?}");
        }
    }

    #[test]
    fn a_header_is_required_unless_told() {
        let e = CodeList::parse("Code\nabc\n", "f", Header::Required)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no XUID column") && e.contains("--no-header"),
            "{e}"
        );
        let l = CodeList::parse("abc\ndef\n", "f", Header::None).unwrap();
        assert_eq!(l.codes(), ["abc", "def"]);
        let l = CodeList::parse("xuid,key\nabc,00\n", "f", Header::Required).unwrap();
        assert_eq!(l.column("KEY"), Some(1));
        assert_eq!(l.rows[0].fields[1], "00");
    }
}
