//! The query string of `GET /v1/t` and `GET /auth`: `x`, `c`, `u`, `a`, `n`, `e`, `r`.
//!
//! The parser takes the raw query (as it arrived, percent-encoded) and either returns the
//! typed parameters or the error code the API answers. It never panics, whatever the input
//! (`fuzz/fuzz_targets/verifier_query.rs`), and bounds everything it allocates.

/// Longest query string looked at; anything longer is `malformed_parameter`.
pub const MAX_QUERY_LEN: usize = 4096;
/// Longest tag code (XUID) accepted.
pub const MAX_XUID_LEN: usize = 64;
/// Longest custom id (CUID) accepted.
pub const MAX_CUID_LEN: usize = super::text::MAX_CUID;
/// Longest account id (AID) accepted.
pub const MAX_AID_LEN: usize = 64;
/// API tokens are alphanumeric, up to 32 characters.
pub const MAX_TOKEN_LEN: usize = 32;

/// How the tag is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `x={XUID}`: the tag code, unique across the verifier.
    Xuid(String),
    /// `c={CUID}&a={AID}`: a custom id within an account (case-sensitive).
    Cuid {
        /// The custom id.
        cuid: String,
        /// The account id.
        aid: String,
    },
    /// `u={UID}&a={AID}`: the chip UID (14 uppercase hex digits) within an account.
    Uid {
        /// The UID.
        uid: [u8; 7],
        /// The account id.
        aid: String,
    },
}

/// The SUN parameters of an authentication tag: `n` (read counter, 6 hex digits, MSB first,
/// as the chip mirrors it) and `e` (SDMMAC, 16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sun {
    /// SDMReadCtr (24 bits).
    pub ctr: u32,
    /// The SDMMAC.
    pub mac: [u8; 8],
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `None` when the query has no `x` and no `c`/`u` with `a`: the tag may still be named
    /// by a template's own parameters (a UID mirror or PICC data), see
    /// [`super::sunscan::identify`].
    pub lookup: Option<Lookup>,
    /// `n` and `e` when both are what a tag writes (6 and 16 hex digits). Anything else is
    /// not an error here: for an authentication tag it is a failed authentication.
    pub sun: Option<Sun>,
    /// `r={token}` (checked against the folder's token; not validated here).
    pub token: Option<String>,
    /// `c` or `u` given without `a` (a missing parameter unless a template names the tag).
    pub lookup_without_aid: bool,
}

/// Why a query was refused before any lookup (the API's `error` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No `x`, no `c` and no `u`; or `c`/`u` without `a`.
    #[error("missing_parameter: no x, no c or u with a")]
    Missing,
    /// A parameter is repeated, badly percent-encoded, too long, or not of its form.
    #[error("malformed_parameter: a parameter is repeated, badly percent-encoded, too long or not of its form")]
    Malformed,
}

impl QueryError {
    /// The error code answered (`missing_parameter` or `malformed_parameter`).
    pub fn code(self) -> &'static str {
        match self {
            QueryError::Missing => "missing_parameter",
            QueryError::Malformed => "malformed_parameter",
        }
    }
}

/// The raw (percent-encoded) `key=value` pairs of a query, in order (also of a form body).
pub fn pairs(raw: &str) -> Vec<(&str, &str)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// A request's query, split once: its raw pairs (a batch template's own parameters are read
/// from these, [`crate::sun::Template::read_params`]), and the typed parameters or why they
/// are refused. Everything the decision, the rate limit and the log need of the query comes
/// from here.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    raw: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
    parsed: Result<Query, QueryError>,
}

