//! Reading the worked examples of `tests/data/` (`nxp.json`, `lrp-tt.json`; see
//! `tests/data/README.md`): a vector by id, its fields as text, bytes or keys, and its
//! exchanges as a replayed card.
#![allow(dead_code)]

use serde_json::Value;
use tag424::crypto::AesKey;
use tag424::transport::replay::{Fixture, Replay};

/// Every vector of a vectors file.
pub fn all(json: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(json).expect("the vectors file parses")
}

/// The vector with this id.
pub fn find(json: &str, id: &str) -> Value {
    all(json)
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("vector {id} missing"))
}

/// A text field.
pub fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} is not a string"))
}

/// A hex field as bytes.
pub fn h(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(s(v, field)).unwrap_or_else(|_| panic!("field {field} is not hex"))
}

/// Bytes as upper-case hex, for comparing with the files' text.
pub fn hx(b: impl AsRef<[u8]>) -> String {
    hex::encode_upper(b)
}

/// A hex field as an AES key.
pub fn key(v: &Value, field: &str) -> AesKey {
    AesKey::from_slice(&h(v, field)).unwrap()
}

/// A card side that answers exactly these (command, response) pairs.
pub fn replay(pairs: &[(Vec<u8>, Vec<u8>)]) -> Replay {
    Replay::new(&Fixture {
        meta: vec![],
        exchanges: pairs.to_vec(),
    })
}
