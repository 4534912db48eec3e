//! The connection driver every frontend shares: the loop around the core's
//! `Exchange` (read buffers, the dispatch of each `Output`, write stalls,
//! pool reuse, linger) and the serving loop of one thread (accept, the
//! connection cap, shutdown), written once over the `Runtime` a frontend
//! provides. A frontend keeps only its sockets, timers and executor.
//!
//! State is per thread (per core with a thread-per-core runtime): each
//! thread has its own `Worker` with its own upstream pool, its view of the
//! key table and its usage buffer, reached through an `Rc`, so the request
//! path takes no lock. What all threads share sits in `Shared` behind an
//! `Arc` and is read-only or atomic, by the rule in [`crate::shard`].

mod access;
mod batch;
mod conn;
mod io;
mod listen;
mod record;
pub mod runtime;
mod serve;
mod side;
pub(crate) mod tally;

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::journal::LocalJournal;
use crate::keys::KeyView;
use crate::metrics::LocalMetrics;
use crate::recorder::LocalRecorder;
use crate::shutdown::Shutdown;
use crate::upstream::tls::TlsClients;
use crate::upstream::Pool;
use crate::Host;
use runtime::Runtime;

pub use access::dialect_name;
pub use listen::listeners;
pub use serve::{serve_thread, thread_count};

/// The settings the driver needs (from `Config`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A write to a client or provider that makes no progress this long
    /// fails (the peer stopped reading).
    pub write_stall: Duration,
    /// After our side closes, how long unread client bytes are drained.
    pub linger: Duration,
}

/// What every serving thread shares.
pub struct Shared {
    pub host: Arc<Host>,
    pub clock: Clock,
    pub shutdown: Arc<Shutdown>,
    tls: Arc<TlsClients>,
    /// Live client connections across all threads (and running batch
    /// requests).
    active: AtomicUsize,
    /// Set by the serving thread that runs the message-batch worker.
    batch_worker: AtomicBool,
    /// Run on each serving thread every [`TIDY_EVERY`] (see
    /// [`Shared::with_thread_tidy`]).
    tidy: Option<ThreadTidy>,
}

/// Per-thread upkeep the binary asks for: its allocator gives back, on
/// the thread that freed it, memory it holds for reuse.
pub type ThreadTidy = fn();

/// How often each serving thread runs the [`ThreadTidy`].
pub const TIDY_EVERY: Duration = Duration::from_secs(1);

impl Shared {
    pub fn new(
        host: Arc<Host>,
        shutdown: Arc<Shutdown>,
    ) -> Result<Shared, crate::upstream::tls::TlsSetupError> {
        let tls = TlsClients::new(&host.config.providers)?;
        Ok(Shared {
            host,
            clock: Clock::new(),
            shutdown,
            tls: Arc::new(tls),
            active: AtomicUsize::new(0),
            batch_worker: AtomicBool::new(false),
            tidy: None,
        })
    }

    /// Has every serving thread run `tidy` every [`TIDY_EVERY`] until
    /// shutdown.
    pub fn with_thread_tidy(mut self, tidy: ThreadTidy) -> Shared {
        self.tidy = Some(tidy);
        self
    }
}

/// One serving thread's state.
pub struct Worker<R: Runtime> {
    pub rt: R,
    pub shared: Arc<Shared>,
    pub pool: Pool<R>,
    /// This thread's view of the key table.
    pub keys: KeyView,
    /// This thread's usage buffer.
    pub recorder: LocalRecorder,
    /// This thread's side of the call journal (`--call-journal`).
    pub journal: Option<LocalJournal>,
    /// This thread's metrics cells.
    pub metrics: LocalMetrics,
    pub settings: Settings,
}

impl<R: Runtime> Worker<R> {
    pub fn new(rt: R, shared: Arc<Shared>) -> Worker<R> {
        let config = &shared.host.config;
        let metrics = shared.host.metrics.local();
        let pool = Pool::new(
            rt.clone(),
            shared.host.gateway.clone(),
            shared.tls.clone(),
            config.pool_limits(),
        )
        .with_metrics(metrics.cells.clone());
        let settings = config.driver_settings();
        Worker {
            keys: shared.host.keys.view(),
            recorder: shared.host.recorder.local(),
            journal: shared.host.local_journal(),
            metrics,
            rt,
            shared,
            pool,
            settings,
        }
    }
}
