//! Reading a scan from the parameters of a request to a template's URL, as a verifier the URL
//! points at receives it: the template's query is `name=value` segments, and a segment whose
//! value holds a mirror (`p={picc}`) is a *parameter* the request carries. Its value is read
//! along the template's parts by the one reader of templates (the same as
//! [`parse_url`](super::parse_url)'s), without the URL being put back together as text.
//!
//! The rest of the URL is the template's own text: the path, `?` and `&`, the parameters'
//! names, segments without a mirror (copied as written, whatever the request has there), and
//! `{xuid}` (the tag code, which the caller knows from its lookup). The SDMMAC input runs over
//! that text and the parameters' values exactly as it runs over the scanned URL. A mirror
//! outside a parameter's value (in the path, or in a parameter's name) cannot be read from a
//! request: such a template reads no scan ([`ParamsError::Unreadable`]).

use super::template::Part;
use super::verify::{read_parts, Reading, ScannedUrl, SunError, MAX_URL_LEN};
use super::Template;

/// One piece of a template's URL, in order, as a request to it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// The template's own text (path, `?`, `&`, names, segments without a mirror).
    Text(String),
    /// `{xuid}`: the tag code.
    Xuid,
    /// `{macstart}` outside a parameter's value.
    MacStart,
    /// A parameter: its name and the parts its value is read along.
    Param {
        /// The name, as the request's query has it (raw).
        name: String,
        /// The parts of its value (after the first `=`).
        parts: Vec<Part>,
    },
    /// A mirror outside every parameter's value (its placeholder).
    Unreadable(&'static str),
}

/// A template's URL as the request to it carries it (computed once, with the template).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    pieces: Vec<Piece>,
    /// The query is exactly the platform's `x={xuid}&n={ctr}&e={mac}`.
    platform: bool,
}

/// Why a request's parameters hold no scan of a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The request carries none of the template's parameters.
    #[error("the request carries none of the template's parameters")]
    Absent,
    /// The request carries some of the template's parameters but not this one.
    #[error("the request carries some of the template's parameters but not {name:?}")]
    Missing {
        /// The parameter's name.
        name: String,
    },
    /// The template has a mirror where no parameter's value is (its placeholder).
    #[error("the template's {placeholder} is not in a query parameter's value: a request to its URL does not carry it")]
    Unreadable {
        /// The placeholder, e.g. `{uid}`.
        placeholder: &'static str,
    },
    /// A parameter's value is not what the template says is there.
    #[error("parameter {name:?}: {source}")]
    Value {
        /// The parameter's name.
        name: String,
        /// What is wrong with its value (character positions are in the value).
        #[source]
        source: SunError,
    },
    /// The URL the request stands for is longer than [`MAX_URL_LEN`] (its length).
    #[error("the scanned URL would be {0} characters long; at most {MAX_URL_LEN} are accepted")]
    TooLong(usize),
}

/// Appends the template's own text, merged with the text before it.
fn push_text(out: &mut Vec<Piece>, t: &str) {
    if t.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(Piece::Text(s)) => s.push_str(t),
        _ => out.push(Piece::Text(t.to_string())),
    }
}

/// Appends parts that are the template's own text (nothing read from the request).
fn push_own(out: &mut Vec<Piece>, parts: &[Part]) {
    for p in parts {
        match p {
            Part::Literal(l) => push_text(out, l),
            Part::Xuid => out.push(Piece::Xuid),
            Part::MacStart => out.push(Piece::MacStart),
            other => out.push(Piece::Unreadable(other.name())),
        }
    }
}

/// Appends a literal to a list of parts, merged with a literal before it; empty text is left out.
fn push_literal(parts: &mut Vec<Part>, t: &str) {
    if t.is_empty() {
        return;
    }
    match parts.last_mut() {
        Some(Part::Literal(s)) => s.push_str(t),
        _ => parts.push(Part::Literal(t.to_string())),
    }
}

/// Splits a segment's parts at its first `=`: the name's parts and the value's.
fn split_at_eq(seg: &[Part]) -> Option<(Vec<Part>, Vec<Part>)> {
    let (i, at) = seg.iter().enumerate().find_map(|(i, p)| match p {
        Part::Literal(l) => l.find('=').map(|at| (i, at)),
        _ => None,
    })?;
    let Part::Literal(l) = &seg[i] else {
        return None;
    };
    let mut name = seg[..i].to_vec();
    push_literal(&mut name, &l[..at]);
    let mut value = Vec::new();
    push_literal(&mut value, &l[at + 1..]);
    value.extend(seg[i + 1..].iter().cloned());
    Some((name, value))
}

/// The parts as written, `{macstart}` left out (a request's names never hold it).
fn written(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Literal(l) => l.as_str(),
            Part::MacStart => "",
            other => other.name(),
        })
        .collect()
}

