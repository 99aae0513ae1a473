//! Deterministic smoke runs of the fuzz logic, for machines without libFuzzer / nightly:
//! ~20,000 pseudo-random inputs per target plus mutations of valid inputs.
//!
//! `SMOKE_ITERS` overrides the number of random inputs per target.

use tag424::card::file_settings::FileSettings;
use tag424::card::{Card, CardError, Session};
use tag424::crypto::ev2::SessionKeys;
use tag424::crypto::sdm::encrypt_picc_data;
use tag424::crypto::{pad_m2, AesKey};
use tag424_fuzz::{
    response_parsers, session_responses, sim_apdus, url_parser, FuzzTransport, ENC_KEY, MAC_KEY,
    SDM_META_READ_KEY, T7_FILE_SETTINGS, T7_RESPONSE, TI,
};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// One to four random edits: flip, set, insert, delete, truncate, duplicate a run.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let len = v.len();
            match self.below(7) {
                0 if len > 0 => {
                    let i = self.below(len);
                    v[i] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let i = self.below(len);
                    v[i] = self.next() as u8;
                }
                2 => {
                    let i = self.below(len + 1);
                    v.insert(i, self.next() as u8);
                }
                3 if len > 0 => {
                    v.remove(self.below(len));
                }
                4 => v.truncate(self.below(len + 1)),
                5 if len > 0 => {
                    let a = self.below(len);
                    let b = a + self.below(len - a + 1).min(16);
                    let run = v[a..b].to_vec();
                    let at = self.below(v.len() + 1);
                    v.splice(at..at, run);
                }
                _ => {
                    // Interesting values.
                    if len > 0 {
                        let i = self.below(len);
                        v[i] =
                            [0x00, 0xFF, 0x7F, 0x80, 0x0E, 0x40, b'{', b'}', b'&'][self.below(9)];
                    }
                }
            }
        }
        v
    }
}

fn iters() -> usize {
    std::env::var("SMOKE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn unhex(s: &str) -> Vec<u8> {
    hex_decode(s)
}

fn hex_decode(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Random inputs, then mutations of each seed, through `f`. On a panic the input is printed.
fn run(name: &str, seed: u64, seeds: &[Vec<u8>], max_len: usize, f: fn(&[u8])) {
    let mut rng = XorShift(seed);
    let n = iters();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for s in seeds {
        inputs.push(s.clone());
    }
    let check = |input: &[u8]| {
        let r = std::panic::catch_unwind(|| f(input));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{name} panicked on input {} ({:?}): {msg}",
                inputs_hex(input),
                String::from_utf8_lossy(input)
            );
        }
    };
    for s in &inputs {
        check(s);
    }
    for _ in 0..n {
        let input = rng.bytes(max_len);
        check(&input);
    }
    if !seeds.is_empty() {
        for i in 0..n {
            let input = rng.mutate(&seeds[i % seeds.len()]);
            check(&input);
        }
    }
}

fn inputs_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn seeds_response_parsers() -> Vec<Vec<u8>> {
    let fixture = include_str!("../../hardware-fixtures/an12196-t7-getfilesettings-mac.apdu");
    let picc = encrypt_picc_data(
        &AesKey::new(SDM_META_READ_KEY),
        Some(&[0x04, 0xDE, 0x5F, 0x1E, 0xAC, 0xC0, 0x40]),
        Some(61),
        &[0x99; 16],
    );
    let mut version = vec![3, 7, 7];
    version.extend(unhex(
        "04040230001105 04040230001105 04968CAA5C5E80CF390D4B202122",
    ));
    vec![
        unhex(T7_FILE_SETTINGS),
        unhex("0000E0EE000100"),
        unhex("00400000000100C1F1212000004300003000"),
        version,
        fixture.as_bytes().to_vec(),
        picc.to_vec(),
        pad_m2(b"0123456789ABCDEF"),
    ]
}

#[test]
fn smoke_response_parsers() {
    let seeds = seeds_response_parsers();
    run(
        "response_parsers",
        0x9E37_79B9_7F4A_7C15,
        &seeds,
        64,
        response_parsers,
    );
}

/// `ctr chunk script_len script` then responses as `flags len body`.
fn session_seed(script: &[u8], responses: &[(u8, &[u8])]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, script.len() as u8];
    v.extend_from_slice(script);
    for (flags, body) in responses {
        v.push(*flags);
        v.push(body.len() as u8);
        v.extend_from_slice(body);
    }
    v
}

