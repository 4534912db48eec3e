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
//! MB). A batch past that goes to the spool file (`spool`: written and
//! fsynced, stored at the next start), logged once when spooling starts
//! and with the total when the outage ends. At shutdown the writer keeps
//! trying for [`CLOSE_PATIENCE`], then spools what it still holds. Only
//! rows the spool cannot take either (a full disk) are lost: counted as
//! dropped and logged as errors.
//!
//! A commit gives the CPU away between its statements while the writer is
//! keeping up ([`Pacer`]). The writer shares CPUs with the serving
//! threads, and a glommio executor is pinned to its CPU: a serving thread
//! woken during a commit of a few hundred rows waited the whole commit
//! (0.9-1.3 ms, `perf sched timehist`), and those waits were the gateway's
//! 99th percentile at one connection. Scheduler settings for the writer
//! did not remove them: `SCHED_BATCH` with a 20 ms slice changed nothing
//! measurable, and nice 10 only shortened them (and would starve the
//! writer under load). When rows queue up behind the commit, it does not
//! pause, so under full load it never falls behind for pausing: pausing
//! after every statement regardless, a trial let the held rows grow by
//! about 17 MB a second under glommio at 64 connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::spool::{Spool, SpoolError};
use super::Msg;
use crate::store::{Store, StoreError, Transaction};

pub const FIRST_RETRY: Duration = Duration::from_millis(100);
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// Rows held while the store cannot commit.
pub const MAX_HELD: usize = 100_000;
/// How long shutdown waits for a failing store.
pub const CLOSE_PATIENCE: Duration = Duration::from_secs(10);
/// How long a commit runs between two yields while the writer keeps up:
/// about what a serving thread that shares its CPU may wait for it (plus
/// one statement, about 60 µs). Yielding after every statement did no
/// better at one connection (p99 0.47-0.64 against 0.52-0.54 ms).
pub const PACE_EVERY: Duration = Duration::from_micros(100);

/// Counts of what the writer did, for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Rows committed.
    pub stored: u64,
    /// Commits that failed (each retried).
    pub failed_commits: u64,
    /// Rows written to the spool file, to be stored at the next start:
    /// over [`MAX_HELD`], or still failing at shutdown.
    pub spooled: u64,
    /// Rows lost: to be spooled, but the spool could not be written.
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
    spooled: AtomicU64,
    dropped: AtomicU64,
    failing: AtomicBool,
    /// When (`store::health::stamp`) a commit last failed.
    failed_at: AtomicU64,
}

