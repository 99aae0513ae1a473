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
