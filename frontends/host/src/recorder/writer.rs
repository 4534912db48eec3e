//! The writer thread: commits the workers' batches, and keeps them through
//! a store outage.
//!
//! A failed commit (the database locked past its busy timeout, a full
//! disk) leaves the rows held here and retries with backoff, from
//! [`FIRST_RETRY`] doubling up to [`MAX_RETRY`]; new batches keep arriving
//! and join the held rows. An outage is logged once when it starts (with
//! the error and the count held) and once when it ends (attempts, length,
//! rows stored). A retry cannot store a row twice: the store ignores a
//! `record_id` it already has.
//!
//! Memory is bounded: at most [`MAX_HELD`] rows are held (some tens of
//! MB). Past that, new rows are dropped, counted, and logged as errors
//! (lost debits) once when dropping starts and with the total when the
//! outage ends. At shutdown the writer keeps trying for
//! [`CLOSE_PATIENCE`], then logs how many rows it could not store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::Msg;
use crate::store::{Store, StoreError, Transaction};

pub const FIRST_RETRY: Duration = Duration::from_millis(100);
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// Rows held while the store cannot commit.
pub const MAX_HELD: usize = 100_000;
/// How long shutdown waits for a failing store.
pub const CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// Counts of what the writer did, for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Rows committed.
    pub stored: u64,
    /// Commits that failed (each retried).
    pub failed_commits: u64,
    /// Rows given up on: over [`MAX_HELD`], or still failing at shutdown.
    pub dropped: u64,
    /// The last commit failed (the store is unreachable or refusing).
    pub failing: bool,
}

#[derive(Default)]
pub(super) struct Stats {
    /// Rows workers handed over (once per batch, not per request).
    sent: AtomicU64,
    stored: AtomicU64,
    failed_commits: AtomicU64,
    dropped: AtomicU64,
    failing: AtomicBool,
}

impl Stats {
    pub(super) fn sent(&self, rows: usize) {
        self.sent.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Rows sent and neither committed nor dropped yet.
    pub(super) fn queued(&self) -> u64 {
        let done = self.stored.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(done)
    }

    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub(super) fn snapshot(&self) -> RecorderStats {
        RecorderStats {
            stored: self.stored.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
        }
    }
}

/// A run of failed commits.
struct Outage {
    since: Instant,
    failures: u64,
    delay: Duration,
    retry_at: Instant,
    dropped: u64,
}

struct Writer<'a> {
    store: &'a dyn Store,
    stats: &'a Stats,
    held: Vec<Transaction>,
    /// The call-journal intents the held rows close.
    closes: Vec<String>,
    outage: Option<Outage>,
}

pub(super) fn write_loop(store: &dyn Store, receiver: &Receiver<Msg>, stats: &Stats) {
    let mut w = Writer {
        store,
        stats,
        held: Vec::new(),
        closes: Vec::new(),
        outage: None,
    };
    loop {
        let first = match w.outage.as_ref().map(|o| o.retry_at) {
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut closing = match first {
            Ok(Msg::Batch(rows, closes)) => {
                w.hold(rows, closes);
                false
            }
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        // Whatever else is queued goes into the same commit.
        loop {
            match receiver.try_recv() {
                Ok(Msg::Batch(rows, closes)) => w.hold(rows, closes),
                Ok(Msg::Close) | Err(TryRecvError::Disconnected) => closing = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if closing {
            w.finish();
            return;
        }
        if w.outage
            .as_ref()
            .is_none_or(|o| Instant::now() >= o.retry_at)
        {
            // A failure is logged, held and retried by `commit` itself.
            let _ = w.commit();
        }
    }
}

impl Writer<'_> {
    fn hold(&mut self, mut rows: Vec<Transaction>, closes: Vec<String>) {
        let room = MAX_HELD.saturating_sub(self.held.len());
        if rows.len() <= room {
            self.closes.extend(closes);
        } else {
            // The intents of dropped rows stay open: the next start bills
            // them (at their prompt) rather than not at all.
            let lost = (rows.len() - room) as u64;
            rows.truncate(room);
            self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
            let already = self.outage.as_ref().is_some_and(|o| o.dropped > 0);
            if let Some(o) = self.outage.as_mut() {
                o.dropped += lost;
            }
            if !already {
                log::error!(
                    "usage store cannot keep up: {MAX_HELD} transactions held; dropping new ones \
                     (their usage will not be billed) until it recovers"
                );
            }
        }
        if self.held.is_empty() {
            self.held = rows;
        } else {
            self.held.append(&mut rows);
        }
    }

    /// One attempt to store what is held.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.held.is_empty() && self.closes.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        match self.store.settle(&self.held, &self.closes) {
            Ok(()) => {
                let n = self.held.len() as u64;
                self.stats.stored.fetch_add(n, Ordering::Relaxed);
                self.stats.failing.store(false, Ordering::Relaxed);
                self.held = Vec::new();
                self.closes = Vec::new();
                if let Some(o) = self.outage.take() {
                    log::warn!(
                        "usage store recovered after {} failed attempt(s) over {:.1} s; stored {n} \
                         held transaction(s){}",
                        o.failures,
                        now.duration_since(o.since).as_secs_f64(),
                        if o.dropped > 0 {
                            format!("; {} were dropped (not billed)", o.dropped)
                        } else {
                            String::new()
                        }
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                match self.outage.as_mut() {
                    Some(o) => {
                        o.failures += 1;
                        o.delay = (o.delay * 2).min(MAX_RETRY);
                        o.retry_at = now + o.delay;
                    }
                    None => {
                        log::error!(
                            "storing usage failed ({e}); holding {} transaction(s) and retrying \
                             until the store accepts them",
                            self.held.len()
                        );
                        self.outage = Some(Outage {
                            since: now,
                            failures: 1,
                            delay: FIRST_RETRY,
                            retry_at: now + FIRST_RETRY,
                            dropped: 0,
                        });
                    }
                }
                Err(e)
            }
        }
    }

    /// Stores what is left, trying for at most [`CLOSE_PATIENCE`].
    fn finish(&mut self) {
        let give_up = Instant::now() + CLOSE_PATIENCE;
        loop {
            let Err(e) = self.commit() else {
                return;
            };
            let retry_at = self.outage.as_ref().map_or(give_up, |o| o.retry_at);
            if retry_at >= give_up {
                let n = self.held.len();
                self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
                log::error!(
                    "shutting down with the usage store still failing ({e}): {n} transaction(s) \
                     were not stored"
                );
                return;
            }
            std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
        }
    }
}
