//! tag424 — provision NXP NTAG 424 DNA tags.
//!
//! This package is the `tag424` binary (the command line, the only part that prints). Its
//! library gathers the workspace's crates under one name, for the integration suites in
//! `tests/`, the benches and programs that want all of tag424 at once. Each layer is its own
//! crate (docs/architecture.md), bottom up:
//! - `tag424-core`: [`crypto`], [`card`], [`transport`] (the seam, replay), [`sun`],
//!   [`tag_code`] and [`plural`]: the protocol, nothing else.
//! - `tag424-originality`: [`originality`], the originality signature check (ECDSA P-224).
//! - `tag424-files`: [`private_fs`], owner-only, durable, symlink-safe files and folders.
//! - `tag424-pcsc`: [`transport::pcsc`], PC/SC readers.
//! - `tag424-sim`: [`sim`], the simulated chip and its vpcd bridge.
//! - `tag424-provision`: [`provision`] (layout, journal, encode, batch, station) and
//!   [`diagnose`] (what `tag424 doctor` measures).
//! - `tag424-verifier`: [`verifier`], the local verifier.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub use tag424_core::{card, crypto, plural, sun, tag_code};
pub use tag424_files as private_fs;
pub use tag424_originality as originality;
pub use tag424_provision as provision;
pub use tag424_provision::diagnose;
pub use tag424_sim as sim;
pub use tag424_verifier as verifier;

/// The transport seam ([`tag424_core::transport`]) and its PC/SC backend.
pub mod transport {
    pub use tag424_core::transport::*;
    pub use tag424_pcsc as pcsc;
}
