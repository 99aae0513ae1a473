//! The simulator behind the transport seam, with tear-off faults on demand.

use super::SimChip;
use crate::transport::{Transport, TransportError};

/// When the tag leaves the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Before command `at` reaches the chip: it is not applied.
    BeforeApply,
    /// After command `at` is applied, before its response arrives.
    AfterApply,
}

/// A tear-off at APDU index `at` (0-based, counted on this transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub at: usize,
    pub kind: FaultKind,
}

/// A simulated chip in the field of a simulated reader.
#[derive(Debug)]
pub struct SimTransport {
    pub chip: SimChip,
    fault: Option<Fault>,
    exchanges: usize,
    present: bool,
}

impl SimTransport {
    pub fn new(chip: SimChip) -> Self {
        SimTransport {
            chip,
            fault: None,
            exchanges: 0,
            present: true,
        }
    }

    /// Arms a tear-off.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Puts the tag back in the field (after a tear-off).
    pub fn reinsert(&mut self) {
        self.chip.power_cycle();
        self.present = true;
        self.fault = None;
    }

    pub fn present(&self) -> bool {
        self.present
    }

    pub fn exchanges(&self) -> usize {
        self.exchanges
    }
}

impl Transport for SimTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError::NoCard);
        }
        let index = self.exchanges;
        self.exchanges += 1;
        match self.fault {
            Some(f) if f.at == index => {
                if f.kind == FaultKind::AfterApply {
                    self.chip.process(command);
                }
                self.chip.power_cycle();
                self.present = false;
                Err(TransportError::CardRemoved)
            }
            _ => Ok(self.chip.process(command)),
        }
    }
}
