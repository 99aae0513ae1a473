//! The docs' examples run as written. A fenced block whose info string says `runnable`
//! (`sh runnable`, `toml runnable`) in docs/verifier.md, docs/operator-guide.md or
//! docs/readers.md is run here; every other block of those files says why not in an HTML
//! comment on the line before it (`<!-- not run: … -->`), so a new example is either run or
//! explained.
//!
//! Shell blocks run with bash (`set -euo pipefail`) in an empty temporary folder, `tag424` the
//! binary under test on PATH, a cleared environment (HOME and XDG_CONFIG_HOME inside the
//! folder, so no developer profile or setting reaches them), bounded in time. TOML blocks are
//! loaded by the real loaders: docs/verifier.md's by the verifier's config loader (with the
//! batch folder and CSV files it names made first), docs/operator-guide.md's as a profile by
//! `tag424 profile show`. docs/readers.md's runnable block starts its own pcscd with vpcd
//! readers: it runs where pcscd and vsmartcard-vpcd are installed (skipped otherwise, a
//! failure under CI=true).

mod run;
mod shellworld;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shellworld::World;

/// One fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// Line of its opening fence (1-based).
    line: usize,
    /// The first word of its info string (`sh`, `toml`, …; empty for none).
    lang: String,
    runnable: bool,
    /// The reason of a `<!-- not run: … -->` comment on the line before it.
    not_run: Option<String>,
    text: String,
}

fn doc(name: &str) -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        if let Some(info) = l.strip_prefix("```") {
            let mut words = info.split_whitespace();
            let lang = words.next().unwrap_or("").to_string();
            let runnable = words.any(|w| w == "runnable");
            let prev = if i > 0 { lines[i - 1].trim() } else { "" };
            let not_run = prev
                .strip_prefix("<!-- not run:")
                .and_then(|r| r.strip_suffix("-->"))
                .map(|r| r.trim().to_string());
            let start = i;
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            out.push(Block {
                line: start + 1,
                lang,
                runnable,
                not_run,
                text: body,
            });
        }
        i += 1;
    }
    out
}

fn runnable(name: &str, lang: &str) -> Vec<(usize, String)> {
    let (_, text) = doc(name);
    blocks(&text)
        .into_iter()
        .filter(|b| b.runnable && b.lang == lang)
        .map(|b| (b.line, b.text))
        .collect()
}

