//! Operator mistakes, made with the real binary: two runs on one folder, a forgotten reader,
//! read-only commands on batch folders, permissions, keys on the command line, used-up codes.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

mod run;

use run::BIN;

fn cmd() -> Command {
    let mut c = run::tag424();
    c.stdin(Stdio::null());
    c
}

fn tag424(args: &[&str]) -> (i32, String, String) {
    let out = cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn codes(dir: &Path, n: usize, prefix: &str) -> String {
    let p = dir.join(format!("{prefix}.csv"));
    let mut text = String::from("XUID\n");
    for i in 0..n {
        text.push_str(&format!("{prefix}{i:04}\n"));
    }
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.insert(p.display().to_string(), Vec::new());
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The tag codes planned in a journal, with their count.
fn planned_codes(journal: &Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "planned")
        .map(|v| v["xuid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_batches_on_one_folder_one_writes_the_other_is_refused() {
    for round in 0..4 {
        let tmp = tempfile::tempdir().unwrap();
        let list = codes(tmp.path(), 25, "par");
        let out = tmp.path().join("out");
        let o = out.to_str().unwrap();
        let spawn = |tags: &str| {
            let reader = format!("sim:{}", tmp.path().join(tags).display());
            cmd()
                .args(["batch", "--reader", &reader, "--xuids", &list, "--out", o])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = spawn("tags-a");
        let b = spawn("tags-b");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes_seen: Vec<i32> = vec![a.status.code().unwrap(), b.status.code().unwrap()];
        codes_seen.sort();
        let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            codes_seen,
            [0, 2],
            "round {round}: {}\n{}",
            err(&a),
            err(&b)
        );
        let loser = if a.status.code() == Some(2) { &a } else { &b };
        let e = err(loser);
        assert!(
            e.contains(&format!("{} is in use by process", out.display())) && e.contains(" since "),
            "round {round}: {e}"
        );
        let planned = planned_codes(&out.join("journal.jsonl"));
        let unique: HashSet<&String> = planned.iter().collect();
        assert_eq!(
            unique.len(),
            planned.len(),
            "a code planned twice: {planned:?}"
        );
        assert_eq!(planned.len(), 25);
        let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
        assert_eq!(keys.lines().count(), 26);
    }
}

#[test]
fn no_reader_is_an_error_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let list = codes(tmp.path(), 3, "nr");
    let d = tmp.path().join("D");
    let (code, _, err) = tag424(&["batch", "--xuids", &list, "--out", d.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no reader given"), "{err}");
    assert!(err.contains("--reader sim:DIR"), "{err}");
    assert!(!d.exists(), "the folder was created");
    for args in [
        vec!["encode", "--xuid", "nr0000", "--out", d.to_str().unwrap()],
        vec!["reset", "--out", d.to_str().unwrap()],
        vec!["info"],
    ] {
        let (code, _, err) = tag424(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!d.exists(), "{args:?} created the folder");
    }
    assert!(!Path::new("simulated-tags").exists());
}

#[test]
fn read_only_commands_change_no_byte_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let reader = format!("sim:{}", tags.display());
    let (_, uid, _) = tag424(&["sim", "new", "--dir", tags.to_str().unwrap()]);
    let uid = uid.trim().to_string();
    let missing = tmp.path().join("missing");
    let (code, _, err) = tag424(&[
        "info",
        "--reader",
        &reader,
        "--uid",
        &uid,
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!missing.exists(), "info created the folder");
    let (code, _, _) = tag424(&["sim", "list", "--dir", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(!missing.exists(), "sim list created the folder");

    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let (code, _, err) = tag424(&[
        "encode", "--xuid", "ro0001", "--reader", &reader, "--uid", &uid, "--out", o,
    ]);
    assert_eq!(code, 0, "{err}");
    // A torn last line must be reported, not healed, by a read-only command.
    let mut j = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut j, b"{\"event\":\"pla").unwrap();
    let before = snapshot(&out);
    for _ in 0..2 {
        let (code, info, err) = tag424(&[
            "info", "--reader", &reader, "--uid", &uid, "--out", o, "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(info.contains("ro0001"), "{info}");
    }
    let (code, list, _) = tag424(&["journal", "check", "--out", o]);
    assert_eq!(code, 0, "{list}");
    assert!(list.contains("ro0001") && list.contains("torn"), "{list}");
    // serve --batch reads the folder into its own database.
    let db = tmp.path().join("v.db");
    let mut child = cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--batch", o, "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines
        .map_while(Result::ok)
        .any(|l| l.contains("listening on "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "serve started");
    assert_eq!(
        before,
        snapshot(&out),
        "a read-only command changed the batch folder"
    );
}

#[cfg(unix)]
#[test]
fn everything_key_bearing_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("new/out");
    let trace = tmp.path().join("trace.apdu");
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        "sim",
        "--generate-xuids",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--trace-keys",
    ]);
    assert_eq!(code, 0, "{err}");
    let db = tmp.path().join("v.db");
    let mut child = cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--batch"])
        .arg(&out)
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines
        .map_while(Result::ok)
        .any(|l| l.contains("listening on ")));
    let _ = child.kill();
    let _ = child.wait();

    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    let mut listing = Vec::new();
    let mut stack = vec![tmp.path().join("new")];
    while let Some(d) = stack.pop() {
        listing.push((d.clone(), mode(&d)));
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                listing.push((p.clone(), mode(&p)));
            }
        }
    }
    for f in std::fs::read_dir(tmp.path()).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("v.db") || name == "trace.apdu" {
            listing.push((p.clone(), mode(&p)));
        }
    }
    let names: Vec<String> = listing
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "out",
        "simulated-tags",
        "journal.jsonl",
        "keys.csv",
        "associate.csv",
        "summary.json",
        "codes.csv",
        "tag424.lock",
        "v.db",
        "trace.apdu",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for (p, m) in &listing {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{} is {m:o}", p.display());
    }
    assert!(
        names.iter().filter(|n| n.ends_with(".json")).count() >= 3,
        "two simulated tags and summary.json: {names:?}"
    );
}

#[test]
fn keys_are_never_taken_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let url = "https://yourdomain.com/auth?x=abc&n=000001&e=0000000000000000";
    for (flag, file_flag, env) in [
        ("--key", "--key-file", "TAG424_KEY"),
        ("--meta-key", "--meta-key-file", "TAG424_META_KEY"),
    ] {
        let (code, _, err) = tag424(&["verify", url, flag, "00000000000000000000000000000000"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(file_flag) && err.contains(env), "{err}");
    }
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        "sim",
        "--generate-xuids",
        "1",
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--master-key-env",
        "00000000000000000000000000000000",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--master-key-file") && err.contains("TAG424_MASTER_KEY"),
        "{err}"
    );
    assert!(!tmp.path().join("o").exists());
    // A key file works.
    let key = tmp.path().join("k");
    tag424::private_fs::write_atomic(&key, b"00000000000000000000000000000000\n").unwrap();
    let (code, out, err) = tag424(&["verify", url, "--key-file", key.to_str().unwrap()]);
    assert_eq!(code, 1, "not genuine, but the key was read: {out}{err}");
    assert!(out.contains("NOT GENUINE"), "{out}");
}

