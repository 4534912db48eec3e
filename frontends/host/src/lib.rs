//! Host glue shared by every ARouter frontend: the command line and config,
//! the model catalog, the store behind a trait, and the key cache that
//! answers the core's admission requests. Nothing here speaks HTTP; that
//! lives in `arouter-core`.

pub mod accounts;
pub mod batches;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod driver;
pub mod failure_policy;
pub mod journal;
pub mod key_rules;
pub mod keys;
pub mod lease;
pub mod ledger;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod pricing;
pub mod recorder;
pub mod responses;
pub mod shard;
pub mod shared_limit;
pub mod shutdown;
pub mod start_error;
pub mod startup;
pub mod store;
pub mod unreachable;
pub mod upstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arouter_core::exchange::Admission;
use arouter_core::gateway::Gateway;

pub use config::Config;
pub use start_error::StartError;

/// Everything a frontend needs, built once at start-up.
pub struct Host {
    pub config: Config,
    pub gateway: Arc<Gateway>,
    pub keys: Arc<keys::KeyCache>,
    /// The account's credit and the reserve/settle logic.
    pub ledger: Arc<ledger::Ledger>,
    pub store: Arc<dyn store::Store>,
    pub recorder: recorder::Recorder,
    /// Writes each metered call down before it goes upstream
    /// (`--call-journal`).
    pub journal: Option<journal::Journal>,
    /// Every serving thread's metrics (`GET /metrics`).
    pub metrics: metrics::Metrics,
    /// Rate-limits the warnings about providers that cannot be reached.
    pub unreachable: unreachable::Unreachable,
    /// Message batches: the credit their requests hold, the worker's wake.
    pub batches: batches::Batches,
    /// On a shared store, reads other gateways' key changes (stopped when
    /// the host is dropped).
    pub key_poll: Option<store::poll::KeyPoll>,
    /// Credit leases on a shared store: the balance and key limits divided
    /// between the gateways.
    pub leases: Option<Arc<lease::Leases>>,
    /// Rate limits shared with other gateways through Redis (`--redis`).
    pub limiter: Option<Arc<shared_limit::RedisLimiter>>,
    /// Exports each request as a span (`--otlp-endpoint`).
    #[cfg(feature = "otlp")]
    pub otlp: Option<otlp::Exporter>,
    /// Tells this process's request ids from another's: the start time
    /// and process id, in hex.
    instance: String,
    connections: AtomicU64,
    /// `--store-failure closed`'s refusals.
    store_gate: failure_policy::StoreGate,
}

