//! EV2 secure messaging math (NT4H2421Gx §9.1): session keys from the authentication randoms,
//! the command/response IVs and the MAC inputs. The session state machine is in `card::session`.

use super::{aes_encrypt_block, cmac, AesKey};
use zeroize::ZeroizeOnDrop;

/// The two session keys of an authenticated EV2 session.
/// Both keys wipe themselves when dropped.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    /// SesAuthENCKey: encrypts command and response data.
    pub enc: AesKey,
    /// SesAuthMACKey: computes the command and response MACs.
    pub mac: AesKey,
}

impl ZeroizeOnDrop for SessionKeys {}

/// The 32-byte session vector: `label || 0001 0080 || RndA[0..2] || (RndA[2..8] ⊕ RndB[0..6])
/// || RndB[6..16] || RndA[8..16]` (§9.1.7; the datasheet's byte numbering is MSB-first).
pub fn session_vector(label: [u8; 2], rnd_a: &[u8; 16], rnd_b: &[u8; 16]) -> [u8; 32] {
    let mut sv = [0u8; 32];
    sv[0..2].copy_from_slice(&label);
    sv[2..6].copy_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    sv[6..8].copy_from_slice(&rnd_a[0..2]);
    for i in 0..6 {
        sv[8 + i] = rnd_a[2 + i] ^ rnd_b[i];
    }
    sv[14..24].copy_from_slice(&rnd_b[6..16]);
    sv[24..32].copy_from_slice(&rnd_a[8..16]);
    sv
}

/// SesAuthENCKey = CMAC(K, SV1) and SesAuthMACKey = CMAC(K, SV2).
pub fn derive_session_keys(key: &AesKey, rnd_a: &[u8; 16], rnd_b: &[u8; 16]) -> SessionKeys {
    let sv1 = session_vector([0xA5, 0x5A], rnd_a, rnd_b);
    let sv2 = session_vector([0x5A, 0xA5], rnd_a, rnd_b);
    SessionKeys {
        enc: AesKey::new(cmac(key, &sv1)),
        mac: AesKey::new(cmac(key, &sv2)),
    }
}

/// IV for command data: `E(SesAuthENCKey, A55A || TI || CmdCtr(LE) || 00×8)`.
pub fn iv_command(enc: &AesKey, ti: &[u8; 4], cmd_ctr: u16) -> [u8; 16] {
    iv(enc, [0xA5, 0x5A], ti, cmd_ctr)
}

/// IV for response data: `E(SesAuthENCKey, 5AA5 || TI || CmdCtr+1 (LE) || 00×8)`.
/// `cmd_ctr` here is the already incremented counter.
pub fn iv_response(enc: &AesKey, ti: &[u8; 4], cmd_ctr: u16) -> [u8; 16] {
    iv(enc, [0x5A, 0xA5], ti, cmd_ctr)
}

fn iv(enc: &AesKey, label: [u8; 2], ti: &[u8; 4], ctr: u16) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&label);
    b[2..6].copy_from_slice(ti);
    b[6..8].copy_from_slice(&ctr.to_le_bytes());
    aes_encrypt_block(enc, &b)
}

/// Command MAC input: `Cmd || CmdCtr(LE) || TI || CmdHeader || data` (data already encrypted
/// in CommMode.Full). CLA, P1, P2 and Lc are never MACed.
pub fn command_mac_input(
    cmd: u8,
    cmd_ctr: u16,
    ti: &[u8; 4],
    header: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(7 + header.len() + data.len());
    v.push(cmd);
    v.extend_from_slice(&cmd_ctr.to_le_bytes());
    v.extend_from_slice(ti);
    v.extend_from_slice(header);
    v.extend_from_slice(data);
    v
}

/// Response MAC input: `RC (=SW2) || CmdCtr+1 (LE) || TI || data` — no command byte.
/// `cmd_ctr` here is the already incremented counter.
pub fn response_mac_input(rc: u8, cmd_ctr: u16, ti: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(7 + data.len());
    v.push(rc);
    v.extend_from_slice(&cmd_ctr.to_le_bytes());
    v.extend_from_slice(ti);
    v.extend_from_slice(data);
    v
}
