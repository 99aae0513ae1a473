//! Tags per minute for 1, 2 and 4 simulated readers at a real reader's latency (15 ms per
//! APDU exchange), one batch, one journal on this disk: how a station scales with readers.
//! Run: `cargo bench --bench station` (prints a table; not a test).

use std::time::{Duration, Instant};

use tag424::provision::batch::{generate_xuids, BatchOptions};
use tag424::provision::station::run_readers;
use tag424::provision::{EncodeOptions, Journal};
use tag424::sim::dir::{SimDir, SimReader, SimReaderOptions};
use tag424::sun::Template;

const LATENCY: Duration = Duration::from_millis(15);
const TAGS: usize = 48;

fn main() {
    println!(
        "station: {TAGS} tags per run, simulated readers at {} ms per APDU exchange, journal fsync'd on this disk",
        LATENCY.as_millis()
    );
    println!("  readers   tags/min   APDUs/tag   ms/tag   vs 1 reader");
    let mut one = None;
    for readers in [1usize, 2, 4] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut journal = Journal::open(&tmp.path().join("out")).expect("journal");
        let xuids = generate_xuids(TAGS);
        let mut sources: Vec<SimReader> = (0..readers)
            .map(|i| {
                let dir = SimDir::open(&tmp.path().join(format!("reader{i}"))).expect("dir");
                SimReader::new(dir, true)
                    .expect("reader")
                    .with_options(SimReaderOptions {
                        latency: LATENCY,
                        ..SimReaderOptions::default()
                    })
            })
            .collect();
        let opts = BatchOptions {
            encode: EncodeOptions {
                lifecycle: Default::default(),
                template: Template::default(),
                trust_simulator: true,
                master: None,
                locks: Default::default(),
            },
            count: Some(TAGS),
            stop: None,
            trace: None,
        };
        let started = Instant::now();
        let s =
            run_readers(&mut sources, &mut journal, &xuids, &opts, &mut |_, _| {}).expect("batch");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(s.encoded, TAGS, "{s:?}");
        let per_min = s.encoded as f64 * 60.0 / secs;
        // Exchanges include the identification of fresh tags a reader found after the last code
        // was taken (5 APDUs each, tag untouched).
        let apdus = s.exchanges as f64 / s.encoded as f64;
        let base = *one.get_or_insert(per_min);
        println!(
            "  {readers:>7}   {per_min:>8.0}   {apdus:>9.1}   {:>6.0}   {:>10.2}x",
            secs * 1000.0 / s.encoded as f64,
            per_min / base
        );
    }
}