fn seeds_session_responses() -> Vec<Vec<u8>> {
    let t7 = unhex(T7_RESPONSE);
    let (t7_body, t7_sw) = t7.split_at(t7.len() - 2);
    let mut t7_raw = vec![0x03, t7_body.len() as u8];
    t7_raw.extend_from_slice(t7_body);
    t7_raw.extend_from_slice(t7_sw);
    let fs = unhex(T7_FILE_SETTINGS);
    let uid = [0x04, 0x1E, 0x3C, 0x8A, 0x2D, 0x6B, 0x80];
    let data16: Vec<u8> = (0..16).collect();
    let mut seeds = vec![
        // The published Table 7 exchange, verbatim.
        [&[0, 0, 0, 2, 0x00, 0x02][..], &t7_raw].concat(),
        session_seed(&[0x00, 0x02], &[(0x08, &fs)]),
        session_seed(&[0x01, 0x07, 0, 0, 2], &[(0x00, &data16[..15])]),
        session_seed(&[0x02, 0x07, 0, 0, 2], &[(0x08, &data16[..15])]),
        session_seed(&[0x03, 0x07, 0, 0, 2], &[(0x0C, &data16[..15])]),
        session_seed(&[0x04, 0x10, 2, 0], &[(0x00, &[])]),
        session_seed(&[0x05, 0x10, 2, 0], &[(0x08, &[])]),
        session_seed(&[0x06, 0x10, 2, 0], &[(0x08, &[])]),
        session_seed(&[0x07, 0x01, 0x01], &[(0x08, &[])]),
        session_seed(&[0x08, 0x08], &[(0x0C, &uid)]),
        session_seed(&[0x09, 0x00], &[(0x08, &[0x00])]),
        session_seed(&[0x0A, 0x05, 0x00, 0x00], &[(0x08, &[])]),
        session_seed(&[0x0B, 0x01], &[(0x00, &[])]),
        session_seed(
            &[0x0C, 0x00, 0x00],
            &[(0x01, &[0x55; 16]), (0x00, &[0x66; 32])],
        ),
        session_seed(
            &[0x0D],
            &[(0x01, &[4; 7]), (0x01, &[4; 7]), (0x00, &[4; 14])],
        ),
        session_seed(&[0x0E, 0x02], &[(0x00, &fs)]),
        session_seed(
            &[0x0F, 0x02, 0x02, 0x00],
            &[(0x00, &[0x41, 0x42, 0x43]), (0x10, &[7; 56])],
        ),
        // Chained ops and frames.
        session_seed(
            &[0x00, 0x02, 0x08, 0x03, 0x02, 0x00, 0x00, 0x02],
            &[(0x08, &fs), (0x0C, &uid), (0x0C, &data16[..5])],
        ),
        session_seed(
            &[0x02, 0x10, 0, 0, 2],
            &[(0x01, &data16), (0x08, &data16[..1])],
        ),
    ];
    // A counter about to run out.
    let mut near_end = session_seed(&[0x00, 0x02, 0x00, 0x02], &[(0x08, &fs), (0x08, &fs)]);
    near_end[0] = 0xFD;
    near_end[1] = 0xFF;
    seeds.push(near_end);
    seeds
}

#[test]
fn smoke_session_responses() {
    let seeds = seeds_session_responses();
    run(
        "session_responses",
        0xD1B5_4A32_D192_ED03,
        &seeds,
        160,
        session_responses,
    );
}

