//! The vpcd bridge (`crates/sim/src/vpcd/`) against a fake vpcd: a TcpListener in the test speaks
//! vpcd's side of the protocol (as vpcd 0.8 does: length and body in two writes), so these
//! tests need no pcscd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tag424::card::{Card, Sw};
use tag424::crypto::AesKey;
use tag424::sim::dir::SimDir;
use tag424::sim::vpcd::{
    attach, present, AttachEnd, AttachPolicy, Flow, Removal, RemovedBy, TapEndReason, TapEvent,
    VpcdError, VpcdOptions, ATR,
};
use tag424::sim::{ChipState, SimChip};
use tag424::transport::{Transport, TransportError};

const UID: [u8; 7] = [0x04, 0x5A, 0x11, 0x22, 0x33, 0x44, 0x80];
const SELECT_NDEF_APP: &str = "00A4040007D276000085010100";

/// The factory state, built once (the originality signature is slow to compute in debug).
fn factory() -> ChipState {
    static STATE: OnceLock<ChipState> = OnceLock::new();
    STATE.get_or_init(|| ChipState::factory(UID)).clone()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// vpcd's side of one connection (= one tag in the field).
struct FakeVpcd {
    s: TcpStream,
}

impl FakeVpcd {
    fn accept(l: &TcpListener) -> FakeVpcd {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        FakeVpcd { s }
    }

    /// As vpcd 0.8: the 2-byte length and the payload in two writes.
    fn send(&mut self, payload: &[u8]) {
        self.s
            .write_all(&(payload.len() as u16).to_be_bytes())
            .unwrap();
        self.s.flush().unwrap();
        self.s.write_all(payload).unwrap();
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut hdr = [0u8; 2];
        self.s.read_exact(&mut hdr).ok()?;
        let mut body = vec![0u8; u16::from_be_bytes(hdr) as usize];
        self.s.read_exact(&mut body).ok()?;
        Some(body)
    }

    fn ctrl(&mut self, b: u8) {
        self.send(&[b]);
    }

    fn atr(&mut self) -> Vec<u8> {
        self.ctrl(0x04);
        self.recv().expect("an answer to 04")
    }

    fn apdu(&mut self, c: &[u8]) -> Vec<u8> {
        self.send(c);
        self.recv().expect("an R-APDU")
    }

    /// What pcscd does when a card arrives and a program connects: `04 04 01 04` … `04 01 04`.
    fn insert_and_connect(&mut self) {
        assert_eq!(self.atr(), ATR);
        self.ctrl(0x01);
        assert_eq!(self.atr(), ATR);
    }

    /// `SCardDisconnect(RESET_CARD)`, then idle power-off: `04 02 04` … `00`.
    fn disconnect_and_power_off(&mut self) {
        assert_eq!(self.atr(), ATR);
        self.ctrl(0x02);
        assert_eq!(self.atr(), ATR);
        self.ctrl(0x00);
    }

    /// True when the tag closes the connection (is removed) within `within`.
    fn removed_within(&mut self, within: Duration) -> bool {
        self.s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 16];
        let r = match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.s
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        r
    }

    /// `04` when the tag may be gone: `None` once it is.
    fn try_atr(&mut self) -> Option<Vec<u8>> {
        self.s.write_all(&[0, 1, 4]).ok()?;
        self.recv()
    }

    /// Polls with `04` every 100 ms for `d` (vpcd polls every 400 ms), checking the tag stays.
    fn poll_for(&mut self, d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {
            assert_eq!(self.atr(), ATR, "the tag left the field");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The host side over the fake vpcd, for `Card`.
impl Transport for FakeVpcd {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = (command.len() as u16).to_be_bytes();
        if self.s.write_all(&n).is_err() || self.s.write_all(command).is_err() {
            return Err(TransportError::CardRemoved);
        }
        self.recv().ok_or(TransportError::CardRemoved)
    }
}

fn listener() -> (TcpListener, VpcdOptions) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut opts = VpcdOptions::new(addr);
    opts.connect_timeout = Duration::from_secs(3);
    (l, opts)
}

/// The usual policy as a `present` callback.
fn until_done(e: TapEvent) -> Flow {
    let r = Removal {
        max_apdus: None,
        idle: Duration::from_secs(10),
    };
    r.decide(&e).map_or(Flow::Continue, |_| Flow::Remove)
}

/// Reads the UID from the third GetVersion frame.
fn get_version_uid(v: &mut FakeVpcd) -> [u8; 7] {
    let r1 = v.apdu(&h("9060000000"));
    assert_eq!(r1, h("0404023000110591AF"), "GetVersion frame 1");
    let r2 = v.apdu(&h("90AF000000"));
    assert_eq!(r2, h("0404020102110591AF"), "GetVersion frame 2");
    let r3 = v.apdu(&h("90AF000000"));
    assert_eq!(
        r3.len(),
        14 + 2,
        "GetVersion frame 3: {}",
        hex::encode_upper(&r3)
    );
    assert_eq!(&r3[14..], &[0x91, 0x00]);
    r3[..7].try_into().unwrap()
}

#[test]
fn atr_and_apdu_round_trip() {
    let (l, opts) = listener();
    let bridge = thread::spawn(move || {
        let mut chip = SimChip::new(factory());
        let end = present(&opts, &mut chip, &until_done).unwrap();
        (end, chip)
    });
    let mut v = FakeVpcd::accept(&l);
    assert_eq!(v.atr(), h("3B8180018080"));
    v.insert_and_connect();
    assert_eq!(v.apdu(&h(SELECT_NDEF_APP)), h("9000"));
    assert_eq!(get_version_uid(&mut v), UID);
    // A reset alone is not a removal; the tag stays and keeps answering.
    v.disconnect_and_power_off();
    assert!(v.removed_within(Duration::from_secs(3)), "tag not removed");
    let (end, chip) = bridge.join().unwrap();
    assert_eq!(end.reason, TapEndReason::Removed);
    assert_eq!(end.apdus, 4);
    assert!(end.in_field);
    assert_eq!(chip.apdus, 4);
}

#[test]
fn power_off_before_any_apdu_keeps_the_tag() {
    let (l, opts) = listener();
    let bridge = thread::spawn(move || {
        let mut chip = SimChip::new(factory());
        present(&opts, &mut chip, &until_done).unwrap()
    });
    let mut v = FakeVpcd::accept(&l);
    // pcscd powers an unused card off ~0.4 s after insertion: the tag stays.
    v.atr();
    v.ctrl(0x01);
    v.atr();
    v.ctrl(0x00);
    v.poll_for(Duration::from_millis(300));
    v.insert_and_connect();
    assert_eq!(v.apdu(&h(SELECT_NDEF_APP)), h("9000"));
    v.disconnect_and_power_off();
    assert!(v.removed_within(Duration::from_secs(3)));
    assert_eq!(bridge.join().unwrap().apdus, 1);
}

#[test]
fn power_cycle_clears_authentication() {
    for control in [0x00u8, 0x01, 0x02] {
        let (l, opts) = listener();
        let bridge = thread::spawn(move || {
            let mut chip = SimChip::new(factory());
            // Stays until vpcd closes the connection.
            let end = present(&opts, &mut chip, &|_| Flow::Continue).unwrap();
            (end, chip.authenticated())
        });
        let mut v = FakeVpcd::accept(&l);
        v.insert_and_connect();
        {
            let mut card = Card::new(&mut v);
            card.select_ndef_application().unwrap();
            let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
            let (mut s, uid) = s.get_card_uid().unwrap();
            assert_eq!(uid, UID);
            s.card().transport().ctrl(control);
            let err = s.get_card_uid().unwrap_err();
            // The chip lost the session and the selection.
            assert!(err.status().is_some(), "{err}");
            assert_ne!(err.status(), Some(Sw::Ok));
        }
        drop(v);
        let (end, authenticated) = bridge.join().unwrap();
        assert_eq!(end.reason, TapEndReason::ReaderClosed);
        assert!(!authenticated, "control {control:02X}");
    }
    // Without a power cycle the session survives until the connection closes.
    let (l, opts) = listener();
    let bridge = thread::spawn(move || {
        let mut chip = SimChip::new(factory());
        present(&opts, &mut chip, &|_| Flow::Continue).unwrap();
        chip.authenticated()
    });
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    let mut card = Card::new(&mut v);
    card.select_ndef_application().unwrap();
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    s.get_card_uid().unwrap();
    drop(card);
    drop(v);
    assert!(bridge.join().unwrap());
}

#[test]
fn no_reader_is_a_clear_error() {
    let (l, mut opts) = listener();
    drop(l);
    opts.connect_timeout = Duration::from_millis(300);
    let t = Instant::now();
    let mut chip = SimChip::new(factory());
    let err = present(&opts, &mut chip, &until_done).unwrap_err();
    assert!(matches!(err, VpcdError::NoReader { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("no vpcd reader at {}", opts.addr))
            && msg.contains("is pcscd running with the vpcd driver?"),
        "{msg}"
    );
    assert!(t.elapsed() >= Duration::from_millis(300), "retried");
}

#[test]
fn connect_is_retried_until_vpcd_listens() {
    let (l, opts) = listener();
    let addr = opts.addr.clone();
    drop(l);
    let bridge = thread::spawn(move || {
        let mut chip = SimChip::new(factory());
        present(&opts, &mut chip, &until_done).unwrap()
    });
    thread::sleep(Duration::from_millis(400));
    let l = TcpListener::bind(&addr).unwrap();
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    v.apdu(&h(SELECT_NDEF_APP));
    v.ctrl(0x00);
    assert!(v.removed_within(Duration::from_secs(3)));
    assert_eq!(bridge.join().unwrap().apdus, 1);
}

fn dir_with(tags: &[[u8; 7]]) -> (tempfile::TempDir, SimDir) {
    let t = tempfile::tempdir().unwrap();
    let d = SimDir::open(t.path()).unwrap();
    for uid in tags {
        let mut s = factory();
        s.uid = *uid;
        d.save(&s).unwrap();
    }
    (t, d)
}

/// One tap as a provisioning host does it: select, authenticate, change key 1; returns the UID.
fn change_key_1(v: &mut FakeVpcd, new: &AesKey) -> [u8; 7] {
    let mut card = Card::new(v);
    card.select_ndef_application().unwrap();
    let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
    let (s, uid) = s.get_card_uid().unwrap();
    s.change_key(1, &AesKey::FACTORY, new, 1).unwrap();
    uid
}

#[test]
fn attach_presents_tags_in_order_and_saves_state() {
    let a = [0x04, 0, 0, 0, 0, 0, 0x0A];
    let b = [0x04, 0, 0, 0, 0, 0, 0x0B];
    let (_t, dir) = dir_with(&[b, a]);
    let (l, opts) = listener();
    let d = dir.clone();
    let bridge = thread::spawn(move || {
        let policy = AttachPolicy {
            count: Some(3),
            fresh: true,
            ..AttachPolicy::default()
        };
        attach(&opts, &d, &policy).unwrap()
    });
    let new = AesKey::new([0x11; 16]);
    let mut uids = vec![];
    for _ in 0..3 {
        let mut v = FakeVpcd::accept(&l);
        v.insert_and_connect();
        uids.push(change_key_1(&mut v, &new));
        v.disconnect_and_power_off();
        assert!(v.removed_within(Duration::from_secs(3)));
    }
    let summary = bridge.join().unwrap();
    assert_eq!(summary.end, AttachEnd::Count);
    assert_eq!(uids[..2], [a, b], "existing tags first, in UID order");
    assert!(!uids[..2].contains(&uids[2]), "then a new tag");
    let reports: Vec<_> = summary
        .tags
        .iter()
        .map(|t| (t.uid, t.removed_by, t.created, t.changed))
        .collect();
    assert_eq!(
        reports,
        vec![
            (a, RemovedBy::PowerOff, false, true),
            (b, RemovedBy::PowerOff, false, true),
            (uids[2], RemovedBy::PowerOff, true, true),
        ]
    );
    let saved = dir.list().unwrap();
    assert_eq!(saved.len(), 3);
    for s in saved {
        assert!(
            s.keys[1] == new,
            "key 1 of {} saved",
            hex::encode_upper(s.uid)
        );
        assert_eq!(s.key_versions[1], 1);
    }
}

#[test]
fn attach_without_fresh_ends_when_the_tags_run_out() {
    let (_t, dir) = dir_with(&[UID]);
    let (l, opts) = listener();
    let bridge = thread::spawn(move || {
        let policy = AttachPolicy {
            fresh: false,
            ..AttachPolicy::default()
        };
        attach(&opts, &dir, &policy).unwrap()
    });
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    assert_eq!(get_version_uid(&mut v), UID);
    v.disconnect_and_power_off();
    assert!(v.removed_within(Duration::from_secs(3)));
    let summary = bridge.join().unwrap();
    assert_eq!(summary.end, AttachEnd::Exhausted);
    assert_eq!(summary.tags.len(), 1);
    assert!(!summary.tags[0].changed);
}

#[test]
fn tear_after_removes_the_first_tag_and_presents_it_again() {
    let (_t, dir) = dir_with(&[UID]);
    let (l, opts) = listener();
    let d = dir.clone();
    let bridge = thread::spawn(move || {
        let policy = AttachPolicy {
            count: Some(1),
            tear_after: Some(3),
            ..AttachPolicy::default()
        };
        attach(&opts, &d, &policy).unwrap()
    });
    let new = AesKey::new([0x22; 16]);
    // First presentation: select, auth part 1, auth part 2, then the tag is gone.
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    {
        let mut card = Card::new(&mut v);
        card.select_ndef_application().unwrap();
        let s = card.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        let err = s.get_card_uid().unwrap_err();
        assert!(err.is_tear_off(), "{err}");
    }
    assert!(v.removed_within(Duration::from_secs(3)));
    // The same tag again: the host finishes it.
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    assert_eq!(change_key_1(&mut v, &new), UID);
    v.disconnect_and_power_off();
    assert!(v.removed_within(Duration::from_secs(3)));
    let summary = bridge.join().unwrap();
    assert_eq!(summary.end, AttachEnd::Count);
    let reports: Vec<_> = summary
        .tags
        .iter()
        .map(|t| (t.uid, t.apdus, t.removed_by, t.again))
        .collect();
    assert_eq!(
        reports,
        vec![
            (UID, 3, RemovedBy::MaxApdus, false),
            (UID, 5, RemovedBy::PowerOff, true),
        ]
    );
    let saved = dir.list().unwrap();
    assert_eq!(saved.len(), 1, "no new tag was made");
    assert!(saved[0].keys[1] == new);
}

#[test]
fn idle_host_and_stop_flag() {
    let (_t, dir) = dir_with(&[]);
    let (l, opts) = listener();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let bridge = thread::spawn(move || {
        let policy = AttachPolicy {
            idle_timeout: Duration::from_millis(300),
            stop: Some(flag),
            ..AttachPolicy::default()
        };
        attach(&opts, &dir, &policy).unwrap()
    });
    // A host that talks once and then keeps the card connected: removed after the idle time.
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    v.apdu(&h(SELECT_NDEF_APP));
    let t = Instant::now();
    let mut polls = 0;
    while v.try_atr().is_some() {
        polls += 1;
        thread::sleep(Duration::from_millis(50));
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "not removed when idle"
        );
    }
    assert!(polls >= 3, "removed too early ({polls} polls)");
    // A tag nobody talks to stays (the reader only polls), until the stop flag.
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    v.poll_for(Duration::from_millis(600));
    stop.store(true, Ordering::SeqCst);
    assert!(v.removed_within(Duration::from_secs(3)));
    let summary = bridge.join().unwrap();
    assert_eq!(summary.end, AttachEnd::Stopped);
    let by: Vec<_> = summary.tags.iter().map(|t| t.removed_by).collect();
    assert_eq!(by, vec![RemovedBy::Idle, RemovedBy::Stopped]);
}

#[test]
fn a_queued_connection_waits_for_the_reader() {
    // vpcd accepts the next tag only after it noticed the previous one left; until then the
    // tag's connection is queued: no idle clock runs, nothing is counted.
    let (_t, dir) = dir_with(&[]);
    let (l, opts) = listener();
    let bridge = thread::spawn(move || {
        let policy = AttachPolicy {
            count: Some(1),
            idle_timeout: Duration::from_millis(200),
            ..AttachPolicy::default()
        };
        attach(&opts, &dir, &policy).unwrap()
    });
    thread::sleep(Duration::from_millis(700)); // connected, but not accepted yet
    let mut v = FakeVpcd::accept(&l);
    v.insert_and_connect();
    v.apdu(&h(SELECT_NDEF_APP));
    v.ctrl(0x00);
    assert!(v.removed_within(Duration::from_secs(3)));
    let summary = bridge.join().unwrap();
    assert_eq!(summary.tags.len(), 1);
    assert_eq!(summary.tags[0].removed_by, RemovedBy::PowerOff);
}