impl<'a> ScanRequest<'a> {
    /// Splits and parses a raw query string (without the leading `?`).
    pub fn parse(raw: &'a str) -> ScanRequest<'a> {
        let pairs = pairs(raw);
        let parsed = if raw.len() > MAX_QUERY_LEN {
            Err(QueryError::Malformed)
        } else {
            parse_pairs(&pairs)
        };
        ScanRequest { raw, pairs, parsed }
    }

    /// The query as it arrived (percent-encoded, without `?`).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The typed parameters, or the error the API answers.
    pub fn query(&self) -> Result<&Query, QueryError> {
        self.parsed.as_ref().map_err(|e| *e)
    }

    /// The raw value of the first parameter called `name` (a template's parameter).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The single value of `key`, percent-decoded and not empty; `None` when it is absent,
    /// repeated or badly encoded, or the query is over [`MAX_QUERY_LEN`].
    fn one(&self, key: &str) -> Option<String> {
        if self.raw.len() > MAX_QUERY_LEN {
            return None;
        }
        let mut found = None;
        for (k, v) in &self.pairs {
            if *k == key {
                if found.is_some() {
                    return None;
                }
                found = Some(percent_decode(v)?);
            }
        }
        found.filter(|v| !v.is_empty())
    }

    /// The tag code the query names, if it is well-formed (kept in errors about other
    /// parameters).
    pub fn xuid(&self) -> Option<String> {
        self.one("x").filter(|x| valid_xuid(x))
    }

    /// The lookup id of a `c`/`u` lookup (a query with `a` and no tag code): a single
    /// well-formed `c` as `("cuid", c)`, else a single well-formed `u` as `("uid", u)`. Echoed
    /// on every answer to a `c` or `u` lookup, the answers to a refused query included (as the
    /// platform echoes `cuid` on its errors). Without `a`, `c` may be a template's own
    /// parameter (e.g. `?p={picc}&c={mac}`): see [`ScanRequest::echo_without_aid`].
    pub fn echo(&self) -> Option<(&'static str, String)> {
        if !self.pairs.iter().any(|(k, v)| *k == "a" && !v.is_empty()) {
            return None;
        }
        self.echo_without_aid()
    }

    /// [`ScanRequest::echo`] also for a query without `a` (a `c` or `u` lookup missing its
    /// account id, answered `missing_parameter` when no template names a tag).
    pub fn echo_without_aid(&self) -> Option<(&'static str, String)> {
        if self.raw.len() > MAX_QUERY_LEN {
            return None;
        }
        if self.pairs.iter().any(|(k, v)| *k == "x" && !v.is_empty()) {
            return None;
        }
        if self.pairs.iter().any(|(k, _)| *k == "c") {
            return self.one("c").filter(|c| valid_cuid(c)).map(|c| ("cuid", c));
        }
        self.one("u")
            .filter(|u| parse_uid(u).is_some())
            .map(|u| ("uid", u))
    }

    /// The raw `r=` token of the query (the first), for the rate limit's per-token count.
    pub fn token(&self) -> Option<&'a str> {
        self.param("r")
    }
}

