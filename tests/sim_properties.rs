//! Properties of the simulated chip (the `tag424-sim` crate, `crates/sim/`), checked with random inputs.
//!
//! - the chip never panics and always answers a status word of the right family;
//! - without the keys, no sequence of commands changes a key, a key version, opens a
//!   session or moves the SDM read counter of file 2 backwards;
//! - with key 0, `Session::change_key` changes exactly the key it names;
//! - a tear-off at any APDU of a key-changing sequence leaves every key either old or new,
//!   always together with its version.
//!
//! Plus deterministic tests that pin the behaviour `docs/simulator.md` describes (delay after
//! failed authentications, SDM counter rules).

mod hostview;

use std::sync::OnceLock;

use proptest::prelude::*;
use tag424::card::cmd::change_key::key_data_other;
use tag424::card::file_settings::{Access, AccessRights, FileSettings, SdmSettings};
use tag424::card::{wrap_native, Card, CommMode, FixedRandom, Sw};
use tag424::crypto::ev2::{command_mac_input, derive_session_keys, iv_command, SessionKeys};
use tag424::crypto::{cbc_decrypt, cbc_encrypt, mact, pad_m2, rotl1, AesKey};
use tag424::sim::chip::DELAY_THRESHOLD;
use tag424::sim::{ChipState, Fault, FaultKind, SimChip, SimTransport};

const UID: [u8; 7] = [0x04, 0x5A, 0x11, 0x22, 0x33, 0x44, 0x80];
const NDEF_APP: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];

/// The factory state, built once (the originality signature is slow to compute in debug).
fn factory() -> ChipState {
    static STATE: OnceLock<ChipState> = OnceLock::new();
    STATE.get_or_init(|| ChipState::factory(UID)).clone()
}

/// 64 cases per property (fast in debug); `PROPTEST_CASES=N` explores more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- checking one answer -------------------------------------------------------------------

/// Every answer ends in a status word of the family its CLA calls for; errors carry no data.
fn check_answer(cmd: &[u8], resp: &[u8]) -> Result<(), TestCaseError> {
    let hex = hex::encode_upper(cmd);
    prop_assert!(resp.len() >= 2, "answer to {hex} has no status word");
    let n = resp.len() - 2;
    let sw = u16::from_be_bytes([resp[n], resp[n + 1]]);
    match cmd.first() {
        Some(0x90) => prop_assert_eq!(sw >> 8, 0x91, "native {} answered {:04X}", hex, sw),
        Some(0x00) => prop_assert!(
            sw == 0x9000 || (0x6000..0x7000).contains(&sw),
            "ISO {} answered {:04X}",
            hex,
            sw
        ),
        None => prop_assert_eq!(sw, 0x6700),
        // The reader's GetData UID pseudo-APDU, which the simulated reader answers.
        Some(0xFF) if cmd == [0xFF, 0xCA, 0x00, 0x00, 0x00] => prop_assert_eq!(sw, 0x9000),
        Some(_) => prop_assert_eq!(sw, 0x6E00, "CLA of {} answered {:04X}", hex, sw),
    }
    let success = matches!(sw, 0x9000 | 0x9100 | 0x91AF | 0x9190);
    prop_assert!(
        success || n == 0,
        "error {:04X} to {} carries {} data bytes",
        sw,
        hex,
        n
    );
    Ok(())
}

fn sw_of(resp: &[u8]) -> u16 {
    let n = resp.len();
    u16::from_be_bytes([resp[n - 2], resp[n - 1]])
}

// ---- a minimal host written from the test's side (to reach deep chip states) ---------------

/// An EV2 session as the test tracks it (the chip may end it at any time; the test does not
/// care, its MACs then simply fail).
struct HostSession {
    keys: SessionKeys,
    ti: [u8; 4],
    ctr: u16,
}

/// AuthenticateEV2First with `key` as raw APDUs; every answer is checked.
fn raw_auth(
    chip: &mut SimChip,
    first: bool,
    key_no: u8,
    key: &AesKey,
    rnd_a: [u8; 16],
) -> Result<Option<HostSession>, TestCaseError> {
    let p1 = if first {
        vec![0x90, 0x71, 0x00, 0x00, 0x02, key_no, 0x00, 0x00]
    } else {
        vec![0x90, 0x77, 0x00, 0x00, 0x01, key_no, 0x00]
    };
    let r = chip.process(&p1);
    check_answer(&p1, &r)?;
    if sw_of(&r) != 0x91AF || r.len() != 18 {
        return Ok(None);
    }
    let rnd_b: [u8; 16] = cbc_decrypt(key, &[0; 16], &r[..16])
        .unwrap()
        .try_into()
        .unwrap();
    let plain = [rnd_a, rotl1(&rnd_b)].concat();
    let mut p2 = vec![0x90, 0xAF, 0x00, 0x00, 0x20];
    p2.extend(cbc_encrypt(key, &[0; 16], &plain).unwrap());
    p2.push(0x00);
    let r = chip.process(&p2);
    check_answer(&p2, &r)?;
    if sw_of(&r) != 0x9100 || !first {
        return Ok(None);
    }
    let answer = cbc_decrypt(key, &[0; 16], &r[..r.len() - 2]).unwrap();
    Ok(Some(HostSession {
        keys: derive_session_keys(key, &rnd_a, &rnd_b),
        ti: answer[..4].try_into().unwrap(),
        ctr: 0,
    }))
}

