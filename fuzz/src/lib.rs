//! Fuzz logic for `tag424`, shared by the libFuzzer targets in `fuzz_targets/` and the
//! deterministic smoke tests in `tests/smoke.rs` (which run on stable without libFuzzer).
//!
//! Every function takes arbitrary bytes and must never panic. The assertions inside are
//! properties, not input checks: a failing assertion is a bug in `tag424`.

use tag424::card::cmd::get_version::Version;
use tag424::card::file_settings::FileSettings;
use tag424::card::{Card, CommMode, FixedRandom, Session};
use tag424::crypto::ev2::{iv_response, response_mac_input, SessionKeys};
use tag424::crypto::sdm::{encrypt_picc_data, sdm_mac};
use tag424::crypto::{cbc_encrypt, mact, pad_m2, unpad_m2, AesKey};
use tag424::sun::{self, SunKeys, Template, DEFAULT_TEMPLATE};
use tag424::transport::replay::Fixture;
use tag424::transport::{Transport, TransportError};

/// SesAuthMACKey of AN12196 Table 7.
pub const MAC_KEY: [u8; 16] = [
    0x82, 0x48, 0x13, 0x4A, 0x38, 0x6E, 0x86, 0xEB, 0x7F, 0xAF, 0x54, 0xA5, 0x2E, 0x53, 0x6C, 0xB6,
];
/// A fixed SesAuthENCKey (Table 7 does not need one).
pub const ENC_KEY: [u8; 16] = [
    0x1D, 0x26, 0x5A, 0x6C, 0x7E, 0x0B, 0x35, 0x11, 0x98, 0xA1, 0x44, 0xC3, 0x5E, 0x70, 0x09, 0xF2,
];
/// TI of AN12196 Table 7.
pub const TI: [u8; 4] = [0x7A, 0x21, 0x08, 0x5E];
/// Fixed SDM keys for the URL target.
pub const SDM_FILE_READ_KEY: [u8; 16] = [0x5A; 16];
pub const SDM_META_READ_KEY: [u8; 16] = [0xA5; 16];
/// A template with every encrypted mirror.
pub const PICC_TEMPLATE: &str = "https://sdm.example.com/t?p={picc}&d={enc}&m={mac}";

/// The GetFileSettings answer of AN12196 Table 7 (file 02 with SDM).
pub const T7_FILE_SETTINGS: &str = "0040EEEE000100D1FE001F00004400004400002000006A0000";
/// The full response APDU of AN12196 Table 7 (data, MACt, `9100`).
pub const T7_RESPONSE: &str =
    "0040EEEE000100D1FE001F00004400004400002000006A00002A474282E7A479869100";

fn session_keys() -> SessionKeys {
    SessionKeys {
        enc: AesKey::new(ENC_KEY),
        mac: AesKey::new(MAC_KEY),
    }
}

fn sun_keys() -> SunKeys {
    SunKeys {
        file_read: AesKey::new(SDM_FILE_READ_KEY),
        meta_read: Some(AesKey::new(SDM_META_READ_KEY)),
    }
}

/// A cursor over fuzz input that never fails: past the end it yields zeros / empty slices.
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// response_parsers
// ---------------------------------------------------------------------------------------------

