//! SUN mirroring (NT4H2421Gx §9.3): an unauthenticated read of an SDM file returns its bytes
//! with the mirrors filled in, in AES or LRP mode; NT4H2421Tx adds the TagTamper status.
//!
//! Order on the chip: the counter moves on the first read of a sequence; UID, counter,
//! PICCData and the TagTamper status are written; then the file data is encrypted (with a
//! TagTamper status inside its plaintext half, that is encrypted too); last the SDMMAC over
//! the finished image from SDMMACInputOffset.

use super::{sw, SdmCursor, SimChip};
use crate::crypto::{sdm, sdm_lrp};

impl SimChip {
    /// File content as an unauthenticated reader sees it: with SDM on, the mirrored image
    /// (counter moved on the first read of a sequence, reused while the sequence continues).
    pub(super) fn read_image(
        &mut self,
        file_no: u8,
        ins: u8,
        cursor: Option<SdmCursor>,
    ) -> Result<Vec<u8>, u16> {
        let uid = self.state.uid;
        let lrp = self.state.lrp;
        let fs = self.settings(file_no)?;
        let f = self.state.file(file_no).ok_or(sw::FILE_NOT_FOUND)?;
        let Some(s) = fs.sdm.filter(|_| self.session.is_none()) else {
            return Ok(f.data.clone());
        };
        if let Some(c) = cursor.filter(|c| c.file_no == file_no && c.ins == ins) {
            let image = c.image.clone();
            self.sdm_cursor = Some(c);
            return Ok(image);
        }
        if let Some(limit) = s.ctr_limit {
            if f.sdm_read_ctr >= limit {
                return Err(sw::PERMISSION);
            }
        }
        if f.sdm_read_ctr >= 0xFF_FFFF {
            return Err(sw::PERMISSION);
        }
        let ctr = f.sdm_read_ctr + 1;
        let mut image = f.data.clone();
        let key = |k: Option<u8>| k.map(|k| self.state.keys[k as usize].clone());
        let meta_key = key(s.meta_key());
        let file_key = key(s.file_key());
        let uid_m = s.mirrors_uid().then_some(&uid);
        let ctr_m = s.mirrors_ctr().then_some(ctr);
        let put = |image: &mut Vec<u8>, off: u32, text: &[u8]| {
            let o = off as usize;
            if let Some(dst) = image.get_mut(o..o + text.len()) {
                dst.copy_from_slice(text);
            }
        };
        if let Some(o) = s.uid {
            put(&mut image, o, hex::encode_upper(uid).as_bytes());
        }
        if let Some(o) = s.ctr {
            put(&mut image, o, format!("{ctr:06X}").as_bytes());
        }
        if let (Some(o), Some(k)) = (s.picc, meta_key.as_ref()) {
            let r = self.random::<16>();
            let text = if lrp {
                let picc_rand = self.random::<8>();
                hex::encode_upper(sdm_lrp::encrypt_picc_data(k, uid_m, ctr_m, &picc_rand, &r))
            } else {
                hex::encode_upper(sdm::encrypt_picc_data(k, uid_m, ctr_m, &r))
            };
            put(&mut image, o, text.as_bytes());
        }
        if let Some(o) = s.tt {
            // Two ASCII status bytes as they are (no hex), from this activation's measurement.
            let status = self.tt_status();
            put(&mut image, o, &status);
        }
        if let (Some((o, l)), Some(k)) = (s.enc, file_key.as_ref()) {
            let start = o as usize;
            let plain = image
                .get(start..start + l as usize / 2)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let enc = if lrp {
                sdm_lrp::encrypt_file_data(k, &uid, ctr, &plain)
            } else {
                sdm::encrypt_file_data(k, &uid, ctr, &plain)
            }
            .map_err(|_| sw::PARAMETER)?;
            put(&mut image, o, hex::encode_upper(enc).as_bytes());
        }
        if let (Some(mi), Some(mo), Some(k)) = (s.mac_input, s.mac, file_key.as_ref()) {
            let input = image
                .get(mi as usize..mo as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mac = if lrp {
                sdm_lrp::sdm_mac(k, uid_m, ctr_m, &input)
            } else {
                sdm::sdm_mac(k, uid_m, ctr_m, &input)
            };
            put(&mut image, mo, hex::encode_upper(mac).as_bytes());
        }
        if let Some(f) = self.state.file_mut(file_no) {
            f.sdm_read_ctr = ctr;
        }
        self.sdm_cursor = Some(SdmCursor {
            file_no,
            ins,
            image: image.clone(),
        });
        Ok(image)
    }
}