/// A native command under secure messaging in `mode` (payload cut to 255 bytes if longer).
fn sm_apdu(s: &HostSession, ins: u8, header: &[u8], data: &[u8], mode: CommMode) -> Vec<u8> {
    let mut payload = header.to_vec();
    if mode == CommMode::Plain {
        payload.extend_from_slice(data);
    } else {
        let body = if mode == CommMode::Full && !data.is_empty() {
            let iv = iv_command(&s.keys.enc, &s.ti, s.ctr);
            cbc_encrypt(&s.keys.enc, &iv, &pad_m2(data)).unwrap()
        } else {
            data.to_vec()
        };
        let mac = mact(
            &s.keys.mac,
            &command_mac_input(ins, s.ctr, &s.ti, header, &body),
        );
        payload.extend_from_slice(&body);
        payload.extend_from_slice(&mac);
    }
    payload.truncate(255);
    wrap_native(ins, &payload).unwrap()
}

// ---- random operations ----------------------------------------------------------------------

/// INS values of every native command the chip knows, plus GetFileCounters (not simulated).
const NATIVE_INS: [u8; 14] = [
    0x60, 0x3C, 0x71, 0x77, 0xAF, 0x51, 0xF5, 0x5F, 0xC4, 0x64, 0xAD, 0x8D, 0x5C, 0xF6,
];

#[derive(Debug, Clone)]
enum Op {
    /// Any bytes at all.
    Raw(Vec<u8>),
    /// `90 INS 00 00 [Lc data] 00`.
    Native {
        ins: u8,
        data: Vec<u8>,
    },
    /// `00 INS P1 P2 body`.
    Iso {
        ins: u8,
        p1: u8,
        p2: u8,
        body: Vec<u8>,
    },
    /// ReadData / ISOReadBinary of a real file, mostly in range (drives the SDM counter).
    ReadData {
        file_no: u8,
        off: u32,
        len: u32,
    },
    IsoReadSfi {
        file_no: u8,
        off: u8,
        le: u8,
    },
    IsoSelectFid(u16),
    SelectApp,
    PowerCycle,
    /// A complete authentication (First or NonFirst) with the given key.
    Auth {
        first: bool,
        key_no: u8,
        key: [u8; 16],
        rnd_a: [u8; 16],
    },
    /// A command under secure messaging of the session the test believes is open.
    Sm {
        ins: u8,
        header: Vec<u8>,
        data: Vec<u8>,
        mode: CommMode,
    },
    /// ChangeFileSettings of file 2 with random (often invalid) SDM settings, in Full mode.
    SmSdmSettings(Box<FileSettings>),
}

fn small_file_no() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 0u8..5, 1 => any::<u8>()]
}

fn native_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (small_file_no(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(f, rest)| [vec![f], rest].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn comm_mode() -> impl Strategy<Value = CommMode> {
    prop_oneof![
        Just(CommMode::Plain),
        Just(CommMode::Mac),
        Just(CommMode::Full)
    ]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        (0u8..5).prop_map(Access::Key),
        Just(Access::Free),
        Just(Access::Never)
    ]
}

fn offset() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop_oneof![
        0u32..256,
        any::<u32>().prop_map(|v| v & 0xFF_FFFF)
    ])
}

prop_compose! {
    fn sdm_settings()(
        (uid_mirror, read_ctr_mirror, ascii) in (any::<bool>(), any::<bool>(), prop::bool::weighted(0.9)),
        read_ctr_limit in prop::option::of(0u32..8),
        enc_file_data in prop::option::of((0u32..256, prop_oneof![Just(32u32), Just(64), 0u32..100])),
        (ctr_ret, meta_read, file_read) in (access(), access(), access()),
        (uid_offset, read_ctr_offset, picc_data_offset) in (offset(), offset(), offset()),
        (mac_input_offset, mac_offset) in (offset(), offset()),
    ) -> SdmSettings {
        SdmSettings {
            uid_mirror, read_ctr_mirror, read_ctr_limit, enc_file_data, ascii,
            ctr_ret: Some(ctr_ret), meta_read: Some(meta_read), file_read: Some(file_read),
            uid_offset, read_ctr_offset, picc_data_offset, mac_input_offset, mac_offset,
            tt_offset: None, lrp: false,
        }
    }
}

