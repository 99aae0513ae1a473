//! Leakage Resilient Primitive (LRP) as specified in NXP AN12304 and used by
//! NTAG 424 DNA in LRP mode (datasheet §9.2 and §9.3).
//!
//! Building blocks, all on top of single-block AES-128 encryption `E(k, x)`:
//!
//! * **generatePlaintexts**: `h = E(k, 55…55)`, then for each `i` in `0..16`:
//!   `p_i = E(h, AA…AA)`, `h = E(h, 55…55)`.
//! * **generateUpdatedKeys**: `h = E(k, AA…AA)`, then for each `i`:
//!   `uk_i = E(h, AA…AA)`, `h = E(h, 55…55)`.
//! * **EvalLRP(uk, x, final)**: `y = uk`; for every 4-bit nibble of `x`,
//!   most significant nibble first, `y = E(y, p[nibble])`; in final mode a
//!   last step `y = E(y, 0^16)` follows.
//! * **CMAC_LRP**: the NIST SP 800-38B CMAC construction with the block
//!   function `x -> EvalLRP(uk, x, final = true)`. [`Lrp`] is that block
//!   function as a RustCrypto block cipher (encryption only), so CMAC_LRP is
//!   `cmac::Cmac<&Lrp>`: the CMAC mode itself is not written here.
//! * **LRICB**: per 16-byte block, the block key is
//!   `EvalLRP(uk, counter, final = true)` and the block is AES-encrypted
//!   (or decrypted) under that key; the counter is a big-endian integer of
//!   the caller's width that is incremented per block and wraps at its width.
//!
//! An [`Lrp`] instance holds the 16 plaintexts derived from a key, the
//! derived updated keys and a *selected* updated key index (0 by default),
//! which is the key used by [`Lrp::eval`], [`Lrp::cmac`], [`Lrp::mact`] and
//! the LRICB methods. For NTAG 424 DNA session keys, updated key 0 is the
//! MAC key and updated key 1 is the ENC key (see [`LrpSessionKeys`]).

use cipher::consts::{U1, U16};
use cipher::inout::InOut;
use cipher::{
    BlockBackend, BlockCipher, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocksSizeUser,
};
use cmac::digest::crypto_common::InnerInit;
use cmac::{Cmac, CmacCore, Mac};
use dbl::Dbl;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{aes_decrypt_block, aes_encrypt_block, ct_eq, pad_m2, truncate_mac, unpad_m2, AesKey};

/// AES / LRP block size in bytes.
pub const BLOCK_SIZE: usize = 16;

/// Number of plaintexts (one per nibble value).
pub const PLAINTEXT_COUNT: usize = 16;

/// Number of updated keys derived and held by an [`Lrp`] instance.
pub const UPDATED_KEY_COUNT: usize = 16;

/// Updated key index used as the MAC key of LRP session / SDM keys.
pub const MAC_KEY_INDEX: usize = 0;

/// Updated key index used as the ENC key of LRP session / SDM keys.
pub const ENC_KEY_INDEX: usize = 1;

/// Errors reported by the LRP module. Nothing in this module panics on bad
/// input lengths; such inputs are reported through this enum instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LrpError {
    /// A key was not exactly 16 bytes long.
    #[error("invalid LRP key length: expected 16 bytes, got {0}")]
    InvalidKeyLength(usize),
    /// An updated key index was out of range.
    #[error("updated key index {index} out of range (0..{UPDATED_KEY_COUNT})")]
    InvalidKeyIndex {
        /// The requested index.
        index: usize,
    },
    /// An LRICB input (without padding) was not a multiple of 16 bytes.
    #[error("data length {0} is not a multiple of 16 bytes")]
    NotBlockAligned(usize),
    /// The LRICB counter was empty.
    #[error("LRICB counter must not be empty")]
    EmptyCounter,
    /// ISO/IEC 9797-1 padding method 2 was not found when unpadding.
    #[error("invalid ISO/IEC 9797-1 method 2 padding")]
    InvalidPadding,
    /// A fixed-length protocol field had the wrong length.
    #[error("invalid length for {field}: expected {expected} bytes, got {actual}")]
    InvalidLength {
        /// Name of the field.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
}

type Block = [u8; BLOCK_SIZE];

const CONST_55: Block = [0x55; BLOCK_SIZE];
const CONST_AA: Block = [0xAA; BLOCK_SIZE];
const ZERO_BLOCK: Block = [0u8; BLOCK_SIZE];

/// `E(key, block)` as a new key (the LRP key chains are keys all the way down).
fn e_key(key: &AesKey, block: &Block) -> AesKey {
    let mut out = aes_encrypt_block(key, block);
    let k = AesKey::new(out);
    out.zeroize();
    k
}

