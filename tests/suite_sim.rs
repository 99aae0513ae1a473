//! The shared integration suite on the in-process simulator.

mod common;

use tag424::card::Card;
use tag424::sim::{ChipState, SimChip, SimTransport};

#[test]
fn personalise_and_check_on_the_simulator() {
    let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
    common::personalise_and_check(&mut card);
}