/// SDM settings laid out so that they usually pass the chip's validation.
fn laid_out_sdm() -> impl Strategy<Value = SdmSettings> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            0u8..3,
            prop::option::of(0u8..5),
        ),
        (
            prop::option::of(0u32..6),
            any::<bool>(),
            prop_oneof![Just(32u32), Just(64)],
        ),
        (0u32..8, 0u32..80, access()),
    )
        .prop_map(
            |((uid, ctr, meta, file), (limit, enc, enc_len), (j, mi, ctr_ret))| {
                let meta = match meta {
                    0 => Access::Free,
                    1 => Access::Key(j as u8 % 5),
                    _ => Access::Never,
                };
                let free = meta == Access::Free;
                let uid = uid || matches!(meta, Access::Key(_)) && !ctr;
                let file_key = file.is_some();
                let enc = enc && file_key && uid && ctr;
                SdmSettings {
                    uid_mirror: uid,
                    read_ctr_mirror: ctr,
                    read_ctr_limit: limit.filter(|_| ctr),
                    enc_file_data: enc.then_some((80, enc_len)),
                    ascii: true,
                    ctr_ret: Some(ctr_ret),
                    meta_read: Some(meta),
                    file_read: Some(file.map_or(Access::Never, Access::Key)),
                    uid_offset: (uid && free).then_some(j),
                    read_ctr_offset: (ctr && free).then_some(20 + j),
                    tt_offset: None,
                    lrp: false,
                    picc_data_offset: matches!(meta, Access::Key(_)).then_some(30 + j),
                    mac_input_offset: file_key.then_some(mi),
                    mac_offset: file_key.then_some(160 + j),
                }
            },
        )
}

prop_compose! {
    fn file_settings()(
        comm_mode in comm_mode(),
        ar in (access(), access(), access(), prop_oneof![3 => Just(Access::Key(0)), 1 => access()]),
        sdm in prop_oneof![1 => Just(None), 3 => laid_out_sdm().prop_map(Some), 1 => sdm_settings().prop_map(Some)],
    ) -> FileSettings {
        FileSettings {
            file_type: 0,
            comm_mode,
            access: AccessRights { read: ar.0, write: ar.1, read_write: ar.2, change: ar.3 },
            size: 256,
            sdm,
        }
    }
}

/// Operations that need no key: what an attacker without the keys can send.
fn keyless_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Raw),
        6 => (prop::sample::select(NATIVE_INS.to_vec()), native_data())
            .prop_map(|(ins, data)| Op::Native { ins, data }),
        1 => (any::<u8>(), native_data()).prop_map(|(ins, data)| Op::Native { ins, data }),
        2 => (
            prop::sample::select(vec![0xA4u8, 0xB0, 0xD6, 0xCA]),
            prop_oneof![Just(0u8), Just(4), Just(0x82), any::<u8>()],
            prop_oneof![Just(0x0Cu8), Just(0), any::<u8>()],
            prop::collection::vec(any::<u8>(), 0..20),
        )
            .prop_map(|(ins, p1, p2, body)| Op::Iso { ins, p1, p2, body }),
        3 => (0u8..5, 0u32..300, 0u32..300)
            .prop_map(|(file_no, off, len)| Op::ReadData { file_no, off, len }),
        2 => (0u8..5, 0u8..255, any::<u8>())
            .prop_map(|(file_no, off, le)| Op::IsoReadSfi { file_no, off, le }),
        1 => prop::sample::select(vec![0xE103u16, 0xE104, 0xE105, 0xE110, 0x3F00, 0x1234])
            .prop_map(Op::IsoSelectFid),
        1 => Just(Op::SelectApp),
        1 => Just(Op::PowerCycle),
    ]
}

/// Authentication attempts with keys drawn at random (wrong for a chip with random keys).
fn wrong_auth_op() -> impl Strategy<Value = Op> {
    (any::<bool>(), 0u8..6, any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(
        |(first, key_no, key, rnd_a)| Op::Auth {
            first,
            key_no,
            key,
            rnd_a,
        },
    )
}

/// Everything, including authentication with the factory key and secure-messaging commands.
fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => keyless_op(),
        2 => (any::<bool>(), prop_oneof![3 => Just(0u8), 1 => 0u8..5], any::<[u8; 16]>())
            .prop_map(|(first, key_no, rnd_a)| Op::Auth {
            first,
            key_no,
            key: [0; 16],
            rnd_a,
        }),
        6 => sm_command(),
        2 => file_settings().prop_map(|fs| Op::SmSdmSettings(Box::new(fs))),
    ]
}