#[test]
fn every_example_is_run_or_says_why_not() {
    let mut bad = Vec::new();
    for name in ["verifier.md", "operator-guide.md", "readers.md"] {
        let (_, text) = doc(name);
        let bs = blocks(&text);
        assert!(!bs.is_empty(), "{name}: no blocks found");
        for b in bs {
            match (b.runnable, &b.not_run) {
                (true, None) if ["sh", "toml"].contains(&b.lang.as_str()) => {}
                (true, None) => bad.push(format!(
                    "docs/{name} line {}: `{} runnable`: only sh and toml blocks are run",
                    b.line, b.lang
                )),
                (false, Some(r)) if !r.is_empty() => {}
                (true, Some(_)) => bad.push(format!(
                    "docs/{name} line {}: marked runnable and not run",
                    b.line
                )),
                (false, _) => bad.push(format!(
                    "docs/{name} line {}: mark the block `{} runnable`, or say why it cannot run in a `<!-- not run: REASON -->` line before it",
                    b.line, b.lang
                )),
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn run_sh_blocks(name: &str, limit: Duration) -> Vec<(usize, String)> {
    let blocks = runnable(name, "sh");
    assert!(!blocks.is_empty(), "docs/{name}: no runnable shell block");
    let mut outputs = Vec::new();
    for (line, text) in blocks {
        let w = World::new();
        let (ok, out) = w.sh(&text, limit);
        assert!(
            ok,
            "docs/{name} line {line} failed:\n{text}\n--- output:\n{out}"
        );
        outputs.push((line, out));
    }
    outputs
}

#[test]
fn verifier_md_shell_examples_run() {
    let outs = run_sh_blocks("verifier.md", Duration::from_secs(120));
    // The first block's claims: a tap passes once, its replay fails.
    let (_, first) = &outs[0];
    let pass = first.find("\"response\":\"Pass\"");
    let fail = first.find("\"response\":\"Fail\"");
    assert!(
        pass.is_some() && fail.is_some() && pass < fail,
        "docs/verifier.md: Pass then Fail expected:\n{first}"
    );
}

#[test]
fn verifier_md_config_examples_load_with_the_config_loader() {
    use tag424::verifier::config::ConfigFile;
    let blocks = runnable("verifier.md", "toml");
    assert!(
        !blocks.is_empty(),
        "docs/verifier.md: no runnable TOML block"
    );
    for (line, text) in blocks {
        let w = World::new();
        // What the example names: a batch folder holding the tag it overrides, and the
        // Associate Data files of its other batches.
        w.encode_batch1();
        std::fs::write(
            w.path().join("spares-keys.csv"),
            "XUID,KEY\nspare001,00112233445566778899AABBCCDDEEFF\n",
        )
        .unwrap();
        std::fs::write(
            w.path().join("spares-associate.csv"),
            "XUID,UID\nspare001,04AABBCC112233\n",
        )
        .unwrap();
        std::fs::write(w.path().join("labels.csv"), "XUID,CUID\nlabel001,Shelf-A\n").unwrap();
        let p = w.path().join("verifier.toml");
        std::fs::write(&p, &text).unwrap();
        // It holds a token: owner-only, as the doc says.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let at = format!("docs/verifier.md line {line}");
        let cfg = ConfigFile::load(&p).unwrap_or_else(|e| panic!("{at}: {e}"));
        let cat = cfg.catalog(None).unwrap_or_else(|e| panic!("{at}: {e}"));
        cat.validate().unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(!cat.folders.is_empty(), "{at}: no folder");
    }
}

#[test]
fn operator_guide_shell_examples_run() {
    run_sh_blocks("operator-guide.md", Duration::from_secs(120));
}

#[test]
fn operator_guide_profile_examples_load_as_profiles() {
    let blocks = runnable("operator-guide.md", "toml");
    assert!(
        !blocks.is_empty(),
        "docs/operator-guide.md: no runnable TOML block"
    );
    for (line, text) in blocks {
        let w = World::new();
        std::fs::write(w.path().join("tag424.toml"), &text).unwrap();
        for args in [
            &["profile", "show"][..],
            &["profile", "show", "--command", "batch", "--json"],
        ] {
            let (code, shown, err) = run::output(w.tag424_with_profiles().args(args));
            assert_eq!(
                code, 0,
                "docs/operator-guide.md line {line}: tag424 {args:?}: {shown}{err}"
            );
            assert!(
                shown.contains("tag424.toml"),
                "the profile was not used: {shown}"
            );
        }
    }
}

/// Whether pcscd, the vpcd driver and systemd-socket-activate are here; without them the
/// readers.md steps are skipped on a dev machine and fail under CI=true.
fn pcsc_tools() -> bool {
    let have = |p: &str| {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(p).exists())
    };
    let ok = have("pcscd")
        && have("systemd-socket-activate")
        && Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: docs/readers.md's steps need pcscd, vsmartcard-vpcd and systemd-socket-activate"
        );
        eprintln!("skipped: pcscd, vsmartcard-vpcd or systemd-socket-activate is not installed");
    }
    ok
}

#[test]
fn readers_md_virtual_readers_run_as_written() {
    if !pcsc_tools() {
        return;
    }
    let outs = run_sh_blocks("readers.md", Duration::from_secs(120));
    let (_, out) = &outs[0];
    assert!(
        out.contains("Virtual PCD 00 00") && out.contains("3 tags encoded and verified"),
        "{out}"
    );
    assert_eq!(out.matches("done (verified)").count(), 3, "{out}");
}

/// The bash completion file's path, wherever the docs or `--help` name it.
#[test]
fn the_completion_paths_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let help = World::new().tag424(&["completions", "--help"]);
    let mut places = vec![("tag424 completions --help".to_string(), help)];
    for f in ["README.md", "docs/readers.md"] {
        places.push((
            f.to_string(),
            std::fs::read_to_string(root.join(f)).unwrap(),
        ));
    }
    let target = |text: &str, shell: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                let at = l.find(&format!("tag424 completions {shell} "))?;
                // The file it goes to: after `tee` (and its options) or a redirection.
                let words: Vec<&str> = l[at..].split_whitespace().collect();
                let i = words.iter().position(|w| ["tee", ">", ">>"].contains(w))?;
                let word = words[i + 1..].iter().find(|w| !w.starts_with('-'))?;
                Some(word.trim_matches(|c: char| "`|).,".contains(c)).to_string())
            })
            .collect()
    };
    for shell in ["bash", "zsh"] {
        let mut seen: Vec<(String, String)> = Vec::new();
        for (place, text) in &places {
            for t in target(text, shell) {
                seen.push((place.clone(), t));
            }
        }
        assert!(
            seen.len() >= 2,
            "{shell}: the completion path is named in fewer than two places: {seen:?}"
        );
        assert!(
            seen.iter().all(|(_, t)| t == &seen[0].1),
            "{shell}: the completion paths differ: {seen:?}"
        );
    }
    assert!(
        places
            .iter()
            .filter(|(_, t)| !target(t, "bash").is_empty())
            .count()
            == 3,
        "README.md, docs/readers.md and `completions --help` each name the bash path"
    );
}
