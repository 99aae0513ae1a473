//! Dynamic Response subtags: `{xuid}`, `{scount}`, … in a response or an extended data value,
//! replaced in every answer. Names are case-insensitive (`{CUID}`). Responses are compiled
//! once (at start or when changed): an unknown subtag is an error then, so a placeholder never
//! reaches an answer.

use std::fmt::Write as _;

/// The subtags the verifier replaces (platform.md §2: those available to the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subtag {
    /// `{xuid}`: the tag code.
    Xuid,
    /// `{cuid}`: the custom id (empty when none).
    Cuid,
    /// `{uid}`: the UID as 14 uppercase hex digits (empty when unknown).
    Uid,
    /// `{scount}`: answers about this tag, this one included.
    Scount,
    /// `{ccount}`: the chip counter (0 when unknown).
    Ccount,
    /// `{folder}`: the folder's name.
    Folder,
    /// `{batch}`: the batch's name.
    Batch,
    /// `{taggroup}`: the tag group's name.
    TagGroup,
    /// `{tagname}`: TAGNAME (empty when none).
    TagName,
    /// `{randnum}`: a random number below 1,000,000.
    RandNum,
    /// `{randhex}`: 8 random lowercase hex digits.
    RandHex,
    /// `{dtcreated}`: when the tag was imported (UTC).
    DtCreated,
    /// Rule layering: the Tag Code's own Default Response.
    TagCodeDr,
}

const NAMES: [(&str, Subtag); 13] = [
    ("xuid", Subtag::Xuid),
    ("cuid", Subtag::Cuid),
    ("uid", Subtag::Uid),
    ("scount", Subtag::Scount),
    ("ccount", Subtag::Ccount),
    ("folder", Subtag::Folder),
    ("batch", Subtag::Batch),
    ("taggroup", Subtag::TagGroup),
    ("tagname", Subtag::TagName),
    ("randnum", Subtag::RandNum),
    ("randhex", Subtag::RandHex),
    ("dtcreated", Subtag::DtCreated),
    ("tagcodedr", Subtag::TagCodeDr),
];

/// Platform subtags that cannot be answered by an API (no browser, IP or device: platform.md
/// §2), or that belong to features this verifier does not have.
const NOT_ON_API: [&str; 13] = [
    "os",
    "browser",
    "countrycode",
    "timezone",
    "currency",
    "tzlocal",
    "cluster",
    "dtassigned",
    "nft_status",
    "nft_xowner",
    "nft_owner",
    "nft_contract",
    "nft_token",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Sub(Subtag),
}

/// Why a response text (or extended data value) does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The text breaks the text rule (too long, a control character).
    #[error(transparent)]
    Text(#[from] super::text::TextError),
    /// A `{` without its `}` (the response).
    #[error("response {response:?}: '{{' without '}}'")]
    Unclosed {
        /// The response text.
        response: String,
    },
    /// A platform subtag an API answer cannot fill (the subtag's name as given).
    #[error("subtag {{{subtag}}} is not available on the API (the platform has no browser, device or NFT data there)")]
    NotOnApi {
        /// The subtag's name, as written.
        subtag: String,
    },
    /// A subtag the platform does not have (the name as given).
    #[error("unknown subtag {{{subtag}}}: use {}", known_subtags())]
    Unknown {
        /// The subtag's name, as written.
        subtag: String,
    },
}

/// Every subtag the verifier replaces, as `{xuid} {cuid} …` (for [`ResponseError::Unknown`]).
fn known_subtags() -> String {
    NAMES
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A compiled response text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    segs: Vec<Seg>,
}

/// Longest response text, in characters.
pub const MAX_RESPONSE_LEN: usize = super::text::MAX_RESPONSE;

impl Response {
    /// Compiles `text`; the error names the offending subtag.
    pub fn parse(text: &str) -> Result<Response, ResponseError> {
        // Empty is a valid response here (an empty Default Response answers "").
        if !text.is_empty() {
            super::text::check("the response", text, MAX_RESPONSE_LEN)?;
        }
        let mut segs = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segs.push(Seg::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(ResponseError::Unclosed {
                    response: text.to_string(),
                });
            };
            let given = &after[..close];
            let name = given.to_ascii_lowercase();
            match NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, s)) => segs.push(Seg::Sub(*s)),
                None if NOT_ON_API.contains(&name.as_str()) || name.starts_with("nft_") => {
                    return Err(ResponseError::NotOnApi {
                        subtag: given.to_string(),
                    })
                }
                None => {
                    return Err(ResponseError::Unknown {
                        subtag: given.to_string(),
                    })
                }
            }
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segs.push(Seg::Lit(rest.to_string()));
        }
        Ok(Response { segs })
    }

    /// A response without subtags.
    pub fn literal(text: &str) -> Response {
        Response {
            segs: vec![Seg::Lit(text.to_string())],
        }
    }

    /// True when the response holds subtag `s`.
    pub fn uses(&self, s: Subtag) -> bool {
        self.segs.contains(&Seg::Sub(s))
    }

    /// The text with every subtag replaced.
    pub fn render(&self, ctx: &Context<'_>) -> String {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Sub(t) => ctx.write(*t, &mut out),
            }
        }
        out
    }
}