/// A secure-messaging command with the header and data length its INS takes, mostly in the
/// comm mode the chip expects, sometimes not.
fn sm_command() -> impl Strategy<Value = Op> {
    let header_data = prop_oneof![
        Just((0x60u8, vec![], vec![], CommMode::Mac)),
        Just((0x51, vec![], vec![], CommMode::Full)),
        Just((0x3C, vec![0], vec![], CommMode::Full)),
        small_file_no().prop_map(|f| (0xF5, vec![f], vec![], CommMode::Mac)),
        small_file_no().prop_map(|f| (0xF6, vec![f], vec![], CommMode::Full)),
        (0u8..6).prop_map(|k| (0x64, vec![k], vec![], CommMode::Mac)),
        (0u8..6, prop::collection::vec(any::<u8>(), 15..23)).prop_map(|(k, d)| (
            0xC4,
            vec![k],
            d,
            CommMode::Full
        )),
        (
            prop::sample::select(vec![0u8, 4, 5, 7, 0x0A, 0x0B]),
            prop::collection::vec(any::<u8>(), 0..11)
        )
            .prop_map(|(o, mut d)| {
                let len = [(0u8, 1usize), (4, 2), (5, 10), (0x0A, 5), (0x0B, 1)]
                    .iter()
                    .find(|(opt, _)| *opt == o)
                    .map_or(d.len(), |(_, l)| *l);
                d.resize(len, 0x02);
                (0x5C, vec![o], d, CommMode::Full)
            }),
        (1u8..5, any::<[u8; 16]>(), any::<u8>()).prop_map(|(k, new, v)| {
            let d = key_data_other(&AesKey::new(new), &AesKey::FACTORY, v).to_vec();
            (0xC4, vec![k], d, CommMode::Full)
        }),
        (0u8..5, 0u32..300, 0u32..300, comm_mode()).prop_map(|(f, o, l, m)| {
            let h = tag424::card::cmd::read_data::data_header(f, o, l).to_vec();
            (0xAD, h, vec![], m)
        }),
        (0u8..5, 0u32..300, 1usize..64, comm_mode(), any::<u8>()).prop_map(|(f, o, l, m, b)| {
            let h = tag424::card::cmd::read_data::data_header(f, o, l as u32).to_vec();
            (0x8D, h, vec![b; l], m)
        }),
        (
            prop::sample::select(NATIVE_INS.to_vec()),
            prop::collection::vec(any::<u8>(), 0..3),
            prop::collection::vec(any::<u8>(), 0..40),
            comm_mode()
        ),
    ];
    (header_data, prop::option::weighted(0.2, comm_mode())).prop_map(
        |((ins, header, data, mode), other)| Op::Sm {
            ins,
            header,
            data,
            mode: other.unwrap_or(mode),
        },
    )
}

/// Runs one operation, checking every answer.
fn run_op(
    chip: &mut SimChip,
    session: &mut Option<HostSession>,
    op: &Op,
) -> Result<(), TestCaseError> {
    let send = |chip: &mut SimChip, cmd: Vec<u8>| -> Result<Vec<u8>, TestCaseError> {
        let r = chip.process(&cmd);
        check_answer(&cmd, &r)?;
        Ok(r)
    };
    match op {
        Op::Raw(bytes) => {
            send(chip, bytes.clone())?;
        }
        Op::Native { ins, data } => {
            send(chip, wrap_native(*ins, data).unwrap())?;
        }
        Op::Iso { ins, p1, p2, body } => {
            send(chip, [&[0x00, *ins, *p1, *p2][..], body].concat())?;
        }
        Op::ReadData { file_no, off, len } => {
            let h = tag424::card::cmd::read_data::data_header(*file_no, *off, *len);
            let r = send(chip, wrap_native(0xAD, &h).unwrap())?;
            // Follow chained frames as a host would.
            let mut sw = sw_of(&r);
            let mut guard = 0;
            while sw == 0x91AF && guard < 4 {
                sw = sw_of(&send(chip, vec![0x90, 0xAF, 0x00, 0x00, 0x00])?);
                guard += 1;
            }
        }
        Op::IsoReadSfi { file_no, off, le } => {
            send(chip, vec![0x00, 0xB0, 0x80 | file_no, *off, *le])?;
        }
        Op::IsoSelectFid(fid) => {
            let f = fid.to_be_bytes();
            send(chip, vec![0x00, 0xA4, 0x00, 0x0C, 0x02, f[0], f[1], 0x00])?;
        }
        Op::SelectApp => {
            send(
                chip,
                [&[0x00, 0xA4, 0x04, 0x0C, 0x07][..], &NDEF_APP, &[0x00]].concat(),
            )?;
            *session = None;
        }
        Op::PowerCycle => {
            chip.power_cycle();
            *session = None;
        }
        Op::Auth {
            first,
            key_no,
            key,
            rnd_a,
        } => {
            let s = raw_auth(chip, *first, *key_no, &AesKey::new(*key), *rnd_a)?;
            if *first {
                *session = s;
            }
        }
        Op::Sm {
            ins,
            header,
            data,
            mode,
        } => {
            let Some(s) = session.as_mut() else {
                return Ok(());
            };
            let r = send(chip, sm_apdu(s, *ins, header, data, *mode))?;
            s.ctr = s.ctr.wrapping_add(1);
            let mut sw = sw_of(&r);
            let mut guard = 0;
            while sw == 0x91AF && guard < 4 {
                sw = sw_of(&send(chip, vec![0x90, 0xAF, 0x00, 0x00, 0x00])?);
                guard += 1;
            }
        }
        Op::SmSdmSettings(fs) => {
            let Some(s) = session.as_mut() else {
                return Ok(());
            };
            send(
                chip,
                sm_apdu(s, 0x5F, &[2], &fs.encode_change(), CommMode::Full),
            )?;
            s.ctr = s.ctr.wrapping_add(1);
        }
    }
    if !chip.authenticated() {
        *session = None;
    }
    Ok(())
}

