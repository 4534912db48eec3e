//! Prometheus metrics (`GET /metrics`): counters, gauges and histograms
//! kept per serving thread and summed when scraped.
//!
//! The exposition is written here by hand rather than with a metrics crate:
//! `prometheus-client` and `prometheus` keep one shared atomic per series
//! and look labelled series up in a map behind a lock, where this gateway
//! keeps every thread's cells its own (see `cells`) and the label sets a
//! thread has seen in a map only that thread touches (see `sparse`). What
//! is left, the text format, is a few lines.

mod cells;
mod dependencies;
mod labels;
pub mod listen;
mod local;
mod render;
mod sparse;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use arouter_core::gateway::Gateway;

pub use cells::{shift, ProviderCells, ThreadCells};
pub use labels::ModelLabel;
pub use local::{Gauge, LocalMetrics, Share, Timings};

/// The labels of a request count.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    /// The endpoint's name (`chat_completions`, `keys`, `not_found`…).
    pub route: &'static str,
    pub dialect: &'static str,
    pub provider: Option<usize>,
    pub model: ModelLabel,
    pub status: u16,
}

/// The labels of token and cost counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub provider: Option<usize>,
    pub model: ModelLabel,
}

#[derive(Default)]
pub struct UsageCells {
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
    /// Micro-dollars.
    pub cost_micros: AtomicU64,
}

/// The process's metrics: every serving thread's cells.
pub struct Metrics {
    labels: Arc<labels::Labels>,
    /// Taken when a thread starts and when a scrape reads the list, never
    /// on the request path.
    threads: Mutex<Vec<Arc<ThreadCells>>>,
}

/// What a scrape reads beside the threads' cells.
#[derive(Clone, Copy, Debug, Default)]
pub struct Process {
    /// Usage rows sent to the store's writer and not yet committed.
    pub store_queue: u64,
    /// The store and Redis, as this gateway last found them.
    pub dependencies: Dependencies,
}

/// The store and Redis, as this gateway last found them.
#[derive(Clone, Copy, Debug)]
pub struct Dependencies {
    /// The last usage commit and (on a shared store) the last keys read
    /// worked.
    pub store_up: bool,
    /// Usage commits that failed (each retried).
    pub store_failed_commits: u64,
    /// Usage rows given up on (the held queue full, or still failing at
    /// shutdown): calls that will not be billed.
    pub usage_dropped: u64,
    /// Requests refused by `--store-failure closed` while the store was
    /// down.
    pub store_policy_refusals: u64,
    /// With `--redis`: whether its last call worked, and how many
    /// admissions its failure policy decided.
    pub redis: Option<(bool, u64)>,
}

impl Default for Dependencies {
    fn default() -> Dependencies {
        Dependencies {
            store_up: true,
            store_failed_commits: 0,
            usage_dropped: 0,
            store_policy_refusals: 0,
            redis: None,
        }
    }
}

impl Metrics {
    pub fn new(gateway: &Gateway) -> Metrics {
        Metrics {
            labels: Arc::new(labels::Labels::new(gateway)),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// The cells of a new serving thread.
    pub fn local(&self) -> LocalMetrics {
        let cells = Arc::new(ThreadCells::new(self.labels.provider_count()));
        if let Ok(mut threads) = self.threads.lock() {
            threads.push(cells.clone());
        }
        LocalMetrics::new(cells, self.labels.clone())
    }

    /// The exposition: every thread's cells, summed.
    pub fn render(&self, process: Process) -> String {
        let threads = match self.threads.lock() {
            Ok(threads) => threads.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        render::render(&threads, &self.labels, process)
    }
}