impl Stats {
    pub(super) fn sent(&self, rows: usize) {
        self.sent.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Rows sent and not yet committed, spooled nor dropped.
    pub(super) fn queued(&self) -> u64 {
        let done = self.stored.load(Ordering::Relaxed)
            + self.spooled.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(done)
    }

    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub(super) fn failed_at(&self) -> u64 {
        self.failed_at.load(Ordering::Relaxed)
    }

    pub(super) fn snapshot(&self) -> RecorderStats {
        RecorderStats {
            stored: self.stored.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
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
    spooled: u64,
    dropped: u64,
}

struct Writer<'a> {
    store: &'a dyn Store,
    stats: &'a Stats,
    spool: &'a Spool,
    held: Vec<Transaction>,
    /// The call-journal intents the held rows close.
    closes: Vec<String>,
    outage: Option<Outage>,
}

pub(super) fn write_loop(
    store: &dyn Store,
    receiver: &Receiver<Msg>,
    stats: &Stats,
    spool: &Spool,
) {
    let mut w = Writer {
        store,
        stats,
        spool,
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
        if rows.len() > MAX_HELD.saturating_sub(self.held.len()) {
            // The whole batch goes, with the intents it closes: what is
            // held and what is spooled each close their own calls.
            let first = self
                .outage
                .as_ref()
                .is_none_or(|o| o.spooled + o.dropped == 0);
            match self.spool(&rows, &closes) {
                Ok(()) if first => log::error!(
                    "usage store cannot keep up: {MAX_HELD} transactions held; writing new ones \
                     to {} (stored at the next start) until it recovers",
                    self.spool.path().display()
                ),
                Ok(()) => {}
                Err(e) => log::error!(
                    "usage store cannot keep up ({MAX_HELD} transactions held) and {e}: {} \
                     transaction(s) dropped (their usage will not be billed)",
                    rows.len()
                ),
            }
            return;
        }
        self.closes.extend(closes);
        if self.held.is_empty() {
            self.held = rows;
        } else {
            self.held.append(&mut rows);
        }
    }

    /// Writes rows the writer gives up holding to the spool; only when
    /// that fails are they lost (counted as dropped).
    fn spool(&mut self, rows: &[Transaction], closes: &[String]) -> Result<(), SpoolError> {
        let n = rows.len() as u64;
        let result = self.spool.append(rows, closes);
        let (total, this_outage) = match &result {
            Ok(()) => (
                &self.stats.spooled,
                self.outage.as_mut().map(|o| &mut o.spooled),
            ),
            Err(_) => (
                &self.stats.dropped,
                self.outage.as_mut().map(|o| &mut o.dropped),
            ),
        };
        total.fetch_add(n, Ordering::Relaxed);
        if let Some(count) = this_outage {
            *count += n;
        }
        result
    }

    /// One attempt to store what is held.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.held.is_empty() && self.closes.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let pacer = Pacer {
            stats: self.stats,
            held: self.held.len() as u64,
            last: std::cell::Cell::new(now),
        };
        let pause = || pacer.pause();
        match self.store.settle_paced(&self.held, &self.closes, &pause) {
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
                        given_up(&o, self.spool)
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                self.stats
                    .failed_at
                    .store(crate::store::health::stamp(), Ordering::Relaxed);
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
                            spooled: 0,
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
                let held = std::mem::take(&mut self.held);
                let closes = std::mem::take(&mut self.closes);
                let n = held.len();
                match self.spool(&held, &closes) {
                    Ok(()) => log::warn!(
                        "shutting down with the usage store still failing ({e}): {n} \
                         transaction(s) written to {}; they are stored at the next start",
                        self.spool.path().display()
                    ),
                    Err(spool) => log::error!(
                        "shutting down with the usage store still failing ({e}), and {spool}: \
                         {n} transaction(s) were not stored"
                    ),
                }
                return;
            }
            std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
        }
    }
}

/// Gives the CPU away during a commit (see the module's comment).
struct Pacer<'a> {
    stats: &'a Stats,
    /// Rows in the commit.
    held: u64,
    /// When the commit began, or the last yield.
    last: std::cell::Cell<Instant>,
}

impl Pacer<'_> {
    /// Between two statements: yields once [`PACE_EVERY`] has passed
    /// since the last yield, unless rows were handed over since the commit
    /// began. A yield with nobody waiting for the CPU returns at once.
    fn pause(&self) {
        if self.due(Instant::now()) {
            std::thread::yield_now();
            self.last.set(Instant::now());
        }
    }

    fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last.get()) >= PACE_EVERY && self.stats.queued() <= self.held
    }
}

/// The end of an outage's log line: what it did not hold.
fn given_up(o: &Outage, spool: &Spool) -> String {
    let mut out = String::new();
    if o.spooled > 0 {
        out += &format!(
            "; {} were written to {} (stored at the next start)",
            o.spooled,
            spool.path().display()
        );
    }
    if o.dropped > 0 {
        out += &format!("; {} were dropped (not billed)", o.dropped);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_yields_every_pace_while_nothing_queues_behind_it() {
        let stats = Stats::default();
        stats.sent(300);
        let began = Instant::now();
        let pacer = Pacer {
            stats: &stats,
            held: 300,
            last: std::cell::Cell::new(began),
        };
        assert!(!pacer.due(began + PACE_EVERY / 2));
        assert!(pacer.due(began + PACE_EVERY));
        // A worker handed over a batch during the commit: no yield, however
        // long the commit has run.
        stats.sent(256);
        assert!(!pacer.due(began + PACE_EVERY * 100));
    }
}
