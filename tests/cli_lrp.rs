//! `tag424 verify` on LRP scans (tests/data/lrp-tt.json): PICC data, PICC data with file data,
//! counter only, and plain mirrors with `--mode lrp`; one nibble flipped is refused.

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