/// Multiplication by `x` in GF(2^128) with the CMAC polynomial (Rb = 0x87),
/// the `dbl` crate's (the one `cmac` uses for its subkeys).
fn gf128_double(input: &Block) -> Block {
    cipher::Block::<Lrp>::from(*input).dbl().into()
}

fn check_index(index: usize) -> Result<(), LrpError> {
    if index < UPDATED_KEY_COUNT {
        Ok(())
    } else {
        Err(LrpError::InvalidKeyIndex { index })
    }
}

fn check_len(field: &'static str, data: &[u8], expected: usize) -> Result<(), LrpError> {
    if data.len() == expected {
        Ok(())
    } else {
        Err(LrpError::InvalidLength {
            field,
            expected,
            actual: data.len(),
        })
    }
}

/// Increment a big-endian counter by one, wrapping at its own width.
pub fn increment_be(counter: &mut [u8]) {
    for byte in counter.iter_mut().rev() {
        let (value, overflow) = byte.overflowing_add(1);
        *byte = value;
        if !overflow {
            break;
        }
    }
}

/// An LRP instance for one 16-byte key: the 16 plaintexts, the derived
/// updated keys and the selected updated key index.
///
/// All key material is zeroized on drop; `Debug` output is redacted.
#[derive(Clone)]
pub struct Lrp {
    plaintexts: [Block; PLAINTEXT_COUNT],
    /// Each [`AesKey`] wipes itself when dropped.
    updated_keys: [AesKey; UPDATED_KEY_COUNT],
    key_index: usize,
}

impl Drop for Lrp {
    fn drop(&mut self) {
        self.plaintexts.zeroize();
    }
}

impl ZeroizeOnDrop for Lrp {}

impl core::fmt::Debug for Lrp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lrp")
            .field("plaintexts", &"<redacted>")
            .field("updated_keys", &"<redacted>")
            .field("key_index", &self.key_index)
            .finish()
    }
}

impl Lrp {
    /// Derive plaintexts and updated keys from `key`; updated key 0 is
    /// selected.
    pub fn new(key: &AesKey) -> Self {
        let mut plaintexts = [[0u8; BLOCK_SIZE]; PLAINTEXT_COUNT];
        let mut h = e_key(key, &CONST_55);
        for p in plaintexts.iter_mut() {
            *p = aes_encrypt_block(&h, &CONST_AA);
            h = e_key(&h, &CONST_55);
        }
        let mut h = e_key(key, &CONST_AA);
        let updated_keys = core::array::from_fn(|_| {
            let uk = e_key(&h, &CONST_AA);
            h = e_key(&h, &CONST_55);
            uk
        });
        Lrp {
            plaintexts,
            updated_keys,
            key_index: 0,
        }
    }

    /// Like [`Lrp::new`] but takes a slice, which must be 16 bytes long.
    pub fn from_slice(key: &[u8]) -> Result<Self, LrpError> {
        let key = AesKey::from_slice(key).map_err(|_| LrpError::InvalidKeyLength(key.len()))?;
        Ok(Self::new(&key))
    }

    /// Like [`Lrp::new`] but selects updated key `index`.
    pub fn with_key_index(key: &AesKey, index: usize) -> Result<Self, LrpError> {
        check_index(index)?;
        let mut lrp = Self::new(key);
        lrp.key_index = index;
        Ok(lrp)
    }

    /// Select the updated key used by `eval`, `cmac`, `mact` and LRICB.
    pub fn select_key(&mut self, index: usize) -> Result<(), LrpError> {
        check_index(index)?;
        self.key_index = index;
        Ok(())
    }

    /// The currently selected updated key index.
    pub fn key_index(&self) -> usize {
        self.key_index
    }

    /// Plaintext `p_index` (0..16).
    pub fn plaintext(&self, index: usize) -> Result<[u8; 16], LrpError> {
        self.plaintexts
            .get(index)
            .copied()
            .ok_or(LrpError::InvalidKeyIndex { index })
    }

    /// Updated key `uk_index` (0..[`UPDATED_KEY_COUNT`]).
    pub fn updated_key(&self, index: usize) -> Result<AesKey, LrpError> {
        self.updated_keys
            .get(index)
            .cloned()
            .ok_or(LrpError::InvalidKeyIndex { index })
    }

    /// The currently selected updated key.
    fn current_key(&self) -> &AesKey {
        &self.updated_keys[self.key_index]
    }