/// Feeds `data` to every pure response parser.
pub fn response_parsers(data: &[u8]) {
    // GetFileSettings.
    if let Ok(fs) = FileSettings::parse(data) {
        check_file_settings_roundtrip(&fs);
        // Validation and region listing must not panic on anything the chip can report.
        let _ = fs.validate();
        if let Some(sdm) = &fs.sdm {
            let _ = sdm.regions();
        }
    }

    // GetVersion: the first byte says how many frames (0..=3), the next ones their lengths.
    let mut b = Bytes { data };
    let n = (b.u8() % 4) as usize;
    let lens: Vec<usize> = (0..n).map(|_| (b.u8() % 24) as usize).collect();
    let mut frames: Vec<Vec<u8>> = lens.iter().map(|&l| b.take(l).to_vec()).collect();
    if let Some(last) = frames.last_mut() {
        last.extend_from_slice(b.take(usize::MAX));
    }
    if let Ok(v) = Version::parse(&frames) {
        let _ = v.is_ntag424_dna();
        let _ = v.product();
        let _ = v.production();
        let _ = v.hardware.storage_bytes();
        let _ = v.software.storage_bytes();
    }

    // Fixture files.
    let text = String::from_utf8_lossy(data);
    if let Ok(fx) = Fixture::parse(&text) {
        for (_, resp) in &fx.exchanges {
            assert!(resp.len() >= 2, "a fixture response without SW1 SW2");
        }
        let _ = fx.meta_hex("rnd_a");
    }

    // PICCData, with the input as the encrypted block (only 16 bytes can succeed).
    let key = AesKey::new(SDM_META_READ_KEY);
    let _ = tag424::crypto::sdm::decrypt_picc_data(&key, data);
    if data.len() >= 16 {
        if let Ok(p) = tag424::crypto::sdm::decrypt_picc_data(&key, &data[..16]) {
            assert!(p.uid.is_some() || p.read_ctr.is_some());
            if let Some(c) = p.read_ctr {
                assert!(c <= 0xFF_FFFF);
            }
        }
    }

    // ISO/IEC 9797-1 M2 unpadding.
    if let Some(u) = unpad_m2(data) {
        assert!(u.len() < data.len(), "unpad_m2 removed nothing");
        assert_eq!(&data[..u.len()], u, "unpad_m2 result is not a prefix");
        assert_eq!(data[u.len()], 0x80);
        assert!(data[u.len() + 1..].iter().all(|&b| b == 0));
        assert!(data.len() - u.len() <= 16);
        if data.len().is_multiple_of(16) {
            assert_eq!(pad_m2(u), data, "aligned padding does not round-trip");
        }
    }
    let padded = pad_m2(data);
    assert_eq!(padded.len() % 16, 0);
    assert_eq!(unpad_m2(&padded), Some(data));
}

/// GetFileSettings = FileType || FileOption AccessRights (from `encode_change`) || FileSize ||
/// SDM fields (rest of `encode_change`). Re-parsing must give the same settings.
pub fn check_file_settings_roundtrip(fs: &FileSettings) {
    let enc = fs.encode_change();
    let size = fs.size.to_le_bytes();
    let mut b = vec![fs.file_type];
    b.extend_from_slice(&enc[..3]);
    b.extend_from_slice(&size[..3]);
    b.extend_from_slice(&enc[3..]);
    let again = FileSettings::parse(&b)
        .unwrap_or_else(|e| panic!("re-encoded settings {} do not parse: {e}", hex(&b)));
    assert_eq!(
        &again,
        fs,
        "settings change through encode/parse: {}",
        hex(&b)
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

// ---------------------------------------------------------------------------------------------
// session_responses
// ---------------------------------------------------------------------------------------------

/// A transport that ignores the command and answers from fuzz input.
///
/// Each response is `flags len body[len]`:
/// - `flags & 3`: the status word: `0` → `9100`, `1` → `91AF`, `2` → `9000`, `3` → two raw
///   bytes from the input (or fewer: a response too short to carry a status);
/// - `flags & 4`: the body is padded and encrypted as a CommMode.Full response;
/// - `flags & 8`: a correct response MACt is appended (so fuzzing reaches the code after the
///   MAC check), computed with the counter the transport has counted;
/// - once the input is exhausted, every transmit fails as if the tag left the field.
pub struct FuzzTransport<'a> {
    input: Bytes<'a>,
    keys: SessionKeys,
    ctr: u16,
}

impl<'a> FuzzTransport<'a> {
    pub fn new(data: &'a [u8], ctr: u16) -> Self {
        FuzzTransport {
            input: Bytes { data },
            keys: session_keys(),
            ctr,
        }
    }
}

impl Transport for FuzzTransport<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.len() >= 2 && command[0] == 0x90 && command[1] != 0xAF {
            self.ctr = self.ctr.wrapping_add(1);
        }
        if self.input.is_empty() {
            return Err(TransportError::CardRemoved);
        }
        let flags = self.input.u8();
        let len = self.input.u8() as usize;
        let mut body = self.input.take(len).to_vec();
        let sw: Vec<u8> = match flags & 3 {
            0 => vec![0x91, 0x00],
            1 => vec![0x91, 0xAF],
            2 => vec![0x90, 0x00],
            _ => self.input.take(2).to_vec(),
        };
        if flags & 4 != 0 {
            let iv = iv_response(&self.keys.enc, &TI, self.ctr);
            body = cbc_encrypt(&self.keys.enc, &iv, &pad_m2(&body)).expect("padded");
        }
        if flags & 8 != 0 {
            let rc = sw.get(1).copied().unwrap_or(0);
            let mac = mact(
                &self.keys.mac,
                &response_mac_input(rc, self.ctr, &TI, &body),
            );
            body.extend_from_slice(&mac);
        }
        body.extend_from_slice(&sw);
        Ok(body)
    }
}

