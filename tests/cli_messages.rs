//! What the CLI says: errors from a profile setting name the profile file and key, a reset of
//! a tag already in factory state says so, a failed export leaves nothing behind and says no
//! "Wrote", counts are singular for one, and the demo shows no path that it deletes.

use std::path::Path;
use std::process::Stdio;

mod run;

/// Runs tag424 hermetically (tests/run) in `dir`; `profile`: let it read `dir/tag424.toml`
/// (else `--no-profile`).
fn run(dir: &Path, profile: bool, args: &[&str]) -> (i32, String, String) {
    let sb = run::shared();
    let mut c = if profile {
        sb.tag424_with_profiles()
    } else {
        sb.tag424()
    };
    run::output(c.args(args).current_dir(dir).stdin(Stdio::null()))
}

/// A batch of one generated code from `reader` into `dir/o`, which must succeed: its stdout
/// and stderr.
fn batch_of_one(dir: &Path, reader: &str) -> (String, String) {
    let args = [
        "batch",
        "--reader",
        reader,
        "--generate-xuids",
        "1",
        "--out",
        "o",
    ];
    let (code, out, err) = run(dir, false, &args);
    assert_eq!(code, 0, "{err}");
    (out, err)
}

#[test]
fn an_error_from_a_profile_setting_names_the_profile_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A value the command itself refuses.
    std::fs::write(
        d.join("tag424.toml"),
        "[batch]\nreader = \"sim\"\nurl = \"https://x.example/{bogus}\"\n",
    )
    .unwrap();
    let (code, _, err) = run(d, true, &["batch", "--generate-xuids", "1", "--out", "o"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tag424.toml: [batch] `url` = \"https://x.example/{bogus}\": --url: unknown placeholder {bogus}"),
        "{err}"
    );
    assert!(err.contains("fix it there"), "{err}");
    // The command line wins, and then the profile is not blamed.
    let (code, _, err) = run(
        d,
        true,
        &[
            "batch",
            "--generate-xuids",
            "1",
            "--out",
            "o",
            "--url",
            "https://x.example/{nope}",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("tag424.toml"), "{err}");

    // A value clap refuses (not a number), top level.
    std::fs::write(d.join("tag424.toml"), "rate-limit = \"abc\"\n").unwrap();
    let (code, _, err) = run(d, true, &["serve"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tag424.toml: `rate-limit` = \"abc\": invalid value 'abc' for '--rate-limit"),
        "{err}"
    );
    // And one the command checks later.
    std::fs::write(d.join("tag424.toml"), "[serve]\nlisten = \"abc\"\n").unwrap();
    let (code, _, err) = run(d, true, &["serve"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tag424.toml: [serve] `listen` = \"abc\": --listen \"abc\""),
        "{err}"
    );
}

fn journal_lines(out: &Path) -> usize {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_reset_of_a_tag_already_in_factory_state_says_so_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    batch_of_one(d, "sim:tags");
    let reset = |tags: &str| run(d, false, &["reset", "--reader", tags, "--out", "o"]);
    let (code, out, err) = reset("sim:tags");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is back to factory keys and settings"),
        "{out}"
    );
    let lines = journal_lines(&d.join("o"));
    // Again: it is factory already.
    let (code, out, err) = reset("sim:tags");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is already in factory state (it was reset before): nothing to do"),
        "{out}"
    );
    assert_eq!(journal_lines(&d.join("o")), lines, "nothing journaled");
    // A factory tag this batch never saw: not "not a factory tag".
    let (code, _, err) = run(d, false, &["sim", "new", "--dir", "fresh"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = reset("sim:fresh");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("is already in factory state and was never encoded in o"),
        "{out}"
    );
    assert_eq!(journal_lines(&d.join("o")), lines);
}

#[test]
fn a_failed_export_writes_no_keys_and_says_no_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    batch_of_one(d, "sim");
    // associate.csv cannot be written (a folder stands in its place).
    std::fs::remove_file(d.join("o/associate.csv")).unwrap();
    std::fs::create_dir(d.join("o/associate.csv")).unwrap();
    let (code, out, err) = run(d, false, &["export", "--out", "o", "--to", "-"]);
    assert_ne!(code, 0);
    assert_eq!(out, "", "no key printed by a failed export");
    assert!(!err.contains("Wrote"), "{err}");
    let (code, out, err) = run(d, false, &["export", "--out", "o", "--to", "plain.csv"]);
    assert_ne!(code, 0);
    assert!(
        !out.contains("Wrote") && !err.contains("Wrote"),
        "{out}{err}"
    );
    assert!(!d.join("plain.csv").exists(), "no plain keys file left");
}

#[test]
fn one_is_singular_in_every_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (out, err) = batch_of_one(d, "sim");
    let (_, check, _) = run(d, false, &["journal", "check", "--out", "o"]);
    let (_, export, export_err) = run(d, false, &["export", "--out", "o"]);
    let (_, demo, _) = run(d, false, &["demo", "--tags", "1"]);
    let all = format!("{out}{err}{check}{export}{export_err}{demo}");
    for wrong in [
        "1 tags",
        "1 rows",
        "1 codes",
        "1 tag codes",
        "NTAG 424 DNA tags,",
    ] {
        assert!(!all.contains(wrong), "{wrong:?} in:\n{all}");
    }
    assert!(out.contains("New batch in o: 1 code"), "{out}");
    assert!(out.contains("Done: 1 tag encoded and verified"), "{out}");
    assert!(out.contains("keys.csv has 1 row:"), "{out}");
    assert!(check.contains("1 tag in o"), "{check}");
    assert!(
        demo.contains("1 blank simulated NTAG 424 DNA tag, 1 tag code"),
        "{demo}"
    );
}

#[test]
fn the_demo_shows_no_path_it_deletes_and_keep_keeps_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (code, out, err) = run(d, false, &["demo", "--tags", "1"]);
    assert_eq!(code, 0, "{err}");
    let temp = std::env::temp_dir();
    assert!(
        !out.contains(temp.to_str().unwrap()),
        "a temporary path is shown: {out}"
    );
    assert!(out.contains("removed"), "{out}");
    assert!(out.contains("--keep DIR"), "{out}");
    let (code, help, _) = run(d, false, &["demo", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("removed when the demo ends"), "{help}");
    // --keep DIR: the shown paths are DIR's and stay.
    let keep = d.join("kept");
    let (code, out, err) = run(d, false, &["demo", "--tags", "1", "--keep", "kept"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kept/batch/keys.csv has 1 row"), "{out}");
    assert!(keep.join("batch/keys.csv").is_file());
}

/// `--no-profile` means no profile, also with `TAG424_PROFILE` exported (the operator never
/// typed `--profile`: clap used to call the two a conflict).
#[test]
fn no_profile_wins_over_the_profile_variable() {
    let sb = run::Sandbox::new();
    let url_check = |no_profile: &[&str]| {
        run::output(
            sb.tag424_with_profiles()
                .env("TAG424_PROFILE", "nonexistent")
                .args(no_profile)
                .args(["url-check", "--json"]),
        )
    };
    let (code, _, err) = url_check(&["--no-profile"]);
    assert_eq!(code, 0, "{err}");
    // Without --no-profile the variable names a profile that does not exist: refused.
    assert_eq!(url_check(&[]).0, 2);
}
