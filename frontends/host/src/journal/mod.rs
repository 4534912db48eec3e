//! The call journal (`--call-journal`): each metered provider call is
//! written to the store before it goes upstream, so a gateway killed with
//! calls in flight leaves them to be billed (see `store::journal` for the
//! rows and what a recovered call is billed).
//!
//! Group commit: serving threads queue their intents here and wait; one
//! writer thread commits everything queued in one store transaction,
//! then wakes the waiters. While it commits, the next intents queue up,
//! so under load a commit carries many calls and the wait is about one
//! commit. Waking works on any executor (an `event_listener` event, woken
//! from the writer thread).
//!
//! An intent is closed by the usage recorder, in the same transaction as
//! the call's usage (`Store::settle`). A commit that fails (the store
//! away) is logged and the calls go ahead unjournaled, as they would with
//! the journal off: the usage recorder still holds their bills through an
//! outage, and only a kill during it loses what it held.

mod writer;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use event_listener::Event;

use crate::store::{Intent, Store};

/// Whether calls are journaled (`--call-journal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalSetting {
    On,
    Off,
}

/// The shared side: the queue, the writer thread, the waiters' event.
pub struct Journal {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
    workers: AtomicU64,
}

/// Intents queued for the next commit, and the ticket of the last one.
#[derive(Default)]
struct Queue {
    intents: Vec<Intent>,
    last: u64,
    closed: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    /// The writer waits on it for a first intent.
    queued: Condvar,
    /// Every ticket up to this one is committed (or given up on).
    done: AtomicU64,
    committed: Event,
}

/// An intent's place in the queue, to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

impl Journal {
    /// Starts the writer thread on `store`.
    pub fn start(store: Arc<dyn Store>) -> Result<Journal, std::io::Error> {
        let inner = Arc::new(Inner {
            queue: Mutex::default(),
            queued: Condvar::new(),
            done: AtomicU64::new(0),
            committed: Event::new(),
        });
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("arouter-journal".into())
                .spawn(move || writer::write_loop(store.as_ref(), &inner))?
        };
        Ok(Journal {
            inner,
            writer: Mutex::new(Some(writer)),
            workers: AtomicU64::new(0),
        })
    }

    /// A serving thread's handle; `instance` tells this process's intent
    /// ids from any other's.
    pub fn local(&self, instance: &str) -> LocalJournal {
        let worker = self.workers.fetch_add(1, Ordering::Relaxed);
        LocalJournal {
            inner: self.inner.clone(),
            id_prefix: format!("{instance}-{worker:x}-"),
            next: Cell::new(0),
        }
    }

    /// Commits what is queued and stops the writer (after every serving
    /// thread stopped).
    pub fn close(&self) {
        if let Ok(mut queue) = self.inner.queue.lock() {
            queue.closed = true;
        }
        self.inner.queued.notify_one();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Logs what a recovery billed (at start, and on a shared store at each
/// poll).
pub fn report_recovered(recovered: crate::store::Recovered) {
    if recovered.calls > 0 {
        log::warn!(
            "billed {} call(s) a stopped gateway left in flight, at their prompts' cost              ({} micro-USD in all; status `interrupted`)",
            recovered.calls,
            recovered.micros
        );
    }
}

/// One serving thread's side: intent ids, and the queue.
pub struct LocalJournal {
    inner: Arc<Inner>,
    /// `{instance}-{worker}-`, then a counter.
    id_prefix: String,
    next: Cell<u64>,
}

impl LocalJournal {
    /// A new intent id, unique across gateways and restarts.
    pub fn next_id(&self) -> String {
        let n = self.next.get();
        self.next.set(n + 1);
        format!("{}{n:x}", self.id_prefix)
    }

    /// Queues `intent` for the next commit.
    pub fn write(&self, intent: Intent) -> Ticket {
        let Ok(mut queue) = self.inner.queue.lock() else {
            // A writer that panicked: nothing will commit; go on unjournaled.
            return Ticket(0);
        };
        if queue.closed {
            return Ticket(0);
        }
        queue.intents.push(intent);
        queue.last += 1;
        let ticket = Ticket(queue.last);
        let first = queue.intents.len() == 1;
        drop(queue);
        if first {
            self.inner.queued.notify_one();
        }
        ticket
    }

    /// Resolves once `ticket`'s intent is committed (or given up on).
    pub async fn durable(&self, ticket: Ticket) {
        let inner = &self.inner;
        loop {
            if inner.done.load(Ordering::Acquire) >= ticket.0 {
                return;
            }
            let listener = inner.committed.listen();
            if inner.done.load(Ordering::Acquire) >= ticket.0 {
                return;
            }
            listener.await;
        }
    }
}
