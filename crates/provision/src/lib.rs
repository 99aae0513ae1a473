//! Provisioning: URL template → NDEF file and SDM settings, per-tag keys, the key journal,
//! encoding one tag (and finishing interrupted ones), and the batch loop.

//!
//! Also [`diagnose`]: what `tag424 doctor` measures and decodes (exchange time, ATR, quirks).
//! Depends on the protocol core and the owner-only files; never on a reader driver, the
//! simulator or the verifier (the caller opens the reader). Reports progress through events
//! and typed errors; it never prints.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

// The layers below, under the names every layer uses for them.
pub(crate) use tag424_core::{card, crypto, hex_serde, plural, sun, tag_code, transport};
pub(crate) use tag424_files as private_fs;
pub(crate) use tag424_originality as originality;

pub mod batch;
pub mod code_list;
pub mod diagnose;
pub mod encode;
pub mod identify;
pub mod irreversible;
pub mod journal;
pub mod keys;
pub mod layout;
pub mod lifecycle;
pub mod lock;
pub mod lrp;
pub mod options;
mod random_uid;
pub mod rehearse;
pub mod report;
pub mod reset;
pub mod sealed;
pub mod station;

pub use encode::{encode_tag, EncodeOptions, Outcome, ProvisionError, Step};
pub use journal::Journal;
pub use keys::KeySet;
