//! The protocol core of tag424: everything needed to talk to an NTAG 424 DNA and to check
//! what it says, and nothing else (no files, network, database, reader driver or terminal).
//!
//! Layers, bottom up:
//! - [`crypto`]: AES/CMAC primitives, EV2 session keys, SDM/SUN, CRC32NK, LRP (the originality
//!   signature is its own crate, `tag424-originality`).
//! - [`transport`]: the one-method seam to a card, and the replay of recorded exchanges.
//! - [`card`]: APDUs, status words, the EV2 session and one file per chip command.
//! - [`sun`]: URL templates and the verification of scanned SUN URLs.
//! - [`tag_code`]: the one rule for tag codes and the one reader of code lists.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod card;
pub mod crypto;
#[cfg(feature = "serde")]
#[doc(hidden)]
pub mod hex_serde;
pub mod plural;
pub mod sun;
pub mod tag_code;
pub mod transport;
