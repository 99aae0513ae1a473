//! Serde helpers: byte arrays as uppercase hex strings in JSON output.

use serde::Serializer;

pub fn bytes<S: Serializer, B: AsRef<[u8]>>(b: &B, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(b.as_ref()))
}

#[allow(dead_code)]
pub fn opt_bytes<S: Serializer, B: AsRef<[u8]>>(b: &Option<B>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&hex::encode_upper(b.as_ref())),
        None => s.serialize_none(),
    }
}

/// Five AES keys as a list of hex strings (the key journal and simulated tag files: both are
/// meant to hold keys).
pub mod keys5 {
    use crate::crypto::AesKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(keys: &[AesKey; 5], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(5))?;
        for k in keys {
            seq.serialize_element(&*k.to_hex())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[AesKey; 5], D::Error> {
        // The hex strings are wiped however this ends (a wrong count, a bad key).
        let v = zeroize::Zeroizing::new(Vec::<String>::deserialize(d)?);
        if v.len() != 5 {
            return Err(serde::de::Error::custom("five keys expected"));
        }
        let mut out: [AesKey; 5] = std::array::from_fn(|_| AesKey::FACTORY);
        for (o, s) in out.iter_mut().zip(v.iter()) {
            *o = s.parse().map_err(serde::de::Error::custom)?;
        }
        Ok(out)
    }
}
