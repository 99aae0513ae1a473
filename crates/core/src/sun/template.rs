//! URL templates: where the chip mirrors what into the NDEF URL.
//!
//! A template is a URL with placeholders: `{xuid}` (static text, fixed per tag at encoding),
//! `{uid}` (14 hex), `{ctr}` (6 hex, MSB first), `{picc}` (32 hex, encrypted PICCData),
//! `{enc}` (encrypted file data, 32 hex by default), `{tt}` (the two TagTamper status
//! characters, NT4H2421Tx) and `{mac}` (16 hex SDMMAC). In LRP mode `{picc}` is 48 hex
//! (PICCRand and the encrypted block). The default is [`DEFAULT_TEMPLATE`].
//!
//! `{macstart}` is a zero-width marker: the SDMMAC input runs from it to `{mac}`. Without it
//! the input starts at `{enc}`, or is empty when there is no `{enc}` (the chip's
//! SDMMACInputOffset; NT4H2421Gx §9.3.6).

use std::fmt;

use super::params::Layout;
use crate::crypto::sdm::SdmMode;

/// The default SUN URL: tag code, counter and CMAC in the clear.
pub const DEFAULT_TEMPLATE: &str = "https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}";

/// `{uid}`: the 7-byte UID as 14 hex digits.
pub const UID_LEN: usize = 14;
/// `{ctr}`: SDMReadCtr as 6 hex digits, most significant first.
pub const CTR_LEN: usize = 6;
/// `{picc}` in AES mode: the encrypted PICCData block, 32 hex digits.
pub const PICC_LEN: usize = 32;
/// `{picc}` in LRP mode: PICCRand (8 bytes) and the encrypted block, 48 hex digits.
pub const PICC_LRP_LEN: usize = 48;
/// `{tt}`: TTPermStatus and TTCurrStatus as two ASCII characters (`C`, `O` or `I`).
pub const TT_LEN: usize = 2;
/// `{mac}`: the 8-byte SDMMAC as 16 hex digits.
pub const MAC_LEN: usize = 16;
/// Default length of the `{enc}` mirror: one encrypted block (16 bytes as 32 hex digits).
pub const ENC_LEN: usize = 32;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as it is.
    Literal(String),
    /// `{xuid}`: static text fixed per tag at encoding (the tag code).
    Xuid,
    /// `{uid}`: the plain UID mirror.
    Uid,
    /// `{ctr}`: the plain SDMReadCtr mirror.
    Ctr,
    /// `{picc}`: encrypted PICCData (UID and counter).
    Picc,
    /// `{enc}`: encrypted file data.
    Enc,
    /// `{tt}`: the TagTamper status (NT4H2421Tx).
    Tt,
    /// Zero-width: where the SDMMAC input starts.
    MacStart,
    /// `{mac}`: the SDMMAC.
    Mac,
}

impl Part {
    /// The placeholder as written (`{uid}`), `text` for a literal.
    pub fn name(&self) -> &'static str {
        match self {
            Part::Literal(_) => "text",
            Part::Xuid => "{xuid}",
            Part::Uid => "{uid}",
            Part::Ctr => "{ctr}",
            Part::Picc => "{picc}",
            Part::Enc => "{enc}",
            Part::Tt => "{tt}",
            Part::MacStart => "{macstart}",
            Part::Mac => "{mac}",
        }
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{0}}}: use {{xuid}}, {{uid}}, {{ctr}}, {{picc}}, {{enc}}, {{tt}}, {{macstart}} or {{mac}}"
    )]
    /// A `{name}` that is not a placeholder (the name).
    UnknownPlaceholder(String),
    /// A `{` without its `}` (character position).
    #[error("unclosed '{{' at character {0}")]
    Unclosed(usize),
    /// A placeholder given twice (its name).
    #[error("{0} appears more than once")]
    Repeated(&'static str),
    /// No `{mac}`: scans could not be verified.
    #[error("the template has no {{mac}}: without the SDMMAC a scan cannot be verified")]
    NoMac,
    /// `{picc}` together with `{uid}` or `{ctr}`.
    #[error("{{picc}} already carries the UID and counter encrypted; it cannot be combined with {{uid}} or {{ctr}}")]
    PiccWithPlainMirror,
    /// `{enc}` without both UID and counter mirrored.
    #[error("{{enc}} needs both the UID and the counter: add {{picc}}, or {{uid}} and {{ctr}}")]
    EncNeedsUidAndCtr,
    /// `{mac}` before a mirror it must follow.
    #[error("{{mac}} must come after {{enc}}, {{uid}}, {{ctr}} and {{picc}}")]
    MacNotLast,
    /// Two placeholders with nothing between them (their names).
    #[error("two placeholders touch ({0} then {1}): put at least one character between them")]
    Adjacent(&'static str, &'static str),
    /// The template does not start with `https://` or `http://`.
    #[error("the template must start with https:// or http://")]
    NotHttp,
    /// `{macstart}` inside the scheme, which the SDMMAC cannot cover.
    #[error("{{macstart}} must come after the scheme (https:// or http://): the chip stores the scheme as a one-byte code the SDMMAC does not cover")]
    MacStartInScheme,
    /// `{macstart}` after `{mac}` or after `{enc}`.
    #[error("{{macstart}} must come before {{mac}}, and before {{enc}} when there is one (the encrypted data lies inside the MAC input)")]
    MacStartMisplaced,
    /// `{tt}` outside the SDMMAC input.
    #[error("{{tt}} must lie inside the MAC input: put {{macstart}} before it and {{mac}} after it, or the tamper status could be forged")]
    TtOutsideMac,
}

