//! The simulated chip's originality signature (NT4H2421Gx §8.2, AN12196 §7.2): what Read_Sig
//! answers. A real chip carries NXP's signature from manufacture; the simulated one signs its
//! UID with a key published here on purpose, so that a simulated chip is never taken for NXP
//! silicon (the host's `tag424_originality::classify` calls it `Simulated`, and only when told
//! to trust the simulator).

use p224::ecdsa::signature::hazmat::PrehashSigner;
use p224::ecdsa::{Signature, SigningKey};

use tag424_originality::prehash;

/// The private scalar the simulator signs its UIDs with: 28 ASCII bytes, public on purpose.
pub const SIMULATOR_PRIVATE_KEY: [u8; 28] = *b"tag424 simulated NTAG424 DNA";

/// Signs a UID with the simulator key (what a simulated chip answers to Read_Sig).
pub fn simulator_sign(uid: &[u8]) -> [u8; 56] {
    let mut out = [0u8; 56];
    if let Ok(k) = SigningKey::from_slice(&SIMULATOR_PRIVATE_KEY) {
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
    use tag424_originality::{classify, Originality, SIMULATOR_PUBLIC_KEY};

    #[test]
    fn the_published_public_key_is_this_private_keys() {
        let k = SigningKey::from_slice(&SIMULATOR_PRIVATE_KEY).unwrap();
        let public = k.verifying_key().to_encoded_point(false);
        assert_eq!(hex::encode_upper(public.as_bytes()), SIMULATOR_PUBLIC_KEY);
    }

    #[test]
    fn a_simulator_signature_is_simulated_never_genuine() {
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
