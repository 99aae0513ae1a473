//! The simulated chip: one APDU in, one response out, with the status word the NTAG 424 DNA
//! gives. Never panics; every malformed command gets the chip's error.
//!
//! Shares only crypto primitives with the host side (`crate::crypto`); the APDU parsing,
//! secure messaging checks, file settings and state machine are written from the chip's point
//! of view, one file per responsibility:
//!
//! * `iso` — ISOSelectFile, ISOReadBinary, ISOUpdateBinary (§10.9)
//! * `auth` — AuthenticateEV2First/NonFirst and AuthenticateLRPFirst/NonFirst (§9.1, §9.2)
//! * `sm` — secure messaging of commands and responses, AES and LRP (§9.1.8–9.1.10, §9.2)
//! * `sdm` — SUN mirroring on unauthenticated reads, AES and LRP, TagTamper status (§9.3)
//! * `native` — the other native commands
//! * `settings` — ChangeFileSettings decoding and validation (§10.7.1 Table 69)

mod auth;
mod iso;
mod native;
mod sdm;
pub mod settings;
mod sm;

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::state::ChipState;
use crate::card::RandomSource;
use crate::crypto::ev2::SessionKeys;
use crate::crypto::lrp::LrpSessionKeys;
use settings::{ChipSettings, Variant};

/// Status words the chip answers with.
mod sw {
    pub const OK: u16 = 0x9100;
    pub const MORE: u16 = 0x91AF;
    pub const SIG_OK: u16 = 0x9190;
    pub const ILLEGAL_COMMAND: u16 = 0x911C;
    pub const INTEGRITY: u16 = 0x911E;
    pub const NO_SUCH_KEY: u16 = 0x9140;
    pub const LENGTH: u16 = 0x917E;
    pub const PERMISSION: u16 = 0x919D;
    pub const PARAMETER: u16 = 0x919E;
    pub const AUTH_DELAY: u16 = 0x91AD;
    pub const AUTH: u16 = 0x91AE;
    pub const BOUNDARY: u16 = 0x91BE;
    pub const ABORTED: u16 = 0x91CA;
    pub const FILE_NOT_FOUND: u16 = 0x91F0;
    pub const ISO_OK: u16 = 0x9000;
    pub const ISO_LENGTH: u16 = 0x6700;
    pub const ISO_SECURITY: u16 = 0x6982;
    pub const ISO_CONDITIONS: u16 = 0x6985;
    pub const ISO_NOT_FOUND: u16 = 0x6A82;
    pub const ISO_P1P2: u16 = 0x6A86;
    pub const ISO_OFFSET: u16 = 0x6B00;
    pub const ISO_INS: u16 = 0x6D00;
    pub const ISO_CLA: u16 = 0x6E00;
}

/// Failed authentications after which the chip imposes a delay (answers 91AD once).
pub const DELAY_THRESHOLD: u32 = 3;
/// Largest response data per frame; longer answers are chained with 91AF.
const FRAME: usize = 256;

const NDEF_APP: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];
const PICC_DF: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x00];

/// Session keys on the chip's side: AES, or LRP with its running EncCtr.
enum ChipKeys {
    Aes(SessionKeys),
    Lrp(Box<LrpSessionKeys>, [u8; 4]),
}

struct SimSession {
    keys: ChipKeys,
    ti: [u8; 4],
    cmd_ctr: u16,
    key_no: u8,
}

/// How a command's data is protected (FileOption / Table 22 CommMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comm {
    Plain,
    Mac,
    Full,
}

impl Comm {
    fn from_bits(b: u8) -> Comm {
        match b & 0x03 {
            0x01 => Comm::Mac,
            0x03 => Comm::Full,
            _ => Comm::Plain,
        }
    }
}

enum Pending {
    None,
    Auth {
        key_no: u8,
        rnd_b: Zeroizing<[u8; 16]>,
        first: bool,
        pcd_cap2: [u8; 6],
        lrp: bool,
    },
    Frames(VecDeque<Vec<u8>>),
}

