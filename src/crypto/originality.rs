//! The originality signature (NT4H2421Gx §8.2, AN12196 §7.2): ECDSA on secp224r1 over the raw
//! 7-byte UID, with no hash, the signature being `r(28) || s(28)`.

use p224::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p224::ecdsa::{Signature, SigningKey, VerifyingKey};

/// NXP's public key for NTAG 424 DNA originality signatures (uncompressed SEC1 point).
pub const NXP_NTAG424_PUBLIC_KEY: &str =
    "048A9B380AF2EE1B98DC417FECC263F8449C7625CECE82D9B916C992DA209D68422B81EC20B65A66B5102A61596AF3379200599316A00A1410";

/// The private scalar the simulator signs its UIDs with. It is public on purpose: a chip
/// signed with it is a *simulated* chip, and is never reported as genuine NXP silicon.
pub const SIMULATOR_PRIVATE_KEY: [u8; 28] = *b"tag424 simulated NTAG424 DNA";

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
fn prehash(uid: &[u8]) -> [u8; 28] {
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
    if trust_simulator && verify_with(&simulator_public_key(), uid, signature) {
        return Originality::Simulated;
    }
    Originality::Invalid
}

fn simulator_signing_key() -> Option<SigningKey> {
    SigningKey::from_slice(&SIMULATOR_PRIVATE_KEY).ok()
}

/// The simulator's public key, SEC1 uncompressed.
pub fn simulator_public_key() -> Vec<u8> {
    simulator_signing_key()
        .map(|k| {
            k.verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        })
        .unwrap_or_default()
}

/// Signs a UID with the simulator key (what a simulated chip answers to ReadSig).
pub fn simulator_sign(uid: &[u8]) -> [u8; 56] {
    let mut out = [0u8; 56];
    if let Some(k) = simulator_signing_key() {
        let sig: Result<Signature, _> = k.sign_prehash(&prehash(uid));
        if let Ok(sig) = sig {
            out.copy_from_slice(&sig.to_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_signature_is_not_genuine() {
        let uid = hex::decode("04A1B2C3D4E5F6").unwrap();
        let sig = simulator_sign(&uid);
        assert_eq!(classify(&uid, &sig, false), Originality::Invalid);
        assert_eq!(classify(&uid, &sig, true), Originality::Simulated);
        assert_eq!(
            classify(&[0x04, 0, 0, 0, 0, 0, 1], &sig, true),
            Originality::Invalid
        );
    }
}
