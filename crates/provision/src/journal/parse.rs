//! Reading journal bytes without changing them: complete records, a torn last write, and
//! damaged lines in the middle (the first is healed on open, the second refused).

use super::chain::{check_line, ChainError, Link, GENESIS};
use super::Record;
use crate::tag_code::BadTagCode;

/// Why a complete journal line is damaged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not a record this tag424 reads.
    #[error(transparent)]
    Json(serde_json::Error),
    /// A record whose tag code breaks the tag-code rule.
    #[error(transparent)]
    TagCode(BadTagCode),
    /// A record that does not follow the record before it (see [`super::chain`]).
    #[error(transparent)]
    Chain(ChainError),
}

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
    pub damaged: Vec<(usize, LineError)>,
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

fn parse_record(line: &[u8]) -> Result<Record, LineError> {
    let r: Record = serde_json::from_slice(line).map_err(LineError::Json)?;
    if let Record::Planned { xuid, .. } | Record::Verified { xuid, .. } = &r {
        crate::tag_code::check(xuid).map_err(LineError::TagCode)?;
    }
    Ok(r)
}

/// The `event` of a well-formed record line whose kind this tag424 does not know.
fn newer_event(line: &[u8], what: &LineError) -> Option<String> {
    match what {
        LineError::Json(e) if e.to_string().starts_with("unknown variant") => {}
        _ => return None,
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
    let mut pending: Option<(usize, usize, LineError)> = None;
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
                        p.damaged.push((line_no, LineError::Chain(broken.what)));
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
        assert!(matches!(p.damaged[0].1, LineError::Json(_)), "{p:?}");
        assert_eq!(p.records.len(), 2);
        // A bad tag code is damage too (the one tag-code rule), kept typed with its code.
        let bad = r#"{"event":"verified","uid":"04","xuid":"-A1","read_ctr":1,"time":1}"#;
        let p = parse(format!("{bad}\n{REC}\n").as_bytes());
        assert_eq!(p.damaged.len(), 1);
        assert!(
            matches!(&p.damaged[0].1, LineError::TagCode(BadTagCode(code)) if code == "-A1"),
            "{p:?}"
        );
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

/// The words `tag424 journal check` and a refused journal show for each kind of damage,
/// pinned to the exact text.
#[cfg(test)]
mod messages {
    use super::super::chain::{write_line, GENESIS};
    use super::super::Record;
    use super::parse;

    fn line(seq: u64, prev: &super::Link) -> (String, super::Link) {
        let r = Record::KeysChanged {
            uid: "04112233445566".into(),
            time: 1,
        };
        let mut out = Vec::new();
        let link = write_line(&r, seq, prev, &mut out).expect("write");
        (String::from_utf8(out).expect("utf-8"), link)
    }

    fn damage(text: &str) -> Vec<(usize, String)> {
        parse(text.as_bytes())
            .damaged
            .iter()
            .map(|(l, w)| (*l, w.to_string()))
            .collect()
    }

    #[test]
    fn each_damage_reads_as_it_always_did() {
        let (l1, k1) = line(1, &GENESIS);
        let (l2, k2) = line(2, &k1);
        let (l3, _) = line(3, &k2);
        let legacy = "{\"event\":\"keys_changed\",\"uid\":\"04112233445566\",\"time\":1}\n";
        assert_eq!(
            damage(&format!("{l1}xx\n{l2}")),
            [(2, "expected value at line 1 column 1".to_string())]
        );
        assert_eq!(
            damage(&format!(
                "{{\"event\":\"verified\",\"uid\":\"04\",\"xuid\":\"-A1\",\"read_ctr\":1,\"time\":1}}\n{legacy}"
            )),
            [(
                1,
                "tag code \"-A1\" must be 1 to 64 letters and digits, with '-' and '_' allowed after the first character"
                    .to_string()
            )]
        );
        assert_eq!(
            damage(&format!("{l1}{l3}")),
            [(
                2,
                "it is record 3 but the journal has only 1 records before it: 1 records before it are missing"
                    .to_string()
            )]
        );
        assert_eq!(
            damage(&format!("{l1}{l2}{l2}")),
            [(
                3,
                "it is record 2 but stands at position 3: a record was copied in twice".to_string()
            )]
        );
        let half = l2.replacen(",\"seq\":2", "", 1);
        assert_eq!(
            damage(&format!("{l1}{half}{legacy}")),
            [(
                2,
                "it has one of \"seq\" and \"chain\" without the other".to_string()
            )]
        );
        // `chain` moved to the front of the line.
        let (body, chain) = l2.trim_end().split_once(",\"chain\":").expect("chained");
        let moved = format!(
            "{{\"chain\":{},{}}}\n",
            &chain[..chain.len() - 1],
            &body[1..]
        );
        assert_eq!(
            damage(&format!("{l1}{moved}")),
            [(
                2,
                "its \"chain\" is not the last member of the line".to_string()
            )]
        );
        let changed = l2.replacen("\"time\":1", "\"time\":2", 1);
        assert_eq!(
            damage(&format!("{l1}{changed}")),
            [(
                2,
                "its chain does not follow the record before it: a record before it was removed or changed"
                    .to_string()
            )]
        );
    }
}
