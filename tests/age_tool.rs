//! Keys sealed by tag424 open with the distribution's `age` tool, and the other way round.
//! Without the `age` binary the test says "skipped"; under CI=true it fails.

use std::path::Path;
use std::process::Command;

use tag424::provision::sealed::{Identity, Recipients};

/// The `age` and `age-keygen` binaries, or `None` (skip) outside CI.
fn age_tool() -> Option<()> {
    let found = Command::new("age").arg("--version").output().is_ok()
        && Command::new("age-keygen").arg("--version").output().is_ok();
    if found {
        return Some(());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the age tool is missing under CI=true: install the distribution's `age` package");
    }
    eprintln!("skipped: the age tool is not installed (apt install age)");
    None
}

/// A fresh identity file from `age-keygen`, and its recipient.
fn keygen(dir: &Path) -> (std::path::PathBuf, String) {
    let path = dir.join("identity.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

#[test]
fn sealed_files_open_with_the_age_tool_and_back() {
    let Some(()) = age_tool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(dir.path());
    assert!(recipient.starts_with("age1"), "{recipient}");
    let plain = b"XUID,KEY\nq8w3sbcz,00112233445566778899AABBCCDDEEFF\n";

    // tag424 seals, age opens.
    let sealed = Recipients::parse(std::slice::from_ref(&recipient))
        .unwrap()
        .seal(plain)
        .unwrap();
    let file = dir.path().join("keys.csv.age");
    std::fs::write(&file, &sealed).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain);

    // age seals, tag424 opens.
    let by_age = dir.path().join("by-age.age");
    let mut child = Command::new("age")
        .arg("-r")
        .arg(&recipient)
        .arg("-o")
        .arg(&by_age)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), plain).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let id = Identity::load(&identity).unwrap();
    assert_eq!(
        &id.open(&std::fs::read(&by_age).unwrap()).unwrap()[..],
        plain
    );
}
