//! Where the library's messages go: the library reports through `tracing` (it never prints);
//! the binary writes each event of the workspace's own targets (`tag424_verifier::…`, …) to stderr as one
//! line holding just the message, in the same words the operator always saw (no level, time
//! or target added). Events of the dependencies (sqlx, hyper, …) are not shown.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Installs the stderr writer as the process's global subscriber (once; later calls do nothing).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Stderr {
        next: AtomicU64::new(1),
    });
}

struct Stderr {
    next: AtomicU64,
}

/// The workspace's own crates: `tag424` and every `tag424_…` layer (their module paths).
fn ours(meta: &Metadata<'_>) -> bool {
    let krate = meta.target().split("::").next().unwrap_or_default();
    krate == "tag424" || krate.starts_with("tag424_")
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Stderr {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        ours(meta)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut m = Message::default();
        event.record(&mut m);
        eprintln!("{}", m.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_librarys_targets_are_shown() {
        let s = Stderr {
            next: AtomicU64::new(1),
        };
        tracing::subscriber::with_default(s, || {
            assert!(tracing::enabled!(target: "tag424_verifier::store", tracing::Level::WARN));
            assert!(tracing::enabled!(target: "tag424::cli", tracing::Level::WARN));
            assert!(!tracing::enabled!(target: "tag424x", tracing::Level::WARN));
            assert!(!tracing::enabled!(target: "sqlx::query", tracing::Level::WARN));
        });
    }
}