fn seeds_url_parser() -> Vec<Vec<u8>> {
    [
        "https://yourdomain.com/auth?x=q8w3sbcz&n=00002A&e=0123456789ABCDEF",
        "https://yourdomain.com/auth?x={xuid}&n={ctr}&e={mac}",
        "https://sdm.example.com/t?p=EF963FF7828658A599F3041510671E88&d=94592FDE69FA06E8E3B6CA686A22842B&m=C48B89C17A233B2C",
        "https://sdm.example.com/t?p={picc}&d={enc}&m={mac}",
        "https://a.b/{uid}/{ctr}/{enc}/{mac}",
        "http://x/?u={uid}&c={ctr}&m={mac}",
        "https://yourdomain.com/auth?x=é&n=00002A&e=0123456789ABCDEF",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

#[test]
fn smoke_url_parser() {
    let seeds = seeds_url_parser();
    run("url_parser", 0x2545_F491_4F6C_DD1D, &seeds, 120, url_parser);
}

/// The harness itself: a response the transport MACs must pass the session's MAC check, so
/// fuzzing reaches the parsers behind it.
#[test]
fn fuzz_transport_signs_like_a_card() {
    let keys = || SessionKeys {
        enc: AesKey::new(ENC_KEY),
        mac: AesKey::new(MAC_KEY),
    };
    let fs = unhex(T7_FILE_SETTINGS);
    let mut input = vec![0x08, fs.len() as u8];
    input.extend_from_slice(&fs);
    let mut card = Card::new(FuzzTransport::new(&input, 0));
    let s = Session::from_parts(&mut card, keys(), TI, 0, 0);
    let (_, got) = s.get_file_settings(2).expect("MACed by the transport");
    assert_eq!(got, FileSettings::parse(&fs).unwrap());

    let uid = [1, 2, 3, 4, 5, 6, 7];
    let mut input = vec![0x0C, 7];
    input.extend_from_slice(&uid);
    let mut card = Card::new(FuzzTransport::new(&input, 41));
    let s = Session::from_parts(&mut card, keys(), TI, 41, 0);
    let (s, got) = s
        .get_card_uid()
        .expect("encrypted and MACed by the transport");
    assert_eq!(got, uid);
    assert_eq!(s.cmd_ctr(), 42);

    // The verbatim AN12196 Table 7 answer, and the same with one bit flipped.
    let t7 = unhex(T7_RESPONSE);
    let mut input = vec![0x03, (t7.len() - 2) as u8];
    input.extend_from_slice(&t7);
    let mut card = Card::new(FuzzTransport::new(&input, 0));
    let s = Session::from_parts(&mut card, keys(), TI, 0, 0);
    assert!(s.get_file_settings(2).is_ok());
    input[5] ^= 0x01;
    let mut card = Card::new(FuzzTransport::new(&input, 0));
    let s = Session::from_parts(&mut card, keys(), TI, 0, 0);
    assert!(matches!(
        s.get_file_settings(2),
        Err(CardError::ResponseMac { .. })
    ));
}

/// Writes the seeds above to `seeds/<target>/` (the extra corpus `.ci/fuzz-smoke` gives
/// libFuzzer). Run after changing them:
/// `cargo test --manifest-path fuzz/Cargo.toml --test smoke -- --ignored export_seeds`.
#[test]
#[ignore]
fn export_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, seeds) in [
        ("response_parsers", seeds_response_parsers()),
        ("session_responses", seeds_session_responses()),
        ("url_parser", seeds_url_parser()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
}

#[test]
fn smoke_sim_apdus() {
    // Select, GetVersion, AuthenticateEV2First part 1 and a bad part 2, ReadData, WriteData.
    let frames: &[&str] = &[
        "00A4040C07D276000085010100",
        "9060000000",
        "90AF000000",
        "9071000002000000",
        "90AF000020000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F00",
        "90AD0000070200000010000000",
        "908D00000C0200000005000001020304050000",
    ];
    let mut seed = vec![1u8];
    for f in frames {
        let b = unhex(f);
        seed.push(b.len() as u8);
        seed.extend_from_slice(&b);
    }
    run("sim_apdus", 0x1234_5678_9ABC_DEF1, &[seed], 200, sim_apdus);
}

fn seeds_verifier_query() -> Vec<Vec<u8>> {
    [
        "x=q8w3sbcz&n=00002A&e=0123456789ABCDEF",
        "x=q8w3sbcz&n=00002a&e=0123456789abcdef&r=Secret123",
        "c=Bottle%2042&a=acme01",
        "u=04AABBCC112233&a=acme01&n=000001&e=FFFFFFFFFFFFFFFF",
        "x=a&x=b",
        "x=%E2%9C%93&utm_source=qr",
        "c=%&a=",
        "x=tag&n=FFFFFF&e=0000000000000000&",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

#[test]
fn smoke_verifier_query() {
    let seeds = seeds_verifier_query();
    run(
        "verifier_query",
        0x5EED_0F0E_1D2C_3B4A,
        &seeds,
        96,
        tag424_fuzz::verifier_query,
    );
}

/// A genuine scan, mutated anywhere: whatever still parses and passes the MAC check carries
/// exactly the original counter and MAC (malformed input never passes).
#[test]
fn mutated_genuine_scans_never_pass() {
    use tag424::crypto::sdm::sdm_mac;
    use tag424::verifier::query;
    let key = AesKey::new(tag424_fuzz::SDM_FILE_READ_KEY);
    // The verifier's check: the one SUN implementation on the parsed n and e.
    let sun_mac_matches = |key: &AesKey, s: &query::Sun| {
        let scan = tag424::sun::ScannedUrl {
            read_ctr: Some(s.ctr),
            mac: s.mac,
            ..Default::default()
        };
        let keys = tag424::sun::SunKeys {
            file_read: key.clone(),
            meta_read: None,
        };
        tag424::sun::verify(&scan, &keys).is_ok_and(|v| v.genuine)
    };
    let mac = sdm_mac(&key, None, Some(0x2A), b"");
    let genuine = format!(
        "x=q8w3sbcz&n=00002A&e={}",
        mac.iter().map(|b| format!("{b:02X}")).collect::<String>()
    );
    let q = query::parse(&genuine).unwrap();
    assert!(sun_mac_matches(&key, &q.sun.unwrap()));
    let mut rng = XorShift(0xBADC_0FFE_E0DD_F00D);
    let mut passed_same = 0;
    for _ in 0..iters() / 4 {
        let m = rng.mutate(genuine.as_bytes());
        let Ok(mq) = query::parse(&String::from_utf8_lossy(&m)) else {
            continue;
        };
        if let Some(s) = mq.sun {
            if sun_mac_matches(&key, &s) {
                assert_eq!(
                    (s.ctr, s.mac),
                    (0x2A, mac),
                    "{:?}",
                    String::from_utf8_lossy(&m)
                );
                passed_same += 1;
            }
        }
    }
    // Mutations outside n and e (or case changes) keep the same scan.
    assert!(passed_same > 0);
}
