//! The station view of `tag424 batch`: one line per reader with the current tag's result in
//! words an operator reads from a metre away (DONE, FAILED and why, REMOVE TAG, PRESENT TAG),
//! and a total line with counts, rate and ETA. Readers go by their number
//! (`tag424::transport::reader_number`: the one `tag424 readers` shows and `--reader N` takes). On a terminal (also over SSH) the lines redraw
//! in place; without one (a pipe, a log, `TERM=dumb`) every result is one plain line. `--beep`
//! rings the terminal bell on a failure. `--json` is a different output, not this view.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tag424::provision::batch::BatchEvent;
use tag424::provision::{Outcome, Step};
use tag424::transport::pcsc::label;

use super::say;

fn step_name(s: Step) -> &'static str {
    match s {
        Step::Identify => "identifying",
        Step::Authenticate => "authenticating",
        Step::SwitchToLrp => "switching to LRP",
        Step::RandomId => "switching to random ID",
        Step::FailedAuthLimit => "setting the failed-authentication limit",
        Step::WriteNdef => "writing URL",
        Step::ChangeKeys => "changing keys",
        Step::Lock => "locking",
        Step::Verify => "verifying",
    }
}

/// The view of one batch over `names.len()` readers.
pub struct StationView {
    multi: MultiProgress,
    readers: Vec<ProgressBar>,
    /// Each reader's number, by its place in the batch.
    numbers: Vec<usize>,
    total: ProgressBar,
    plain: bool,
    verbose: bool,
    beep: bool,
    failed: AtomicUsize,
    /// Tags the journal holds unfinished.
    unfinished: AtomicUsize,
}

impl StationView {
    /// `readers`: each reader's number and name, in the batch's order; `total`: tags this run
    /// expects to encode (for the ETA).
    pub fn new(
        readers: Vec<(usize, String)>,
        total: u64,
        verbose: bool,
        beep: bool,
    ) -> StationView {
        let (numbers, names): (Vec<usize>, Vec<String>) = readers.into_iter().unzip();
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let plain = dumb || multi.is_hidden() || !console::Term::stderr().features().is_attended();
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let reader_style = ProgressStyle::with_template("{prefix:.bold} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let readers = names
            .iter()
            .zip(&numbers)
            .map(|(n, number)| {
                // Reader names come from the PC/SC service: escaped like every printed field.
                let n = super::printable(n);
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(reader_style.clone());
                b.set_prefix(if names.len() > 1 {
                    label(*number, &format!("{n:<width$}"))
                } else {
                    format!("{n:<width$}")
                });
                b.set_message("PRESENT TAG");
                b
            })
            .collect();
        let total_bar = multi.add(ProgressBar::new(total));
        total_bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.green/dim} {pos}/{len} tags  {msg}  {rate}  ETA {eta}",
            )
            .map(|s| {
                s.with_key(
                    "rate",
                    |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/min", st.per_sec() * 60.0);
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        if !plain {
            total_bar.enable_steady_tick(Duration::from_millis(200));
        }
        if plain {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        StationView {
            multi,
            readers,
            numbers,
            total: total_bar,
            plain,
            verbose,
            beep,
            failed: AtomicUsize::new(0),
            unfinished: AtomicUsize::new(0),
        }
    }

    fn who(&self, reader: usize) -> String {
        if self.numbers.len() > 1 {
            label(self.numbers[reader], "")
        } else {
            String::new()
        }
    }

    /// A line that stays above the live view (or a plain line).
    fn line(&self, text: String) {
        if self.plain {
            say(&text);
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn counts(&self) {
        let f = self.failed.load(Ordering::Relaxed);
        let t = self.unfinished.load(Ordering::Relaxed);
        let mut m = Vec::new();
        if f > 0 {
            m.push(style(format!("{f} failed")).red().bold().to_string());
        }
        if t > 0 {
            m.push(format!("{t} to present again"));
        }
        self.total.set_message(m.join(", "));
    }

    /// Shows one event of reader `reader`.
    pub fn event(&self, reader: usize, e: BatchEvent<'_>) {
        let bar = &self.readers[reader];
        match e {
            BatchEvent::WaitingForTag => bar.set_message("PRESENT TAG"),
            BatchEvent::TagLeft => bar.set_message(format!(
                "{}",
                style("TAG LEFT — PUT IT BACK to finish it").red().bold()
            )),
            BatchEvent::Step(s) => bar.set_message(format!("… {}", step_name(s))),
            BatchEvent::Done { outcome, elapsed } => match outcome {
                Outcome::Encoded {
                    uid,
                    xuid,
                    exchanges,
                    recovered,
                    ..
                } => {
                    self.total.inc(1);
                    let how = if *recovered {
                        "Finished interrupted"
                    } else {
                        "Verified"
                    };
                    let text = format!("{how} {uid} → {xuid} in {:.2} s", elapsed.as_secs_f64());
                    if self.verbose || self.plain {
                        self.line(format!(
                            "{}{text} ({})",
                            self.who(reader),
                            super::count(*exchanges, "APDU", "APDUs")
                        ));
                    }
                    bar.set_message(format!(
                        "{}  {xuid}  ({uid})",
                        style("✔ DONE").green().bold()
                    ));
                }
                Outcome::AlreadyDone { uid, xuid } => {
                    self.line(format!(
                        "{}Skipped {uid}: already encoded as {xuid}",
                        self.who(reader)
                    ));
                    bar.set_message(format!("{}  {xuid}", style("✔ ALREADY DONE").green()));
                }
            },
            BatchEvent::Failed { error } => {
                let (word, hint) = if error.is_tear_off() {
                    ("✖ PULLED TOO EARLY", " — present it again to finish it")
                } else if error.is_interrupted() {
                    ("✖ ANSWER LOST", " — present it again to finish it")
                } else {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    ("✖ FAILED", "")
                };
                self.counts();
                self.line(format!(
                    "{}Failed: {}{hint}",
                    self.who(reader),
                    super::printable(&error.to_string())
                ));
                if let Some(help) = error.help() {
                    self.line(format!("{}  help: {help}", self.who(reader)));
                }
                let error = super::printable(&error.to_string()).into_owned();
                bar.set_message(format!("{}  {error}", style(word).red().bold()));
                if self.beep {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(b"\x07");
                    let _ = err.flush();
                }
            }
            BatchEvent::Retry { retry, error } => {
                if self.verbose || self.plain {
                    self.line(format!(
                        "{}Retry {retry} of at most {} after: {}",
                        self.who(reader),
                        tag424::provision::station::RETRIES,
                        super::printable(&error.to_string())
                    ));
                }
                bar.set_message(format!("{}", style(format!("↻ RETRY {retry}")).yellow()));
            }
            BatchEvent::Unfinished(n) => {
                self.unfinished.store(n, Ordering::Relaxed);
                self.counts();
            }
            BatchEvent::RemoveTag => {
                let m = bar.message();
                bar.set_message(format!("{m}  — {}", style("REMOVE TAG").yellow().bold()));
            }
        }
    }

    /// Clears the live lines; what was printed with `line` stays.
    pub fn finish(&self) {
        for b in &self.readers {
            b.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}
