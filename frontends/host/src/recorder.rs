//! Usage recording off the hot path: connections hand usage records to a
//! channel; one writer thread prices them and commits them to the store in
//! batches. `Recorder::close` drains everything, so no debit is lost on a
//! clean shutdown.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arouter_core::billing::cost_micro_usd;
use arouter_core::exchange::UsageRecord;
use arouter_core::gateway::Gateway;

use crate::store::{Store, Transaction};

const BATCH: usize = 256;

pub struct Recorder {
    sender: Mutex<Option<Sender<Transaction>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    gateway: Arc<Gateway>,
}

impl Recorder {
    pub fn start(store: Arc<dyn Store>, gateway: Arc<Gateway>) -> Recorder {
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("arouter-recorder".into())
            .spawn(move || write_loop(store.as_ref(), &receiver))
            .ok();
        if writer.is_none() {
            log::error!("could not start the usage recorder thread; usage will not be stored");
        }
        Recorder {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(writer),
            gateway,
        }
    }

    /// Prices and queues one usage record.
    pub fn record(&self, usage: UsageRecord, now_unix_s: i64) {
        let tokens = usage.usage.unwrap_or_default();
        let cost = self
            .gateway
            .price(&usage.provider, &usage.model)
            .map_or(0, |price| cost_micro_usd(&price, &tokens));
        let tx = Transaction {
            created_at: now_unix_s,
            key_id: usage.key_id,
            provider: usage.provider,
            model: usage.model,
            prompt_tokens: tokens.prompt_tokens,
            completion_tokens: tokens.completion_tokens,
            cost_micros: cost,
            complete: usage.complete,
            referer: usage.referer,
            title: usage.title,
        };
        let sent = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.send(tx).is_ok()));
        if sent != Some(true) {
            log::error!("usage recorder is closed; a transaction was not stored");
        }
    }

    /// Stops taking records and waits until every queued one is stored.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

fn write_loop(store: &dyn Store, receiver: &Receiver<Transaction>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(tx) => batch.push(tx),
                Err(_) => break,
            }
        }
        if let Err(e) = store.record(&batch) {
            log::error!("storing {} transaction(s) failed: {e}", batch.len());
        }
        batch.clear();
    }
}