/// The mirrored image of an SDM file, kept while one read continues over several APDUs.
struct SdmCursor {
    file_no: u8,
    ins: u8,
    image: Vec<u8>,
}

type Answer = Result<Vec<u8>, u16>;

/// A data command after its checks: comm mode, decrypted data, (file, offset, length).
type DataCommand = (Comm, Zeroizing<Vec<u8>>, (u8, usize, usize));

fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

/// A simulated NTAG 424 DNA.
pub struct SimChip {
    /// The non-volatile memory: UID, keys, files, counters and configuration.
    pub state: ChipState,
    rng: Box<dyn RandomSource>,
    app_selected: bool,
    selected_file: Option<u8>,
    session: Option<SimSession>,
    pending: Pending,
    sdm_cursor: Option<SdmCursor>,
    delay_served: bool,
    /// TagTamper measures in this activation (enabled before it began).
    tt_active: bool,
    /// Random ID was on when this activation began (anticollision gave a random ID).
    rid_active: bool,
    /// This activation's random ID, drawn when first asked for.
    rid: Option<[u8; 4]>,
    /// APDUs processed since creation.
    pub apdus: u64,
}

impl std::fmt::Debug for SimChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimChip")
            .field("uid", &hex::encode_upper(self.state.uid))
            .finish_non_exhaustive()
    }
}

impl SimChip {
    /// A chip with this state and the OS random number generator.
    pub fn new(state: ChipState) -> Self {
        Self::with_rng(state, crate::card::OsRandom)
    }

    /// A chip whose randoms (RndB, TI, PICCData padding) come from `rng` (fixture replay).
    pub fn with_rng(state: ChipState, rng: impl RandomSource + 'static) -> Self {
        let mut chip = SimChip {
            state,
            rng: Box::new(rng),
            app_selected: false,
            selected_file: None,
            session: None,
            pending: Pending::None,
            sdm_cursor: None,
            delay_served: false,
            tt_active: false,
            rid_active: false,
            rid: None,
            apdus: 0,
        };
        chip.activate();
        chip
    }

    /// Entering the field: TagTamper (when enabled) measures the loop.
    fn activate(&mut self) {
        self.rid_active = self.state.random_id;
        self.tt_active = self.state.tag_tamper.as_ref().is_some_and(|t| t.enabled);
        if self.tt_active {
            self.measure_tt();
        }
    }

    /// One TagTamper measurement: the current status, and the permanent one latches to open.
    fn measure_tt(&mut self) -> [u8; 2] {
        let active = self.tt_active;
        match self.state.tag_tamper.as_mut() {
            Some(t) if active => {
                if t.loop_open {
                    t.opened = true;
                }
                let s = |open: bool| if open { b'O' } else { b'C' };
                [s(t.opened), s(t.loop_open)]
            }
            _ => [b'I', b'I'],
        }
    }

    /// The chip's variant: TagTamper or not, AES or LRP.
    fn variant(&self) -> Variant {
        Variant {
            tag_tamper: self.state.tag_tamper.is_some(),
            lrp: self.state.lrp,
        }
    }

    /// A file's settings, decoded from the chip's NVM by the chip's own rules.
    fn settings(&self, file_no: u8) -> Result<ChipSettings, u16> {
        let f = self.state.file(file_no).ok_or(sw::FILE_NOT_FOUND)?;
        settings::decode_stored(&f.settings, f.data.len(), self.variant())
            .map_err(|_| sw::FILE_NOT_FOUND)
    }

    /// Leaves and re-enters the field: everything volatile is lost, as on the real chip.
    pub fn power_cycle(&mut self) {
        self.app_selected = false;
        self.selected_file = None;
        self.session = None;
        self.pending = Pending::None;
        self.sdm_cursor = None;
        self.delay_served = false;
        self.rid = None;
        self.activate();
    }

