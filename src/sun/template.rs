//! URL templates: where the chip mirrors what into the NDEF URL.
//!
//! A template is a URL with placeholders: `{xuid}` (static text, fixed per tag at encoding),
//! `{uid}` (14 hex), `{ctr}` (6 hex, MSB first), `{picc}` (32 hex, encrypted PICCData),
//! `{enc}` (encrypted file data, 32 hex by default) and `{mac}` (16 hex SDMMAC).
//! The default is [`DEFAULT_TEMPLATE`].

use std::fmt;

/// The default SUN URL: tag code, counter and CMAC in the clear.
pub const DEFAULT_TEMPLATE: &str = "https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}";

/// Length of each mirror in the URL (ASCII characters).
pub const UID_LEN: usize = 14;
pub const CTR_LEN: usize = 6;
pub const PICC_LEN: usize = 32;
pub const MAC_LEN: usize = 16;
/// Default length of the `{enc}` mirror: one encrypted block (16 bytes as 32 hex digits).
pub const ENC_LEN: usize = 32;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Xuid,
    Uid,
    Ctr,
    Picc,
    Enc,
    Mac,
}

impl Part {
    fn name(&self) -> &'static str {
        match self {
            Part::Literal(_) => "text",
            Part::Xuid => "{xuid}",
            Part::Uid => "{uid}",
            Part::Ctr => "{ctr}",
            Part::Picc => "{picc}",
            Part::Enc => "{enc}",
            Part::Mac => "{mac}",
        }
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{0}}}: use {{xuid}}, {{uid}}, {{ctr}}, {{picc}}, {{enc}} or {{mac}}"
    )]
    UnknownPlaceholder(String),
    #[error("unclosed '{{' at character {0}")]
    Unclosed(usize),
    #[error("{0} appears more than once")]
    Repeated(&'static str),
    #[error("the template has no {{mac}}: without the SDMMAC a scan cannot be verified")]
    NoMac,
    #[error("{{picc}} already carries the UID and counter encrypted; it cannot be combined with {{uid}} or {{ctr}}")]
    PiccWithPlainMirror,
    #[error("{{enc}} needs both the UID and the counter: add {{picc}}, or {{uid}} and {{ctr}}")]
    EncNeedsUidAndCtr,
    #[error("{{mac}} must come after {{enc}}, {{uid}}, {{ctr}} and {{picc}}")]
    MacNotLast,
    #[error("two placeholders touch ({0} then {1}): put at least one character between them")]
    Adjacent(&'static str, &'static str),
    #[error("the template must start with https:// or http://")]
    NotHttp,
}

/// A parsed URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

impl Default for Template {
    fn default() -> Self {
        Template::parse(DEFAULT_TEMPLATE).expect("the default template is valid")
    }
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let lower = s.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(TemplateError::NotHttp);
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        let mut consumed = 0;
        while let Some(i) = rest.find('{') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let j = after
                .find('}')
                .ok_or(TemplateError::Unclosed(consumed + i))?;
            let name = &after[..j];
            let part = match name {
                "xuid" => Part::Xuid,
                "uid" => Part::Uid,
                "ctr" => Part::Ctr,
                "picc" => Part::Picc,
                "enc" => Part::Enc,
                "mac" => Part::Mac,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_string())),
            };
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            if parts.contains(&part) {
                return Err(TemplateError::Repeated(part.name()));
            }
            if let Some(prev) = parts.last() {
                if !matches!(prev, Part::Literal(_)) {
                    return Err(TemplateError::Adjacent(prev.name(), part.name()));
                }
            }
            parts.push(part);
            consumed += i + 2 + j;
            rest = &after[j + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        let t = Template {
            raw: s.to_string(),
            parts,
        };
        let has = |p: Part| t.parts.contains(&p);
        if !has(Part::Mac) {
            return Err(TemplateError::NoMac);
        }
        if has(Part::Picc) && (has(Part::Uid) || has(Part::Ctr)) {
            return Err(TemplateError::PiccWithPlainMirror);
        }
        if has(Part::Enc) && !(has(Part::Picc) || (has(Part::Uid) && has(Part::Ctr))) {
            return Err(TemplateError::EncNeedsUidAndCtr);
        }
        let mac_pos = t.parts.iter().position(|p| *p == Part::Mac).unwrap_or(0);
        if t.parts[mac_pos..]
            .iter()
            .any(|p| matches!(p, Part::Uid | Part::Ctr | Part::Picc | Part::Enc))
        {
            return Err(TemplateError::MacNotLast);
        }
        Ok(t)
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn has(&self, p: &Part) -> bool {
        self.parts.contains(p)
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL for one tag: `{xuid}` filled in, every mirror as its placeholder run of `0`s
    /// (what is written to the tag before the chip mirrors over it).
    pub fn render(&self, xuid: &str) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => s.push_str(l),
                Part::Xuid => s.push_str(xuid),
                Part::Uid => s.push_str(&"0".repeat(UID_LEN)),
                Part::Ctr => s.push_str(&"0".repeat(CTR_LEN)),
                Part::Picc => s.push_str(&"0".repeat(PICC_LEN)),
                Part::Enc => s.push_str(&"0".repeat(ENC_LEN)),
                Part::Mac => s.push_str(&"0".repeat(MAC_LEN)),
            }
        }
        s
    }

    /// Character offsets of each mirror in [`Template::render`]'s output for `xuid`.
    pub fn offsets(&self, xuid: &str) -> Vec<(Part, usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        for p in &self.parts {
            let len = match p {
                Part::Literal(l) => l.len(),
                Part::Xuid => xuid.len(),
                Part::Uid => UID_LEN,
                Part::Ctr => CTR_LEN,
                Part::Picc => PICC_LEN,
                Part::Enc => ENC_LEN,
                Part::Mac => MAC_LEN,
            };
            if !matches!(p, Part::Literal(_) | Part::Xuid) {
                out.push((p.clone(), pos, len));
            }
            pos += len;
        }
        out
    }
}
