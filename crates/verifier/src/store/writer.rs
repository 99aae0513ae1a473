//! The group-commit writer: one thread owns the store and batches concurrent scans.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{Retention, ScanWrite, Store, StoreError, TagPatch};

/// Most writes committed in one transaction.
pub const MAX_GROUP: usize = 4096;
/// The retention setting is applied at start, then when an eighth of its row bound has been
/// written since (at least [`MAX_GROUP`] rows, so a small bound does not prune at every
/// commit), or once [`PRUNE_INTERVAL`] has passed since the last prune (the whole setting if
/// rows were written since, the age bound alone if not: rows age while no scan comes), checked
/// at each write and at a tick every quarter interval, so at most 1¼ intervals apart. A prune reads the old part of the log
/// (tens of milliseconds per million rows, on the writer thread), so it must come with the rows
/// written, not with the commits: under load a busy server commits thousands of times a second.
pub const PRUNE_ROWS_FRACTION: u64 = 8;
/// The time between two prunes when no row bound calls for one sooner; with the ticks every
/// quarter of it, two prunes are at most 1¼ of it apart (the age bound's precision).
pub const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// When the next prune is due.
struct PruneDue {
    written: u64,
    last: std::time::Instant,
    /// The longest time between two prunes ([`PRUNE_INTERVAL`]; shorter in tests).
    interval: std::time::Duration,
}

impl PruneDue {
    fn new(interval: std::time::Duration) -> PruneDue {
        PruneDue {
            written: 0,
            last: std::time::Instant::now(),
            interval,
        }
    }

    /// Counts `n` rows written; true when the retention should be applied now.
    fn after(&mut self, n: u64, retention: &Retention) -> bool {
        self.written += n;
        let by_rows = retention
            .max_rows
            .is_some_and(|rows| self.written >= (rows / PRUNE_ROWS_FRACTION).max(MAX_GROUP as u64));
        let by_time = self.written > 0 && self.last.elapsed() >= self.interval;
        if by_rows || by_time {
            *self = PruneDue::new(self.interval);
            return true;
        }
        false
    }

    /// With no row written since the last prune: the age bound alone, once an interval has
    /// passed since that prune (rows age out while no scan comes; the row bound cannot be
    /// passed by a log that did not grow).
    fn idle(&mut self, retention: &Retention) -> Option<Retention> {
        if self.written > 0 || retention.max_age_ms.is_none() || self.last.elapsed() < self.interval
        {
            return None;
        }
        *self = PruneDue::new(self.interval);
        Some(Retention {
            max_rows: None,
            max_age_ms: retention.max_age_ms,
        })
    }
}

enum Job {
    /// A scan; Pass candidates carry a reply.
    Scan(ScanWrite, Option<oneshot::Sender<Result<bool, ()>>>),
    /// A management API change, applied in order with the scans around it.
    Patch(TagPatch, oneshot::Sender<Result<(), StoreError>>),
    /// Time passed (every quarter [`PRUNE_INTERVAL`] while an age bound is set): lets an idle
    /// server apply the retention without waiting for the next write.
    Tick,
    /// Commit what is queued and stop.
    Stop,
}

/// The group-commit writer: one thread owns the store; scans queue on a bounded channel, and
/// every transaction takes everything queued (up to [`MAX_GROUP`]) while the previous one was
/// syncing. Pass candidates wait for their commit; other scans are logged without waiting.
pub struct Writer {
    tx: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<WriterStats>,
}

/// Transactions committed and writes in them (for the benchmark's report).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Scan writes committed.
    pub writes: AtomicU64,
    /// Scan rows deleted by the retention setting.
    pub pruned: AtomicU64,
}

type Reply = Option<oneshot::Sender<Result<bool, ()>>>;

/// The writes of the next transaction and, in the same order, who waits for each.
struct Group {
    writes: Vec<ScanWrite>,
    replies: Vec<Reply>,
}

