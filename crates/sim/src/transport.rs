//! The simulator behind the transport seam, with tear-off faults on demand and an optional
//! latency per exchange (the air time and reader overhead of a real reader, for benchmarks).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::SimChip;
use tag424_core::transport::{Transport, TransportError};

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
    /// 0-based index of the APDU torn off.
    pub at: usize,
    /// Whether the chip applies that command before the tag leaves.
    pub kind: FaultKind,
}

/// A flaky reader's random faults, drawn for every exchange: probabilities in parts per
/// million (so the options compare exactly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flaky {
    /// The chip applies the command and its answer is lost
    /// ([`TransportError::ResponseLost`]); the tag stays in the field.
    pub drop_ppm: u32,
    /// The tag leaves the field at the command, torn before or after the chip applies it
    /// (one or the other with even odds; [`TransportError::CardRemoved`]), until
    /// [`SimTransport::reinsert`].
    pub remove_ppm: u32,
}

impl Flaky {
    /// No faults.
    pub fn is_none(&self) -> bool {
        self.drop_ppm == 0 && self.remove_ppm == 0
    }
}

/// A simulated chip in the field of a simulated reader.
#[derive(Debug)]
pub struct SimTransport {
    /// The simulated chip (its state is inspectable and changeable between exchanges).
    pub chip: SimChip,
    fault: Option<Fault>,
    exchanges: usize,
    present: bool,
    latency: Duration,
    flaky: Flaky,
    rng: Option<StdRng>,
}

impl SimTransport {
    /// The chip in the field: no fault armed, no latency.
    pub fn new(chip: SimChip) -> Self {
        SimTransport {
            chip,
            fault: None,
            exchanges: 0,
            present: true,
            latency: Duration::ZERO,
            flaky: Flaky::default(),
            rng: None,
        }
    }

    /// Draws random faults for every exchange ([`Flaky`]) from a generator seeded with
    /// `seed`: the same seed and commands give the same faults.
    pub fn with_flaky(mut self, flaky: Flaky, seed: u64) -> Self {
        self.flaky = flaky;
        self.rng = (!flaky.is_none()).then(|| StdRng::seed_from_u64(seed));
        self
    }

    /// Makes every exchange take at least `latency` (the thread sleeps before the chip
    /// answers), as the radio link and reader of a real station do: a real reader answers an
    /// NTAG 424 DNA APDU in roughly 5 to 20 ms.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
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

    /// False after a tear-off until [`SimTransport::reinsert`].
    pub fn present(&self) -> bool {
        self.present
    }

    /// APDU exchanges so far on this transport.
    pub fn exchanges(&self) -> usize {
        self.exchanges
    }
}

impl Transport for SimTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError::NoCard);
        }
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        let index = self.exchanges;
        self.exchanges += 1;
        if let Some(f) = self.fault.filter(|f| f.at == index) {
            if f.kind == FaultKind::AfterApply {
                self.chip.process(command);
            }
            self.chip.power_cycle();
            self.present = false;
            return Err(TransportError::CardRemoved);
        }
        if let Some(rng) = self.rng.as_mut() {
            if rng.gen_range(0..1_000_000) < self.flaky.remove_ppm {
                if rng.gen_bool(0.5) {
                    self.chip.process(command);
                }
                self.chip.power_cycle();
                self.present = false;
                return Err(TransportError::CardRemoved);
            }
            let answer = self.chip.process(command);
            if rng.gen_range(0..1_000_000) < self.flaky.drop_ppm {
                return Err(TransportError::ResponseLost);
            }
            return Ok(answer);
        }
        Ok(self.chip.process(command))
    }

    /// A flaky reader's tag comes back at once ([`SimTransport::with_flaky`]): a lost answer
    /// leaves it in the field, and a tag that left slips back onto the reader. Either way it
    /// is reset (power cycle), as a reader reconnecting to a tag resets it. A tag torn off
    /// by an armed [`Fault`] (the operator pulled it) stays out.
    fn reconnect(&mut self) -> bool {
        if self.rng.is_none() {
            return false;
        }
        self.reinsert();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChipState;

    #[test]
    fn latency_delays_every_exchange() {
        let latency = Duration::from_millis(5);
        let mut t =
            SimTransport::new(SimChip::new(ChipState::random_factory())).with_latency(latency);
        let started = std::time::Instant::now();
        for _ in 0..3 {
            let r = t.transmit(&[0x90, 0x60, 0x00, 0x00, 0x00]).unwrap();
            assert!(r.len() >= 2);
        }
        // A sleep lasts at least its duration: a lower bound, not a timing measurement.
        assert!(started.elapsed() >= latency * 3);
        assert_eq!(t.exchanges(), 3);
    }
}
