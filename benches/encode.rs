//! Host time and APDU exchanges per tag, encoding on the in-process simulator.
//! Run: `cargo bench --bench encode` (prints a table; not a test).

use std::time::Instant;

use tag424::card::Card;
use tag424::provision::batch::generate_xuids;
use tag424::provision::{encode_tag, EncodeOptions, Journal};
use tag424::sim::{ChipState, SimChip, SimTransport};
use tag424::sun::Template;

fn main() {
    let n = 200;
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut journal = Journal::open(tmp.path()).expect("journal");
    let xuids = generate_xuids(n);
    let opts = EncodeOptions {
        template: Template::default(),
        trust_simulator: true,
        master: None,
    };
    let mut next = |j: &Journal| xuids.iter().find(|x| !j.xuid_used(x)).cloned();
    let mut exchanges = 0;
    let started = Instant::now();
    for _ in 0..n {
        let mut card = Card::new(SimTransport::new(SimChip::new(ChipState::random_factory())));
        encode_tag(&mut card, &mut journal, &opts, &mut next, &mut |_| {}).expect("encodes");
        exchanges += card.exchanges();
    }
    let total = started.elapsed();
    println!("encode on the simulator, {n} tags (journal fsync'd on this disk):");
    println!(
        "  host time per tag   {:>8.3} ms",
        total.as_secs_f64() * 1000.0 / n as f64
    );
    println!("  APDUs per tag       {:>8.1}", exchanges as f64 / n as f64);
}
