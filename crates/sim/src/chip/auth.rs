//! Authentication from the chip's side: AuthenticateEV2First/NonFirst (AES, §9.1.5–9.1.7) and
//! AuthenticateLRPFirst/NonFirst (LRP, §9.2.5–9.2.7), with the failed-attempt delay (§9.1.10).

use zeroize::Zeroizing;

use super::{sw, with_sw, Answer, ChipKeys, Pending, SimChip, SimSession, DELAY_THRESHOLD};
use crate::crypto::ev2::derive_session_keys;
use crate::crypto::{cbc_decrypt, cbc_encrypt, ct_eq, lrp, rotl1};

/// PDCap2 of a chip in LRP mode (PDCap2.1 bit 1).
const PD_CAP2_LRP: [u8; 6] = [0x02, 0, 0, 0, 0, 0];

impl SimChip {
    pub(super) fn auth_part1(&mut self, data: &[u8], first: bool) -> Answer {
        let key_no = *data.first().ok_or(sw::LENGTH)?;
        let mut pcd_cap2 = [0u8; 6];
        if first {
            let len_cap = *data.get(1).ok_or(sw::LENGTH)? as usize;
            if data.len() != 2 + len_cap || len_cap > 6 {
                return Err(sw::LENGTH);
            }
            pcd_cap2[..len_cap].copy_from_slice(&data[2..]);
            // An LRP chip refuses a first authentication that does not ask for LRP (Table 19).
            if self.state.lrp && pcd_cap2[0] & 0x02 == 0 {
                return Err(sw::PERMISSION);
            }
        } else {
            if data.len() != 1 {
                return Err(sw::LENGTH);
            }
            if self.session.is_none() {
                return Err(sw::PERMISSION);
            }
        }
        if !self.app_selected {
            return Err(sw::PERMISSION);
        }
        if key_no > 4 {
            return Err(sw::NO_SUCH_KEY);
        }
        // A key whose TotFailCtr reached TotFailCtrLimit: PERMISSION_DENIED (DS Table 39,
        // "Targeted key is locked as related TotFailCtr is equal to or bigger than the
        // TotFailCtrLimit"). Not a failed attempt; any session ends as with the delay.
        if self.state.fail_ctr.blocked(key_no) {
            self.session = None;
            return Err(sw::PERMISSION);
        }
        if self.state.failed_auths >= DELAY_THRESHOLD && !self.delay_served {
            self.delay_served = true;
            self.session = None;
            return Err(sw::AUTH_DELAY);
        }
        // LRP when the chip is in LRP mode: the first authentication asked for it (checked
        // above), a NonFirst follows the session. An AES chip asked for LRP falls back to AES.
        let lrp = if first {
            self.state.lrp
        } else {
            matches!(
                self.session.as_ref().map(|s| &s.keys),
                Some(ChipKeys::Lrp(..))
            )
        };
        if first {
            self.session = None;
        }
        let rnd_b = Zeroizing::new(self.random::<16>());
        let answer = if lrp {
            // AuthMode 01 and RndB in plain (§9.2.5).
            let mut a = vec![0x01];
            a.extend_from_slice(&rnd_b[..]);
            a
        } else {
            let key = self.state.keys[key_no as usize].clone();
            cbc_encrypt(&key, &[0; 16], &rnd_b[..]).map_err(|_| sw::PARAMETER)?
        };
        self.pending = Pending::Auth {
            key_no,
            rnd_b,
            first,
            pcd_cap2,
            lrp,
        };
        Ok(with_sw(answer, sw::MORE))
    }

    /// A failed proof: counts towards the delay and the key's TotFailCtr, ends the session.
    fn auth_failed(&mut self, key_no: u8) -> Answer {
        self.state.failed_auths = self.state.failed_auths.saturating_add(1);
        if let Some(t) = self.state.fail_ctr.total.get_mut(key_no as usize) {
            *t = t.saturating_add(1);
        }
        self.delay_served = false;
        self.session = None;
        Err(sw::AUTH)
    }