#[test]
fn a_batch_ends_when_its_codes_are_used_up() {
    let tmp = tempfile::tempdir().unwrap();
    let list = codes(tmp.path(), 1, "one");
    let out = tmp.path().join("out");
    let (code, stdout, err) = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", tmp.path().join("tags").display()),
        "--xuids",
        &list,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("New batch in"), "{stdout}");
    assert!(stdout.contains("Simulated reader"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["simulated"], true);
    assert_eq!(summary["summary"]["encoded"], 1);
    assert_eq!(summary["summary"]["codes_left"], 0);
    // Resuming says so; another list is refused without --add-codes.
    let (code, stdout, _) = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", tmp.path().join("tags").display()),
        "--xuids",
        &list,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!(
            "Resuming {}: 1 of 1 code used, 0 left",
            out.display()
        )),
        "{stdout}"
    );
    let other = codes(tmp.path(), 2, "two");
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", tmp.path().join("tags").display()),
        "--xuids",
        &other,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("another code list") && err.contains("--add-codes"),
        "{err}"
    );
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", tmp.path().join("tags").display()),
        "--xuids",
        &other,
        "--add-codes",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert_eq!(keys.lines().count(), 4, "{keys}");
}

#[test]
fn a_torn_journal_is_healed_with_a_note_and_a_damaged_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let reader = format!("sim:{}", tmp.path().join("tags").display());
    let list = codes(tmp.path(), 3, "heal");
    let batch = |count: &str| {
        tag424(&[
            "batch", "--reader", &reader, "--xuids", &list, "--out", o, "--count", count,
        ])
    };
    assert_eq!(batch("1").0, 0);
    let journal = out.join("journal.jsonl");
    let mut text = std::fs::read(&journal).unwrap();
    text.extend_from_slice(b"{\"event\":\"planned\",\"uid\":\"04");
    std::fs::write(&journal, &text).unwrap();
    let (code, _, err) = batch("1");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("cut short") && err.contains("journal.torn-"),
        "{err}"
    );
    // A damaged line in the middle: exit 3, the line named, `journal check` offered.
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.insert_str(text.find('\n').unwrap() + 1, "garbage\n");
    std::fs::write(&journal, &text).unwrap();
    let (code, _, err) = batch("1");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("line 2") && err.contains("tag424 journal check"),
        "{err}"
    );
    let (code, list, _) = tag424(&["journal", "check", "--out", o]);
    assert_eq!(code, 3);
    assert!(list.contains("DAMAGED line 2"), "{list}");
}