impl Host {
    /// Opens (creating on first start) the store and builds the gateway.
    pub fn start(config: Config) -> Result<Host, StartError> {
        let store = config.store.open().map_err(|source| StartError::Open {
            store: config.store.clone(),
            source,
        })?;
        let records = store.load_keys().map_err(start_error::store("load keys"))?;
        for warning in startup::warnings(&config, records.len()) {
            log::warn!("{warning}");
        }
        let leases = lease::Leases::new(store.clone()).map(Arc::new);
        let keys = Arc::new(
            keys::KeyCache::new(config.master_key.as_deref(), records.clone())
                .with_prepaid(config.prepaid)
                .with_leases(leases.is_some())
                .with_default_rate_limit(config.default_rate_limit)
                .with_shared_limits(config.redis_url.is_some()),
        );
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // Bills a past run could not store are stored first: they close
        // their calls' journal intents, so the recovery below does not
        // bill those calls again as interrupted.
        let spooled = recorder::spool::import(store.as_ref(), &config.data_dir)
            .map_err(start_error::store("store the spooled usage"))?;
        recorder::spool::report(spooled);
        // Calls a gone gateway (this one's last run, among others) left in
        // the journal are billed before the spending and balance are read.
        let recovered = store
            .recover_intents()
            .map_err(start_error::store("bill the calls a stopped gateway left"))?;
        journal::report_recovered(recovered);
        accounts::load_spending(store.as_ref(), &keys, &keys.limited(), now_secs)
            .map_err(start_error::store("load key spending"))?;
        let totals = store
            .totals()
            .map_err(start_error::store("load the account's credits"))?;
        let ledger = Arc::new(ledger::Ledger::new(
            config.prepaid,
            leases.is_some(),
            totals,
        ));
        let batch_settings = config.batches;
        // Requests a stopped process had claimed run again (none of them
        // finished, so none was billed).
        let reopened = store
            .reopen_batch_requests()
            .map_err(start_error::store("resume message batches"))?;
        if reopened > 0 {
            log::info!("resuming {reopened} batch request(s) left running by the last process");
        }
        let batches = batches::Batches::new(batch_settings);
        let unrun = store
            .unrun_batch_requests()
            .map_err(start_error::store("resume message batches"))?;
        let missed = batches.restore_holds(&keys, &ledger, unrun, now_secs);
        if missed > 0 {
            log::warn!(
                "{missed} batch request(s) could not get their credit held again; each reserves when it runs"
            );
        }
        let limiter = match &config.redis_url {
            Some(url) => Some(Arc::new(
                shared_limit::start(url, config.redis_failure).map_err(StartError::Redis)?,
            )),
            None => None,
        };
        let gateway = Arc::new(config.gateway()?);
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let instance = format!("{started_ms:x}{:x}", std::process::id());
        let recorder = recorder::Recorder::start(store.clone(), &instance, &config.data_dir);
        let journal = match config.call_journal {
            true => Some(
                journal::Journal::start(store.clone())
                    .map_err(start_error::thread("the call journal thread"))?,
            ),
            false => None,
        };
        let key_poll = match config.store {
            store::location::StoreLocation::Postgres(_) => Some(store::poll::KeyPoll::start(
                store.clone(),
                keys.clone(),
                ledger.clone(),
                leases.clone(),
                config.store_poll,
                records,
            )?),
            store::location::StoreLocation::Sqlite(_) => None,
        };
        let metrics = metrics::Metrics::new(&gateway);
        #[cfg(feature = "otlp")]
        let otlp = match config.otlp_endpoint.clone() {
            Some(endpoint) => Some(
                otlp::Exporter::start(endpoint)
                    .map_err(start_error::thread("the OTLP exporter"))?,
            ),
            None => None,
        };
        Ok(Host {
            config,
            gateway,
            keys,
            ledger,
            store,
            recorder,
            journal,
            metrics,
            unreachable: unreachable::Unreachable::default(),
            batches,
            leases,
            limiter,
            #[cfg(feature = "otlp")]
            otlp,
            key_poll,
            instance,
            connections: AtomicU64::new(0),
            store_gate: failure_policy::StoreGate::default(),
        })
    }

    /// The request-id prefix for a new connection: `req-{instance}-{n}-`,
    /// unique per connection of this process, and across restarts.
    pub fn request_id_prefix(&self) -> String {
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        format!("req-{}-{n:x}-", self.instance)
    }

    /// A serving thread's side of the call journal, when calls are
    /// journaled.
    pub fn local_journal(&self) -> Option<journal::LocalJournal> {
        self.journal.as_ref().map(|j| j.local(&self.instance))
    }

    /// The store failed its last keys read (on a shared store), or its
    /// last usage commit and has not answered a keys read since: what this
    /// gateway holds may be stale. (The recorder tries again only after a
    /// backoff of up to 5 s; the key poll's next read says sooner that the
    /// store is back.)
    pub fn store_down(&self) -> bool {
        store::health::Seen {
            poll: self.key_poll.as_ref().map(|p| store::health::PollSeen {
                failing: p.failing(),
                answered_at: p.answered_at(),
            }),
            recorder_failing: self.recorder.failing(),
            recorder_failed_at: self.recorder.failed_at(),
        }
        .down()
    }

    /// Under `--store-failure closed`, turns a client's admission into a
    /// 503 while the store is down.
    pub fn store_policy(&self, admission: Admission) -> Admission {
        match self.config.store_failure {
            failure_policy::FailurePolicy::Open => admission,
            failure_policy::FailurePolicy::Closed => {
                self.store_gate.admit(admission, || self.store_down())
            }
        }
    }

    /// The Prometheus exposition of this process's metrics.
    pub fn metrics_text(&self) -> String {
        let recorder = self.recorder.stats();
        self.metrics.render(metrics::Process {
            store_queue: self.recorder.queued(),
            dependencies: metrics::Dependencies {
                store_up: !self.store_down(),
                store_failed_commits: recorder.failed_commits,
                usage_dropped: recorder.dropped,
                store_policy_refusals: self.store_gate.refusals(),
                redis: self
                    .limiter
                    .as_ref()
                    .map(|l| (l.up(), l.decided_by_policy())),
            },
        })
    }

    /// Flushes what must not be lost (queued usage) before exit; call it
    /// after every serving thread has stopped.
    pub fn shutdown(&self) {
        // Nothing is queued once every serving thread stopped; the
        // recorder then closes every intent with its call's usage.
        if let Some(journal) = &self.journal {
            journal.close();
        }
        self.recorder.close();
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.flush(std::time::Duration::from_secs(5));
        }
    }
}
