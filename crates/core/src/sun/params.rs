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

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::sun::parse_url;

    /// The verifier's reader before issue #20, kept as the oracle: the scanned URL rebuilt as
    /// text from the template's text (split at `?`, `&` and `=`) and the request's raw
    /// values, then split along the template by `parse_url`. `None`: no parameter present.
    fn rebuilt(t: &Template, xuid: &str, pairs: &[(&str, &str)]) -> Option<Result<ScannedUrl, ()>> {
        let raw = t.as_str().replace("{macstart}", "");
        let prefix = raw.split_once('?').map_or(raw.as_str(), |(p, _)| p);
        let query: Vec<&str> = raw
            .split_once('?')
            .map(|(_, q)| q.split('&').collect())
            .unwrap_or_default();
        let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let mut url = format!("{prefix}?");
        let (mut found, mut missing) = (0, 0);
        for (i, seg) in query.iter().enumerate() {
            if i > 0 {
                url.push('&');
            }
            let Some((name, tpl)) = seg.split_once('=').filter(|(_, v)| v.contains('{')) else {
                url.push_str(seg);
                continue;
            };
            url.push_str(name);
            url.push('=');
            if tpl.contains("{xuid}") {
                url.push_str(&tpl.replace("{xuid}", xuid));
                continue;
            }
            match value(name) {
                Some(v) => {
                    found += 1;
                    url.push_str(v);
                }
                None => missing += 1,
            }
        }
        match (found, missing) {
            (0, _) => None,
            (_, 0) => Some(parse_url(t, &url).map_err(|_| ())),
            _ => Some(Err(())),
        }
    }

    fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
        from[rng.gen_range(0..from.len())]
    }

    fn hex(rng: &mut StdRng, n: usize) -> String {
        (0..n)
            .map(|_| pick(rng, &["0", "7", "a", "F", "c", "9"]))
            .collect()
    }

    /// A random template text: mirrors in query segments with random names, joiners,
    /// fixed segments, `{macstart}` and `{xuid}` in several places, now and then a mirror where
    /// a request cannot carry it (in the path or a name).
    fn template(rng: &mut StdRng) -> String {
        let mut items: Vec<&str> = match rng.gen_range(0..5) {
            0 => vec!["{uid}", "{ctr}"],
            1 => vec!["{picc}"],
            2 => vec!["{picc}", "{enc}"],
            3 => vec!["{uid}", "{ctr}", "{enc}"],
            _ => vec!["{uid}"],
        };
        if rng.gen_bool(0.3) {
            items.push("{tt}");
        }
        items.push("{mac}");
        let mut s = String::from("https://h.example/");
        let xuid_at = rng.gen_range(0..4); // 0: none, 1: path, 2: own segment, 3: value prefix
        if xuid_at == 1 {
            s.push_str("{xuid}/");
        }
        if rng.gen_bool(0.05) {
            s.push_str(pick(rng, &["{uid}/", "{ctr}/"]));
        }
        s.push_str(pick(rng, &["a", "auth", "", "p/q"]));
        let macstart = rng.gen_range(0..items.len() + 2);
        if macstart == items.len() + 1 && xuid_at != 1 {
            s.push_str("{macstart}x/");
        }
        s.push('?');
        let mut segs = 0;
        if xuid_at == 2 {
            s.push_str("x={xuid}");
            segs += 1;
        }
        for (i, item) in items.iter().enumerate() {
            let new_seg = segs == 0 || rng.gen_bool(0.6);
            if new_seg {
                if segs > 0 {
                    s.push('&');
                    if rng.gen_bool(0.15) {
                        s.push_str(pick(rng, &["v=1&", "utm=x&", "&", "w&"]));
                    }
                }
                if macstart == i && rng.gen_bool(0.5) {
                    s.push_str("{macstart}");
                }
                if rng.gen_bool(0.03) {
                    s.push_str("{ctr}");
                }
                s.push_str(pick(rng, &["p", "c", "d", "e", "n", "uid", "t", "m", "c"]));
                s.push('=');
                if i == 0 && xuid_at == 3 {
                    s.push_str("{xuid}-");
                }
                if rng.gen_bool(0.1) {
                    s.push_str(pick(rng, &["Q", "0", "z="]));
                }
                segs += 1;
            } else {
                s.push_str(pick(rng, &["z", "-", "=", ".", "0", "?"]));
            }
            if macstart == i && !s.ends_with("{macstart}") {
                s.push_str("{macstart}");
            }
            s.push_str(item);
        }
        if rng.gen_bool(0.2) {
            s.push_str(pick(rng, &["&v=1", "z", "&"]));
        }
        s
    }

    /// What a tag writes for the template (random mirror values, PICC data of either length
    /// now and then), as the scanned URL's query pairs.
    fn scanned_query(rng: &mut StdRng, t: &Template, xuid: &str) -> String {
        let mut url = String::new();
        for p in t.parts() {
            match p {
                Part::Literal(l) => url.push_str(l),
                Part::Xuid => url.push_str(xuid),
                Part::Uid => url.push_str(&hex(rng, 14)),
                Part::Ctr => url.push_str(&hex(rng, 6)),
                Part::Picc => {
                    let n = if rng.gen_bool(0.3) { 48 } else { 32 };
                    url.push_str(&hex(rng, n))
                }
                Part::Enc => url.push_str(&hex(rng, 32)),
                Part::Tt => {
                    url.push_str(pick(rng, &["C", "O", "I", "x"]));
                    url.push_str(pick(rng, &["C", "O", "I"]));
                }
                Part::MacStart => {}
                Part::Mac => url.push_str(&hex(rng, 16)),
            }
        }
        url.split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default()
    }

    /// What clients send besides: a pair dropped, doubled, reordered, a value cut, lengthened
    /// or not hex, a foreign pair.
    fn mutate(rng: &mut StdRng, q: &str) -> String {
        let mut pairs: Vec<String> = q.split('&').map(str::to_string).collect();
        for _ in 0..rng.gen_range(0..3) {
            let i = rng.gen_range(0..pairs.len().max(1));
            match rng.gen_range(0..7) {
                0 if !pairs.is_empty() => {
                    pairs.remove(i);
                }
                1 if !pairs.is_empty() => {
                    let p = pairs[i].clone();
                    pairs.insert(rng.gen_range(0..=pairs.len()), p + "0");
                }
                2 if pairs.len() > 1 => {
                    let last = pairs.len() - 1;
                    pairs.swap(0, last)
                }
                3 if !pairs.is_empty() => {
                    pairs[i].pop();
                }
                4 if !pairs.is_empty() => pairs[i].push('A'),
                5 if !pairs.is_empty() => pairs[i].push_str("%20"),
                _ => pairs.push("utm_source=z".into()),
            }
        }
        pairs.join("&")
    }

    /// `read_params` reads what the rebuilt URL read: the same parameters absent, the same
    /// refusals, the same fields and SDMMAC input, over random templates and requests.
    #[test]
    fn reads_what_the_rebuilt_url_read() {
        let mut rng = StdRng::seed_from_u64(20);
        let (mut valid, mut genuine_shape) = (0, 0);
        for _ in 0..30_000 {
            let text = template(&mut rng);
            let Ok(t) = Template::parse(&text) else {
                continue;
            };
            valid += 1;
            let xuid = "Q8W3-sbcz";
            let q = scanned_query(&mut rng, &t, xuid);
            let q = if rng.gen_bool(0.5) {
                mutate(&mut rng, &q)
            } else {
                q
            };
            let pairs: Vec<(&str, &str)> = q
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect();
            let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            let new = t.read_params(xuid, value);
            match (rebuilt(&t, xuid, &pairs), new) {
                (None, Err(ParamsError::Absent)) => {}
                (Some(Err(())), Err(e)) => assert_ne!(e, ParamsError::Absent, "{text} {q}"),
                (Some(Ok(old)), Ok(new)) => {
                    genuine_shape += 1;
                    let without_xuid = |s: ScannedUrl| ScannedUrl { xuid: None, ..s };
                    assert_eq!(without_xuid(old), without_xuid(new), "{text} {q}");
                }
                (old, new) => panic!("{text} with {q}: before {old:?}, now {new:?}"),
            }
        }
        // The generator reaches both outcomes often.
        assert!(
            valid > 5_000 && genuine_shape > 1_000,
            "{valid} {genuine_shape}"
        );
    }

    #[test]
    fn layout_of_templates() {
        let t = Template::parse("https://h/a?x={xuid}&n={ctr}&e={mac}").unwrap();
        assert!(t.is_platform_query());
        assert_eq!(t.parameters().collect::<Vec<_>>(), ["n", "e"]);
        let t = Template::parse("https://h/a?x={xuid}&{macstart}n={ctr}&e={mac}").unwrap();
        assert!(!t.is_platform_query());
        let t = Template::parse("https://h/a?v=1&p={picc}&c={mac}").unwrap();
        assert_eq!(t.parameters().collect::<Vec<_>>(), ["p", "c"]);
        let none = |_: &str| None;
        assert_eq!(t.read_params("", none), Err(ParamsError::Absent));
        let only_p = |n: &str| (n == "p").then_some("00");
        assert_eq!(
            t.read_params("", only_p),
            Err(ParamsError::Missing { name: "c".into() })
        );
        // A mirror in the path is not a parameter.
        let t = Template::parse("https://h/{uid}/a?c={mac}").unwrap();
        let c = |n: &str| (n == "c").then_some("0123456789abcdef");
        assert_eq!(
            t.read_params("", c),
            Err(ParamsError::Unreadable {
                placeholder: "{uid}"
            })
        );
        // The SDMMAC input: the template's own text and the values, from {macstart}.
        let t = Template::parse("https://h/a?x={xuid}&{macstart}n={ctr}&t={tt}&e={mac}").unwrap();
        let v = |n: &str| match n {
            "n" => Some("00002A"),
            "t" => Some("CC"),
            "e" => Some("0123456789ABCDEF"),
            _ => None,
        };
        let s = t.read_params("Q8W", v).unwrap();
        assert_eq!(s.mac_input, b"n=00002A&t=CC&e=");
        assert_eq!(s.read_ctr, Some(42));
        assert_eq!(s.xuid.as_deref(), Some("Q8W"));
        let bad_t = |n: &str| if n == "t" { Some("XX") } else { v(n) };
        assert!(matches!(
            t.read_params("Q8W", bad_t),
            Err(ParamsError::Value { name, source: SunError::BadTt { at: 0 } }) if name == "t"
        ));
    }
}