/// File 2 with SDM on (counter mirrored), one of a few layouts; access rights as delivered.
fn with_sdm(state: &mut ChipState, variant: u8, limit: Option<u32>) {
    let sdm = match variant % 3 {
        0 => SdmSettings {
            uid_mirror: true,
            read_ctr_mirror: true,
            read_ctr_limit: limit,
            ascii: true,
            ctr_ret: Some(Access::Free),
            meta_read: Some(Access::Free),
            file_read: Some(Access::Key(1)),
            uid_offset: Some(32),
            read_ctr_offset: Some(47),
            mac_input_offset: Some(32),
            mac_offset: Some(54),
            ..SdmSettings::default()
        },
        1 => SdmSettings {
            uid_mirror: true,
            read_ctr_mirror: true,
            read_ctr_limit: limit,
            enc_file_data: Some((100, 32)),
            ascii: true,
            ctr_ret: Some(Access::Key(2)),
            meta_read: Some(Access::Key(2)),
            file_read: Some(Access::Key(1)),
            tt_offset: None,
            lrp: false,
            picc_data_offset: Some(40),
            mac_input_offset: Some(40),
            mac_offset: Some(140),
            ..SdmSettings::default()
        },
        _ => SdmSettings {
            read_ctr_mirror: true,
            read_ctr_limit: limit,
            ascii: true,
            ctr_ret: Some(Access::Never),
            meta_read: Some(Access::Free),
            file_read: Some(Access::Never),
            read_ctr_offset: Some(0),
            ..SdmSettings::default()
        },
    };
    let f = state.file_mut(2).unwrap();
    let mut fs = hostview::settings(f);
    fs.sdm = Some(sdm);
    fs.validate().unwrap();
    hostview::set_settings(f, &fs);
}

