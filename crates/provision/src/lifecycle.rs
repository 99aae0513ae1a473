//! The chip's lifecycle options of a batch (`tag424 batch --random-uid`,
//! `--read-counter-limit N`, `--failed-auth-limit N[,DECR]`): one value per batch, recorded in
//! its journal with the irreversible ones (`crate::options`), so a resumed batch keeps them and
//! a different value is refused; and the
//! finding of a tag that answers with a random ID.
//!
//! **Random ID** (SetConfiguration option `00`, data `02`, NT4H2421Gx §10.5.1 Table 50) is
//! IRREVERSIBLE. Its place in the flow keeps every tag recoverable:
//! the plan (real UID from GetVersion, keys) is journaled, then a `random_id` record, then
//! the option is sent in the factory key-0 session, before the SDM settings and every
//! ChangeKey (key 0 last). So a tag showing a zero UID in GetVersion (Table 58) is either
//! * key 0 still factory (GetKeyVersion 00, readable without authentication): authenticated
//!   with the factory key (the one key its version points to), GetCardUID (CommMode.Full,
//!   response MAC verified) gives the real UID, which the journal knows; or
//! * key 0 changed (version 01): every step but the read-back happened, and the tag is one
//!   of the journal's Random ID tags. One unauthenticated read of its SUN message, checked
//!   offline against each of them, names it (no authentication is tried, so no failed
//!   attempt counts on the chip).
//!
//! **SDMReadCtrLimit** (NT4H2421Gx §9.3.2, SDMOptions bit 5, 3 bytes LSB first in
//! ChangeFileSettings, Table 69): once the SDM read counter equals the limit the chip refuses
//! every further unauthenticated read of the NDEF file (ISOReadBinary 6982, Table 89; the
//! ReadData status is not published: the simulator answers 919D, docs/chip-facts.md §7).
//! The encoding's own read-back is read 1.
//!
//! **Failed-authentication counter** (SetConfiguration option `0A`, NT4H2421Gx §10.5.1
//! Table 50; §9): each key's TotFailCtr counts failed authentications (+1) and successful
//! ones (−TotFailCtrDecr, not below 0); at TotFailCtrLimit that key cannot authenticate
//! anymore (a blocked key 0 for good). The chip's delivery setting is enabled, 1000, 10. Not
//! irreversible (key 0 may set it again), so not in `irreversible::ALL`; sent in the factory
//! key-0 session after Random ID and before the SDM settings and the keys, one more
//! exchange per tag. Sent again when an interrupted tag is finished with key 0 still factory
//! (the same value: harmless).

use serde::{Deserialize, Serialize};

pub use crate::card::cmd::set_configuration::FailedAuthConfig;

/// The lifecycle options of a batch. The default is both off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// IRREVERSIBLE: switch Random ID on (`--random-uid`).
    pub random_uid: bool,
    /// SDMReadCtrLimit of the NDEF file (`--read-counter-limit N`).
    pub read_ctr_limit: Option<u32>,
    /// The failed-authentication counter (`--failed-auth-limit N[,DECR]`); `None` leaves the
    /// chip's setting (delivery: enabled, limit 1000, decrement 10).
    #[serde(default)]
    pub failed_auth: Option<FailedAuthConfig>,
}

/// The smallest limit: the encoding's read-back is read 1, so 2 leaves one tap.
pub const MIN_READ_CTR_LIMIT: u32 = 2;
/// The largest limit: the counter is 24 bits and `FFFFFF` is the chip's "no limit".
pub const MAX_READ_CTR_LIMIT: u32 = 0xFF_FFFE;

/// A lifecycle option that does not fit this batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    /// A read counter limit out of range.
    #[error("--read-counter-limit {0}: must be from {MIN_READ_CTR_LIMIT} to {MAX_READ_CTR_LIMIT} (the encoding's own read-back is read 1; the counter has 24 bits)")]
    Limit(u32),
}