    /// EvalLRP with an explicit updated key `uk` (this instance's
    /// plaintexts). `input` is consumed nibble-wise, MSB first.
    pub fn eval_with_key(&self, uk: &AesKey, input: &[u8], final_step: bool) -> [u8; 16] {
        let mut y = uk.clone();
        for &byte in input {
            for nibble in [byte >> 4, byte & 0x0F] {
                y = e_key(&y, &self.plaintexts[usize::from(nibble)]);
            }
        }
        if final_step {
            y = e_key(&y, &ZERO_BLOCK);
        }
        *y.as_bytes()
    }

    /// EvalLRP with the selected updated key.
    pub fn eval(&self, input: &[u8], final_step: bool) -> [u8; 16] {
        self.eval_with_key(self.current_key(), input, final_step)
    }

    /// EvalLRP with updated key number `index`.
    pub fn eval_with_key_index(
        &self,
        index: usize,
        input: &[u8],
        final_step: bool,
    ) -> Result<[u8; 16], LrpError> {
        let uk = self
            .updated_keys
            .get(index)
            .ok_or(LrpError::InvalidKeyIndex { index })?;
        Ok(self.eval_with_key(uk, input, final_step))
    }

    /// CMAC_LRP subkeys `(K1, K2)` for the selected updated key:
    /// `L = EvalLRP(uk, 0^16, final)`, `K1 = L·x`, `K2 = L·x²`.
    pub fn cmac_subkeys(&self) -> ([u8; 16], [u8; 16]) {
        let l = Zeroizing::new(self.eval(&ZERO_BLOCK, true));
        let k1 = gf128_double(&l);
        let k2 = gf128_double(&k1);
        (k1, k2)
    }

    /// CMAC_LRP (full 16 bytes) of `msg` with the selected updated key:
    /// `cmac::Cmac` over this instance as its block cipher (see the
    /// [`BlockEncrypt`] impl). The MAC borrows `self`, so no copy of the key
    /// material is made; the `cmac` crate's `zeroize` feature wipes its
    /// chaining state on drop.
    pub fn cmac(&self, msg: &[u8]) -> [u8; 16] {
        let mut mac = Cmac::<&Lrp>::from_core(CmacCore::inner_init(self));
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    /// Truncated MAC (MACt): bytes 1, 3, …, 15 of [`Lrp::cmac`] (the crate's
    /// one truncation rule, [`truncate_mac`]).
    pub fn mact(&self, msg: &[u8]) -> [u8; 8] {
        truncate_mac(&self.cmac(msg))
    }

    /// Constant-time check of a received 8-byte MACt. Returns `false` for
    /// any other length.
    pub fn verify_mact(&self, msg: &[u8], mac: &[u8]) -> bool {
        let expected = self.mact(msg);
        ct_eq(&expected, mac)
    }

    /// Constant-time check of a received full 16-byte CMAC_LRP. Returns
    /// `false` for any other length.
    pub fn verify_cmac(&self, msg: &[u8], mac: &[u8]) -> bool {
        let expected = self.cmac(msg);
        ct_eq(&expected, mac)
    }

    fn lricb_check(counter: &[u8], data: &[u8]) -> Result<(), LrpError> {
        if counter.is_empty() {
            return Err(LrpError::EmptyCounter);
        }
        if !data.chunks_exact(BLOCK_SIZE).remainder().is_empty() {
            return Err(LrpError::NotBlockAligned(data.len()));
        }
        Ok(())
    }

    fn lricb_process(&self, counter: &mut [u8], data: &[u8], encrypt: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks_exact(BLOCK_SIZE) {
            let block_key = AesKey::new(self.eval(counter, true));
            let mut block = Zeroizing::new([0u8; BLOCK_SIZE]);
            block.copy_from_slice(chunk);
            let processed = Zeroizing::new(if encrypt {
                aes_encrypt_block(&block_key, &block)
            } else {
                aes_decrypt_block(&block_key, &block)
            });
            out.extend_from_slice(&processed[..]);
            increment_be(counter);
        }
        out
    }

    /// LRICB encryption without padding, using the selected updated key.
    ///
    /// `counter` is a big-endian integer of any non-zero width; it is
    /// advanced by one per block (wrapping at its width), so on return it
    /// holds the counter value for the next block. `data` must be a
    /// multiple of 16 bytes (empty is allowed and leaves the counter
    /// unchanged). On error the counter is left unchanged.
    pub fn lricb_encrypt(&self, counter: &mut [u8], data: &[u8]) -> Result<Vec<u8>, LrpError> {
        Self::lricb_check(counter, data)?;
        Ok(self.lricb_process(counter, data, true))
    }

    /// LRICB decryption without padding; see [`Lrp::lricb_encrypt`].
    pub fn lricb_decrypt(&self, counter: &mut [u8], data: &[u8]) -> Result<Vec<u8>, LrpError> {
        Self::lricb_check(counter, data)?;
        Ok(self.lricb_process(counter, data, false))
    }

    /// LRICB encryption of `data` (any length) after ISO/IEC 9797-1
    /// method 2 padding (the crate's [`pad_m2`]), which is always added
    /// (16 bytes in → 32 out).
    pub fn lricb_encrypt_padded(
        &self,
        counter: &mut [u8],
        data: &[u8],
    ) -> Result<Vec<u8>, LrpError> {
        let padded = Zeroizing::new(pad_m2(data));
        self.lricb_encrypt(counter, &padded)
    }

    /// LRICB decryption followed by removal of ISO/IEC 9797-1 method 2
    /// padding. The counter advances even if the padding turns out to be
    /// invalid (the blocks were decrypted).
    pub fn lricb_decrypt_padded(
        &self,
        counter: &mut [u8],
        data: &[u8],
    ) -> Result<Vec<u8>, LrpError> {
        if data.is_empty() {
            return Err(LrpError::InvalidPadding);
        }
        let plain = Zeroizing::new(self.lricb_decrypt(counter, data)?);
        unpad_m2(&plain)
            .map(<[u8]>::to_vec)
            .ok_or(LrpError::InvalidPadding)
    }
}

/// The LRP block function under the selected updated key,
/// `x -> EvalLRP(uk, x, final = true)` (AN12304: the primitive CMAC_LRP
/// is built on), as a RustCrypto block cipher. EvalLRP has no inverse, so
/// only [`BlockEncrypt`] is implemented; `&Lrp` is the cipher `cmac::Cmac`
/// runs on (cipher implements the traits for references).
impl BlockSizeUser for Lrp {
    type BlockSize = U16;
}

impl BlockCipher for Lrp {}

impl BlockEncrypt for Lrp {
    fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = Self::BlockSize>) {
        f.call(&mut LrpBackend(self))
    }
}

