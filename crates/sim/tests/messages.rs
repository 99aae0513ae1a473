//! The words an operator reads when a tag file, its stored settings or a simulated reader
//! option is refused: pinned to the exact text, so that typing the errors changed no message.

use tag424_sim::chip::settings::{decode_stored, Variant};
use tag424_sim::dir::{SimDir, SimReaderOptions};
use tag424_sim::ChipState;

const AES: Variant = Variant {
    tag_tamper: false,
    lrp: false,
};

fn tag() -> ChipState {
    ChipState::factory([0x04, 1, 2, 3, 4, 5, 6])
}

fn invalid(change: impl FnOnce(&mut ChipState)) -> String {
    let mut s = tag();
    change(&mut s);
    s.validate().expect_err("refused").to_string()
}

#[test]
fn a_refused_tag_state_says_what_it_always_said() {
    assert_eq!(
        invalid(|s| s.version_hw.push(0)),
        "version_hw is 8 bytes, 7 expected"
    );
    assert_eq!(invalid(|s| s.batch.clear()), "batch is 0 bytes, 7 expected");
    assert_eq!(
        invalid(|s| s.signature.truncate(55)),
        "signature is 55 bytes, 56 expected"
    );
    assert_eq!(
        invalid(|s| s.files.retain(|f| f.file_no != 2)),
        "file 02 is missing"
    );
    assert_eq!(
        invalid(|s| s.files[2].fid = 0xE106),
        "file 03 must be FID E105 of 128 bytes (is E106, 128 bytes)"
    );
    assert_eq!(
        invalid(|s| s.files[0].settings[0] = 0x01),
        "file 01: file type 01h: only standard data files (00h)"
    );
    assert_eq!(
        invalid(|s| s.files[1].settings.truncate(3)),
        "file 02: settings are 3 bytes, at least 7 expected"
    );
    assert_eq!(
        invalid(|s| s.files[1].settings[5] = 0x00),
        "file 02: settings give 0 bytes, the file holds 256"
    );
    assert_eq!(
        invalid(|s| s.files[1].settings[1] = 0x02),
        "file 02: settings 0002E0EE000100 are refused (919E)"
    );
    assert_eq!(
        invalid(|s| s.files[1].sdm_read_ctr = 0x100_0000),
        "file 02: the SDM read counter is 24 bits"
    );
    assert_eq!(
        invalid(|s| {
            let extra = s.files[0].clone();
            s.files.push(extra)
        }),
        "4 files, 3 expected"
    );
    let mut tt = ChipState::factory_tag_tamper([0x04, 1, 2, 3, 4, 5, 6]);
    tt.version_hw[2] = 0x02;
    assert_eq!(
        tt.validate().expect_err("refused").to_string(),
        "TagTamper state does not fit the chip"
    );
}

#[test]
fn refused_stored_settings_say_what_they_always_said() {
    let e = |b: &[u8], len| decode_stored(b, len, AES).expect_err("refused").to_string();
    assert_eq!(e(&[0; 3], 256), "settings are 3 bytes, at least 7 expected");
    assert_eq!(
        e(&[0x05, 0, 0xE0, 0xEE, 0, 1, 0], 256),
        "file type 05h: only standard data files (00h)"
    );
    assert_eq!(
        e(&[0, 0, 0xE0, 0xEE, 0, 1, 0], 128),
        "settings give 256 bytes, the file holds 128"
    );
    assert_eq!(
        e(&[0, 0, 0xE0, 0xEE, 0, 1, 0, 0], 256),
        "settings 0000E0EE00010000 are refused (917E)"
    );
}

#[test]
fn a_refused_tag_file_names_the_file_and_the_fault() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = SimDir::open(tmp.path()).expect("open");
    let mut s = tag();
    s.signature.pop();
    dir.save(&s).expect("save");
    let path = tmp.path().join("04010203040506.json");
    let e = SimDir::load_file(&path).expect_err("refused").to_string();
    assert_eq!(
        e,
        format!(
            "{} is not a simulated tag file: signature is 55 bytes, 56 expected",
            path.display()
        )
    );
    std::fs::write(&path, "{").expect("write");
    let e = SimDir::load_file(&path).expect_err("refused").to_string();
    assert_eq!(
        e,
        format!(
            "{} is not a simulated tag file: EOF while parsing an object at line 1 column 1",
            path.display()
        )
    );
}

#[test]
fn a_refused_reader_option_says_what_it_always_said() {
    let e = |q: &str| SimReaderOptions::parse(q).expect_err("refused").to_string();
    assert_eq!(
        e("drop=x"),
        r#"simulated reader option "drop=x": "x" is not a fraction; write one such as 0.1"#
    );
    assert_eq!(
        e("remove= 0.7"),
        r#"simulated reader option "remove= 0.7":  0.7 is not a fraction from 0 to 0.5 (of the exchanges); write one such as 0.1"#
    );
    assert_eq!(
        e("drop=-0.1"),
        r#"simulated reader option "drop=-0.1": -0.1 is not a fraction from 0 to 0.5 (of the exchanges); write one such as 0.1"#
    );
    assert_eq!(
        e("seed=seven"),
        r#"simulated reader option "seed=seven": "seven" is not a seed; write a whole number such as 7"#
    );
    assert_eq!(
        e("latency=11s"),
        r#"simulated reader option "latency=11s": more than 10 s per exchange is not a reader"#
    );
    assert_eq!(
        e("latency=fast"),
        r#"simulated reader option "latency=fast": expected number at 0; write a duration such as 15ms or 1s"#
    );
    assert_eq!(
        e("speed=1"),
        r#"simulated reader option "speed=1": the options are latency=DURATION, drop=P, remove=P and seed=N (e.g. latency=15ms&drop=0.1&seed=7)"#
    );
}