/// What subtags are replaced with, for one answer.
pub struct Context<'a> {
    /// The tag code.
    pub xuid: &'a str,
    /// The custom id.
    pub cuid: Option<&'a str>,
    /// The UID.
    pub uid: Option<[u8; 7]>,
    /// Answers about this tag, this one included.
    pub scount: u64,
    /// The chip's counter (the verified one, else the last accepted).
    pub ccount: Option<u32>,
    /// The folder's name.
    pub folder: &'a str,
    /// The batch's name.
    pub batch: &'a str,
    /// The tag group's name.
    pub taggroup: &'a str,
    /// TAGNAME.
    pub tagname: Option<&'a str>,
    /// When the tag was first imported (ms since the Unix epoch).
    pub created_ms: u64,
    /// `{tagcodedr}`: the Tag Code's Default Response, already rendered.
    pub tagcodedr: Option<&'a str>,
}

impl Context<'_> {
    fn write(&self, t: Subtag, out: &mut String) {
        match t {
            Subtag::Xuid => out.push_str(self.xuid),
            Subtag::Cuid => out.push_str(self.cuid.unwrap_or("")),
            Subtag::Uid => {
                if let Some(u) = self.uid {
                    out.push_str(&hex::encode_upper(u));
                }
            }
            Subtag::Scount => {
                let _ = write!(out, "{}", self.scount);
            }
            Subtag::Ccount => {
                let _ = write!(out, "{}", self.ccount.unwrap_or(0));
            }
            Subtag::Folder => out.push_str(self.folder),
            Subtag::Batch => out.push_str(self.batch),
            Subtag::TagGroup => out.push_str(self.taggroup),
            Subtag::TagName => out.push_str(self.tagname.unwrap_or("")),
            Subtag::RandNum => {
                let _ = write!(out, "{}", rand::random::<u32>() % 1_000_000);
            }
            Subtag::RandHex => {
                let _ = write!(out, "{:08x}", rand::random::<u32>());
            }
            Subtag::DtCreated => out.push_str(&super::timefmt::utc(self.created_ms)),
            Subtag::TagCodeDr => out.push_str(self.tagcodedr.unwrap_or("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtags_compile_and_render() {
        let ctx = Context {
            xuid: "q8w3sbcz",
            cuid: Some("C1"),
            uid: Some([4, 0xAA, 0xBB, 0xCC, 0x11, 0x22, 0x33]),
            scount: 123,
            ccount: Some(7),
            folder: "acme",
            batch: "b1",
            taggroup: "bottles",
            tagname: None,
            created_ms: 0,
            tagcodedr: None,
        };
        let r = Response::parse("Pass {scount} {XUID} {cuid} {uid} {ccount}").unwrap();
        assert_eq!(r.render(&ctx), "Pass 123 q8w3sbcz C1 04AABBCC112233 7");
        assert!(Response::parse("{dtcreated}")
            .unwrap()
            .render(&ctx)
            .starts_with("1970-01-01T"));
        let n = Response::parse("{randnum}").unwrap().render(&ctx);
        assert!(n.parse::<u32>().unwrap() < 1_000_000);
        let e = Response::parse("Hi {Nope}").unwrap_err();
        assert_eq!(
            e,
            ResponseError::Unknown {
                subtag: "Nope".into()
            }
        );
        assert!(e
            .to_string()
            .starts_with("unknown subtag {Nope}: use {xuid} {cuid} {uid} "));
        let e = Response::parse("{os}").unwrap_err();
        assert_eq!(
            e,
            ResponseError::NotOnApi {
                subtag: "os".into()
            }
        );
        assert!(e.to_string().contains("not available"));
        let e = Response::parse("Hi {xuid").unwrap_err();
        assert_eq!(e.to_string(), r#"response "Hi {xuid": '{' without '}'"#);
        assert!(matches!(e, ResponseError::Unclosed { response } if response == "Hi {xuid"));
        let e = Response::parse("a\nb").unwrap_err();
        assert!(
            matches!(&e, ResponseError::Text(t) if t.problem == crate::text::TextProblem::Control),
            "{e:?}"
        );
        assert_eq!(Response::parse("plain").unwrap().render(&ctx), "plain");
    }
}
