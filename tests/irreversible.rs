//! The irreversible options through the binary: `--dry-run` changes no tag and lists every
//! irreversible step; without a terminal an irreversible option needs `--yes-irreversible`
//! (one rule, LRP included); summary.json records the batch's options; a resume with other
//! options is refused, naming the fix.

mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sim_tags(sb: &run::Sandbox, n: usize) -> PathBuf {
    let tags = sb.path().join("tags");
    let (code, _, err) =
        run::output(
            sb.tag424()
                .args(["sim", "new", "--dir", s(&tags), "--count", &n.to_string()]),
        );
    assert_eq!(code, 0, "{err}");
    tags
}

const ALL_FLAGS: [&str; 3] = [
    "--lrp-irreversible",
    "--lock-ndef-permanently",
    "--freeze-settings",
];

#[test]
fn dry_run_changes_no_tag_and_lists_every_irreversible_step() {
    let sb = run::Sandbox::new();
    let tags = sim_tags(&sb, 2);
    let before = snapshot(&tags);
    let out = sb.path().join("out");
    let reader = format!("sim:{}", s(&tags));
    let base = [
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "2",
        "--out",
        s(&out),
        "--url",
        "https://a.example/?p={picc}&m={mac}",
        "--dry-run",
    ];
    let (code, stdout, err) = run::output(sb.tag424().args(base).args(ALL_FLAGS).arg("--json"));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["event"], "dry_run");
    assert_eq!(
        v["options"],
        serde_json::json!(["lrp", "lock-ndef", "freeze-settings"])
    );
    assert_eq!(
        v["irreversible_steps"],
        serde_json::json!(["switch-to-lrp", "lock"])
    );
    let steps = v["steps"].as_array().unwrap();
    let total: u64 = steps.iter().map(|s| s["exchanges"].as_u64().unwrap()).sum();
    assert_eq!(total, 23, "18 for LRP, 5 for the locks");
    assert_eq!(v["exchanges"], 23);
    let marks: Vec<String> = steps
        .iter()
        .flat_map(|s| s["irreversible"].as_array().unwrap().clone())
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    for flag in ALL_FLAGS {
        assert!(
            marks.iter().any(|m| m.starts_with(flag)),
            "{flag} in {marks:?}"
        );
    }
    // The text form says the same, before any real tag is touched.
    let (code, text, err) = run::output(sb.tag424().args(base).args(ALL_FLAGS));
    assert_eq!(code, 0, "{err}");
    assert_eq!(text.matches("IRREVERSIBLE").count(), 3, "{text}");
    assert!(text.contains("23 exchanges per fresh tag"), "{text}");
    // Without a reader or a confirmation, and no trace of it anywhere.
    let (code, _, err) = run::output(sb.tag424().args([
        "batch",
        "--generate-xuids",
        "1",
        "--out",
        s(&out),
        "--freeze-settings",
        "--lock-ndef-permanently",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.exists(), "no batch folder");
    assert_eq!(snapshot(&tags), before, "the reader's tags are unchanged");
    // url-check runs the same sequence.
    let (code, stdout, err) = run::output(sb.tag424().args([
        "url-check",
        "--url",
        "https://a.example/?p={picc}&m={mac}",
        "--lrp",
        "--dry-run",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        v["irreversible_steps"],
        serde_json::json!(["switch-to-lrp"])
    );
    assert_eq!(v["exchanges"], 18);
}

#[test]
fn an_irreversible_option_without_a_terminal_needs_the_flag() {
    let sb = run::Sandbox::new();
    let tags = sim_tags(&sb, 1);
    let before = snapshot(&tags);
    let out = sb.path().join("out");
    let reader = format!("sim:{}", s(&tags));
    for flags in [
        &["--lrp-irreversible"][..],
        &["--freeze-settings"],
        &["--lock-ndef-permanently", "--freeze-settings"],
    ] {
        let (code, _, err) = run::output(
            sb.tag424()
                .args(["batch", "--reader", &reader, "--generate-xuids", "1"])
                .args(["--out", s(&out)])
                .args(flags),
        );
        assert_eq!(code, 2, "{flags:?}: {err}");
        assert!(err.contains("no tag was touched"), "{err}");
        assert!(err.contains("add --yes-irreversible"), "{err}");
        assert!(err.contains(flags[0]), "names the option: {err}");
        assert!(!out.exists(), "{flags:?}: no folder");
    }
    // The lock alone is not permanent (key 0 could lift it): refused, naming the fix.
    let (code, _, err) = run::output(sb.tag424().args([
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "1",
        "--out",
        s(&out),
        "--lock-ndef-permanently",
        "--yes-irreversible",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("add --freeze-settings"), "{err}");
    assert!(!out.exists());
    assert_eq!(snapshot(&tags), before);
}

#[test]
fn summary_records_the_options_and_a_resume_with_others_is_refused() {
    let sb = run::Sandbox::new();
    let tags = sim_tags(&sb, 3);
    let out = sb.path().join("out");
    let reader = format!("sim:{}", s(&tags));
    let batch = |extra: &[&str]| {
        run::output(
            sb.tag424()
                .args(["batch", "--reader", &reader, "--generate-xuids", "3"])
                .args(["--out", s(&out), "--count", "2"])
                .args(extra),
        )
    };
    let locks = ["--lock-ndef-permanently", "--freeze-settings"];
    let (code, text, err) = batch(&[&locks[..], &["--yes-irreversible"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("Irreversible, on every tag of this batch:"),
        "{text}"
    );
    let summary = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
    };
    assert_eq!(summary()["summary"]["encoded"], 2);
    assert_eq!(
        summary()["summary"]["irreversible"],
        serde_json::json!(["lock-ndef", "freeze-settings"])
    );
    // `journal check` names them too, in words and in JSON.
    let (code, text, err) = run::output(sb.tag424().args(["journal", "check", "--out", s(&out)]));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("Options: --lock-ndef-permanently --freeze-settings (cannot be undone); no lifecycle option"),
        "{text}"
    );
    let (_, json, _) =
        run::output(
            sb.tag424()
                .args(["journal", "check", "--out", s(&out), "--json"]),
        );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["irreversible"],
        serde_json::json!(["lock-ndef", "freeze-settings"])
    );
    let journal = std::fs::read(out.join("journal.jsonl")).unwrap();
    for other in [
        &["--freeze-settings", "--yes-irreversible"][..],
        &[],
        &[
            "--lrp-irreversible",
            "--lock-ndef-permanently",
            "--freeze-settings",
            "--yes-irreversible",
        ],
    ] {
        let (code, _, err) = batch(other);
        assert_eq!(code, 2, "{other:?}: {err}");
        assert!(
            err.contains("was started with --lock-ndef-permanently --freeze-settings"),
            "{err}"
        );
        assert!(
            err.contains(
                "re-run with --lock-ndef-permanently --freeze-settings to resume this batch"
            ),
            "{err}"
        );
        assert_eq!(
            std::fs::read(out.join("journal.jsonl")).unwrap(),
            journal,
            "{other:?}: nothing journaled"
        );
    }
    // `tag424 encode` does not apply them: refused, naming the batch command.
    let (code, _, err) = run::output(sb.tag424().args([
        "encode",
        "--reader",
        &reader,
        "--xuid",
        "tagccccc",
        "--out",
        s(&out),
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("use `tag424 batch --out") && err.contains("--freeze-settings`"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("journal.jsonl")).unwrap(), journal);
    // The same options resume it.
    let (code, _, err) = batch(&[&locks[..], &["--yes-irreversible"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary()["summary"]["codes_used"], 3);
    assert_eq!(
        summary()["summary"]["irreversible"],
        serde_json::json!(["lock-ndef", "freeze-settings"])
    );
    // A batch without options records none, and refuses them on a resume.
    let plain = sb.path().join("plain");
    let tags2 = sb.path().join("tags2");
    let reader2 = format!("sim:{}", s(&tags2));
    let plain_batch = |extra: &[&str]| {
        run::output(
            sb.tag424()
                .args(["batch", "--reader", &reader2, "--generate-xuids", "2"])
                .args(["--out", s(&plain), "--count", "1"])
                .args(extra),
        )
    };
    let (code, _, err) = plain_batch(&[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plain.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["summary"]["irreversible"], serde_json::json!([]));
    let (code, _, err) = plain_batch(&["--freeze-settings", "--yes-irreversible"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("was started with no option; this run gives --freeze-settings"),
        "{err}"
    );
    assert!(err.contains("re-run without these options"), "{err}");
}

#[test]
fn on_a_terminal_the_word_is_typed() {
    // util-linux `script` gives the batch a terminal (a pty) whose input is ours.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        assert!(
            std::env::var_os("CI").is_none(),
            "`script` (util-linux) is needed under CI"
        );
        eprintln!("skipped: no `script` (util-linux) to give the batch a terminal");
        return;
    }
    let sb = run::Sandbox::new();
    let tags = sim_tags(&sb, 2);
    for (typed, code, folder) in [("LRP", 2, false), ("IRREVERSIBLE", 0, true)] {
        let out = sb.path().join(format!("out-{typed}"));
        let line = format!(
            "tag424 --no-profile batch --reader sim:{} --generate-xuids 1 --out {} --lrp-irreversible --url 'https://a.example/?p={{picc}}&m={{mac}}'",
            s(&tags),
            s(&out)
        );
        let mut child = sb
            .command("timeout")
            .args(["60", "script", "-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(format!("{typed}\n").as_bytes()).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Type IRREVERSIBLE to continue"),
            "{typed}: {text}"
        );
        assert_eq!(o.status.code(), Some(code), "{typed}: {text}");
        assert_eq!(out.exists(), folder, "{typed}: {text}");
        if code == 2 {
            assert!(text.contains("not confirmed: no tag was touched"), "{text}");
        }
    }
}
