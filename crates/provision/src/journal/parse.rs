//! Reading journal bytes without changing them: complete records, a torn last write, and
//! damaged lines in the middle (the first is healed on open, the second refused).

use super::chain::{check_line, Link, GENESIS};
use super::Record;

/// A journal file split into records, read without changing it.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The complete records, in order.
    pub records: Vec<Record>,
    /// Bytes up to the end of the last complete record.
    pub good_len: usize,
    /// A torn last write: (line, bytes).
    pub torn: Option<(usize, usize)>,
    /// Damaged lines before the last record, and records that do not follow the record
    /// before them (a gap or a change, see [`super::chain`]): (line, what).
    pub damaged: Vec<(usize, String)>,
    /// Each record's link in the chain (one per record).
    pub links: Vec<Link>,
    /// The first complete line that is a record of a kind this tag424 does not know (a newer
    /// tag424 wrote it): (line, its `event`). Every reader refuses the journal then, changing
    /// nothing (it is also counted as damage or a torn tail, as any line that does not parse).
    pub newer: Option<(usize, String)>,
}

impl Parsed {
    /// The last record's link ([`GENESIS`] for an empty journal).
    pub fn last_link(&self) -> Link {
        self.links.last().copied().unwrap_or(GENESIS)
    }
}

fn parse_record(line: &[u8]) -> Result<Record, String> {
    let r: Record = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if let Record::Planned { xuid, .. } | Record::Verified { xuid, .. } = &r {
        crate::tag_code::check(xuid).map_err(|e| e.to_string())?;
    }
    Ok(r)
}

/// The `event` of a well-formed record line whose kind this tag424 does not know.
fn newer_event(line: &[u8], what: &str) -> Option<String> {
    if !what.starts_with("unknown variant") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    Some(v.get("event")?.as_str()?.to_string())
}

/// Splits journal bytes: complete records, a torn tail (a last line without its newline, or a
/// last line that does not parse) and damaged lines in the middle.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    let mut pos = 0;
    let mut line_no = 0;
    // (line, start, what) of the last unparsable complete line not yet followed by a record.
    let mut pending: Option<(usize, usize, String)> = None;
    // The position (from 1) the next record must have, and the link it follows.
    let (mut seq, mut prev) = (1u64, GENESIS);
    while pos < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[pos..].iter().position(|b| *b == b'\n') else {
            // No newline: the last write was cut.
            let start = pending.as_ref().map(|x| x.1).unwrap_or(pos);
            let first = pending.as_ref().map(|x| x.0).unwrap_or(line_no);
            p.torn = Some((first, bytes.len() - start));
            return p;
        };
        let line = &bytes[pos..pos + nl];
        let start = pos;
        pos += nl + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_record(line) {
            Ok(r) => {
                if let Some((l, _, what)) = pending.take() {
                    p.damaged.push((l, what));
                }
                let link = match check_line(line, seq, &prev) {
                    Ok(link) => link,
                    Err(broken) => {
                        p.damaged.push((line_no, broken.what));
                        // The lines after it are checked against what it claims: one gap is
                        // reported once.
                        if let Some((s, l)) = broken.claims {
                            seq = s;
                            prev = l;
                        }
                        prev
                    }
                };
                seq += 1;
                prev = link;
                p.links.push(link);
                p.records.push(r);
                p.good_len = pos;
            }
            Err(what) => {
                if p.newer.is_none() {
                    p.newer = newer_event(line, &what).map(|e| (line_no, e));
                }
                if let Some((l, _, w)) = pending.take() {
                    p.damaged.push((l, w));
                }
                pending = Some((line_no, start, what));
            }
        }
    }
    if let Some((l, start, _)) = pending {
        p.torn = Some((l, bytes.len() - start));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = r#"{"event":"keys_changed","uid":"04112233445566","time":1}"#;

    #[test]
    fn torn_tails_and_damaged_middles() {
        let good = format!("{REC}\n{REC}\n");
        let p = parse(good.as_bytes());
        assert_eq!((p.records.len(), p.torn, p.good_len), (2, None, good.len()));
        // No newline at the end: torn, even when the bytes parse.
        let p = parse(format!("{REC}\n{REC}").as_bytes());
        assert_eq!((p.records.len(), p.torn), (1, Some((2, REC.len()))));
        // A complete last line that does not parse: torn.
        let p = parse(format!("{REC}\n{{\"ev\n").as_bytes());
        assert_eq!(p.torn, Some((2, 5)));
        assert!(p.damaged.is_empty());
        // A bad line followed by a record: damage, named by line.
        let p = parse(format!("{REC}\nxx\n\n{REC}\n").as_bytes());
        assert_eq!(p.damaged.len(), 1);
        assert_eq!(p.damaged[0].0, 2);
        assert_eq!(p.records.len(), 2);
        // A bad tag code is damage too (the one tag-code rule).
        let bad = r#"{"event":"verified","uid":"04","xuid":"-A1","read_ctr":1,"time":1}"#;
        let p = parse(format!("{bad}\n{REC}\n").as_bytes());
        assert_eq!(p.damaged.len(), 1);
        assert_eq!(p.newer, None);
    }

    /// A record of a kind a newer tag424 writes is named as such, wherever it stands.
    #[test]
    fn a_newer_record_is_named() {
        let newer = r#"{"event":"quantum_options","time":1}"#;
        for text in [format!("{newer}\n{REC}\n"), format!("{REC}\n{newer}\n")] {
            let p = parse(text.as_bytes());
            assert_eq!(
                p.newer,
                Some((
                    text.lines().position(|l| l == newer).unwrap() + 1,
                    "quantum_options".into()
                )),
                "{text}"
            );
        }
        // Bytes that are not a record at all are not "newer".
        assert_eq!(parse(format!("{REC}\n{{\"ev\n").as_bytes()).newer, None);
        assert_eq!(
            parse(format!("{REC}\n{{\"event\":7}}\n{REC}\n").as_bytes()).newer,
            None
        );
    }
}