/// One-block-at-a-time backend of the [`Lrp`] block cipher; it borrows the
/// instance and holds no key material of its own.
struct LrpBackend<'a>(&'a Lrp);

impl BlockSizeUser for LrpBackend<'_> {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for LrpBackend<'_> {
    type ParBlocksSize = U1;
}

impl BlockBackend for LrpBackend<'_> {
    fn proc_block(&mut self, mut block: InOut<'_, '_, cipher::Block<Self>>) {
        let y = Zeroizing::new(self.0.eval(block.get_in(), true));
        block.get_out().copy_from_slice(&y[..]);
    }
}

/// LRP session keys: the MAC key (updated key 0) and the ENC key (updated
/// key 1) of a session master key, each with the master key's plaintexts.
#[derive(Clone, Debug)]
pub struct LrpSessionKeys {
    mac: Lrp,
    enc: Lrp,
}

impl LrpSessionKeys {
    /// Build the session keys from a session master key
    /// (e.g. SesAuthMaster = CMAC_LRP(K, SV)).
    pub fn from_master(master: &AesKey) -> Self {
        let mac = Lrp::new(master);
        let mut enc = mac.clone();
        enc.key_index = ENC_KEY_INDEX;
        LrpSessionKeys { mac, enc }
    }

    /// LRP instance with the MAC updated key selected (for CMAC / MACt).
    pub fn mac(&self) -> &Lrp {
        &self.mac
    }

    /// LRP instance with the ENC updated key selected (for LRICB).
    pub fn enc(&self) -> &Lrp {
        &self.enc
    }

    /// The MAC updated key (SesAuthMACKey, updated key 0).
    pub fn mac_key(&self) -> &AesKey {
        self.mac.current_key()
    }

    /// The ENC updated key (SesAuthENCKey, updated key 1).
    pub fn enc_key(&self) -> &AesKey {
        self.enc.current_key()
    }
}

