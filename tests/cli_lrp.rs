//! `tag424 verify` on LRP scans (tests/data/lrp-tt.json): PICC data, PICC data with file data,
//! counter only, and plain mirrors with `--mode lrp`; one nibble flipped is refused. An LRP
//! batch's `--trace --trace-keys` file replays (`transport::replay::check`), and a changed MAC
//! byte in it is named by its exchange.

use serde_json::Value;

mod run;

/// `tag424 ARGS` with the vector's keys in the environment (keys are never on the command
/// line).
fn tag424(i: &Value, args: &[&str]) -> (i32, String, String) {
    let mut cmd = run::tag424();
    cmd.args(args)
        .env("TAG424_KEY", i["sdm_file_read_key"].as_str().unwrap());
    if let Some(m) = i["sdm_meta_read_key"].as_str() {
        cmd.env("TAG424_META_KEY", m);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sun_vectors() -> Vec<Value> {
    let all: Vec<Value> = serde_json::from_str(include_str!("data/lrp-tt.json")).unwrap();
    all.into_iter()
        .filter(|v| v["kind"] == "lrp_sun_url")
        .collect()
}

fn args<'a>(i: &'a Value, url: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "verify",
        url,
        "--url",
        i["template"].as_str().unwrap(),
        "--json",
    ];
    if let Some(m) = i["mode"].as_str() {
        a.extend(["--mode", m]);
    }
    a
}

#[test]
fn verify_accepts_lrp_scans_and_rejects_flipped_nibbles() {
    let vectors = sun_vectors();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let (i, e) = (&v["inputs"], &v["expected"]);
        let url = i["url"].as_str().unwrap();
        let (code, out, err) = tag424(i, &args(i, url));
        assert_eq!(code, 0, "{}: {out} {err}", v["id"]);
        let j: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(j["genuine"], true);
        assert_eq!(j["mode"], "lrp");
        assert_eq!(j["read_ctr"], e["read_ctr"]);
        assert_eq!(j["uid"], e["uid"]);
        // One nibble flipped in each mirrored value (every third digit, to keep it quick).
        let q = url.find('?').unwrap();
        for (_, val) in url[q + 1..].split('&').filter_map(|kv| kv.split_once('=')) {
            for pos in (0..val.len()).step_by(3) {
                let mut b = val.as_bytes().to_vec();
                b[pos] = if b[pos] == b'0' { b'1' } else { b'0' };
                let flipped = url.replace(val, std::str::from_utf8(&b).unwrap());
                let (code, out, _) = tag424(i, &args(i, &flipped));
                assert_ne!(code, 0, "{flipped} verified: {out}");
            }
        }
    }
}

#[test]
fn plain_mirrors_need_the_mode_and_a_wrong_mode_is_bad_input() {
    let vectors = sun_vectors();
    let plain = vectors
        .iter()
        .find(|v| v["inputs"]["mode"] == "lrp")
        .unwrap();
    let i = &plain["inputs"];
    let url = i["url"].as_str().unwrap();
    let mut a = args(i, url);
    a.truncate(a.len() - 2); // without --mode lrp: checked as AES, not genuine
    assert_eq!(tag424(i, &a).0, 1);
    let picc = vectors
        .iter()
        .find(|v| v["id"] == "gen-lrp-sun-picc")
        .unwrap();
    let i = &picc["inputs"];
    let url = i["url"].as_str().unwrap();
    let mut a = args(i, url);
    a.extend(["--mode", "aes"]);
    let (code, _, err) = tag424(i, &a);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--mode"), "{err}");
}

