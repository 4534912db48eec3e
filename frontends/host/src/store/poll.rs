//! Keys changed by another gateway on a shared store: on PostgreSQL, one
//! thread reads the keys table every `--store-poll-ms` and, when it
//! differs from what this gateway last read, publishes it to every
//! serving thread (as a change made through this gateway's own keys API
//! does at once). The store also tells of each key change as it commits
//! ([`super::listen`], LISTEN/NOTIFY), and the thread then reads the keys
//! table at once: a key created, disabled or deleted through one gateway
//! is taken, or refused, by the others within milliseconds, and within
//! one interval while the listening connection is down.
//!
//! It also bills the call-journal intents of gateways that are gone
//! (`Store::recover_intents`), so a gateway killed and not restarted has
//! its calls in flight billed within one interval by another.
//!
//! It also sizes this gateway's credit leases ([`crate::lease`]) to what
//! its calls asked for in the interval.
//!
//! The same thread brings in what the other gateways billed
//! ([`crate::accounts::merge_shared`]): each limited key's spending (one
//! query for all of them) and the account's credits and usage, so a key's limit and
//! a prepaid balance count every gateway's calls within one interval plus
//! the recorder's delay, not only this gateway's own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::listen::Listener;
use super::{KeyRecord, Store};
use crate::keys::KeyCache;
use crate::lease::Leases;
use crate::ledger::Ledger;

/// What wakes the polling thread before its interval ends.
enum Wake {
    Stop,
    /// The store says the keys table changed: read it now.
    KeysChanged,
}

/// The polling thread; dropping it stops the thread.
pub struct KeyPoll {
    /// The last read of the keys table failed.
    failing: Arc<AtomicBool>,
    /// When the keys table was last read (`store::health::stamp`).
    answered_at: Arc<AtomicU64>,
    /// Hears the store's key changes, where it tells of them.
    listener: Option<Listener>,
    wake: Sender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl KeyPoll {
    /// Starts polling `store` every `every`, and at once when the store
    /// tells of a key change; `seen` is what the cache was built from.
    pub fn start(
        store: Arc<dyn Store>,
        keys: Arc<KeyCache>,
        ledger: Arc<Ledger>,
        leases: Option<Arc<Leases>>,
        every: Duration,
        seen: Vec<KeyRecord>,
    ) -> Result<KeyPoll, crate::StartError> {
        let (wake, woken) = mpsc::channel::<Wake>();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        let answered_at = Arc::new(AtomicU64::new(0));
        let answered = answered_at.clone();
        let listener = match store.key_changes() {
            Some(changes) => {
                let wake = wake.clone();
                let changed = Box::new(move || {
                    let _ = wake.send(Wake::KeysChanged);
                });
                let listening = changes
                    .listen(changed)
                    .map_err(crate::start_error::store("listen for key changes"))?;
                Some(listening)
            }
            None => None,
        };
        let thread = std::thread::Builder::new()
            .name("arouter-key-poll".into())
            .spawn(move || {
                let poll = Poller {
                    store,
                    keys,
                    ledger,
                    leases,
                    seen,
                    failing: flag,
                    answered_at: answered,
                };
                poll.run(&woken, every);
            })
            .map_err(crate::start_error::thread("the key poll thread"))?;
        Ok(KeyPoll {
            failing,
            answered_at,
            listener,
            wake,
            thread: Some(thread),
        })
    }
}

impl KeyPoll {
    /// Whether the last read of the keys table failed (for metrics).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// When (`store::health::stamp`) the keys table was last read.
    pub fn answered_at(&self) -> u64 {
        self.answered_at.load(Ordering::Relaxed)
    }
}

impl Drop for KeyPoll {
    fn drop(&mut self) {
        drop(self.listener.take());
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Poller {
    store: Arc<dyn Store>,
    keys: Arc<KeyCache>,
    ledger: Arc<Ledger>,
    leases: Option<Arc<Leases>>,
    seen: Vec<KeyRecord>,
    /// The last read failed (logged once until one succeeds again).
    failing: Arc<AtomicBool>,
    answered_at: Arc<AtomicU64>,
}

impl Poller {
    /// Polls every `every` until told to stop; reads the keys table alone
    /// whenever told it changed (without moving the next poll).
    fn run(mut self, woken: &Receiver<Wake>, every: Duration) {
        let mut next = Instant::now() + every;
        loop {
            match woken.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {
                    self.once();
                    next = Instant::now() + every;
                }
                Ok(Wake::KeysChanged) => {
                    // Changes told of meanwhile are in the one read.
                    loop {
                        match woken.try_recv() {
                            Ok(Wake::KeysChanged) => {}
                            Ok(Wake::Stop) => return,
                            Err(_) => break,
                        }
                    }
                    self.read_keys();
                }
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn once(&mut self) {
        if !self.read_keys() {
            return;
        }
        // Calls a gateway that is gone left in the journal; billed before
        // the totals are read, so they count at once.
        match self.store.recover_intents() {
            Ok(recovered) => crate::journal::report_recovered(recovered),
            Err(e) => log::warn!("cannot bill the calls a stopped gateway left: {e}"),
        }
        if let Err(e) =
            crate::accounts::merge_shared(&self.keys, &self.ledger, self.store.as_ref(), unix_now())
        {
            log::warn!("cannot read what other gateways billed: {e}");
        }
        if let Some(leases) = &self.leases {
            if let Err(e) = leases.tick(&self.ledger, &self.keys, unix_now()) {
                log::warn!("cannot size this gateway's credit leases: {e}");
            }
        }
    }

    /// Reads the keys table and publishes it if it changed; `false` when
    /// it cannot be read (logged once until it can again).
    fn read_keys(&mut self) -> bool {
        // The first call after the database restarted fails on the old
        // connection and drops it; the second opens a new one. Without it
        // the change that woke this read (the listener's own reconnection
        // among them) would wait for the next interval.
        let records = match self.store.load_keys().or_else(|_| self.store.load_keys()) {
            Ok(records) => records,
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    log::warn!("cannot read the keys other gateways changed: {e}");
                }
                return false;
            }
        };
        self.answered_at
            .store(super::health::stamp(), Ordering::Relaxed);
        if self.failing.swap(false, Ordering::Relaxed) {
            log::info!("the shared store answers again; keys are read from it");
        }
        if records != self.seen {
            self.republish(records);
        }
        true
    }

    fn republish(&mut self, records: Vec<KeyRecord>) {
        let reloaded = self.keys.reload(records.clone());
        if let Some(leases) = &self.leases {
            leases.forget(&reloaded.relimited);
        }
        let now = unix_now();
        let stale = &reloaded.stale;
        if let Err(e) = crate::accounts::load_spending(self.store.as_ref(), &self.keys, stale, now)
        {
            log::warn!("cannot load the spending of changed keys: {e}");
        }
        self.seen = records;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
