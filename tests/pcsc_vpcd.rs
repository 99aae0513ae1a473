//! Through the real PC/SC stack: pcsc crate → libpcsclite → pcscd → vsmartcard's vpcd driver →
//! our simulated chip. Needs `.ci/with-pcscd` (which sets TAG424_VPCD_PORT); skipped, with a
//! message, when it is not running, but a failure under CI=true.

mod batchhelp;
mod common;

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tag424::card::Card;
use tag424::sim::dir::SimDir;
use tag424::sim::vpcd::{attach, AttachPolicy, VpcdOptions};
use tag424::transport::pcsc::PcscReader;

use batchhelp::{bin, settle_vpcd, sim_attach};

/// The tests share one pcscd: one at a time.
static PCSCD: Mutex<()> = Mutex::new(());

/// The vpcd port and the pcscd to this test alone, or `None` (a skip; a failure under CI=true).
fn pcscd() -> Option<(u16, MutexGuard<'static, ()>)> {
    let port = batchhelp::vpcd_port()?;
    Some((port, PCSCD.lock().unwrap_or_else(|e| e.into_inner())))
}

#[test]
fn the_suite_runs_through_pcscd() {
    let Some((port, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = SimDir::open(tmp.path()).unwrap();
    let policy = AttachPolicy {
        count: Some(1),
        idle_timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    let opts = VpcdOptions::new(format!("127.0.0.1:{port}"));
    let bridge = std::thread::spawn(move || attach(&opts, &dir, &policy));
    let reader = PcscReader::open("Virtual PCD 00 00").expect("the virtual reader");
    let pcsc_card = reader.wait_for_tag().expect("a tag arrives");
    let mut card = Card::new(pcsc_card);
    common::personalise_and_check(&mut card);
    card.into_transport().release();
    reader.wait_for_removal().unwrap();
    bridge.join().unwrap().expect("bridge ran");
}

#[test]
fn readers_lists_the_virtual_reader() {
    let Some((_, _g)) = pcscd() else { return };
    let out = bin().args(["readers", "--json"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Virtual PCD 00 00"), "{s}");
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "batch",
            "--reader",
            "no such reader",
            "--generate-xuids",
            "1",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        !tmp.path().join("out").exists(),
        "no folder for a reader typo"
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no reader matches") && e.contains("Virtual PCD 00 00"),
        "{e}"
    );
}

#[test]
fn a_batch_of_20_through_pcscd_with_a_tag_pulled_mid_sequence() {
    let Some((port, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    // A bridge of an earlier test (or test file) may just have gone: the helper lets vpcd
    // settle first.
    batchhelp::batch_with_a_pulled_tag(port, &tags, &out, 20, &[]);
    batchhelp::assert_keys_csv_rows(&out, 20);
    let sim = SimDir::open(&tags).unwrap();
    let encoded = sim
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| !s.has_factory_keys())
        .count();
    assert_eq!(encoded, 20);
}

/// `tag424 batch ARGS --out DIR` in the background, output captured.
fn spawn_batch(args: &[&str], out: &std::path::Path) -> std::process::Child {
    bin()
        .arg("batch")
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C to a child, then its output.
fn interrupt(child: std::process::Child) -> std::process::Output {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// CPU time (user + system clock ticks) of a process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn waiting_for_a_tag_sleeps_and_ctrl_c_ends_it_cleanly() {
    let Some((_, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let child = spawn_batch(
        &["--reader", "Virtual PCD 00 01", "--generate-xuids", "3"],
        tmp.path(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(1000));
    let during = cpu_ticks(child.id()) - before;
    assert!(
        during <= 5,
        "waiting for a tag must sleep in SCardGetStatusChange, used {during} ticks in 1 s"
    );
    let t = Instant::now();
    let out = interrupt(child);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing is lost"));
}

#[test]
fn waiting_for_a_reader_that_is_not_there_yet_can_be_cancelled() {
    let Some((_, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let child = spawn_batch(
        &[
            "--reader",
            "Reader plugged in later",
            "--wait-for-reader",
            "--generate-xuids",
            "1",
        ],
        tmp.path(),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Waiting for a reader"), "{err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
}

/// A simulated tag on the virtual reader for as long as the host keeps talking to it (and
/// `idle` seconds after), in the background.
fn attach_one(port: u16, tags: &std::path::Path, idle: &str) -> std::process::Child {
    settle_vpcd();
    sim_attach(port, tags, &["--count", "1", "--idle", idle])
}

#[test]
fn a_tag_sequence_has_the_card_to_itself() {
    let Some((port, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut bridge = attach_one(port, tmp.path(), "1");
    let reader = PcscReader::open("Virtual PCD 00 00").expect("the virtual reader");
    let mut held = Card::new(reader.wait_for_tag().expect("a tag arrives"));
    held.select_ndef_application().expect("the tag answers");
    // Another program on the machine cannot connect (and so cannot interleave APDUs).
    let other = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new("Virtual PCD 00 00").unwrap();
    let e = other
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e, pcsc::Error::SharingViolation);
    // Released between tags: then it can.
    held.into_transport().release();
    other
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("free after release");
    drop(other);
    // The bridge removes the tag once idle and ends: pcscd sees a clean removal.
    let _ = bridge.wait();
}

#[test]
fn the_last_code_ends_the_batch_with_the_tag_still_on_the_reader() {
    let Some((port, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The tag stays 4 s after the last APDU: the batch must not wait for its removal.
    let mut bridge = attach_one(port, &tmp.path().join("tags"), "4");
    let out = spawn_batch(
        &[
            "--reader",
            "Virtual PCD 00 00",
            "--generate-xuids",
            "1",
            "--trust-simulator",
        ],
        &tmp.path().join("out"),
    )
    .wait_with_output()
    .unwrap();
    let still_there = bridge.try_wait().unwrap().is_none();
    let _ = bridge.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 tag encoded"), "{stdout}");
    assert!(
        still_there,
        "the batch ended while the tag was still on the reader"
    );
}

#[test]
fn a_simulated_chip_through_pcsc_is_named_with_the_flag_that_accepts_it() {
    let Some((port, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut bridge = attach_one(port, &tmp.path().join("tags"), "2");
    let out = bin()
        .args([
            "encode",
            "--reader",
            "Virtual PCD 00 00",
            "--xuid",
            "simsig01",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let _ = bridge.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("simulated chip") && err.contains("--trust-simulator"),
        "{err}"
    );
}

#[test]
fn any_number_of_ctrl_c_ends_with_the_summary_and_the_rerun_hint() {
    let Some((_, _g)) = pcscd() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let child = spawn_batch(
        &["--reader", "Virtual PCD 00 01", "--generate-xuids", "3"],
        &tmp.path().join("out"),
    );
    std::thread::sleep(Duration::from_millis(1200));
    // What `timeout -s INT` and an impatient operator send: several, quickly.
    for _ in 0..3 {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stdout.contains("Done: 0 tags encoded"), "{stdout}");
    assert!(stderr.contains("Re-run the same command"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["summary"]["stopped"]["reason"], "interrupted");
    assert_eq!(summary["summary"]["exported"], 0);
}