/// Percent-decodes one query component (`+` is a space); `None` on a bad escape or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Some(s.to_string());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex_val(*b.get(i + 1)?)?;
                let lo = hex_val(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The raw (decoded) values of the parameters we know; others are ignored.
#[derive(Default)]
struct Raw {
    x: Option<String>,
    c: Option<String>,
    u: Option<String>,
    a: Option<String>,
    n: Option<String>,
    e: Option<String>,
    r: Option<String>,
}

fn set(slot: &mut Option<String>, v: String) -> Result<(), QueryError> {
    if slot.is_some() {
        return Err(QueryError::Malformed);
    }
    // An empty value counts as absent (`x=&n=…` is a missing tag code).
    if !v.is_empty() {
        *slot = Some(v);
    }
    Ok(())
}

/// A tag code in a query: the one tag-code rule ([`crate::tag_code`]), also applied at import.
pub fn valid_xuid(x: &str) -> bool {
    x.len() <= MAX_XUID_LEN && crate::tag_code::is_valid(x)
}

/// An account id: letters, digits, `-` and `_`.
pub fn valid_aid(a: &str) -> bool {
    valid_xuid(a) && a.len() <= MAX_AID_LEN
}

/// A custom id: up to 128 characters, no control characters (the one text rule).
pub fn valid_cuid(c: &str) -> bool {
    super::text::is_valid(c, MAX_CUID_LEN)
}

/// A token as it may be configured: alphanumeric, 1 to 32 characters.
pub fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// Parses a 14-digit uppercase hex UID.
pub fn parse_uid(u: &str) -> Option<[u8; 7]> {
    if u.len() != 14
        || !u
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
    {
        return None;
    }
    let mut out = [0u8; 7];
    hex::decode_to_slice(u, &mut out).ok()?;
    Some(out)
}

fn parse_ctr(n: &str) -> Option<u32> {
    if n.len() != 6 || !n.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(n, 16).ok()
}

fn parse_mac(e: &str) -> Option<[u8; 8]> {
    let mut out = [0u8; 8];
    if e.len() != 16 {
        return None;
    }
    hex::decode_to_slice(e, &mut out).ok()?;
    Some(out)
}

/// Parses a raw query string (without the leading `?`): [`ScanRequest::parse`]'s typed
/// parameters.
pub fn parse(raw: &str) -> Result<Query, QueryError> {
    ScanRequest::parse(raw).parsed
}

/// The typed parameters of a query's pairs.
///
/// Precedence when several lookups are present: `x`, then `c`+`a`, then `u`+`a`.
fn parse_pairs(pairs: &[(&str, &str)]) -> Result<Query, QueryError> {
    let mut p = Raw::default();
    for &(k, v) in pairs {
        let slot = match k {
            "x" => &mut p.x,
            "c" => &mut p.c,
            "u" => &mut p.u,
            "a" => &mut p.a,
            "n" => &mut p.n,
            "e" => &mut p.e,
            "r" => &mut p.r,
            _ => continue,
        };
        let v = percent_decode(v).ok_or(QueryError::Malformed)?;
        set(slot, v)?;
    }
    let mut lookup_without_aid = false;
    let lookup = if let Some(x) = p.x {
        if !valid_xuid(&x) {
            return Err(QueryError::Malformed);
        }
        Some(Lookup::Xuid(x))
    } else if let (Some(c), Some(aid)) = (&p.c, &p.a) {
        if !valid_cuid(c) || !valid_aid(aid) {
            return Err(QueryError::Malformed);
        }
        Some(Lookup::Cuid {
            cuid: c.clone(),
            aid: aid.clone(),
        })
    } else if let (Some(u), Some(aid)) = (&p.u, &p.a) {
        let uid = parse_uid(u).ok_or(QueryError::Malformed)?;
        if !valid_aid(aid) {
            return Err(QueryError::Malformed);
        }
        Some(Lookup::Uid {
            uid,
            aid: aid.clone(),
        })
    } else {
        lookup_without_aid = p.c.is_some() || p.u.is_some();
        None
    };
    let sun = match (
        p.n.as_deref().and_then(parse_ctr),
        p.e.as_deref().and_then(parse_mac),
    ) {
        (Some(ctr), Some(mac)) => Some(Sun { ctr, mac }),
        _ => None,
    };
    if p.r.as_ref().is_some_and(|r| r.len() > 4 * MAX_TOKEN_LEN) {
        return Err(QueryError::Malformed);
    }
    Ok(Query {
        lookup,
        sun,
        token: p.r,
        lookup_without_aid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let q = parse("x=q8w3sbcz&n=00002A&e=0123456789abcdef").unwrap();
        assert_eq!(q.lookup, Some(Lookup::Xuid("q8w3sbcz".into())));
        assert_eq!(q.sun.unwrap().ctr, 42);
        let q = parse("c=Bottle%2042&a=acme").unwrap();
        assert_eq!(
            q.lookup,
            Some(Lookup::Cuid {
                cuid: "Bottle 42".into(),
                aid: "acme".into()
            })
        );
        let q = parse("u=04AABBCC112233&a=acme&r=tok").unwrap();
        assert!(matches!(q.lookup, Some(Lookup::Uid { uid, .. }) if uid[0] == 4));
        assert_eq!(q.token.as_deref(), Some("tok"));
        assert_eq!(parse("x=a&x=b"), Err(QueryError::Malformed));
        assert_eq!(parse("").unwrap().lookup, None);
        assert_eq!(parse("x=").unwrap().lookup, None);
        assert!(parse("c=abc").unwrap().lookup_without_aid);
        assert_eq!(parse("u=04aabbcc112233&a=acme"), Err(QueryError::Malformed));
        // n and e that cannot be a scan are not parameter errors (the tag's Fail answers).
        assert_eq!(parse("x=a&n=00002A").unwrap().sun, None);
        assert_eq!(parse("x=a&n=2A&e=0123456789abcdef").unwrap().sun, None);
        assert_eq!(
            parse("x=q8w3sbcz&n=000001&e=abcde12345abcde1234")
                .unwrap()
                .sun,
            None
        );
        assert_eq!(parse("x=a%2"), Err(QueryError::Malformed));
        assert_eq!(parse("x=a%FF"), Err(QueryError::Malformed));
        assert_eq!(parse("x=a<b"), Err(QueryError::Malformed));
        assert!(parse("x=a&utm_source=z").is_ok());
        assert_eq!(
            ScanRequest::parse("x=abc&n=zz&n=yy").xuid().as_deref(),
            Some("abc")
        );
        assert_eq!(ScanRequest::parse("x=a<b").xuid(), None);
    }

    /// One split serves the typed query, a template's raw parameters, the echo and the token.
    #[test]
    fn one_split_serves_everything() {
        let s = ScanRequest::parse("p=%41B&c=Bottle%2042&a=acme&r=Tok1&p=x&flag");
        assert_eq!(s.param("p"), Some("%41B"));
        assert_eq!(s.param("flag"), Some(""));
        assert_eq!(s.param("q"), None);
        assert_eq!(s.token(), Some("Tok1"));
        assert_eq!(s.echo(), Some(("cuid", "Bottle 42".to_string())));
        assert!(matches!(
            s.query().unwrap().lookup,
            Some(Lookup::Cuid { .. })
        ));
        let s = ScanRequest::parse("p=00&c=0123456789abcdef");
        assert_eq!(s.echo(), None);
        assert_eq!(
            s.echo_without_aid(),
            Some(("cuid", "0123456789abcdef".to_string()))
        );
        assert!(s.query().unwrap().lookup_without_aid);
        let long = format!("x=abc&r=Tok1&{}", "z".repeat(MAX_QUERY_LEN));
        let s = ScanRequest::parse(&long);
        assert_eq!(s.query(), Err(QueryError::Malformed));
        assert_eq!((s.xuid(), s.echo()), (None, None));
        // The rate limit still sees the token of an over-long query, as before.
        assert_eq!(s.token(), Some("Tok1"));
    }
}
