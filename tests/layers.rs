//! The layers of docs/architecture.md are what the compiler enforces: each crate of the
//! workspace depends only on the crates below it, and the protocol core pulls no runtime,
//! network, database, reader driver or terminal crate. Read from `cargo tree`, offline.

use std::process::Command;

/// `cargo tree` lines for `args`, one package name per line (duplicates removed).
fn tree(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_core_holds_no_runtime_network_database_reader_or_terminal_crate() {
    let deps = tree(&["-p", "tag424-core", "-e", "normal"]);
    let forbidden = [
        "tokio",
        "axum",
        "hyper",
        "rusqlite",
        "postgres",
        "tokio-postgres",
        "pcsc",
        "clap",
        "indicatif",
        "age",
        "serde_json",
        "csv",
        "tempfile",
        "tracing",
        // The originality check's elliptic curves are their own crate (tag424-originality),
        // and JSON shapes are a feature the upper layers turn on.
        "p224",
        "ecdsa",
        "serde",
    ];
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "tag424-core pulls {f}: {deps:?}"
        );
    }
    // What it holds: the RustCrypto set (AES, CBC, CMAC), hex, crc, subtle, zeroize, rand_core
    // (the authentication's randoms) and thiserror; their own crates; and the core itself.
    assert!(deps.len() <= 30, "{} packages: {deps:?}", deps.len());
}

/// Each crate's workspace dependencies, as drawn in docs/architecture.md.
#[test]
fn each_layer_depends_only_on_the_layers_below() {
    let allowed: [(&str, &[&str]); 7] = [
        ("tag424-core", &[]),
        ("tag424-originality", &[]),
        ("tag424-files", &[]),
        ("tag424-pcsc", &["tag424-core"]),
        (
            "tag424-sim",
            &["tag424-core", "tag424-originality", "tag424-files"],
        ),
        (
            "tag424-provision",
            &["tag424-core", "tag424-originality", "tag424-files"],
        ),
        (
            "tag424-verifier",
            &[
                "tag424-core",
                "tag424-originality",
                "tag424-files",
                "tag424-provision",
            ],
        ),
    ];
    for (krate, below) in allowed {
        let deps = tree(&["-p", krate, "-e", "normal"]);
        let ours: Vec<&String> = deps
            .iter()
            .filter(|d| d.starts_with("tag424") && d.as_str() != krate)
            .collect();
        assert!(
            ours.iter().all(|d| below.contains(&d.as_str())),
            "{krate} depends on {ours:?}; docs/architecture.md allows {below:?}"
        );
    }
}