    /// The identifier the chip gives in ISO/IEC 14443-3 anticollision in this activation,
    /// which a PC/SC reader reports for its `FF CA 00 00 00` (GetData UID) pseudo-APDU: the
    /// 7-byte UID, or with Random ID on a random 4-byte ID (RID) whose first byte is `08h`
    /// (ISO/IEC 14443-3 §6.5.4: UID0 `08h` marks a random number; NXP AN10927 and NXP's
    /// answer for EV2-generation chips, docs/chip-facts.md §9), new in every activation.
    /// Random ID switched on in this activation shows from the next one (anticollision is
    /// over by then).
    pub fn anticollision_id(&mut self) -> Vec<u8> {
        if !self.rid_active {
            return self.state.uid.to_vec();
        }
        let rid = match self.rid {
            Some(r) => r,
            None => {
                let mut r = self.random::<4>();
                r[0] = 0x08;
                self.rid = Some(r);
                r
            }
        };
        rid.to_vec()
    }

    /// True while an authenticated session is open.
    pub fn authenticated(&self) -> bool {
        self.session.is_some()
    }

    /// Selects the NDEF application (fixtures that start after the selection).
    #[doc(hidden)]
    pub fn select_application(&mut self) {
        self.app_selected = true;
    }

    /// Puts the chip inside a session (fixtures published mid-session).
    #[doc(hidden)]
    pub fn set_session(&mut self, keys: SessionKeys, ti: [u8; 4], cmd_ctr: u16, key_no: u8) {
        self.app_selected = true;
        self.session = Some(SimSession {
            keys: ChipKeys::Aes(keys),
            ti,
            cmd_ctr,
            key_no,
        });
    }