#[test]
fn code_lists_need_their_header_and_codes_never_start_like_formulas() {
    let tmp = tempfile::tempdir().unwrap();
    let reader = format!("sim:{}", tmp.path().join("tags").display());
    let out = tmp.path().join("out");
    for (text, want) in [
        ("Code\nabc1\n", "no XUID column"),
        ("XUID\n-A1\n", "never"),
        ("XUID\n=1+1\n", "letters and digits"),
    ] {
        let f = tmp.path().join("list.csv");
        std::fs::write(&f, text).unwrap();
        let (code, _, err) = tag424(&[
            "batch",
            "--reader",
            &reader,
            "--xuids",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(
            err.contains(want) || err.contains("after the first"),
            "{text}: {err}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn reset_keeps_the_code_unless_told_to_reuse_it() {
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let reader = format!("sim:{}", tags.display());
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let list = codes(tmp.path(), 2, "rc");
    let (code, _, err) = tag424(&[
        "batch", "--reader", &reader, "--xuids", &list, "--out", o, "--count", "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let uid = std::fs::read_to_string(out.join("associate.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let (code, said, err) = tag424(&[
        "reset",
        "--reader",
        &reader,
        "--uid",
        &uid,
        "--out",
        o,
        "--reuse-code",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("row left keys.csv") && said.contains("free"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("keys.csv"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // The same tag takes its code again.
    let (code, _, err) = tag424(&[
        "batch", "--reader", &reader, "--xuids", &list, "--out", o, "--count", "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let assoc = std::fs::read_to_string(out.join("associate.csv")).unwrap();
    assert!(assoc.contains(&format!("rc0000,{uid}")), "{assoc}");
}

/// A full disk, for real: the batch runs with a file-size limit (`ulimit -f`, SIGXFSZ
/// ignored, so a write past it is cut short and the next fails with EFBIG, as on a full
/// disk). The journal write that fails is cut back to the last whole record (nothing for
/// another reader's record to join onto), the run stops, and a run without the limit finishes
/// every tag, the interrupted one included, with no torn line to heal.
#[test]
fn a_full_disk_stops_the_run_and_leaves_a_whole_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let (tags, out) = (tmp.path().join("tags"), tmp.path().join("out"));
    let (t, o) = (tags.to_str().unwrap(), out.to_str().unwrap());
    let list = codes(tmp.path(), 12, "full");
    let batch = [
        "batch",
        "--reader",
        &format!("sim:{t}"),
        "--xuids",
        &list,
        "--out",
        o,
        "--no-profile",
    ];
    // 2 KiB: the simulated tags' files (under 2 KiB each) fit, the journal does not.
    let out_limited = run::shared()
        .command("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 2; exec "$@""#)
        .arg("bash")
        .arg(BIN)
        .args(batch)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out_limited.stderr).into_owned();
    assert_ne!(out_limited.status.code(), Some(0), "{said}");
    assert!(said.contains("journal"), "{said}");
    let journal = std::fs::read(out.join("journal.jsonl")).unwrap();
    assert!(
        journal.len() <= 2048 && journal.len() > 400,
        "{}",
        journal.len()
    );
    assert_eq!(journal.last(), Some(&b'\n'), "a partial record was left");
    for line in journal.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde_json::Value>(line).unwrap();
    }

    let (code, stdout, stderr) = tag424(&batch);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stderr.contains("torn"), "{stderr}");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("journal.torn")),
        "{names:?}"
    );
    let keys = std::fs::read_to_string(out.join("keys.csv")).unwrap();
    assert_eq!(keys.lines().count(), 13, "{keys}");
}

#[test]
fn out_naming_a_file_or_a_folder_of_other_files_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let list = codes(tmp.path(), 2, "of");
    let reader = format!("sim:{}", tmp.path().join("tags").display());
    let batch = |out: &Path| {
        // Fresh simulated tags for each folder.
        let reader = format!("sim:{}", out.with_extension("tags").display());
        tag424(&[
            "batch",
            "--reader",
            &reader,
            "--xuids",
            &list,
            "--out",
            out.to_str().unwrap(),
            "--no-profile",
        ])
    };
    // A file: said to be a file, not "wait for that run".
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let (code, _, err) = batch(&file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a file"), "{err}");
    assert!(!err.contains("wait for that run"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // A folder of other files: refused, nothing added to it (no lock file).
    let docs = tmp.path().join("documents");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("letter.odt"), "x").unwrap();
    let before = snapshot(&docs);
    let (code, _, err) = batch(&docs);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not a tag424 batch folder") && err.contains("letter.odt"),
        "{err}"
    );
    assert!(err.contains("new folder"), "{err}");
    assert_eq!(before, snapshot(&docs), "the folder was written");
    // The other commands that write a batch folder say the same.
    let (code, _, err) = tag424(&[
        "encode",
        "--xuid",
        "of0000",
        "--reader",
        &reader,
        "--out",
        docs.to_str().unwrap(),
        "--no-profile",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a tag424 batch folder"), "{err}");
    assert_eq!(before, snapshot(&docs));
    // An empty folder is fine (a file manager's .DS_Store too), and a new one is made
    // owner-only.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join(".DS_Store"), "").unwrap();
    let (code, _, err) = batch(&empty);
    assert_eq!(code, 0, "{err}");
    let new = tmp.path().join("new");
    let (code, _, err) = batch(&new);
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

#[test]
fn the_same_reader_twice_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let list = codes(tmp.path(), 2, "tw");
    let out = tmp.path().join("out");
    let tags = tmp.path().join("tags");
    for readers in [
        // The folder's default simulated tags, named both ways.
        vec![
            "sim".to_string(),
            format!("sim:{}", out.join("simulated-tags").display()),
        ],
        // One folder written two ways.
        vec![
            format!("sim:{}", tags.display()),
            format!("sim:{}/", tags.display()),
        ],
    ] {
        let mut args = vec!["batch"];
        for r in &readers {
            args.extend(["--reader", r]);
        }
        args.extend([
            "--xuids",
            &list,
            "--out",
            out.to_str().unwrap(),
            "--no-profile",
        ]);
        let (code, _, err) = tag424(&args);
        assert_eq!(code, 2, "{readers:?}: {err}");
        assert!(err.contains("twice"), "{readers:?}: {err}");
        assert!(!out.exists(), "{readers:?}: the folder was created");
        assert!(!tags.exists(), "{readers:?}: the tags folder was created");
    }
}

/// Runs `batch` on a code list of `text` (with `--no-header` when asked); checks it is
/// refused (exit 2) with `want` in the message and no folder made.
fn refused_list(text: &str, no_header: bool, want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let reader = format!("sim:{}", tmp.path().join("tags").display());
    let out = tmp.path().join("out");
    let f = tmp.path().join("list.csv");
    std::fs::write(&f, text).unwrap();
    let mut args = vec![
        "batch",
        "--reader",
        &reader,
        "--xuids",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-profile",
    ];
    if no_header {
        args.push("--no-header");
    }
    let (code, _, err) = tag424(&args);
    assert_eq!(code, 2, "{text:?}: {err}");
    assert!(err.contains(want), "{text:?}: {err}");
    assert!(!out.exists(), "{text:?}");
}

#[test]
fn a_semicolon_separated_code_list_is_named_so() {
    // A spreadsheet's CSV export where the decimal mark is a comma.
    refused_list(
        "XUID;UID\nabc1;04AABBCC112233\n",
        false,
        "separated by semicolons (;)",
    );
    refused_list("abc1;x\nabc2;y\n", true, "separated by semicolons (;)");
    refused_list("XUID\nabc1;\n", false, "separated by semicolons (;)");
}

#[test]
fn a_bare_carriage_return_in_a_code_list_is_an_error() {
    // The CSV reader ends a record at a lone CR: abc2 would be dropped without a word.
    refused_list("XUID\nabc1\rabc2\nabc3\n", false, "carriage return");
    refused_list("abc1\rabc2\n", true, "carriage return");
    // CRLF line ends are fine.
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("crlf.csv");
    std::fs::write(&f, "XUID\r\nabc1\r\nabc2\r\n").unwrap();
    let (code, _, err) = tag424(&[
        "batch",
        "--reader",
        &format!("sim:{}", tmp.path().join("tags").display()),
        "--xuids",
        f.to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
        "--no-profile",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn codes_that_differ_only_in_case_are_one_code() {
    // docs/operator-guide.md, "Tag codes and letter case": one code written twice.
    refused_list(
        "XUID\nq8w3sbcz\nabc1\nQ8W3SBCZ\n",
        false,
        "\"q8w3sbcz\" (line 2) and \"Q8W3SBCZ\" (line 4) differ only in upper and lower case",
    );
    refused_list("Abc1\nabc1\n", true, "differ only in upper and lower case");
}