proptest! {
    #![proptest_config(config())]

    /// Random bytes, in random sequences, on a chip at PICC level or in the application.
    #[test]
    fn random_bytes_never_panic(
        select in any::<bool>(),
        apdus in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                // Mostly the right CLA, so the native and ISO parsers are reached.
                (prop::sample::select(vec![0x90u8, 0x00]), prop::collection::vec(any::<u8>(), 0..64))
                    .prop_map(|(cla, rest)| [vec![cla], rest].concat()),
            ],
            1..40,
        ),
    ) {
        let mut chip = SimChip::new(factory());
        if select {
            chip.select_application();
        }
        for apdu in &apdus {
            let r = chip.process(apdu);
            check_answer(apdu, &r)?;
        }
    }

    /// Well-formed native and ISO commands, real authentications with the factory key and
    /// correctly MACed commands with random content, in random sequences.
    #[test]
    fn well_formed_sequences_never_panic(
        select in prop::bool::weighted(0.8),
        rng in any::<[u8; 32]>(),
        sdm in prop::option::of((0u8..3, prop::option::of(0u32..4))),
        ops in prop::collection::vec(any_op(), 1..40),
    ) {
        let mut state = factory();
        if let Some((variant, limit)) = sdm {
            with_sdm(&mut state, variant, limit);
        }
        let mut chip = SimChip::with_rng(state, FixedRandom::new(rng.to_vec()));
        if select {
            chip.select_application();
        }
        let mut session = None;
        for op in &ops {
            run_op(&mut chip, &mut session, op)?;
        }
    }

    /// Without the keys nothing that matters moves: keys, key versions, the SDM read counter
    /// (never backwards), and no session ever opens.
    #[test]
    fn keys_and_counter_hold_without_the_keys(
        keys in any::<[[u8; 16]; 5]>(),
        versions in any::<[u8; 5]>(),
        variant in 0u8..3,
        limit in prop::option::of(0u32..6),
        select in any::<bool>(),
        ops in prop::collection::vec(prop_oneof![3 => keyless_op(), 1 => wrong_auth_op()], 1..48),
    ) {
        let mut state = factory();
        state.keys = keys.map(AesKey::new);
        state.key_versions = versions;
        with_sdm(&mut state, variant, limit);
        // The test draws keys at random: the chance of guessing one is nil, but be exact.
        for op in &ops {
            if let Op::Auth { key, .. } = op {
                prop_assume!(!keys.contains(key));
            }
        }
        let before = state.keys.clone();
        let mut chip = SimChip::new(state);
        if select {
            chip.select_application();
        }
        let mut ctr = chip.state.file(2).unwrap().sdm_read_ctr;
        let mut session = None;
        for (i, op) in ops.iter().enumerate() {
            run_op(&mut chip, &mut session, op)?;
            prop_assert!(!chip.authenticated(), "op {}: {:?} opened a session", i, op);
            prop_assert!(chip.state.keys == before, "op {}: {:?} changed a key", i, op);
            prop_assert_eq!(chip.state.key_versions, versions, "op {}: {:?}", i, op);
            let now = chip.state.file(2).unwrap().sdm_read_ctr;
            prop_assert!(now >= ctr, "op {}: {:?}: SDM counter {} -> {}", i, op, ctr, now);
            prop_assert!(hostview::settings(chip.state.file(2).unwrap()).sdm.is_some());
            ctr = now;
        }
    }

    /// ChangeKey with the application master key changes exactly the key it names.
    #[test]
    fn change_key_changes_exactly_that_key(
        k in 1u8..=4,
        new in any::<[u8; 16]>(),
        version in any::<u8>(),
        host_rng in any::<[u8; 16]>(),
        chip_rng in any::<[u8; 20]>(),
    ) {
        prop_assume!(new != [0; 16]);
        let new = AesKey::new(new);
        let chip = SimChip::with_rng(factory(), FixedRandom::new(chip_rng.to_vec()));
        let mut card = Card::new(SimTransport::new(chip)).with_rng(FixedRandom::new(host_rng.to_vec()));
        card.select_ndef_application().unwrap();
        let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        let s = s.change_key(k, &AesKey::FACTORY, &new, version).unwrap();
        drop(s);
        {
            let st = &card.transport().chip.state;
            for i in 0..5u8 {
                if i == k {
                    prop_assert!(st.keys[i as usize] == new, "key {} was not changed", i);
                    prop_assert_eq!(st.key_versions[i as usize], version);
                } else {
                    prop_assert!(st.keys[i as usize].is_factory(), "key {} changed too", i);
                    prop_assert_eq!(st.key_versions[i as usize], 0);
                }
            }
        }
        let err = card.authenticate_ev2_first(k, &AesKey::FACTORY).unwrap_err();
        prop_assert_eq!(err.status(), Some(Sw::AuthenticationError), "{}", err);
        let s = card.authenticate_ev2_first(k, &new);
        prop_assert!(s.is_ok(), "{:?}", s.err());
    }

    /// A tear-off anywhere in `select, auth 0, ChangeKey a, ChangeKey b, ChangeKey 0 (own)`
    /// leaves each key old or new (with the matching version), in order, and usable.
    #[test]
    fn tear_off_leaves_old_or_new_key(
        a in 1u8..=4,
        b_off in 1u8..4,
        new in any::<[[u8; 16]; 3]>(),
        at in 0usize..=6,
        after in any::<bool>(),
    ) {
        let b = 1 + (a - 1 + b_off) % 4;
        prop_assume!(new.iter().all(|k| *k != [0; 16]));
        let [na, nb, n0] = new.map(AesKey::new);
        let kind = if after { FaultKind::AfterApply } else { FaultKind::BeforeApply };
        let transport = SimTransport::new(SimChip::new(factory())).with_fault(Fault { at, kind });
        let mut card = Card::new(transport);
        let outcome = (|| {
            card.select_ndef_application()?;
            let s = card.authenticate_ev2_first(0, &AesKey::FACTORY)?;
            let s = s.change_key(a, &AesKey::FACTORY, &na, 0xA1)?;
            let s = s.change_key(b, &AesKey::FACTORY, &nb, 0xB2)?;
            s.change_own_key(&n0, 0x03)?;
            Ok::<(), tag424::card::CardError>(())
        })();
        // APDU indices: 0 select, 1-2 authentication, 3 ChangeKey a, 4 ChangeKey b, 5 own key.
        let applied = |index: usize| at > index || (at == index && after);
        match &outcome {
            Ok(()) => prop_assert_eq!(at, 6),
            Err(e) => prop_assert!(e.is_tear_off(), "{}", e),
        }
        let t = card.transport();
        let st = &t.chip.state;
        let expect = [
            (0u8, applied(5), &n0, 0x03u8),
            (a, applied(3), &na, 0xA1),
            (b, applied(4), &nb, 0xB2),
        ];
        for (k, changed, key, version) in expect {
            let (want, want_v) = if changed { (key, version) } else { (&AesKey::FACTORY, 0) };
            prop_assert!(st.keys[k as usize] == *want, "key {} (changed: {})", k, changed);
            prop_assert_eq!(st.key_versions[k as usize], want_v);
        }
        let other = (1..=4u8).find(|k| *k != a && *k != b).unwrap();
        prop_assert!(st.keys[other as usize].is_factory());
        // Back in the field, the key the chip holds works.
        t.reinsert();
        let k0 = if applied(5) { n0.clone() } else { AesKey::FACTORY };
        card.select_ndef_application().unwrap();
        let s = card.authenticate_ev2_first(0, &k0);
        prop_assert!(s.is_ok(), "{:?}", s.err());
    }
}