fn mode(b: u8) -> CommMode {
    match b % 3 {
        0 => CommMode::Plain,
        1 => CommMode::Mac,
        _ => CommMode::Full,
    }
}

/// Runs a script of session commands against fuzz-provided responses.
///
/// Input: `ctr_lo ctr_hi chunk script_len script[script_len] responses…`. Each script byte picks
/// one command (its parameters come from the following script bytes). The session is rebuilt
/// with [`Session::from_parts`] whenever a command ended it.
pub fn session_responses(data: &[u8]) {
    let mut head = Bytes { data };
    let start_ctr = u16::from_le_bytes([head.u8(), head.u8()]);
    let chunk = head.u8() as usize;
    let script_len = (head.u8() % 24) as usize;
    let script = head.take(script_len);
    let responses = head.data;

    let mut card = Card::new(FuzzTransport::new(responses, start_ctr))
        .with_rng(FixedRandom::new(vec![0x13, 0xC5, 0xDB, 0x8A]));
    card.set_chunk(chunk);
    let mut s = Bytes { data: script };
    let old = AesKey::new([0; 16]);
    let new = AesKey::new([0x11; 16]);
    while !s.is_empty() {
        let op = s.u8();
        // Commands that need no session (or start one) run on the card itself.
        if op % 16 >= 12 {
            run_card_op(&mut card, op, &mut s);
            continue;
        }
        // Every command gets a session resumed at the counter the transport has counted, so
        // that MACs the transport computes match what the session expects.
        let ctr = card.transport().ctr;
        let sess = Session::from_parts(&mut card, session_keys(), TI, ctr, 0);
        let r: Result<Session<'_, _>, _> = match op % 16 {
            0 => sess.get_file_settings(s.u8()).map(|(x, fs)| {
                check_file_settings_roundtrip(&fs);
                x
            }),
            1..=3 => {
                let len = 1 + s.u8() as usize * 2;
                let off = u32::from(s.u8()) << 16 | u32::from(s.u8());
                sess.read_data(s.u8(), off, len, mode(op - 1))
                    .map(|(x, d)| {
                        assert_eq!(d.len(), len, "ReadData returned the wrong length");
                        x
                    })
            }
            4..=6 => {
                let n = s.u8() as usize;
                let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
                sess.write_data(s.u8(), u32::from(s.u8()), &payload, mode(op - 4))
            }
            7 => sess.change_key(s.u8() % 6, &old, &new, s.u8()),
            8 => sess.get_card_uid().map(|(x, _)| x),
            9 => sess.get_key_version(s.u8()).map(|(x, _)| x),
            10 => {
                let fo = s.u8();
                sess.set_configuration(fo, &[s.u8(), s.u8()])
            }
            _ => {
                // Ends the session either way.
                let _ = sess.change_own_key(&new, s.u8());
                continue;
            }
        };
        if let Ok(x) = r {
            assert!(
                x.cmd_ctr() > ctr,
                "a successful command did not advance CmdCtr"
            );
        }
    }
}