    /// Processes one command APDU and returns the response APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.apdus += 1;
        if apdu == [0xFF, 0xCA, 0x00, 0x00, 0x00] {
            // The reader's GetData pseudo-APDU (PC/SC part 3 §3.2.2.1.3): the simulator is
            // also the reader, and answers with what anticollision gave, without the chip
            // seeing a command (an SDM read sequence goes on).
            return with_sw(self.anticollision_id(), sw::ISO_OK);
        }
        let cursor = self.sdm_cursor.take();
        let result = match apdu.first() {
            None => Err(sw::ISO_LENGTH),
            Some(0x00) => self.iso(apdu, cursor),
            Some(0x90) => self.native(apdu, cursor),
            Some(_) => Err(sw::ISO_CLA),
        };
        match result {
            Ok(r) => r,
            Err(code) => {
                if code >> 8 == 0x91 {
                    // Any native error ends the authenticated state (§9.1.10).
                    self.session = None;
                }
                self.pending = Pending::None;
                code.to_be_bytes().to_vec()
            }
        }
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng.fill(&mut b);
        b
    }

    /// Native command framing and dispatch.
    fn native(&mut self, apdu: &[u8], cursor: Option<SdmCursor>) -> Answer {
        if apdu.len() < 5 {
            return Err(sw::LENGTH);
        }
        let (ins, p1, p2) = (apdu[1], apdu[2], apdu[3]);
        let data: &[u8] = if apdu.len() == 5 {
            &[]
        } else {
            let lc = apdu[4] as usize;
            if apdu.len() != 6 + lc || apdu[5 + lc] != 0x00 || lc == 0 {
                return Err(sw::LENGTH);
            }
            &apdu[5..5 + lc]
        };
        if apdu.len() == 5 && apdu[4] != 0x00 {
            return Err(sw::LENGTH);
        }
        if p1 != 0 || p2 != 0 {
            return Err(sw::PARAMETER);
        }
        if ins == 0xAF {
            return self.additional_frame(data);
        }
        if !matches!(
            std::mem::replace(&mut self.pending, Pending::None),
            Pending::None
        ) {
            return Err(sw::ABORTED);
        }
        match ins {
            0x60 => self.get_version(data),
            0x3C => self.read_sig(data),
            0x71 => self.auth_part1(data, true),
            0x77 => self.auth_part1(data, false),
            _ if !self.app_selected => Err(sw::PERMISSION),
            0x51 => self.get_card_uid(data),
            0xF5 => self.get_file_settings(data),
            0x5F => self.change_file_settings(data),
            0xC4 => self.change_key(data),
            0x64 => self.get_key_version(data),
            0xAD => self.read_data(data, cursor),
            0x8D => self.write_data(data),
            0x5C => self.set_configuration(data),
            0xF7 if self.state.tag_tamper.is_some() => self.get_tt_status(data),
            _ => Err(sw::ILLEGAL_COMMAND),
        }
    }

    fn additional_frame(&mut self, data: &[u8]) -> Answer {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => Err(sw::ILLEGAL_COMMAND),
            Pending::Frames(mut frames) => {
                if !data.is_empty() {
                    return Err(sw::LENGTH);
                }
                let frame = frames.pop_front().unwrap_or_default();
                if frames.is_empty() {
                    Ok(with_sw(frame, sw::OK))
                } else {
                    self.pending = Pending::Frames(frames);
                    Ok(with_sw(frame, sw::MORE))
                }
            }
            Pending::Auth {
                key_no,
                rnd_b,
                first,
                pcd_cap2,
                lrp,
            } => {
                if lrp {
                    self.lrp_auth_part2(data, key_no, &rnd_b, first, pcd_cap2)
                } else {
                    self.auth_part2(data, key_no, &rnd_b, first, pcd_cap2)
                }
            }
        }
    }

    /// Splits an answer into frames of at most [`FRAME`] bytes (91AF between them).
    fn framed(&mut self, data: Vec<u8>, last_sw: u16) -> Answer {
        if data.len() <= FRAME {
            return Ok(with_sw(data, last_sw));
        }
        let mut frames: VecDeque<Vec<u8>> = data.chunks(FRAME).map(<[u8]>::to_vec).collect();
        let first = frames.pop_front().unwrap_or_default();
        self.pending = Pending::Frames(frames);
        Ok(with_sw(first, sw::MORE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_UID: [u8; 5] = [0xFF, 0xCA, 0x00, 0x00, 0x00];

    /// The reader's GetData UID (PC/SC part 3): the UID, and with Random ID on (from the next
    /// activation) a random 4-byte ID with UID0 = 08h (ISO/IEC 14443-3), the same within an
    /// activation and new in the next; GetVersion's UID is then zero (NT4H2421Gx Table 58).
    #[test]
    fn random_id_shows_from_the_next_activation() {
        let uid = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
        let mut chip = SimChip::new(ChipState::factory(uid));
        assert_eq!(chip.process(&GET_UID), [&uid[..], &[0x90, 0x00]].concat());
        chip.state.random_id = true;
        // This activation's anticollision is over: still the UID.
        assert_eq!(chip.process(&GET_UID)[..7], uid);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..8 {
            chip.power_cycle();
            let a = chip.process(&GET_UID);
            assert_eq!(a.len(), 4 + 2);
            assert_eq!((a[0], &a[4..]), (0x08, &[0x90, 0x00][..]));
            assert_eq!(chip.process(&GET_UID), a, "one ID per activation");
            seen.insert(a);
        }
        assert!(seen.len() > 1, "a new ID per activation");
        // GetVersion frame 3 starts with a zero UID.
        chip.process(&[
            0x00, 0xA4, 0x04, 0x0C, 0x07, 0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01,
        ]);
        chip.process(&[0x90, 0x60, 0x00, 0x00, 0x00]);
        chip.process(&[0x90, 0xAF, 0x00, 0x00, 0x00]);
        let third = chip.process(&[0x90, 0xAF, 0x00, 0x00, 0x00]);
        assert_eq!(third[..7], [0u8; 7]);
        assert_eq!(third[third.len() - 2..], [0x91, 0x00]);
    }
}
