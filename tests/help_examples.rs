//! Every example of every `--help` runs for real here where it can run on this machine without
//! hardware or a service: the commands are found by walking `tag424 --help` (its `Commands:`
//! sections), the examples are the `tag424 …` lines of each help's `Examples` section, and each
//! runs with bash in a fresh folder (`tests/shellworld`: cleared environment, own HOME) that
//! holds what the examples name: the simulated tags `tags` encoded as batch `batch1` with the
//! codes q8w3sbcz and m2k9xq4p, a profile `line1`, and the folders the completion examples write
//! into. An example that cannot run here is listed with its reason (`not_run`); every example,
//! run or not, is also parsed by the real command tree in `src/cli/help_tests.rs`.

mod run;
mod shellworld;

use std::time::Duration;

use shellworld::World;

fn help(path: &[String]) -> String {
    let w = World::new();
    let (code, out, _) = run::output(w.tag424_command().args(path).arg("--help"));
    assert_eq!(code, 0, "tag424 {path:?} --help failed");
    out
}

/// The names of a help's `Commands:` section (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in help.lines() {
        if l == "Commands:" {
            inside = true;
        } else if inside {
            if !l.starts_with("  ") {
                break;
            }
            if let Some(name) = l.split_whitespace().next() {
                if name != "help" {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// The `tag424 …` lines of a help's `Examples` section.
fn examples(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in help.lines() {
        if l.starts_with("Examples") {
            inside = true;
        } else if inside {
            let t = l.trim();
            if t.starts_with("tag424 ") || t.starts_with("sudo tag424 ") || t.contains("$(tag424 ")
            {
                out.push(t.to_string());
            }
        }
    }
    out
}

/// Every leaf command's path and its help text.
fn leaves() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        assert!(
            path.len() < 4,
            "command tree deeper than expected: {path:?}"
        );
        let h = help(&path);
        let subs = subcommands(&h);
        if subs.is_empty() {
            out.push((path, h));
        } else {
            for s in subs {
                let mut p = path.clone();
                p.push(s);
                todo.push(p);
            }
        }
    }
    out
}

/// Why an example does not run here, or `None` when it does.
fn not_run(line: &str) -> Option<&'static str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let pcsc_reader = words
        .windows(2)
        .any(|w| w[0] == "--reader" && !w[1].starts_with("sim"));
    if words.contains(&"sudo") {
        Some("writes system folders (sudo)")
    } else if pcsc_reader {
        Some("needs a PC/SC reader (docs/readers.md runs batch on a virtual one)")
    } else if words.get(1) == Some(&"readers") {
        Some("needs pcscd (docs/readers.md runs it next to a private pcscd)")
    } else if words.get(1) == Some(&"doctor") && !line.contains("--reader") {
        Some("checks every PC/SC reader: needs pcscd (tests/pcsc_doctor.rs runs it)")
    } else if words.get(1) == Some(&"serve") || line.contains("127.0.0.1:8424") {
        Some("runs a server until stopped (docs/verifier.md's first example runs it)")
    } else if words.get(2) == Some(&"attach") {
        Some("needs pcscd with the vpcd driver (docs/readers.md runs it)")
    } else if line.contains('…') || line.contains("04A1B2C3D4E5F6") || line.contains("tt-tags ") {
        Some("a placeholder: a scanned URL or a UID of the reader's user")
    } else if line.contains("/media/usb") {
        Some("a USB stick's folder")
    } else if words.get(1) == Some(&"scans") {
        Some("needs a verifier's database (docs/verifier.md's first example runs scans)")
    } else {
        None
    }
}

/// A folder with what the examples name: with `batch`, the simulated tags `tags` encoded as
/// `batch1` and q8w3sbcz's key in `key.txt`; with `encrypted`, also `batch3` encrypted to the
/// age identity `line1.identity`.
fn world(batch: bool, encrypted: bool) -> World {
    let w = World::new();
    let home = w.path().join(".home");
    for d in [
        ".zfunc",
        ".config/fish/completions",
        ".config/tag424/profiles",
    ] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    std::fs::write(
        home.join(".config/tag424/profiles/line1.toml"),
        "reader = \"sim:tags\"\n[batch]\nout = \"batch-{date}\"\n",
    )
    .unwrap();
    if batch {
        w.encode_batch1();
        let keys = std::fs::read_to_string(w.path().join("batch1/keys.csv")).unwrap();
        let key = keys
            .lines()
            .find_map(|l| l.strip_prefix("q8w3sbcz,"))
            .unwrap();
        tag424::private_fs::write_atomic(&w.path().join("key.txt"), key.as_bytes()).unwrap();
    }
    if encrypted {
        let (ok, out) = w.sh(
            "age-keygen -o line1.identity 2>/dev/null\n\
             tag424 --no-profile batch --reader sim:tags3 --generate-xuids 2 --out batch3 --encrypt-to \"$(age-keygen -y line1.identity)\"",
            Duration::from_secs(60),
        );
        assert!(ok, "an encrypted batch for the examples: {out}");
    }
    w
}

#[test]
fn every_help_example_that_can_run_here_runs() {
    let leaves = leaves();
    assert!(leaves.len() >= 20, "only {} leaf commands", leaves.len());
    let mut ran = 0;
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for (path, h) in &leaves {
        let ex = examples(h);
        assert!(
            !ex.is_empty(),
            "tag424 {}: --help has no example",
            path.join(" ")
        );
        // Commands that make their own tags or need none run in an empty folder, so a
        // simulated reader presents factory tags.
        let fresh = matches!(
            path[0].as_str(),
            "demo" | "batch" | "encode" | "url-check" | "completions" | "man" | "profile"
        ) || path == &["sim", "new"];
        for e in ex {
            if let Some(why) = not_run(&e) {
                skipped.push(format!("{e}\n    not run: {why}"));
                continue;
            }
            let w = world(!fresh, e.contains("line1.identity"));
            let (ok, out) = w.sh(&e, Duration::from_secs(60));
            ran += 1;
            if !ok {
                failed.push(format!(
                    "tag424 {} --help: `{e}` failed:\n{out}",
                    path.join(" ")
                ));
            }
        }
    }
    eprintln!("{ran} examples ran; not run here:\n{}", skipped.join("\n"));
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    assert!(ran >= 20, "only {ran} examples ran");
}
