//! Message batches on the host: the management side (create, list,
//! cancel…, in [`service`]) and what it shares with the worker that runs
//! the requests (`driver::batch`): the credit each request was given at
//! create time, the batches that ended early (canceled or expired), and a
//! wake-up for the worker when either kind of news comes.
//!
//! Credit: a batch is admitted only if every one of its requests can
//! reserve what it may cost (the key's limit and, when prepaid, the
//! balance), so a key without credit gets its 402 at create time, not
//! request by request later. Those reservations are held here until the
//! worker runs the request (its attempts spend from it; a request put back
//! after a 429 keeps what is left for its next run) or the batch is
//! canceled or expires (they go back). They live in memory and are taken
//! again at start for every request not run yet (`restore_holds`), in
//! batch order, as far as the key's limit and the balance allow; a
//! request that gets none then reserves when it runs, as any call does.

mod service;

use std::collections::HashMap;
use std::sync::Mutex;

use event_listener::{Event, EventListener};

use crate::config::BatchSettings;
use crate::ledger::Held;

pub use service::execute;

/// A request of a batch: its id and index.
pub type ItemKey = (String, u32);

pub struct Batches {
    pub settings: BatchSettings,
    holds: Mutex<HashMap<ItemKey, Held>>,
    /// Batches canceled or expired since the worker last looked: the
    /// requests it holds for them end now, not when their turn comes.
    ended: Mutex<Vec<String>>,
    /// A batch was created or ended: the worker looks at once.
    news: Event,
}

impl Batches {
    pub fn new(settings: BatchSettings) -> Batches {
        Batches {
            settings,
            holds: Mutex::default(),
            ended: Mutex::default(),
            news: Event::new(),
        }
    }

    /// Holds again the credit of requests a stopped process had not run;
    /// returns how many could not get theirs.
    pub fn restore_holds(
        &self,
        keys: &crate::keys::KeyCache,
        ledger: &crate::ledger::Ledger,
        unrun: Vec<crate::store::UnrunItem>,
        now: i64,
    ) -> usize {
        let view = keys.view();
        let mut missed = 0;
        let Ok(mut holds) = self.holds.lock() else {
            return unrun.len();
        };
        for item in unrun {
            let request = arouter_core::exchange::ReserveRequest {
                key_id: item.owner,
                max: arouter_core::billing::MicroUsd(item.max_cost_micros),
            };
            match ledger.reserve(keys, &view, &request, now) {
                Ok(held) => {
                    holds.insert((item.batch_id, item.idx), held);
                }
                Err(_) => missed += 1,
            }
        }
        missed
    }

    /// Keeps the credit of a new batch's requests.
    fn hold(&self, batch_id: &str, held: Vec<Held>) {
        if let Ok(mut holds) = self.holds.lock() {
            for (idx, h) in held.into_iter().enumerate() {
                holds.insert((batch_id.to_string(), idx as u32), h);
            }
        }
    }

    /// The credit request `key` was given at create time, for its run.
    pub fn take_hold(&self, key: &ItemKey) -> Option<Held> {
        self.holds.lock().ok()?.remove(key)
    }

    /// Keeps what is left of a retried request's credit for its next run.
    pub fn put_hold(&self, key: ItemKey, held: Held) {
        if let Ok(mut holds) = self.holds.lock() {
            holds.insert(key, held);
        }
    }

    /// `batch_id` was canceled or expired: gives back what its unrun
    /// requests hold, and tells the worker.
    pub fn release(&self, batch_id: &str) {
        if let Ok(mut holds) = self.holds.lock() {
            holds.retain(|(id, _), _| id != batch_id);
        }
        if let Ok(mut ended) = self.ended.lock() {
            ended.push(batch_id.to_string());
        }
        self.news.notify(usize::MAX);
    }

    /// The batches that ended early since the last call.
    pub fn take_ended(&self) -> Vec<String> {
        self.ended
            .lock()
            .map(|mut ended| std::mem::take(&mut *ended))
            .unwrap_or_default()
    }

    /// A batch was created.
    pub fn created(&self) {
        self.news.notify(usize::MAX);
    }

    /// Resolves at the next creation or early end.
    pub fn listen(&self) -> EventListener {
        self.news.listen()
    }
}
