//! One worker's usage buffer. A worker is one thread, so the buffer is a
//! `RefCell`: recording a request takes no lock and wakes no thread until
//! a batch is handed over.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use arouter_core::exchange::UsageRecord;

use super::writer::Stats;
use super::{transaction, Msg, BATCH};
use crate::pricing::UnpricedWarnings;
use crate::store::Transaction;

/// A worker's buffer; clones share it (a timer task holds one).
#[derive(Clone)]
pub struct LocalRecorder {
    inner: Rc<Buffer>,
}

/// What [`LocalRecorder::record`] did with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffered {
    /// It started a batch: the caller arms a timer that calls
    /// [`LocalRecorder::flush_timer_fired`] after `FLUSH_EVERY`.
    ArmTimer,
    /// Held with others; a timer is already armed, or the batch was full
    /// and handed over.
    Held,
}

struct Buffer {
    items: RefCell<Vec<Transaction>>,
    /// The call-journal intents the items close.
    closes: RefCell<Vec<String>>,
    sender: Sender<Msg>,
    /// The writer's counts: what is handed over is counted once per batch.
    stats: Arc<Stats>,
    /// The process-wide once-per-model warning about unpriced models (it
    /// takes a lock), asked only the first time this worker sees a model.
    unpriced: Arc<UnpricedWarnings>,
    unpriced_seen: RefCell<HashSet<(String, String)>>,
    /// `{instance}-{worker}-`, then a counter: the record ids.
    id_prefix: String,
    next_id: Cell<u64>,
    timer_armed: Cell<bool>,
}

impl LocalRecorder {
    pub(super) fn new(
        sender: Sender<Msg>,
        stats: Arc<Stats>,
        unpriced: Arc<UnpricedWarnings>,
        id_prefix: String,
    ) -> Self {
        LocalRecorder {
            inner: Rc::new(Buffer {
                items: RefCell::new(Vec::with_capacity(BATCH)),
                closes: RefCell::default(),
                sender,
                stats,
                unpriced,
                unpriced_seen: RefCell::default(),
                id_prefix,
                next_id: Cell::new(0),
                timer_armed: Cell::new(false),
            }),
        }
    }

    /// Buffers one usage record.
    pub fn record(&self, usage: UsageRecord, now_unix_s: i64) -> Buffered {
        self.settle(std::iter::once(usage), Vec::new(), now_unix_s)
    }

    /// Buffers a request's usage records with the call-journal intents
    /// they close, all in the same batch.
    pub fn settle(
        &self,
        usage: impl IntoIterator<Item = UsageRecord>,
        closes: Vec<String>,
        now_unix_s: i64,
    ) -> Buffered {
        let b = &self.inner;
        let full = {
            let (Ok(mut items), Ok(mut closing)) =
                (b.items.try_borrow_mut(), b.closes.try_borrow_mut())
            else {
                // Unreachable (nothing here re-enters); sent alone rather
                // than lost.
                let rows = usage.into_iter().map(|u| b.transaction(u, now_unix_s));
                b.send(rows.collect(), closes);
                return Buffered::Held;
            };
            for u in usage {
                items.push(b.transaction(u, now_unix_s));
            }
            closing.extend(closes);
            items.len() >= BATCH || closing.len() >= BATCH
        };
        if full {
            b.hand_over();
            return Buffered::Held;
        }
        if b.timer_armed.replace(true) {
            Buffered::Held
        } else {
            Buffered::ArmTimer
        }
    }

    /// The timer armed after [`Buffered::ArmTimer`] fired.
    pub fn flush_timer_fired(&self) {
        self.inner.timer_armed.set(false);
        self.inner.hand_over();
    }

    /// Hands over what is buffered now (the worker stops serving).
    pub fn flush(&self) {
        self.inner.hand_over();
    }

    /// Records buffered and not yet handed over.
    pub fn buffered(&self) -> usize {
        self.inner.items.try_borrow().map_or(0, |items| items.len())
    }
}

impl Buffer {
    /// The row to store for `usage`, with the next record id.
    fn transaction(&self, usage: UsageRecord, now_unix_s: i64) -> Transaction {
        if usage.cost.is_none() {
            self.note_unpriced(&usage.provider, &usage.model);
        }
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        transaction(usage, now_unix_s, format!("{}{n:x}", self.id_prefix))
    }

    fn note_unpriced(&self, provider: &str, model: &str) {
        let Ok(mut seen) = self.unpriced_seen.try_borrow_mut() else {
            return;
        };
        if seen.insert((provider.to_string(), model.to_string())) {
            self.unpriced.note(provider, model);
        }
    }

    fn hand_over(&self) {
        let (Ok(mut items), Ok(mut closes)) =
            (self.items.try_borrow_mut(), self.closes.try_borrow_mut())
        else {
            return;
        };
        if items.is_empty() && closes.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut *items, Vec::with_capacity(BATCH));
        let closes = std::mem::take(&mut *closes);
        self.send(batch, closes);
    }

    fn send(&self, batch: Vec<Transaction>, closes: Vec<String>) {
        let n = batch.len();
        self.stats.sent(n);
        if self.sender.send(Msg::Batch(batch, closes)).is_err() {
            log::error!("usage recorder is closed; {n} transaction(s) were not stored");
        }
    }
}

impl Drop for Buffer {
    /// The last clone gone (the worker and its timer task): nothing stays
    /// behind.
    fn drop(&mut self) {
        self.hand_over();
    }
}