fn flush<S: Store>(store: &mut S, group: &mut Group, stats: &WriterStats) {
    if group.writes.is_empty() {
        return;
    }
    let result = store.commit(&group.writes);
    if let Err(err) = &result {
        tracing::error!("tag424 serve: store commit failed: {err}");
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .writes
        .fetch_add(group.writes.len() as u64, Ordering::Relaxed);
    group.writes.clear();
    for (i, reply) in group.replies.drain(..).enumerate() {
        if let Some(r) = reply {
            // A store that answered fewer writes than it was given fails the rest (never a
            // panic on the writer thread, which every scan waits on).
            let _ = r.send(match &result {
                Ok(acc) => acc.get(i).copied().ok_or(()),
                Err(_) => Err(()),
            });
        }
    }
}

fn prune<S: Store>(store: &mut S, retention: &Retention, stats: &WriterStats) {
    if retention.max_rows.is_none() && retention.max_age_ms.is_none() {
        return;
    }
    match store.prune(retention, crate::timefmt::now_ms()) {
        Ok(n) => {
            stats.pruned.fetch_add(n, Ordering::Relaxed);
        }
        Err(err) => tracing::error!("tag424 serve: applying the scan log retention failed: {err}"),
    }
}

fn writer_loop<S: Store>(
    mut store: S,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<WriterStats>,
    retention: Retention,
    interval: std::time::Duration,
) {
    prune(&mut store, &retention, &stats);
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut group = Group {
        writes: Vec::with_capacity(MAX_GROUP),
        replies: Vec::with_capacity(MAX_GROUP),
    };
    let mut stopping = false;
    let mut due = PruneDue::new(interval);
    while !stopping {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        jobs.push(first);
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if jobs.iter().any(|j| matches!(j, Job::Stop)) {
            // Commit what is queued (including what arrives until the channel is closed).
            stopping = true;
            rx.close();
            while let Ok(j) = rx.try_recv() {
                jobs.push(j);
            }
        }
        let written = jobs.iter().filter(|j| matches!(j, Job::Scan(..))).count() as u64;
        for j in jobs.drain(..) {
            match j {
                Job::Scan(w, reply) => {
                    group.writes.push(w);
                    group.replies.push(reply);
                }
                Job::Patch(p, reply) => {
                    flush(&mut store, &mut group, &stats);
                    let _ = reply.send(store.update_tag(&p));
                }
                Job::Tick | Job::Stop => {}
            }
        }
        flush(&mut store, &mut group, &stats);
        if due.after(written, &retention) {
            prune(&mut store, &retention, &stats);
        } else if let Some(age) = due.idle(&retention) {
            prune(&mut store, &age, &stats);
        }
    }
}

/// Sends [`Job::Tick`] every `tick` until the writer is gone (a detached thread that holds
/// no sender between ticks, so it never keeps the channel open).
fn tick_every(tick: std::time::Duration, tx: mpsc::WeakSender<Job>) {
    let ticker = move || loop {
        std::thread::sleep(tick);
        let Some(tx) = tx.upgrade() else { break };
        if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Job::Tick) {
            break;
        }
    };
    // Without a ticker the age bound waits for the next write, as before.
    let _ = std::thread::Builder::new()
        .name("tag424-store-tick".into())
        .spawn(ticker);
}

impl Writer {
    /// Starts the writer thread on `store` with the default retention
    /// ([`Retention::DEFAULT`]).
    pub fn start<S: Store>(store: S) -> Writer {
        Writer::start_with(store, Retention::DEFAULT)
    }

    /// Starts the writer thread on `store`, pruning the scan log to `retention`.
    pub fn start_with<S: Store>(store: S, retention: Retention) -> Writer {
        Writer::start_ticking(store, retention, PRUNE_INTERVAL)
    }

