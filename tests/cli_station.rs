//! The station features of the `tag424` binary: man pages, profiles, simulated reader latency.

use std::path::Path;

mod run;

/// `tag424 ARGS` in `dir`, hermetic (tests/run) but reading profiles: `dir/tag424.toml` and
/// named ones in `dir/config/tag424/profiles`.
fn tag424_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = run::shared().tag424_with_profiles();
    c.args(args).current_dir(dir);
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

fn rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().count() - 1
}

#[test]
fn a_profile_is_used_and_a_flag_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A named profile in the user's config folder.
    let profiles = d.join("config/tag424/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("line1.toml"),
        "reader = \"sim:tags\"\n[batch]\ngenerate-xuids = 3\nout = \"b1\"\ncount = 2\n",
    )
    .unwrap();
    let (code, out, err) = tag424_in(d, &["--profile", "line1", "batch"], &[]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(rows(&d.join("b1/keys.csv")), 2);
    // Flags win over the profile: another folder and reader, one tag.
    let (code, out, err) = tag424_in(
        d,
        &[
            "batch",
            "--profile",
            "line1",
            "--out",
            "b2",
            "--count",
            "1",
            "--reader",
            "sim:t2",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(rows(&d.join("b2/keys.csv")), 1);
    // A flag that conflicts with a profile option replaces it (a code list instead of generated codes).
    std::fs::write(d.join("codes.csv"), "XUID\nabc12345\n").unwrap();
    let (code, out, err) = tag424_in(
        d,
        &[
            "--profile",
            "line1",
            "batch",
            "--out",
            "b3",
            "--xuids",
            "codes.csv",
            "--reader=sim:t3",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out} {err}");
    assert!(std::fs::read_to_string(d.join("b3/keys.csv"))
        .unwrap()
        .contains("abc12345"));

    // ./tag424.toml is used without --profile; `profile show` names every source.
    std::fs::write(
        d.join("tag424.toml"),
        "[batch]\nout = \"local\"\njson = true\n",
    )
    .unwrap();
    let (code, out, err) = tag424_in(
        d,
        &["profile", "show", "--json"],
        &[("TAG424_READER", "sim:env")],
    );
    assert_eq!(code, 0, "{out} {err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["profile"], "tag424.toml");
    let batch = v["commands"]["batch"].as_array().unwrap();
    let find = |o: &str| batch.iter().find(|r| r["option"] == o).unwrap().clone();
    assert_eq!(find("out")["value"], "local");
    assert_eq!(find("out")["source"], "profile");
    assert_eq!(find("json")["value"], "on");
    assert_eq!(find("reader")["source"], "environment TAG424_READER");
    assert_eq!(find("url")["source"], "default");
    let (code, out, _) = tag424_in(d, &["profile", "show"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Profile: tag424.toml") && out.contains("--out"),
        "{out}"
    );

    // --no-profile ignores it; a missing profile and a typo are errors that name the fix.
    let (code, _, err) = tag424_in(d, &["--no-profile", "profile", "show"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tag424_in(d, &["--profile", "line2", "batch"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no profile line2") && err.contains("line1"),
        "{err}"
    );
    std::fs::write(d.join("tag424.toml"), "[batch]\nurll = \"x\"\n").unwrap();
    let (code, _, err) = tag424_in(
        d,
        &[
            "batch",
            "--reader",
            "sim:tags",
            "--generate-xuids",
            "1",
            "--out",
            "b4",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("has no option --urll") && err.contains("help:"),
        "{err}"
    );
    assert!(
        !d.join("b4").exists(),
        "nothing is created on a profile error"
    );
}

#[test]
fn a_simulated_reader_with_latency_encodes() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = tag424_in(
        tmp.path(),
        &[
            "batch",
            "--reader",
            "sim:tags?latency=2ms",
            "--generate-xuids",
            "2",
            "--out",
            "b",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(rows(&tmp.path().join("b/keys.csv")), 2);
    let (code, _, err) = tag424_in(
        tmp.path(),
        &[
            "batch",
            "--reader",
            "sim:tags?latency=soon",
            "--generate-xuids",
            "2",
            "--out",
            "c",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("latency") && err.contains("15ms"), "{err}");
    assert!(!tmp.path().join("c").exists());
}

/// Readers go by one number everywhere, from 0 as `tag424 readers` shows them: the station
/// view's lines (plain here, without a terminal) of the batch's first reader start `[0]`.
#[test]
fn the_station_view_numbers_readers_from_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = tag424_in(
        tmp.path(),
        &[
            "--no-profile",
            "batch",
            "--reader",
            "sim:a?latency=1ms",
            "--reader",
            "sim:b?latency=1ms",
            "--generate-xuids",
            "6",
            "--out",
            "b",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out} {err}");
    let verified: Vec<&str> = out.lines().filter(|l| l.contains("Verified")).collect();
    assert_eq!(verified.len(), 6, "{out}");
    assert!(
        verified
            .iter()
            .all(|l| l.starts_with("[0] ") || l.starts_with("[1] ")),
        "{out}"
    );
    assert!(verified.iter().any(|l| l.starts_with("[0] ")), "{out}");
    assert!(out.contains("Simulated reader"), "{out}");
}

/// Resuming a batch on the same simulated folder presents only the tags not done yet.
#[test]
fn resuming_on_simulated_tags_presents_no_finished_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = |count: Option<&str>| {
        let mut args = vec![
            "--no-profile",
            "batch",
            "--reader",
            "sim:tags",
            "--generate-xuids",
            "3",
            "--out",
            "b",
            "--json",
        ];
        if let Some(c) = count {
            args.extend(["--count", c]);
        }
        let (code, out, err) = tag424_in(tmp.path(), &args, &[]);
        assert_eq!(code, 0, "{out} {err}");
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    batch(Some("2"));
    let events = batch(None);
    let tags: Vec<_> = events.iter().filter(|e| e["event"] == "tag").collect();
    assert_eq!(tags.len(), 1, "only the one tag not done: {events:?}");
    assert_eq!(tags[0]["result"]["outcome"], "encoded");
    let summary = &events.last().unwrap()["summary"];
    assert_eq!(
        (summary["encoded"].as_u64(), summary["skipped"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(rows(&tmp.path().join("b/keys.csv")), 3);
}
