//! Usage recording off the hot path. Each serving thread (worker) buffers
//! its usage records (priced by the core) in a [`LocalRecorder`] of its own, with no
//! lock, and hands them to one writer thread over a channel: a full batch
//! at once, and otherwise what it has [`FLUSH_EVERY`] after the first
//! record of a batch (the driver arms that timer on the worker's runtime).
//! The writer commits what it receives to the store, many workers' batches
//! in one transaction when they queue up. The channel is touched once per
//! batch, never per request (a send may briefly take the channel's own
//! waker lock when it wakes the parked writer).
//!
//! Nothing is lost on a clean shutdown: a worker hands over what it holds
//! when it stops serving (and when it is dropped), every worker stops
//! before [`Recorder::close`], and the writer commits everything sent
//! before the close. A store that cannot commit (locked, disk full) keeps
//! its rows in the writer, retried with backoff; what the writer must give
//! up on (the store still failing at shutdown, a backlog past its bound)
//! is written to a spool file in the data directory and stored at the next
//! start; see `writer` and `spool`.
//!
//! A request with call-journal intents (`crate::journal`) hands over its
//! usage records and the ids of its intents at once, at its end: they go
//! in one batch, so the commit that stores the records closes the
//! intents.
//!
//! Every transaction carries a `record_id` unique across restarts (this
//! process's instance, the worker, a counter), and the store ignores a
//! row whose id it already has, so a retried batch never charges twice.

mod local;
pub mod spool;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arouter_core::exchange::UsageRecord;

use crate::pricing::UnpricedWarnings;
use crate::store::{Store, Transaction};

pub use local::{Buffered, LocalRecorder};
pub use writer::{RecorderStats, MAX_HELD};

/// A worker hands over its buffer as soon as it holds this many records.
pub const BATCH: usize = 256;
/// Otherwise it hands over what it has this long after the first record.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// What a worker sends the writer.
enum Msg {
    /// Transactions, and the call-journal intents they close (see
    /// `Store::settle`).
    Batch(Vec<Transaction>, Vec<String>),
    /// Every worker has stopped: commit what is left and end.
    Close,
}

/// The shared side: the writer thread and what workers need to reach it.
pub struct Recorder {
    sender: Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    unpriced: Arc<UnpricedWarnings>,
    stats: Arc<writer::Stats>,
    /// This process, in record ids (see `Host::request_id_prefix`).
    instance: String,
    workers: AtomicU64,
}

impl Recorder {
    /// Starts the writer thread. `instance` tells this process's record ids
    /// (and spool file, in `data_dir`) from those of any other run.
    pub fn start(store: Arc<dyn Store>, instance: &str, data_dir: &Path) -> Recorder {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(writer::Stats::default());
        let spool = spool::Spool::new(data_dir, instance);
        let writer = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("arouter-recorder".into())
                .spawn(move || writer::write_loop(store.as_ref(), &receiver, &stats, &spool))
                .ok()
        };
        if writer.is_none() {
            log::error!("could not start the usage recorder thread; usage will not be stored");
        }
        Recorder {
            sender,
            writer: Mutex::new(writer),
            unpriced: Arc::default(),
            stats,
            instance: instance.to_string(),
            workers: AtomicU64::new(0),
        }
    }

    /// A buffer for one worker thread.
    pub fn local(&self) -> LocalRecorder {
        let worker = self.workers.fetch_add(1, Ordering::Relaxed);
        LocalRecorder::new(
            self.sender.clone(),
            self.stats.clone(),
            self.unpriced.clone(),
            format!("{}-{worker:x}-", self.instance),
        )
    }

    /// Counts of what the writer did so far.
    pub fn stats(&self) -> RecorderStats {
        self.stats.snapshot()
    }

    /// The last commit failed: the store is unreachable or refusing.
    pub fn failing(&self) -> bool {
        self.stats.failing()
    }

    /// When (`store::health::stamp`) a commit last failed; 0: never.
    pub fn failed_at(&self) -> u64 {
        self.stats.failed_at()
    }

    /// Records handed to the writer and not yet committed (nor spooled,
    /// nor dropped).
    pub fn queued(&self) -> u64 {
        self.stats.queued()
    }

    /// Commits everything sent so far and stops the writer. Call it after
    /// every worker has stopped (their buffers are handed over then).
    pub fn close(&self) {
        let _ = self.sender.send(Msg::Close);
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// The transaction to store for one usage record, at the cost the core
/// priced it at (the `usage.cost` its answer showed); `None` when the model
/// has no price (billed at 0; the caller warns).
pub(crate) fn transaction(usage: UsageRecord, now_unix_s: i64, record_id: String) -> Transaction {
    let tokens = usage.usage.unwrap_or_default();
    Transaction {
        created_at: now_unix_s,
        key_id: usage.key_id,
        provider: usage.provider,
        model: usage.model,
        prompt_tokens: tokens.prompt_tokens,
        completion_tokens: tokens.completion_tokens,
        cost_micros: usage.cost.map_or(0, |cost| cost.0),
        complete: usage.complete,
        estimated: usage.estimated,
        referer: usage.referer,
        title: usage.title,
        // An answer without an id of its own (embeddings, a failed
        // attempt) is found by its request id.
        generation_id: Some(
            usage
                .generation_id
                .unwrap_or_else(|| format!("gen-{}", usage.request_id)),
        ),
        request_id: Some(usage.request_id.to_string()),
        record_id: Some(record_id),
        upstream_status: usage.upstream_status,
        outcome: usage.outcome,
        cached_tokens: tokens.cached_tokens,
        reasoning_tokens: tokens.reasoning_tokens,
        stream: usage.stream,
        latency_ms: Some(usage.latency_ms),
        batch: None,
    }
}