impl Layout {
    /// The layout of a template's parts.
    pub(crate) fn of(parts: &[Part]) -> Layout {
        // The path (up to the first `?`), then the query's segments (split at `&`).
        let mut path: Vec<Part> = Vec::new();
        let mut segments: Option<Vec<Vec<Part>>> = None;
        for p in parts {
            let Part::Literal(l) = p else {
                match segments.as_mut().and_then(|s| s.last_mut()) {
                    Some(seg) => seg.push(p.clone()),
                    None => path.push(p.clone()),
                }
                continue;
            };
            let mut rest = l.as_str();
            if segments.is_none() {
                let Some((before, after)) = rest.split_once('?') else {
                    push_literal(&mut path, rest);
                    continue;
                };
                push_literal(&mut path, before);
                segments = Some(vec![Vec::new()]);
                rest = after;
            }
            let segs = segments.get_or_insert_with(Vec::new);
            for (i, piece) in rest.split('&').enumerate() {
                if i > 0 {
                    segs.push(Vec::new());
                }
                if let Some(seg) = segs.last_mut() {
                    push_literal(seg, piece);
                }
            }
        }
        let mut pieces = Vec::new();
        push_own(&mut pieces, &path);
        let Some(segments) = segments else {
            return Layout {
                pieces,
                platform: false,
            };
        };
        push_text(&mut pieces, "?");
        let with_marks: Vec<String> = segments
            .iter()
            .map(|s| {
                s.iter()
                    .map(|p| match p {
                        Part::Literal(l) => l.as_str(),
                        other => other.name(),
                    })
                    .collect()
            })
            .collect();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                push_text(&mut pieces, "&");
            }
            // A parameter: a value with a mirror that is not the tag code.
            let param = split_at_eq(seg).filter(|(_, value)| {
                value
                    .iter()
                    .any(|p| !matches!(p, Part::Literal(_) | Part::MacStart))
                    && !value.contains(&Part::Xuid)
            });
            match param {
                Some((name, value)) => {
                    push_own(&mut pieces, &name);
                    push_text(&mut pieces, "=");
                    pieces.push(Piece::Param {
                        name: written(&name),
                        parts: value,
                    });
                }
                None => push_own(&mut pieces, seg),
            }
        }
        Layout {
            pieces,
            platform: with_marks == ["x={xuid}", "n={ctr}", "e={mac}"],
        }
    }
}

impl Template {
    /// The names of the query parameters a scan of this template carries (the segments whose
    /// value holds a mirror other than `{xuid}`), in the template's order.
    pub fn parameters(&self) -> impl Iterator<Item = &str> {
        self.layout().pieces.iter().filter_map(|p| match p {
            Piece::Param { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// The template's query is exactly the platform's `x={xuid}&n={ctr}&e={mac}` (no
    /// `{macstart}` in it).
    pub fn is_platform_query(&self) -> bool {
        self.layout().platform
    }

    /// Reads a scan of this template from the parameters of a request to its URL: `param`
    /// gives a parameter's value (raw, as the query has it), `xuid` the tag code (for
    /// `{xuid}`, which the caller knows from its lookup). Reads what [`parse_url`]
    /// reads from the scanned URL itself.
    ///
    /// [`parse_url`]: super::parse_url
    pub fn read_params<'q>(
        &self,
        xuid: &str,
        param: impl Fn(&str) -> Option<&'q str>,
    ) -> Result<ScannedUrl, ParamsError> {
        let pieces = &self.layout().pieces;
        let mut found = false;
        let mut missing = None;
        for p in pieces {
            if let Piece::Param { name, .. } = p {
                match param(name) {
                    Some(_) => found = true,
                    None => missing = missing.or(Some(name)),
                }
            }
        }
        if !found {
            return Err(ParamsError::Absent);
        }
        if let Some(name) = missing {
            return Err(ParamsError::Missing { name: name.clone() });
        }
        let mut r = Reading::default();
        let mut len = 0;
        for p in pieces {
            match p {
                Piece::Text(t) => {
                    r.consumed(t);
                    len += t.len();
                }
                Piece::Xuid => {
                    r.out.xuid = Some(xuid.to_string());
                    r.consumed(xuid);
                    len += xuid.len();
                }
                Piece::MacStart => r.start_mac(),
                Piece::Unreadable(placeholder) => {
                    return Err(ParamsError::Unreadable { placeholder })
                }
                Piece::Param { name, parts } => {
                    let value = param(name).unwrap_or_default();
                    read_parts(parts, value, &mut r).map_err(|source| ParamsError::Value {
                        name: name.clone(),
                        source,
                    })?;
                    len += value.len();
                }
            }
        }
        if len > MAX_URL_LEN {
            return Err(ParamsError::TooLong(len));
        }
        Ok(r.out)
    }
}
