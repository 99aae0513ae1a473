//! The `/auth` landing page: what a phone shows after tapping a tag. One self-contained HTML
//! document (inline CSS, no scripts, no external assets), sized for a phone.

use super::{errors, Answer, Outcome, Reason};

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

/// Headline and explanation for an answer.
pub fn explain(a: &Answer) -> (bool, &'static str, String) {
    let ctr = |c: Option<u32>| c.map(|c| format!("{c:06X}")).unwrap_or_default();
    if a.passed {
        return (
            true,
            "Authentic",
            "This tag is genuine: its signature matches, and this scan is new.".into(),
        );
    }
    let why = match (&a.outcome, a.reason) {
        (Outcome::Error(e), _) => match *e {
            errors::MISSING_PARAMETER => {
                "The link is incomplete: it has no tag code, or a counter without a signature."
                    .into()
            }
            errors::MALFORMED_PARAMETER => {
                "The link is damaged: a parameter is not in the form a tag writes.".into()
            }
            errors::XUID_NOT_FOUND => "This tag code is not known to this verifier.".into(),
            errors::BATCH_INACTIVE => "This tag's batch is inactive.".into(),
            errors::STORE_UNAVAILABLE => {
                "The verifier could not record the scan; try again.".into()
            }
            other => format!("The verifier refused the request ({other})."),
        },
        (_, Reason::Standard) => {
            return (
                false,
                "Not an authentication tag",
                "This tag is known but carries no signature to check.".into(),
            )
        }
        (_, Reason::NoSun) => {
            "The link has no counter and signature: it was not read from the tag. Tap the tag itself."
                .into()
        }
        (_, Reason::NoKey) => "No key is loaded for this tag, so it cannot be checked.".into(),
        (_, Reason::BadMac) => {
            "The signature does not match: the link was altered, or the tag is not genuine.".into()
        }
        (_, Reason::Replay) => format!(
            "This link was already used (counter {}). Each tap makes a new link that is accepted once: tap the tag again.",
            ctr(a.ctr)
        ),
        (_, Reason::OldCounter) => format!(
            "This link is older (counter {}) than one already accepted (counter {}): it was copied or saved.",
            ctr(a.ctr),
            ctr(a.last_ctr)
        ),
        _ => "The tag could not be verified.".into(),
    };
    (false, "Not authentic", why)
}

/// Renders the page for an answer.
pub fn render(a: &Answer) -> String {
    let (ok, headline, why) = explain(a);
    let (color, bg, mark) = if ok {
        ("#0b6b2e", "#e7f6ec", "&#10003;")
    } else {
        ("#a11a1a", "#fbeaea", "&#10007;")
    };
    let mut rows = String::new();
    let mut row = |k: &str, v: &str| {
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(v)
        ))
    };
    if !a.xuid.is_empty() {
        row("Tag code", &a.xuid);
    }
    if let Some(c) = a.ctr {
        row("Counter", &format!("{c} ({c:06X})"));
    }
    if a.scans > 0 {
        row("Scans of this tag", &a.scans.to_string());
    }
    row("Result", a.text());
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{headline} · tag424</title>
<style>
body{{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;background:#f4f5f7;color:#1d1f23}}
main{{max-width:30rem;margin:0 auto;padding:1.5rem 1rem}}
.card{{background:#fff;border-radius:1rem;box-shadow:0 1px 4px rgba(0,0,0,.12);overflow:hidden}}
.banner{{background:{bg};color:{color};text-align:center;padding:2rem 1rem 1.5rem}}
.mark{{font-size:4.5rem;line-height:1}}
h1{{font-size:2rem;margin:.5rem 0 0}}
p.why{{font-size:1.1rem;line-height:1.45;margin:1.25rem 1.25rem .5rem}}
table{{width:100%;border-collapse:collapse;margin:.5rem 0 1rem;font-size:1rem}}
th,td{{text-align:left;padding:.55rem 1.25rem;border-top:1px solid #eceef1;vertical-align:top}}
th{{color:#5b6170;font-weight:500;width:45%}}
td{{font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}}
footer{{text-align:center;color:#7a8090;font-size:.85rem;margin-top:1rem}}
</style></head>
<body><main><div class="card">
<div class="banner" id="result" data-authentic="{ok}"><div class="mark">{mark}</div><h1>{headline}</h1></div>
<p class="why">{why}</p>
<table>{rows}</table>
</div><footer>Checked by tag424 serve (local verifier)</footer></main></body></html>
"#,
        headline = escape(headline),
        why = escape(&why),
    )
}
