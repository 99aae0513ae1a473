//! The `/auth` landing page: what a phone shows after tapping a tag. One self-contained HTML
//! document (inline CSS, no scripts, no external assets), sized for a phone.

use super::{errors, Answer, Outcome, PageShows, Reason};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Genuine, and this scan is new.
    Authentic,
    /// A genuine link seen before (a refresh, a re-opened tab): tap the tag again.
    AlreadyChecked,
    /// Altered, unknown, or older than one already accepted.
    NotAuthentic,
    /// The verifier cannot say (inactive, no key, not an authentication tag, busy).
    CannotCheck,
}

impl Verdict {
    fn headline(self) -> &'static str {
        match self {
            Verdict::Authentic => "Authentic",
            Verdict::AlreadyChecked => "Already checked",
            Verdict::NotAuthentic => "Not authentic",
            Verdict::CannotCheck => "Cannot check",
        }
    }

    /// Text colour, background, mark, `data-verdict` value.
    fn look(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Verdict::Authentic => ("#0b6b2e", "#e7f6ec", "&#10003;", "authentic"),
            Verdict::AlreadyChecked => ("#7a4a00", "#fff3d6", "&#8635;", "already-checked"),
            Verdict::NotAuthentic => ("#a11a1a", "#fbeaea", "&#10007;", "not-authentic"),
            Verdict::CannotCheck => ("#3d4350", "#eceef1", "?", "cannot-check"),
        }
    }
}

/// Verdict and explanation for an answer (plain words; never an error code).
pub fn explain(a: &Answer) -> (Verdict, String) {
    let ctr = |c: Option<u32>| c.map(|c| c.to_string()).unwrap_or_default();
    if a.passed {
        return (
            Verdict::Authentic,
            if a.read_limit.is_some() && a.read_limit == a.ctr {
                "This tag is genuine: its signature matches, and this scan is new. It was the tag's last read: it has reached its read limit and gives no new links.".into()
            } else {
                "This tag is genuine: its signature matches, and this scan is new.".into()
            },
        );
    }
    let not = |s: &str| (Verdict::NotAuthentic, s.to_string());
    let cannot = |s: &str| (Verdict::CannotCheck, s.to_string());
    match (&a.outcome, a.reason) {
        (Outcome::Error(e), _) => match *e {
            errors::MISSING_PARAMETER | errors::MALFORMED_PARAMETER => {
                not("The link is incomplete or damaged: it is not in the form a tag writes.")
            }
            errors::XUID_NOT_FOUND | errors::CUID_NOT_FOUND | errors::UID_NOT_FOUND
            | errors::AID_NOT_FOUND => not("This tag is not known to this verifier."),
            errors::FOLDER_INACTIVE | errors::TG_INACTIVE | errors::BATCH_INACTIVE
            | errors::TAG_INACTIVE => cannot("This tag has been switched off by its owner."),
            errors::STORE_UNAVAILABLE => {
                cannot("The verifier could not record the scan. Tap the tag again in a moment.")
            }
            _ => cannot("The verifier could not check this link."),
        },
        (_, Reason::Standard) => {
            cannot("This tag is known but carries no signature to check.")
        }
        (_, Reason::NoSun) => not(
            "The link has no signature: it was not read from the tag. Tap the tag itself.",
        ),
        (_, Reason::NoKey) => cannot("No key is loaded for this tag, so it cannot be checked."),
        (_, Reason::BadMac) | (_, Reason::BadSun) => {
            not("The signature does not match: the link was altered, or the tag is not genuine.")
        }
        (_, Reason::Replay) => (
            Verdict::AlreadyChecked,
            format!(
                "This link was checked before (counter {}). Each tap makes a new link that is checked once: tap the tag again.",
                ctr(a.ctr)
            ),
        ),
        (_, Reason::ReadLimit) => (
            Verdict::AlreadyChecked,
            format!(
                "This tag has reached its read limit ({} reads) and gives no new links, so it cannot be checked again. This link is its last read (counter {}): made by the genuine tag, not forged, and checked before.",
                ctr(a.read_limit),
                ctr(a.ctr)
            ),
        ),
        (_, Reason::OldCounter) => (
            Verdict::NotAuthentic,
            format!(
                "This link is older (counter {}) than one already checked (counter {}): it was copied or saved.",
                ctr(a.ctr),
                ctr(a.last_ctr)
            ),
        ),
        _ => cannot("The tag could not be checked."),
    }
}

/// The page shown to a client over the rate limit.
pub fn render_busy() -> String {
    page(
        Verdict::CannotCheck,
        "Too many checks from this network right now. Wait a moment and tap the tag again.",
        "",
    )
}

/// Renders the page for an answer.
pub fn render(a: &Answer) -> String {
    let (verdict, why) = explain(a);
    let mut rows = String::new();
    let mut row = |k: &str, v: &str| {
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(v)
        ))
    };
    // What the page may show of the tag: see `PageShows`.
    if !a.xuid.is_empty() && a.page_shows != PageShows::Verdict {
        row("Tag code", &a.xuid);
    }
    if let Some(c) = a.ctr {
        row("Counter", &c.to_string());
    }
    if a.page_shows != PageShows::Everything {
        return page(verdict, &why, &rows);
    }
    if a.scans > 0 || a.genuine > 0 {
        row("Genuine scans of this tag", &a.genuine.to_string());
        let rejected = a.scans.saturating_sub(a.genuine);
        if rejected > 0 {
            row("Rejected tries", &rejected.to_string());
        }
    }
    if let Outcome::Response(r) = &a.outcome {
        row("Result", r);
    }
    page(verdict, &why, &rows)
}

fn page(verdict: Verdict, why: &str, rows: &str) -> String {
    let headline = verdict.headline();
    let (color, bg, mark, id) = verdict.look();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{headline} · tag424</title>
<style>
body{{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;background:#f4f5f7;color:#1d1f23;hyphens:none;word-break:normal;overflow-wrap:normal}}
main{{max-width:30rem;margin:0 auto;padding:1.5rem 1rem}}
.card{{background:#fff;border-radius:1rem;box-shadow:0 1px 4px rgba(0,0,0,.12);overflow:hidden}}
.banner{{background:{bg};color:{color};text-align:center;padding:2rem 1rem 1.5rem}}
.mark{{font-size:4.5rem;line-height:1}}
h1{{font-size:2rem;margin:.5rem 0 0}}
p.why{{font-size:1.1rem;line-height:1.45;margin:1.25rem 1.25rem .5rem}}
table{{width:100%;border-collapse:collapse;margin:.5rem 0 1rem;font-size:1rem}}
th,td{{text-align:left;padding:.55rem 1.25rem;border-top:1px solid #eceef1;vertical-align:top}}
th{{color:#5b6170;font-weight:500;width:50%}}
td{{font-family:ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}}
footer{{text-align:center;color:#7a8090;font-size:.85rem;margin-top:1rem}}
</style></head>
<body><main><div class="card">
<div class="banner" id="result" data-verdict="{id}" data-authentic="{ok}"><div class="mark">{mark}</div><h1>{headline}</h1></div>
<p class="why">{why}</p>
<table>{rows}</table>
</div><footer>Checked by tag424 serve (local verifier)</footer></main></body></html>
"#,
        headline = escape(headline),
        why = escape(why),
        ok = verdict == Verdict::Authentic,
    )
}
