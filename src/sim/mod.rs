//! A simulated NTAG 424 DNA: the chip ([`SimChip`]), its persistent state ([`ChipState`]),
//! a transport with fault injection ([`SimTransport`]) and a directory of simulated tags.

pub mod chip;
pub mod dir;
pub mod state;
pub mod transport;
pub mod vpcd;

pub use chip::SimChip;
pub use state::{ChipState, TagTamper};
pub use transport::{Fault, FaultKind, Flaky, SimTransport};
