//! A simulated NTAG 424 DNA: the chip ([`SimChip`]), its persistent state ([`ChipState`]),
//! a transport with fault injection ([`SimTransport`]) and a directory of simulated tags.

//!
//! The chip is written from the chip's side: it shares the core's crypto primitives with the
//! host and implements the [`Transport`](tag424_core::transport::Transport) seam; it speaks to the host only in APDUs.

#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

// The layers below, under the names every layer uses for them.
pub(crate) use tag424_core::{card, crypto, hex_serde};
pub(crate) use tag424_files as private_fs;

pub mod chip;
pub mod dir;
pub mod originality;
pub mod state;
pub mod transport;
pub mod vpcd;

pub use chip::SimChip;
pub use state::{ChipState, FailCtr, StateError, TagTamper};
pub use transport::{Fault, FaultKind, Flaky, SimTransport};