    pub(super) fn auth_part2(
        &mut self,
        data: &[u8],
        key_no: u8,
        rnd_b: &[u8; 16],
        first: bool,
        pcd_cap2: [u8; 6],
    ) -> Answer {
        if data.len() != 32 {
            self.session = None;
            return Err(sw::LENGTH);
        }
        let key = self.state.keys[key_no as usize].clone();
        let plain = Zeroizing::new(cbc_decrypt(&key, &[0; 16], data).map_err(|_| sw::LENGTH)?);
        if !ct_eq(&plain[16..], &rotl1(rnd_b)) {
            return self.auth_failed(key_no);
        }
        self.auth_succeeded(key_no);
        let rnd_a: [u8; 16] = plain[..16].try_into().map_err(|_| sw::LENGTH)?;
        let rnd_a = Zeroizing::new(rnd_a);
        let keys = derive_session_keys(&key, &rnd_a, rnd_b);
        if first {
            let ti = self.random::<4>();
            let mut resp = Zeroizing::new(Vec::with_capacity(32));
            resp.extend_from_slice(&ti);
            resp.extend_from_slice(&rotl1(&rnd_a));
            resp.extend_from_slice(&[0u8; 6]);
            resp.extend_from_slice(&pcd_cap2);
            let enc = cbc_encrypt(&key, &[0; 16], &resp).map_err(|_| sw::LENGTH)?;
            self.session = Some(SimSession {
                keys: ChipKeys::Aes(keys),
                ti,
                cmd_ctr: 0,
                key_no,
            });
            Ok(with_sw(enc, sw::OK))
        } else {
            let enc = cbc_encrypt(&key, &[0; 16], &rotl1(&rnd_a)).map_err(|_| sw::LENGTH)?;
            let s = self.session.as_mut().ok_or(sw::PERMISSION)?;
            s.keys = ChipKeys::Aes(keys);
            s.key_no = key_no;
            Ok(with_sw(enc, sw::OK))
        }
    }

    /// A successful proof: the delay counter restarts, the key's TotFailCtr goes down by
    /// TotFailCtrDecr (not below 0).
    fn auth_succeeded(&mut self, key_no: u8) {
        self.state.failed_auths = 0;
        let decr = self.state.fail_ctr.decrement;
        if let Some(t) = self.state.fail_ctr.total.get_mut(key_no as usize) {
            *t = t.saturating_sub(decr);
        }
    }