    /// [`Writer::start_with`], ticking every `tick` while an age bound is set.
    fn start_ticking<S: Store>(
        store: S,
        retention: Retention,
        interval: std::time::Duration,
    ) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>(65536);
        if retention.max_age_ms.is_some() {
            tick_every(interval / 4, tx.downgrade());
        }
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("tag424-store".into())
            .spawn(move || writer_loop(store, rx, st, retention, interval))
            .expect("spawn the store writer thread");
        Writer {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
            stats,
        }
    }

    /// Logs a scan that is not a Pass candidate (durable with the next group).
    pub async fn log(&self, write: ScanWrite) {
        let _ = self.tx.send(Job::Scan(write, None)).await;
    }

    /// Commits a Pass candidate; `Ok(true)` once its counter is on disk, `Ok(false)` if the
    /// store refused the counter (not newer than the stored one).
    pub async fn claim(&self, write: ScanWrite) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Scan(write, Some(reply)))
            .await
            .map_err(|_| StoreError::Stopped)?;
        match rx.await {
            Ok(Ok(accepted)) => Ok(accepted),
            _ => Err(StoreError::Stopped),
        }
    }

    /// Applies a management API change durably (after the scans queued before it).
    pub async fn update(&self, patch: TagPatch) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Patch(patch, reply))
            .await
            .map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Commits what is queued, stops the thread and waits for it. Later scans get
    /// [`StoreError::Stopped`]. Blocking: call it outside the async runtime's workers.
    pub fn close(&self) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Job::Stop) {
            let _ = self.tx.blocking_send(Job::Stop);
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_comes_with_the_rows_written_not_with_the_commits() {
        let rows = Retention {
            max_rows: Some(1_000_000),
            max_age_ms: None,
        };
        let mut due = PruneDue::new(PRUNE_INTERVAL);
        // 4,000 commits of 31 rows: 124,000 rows, under an eighth of the bound.
        assert!((0..4_000).all(|_| !due.after(31, &rows)));
        assert!(due.after(1_000, &rows), "125,000 rows written");
        assert!(!due.after(1, &rows), "counted again from the prune");
        // A small bound waits for a full group's worth of rows, not one commit.
        let tiny = Retention {
            max_rows: Some(5),
            max_age_ms: None,
        };
        let mut due = PruneDue::new(PRUNE_INTERVAL);
        assert!(!due.after(MAX_GROUP as u64 - 1, &tiny));
        assert!(due.after(1, &tiny));
        assert!(!due.after(0, &tiny));
        // The age bound alone waits for the interval.
        let age = Retention {
            max_rows: None,
            max_age_ms: Some(1),
        };
        let short = std::time::Duration::from_millis(5);
        let mut due = PruneDue::new(short);
        assert!(!due.after(1_000_000, &age));
        std::thread::sleep(short * 2);
        assert!(due.after(0, &age), "an interval after rows were written");
        assert!(!due.after(0, &age));
    }

    #[test]
    fn with_no_write_only_the_age_bound_is_applied_and_only_after_an_interval() {
        let both = Retention::DEFAULT;
        let short = std::time::Duration::from_millis(5);
        let mut due = PruneDue::new(short);
        assert_eq!(
            due.idle(&both),
            None,
            "less than an interval since the last prune"
        );
        std::thread::sleep(short * 2);
        let age = due.idle(&both).expect("an interval has passed");
        assert_eq!(age.max_rows, None, "an idle log did not grow");
        assert_eq!(age.max_age_ms, both.max_age_ms);
        assert_eq!(due.idle(&both), None, "counted again from the prune");
        assert!(!due.after(1, &both));
        std::thread::sleep(short * 2);
        assert_eq!(due.idle(&both), None, "rows written: after() prunes");
        assert!(due.after(0, &both), "the whole setting");
        let mut due = PruneDue::new(short);
        std::thread::sleep(short * 2);
        assert_eq!(due.idle(&Retention::KEEP_ALL), None, "no age bound");
    }

    fn rejected(time_ms: u64) -> ScanWrite {
        ScanWrite {
            time_ms,
            endpoint: "api",
            query: "x=00".into(),
            xuid: String::new(),
            ctr: None,
            result: "tag_not_found".into(),
            reason: "error",
            remote: "127.0.0.1".into(),
            claim: None,
        }
    }

    /// Waits (at most 10 s) for the writer's first prune that deleted a row.
    fn wait_for_a_pruned_row(writer: &Writer) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while writer.stats().pruned.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no row pruned within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_server_that_gets_no_scan_applies_the_age_bound() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        let mut store = super::super::sqlite::SqliteStore::open(&db).unwrap();
        // A row that is young when the writer starts (its prune at start keeps it) and old
        // 300 ms later; no write comes after it.
        store.commit(&[rejected(crate::timefmt::now_ms())]).unwrap();
        let retention = Retention {
            max_rows: None,
            max_age_ms: Some(300),
        };
        let writer = Writer::start_ticking(store, retention, std::time::Duration::from_millis(40));
        wait_for_a_pruned_row(&writer);
        writer.close();
        let mut store = super::super::sqlite::SqliteStore::open(&db).unwrap();
        assert!(store.scans(None).unwrap().is_empty());
    }

    #[test]
    fn rows_written_then_no_more_are_pruned_at_a_tick() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::sqlite::SqliteStore::open(&dir.path().join("v.db")).unwrap();
        let retention = Retention {
            max_rows: None,
            max_age_ms: Some(86_400_000),
        };
        let writer = Writer::start_ticking(store, retention, std::time::Duration::from_millis(20));
        // A rejected request from long ago (as a clock set back, or a log restored): the
        // writer's prune at start has run, and no write follows this one.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(writer.log(rejected(1_000)));
        wait_for_a_pruned_row(&writer);
        writer.close();
        let mut store = super::super::sqlite::SqliteStore::open(&dir.path().join("v.db")).unwrap();
        assert!(store.scans(None).unwrap().is_empty());
    }
}
