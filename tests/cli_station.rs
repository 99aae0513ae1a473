//! The station features of the `tag424` binary: man pages, profiles, simulated reader latency.

use std::path::Path;
use std::process::Command;

fn tag424_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tag424"));
    c.args(args).current_dir(dir);
    for v in ["TAG424_KEY", "TAG424_READER", "TAG424_PROFILE"] {
        c.env_remove(v);
    }
    // The user's config folder is a temporary one: profiles are found there only when asked.
    c.env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn man_writes_a_page_per_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("man1");
    let (code, stdout, err) = tag424_in(tmp.path(), &["man", "--out", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stdout} {err}");
    let (_, help, _) = tag424_in(tmp.path(), &["--help"], &[]);
    // Every command that `--help` lists has its page, and so do nested ones.
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(
        commands.contains(&"batch") && commands.contains(&"man"),
        "{commands:?}"
    );
    let mut want: Vec<String> = commands.iter().map(|c| format!("tag424-{c}.1")).collect();
    want.extend(["tag424.1".into(), "tag424-sim-attach.1".into()]);
    for page in &want {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not a man page"
        );
    }
    assert!(stdout.contains("man pages"), "{stdout}");
    let batch = std::fs::read_to_string(out.join("tag424-batch.1")).unwrap();
    assert!(
        batch.contains("reader"),
        "the batch page documents its options"
    );
}
