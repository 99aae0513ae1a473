//! Several readers, one batch, through the real pcscd: three vpcd virtual readers each holding
//! simulated tags, 30 tags, one journal; a tag pulled from one reader is finished on another.
//! Needs `.ci/with-pcscd` (readers on vpcd ports 29363, 29364 and 29373); skipped with a
//! message when it is not running, but a failure under CI=true (CI always runs it).

mod batchhelp;
mod run;

use tag424::sim::dir::SimDir;

use batchhelp::bin;

/// The tests share one pcscd and its vpcd readers: one at a time.
static PCSCD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The vpcd port and the pcscd to this test alone, or `None` (a skip; a failure under CI=true).
fn pcscd() -> Option<(u16, std::sync::MutexGuard<'static, ()>)> {
    let port = batchhelp::vpcd_port()?;
    Some((port, PCSCD.lock().unwrap_or_else(|e| e.into_inner())))
}

/// `tag424 sim attach` presenting `count` fresh tags of `dir` at a vpcd port.
fn attach(port: u16, dir: &std::path::Path, count: usize, extra: &[&str]) -> std::process::Child {
    let count = count.to_string();
    let args = [&["--count", &count, "--idle", "0.4", "--gap", "0.6"], extra].concat();
    batchhelp::sim_attach(port, dir, &args)
}