fn run_card_op<T: Transport>(card: &mut Card<T>, op: u8, s: &mut Bytes<'_>) {
    match op % 16 {
        12 => {
            let key = AesKey::new([s.u8(); 16]);
            if let Ok(sess) = card.authenticate_ev2_first(s.u8() % 6, &key) {
                let _ = sess.get_card_uid();
            }
        }
        13 => {
            let _ = card.get_version();
        }
        14 => {
            if let Ok(fs) = card.get_file_settings(s.u8()) {
                check_file_settings_roundtrip(&fs);
            }
        }
        _ => {
            let len = 1 + s.u8() as usize;
            if let Ok(d) = card.read_data(s.u8(), u32::from(s.u8()), len) {
                assert_eq!(d.len(), len);
            }
            let _ = card.read_sig();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// url_parser
// ---------------------------------------------------------------------------------------------

/// The input as a template, and as a scanned URL for the default and the `{picc}` template.
pub fn url_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = Template::parse(&text) {
        let xuid = "q8w3sbcz";
        let rendered = t.render(xuid);
        for (_, off, len) in t.offsets(xuid) {
            assert!(off + len <= rendered.len(), "mirror offset past the URL");
        }
        if let Ok(scan) = sun::parse_url(&t, &rendered) {
            let _ = sun::verify(&scan, &sun_keys());
        }
        if let Ok(scan) = sun::parse_url(&t, &text) {
            let _ = sun::verify(&scan, &sun_keys());
        }
    }
    let keys = sun_keys();
    for t in [DEFAULT_TEMPLATE, PICC_TEMPLATE] {
        let t = Template::parse(t).expect("fixed template");
        if let Ok(scan) = sun::parse_url(&t, &text) {
            if let Ok(v) = sun::verify(&scan, &keys) {
                assert!(
                    !v.genuine,
                    "a random URL verified as genuine: {text:?} ({v:?})"
                );
            }
        }
    }
    genuine_roundtrip(data);
}

/// Builds a genuine URL from fuzz-chosen UID, counter and xuid; it must verify and give back
/// the same fields, and any single changed hex digit of the MAC must make it not genuine.
fn genuine_roundtrip(data: &[u8]) {
    let mut b = Bytes { data };
    let mut uid = [0u8; 7];
    for u in &mut uid {
        *u = b.u8();
    }
    let ctr = u32::from_le_bytes([b.u8(), b.u8(), b.u8(), 0]);
    let flip = b.u8() as usize;
    let xuid: String = b
        .take(12)
        .iter()
        .map(|&c| (b'a' + c % 26) as char)
        .collect();
    let keys = sun_keys();
    let file_read = AesKey::new(SDM_FILE_READ_KEY);

    // Default template: plain counter, no UID in the MAC session vector.
    let t = Template::default();
    let mac = sdm_mac(&file_read, None, Some(ctr), &[]);
    let url = format!(
        "https://yourdomain.com/auth?x={xuid}&n={ctr:06X}&e={}",
        hex(&mac)
    );
    let scan = sun::parse_url(&t, &url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(scan.read_ctr, Some(ctr));
    assert_eq!(scan.xuid.as_deref(), Some(xuid.as_str()));
    let v = sun::verify(&scan, &keys).expect("verifies");
    assert!(v.genuine, "{url}: {:?}", v.reason);
    let mut bad = url.clone().into_bytes();
    let i = bad.len() - 16 + flip % 16;
    bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).expect("ascii");
    let scan = sun::parse_url(&t, &bad).expect("still parses");
    assert!(!sun::verify(&scan, &keys).expect("checks").genuine, "{bad}");

    // {picc}{enc}{mac}: encrypted PICCData, one block of file data under the MAC.
    let t = Template::parse(PICC_TEMPLATE).expect("fixed template");
    let meta = AesKey::new(SDM_META_READ_KEY);
    let picc = encrypt_picc_data(&meta, Some(&uid), Some(ctr), &[0x42; 16]);
    let file = tag424::crypto::sdm::encrypt_file_data(&file_read, &uid, ctr, &[0x30; 16])
        .expect("one block");
    let enc_hex = hex(&file);
    let mac_input = format!("{enc_hex}&m=");
    let mac = sdm_mac(&file_read, Some(&uid), Some(ctr), mac_input.as_bytes());
    let url = format!(
        "https://sdm.example.com/t?p={}&d={enc_hex}&m={}",
        hex(&picc),
        hex(&mac)
    );
    let scan = sun::parse_url(&t, &url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let v = sun::verify(&scan, &keys).expect("verifies");
    assert!(v.genuine, "{url}: {:?}", v.reason);
    assert_eq!(v.uid, Some(uid));
    assert_eq!(v.read_ctr, Some(ctr));
    assert_eq!(v.file_data.as_deref(), Some(&[0x30u8; 16][..]));
}

/// Arbitrary APDUs to a simulated chip: it never panics and every answer ends with a status
/// word of the chip's families (`91xx`, `90xx`, `6xxx`). The input is a sequence of
/// `len || bytes` frames; byte 0 bit 0 chooses whether the application is selected first.
pub fn sim_apdus(data: &[u8]) {
    use tag424::card::FixedRandom;
    use tag424::sim::{ChipState, SimChip};
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    // Building a factory state signs its UID (slow in debug): do it once.
    static STATE: std::sync::OnceLock<ChipState> = std::sync::OnceLock::new();
    let state =
        STATE.get_or_init(|| ChipState::factory([0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]));
    let mut chip = SimChip::with_rng(state.clone(), FixedRandom::new(vec![0x5A, 0x13, 0x77]));
    if flags & 1 == 1 {
        chip.select_application();
    }
    let keys_before: Vec<_> = chip.state.keys.iter().map(|k| k.to_hex()).collect();
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (apdu, next) = tail.split_at(n);
        rest = next;
        let answer = chip.process(apdu);
        assert!(answer.len() >= 2, "answer without a status word");
        let sw1 = answer[answer.len() - 2];
        assert!(
            sw1 == 0x91 || sw1 == 0x90 || sw1 >> 4 == 0x6,
            "status {sw1:02X}"
        );
        if flags & 2 == 2 {
            chip.power_cycle();
        }
    }
    // Without the keys nothing can change them (the factory key is all zero, so a fuzzer
    // could in principle authenticate; only a completed ChangeKey changes a key).
    let _ = keys_before;
}

// ---------------------------------------------------------------------------------------------
// verifier_query
// ---------------------------------------------------------------------------------------------

/// Percent-encodes a query value (everything but unreserved characters).
pub fn query_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string of a parsed query.
pub fn query_canonical(q: &tag424::verifier::query::Query) -> String {
    use tag424::verifier::query::Lookup;
    let mut parts = match &q.lookup {
        Some(Lookup::Xuid(x)) => vec![format!("x={}", query_encode(x))],
        Some(Lookup::Cuid { cuid, aid }) => vec![
            format!("c={}", query_encode(cuid)),
            format!("a={}", query_encode(aid)),
        ],
        Some(Lookup::Uid { uid, aid }) => vec![
            format!("u={}", hex(uid)),
            format!("a={}", query_encode(aid)),
        ],
        None if q.lookup_without_aid => vec!["c=z".to_string()],
        None => Vec::new(),
    };
    if let Some(s) = &q.sun {
        parts.push(format!("n={:06X}", s.ctr));
        parts.push(format!("e={}", hex(&s.mac)));
    }
    if let Some(r) = &q.token {
        parts.push(format!("r={}", query_encode(r)));
    }
    parts.join("&")
}

/// The verifier's query parser and SUN check on arbitrary input: never panics; a parsed query
/// survives a canonical round trip; the MAC check accepts only the MAC of the parsed counter;
/// text from the query is always escaped on the /auth page.
pub fn verifier_query(data: &[u8]) {
    use tag424::verifier::query::{self, MAX_QUERY_LEN};
    use tag424::verifier::page;

    let text = String::from_utf8_lossy(data);
    let _ = query::percent_decode(&text);
    let key = AesKey::new(SDM_FILE_READ_KEY);
    if let Ok(q) = query::parse(&text) {
        assert!(text.len() <= MAX_QUERY_LEN);
        let canon = query_canonical(&q);
        assert_eq!(
            query::parse(&canon),
            Ok(q.clone()),
            "round trip of {canon:?}"
        );
        if let Some(sun) = &q.sun {
            assert!(sun.ctr <= 0xFF_FFFF);
            // The verifier checks n/e with the one SUN implementation.
            let want = sdm_mac(&key, None, Some(sun.ctr), b"");
            let scan = tag424::sun::ScannedUrl {
                read_ctr: Some(sun.ctr),
                mac: sun.mac,
                ..Default::default()
            };
            let keys = tag424::sun::SunKeys {
                file_read: key.clone(),
                meta_read: None,
            };
            let v = tag424::sun::verify(&scan, &keys).unwrap();
            assert_eq!(v.genuine, want == sun.mac);
        }
        if let Some(query::Lookup::Xuid(x)) = &q.lookup {
            assert!(query::valid_xuid(x));
        }
    }
    let esc = page::escape(&text);
    assert!(!esc.contains(['<', '>', '"', '\'']), "unescaped markup");
}
