//! Provisioning: URL template → NDEF file and SDM settings, per-tag keys, the key journal,
//! encoding one tag (and finishing interrupted ones), and the batch loop.

pub mod batch;
pub mod encode;
pub mod identify;
pub mod irreversible;
pub mod journal;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod lrp;
pub mod rehearse;
pub mod reset;
pub mod sealed;
pub mod station;

pub use encode::{encode_tag, EncodeOptions, Outcome, ProvisionError, Step};
pub use journal::Journal;
pub use keys::KeySet;
