//! tag424 — provision NXP NTAG 424 DNA tags.
//!
//! Layers, bottom up:
//! - [`crypto`]: AES/CMAC primitives, EV2 session keys, SDM/SUN, CRC32NK, LRP, originality.
//! - [`transport`]: the one-method seam to a card (PC/SC, simulator, replay).
//! - [`card`]: APDUs, status words, the EV2 session and one file per chip command.
//! - [`sun`]: URL templates and the verification of scanned SUN URLs.
//! - [`tag_code`]: the one rule for tag codes and the one reader of code lists.
//! - [`diagnose`]: what `tag424 doctor` measures and decodes (exchange time, ATR, quirks).
//! - [`private_fs`]: owner-only, durable, symlink-safe files and folders.
//! - `cli`: the `tag424` command line (in the binary).

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod card;
pub mod crypto;
pub mod diagnose;
pub(crate) mod hex_serde;
pub mod plural;
pub mod private_fs;
pub mod provision;
pub mod sim;
pub mod sun;
pub mod tag_code;
pub mod transport;
pub mod verifier;
