//! The group-commit writer: one thread owns the store and batches concurrent scans.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{ScanWrite, Store, StoreError};
/// Most writes committed in one transaction.
pub const MAX_GROUP: usize = 4096;

struct Job {
    /// `None` asks the writer to stop after what is queued.
    write: Option<ScanWrite>,
    reply: Option<oneshot::Sender<Result<bool, ()>>>,
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
    pub commits: AtomicU64,
    pub writes: AtomicU64,
}

fn writer_loop<S: Store>(mut store: S, mut rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut writes: Vec<ScanWrite> = Vec::with_capacity(MAX_GROUP);
    let mut stopping = false;
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
        if jobs.iter().any(|j| j.write.is_none()) {
            // Commit what is queued (including what arrives until the channel is closed).
            stopping = true;
            rx.close();
            while let Ok(j) = rx.try_recv() {
                jobs.push(j);
            }
        }
        writes.clear();
        writes.extend(jobs.iter().filter_map(|j| j.write.clone()));
        if writes.is_empty() {
            jobs.clear();
            continue;
        }
        let result = store.commit(&writes);
        if let Err(err) = &result {
            eprintln!("tag424 serve: store commit failed: {err}");
        }
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        let mut i = 0;
        for j in jobs.drain(..) {
            if j.write.is_none() {
                continue;
            }
            if let Some(r) = j.reply {
                let _ = r.send(match &result {
                    Ok(acc) => Ok(acc[i]),
                    Err(_) => Err(()),
                });
            }
            i += 1;
        }
    }
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start<S: Store>(store: S) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>(65536);
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("tag424-store".into())
            .spawn(move || writer_loop(store, rx, st))
            .expect("spawn the store writer thread");
        Writer {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
            stats,
        }
    }

    /// Logs a scan that is not a Pass candidate (durable with the next group).
    pub async fn log(&self, write: ScanWrite) {
        let _ = self
            .tx
            .send(Job {
                write: Some(write),
                reply: None,
            })
            .await;
    }

    /// Commits a Pass candidate; `Ok(true)` once its counter is on disk, `Ok(false)` if the
    /// store refused the counter (not newer than the stored one).
    pub async fn claim(&self, write: ScanWrite) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                write: Some(write),
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Stopped)?;
        match rx.await {
            Ok(Ok(accepted)) => Ok(accepted),
            _ => Err(StoreError::Stopped),
        }
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Commits what is queued, stops the thread and waits for it. Later scans get
    /// [`StoreError::Stopped`]. Blocking: call it outside the async runtime's workers.
    pub fn close(&self) {
        let marker = || Job {
            write: None,
            reply: None,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(marker()) {
            let _ = self.tx.blocking_send(marker());
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            let _ = t.join();
        }
    }
}