/// A parsed URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
    /// The chip's mode, which sets the width of `{picc}` when the template is rendered.
    mode: SdmMode,
    /// The URL as a request to it carries it (for [`Template::read_params`]).
    layout: Layout,
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
    /// Parses a template and checks it against the chip's rules (see [`TemplateError`]).
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("{macstart}") {
            return Err(TemplateError::MacStartInScheme);
        }
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(TemplateError::NotHttp);
        }
        if let Some(i) = lower.find("{macstart}") {
            if i < lower.find("://").map_or(0, |c| c + 3) {
                return Err(TemplateError::MacStartInScheme);
            }
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
                "tt" => Part::Tt,
                "macstart" => Part::MacStart,
                "mac" => Part::Mac,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_string())),
            };
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            if parts.contains(&part) {
                return Err(TemplateError::Repeated(part.name()));
            }
            // {macstart} has no width: it may touch anything, and does not separate.
            if part != Part::MacStart {
                if let Some(prev) = parts.iter().rev().find(|p| **p != Part::MacStart) {
                    if !matches!(prev, Part::Literal(_)) {
                        return Err(TemplateError::Adjacent(prev.name(), part.name()));
                    }
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
        let layout = Layout::of(&parts);
        let t = Template {
            raw: s.to_string(),
            parts,
            mode: SdmMode::Aes,
            layout,
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
        let pos = |p: Part| t.parts.iter().position(|q| *q == p);
        if let Some(ms) = pos(Part::MacStart) {
            if ms > mac_pos || pos(Part::Enc).is_some_and(|e| e < ms) {
                return Err(TemplateError::MacStartMisplaced);
            }
        }
        if let Some(tt) = pos(Part::Tt) {
            if pos(Part::MacStart).is_none_or(|ms| ms >= tt) || tt > mac_pos {
                return Err(TemplateError::TtOutsideMac);
            }
        }
        Ok(t)
    }

    /// The same template for a chip in `mode` (sets the width of `{picc}` when rendering).
    pub fn with_mode(mut self, mode: SdmMode) -> Template {
        self.mode = mode;
        self
    }

    /// The chip mode this template renders for (AES unless [`Template::with_mode`] set it).
    pub fn mode(&self) -> SdmMode {
        self.mode
    }

    /// Width of `{picc}` in this template's mode.
    pub fn picc_len(&self) -> usize {
        match self.mode {
            SdmMode::Aes => PICC_LEN,
            SdmMode::Lrp => PICC_LRP_LEN,
        }
    }

    /// Characters each part takes in a rendered URL (`xuid` for `{xuid}`).
    fn width(&self, p: &Part, xuid: &str) -> usize {
        match p {
            Part::Literal(l) => l.len(),
            Part::Xuid => xuid.len(),
            Part::Uid => UID_LEN,
            Part::Ctr => CTR_LEN,
            Part::Picc => self.picc_len(),
            Part::Enc => ENC_LEN,
            Part::Tt => TT_LEN,
            Part::MacStart => 0,
            Part::Mac => MAC_LEN,
        }
    }

    /// The URL as a request to it carries it.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The parts in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// True when the template has this part.
    pub fn has(&self, p: &Part) -> bool {
        self.parts.contains(p)
    }

    /// The template as written.
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
                other => s.push_str(&"0".repeat(self.width(other, xuid))),
            }
        }
        s
    }

    /// Character offsets of each mirror (and of `{macstart}`, width 0) in
    /// [`Template::render`]'s output for `xuid`.
    pub fn offsets(&self, xuid: &str) -> Vec<(Part, usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        for p in &self.parts {
            let len = self.width(p, xuid);
            if !matches!(p, Part::Literal(_) | Part::Xuid) {
                out.push((p.clone(), pos, len));
            }
            pos += len;
        }
        out
    }
}
