//! Only the binary prints (src/cli, src/main.rs): the library crates (crates/*/src) and the
//! binary package's own library (src/lib.rs) report through `tracing` or return typed errors.
//! A scan of the sources, so a `println!` added to a library fails here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod run;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(line number, line)` of each print macro in `text`, comment lines aside.
fn prints(text: &str) -> Vec<(usize, String)> {
    const MACROS: [&str; 4] = ["println!", "eprintln!", "print!", "eprint!"];
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let hit = MACROS.iter().any(|m| {
            code.match_indices(m).any(|(i, _)| {
                !code[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        });
        if hit {
            found.push((n + 1, line.to_string()));
        }
    }
    found
}

#[test]
fn the_scan_sees_every_print_macro() {
    let text = "let a = 1;\n    println!(\"x\");\neprint!(\"y\");\n// println!(\"in a comment\")\nstd::eprintln!(\"z\");\nmy_print!(1);\n";
    let lines: Vec<usize> = prints(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [2, 3, 5]);
}

#[test]
fn no_print_macro_in_the_library() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![repo.join("src/lib.rs")];
    rust_files(&repo.join("crates"), &mut files);
    files.retain(|f| !f.components().any(|c| c.as_os_str() == "target"));
    assert!(files.len() > 100, "the sources are found: {files:?}");
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(repo).unwrap();
        for (n, line) in prints(&std::fs::read_to_string(&f).unwrap()) {
            bad.push(format!("{}:{n}: {}", rel.display(), line.trim()));
        }
    }
    assert!(
        bad.is_empty(),
        "only the binary (src/cli, src/main.rs) prints; report through tracing or return an error:\n{}",
        bad.join("\n")
    );
}

/// The library's warnings still reach the operator, in the same words, through the binary's
/// tracing writer (src/cli/log.rs): a PostgreSQL password file others can read.
#[test]
fn a_library_warning_reaches_the_operator_in_the_same_words() {
    let sb = run::Sandbox::new();
    let pass = sb.path().join("pgpass");
    std::fs::write(&pass, "*:*:*:*:secret\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Port 1: nothing listens, the connection is refused after the password lookup.
    let (code, out, err) = run::output(
        sb.tag424()
            .args(["scans", "--db", "postgres://nobody@127.0.0.1:1/none"])
            .env("PGPASSFILE", &pass),
    );
    assert_ne!(code, 0, "{out}");
    let p = pass.display();
    assert!(
        err.lines().any(|l| l
            == format!(
                "warning: password file {p} is readable by others and was ignored: chmod 0600 {p}"
            )),
        "{err}"
    );
}