    /// Part 2 of AuthenticateLRPFirst/NonFirst (§9.2.5–9.2.7): `RndA || CMAC_LRP(MAC,
    /// RndA||RndB)` in; First answers `E_LRP(ENC, 0, TI||PDCap2||PCDCap2) || CMAC_LRP(MAC,
    /// RndB||RndA||PICCData)` and starts EncCtr at 1, NonFirst answers `CMAC_LRP(MAC,
    /// RndB||RndA)` and restarts EncCtr at 0.
    pub(super) fn lrp_auth_part2(
        &mut self,
        data: &[u8],
        key_no: u8,
        rnd_b: &[u8; 16],
        first: bool,
        pcd_cap2: [u8; 6],
    ) -> Answer {
        if data.len() != 32 {
            self.session = None;
            return Err(sw::LENGTH);
        }
        let key = self.state.keys[key_no as usize].clone();
        let (rnd_a, pcd_resp) = data.split_at(16);
        let keys = lrp::derive_auth_session_keys(&key, rnd_a, rnd_b).map_err(|_| sw::LENGTH)?;
        let mut msg = Zeroizing::new(rnd_a.to_vec());
        msg.extend_from_slice(rnd_b);
        if !keys.mac().verify_cmac(&msg, pcd_resp) {
            return self.auth_failed(key_no);
        }
        self.auth_succeeded(key_no);
        let mut back = Zeroizing::new(rnd_b.to_vec());
        back.extend_from_slice(rnd_a);
        if first {
            let ti = self.random::<4>();
            let mut plain = Zeroizing::new(ti.to_vec());
            plain.extend_from_slice(&PD_CAP2_LRP);
            plain.extend_from_slice(&pcd_cap2);
            let mut enc_ctr = [0u8; 4];
            let picc_data = keys
                .enc()
                .lricb_encrypt(&mut enc_ctr, &plain)
                .map_err(|_| sw::LENGTH)?;
            back.extend_from_slice(&picc_data);
            let mut answer = picc_data;
            answer.extend_from_slice(&keys.mac().cmac(&back));
            self.session = Some(SimSession {
                keys: ChipKeys::Lrp(Box::new(keys), enc_ctr),
                ti,
                cmd_ctr: 0,
                key_no,
            });
            Ok(with_sw(answer, sw::OK))
        } else {
            let answer = keys.mac().cmac(&back).to_vec();
            let s = self.session.as_mut().ok_or(sw::PERMISSION)?;
            s.keys = ChipKeys::Lrp(Box::new(keys), [0; 4]);
            s.key_no = key_no;
            Ok(with_sw(answer, sw::OK))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::card::cmd::set_configuration::FailedAuthConfig;
    use crate::card::{Card, Sw};
    use crate::crypto::AesKey;
    use crate::{ChipState, SimChip, SimTransport};

    fn card() -> Card<SimTransport> {
        let mut c = Card::new(SimTransport::new(SimChip::new(ChipState::factory([4; 7]))));
        c.select_ndef_application().unwrap();
        c
    }

    fn wrong(c: &mut Card<SimTransport>, key_no: u8) -> Option<Sw> {
        let wrong = AesKey::from_slice(&[0x55; 16]).unwrap();
        c.authenticate_ev2_first(key_no, &wrong)
            .err()
            .unwrap()
            .status()
    }

    fn limit(limit: u16, decrement: u16) -> FailedAuthConfig {
        FailedAuthConfig {
            limit: std::num::NonZeroU16::new(limit).unwrap(),
            decrement,
        }
    }

    /// DS §9: every failed authentication counts in the key's TotFailCtr, a successful one
    /// takes TotFailCtrDecr off (not below 0); at TotFailCtrLimit the key answers 919D
    /// (Table 39), the others still authenticate, and ChangeKey by key 0 unblocks it.
    #[test]
    fn tot_fail_ctr_counts_decrements_and_blocks_at_the_limit() {
        let mut c = card();
        assert_eq!(c.transport().chip.state.fail_ctr.limit, 1000);
        let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        s.set_failed_auth_counter(&limit(3, 1)).unwrap();
        let fc = &c.transport().chip.state.fail_ctr;
        assert_eq!((fc.enabled, fc.limit, fc.decrement), (true, 3, 1));
        c.transport().chip.state.failed_auths = 0;
        for _ in 0..2 {
            assert_eq!(wrong(&mut c, 2), Some(Sw::AuthenticationError));
            c.transport().chip.state.failed_auths = 0; // leave the delay out of this test
        }
        assert_eq!(c.transport().chip.state.fail_ctr.total[2], 2);
        c.authenticate_ev2_first(2, &AesKey::FACTORY).unwrap();
        assert_eq!(c.transport().chip.state.fail_ctr.total[2], 1);
        for _ in 0..2 {
            assert_eq!(wrong(&mut c, 2), Some(Sw::AuthenticationError));
            c.transport().chip.state.failed_auths = 0;
        }
        assert_eq!(c.transport().chip.state.fail_ctr.total[2], 3);
        // Blocked: even the right key is refused, and that is not counted.
        let e = c.authenticate_ev2_first(2, &AesKey::FACTORY).err().unwrap();
        assert_eq!(e.status(), Some(Sw::PermissionDenied));
        assert_eq!(c.transport().chip.state.fail_ctr.total[2], 3);
        // Another key is not.
        c.authenticate_ev2_first(3, &AesKey::FACTORY).unwrap();
        // Key 0 changes key 2: usable again.
        let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        let new = AesKey::from_slice(&[0x22; 16]).unwrap();
        s.change_key(2, &AesKey::FACTORY, &new, 1).unwrap();
        assert_eq!(c.transport().chip.state.fail_ctr.total[2], 0);
        c.authenticate_ev2_first(2, &new).unwrap();
    }

    /// A success never takes the counter below 0; disabling lifts the block.
    #[test]
    fn decrement_stops_at_zero_and_disabling_lifts_the_block() {
        let mut c = card();
        assert_eq!(wrong(&mut c, 1), Some(Sw::AuthenticationError));
        c.authenticate_ev2_first(1, &AesKey::FACTORY).unwrap();
        assert_eq!(c.transport().chip.state.fail_ctr.total[1], 0);
        c.transport().chip.state.fail_ctr.total[1] = 1000;
        let e = c.authenticate_ev2_first(1, &AesKey::FACTORY).err().unwrap();
        assert_eq!(e.status(), Some(Sw::PermissionDenied));
        let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        let s = s.set_configuration(0x0A, &[0, 0, 0, 0, 0]).unwrap();
        s.end();
        assert!(!c.transport().chip.state.fail_ctr.enabled);
        c.authenticate_ev2_first(1, &AesKey::FACTORY).unwrap();
    }

    /// TotFailCtrLimit "must be bigger than 0000h" (Table 50): the simulator refuses 0 with
    /// PARAMETER_ERROR and keeps its setting.
    #[test]
    fn limit_zero_is_refused() {
        let mut c = card();
        let s = c.authenticate_ev2_first(0, &AesKey::FACTORY).unwrap();
        let e = s.set_configuration(0x0A, &[1, 0, 0, 5, 0]).err().unwrap();
        assert_eq!(e.status(), Some(Sw::ParameterError));
        assert_eq!(c.transport().chip.state.fail_ctr, crate::FailCtr::default());
    }

    /// A tag file written before the counter existed loads with the delivery setting.
    #[test]
    fn old_tag_files_get_the_delivery_setting() {
        let mut v = serde_json::to_value(ChipState::factory([4; 7])).unwrap();
        v.as_object_mut().unwrap().remove("fail_ctr");
        let s: ChipState = serde_json::from_value(v).unwrap();
        assert_eq!(s.fail_ctr, crate::FailCtr::default());
    }
}
