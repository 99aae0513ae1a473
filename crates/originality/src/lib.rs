//! The originality signature (NT4H2421Gx §8.2, AN12196 §7.2): ECDSA on secp224r1 over the raw
//! 7-byte UID, with no hash, the signature being `r(28) || s(28)`.
//!
//! A crate of its own, beside the protocol core: it is the one check that needs elliptic-curve
//! arithmetic. The chip command that reads the signature (Read_Sig) is the core's
//! (`tag424_core::card`); this crate says who signed it. The host only verifies; the simulated
//! chip signs with its own published key (the `tag424-sim` crate holds the private half,
//! [`SIMULATOR_PUBLIC_KEY`] is its public half).

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

use p224::ecdsa::signature::hazmat::PrehashVerifier;
use p224::ecdsa::{Signature, VerifyingKey};

/// NXP's public key for NTAG 424 DNA originality signatures (uncompressed SEC1 point).
pub const NXP_NTAG424_PUBLIC_KEY: &str =
    "048A9B380AF2EE1B98DC417FECC263F8449C7625CECE82D9B916C992DA209D68422B81EC20B65A66B5102A61596AF3379200599316A00A1410";

/// The public key of the simulated chip's signatures (SEC1 uncompressed). Its private half is
/// published on purpose (`tag424_sim::originality`): a chip signed with it is a *simulated*
/// chip, and is never reported as genuine NXP silicon.
pub const SIMULATOR_PUBLIC_KEY: &str =
    "04BF25A84E637D29722DA5C3CC5FDFFAC8DDDAEC6C416E54A7261058A5977E25190D41285573C9A0FA9AC322CAC309F5C037D94CE33D87494E";

/// Who made a signature that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Originality {
    /// Signed by NXP's NTAG 424 DNA key: genuine silicon.
    GenuineNxp,
    /// Signed by tag424's published simulator key: a simulated chip.
    Simulated,
    /// Neither key verifies the signature.
    Invalid,
}

/// The message NXP signs: the UID as an integer, left-padded to the 28-byte field size.
pub fn prehash(uid: &[u8]) -> [u8; 28] {
    let mut m = [0u8; 28];
    let n = uid.len().min(28);
    m[28 - n..].copy_from_slice(&uid[..n]);
    m
}

/// Checks a 56-byte signature over `uid` against one SEC1-encoded public key.
pub fn verify_with(public_key_sec1: &[u8], uid: &[u8], signature: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_sec1_bytes(public_key_sec1) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_prehash(&prehash(uid), &sig).is_ok()
}

/// Classifies a signature: genuine NXP, simulator (only when `trust_simulator` is set), or invalid.
pub fn classify(uid: &[u8], signature: &[u8], trust_simulator: bool) -> Originality {
    let nxp = hex::decode(NXP_NTAG424_PUBLIC_KEY).unwrap_or_default();
    if verify_with(&nxp, uid, signature) {
        return Originality::GenuineNxp;
    }
    let simulator = hex::decode(SIMULATOR_PUBLIC_KEY).unwrap_or_default();
    if trust_simulator && verify_with(&simulator, uid, signature) {
        return Originality::Simulated;
    }
    Originality::Invalid
}