/// Session vector for AuthenticateLRPFirst (datasheet §9.2):
/// `00 01 00 80 || RndA[0..2] || (RndA[2..8] ⊕ RndB[0..6]) || RndB[6..16]
/// || RndA[8..16] || 96 69` (32 bytes).
pub fn auth_session_vector(rnd_a: &[u8], rnd_b: &[u8]) -> Result<[u8; 32], LrpError> {
    check_len("RndA", rnd_a, 16)?;
    check_len("RndB", rnd_b, 16)?;
    let mut sv = [0u8; 32];
    sv[0..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    sv[4..6].copy_from_slice(&rnd_a[0..2]);
    for i in 0..6 {
        sv[6 + i] = rnd_a[2 + i] ^ rnd_b[i];
    }
    sv[12..22].copy_from_slice(&rnd_b[6..16]);
    sv[22..30].copy_from_slice(&rnd_a[8..16]);
    sv[30..32].copy_from_slice(&[0x96, 0x69]);
    Ok(sv)
}

/// Derive the AuthenticateLRPFirst session keys from the card key `key`:
/// `SesAuthMaster = CMAC_LRP(uk0 of Lrp::new(key), SV)`, then the MAC key is
/// updated key 0 and the ENC key updated key 1 of `Lrp::new(SesAuthMaster)`.
pub fn derive_auth_session_keys(
    key: &AesKey,
    rnd_a: &[u8],
    rnd_b: &[u8],
) -> Result<LrpSessionKeys, LrpError> {
    let sv = Zeroizing::new(auth_session_vector(rnd_a, rnd_b)?);
    let master = AesKey::new(Lrp::new(key).cmac(&sv[..]));
    Ok(LrpSessionKeys::from_master(&master))
}

/// `CMAC_LRP(SesAuthMACKey, part || part || …)` over 16-byte parts, each named for the error
/// when it has another length. The three part-2 responses differ only in their parts' order
/// and whether PICCData follows.
fn cmac_of_parts(
    keys: &LrpSessionKeys,
    parts: &[(&'static str, &[u8])],
) -> Result<[u8; 16], LrpError> {
    let mut msg = Zeroizing::new(Vec::with_capacity(16 * parts.len()));
    for (name, part) in parts {
        check_len(name, part, 16)?;
        msg.extend_from_slice(part);
    }
    Ok(keys.mac().cmac(&msg))
}

/// PCD response of AuthenticateLRPFirst part 2:
/// `CMAC_LRP(SesAuthMACKey, RndA || RndB)`, full 16 bytes (not truncated).
pub fn auth_pcd_response(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
) -> Result<[u8; 16], LrpError> {
    cmac_of_parts(keys, &[("RndA", rnd_a), ("RndB", rnd_b)])
}

/// Constant-time check of the PCD response of part 2 (see [`auth_pcd_response`]): how the chip,
/// or a replay of a recorded exchange, tells that the host knew the key. Returns `Ok(false)` on
/// mismatch (including a response of the wrong length).
pub fn verify_auth_pcd_response(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
    response: &[u8],
) -> Result<bool, LrpError> {
    let expected = auth_pcd_response(keys, rnd_a, rnd_b)?;
    Ok(ct_eq(&expected, response))
}

/// PICC response of AuthenticateLRPNonFirst part 2: `CMAC_LRP(SesAuthMACKey, RndB || RndA)`,
/// full 16 bytes (NonFirst has no PICCData; datasheet §9.2.6).
pub fn auth_picc_response_non_first(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
) -> Result<[u8; 16], LrpError> {
    cmac_of_parts(keys, &[("RndB", rnd_b), ("RndA", rnd_a)])
}

/// Constant-time verification of the PICC response of AuthenticateLRPNonFirst part 2 (see
/// [`auth_picc_response_non_first`]). Returns `Ok(false)` on mismatch (including a response of
/// the wrong length).
pub fn verify_auth_picc_response_non_first(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
    response: &[u8],
) -> Result<bool, LrpError> {
    let expected = auth_picc_response_non_first(keys, rnd_a, rnd_b)?;
    Ok(ct_eq(&expected, response))
}

/// Expected PICC response of AuthenticateLRPFirst part 2:
/// `CMAC_LRP(SesAuthMACKey, RndB || RndA || PICCData)`, full 16 bytes,
/// where `PICCData` is the 16-byte **encrypted** PICCData that precedes the
/// response in the R-APDU (datasheet §9.2; confirmed by AN12321 Table 2 —
/// `RndB || RndA` alone does not reproduce it).
pub fn auth_picc_response(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
    picc_data_enc: &[u8],
) -> Result<[u8; 16], LrpError> {
    cmac_of_parts(
        keys,
        &[
            ("RndB", rnd_b),
            ("RndA", rnd_a),
            ("PICCData", picc_data_enc),
        ],
    )
}

/// Constant-time verification of the PICC response of part 2 (see
/// [`auth_picc_response`]). Returns `Ok(false)` on mismatch (including a
/// response of the wrong length).
pub fn verify_auth_picc_response(
    keys: &LrpSessionKeys,
    rnd_a: &[u8],
    rnd_b: &[u8],
    picc_data_enc: &[u8],
    response: &[u8],
) -> Result<bool, LrpError> {
    let expected = auth_picc_response(keys, rnd_a, rnd_b, picc_data_enc)?;
    Ok(ct_eq(&expected, response))
}

/// Decrypted PICCData of AuthenticateLRPFirst part 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthPiccData {
    /// The full 16-byte plaintext `TI || PDcap2 || PCDcap2`.
    pub plain: [u8; 16],
    /// Transaction identifier.
    pub ti: [u8; 4],
    /// PICC capabilities PDcap2.
    pub pd_cap2: [u8; 6],
    /// Echoed PCD capabilities PCDcap2.
    pub pcd_cap2: [u8; 6],
    /// EncCtr after decryption (big-endian, `00000001`); secure messaging
    /// continues with this value.
    pub enc_ctr: [u8; 4],
}

/// Decrypt the 16-byte encrypted PICCData of AuthenticateLRPFirst part 2:
/// LRICB with the ENC session key and EncCtr = `00000000`.
pub fn decrypt_auth_picc_data(
    keys: &LrpSessionKeys,
    picc_data_enc: &[u8],
) -> Result<AuthPiccData, LrpError> {
    check_len("PICCData", picc_data_enc, 16)?;
    let mut enc_ctr = [0u8; 4];
    let plain_vec = Zeroizing::new(keys.enc().lricb_decrypt(&mut enc_ctr, picc_data_enc)?);
    let mut plain = [0u8; 16];
    plain.copy_from_slice(&plain_vec[..]);
    let mut ti = [0u8; 4];
    ti.copy_from_slice(&plain[0..4]);
    let mut pd_cap2 = [0u8; 6];
    pd_cap2.copy_from_slice(&plain[4..10]);
    let mut pcd_cap2 = [0u8; 6];
    pcd_cap2.copy_from_slice(&plain[10..16]);
    Ok(AuthPiccData {
        plain,
        ti,
        pd_cap2,
        pcd_cap2,
        enc_ctr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h16(s: &str) -> [u8; 16] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn k(s: &str) -> AesKey {
        AesKey::new(h16(s))
    }

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // an12304-lrp-plaintexts-updatedkeys
    #[test]
    fn an12304_lrp_plaintexts_updatedkeys() {
        let lrp = Lrp::new(&k("567826B8DA8E768432A9548DBE4AA3A0"));
        assert_eq!(
            lrp.plaintext(0).unwrap(),
            h16("AC20D39F5341FE98DFCA21DA86BA7914")
        );
        assert_eq!(
            lrp.plaintext(15).unwrap(),
            h16("71B444AF257A93215311D758DD333247")
        );
        assert_eq!(
            *lrp.updated_key(0).unwrap().as_bytes(),
            h16("163D14ED24ED935373568EC521E96CF4")
        );
        assert_eq!(
            *lrp.updated_key(2).unwrap().as_bytes(),
            h16("FE30AB50467E61783BFE6B5E0560160E")
        );
        assert_eq!(
            lrp.plaintext(16),
            Err(LrpError::InvalidKeyIndex { index: 16 })
        );
        assert!(lrp.updated_key(UPDATED_KEY_COUNT).is_err());
    }

    // an12304-lrp-eval-1 / -3
    #[test]
    fn an12304_lrp_eval() {
        let lrp = Lrp::new(&k("567826B8DA8E768432A9548DBE4AA3A0"));
        assert_eq!(
            lrp.eval_with_key_index(2, &hx("1359"), true).unwrap(),
            h16("1BA2C0C578996BC497DD181C6885A9DD")
        );
        let lrp = Lrp::with_key_index(&k("9AFF3EF56FFEC3153B1CADB48B445409"), 3).unwrap();
        assert_eq!(
            lrp.eval(&hx("4B073B247CD48F7E0A"), false),
            h16("909415E5C8BE77563050F2227E17C0E4")
        );
        assert!(lrp.eval_with_key_index(99, &[], true).is_err());
    }

    // an12304-lrp-cmac-subkey
    #[test]
    fn an12304_lrp_cmac_subkey() {
        let lrp = Lrp::new(&k("8195088CE6C393708EBBE6C7914ECB0B"));
        let (k1, k2) = lrp.cmac_subkeys();
        assert_eq!(k2, h16("2D22571A33B2965A9B49FF4395A43046"));
        assert_eq!(gf128_double(&k1), k2);
    }

    // an12304-lrp-cmac-vec1 / vec2 / vec18 / vec9
    #[test]
    fn an12304_lrp_cmac() {
        let cases = [
            (
                "63A0169B4D9FE42C72B2784C806EAC21",
                "",
                "0E07C601970814A4176FDA633C6FC3DE",
            ),
            (
                "8195088CE6C393708EBBE6C7914ECB0B",
                "BBD5B85772C7",
                "AD8595E0B49C5C0DB18E77355F5AAFF6",
            ),
            (
                "5AA9F6C6DE5138113DF5D6B6C77D5D52",
                "A4434D740C2CB665FE5396959189383F",
                "8B43ADF767E46B692E8F24E837CB5EFC",
            ),
            (
                "651312D289F4DE957C208D35827C07E4",
                "D39E4B336C46FCDCFDF803A49EB3A603851CFCFA72B3A5F843768EBDEDEB939891059275C79F1DADE2B97E288A91E3",
                "9B1530F1AD35213EB8903D5610BFD7C4",
            ),
        ];
        for (key, msg, mac) in cases {
            let lrp = Lrp::from_slice(&hx(key)).unwrap();
            let full = lrp.cmac(&hx(msg));
            assert_eq!(full, h16(mac), "key {key}");
            let t = lrp.mact(&hx(msg));
            assert_eq!(t, truncate_mac(&full));
            assert!(lrp.verify_mact(&hx(msg), &t));
            assert!(lrp.verify_cmac(&hx(msg), &full));
            assert!(!lrp.verify_mact(&hx(msg), &full));
        }
    }

    #[test]
    fn truncation_takes_odd_indexes() {
        let mac: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(truncate_mac(&mac), [1, 3, 5, 7, 9, 11, 13, 15]);
    }

    // an12304-lricb-vec1 (padded), vec2 (unpadded, wraps), vec10 (FFFFFFFF)
    #[test]
    fn an12304_lricb() {
        let lrp = Lrp::new(&k("E0C4935FF0C254CD2CEF8FDDC32460CF"));
        let mut ctr = hx("C3315DBF");
        let ct = lrp
            .lricb_encrypt_padded(&mut ctr, &hx("012D7F1653CAF6503C6AB0C1010E8CB0"))
            .unwrap();
        assert_eq!(
            ct,
            hx("FCBBACAA4F29182464F99DE41085266F480E863E487BAAF687B43ED1ECE0D623")
        );
        assert_eq!(ctr, hx("C3315DC1"));
        let mut ctr = hx("C3315DBF");
        assert_eq!(
            lrp.lricb_decrypt_padded(&mut ctr, &ct).unwrap(),
            hx("012D7F1653CAF6503C6AB0C1010E8CB0")
        );

        let lrp = Lrp::new(&k("EFA5B7429CD153BF0086DEF900C0F235"));
        let mut ctr = hx("9036FFFF");
        let ct = lrp
            .lricb_encrypt(&mut ctr, &hx("E7F61E012F4F3255312BA68B1D2FDABF"))
            .unwrap();
        assert_eq!(ct, hx("EA6E09AC2FB97E102D8CA64C1CBC0C0C"));
        assert_eq!(ctr, hx("90370000"));

        let lrp = Lrp::new(&k("9D813134CFDEE9D58755DEACD4AF72A7"));
        let mut ctr = hx("FFFFFFFF");
        let ct = lrp.lricb_encrypt_padded(&mut ctr, &hx("27")).unwrap();
        assert_eq!(ct, hx("F5833FC397356EA3D9ECADBB9F6FE440"));
        assert_eq!(ctr, hx("00000000"));
    }

    #[test]
    fn lricb_errors() {
        let lrp = Lrp::new(&AesKey::FACTORY);
        let mut ctr = [0u8; 4];
        assert_eq!(
            lrp.lricb_encrypt(&mut ctr, &[0u8; 15]),
            Err(LrpError::NotBlockAligned(15))
        );
        assert_eq!(
            lrp.lricb_decrypt(&mut [], &[0u8; 16]),
            Err(LrpError::EmptyCounter)
        );
        assert_eq!(ctr, [0u8; 4]);
        assert_eq!(
            lrp.lricb_decrypt_padded(&mut ctr, &[]),
            Err(LrpError::InvalidPadding)
        );
        // A block whose plaintext has no 80 marker is rejected.
        let mut c = [0u8; 4];
        let ct = lrp.lricb_encrypt(&mut c, &[0x11u8; 16]).unwrap();
        let mut c = [0u8; 4];
        assert_eq!(
            lrp.lricb_decrypt_padded(&mut c, &ct),
            Err(LrpError::InvalidPadding)
        );
        assert!(Lrp::from_slice(&[0u8; 15]).is_err());
        assert!(Lrp::with_key_index(&AesKey::FACTORY, UPDATED_KEY_COUNT).is_err());
    }

    #[test]
    fn padding_roundtrip_all_lengths() {
        let lrp = Lrp::new(&k("000102030405060708090A0B0C0D0E0F"));
        for len in 0..40usize {
            let data: Vec<u8> = (0..len as u8).map(|b| b ^ 0x80).collect();
            let mut c1 = [0xFFu8, 0xFE];
            let ct = lrp.lricb_encrypt_padded(&mut c1, &data).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            let mut c2 = [0xFFu8, 0xFE];
            assert_eq!(lrp.lricb_decrypt_padded(&mut c2, &ct).unwrap(), data);
            assert_eq!(c1, c2);
        }
    }

    #[test]
    fn debug_is_redacted() {
        let lrp = Lrp::new(&AesKey::new([0x42u8; 16]));
        let s = format!("{lrp:?}");
        assert!(s.contains("redacted"));
        let uk0 = lrp.updated_key(0).unwrap().to_hex();
        assert!(!s.to_uppercase().contains(&*uk0));
    }

    // an12321-t2-auth-lrp-first
    #[test]
    fn an12321_t2_auth_lrp_first() {
        let key = AesKey::FACTORY;
        let rnd_a = hx("74D7DF6A2CEC0B72B412DE0D2B1117E6");
        let rnd_b = hx("56109A31977C855319CD4618C9D2AED2");
        assert_eq!(
            auth_session_vector(&rnd_a, &rnd_b).unwrap().to_vec(),
            hx("0001008074D7897AB6DD9C0E855319CD4618C9D2AED2B412DE0D2B1117E69669")
        );
        let keys = derive_auth_session_keys(&key, &rnd_a, &rnd_b).unwrap();
        assert_eq!(
            keys.mac_key().as_bytes(),
            &h16("F56CADE598CC2A3FE47E438CFEB885DB")
        );
        assert_eq!(
            keys.enc_key().as_bytes(),
            &h16("E9043D65AB21C0C422781099AB25EFDD")
        );
        assert_eq!(
            auth_pcd_response(&keys, &rnd_a, &rnd_b).unwrap(),
            h16("189B59DCEDC31A3D3F38EF8D4810B3B4")
        );
        let picc_data_enc = hx("F4FC209D9D60623588B299FA5D6B2D71");
        assert_eq!(
            auth_picc_response(&keys, &rnd_a, &rnd_b, &picc_data_enc).unwrap(),
            h16("0125F8547D9FB8D572C90D2C2A14E235")
        );
        assert!(verify_auth_picc_response(
            &keys,
            &rnd_a,
            &rnd_b,
            &picc_data_enc,
            &hx("0125F8547D9FB8D572C90D2C2A14E235")
        )
        .unwrap());
        assert!(!verify_auth_picc_response(
            &keys,
            &rnd_a,
            &rnd_b,
            &picc_data_enc,
            &hx("0125F8547D9FB8D572C90D2C2A14E236")
        )
        .unwrap());
        let pd = decrypt_auth_picc_data(&keys, &picc_data_enc).unwrap();
        assert_eq!(pd.plain, h16("58EE9424020000000000020000000000"));
        assert_eq!(pd.ti, [0x58, 0xEE, 0x94, 0x24]);
        assert_eq!(pd.pd_cap2, [0x02, 0, 0, 0, 0, 0]);
        assert_eq!(pd.pcd_cap2, [0x02, 0, 0, 0, 0, 0]);
        assert_eq!(pd.enc_ctr, [0, 0, 0, 1]);

        assert!(verify_auth_pcd_response(
            &keys,
            &rnd_a,
            &rnd_b,
            &hx("189B59DCEDC31A3D3F38EF8D4810B3B4")
        )
        .unwrap());
        assert!(!verify_auth_pcd_response(
            &keys,
            &rnd_a,
            &rnd_b,
            &hx("189B59DCEDC31A3D3F38EF8D4810B3B5")
        )
        .unwrap());
        assert!(!verify_auth_pcd_response(&keys, &rnd_a, &rnd_b, &[0u8; 15]).unwrap());
        // NonFirst: the same message as First without the PICCData.
        let mut msg = rnd_b.clone();
        msg.extend_from_slice(&rnd_a);
        let nf = auth_picc_response_non_first(&keys, &rnd_a, &rnd_b).unwrap();
        assert_eq!(nf, keys.mac().cmac(&msg));
        assert!(verify_auth_picc_response_non_first(&keys, &rnd_a, &rnd_b, &nf).unwrap());
        assert!(!verify_auth_picc_response_non_first(&keys, &rnd_a, &rnd_b, &nf[..8]).unwrap());
        assert!(auth_picc_response_non_first(&keys, &rnd_a[..15], &rnd_b).is_err());
        assert!(auth_session_vector(&rnd_a[..15], &rnd_b).is_err());
        assert!(derive_auth_session_keys(&key, &rnd_a, &rnd_b[..3]).is_err());
        assert!(decrypt_auth_picc_data(&keys, &[0u8; 17]).is_err());
    }
}
