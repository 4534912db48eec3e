//! Usage recording off the hot path: connections push usage records onto a
//! shared queue; one writer thread prices nothing, waits nothing on the hot
//! path, and commits the queue to the store in batches. A push wakes the
//! writer only when a batch is full, so a busy gateway pays neither a
//! thread wake-up nor a SQLite commit per request. `Recorder::close`
//! drains everything, so no debit is lost on a clean shutdown.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arouter_core::exchange::UsageRecord;

use crate::pricing::UnpricedWarnings;
use crate::store::{Store, Transaction};

/// A full batch wakes the writer at once.
const BATCH: usize = 256;
/// Otherwise the writer commits what it has this often.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Queue {
    items: Vec<Transaction>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

pub struct Recorder {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    unpriced: UnpricedWarnings,
}

impl Recorder {
    pub fn start(store: Arc<dyn Store>) -> Recorder {
        let shared = Arc::new(Shared::default());
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("arouter-recorder".into())
                .spawn(move || write_loop(store.as_ref(), &shared))
                .ok()
        };
        if writer.is_none() {
            log::error!("could not start the usage recorder thread; usage will not be stored");
        }
        Recorder {
            shared,
            writer: Mutex::new(writer),
            unpriced: UnpricedWarnings::default(),
        }
    }

    /// Queues one usage record at the cost the core priced it at (the
    /// `usage.cost` its answer showed); an unpriced model's is 0.
    pub fn record(&self, usage: UsageRecord, now_unix_s: i64) {
        let tokens = usage.usage.unwrap_or_default();
        let cost = match usage.cost {
            Some(cost) => cost.0,
            None => {
                self.unpriced.note(&usage.provider, &usage.model);
                0
            }
        };
        let tx = Transaction {
            created_at: now_unix_s,
            key_id: usage.key_id,
            provider: usage.provider,
            model: usage.model,
            prompt_tokens: tokens.prompt_tokens,
            completion_tokens: tokens.completion_tokens,
            cost_micros: cost,
            complete: usage.complete,
            estimated: usage.estimated,
            referer: usage.referer,
            title: usage.title,
            request_id: Some(usage.request_id.to_string()),
            upstream_status: usage.upstream_status,
            outcome: usage.outcome,
        };
        let Ok(mut queue) = self.shared.queue.lock() else {
            log::error!("usage queue poisoned; a transaction was not stored");
            return;
        };
        if queue.closed {
            log::error!("usage recorder is closed; a transaction was not stored");
            return;
        }
        queue.items.push(tx);
        if queue.items.len() >= BATCH {
            self.shared.wake.notify_one();
        }
    }

    /// Stops taking records and waits until every queued one is stored.
    pub fn close(&self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
        }
        self.shared.wake.notify_one();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

fn write_loop(store: &dyn Store, shared: &Shared) {
    loop {
        let (batch, closed) = {
            let Ok(mut queue) = shared.queue.lock() else {
                return;
            };
            if queue.items.len() < BATCH && !queue.closed {
                queue = match shared.wake.wait_timeout(queue, FLUSH_EVERY) {
                    Ok((q, _)) => q,
                    Err(_) => return,
                };
            }
            (std::mem::take(&mut queue.items), queue.closed)
        };
        if !batch.is_empty() {
            if let Err(e) = store.record(&batch) {
                log::error!("storing {} transaction(s) failed: {e}", batch.len());
            }
        }
        if closed {
            return;
        }
    }
}