/// `batch --lrp-irreversible --trace FILE --trace-keys` on `n` simulated factory tags: the
/// trace, parsed, with the `@document` line an operator adds.
fn lrp_batch_trace(dir: &std::path::Path, n: usize) -> tag424::transport::replay::Fixture {
    let tags = dir.join("tags");
    let trace = dir.join("lrp.apdu");
    let count = n.to_string();
    let (code, _, err) = run::output(run::tag424().args([
        "sim",
        "new",
        "--count",
        &count,
        "--dir",
        tags.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let reader = format!("sim:{}", tags.display());
    let (code, out, err) = run::output(run::tag424().args([
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        &count,
        "--out",
        dir.join("out").to_str().unwrap(),
        "--lrp-irreversible",
        "--yes-irreversible",
        "--trace",
        trace.to_str().unwrap(),
        "--trace-keys",
    ]));
    assert_eq!(code, 0, "{out} {err}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut fx = tag424::transport::replay::Fixture::parse(&text).unwrap();
    assert!(fx.meta("redacted").is_none(), "{text}");
    fx.meta
        .push(("document".into(), "simulated tags, LRP batch, test".into()));
    fx
}

/// A whole LRP batch's trace replays. Per tag the batch runs 18 exchanges (docs/protocol.md):
/// ISOSelectFile, GetVersion (3 frames), Read_Sig, AuthenticateEV2First (AES, factory key 0), WriteData of the NDEF file (Plain in the
/// session: no MAC), SetConfiguration 05 (the switch to LRP: command MAC, bare 9100, the session
/// ends), AuthenticateLRPFirst (factory key 0), ChangeFileSettings (command and response
/// MACs), ChangeKey 1 to 4 (command and response MACs, each key learnt), ChangeKey 0 (command
/// MAC, bare 9100, learnt), then an unauthenticated ReadData. So per tag: 2 authentications,
/// 1 + 2 + 4 × 2 + 1 = 12 MACs, 5 keys learnt.
#[test]
fn an_lrp_batch_trace_replays_with_every_mac_and_key() {
    use tag424::transport::replay::check::check;
    let tmp = tempfile::tempdir().unwrap();
    let fx = lrp_batch_trace(tmp.path(), 3);
    let lrp_auths = fx
        .exchanges
        .iter()
        .filter(|(c, r)| c[1] == 0x71 && r.len() == 19 && r[0] == 0x01)
        .count();
    assert_eq!(lrp_auths, 3);
    let done = check(&fx).unwrap();
    assert_eq!(done.exchanges, 3 * 18, "{done:?}");
    assert_eq!(
        (done.authentications, done.macs, done.keys_learnt),
        (3 * 2, 3 * 12, 3 * 5),
        "{done:?}"
    );
}

/// One changed byte in an LRP command MAC (ChangeFileSettings) or response MAC (ChangeKey)
/// of the trace: the replay names that exchange.
#[test]
fn a_changed_lrp_mac_byte_is_named_by_its_exchange() {
    use tag424::transport::replay::check::{check, CheckError};
    let tmp = tempfile::tempdir().unwrap();
    let fx = lrp_batch_trace(tmp.path(), 1);
    let first_lrp = fx
        .exchanges
        .iter()
        .position(|(c, r)| c[1] == 0x71 && r.len() == 19 && r[0] == 0x01)
        .unwrap();
    let at = |ins: u8| {
        fx.exchanges
            .iter()
            .enumerate()
            .skip(first_lrp)
            .find(|(_, (c, _))| c[1] == ins)
            .unwrap()
            .0
    };
    // ChangeFileSettings: the last MAC byte (before Le).
    let cfs = at(0x5F);
    let mut bad = fx.clone();
    let c = &mut bad.exchanges[cfs].0;
    let n = c.len();
    c[n - 2] ^= 0x01;
    match check(&bad).unwrap_err() {
        CheckError::At { index, what, .. } => {
            assert_eq!(index, cfs);
            assert!(what.contains("command MAC"), "{what}");
        }
        e => panic!("{e}"),
    }
    // ChangeKey 1: the first byte of its answer's MAC.
    let ck = at(0xC4);
    let mut bad = fx.clone();
    bad.exchanges[ck].1[0] ^= 0x80;
    let e = check(&bad).unwrap_err();
    assert!(
        matches!(&e, CheckError::At { index, what, .. } if *index == ck && what.contains("response MAC")),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(&format!("exchange {ck} (90C4")),
        "{e}"
    );
}