impl Lifecycle {
    /// The options as summary.json, the `--json` lifecycle event and `journal check --json`
    /// show them (one shape).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "random_uid": self.random_uid,
            "read_ctr_limit": self.read_ctr_limit,
            "failed_auth_limit": self.failed_auth.map(|c| serde_json::json!({
                "limit": c.limit.get(), "decrement": c.decrement})),
        })
    }

    /// The options as the command line gives them (`no lifecycle option` when none).
    pub fn flags(&self) -> String {
        let mut f = Vec::new();
        if self.random_uid {
            f.push("--random-uid".to_string());
        }
        if let Some(n) = self.read_ctr_limit {
            f.push(format!("--read-counter-limit {n}"));
        }
        if let Some(c) = self.failed_auth {
            f.push(format!("--failed-auth-limit {}", failed_auth_arg(&c)));
        }
        if f.is_empty() {
            "no lifecycle option".into()
        } else {
            f.join(" ")
        }
    }

    /// Checks the limit's range.
    pub fn check(&self) -> Result<(), LifecycleError> {
        match self.read_ctr_limit {
            Some(n) if !(MIN_READ_CTR_LIMIT..=MAX_READ_CTR_LIMIT).contains(&n) => {
                Err(LifecycleError::Limit(n))
            }
            _ => Ok(()),
        }
    }
}

/// `--failed-auth-limit`'s value for `c`: `N,DECR`.
pub fn failed_auth_arg(c: &FailedAuthConfig) -> String {
    format!("{},{}", c.limit, c.decrement)
}

/// A `--failed-auth-limit` value that is not `N` or `N,DECR`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--failed-auth-limit {0}: give N or N,DECR, N from 1 to 65535 failed authentications per key (the chip refuses 0), DECR from 0 to 65535 (default 10, the chip's)")]
pub struct FailedAuthArgError(pub String);

/// Parses `--failed-auth-limit N[,DECR]` (DECR defaults to the chip's 10).
pub fn parse_failed_auth(s: &str) -> Result<FailedAuthConfig, FailedAuthArgError> {
    let bad = || FailedAuthArgError(s.to_string());
    let (n, d) = match s.split_once(',') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    let limit = n
        .trim()
        .parse::<std::num::NonZeroU16>()
        .map_err(|_| bad())?;
    let decrement = match d {
        Some(d) => d.trim().parse::<u16>().map_err(|_| bad())?,
        None => FailedAuthConfig::DEFAULT.decrement,
    };
    Ok(FailedAuthConfig { limit, decrement })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let l = Lifecycle {
            random_uid: true,
            read_ctr_limit: Some(100),
            failed_auth: Some(parse_failed_auth("3,1").unwrap()),
        };
        assert_eq!(
            l.flags(),
            "--random-uid --read-counter-limit 100 --failed-auth-limit 3,1"
        );
        assert_eq!(Lifecycle::default().flags(), "no lifecycle option");
    }

    #[test]
    fn limit_range() {
        let at = |n| Lifecycle {
            read_ctr_limit: Some(n),
            ..Default::default()
        };
        assert_eq!(at(1).check(), Err(LifecycleError::Limit(1)));
        assert!(at(2).check().is_ok());
        assert!(at(0xFF_FFFE).check().is_ok());
        assert_eq!(at(0xFF_FFFF).check(), Err(LifecycleError::Limit(0xFF_FFFF)));
    }

    #[test]
    fn failed_auth_limit_parses() {
        let c = parse_failed_auth("3,1").unwrap();
        assert_eq!((c.limit.get(), c.decrement), (3, 1));
        let c = parse_failed_auth("500").unwrap();
        assert_eq!((c.limit.get(), c.decrement), (500, 10));
        for bad in ["0", "0,1", "65536", "x", "3,", "3,-1", "3,1,2", ""] {
            assert!(parse_failed_auth(bad).is_err(), "{bad}");
        }
    }

    /// A journal of an older tag424 (no `failed_auth`) reads as "not set".
    #[test]
    fn old_records_have_no_failed_auth_limit() {
        let l: Lifecycle =
            serde_json::from_str(r#"{"random_uid":true,"read_ctr_limit":null}"#).unwrap();
        assert_eq!(l.failed_auth, None);
    }
}
