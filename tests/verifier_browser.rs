//! The /auth landing page in a real browser: headless Chromium loads each verdict (genuine,
//! already checked, altered, unknown tag) from a verifier on a loopback port, takes a
//! phone-sized screenshot of each and dumps the DOM to check the visible words. Skips (with a
//! message) when /usr/bin/chromium is absent, fails under CI=true; `.ci/run` installs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tag424::crypto::sdm::sdm_mac;
use tag424::crypto::AesKey;
use tag424::verifier::catalog::{Batch, Catalog, Cors, Folder, Group, GroupKind, Tag};
use tag424::verifier::server;
use tag424::verifier::store::SqliteStore;
use tag424::verifier::Verifier;

const CHROMIUM: &str = "/usr/bin/chromium";
const KEY: [u8; 16] = [0x42; 16];
const XUID: &str = "q8w3sbcz";

fn catalog() -> Catalog {
    Catalog {
        folders: vec![Folder {
            name: "f".into(),
            aid: "local".into(),
            token: None,
            cors: Cors::None,
            groups: vec![Group {
                name: "g".into(),
                kind: GroupKind::Authentication,
                default_response: "Fail".into(),
                pass_response: "Pass".into(),
                batches: vec![Batch {
                    name: "b".into(),
                    active: true,
                    tags: vec![Tag {
                        key: Some(AesKey::new(KEY)),
                        ..Tag::new(XUID)
                    }],
                    ..Batch::default()
                }],
                ..Group::default()
            }],
            ..Folder::default()
        }],
    }
}

fn sun(ctr: u32) -> String {
    let mac = sdm_mac(&AesKey::new(KEY), None, Some(ctr), b"");
    format!("x={XUID}&n={ctr:06X}&e={}", hex::encode_upper(mac))
}

fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=412,915",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// The visible text of a dumped DOM: tags and the <style> block removed, entities decoded.
fn visible_text(html: &str) -> String {
    let body = html.split("</style>").last().unwrap_or(html);
    let mut out = String::new();
    let mut in_tag = false;
    for ch in body.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Screenshot of `url_for_shot` and visible text of `url_for_text` (two loads: each /auth
/// load is a scan, so a Pass needs two fresh counters).
fn look(dir: &Path, name: &str, url_for_shot: &str, url_for_text: &str) -> (PathBuf, String) {
    let shot = dir.join(format!("{name}.png"));
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(
        profile.path(),
        &[&format!("--screenshot={}", shot.display())],
        url_for_shot,
    );
    assert!(
        shot.exists(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = chromium(profile.path(), &["--dump-dom"], url_for_text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (shot, visible_text(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn auth_page_verdicts_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{CHROMIUM} is missing under CI=true");
        }
        println!("SKIPPED: {CHROMIUM} not found (apt-get install chromium; .ci/run installs it)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let v = Verifier::open(
        SqliteStore::open(&d.path().join("v.db")).unwrap(),
        Some(&catalog()),
        Cors::None,
    )
    .unwrap();
    let srv = rt
        .block_on(async {
            server::spawn(Arc::new(v), TcpListener::bind("127.0.0.1:0").unwrap(), None)
        })
        .unwrap();
    let base = format!("http://{}/auth?", srv.addr);
    // Screenshots where they can be looked at after the run; copies of a reviewed run are
    // kept in tests/screenshots/.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-browser");
    std::fs::create_dir_all(&shots).unwrap();

    // Genuine: two fresh taps (one for the screenshot, one for the text).
    let (genuine_png, genuine) = look(
        &shots,
        "genuine",
        &format!("{base}{}", sun(1)),
        &format!("{base}{}", sun(2)),
    );
    assert!(genuine.contains("Authentic"), "{genuine}");
    assert!(!genuine.contains("Not authentic"), "{genuine}");
    assert!(genuine.contains(XUID), "{genuine}");
    assert!(genuine.contains("Genuine scans of this tag 2"), "{genuine}");
    assert!(genuine.contains("Result Pass"), "{genuine}");

    // Already checked: the last genuine link refreshed (twice).
    let (again_png, again) = look(
        &shots,
        "already-checked",
        &format!("{base}{}", sun(2)),
        &format!("{base}{}", sun(2)),
    );
    assert!(again.contains("Already checked"), "{again}");
    assert!(again.contains("tap the tag again"), "{again}");
    assert!(!again.contains("Not authentic"), "{again}");
    assert!(again.contains("Genuine scans of this tag 2"), "{again}");
    // A refresh is not a tap: it counts as no scan (docs/verifier.md, "What a page view counts as").
    assert!(!again.contains("Rejected tries"), "{again}");

    // Altered: one digit of the signature changed.
    let mut altered = sun(3);
    altered.pop();
    altered.push('0');
    if altered == sun(3) {
        altered.pop();
        altered.push('1');
    }
    let (altered_png, alt) = look(
        &shots,
        "altered",
        &format!("{base}{altered}"),
        &format!("{base}{altered}"),
    );
    assert!(alt.contains("Not authentic"), "{alt}");
    assert!(alt.contains("altered"), "{alt}");

    // Unknown tag.
    let (unknown_png, unknown) = look(
        &shots,
        "unknown",
        &format!("{base}x=nosuchtag&n=000001&e=0011223344556677"),
        &format!("{base}x=nosuchtag&n=000001&e=0011223344556677"),
    );
    assert!(unknown.contains("Not authentic"), "{unknown}");
    assert!(unknown.contains("not known"), "{unknown}");

    for text in [&genuine, &again, &alt, &unknown] {
        // No raw error codes on the page.
        for code in [
            "_not_found",
            "bad_mac",
            "replay",
            "malformed",
            "_inactive",
            "error",
        ] {
            assert!(!text.contains(code), "{code} in {text}");
        }
    }
    for png in [&genuine_png, &again_png, &altered_png, &unknown_png] {
        let (w, h) = png_size(png);
        assert_eq!((w, h), (412, 915), "{}", png.display());
        assert!(std::fs::metadata(png).unwrap().len() > 5_000);
    }
    // Words are never broken inside: only codes (monospace cells) may wrap anywhere.
    let page = tag424::verifier::page::render_busy();
    assert!(!page.contains("break-all") && page.contains("hyphens:none"));
    println!("screenshots in {}", shots.display());
    rt.block_on(srv.stop(Duration::from_secs(5))).unwrap();
}