#[test]
fn thirty_tags_over_three_readers_with_a_tag_moved_between_readers() {
    let Some((port, _one_at_a_time)) = pcscd() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("reader{i}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let out = tmp.path().join("out");
    // A bridge of an earlier test file may just have gone: let vpcd settle.
    batchhelp::settle_vpcd();
    // Reader 1's first tag leaves after 9 APDUs (its keys journaled, not all changed) and the
    // operator takes it to reader 2, which presents it before its own next tag.
    let tear_to = dirs[1].display().to_string();
    let mut bridges = vec![
        attach(
            port,
            &dirs[0],
            10,
            &["--tear-after", "9", "--tear-to", &tear_to],
        ),
        attach(port + 1, &dirs[1], 10, &[]),
        attach(port + 10, &dirs[2], 10, &[]),
    ];
    let batch = bin()
        .args([
            "batch",
            "--reader",
            "Virtual PCD 00 00",
            "--reader",
            "Virtual PCD 00 01",
            "--reader",
            "Test NFC Reader 00 00",
            "--generate-xuids",
            "30",
            "--trust-simulator",
            "--json",
            "--out",
        ])
        .arg(&out)
        .stdout(std::fs::File::create(tmp.path().join("batch.out")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("batch.err")).unwrap())
        .spawn()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    // A bridge that vpcd dropped would leave the batch waiting for tags forever: fail instead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut batch = batch;
    while batch.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = batch.kill();
            for b in &mut bridges {
                let _ = b.kill();
                let _ = b.wait();
            }
            let _ = batch.wait();
            panic!(
                "the batch did not finish in 180 s\n{}\n{}",
                read("batch.out"),
                read("batch.err")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = batch.wait().unwrap();
    for b in &mut bridges {
        let _ = b.kill();
        let _ = b.wait();
    }
    let stdout = read("batch.out");
    assert!(status.success(), "{stdout}\n{}", read("batch.err"));
    let events = batchhelp::events(&stdout);
    let done = batchhelp::done(&events);
    assert_eq!(done.len(), 30, "{stdout}");
    // Every reader encoded tags.
    for r in [
        "Virtual PCD 00 00",
        "Virtual PCD 00 01",
        "Test NFC Reader 00 00",
    ] {
        assert!(
            done.iter().any(|e| e["reader"] == r),
            "{r} encoded nothing: {stdout}"
        );
    }
    // The pulled tag: torn on the first reader (which goes on with its next tag as a retry
    // of that presentation, `PcscCard::reconnect`), finished on the second.
    let torn: Vec<_> = events
        .iter()
        .filter(|e| (e["event"] == "failed" || e["event"] == "retry") && e["tear_off"] == true)
        .collect();
    assert_eq!(torn.len(), 1, "{stdout}");
    assert_eq!(torn[0]["reader"], "Virtual PCD 00 00");
    let recovered: Vec<_> = done
        .iter()
        .filter(|e| e["result"]["recovered"] == true)
        .collect();
    assert_eq!(recovered.len(), 1, "{stdout}");
    assert_eq!(recovered[0]["reader"], "Virtual PCD 00 01");
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["summary"]["encoded"], 30);
    assert_eq!(summary["summary"]["failed"], 0);
    assert_eq!(summary["summary"]["unfinished"], 0, "{summary}");
    assert_eq!(summary["summary"]["simulated"], true, "{summary}");

    // One journal: 30 verified tags, no code twice, every chip holds its journaled keys.
    let journal = batchhelp::verified_once(&out, 30);
    let mut chips = 0;
    for d in &dirs {
        for state in SimDir::open(d).unwrap().list().unwrap() {
            if state.has_factory_keys() {
                continue; // presented after the last code was taken: untouched
            }
            let uid = hex::encode_upper(state.uid);
            let t = journal
                .tag(&uid)
                .expect("every changed tag is in the journal");
            assert!(t.verified, "{uid}");
            assert_eq!(state.keys[1], *t.keys().unwrap().sdm_file_read(), "{uid}");
            chips += 1;
        }
    }
    assert_eq!(chips, 30);
    batchhelp::assert_keys_csv_rows(&out, 30);
}

/// One numbering, one source of truth, one rehearsal rule, through the real pcscd: two
/// readers given by the numbers `tag424 readers` shows (in the other order), a tag pulled from
/// one and finished on the other. The view's lines carry those numbers; the summary counts the
/// moved tag once, done (nothing "left mid-encoding", as `journal check` agrees); simulated
/// chips accepted with --trust-simulator make the batch a rehearsal, as a `sim:` reader does.
#[test]
fn readers_go_by_their_number_and_a_moved_tag_is_counted_once_done() {
    let Some((port, _one_at_a_time)) = pcscd() else {
        return;
    };
    let listed = bin().args(["readers", "--json"]).output().unwrap();
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let number = |name: &str| {
        listed["readers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {listed}"))["index"]
            .as_u64()
            .unwrap()
    };
    let (a, b) = (number("Virtual PCD 00 00"), number("Test NFC Reader 00 00"));
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let out = tmp.path().join("out");
    batchhelp::settle_vpcd();
    // Reader a's first tag leaves after 9 APDUs and goes to reader b.
    let tear_to = dir_b.display().to_string();
    let mut bridges = vec![
        attach(
            port,
            &dir_a,
            3,
            &["--tear-after", "9", "--tear-to", &tear_to],
        ),
        attach(port + 10, &dir_b, 3, &[]),
    ];
    let mut batch = bin()
        .args(["batch", "--reader"])
        .arg(b.to_string())
        .arg("--reader")
        .arg(a.to_string())
        .args(["--generate-xuids", "6", "--trust-simulator", "--out"])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(tmp.path().join("batch.out")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("batch.err")).unwrap())
        .spawn()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while batch.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = batch.kill();
            let _ = batch.wait();
            for br in &mut bridges {
                let _ = br.kill();
                let _ = br.wait();
            }
            panic!(
                "the batch did not finish in 120 s\n{}\n{}",
                read("batch.out"),
                read("batch.err")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = batch.wait().unwrap();
    for br in &mut bridges {
        let _ = br.kill();
        let _ = br.wait();
    }
    let stdout = read("batch.out");
    assert!(status.success(), "{stdout}\n{}", read("batch.err"));

    // The numbers of `tag424 readers`, on the readers line and every line of the view.
    let (la, lb) = (format!("[{a}] "), format!("[{b}] "));
    assert!(
        stdout.contains(&format!(
            "2 readers: [{b}] Test NFC Reader 00 00, [{a}] Virtual PCD 00 00"
        )),
        "{stdout}"
    );
    let tagged: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert!(
        tagged
            .iter()
            .all(|l| l.starts_with(&la) || l.starts_with(&lb)),
        "{stdout}"
    );
    assert!(
        tagged
            .iter()
            .any(|l| l.starts_with(&format!("{la}Retry 1 of at most"))),
        "the pull is shown on reader {a}: {stdout}"
    );
    assert!(
        tagged
            .iter()
            .any(|l| l.starts_with(&format!("{lb}Finished interrupted"))),
        "…and the finish on reader {b}: {stdout}"
    );

    // Counted once, done; a rehearsal.
    assert!(
        stdout.contains(
            "Done: 6 tags encoded and verified (1 of them finished after an interruption)."
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("mid-encoding") && !stdout.contains("unfinished"),
        "{stdout}"
    );
    assert!(stdout.contains("Simulated reader"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["simulated"], true, "{summary}");
    assert_eq!(summary["summary"]["simulated"], true, "{summary}");
    assert_eq!(summary["summary"]["encoded"], 6, "{summary}");
    assert_eq!(summary["summary"]["recovered"], 1, "{summary}");
    assert_eq!(summary["summary"]["unfinished"], 0, "{summary}");
    let check = bin()
        .args(["journal", "check", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let tags = check["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 6, "{check}");
    assert!(tags.iter().all(|t| t["verified"] == true), "{check}");
    batchhelp::verified_once(&out, 6);
    batchhelp::assert_keys_csv_rows(&out, 6);
}