// ---- deterministic checks of what docs/simulator.md states ----------------------------------

fn select(chip: &mut SimChip) {
    let r = chip.process(&[&[0x00, 0xA4, 0x04, 0x0C, 0x07][..], &NDEF_APP, &[0x00]].concat());
    assert_eq!(r, [0x90, 0x00]);
}

/// Part 1 of EV2First with key 0: the status word.
fn part1(chip: &mut SimChip) -> u16 {
    sw_of(&chip.process(&[0x90, 0x71, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]))
}

/// A full authentication with key 0 and `key`: the final status word.
fn auth(chip: &mut SimChip, key: &AesKey) -> u16 {
    let r = chip.process(&[0x90, 0x71, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]);
    if sw_of(&r) != 0x91AF {
        return sw_of(&r);
    }
    let rnd_b: [u8; 16] = cbc_decrypt(key, &[0; 16], &r[..16])
        .unwrap()
        .try_into()
        .unwrap();
    let plain = [[7u8; 16], rotl1(&rnd_b)].concat();
    let mut p2 = vec![0x90, 0xAF, 0x00, 0x00, 0x20];
    p2.extend(cbc_encrypt(key, &[0; 16], &plain).unwrap());
    p2.push(0x00);
    sw_of(&chip.process(&p2))
}

#[test]
fn failed_authentication_delay_as_documented() {
    let wrong = AesKey::new([0x42; 16]);
    let mut chip = SimChip::new(factory());
    select(&mut chip);
    for _ in 0..DELAY_THRESHOLD {
        assert_eq!(auth(&mut chip, &wrong), 0x91AE);
    }
    assert_eq!(chip.state.failed_auths, DELAY_THRESHOLD);
    // The next Part 1 is refused once; the one after goes through.
    assert_eq!(part1(&mut chip), 0x91AD);
    assert_eq!(part1(&mut chip), 0x91AF);
    // Each further failure re-arms the delay.
    chip.power_cycle();
    select(&mut chip);
    assert_eq!(part1(&mut chip), 0x91AD, "a power cycle re-arms the delay");
    assert_eq!(auth(&mut chip, &wrong), 0x91AE);
    assert_eq!(
        part1(&mut chip),
        0x91AD,
        "a further failure re-arms the delay"
    );
    // The counter persists across power cycles; a success resets it.
    chip.power_cycle();
    select(&mut chip);
    assert_eq!(chip.state.failed_auths, DELAY_THRESHOLD + 1);
    assert_eq!(part1(&mut chip), 0x91AD);
    assert_eq!(auth(&mut chip, &AesKey::FACTORY), 0x9100);
    assert_eq!(chip.state.failed_auths, 0);
    chip.power_cycle();
    select(&mut chip);
    assert_eq!(part1(&mut chip), 0x91AF);
}

/// The six ASCII counter digits at offset 0 of file 2 (layout variant 2 of `with_sdm`).
fn mirrored_ctr(resp: &[u8]) -> u32 {
    u32::from_str_radix(std::str::from_utf8(&resp[..6]).unwrap(), 16).unwrap()
}

#[test]
fn sdm_counter_rules_as_documented() {
    let mut state = factory();
    with_sdm(&mut state, 2, Some(4));
    let mut chip = SimChip::new(state);
    select(&mut chip);
    let read = |chip: &mut SimChip, off: u32| {
        let h = tag424::card::cmd::read_data::data_header(2, off, 16);
        chip.process(&wrap_native(0xAD, &h).unwrap())
    };
    let iso_read = |chip: &mut SimChip, off: u8| chip.process(&[0x00, 0xB0, 0x82, off, 16]);
    // First read of a sequence counts; the same read command continuing does not.
    assert_eq!(mirrored_ctr(&read(&mut chip, 0)), 1);
    read(&mut chip, 16);
    assert_eq!(mirrored_ctr(&read(&mut chip, 0)), 1);
    // Switching to ISOReadBinary starts a new sequence, as does any other command between.
    assert_eq!(mirrored_ctr(&iso_read(&mut chip, 0)), 2);
    assert_eq!(mirrored_ctr(&iso_read(&mut chip, 0)), 2);
    chip.process(&[0x90, 0x64, 0x00, 0x00, 0x01, 0x00, 0x00]);
    assert_eq!(mirrored_ctr(&iso_read(&mut chip, 0)), 3);
    chip.power_cycle();
    select(&mut chip);
    assert_eq!(mirrored_ctr(&read(&mut chip, 0)), 4);
    assert_eq!(chip.state.file(2).unwrap().sdm_read_ctr, 4);
    // The same read continuing still sees its image, even at the limit (4)...
    assert_eq!(mirrored_ctr(&read(&mut chip, 0)), 4);
    // ...but a new sequence is refused: ReadData 919D, ISOReadBinary 6982, counter unchanged.
    chip.process(&[0x90, 0x64, 0x00, 0x00, 0x01, 0x00, 0x00]);
    assert_eq!(read(&mut chip, 64), [0x91, 0x9D]);
    assert_eq!(iso_read(&mut chip, 64), [0x69, 0x82]);
    assert_eq!(chip.state.file(2).unwrap().sdm_read_ctr, 4);
}

#[test]
fn change_file_settings_resets_the_counter_only_when_enabling_sdm() {
    let mut card = Card::new(SimTransport::new(SimChip::new(factory())));
    card.select_ndef_application().unwrap();
    let mut fs = hostview::settings(card.transport().chip.state.file(2).unwrap());
    let plain = fs.clone();
    let mut st = factory();
    with_sdm(&mut st, 2, None);
    fs.sdm = hostview::settings(st.file(2).unwrap()).sdm;
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let s = s.change_file_settings(2, &fs).unwrap();
    drop(s);
    card.transport()
        .chip
        .state
        .file_mut(2)
        .unwrap()
        .sdm_read_ctr = 9;
    // Re-sending settings with SDM already on keeps the counter.
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let s = s.change_file_settings(2, &fs).unwrap();
    drop(s);
    assert_eq!(card.transport().chip.state.file(2).unwrap().sdm_read_ctr, 9);
    // Off, then on again: reset to 0.
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let s = s.change_file_settings(2, &plain).unwrap();
    let s = s.change_file_settings(2, &fs).unwrap();
    drop(s);
    assert_eq!(card.transport().chip.state.file(2).unwrap().sdm_read_ctr, 0);
}

#[test]
fn long_answers_are_chained_with_91af() {
    // File 2 in Full mode, read key 0: a whole-file read in a session answers
    // 256 B of data + padding = 272 B of ciphertext + 8 B MAC = 280 B, over two frames.
    let mut state = factory();
    let f = state.file_mut(2).unwrap();
    let mut fs = hostview::settings(f);
    fs.comm_mode = CommMode::Full;
    fs.access.read = Access::Key(0);
    hostview::set_settings(f, &fs);
    let mut chip = SimChip::with_rng(state, FixedRandom::new(vec![1, 2, 3]));
    select(&mut chip);
    let session = raw_auth(&mut chip, true, 0, &AesKey::FACTORY, [9; 16])
        .unwrap()
        .unwrap();
    let h = tag424::card::cmd::read_data::data_header(2, 0, 0);
    let r = chip.process(&sm_apdu(&session, 0xAD, &h, &[], CommMode::Full));
    assert_eq!(r.len(), 256 + 2);
    assert_eq!(sw_of(&r), 0x91AF);
    let r2 = chip.process(&[0x90, 0xAF, 0x00, 0x00, 0x00]);
    assert_eq!(r2.len(), 280 - 256 + 2);
    assert_eq!(sw_of(&r2), 0x9100);
    assert!(chip.authenticated());
}

proptest! {
    #![proptest_config(config())]

    /// The chip decodes and checks ChangeFileSettings with its own code (written from the
    /// datasheet, not the host's `FileSettings`). On the bytes the host encodes from any
    /// settings, the chip accepts exactly what the host's own parser and checks accept, and
    /// the chip's GetFileSettings image is the host's reading of those bytes.
    #[test]
    fn the_chips_settings_decoder_agrees_with_the_host(fs in file_settings()) {
        use tag424::sim::chip::settings::{decode_change, encode_get, Variant};
        let aes = Variant { tag_tamper: false, lrp: false };
        let bytes = fs.encode_change();
        let mut image = vec![0x00, bytes[0], bytes[1], bytes[2]];
        image.extend_from_slice(&fs.size.to_le_bytes()[..3]);
        image.extend_from_slice(&bytes[3..]);
        let host = FileSettings::parse(&image).map_err(|e| e.to_string()).and_then(|h| h.validate().map(|_| h).map_err(|e| e.to_string()));
        let chip = decode_change(&bytes, fs.size, aes);
        prop_assert_eq!(host.is_ok(), chip.is_ok(), "host {:?}, chip {:?}, bytes {}", host, chip, hex::encode_upper(&bytes));
        if let Ok(c) = chip {
            prop_assert_eq!(encode_get(&c), image);
        }
    }
}
