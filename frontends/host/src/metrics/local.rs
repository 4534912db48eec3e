//! One serving thread's handle on its metrics: what the driver calls as a
//! request ends (its access record), as usage is reported, and as
//! connections and requests come and go.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;

use arouter_core::exchange::{AccessLog, UsageRecord};

use super::cells::{bump, shift, ThreadCells, CAUSES};
use super::labels::Labels;
use super::sparse::Sparse;
use super::{RequestKey, UsageCells, UsageKey};
use crate::driver::dialect_name;

/// How long one request took, measured by the driver.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub total_us: u64,
    /// First upstream connect to last upstream release; `None` when no
    /// provider was called.
    pub upstream_us: Option<u64>,
    /// To the first bytes of the answer.
    pub ttft_us: Option<u64>,
}

pub struct LocalMetrics {
    pub cells: Arc<ThreadCells>,
    labels: Arc<Labels>,
    requests: Sparse<RequestKey, AtomicU64>,
    usage: Sparse<UsageKey, UsageCells>,
}

impl LocalMetrics {
    pub(super) fn new(cells: Arc<ThreadCells>, labels: Arc<Labels>) -> LocalMetrics {
        LocalMetrics {
            cells,
            labels,
            requests: Sparse::default(),
            usage: Sparse::default(),
        }
    }

    /// A request's answer was written: its access record.
    pub fn request(&self, log: &AccessLog, timings: Timings) {
        let cells = &self.cells;
        let served = log.model.as_deref().or(log.requested.as_deref());
        let (provider, model) = self.labels.of(served);
        let key = RequestKey {
            route: log.endpoint,
            dialect: log.dialect.map_or("none", dialect_name),
            provider,
            model,
            status: log.status,
        };
        self.requests
            .with(key, &cells.requests, |count| bump(count, 1));
        match log.status {
            429 => bump(&cells.rate_limited, 1),
            402 => bump(&cells.insufficient_credit, 1),
            _ => {}
        }
        bump(&cells.fallbacks, u64::from(log.attempts.fallbacks()));
        for attempt in log.attempts.iter() {
            let at = cells.provider(Some(attempt.provider));
            bump(&at.attempts, 1);
            if let Some(failure) = attempt.failure {
                let cause = failure.cause();
                if let Some(i) = CAUSES.iter().position(|&c| c == cause) {
                    bump(&at.failures[i], 1);
                }
            }
        }
        let by = cells.provider(provider);
        by.latency.observe_us(timings.total_us);
        if let Some(upstream) = timings.upstream_us {
            by.upstream.observe_us(upstream);
            by.added
                .observe_us(timings.total_us.saturating_sub(upstream));
        }
        if let (Some(ttft), true) = (timings.ttft_us, log.attempts.count() > 0) {
            by.ttft.observe_us(ttft);
        }
    }

    /// A provider call's usage: tokens and cost.
    pub fn usage(&self, usage: &UsageRecord) {
        let (provider, model) = self.labels.of_parts(&usage.provider, &usage.model);
        let key = UsageKey { provider, model };
        self.usage.with(key, &self.cells.usage, |cells| {
            if let Some(u) = usage.usage {
                bump(&cells.tokens_in, u.prompt_tokens);
                bump(&cells.tokens_out, u.completion_tokens);
            }
            bump(&cells.cost_micros, usage.cost.map_or(0, |c| c.0));
        });
    }

    /// A client connection opened (+1) or closed (-1).
    pub fn connection(&self, by: i64) {
        shift(&self.cells.connections, by);
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicI64 {
        match gauge {
            Gauge::Requests => &self.cells.in_flight,
            Gauge::Streams => &self.cells.streams,
        }
    }
}

/// The gauges a connection holds a share of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gauge {
    /// Requests being read or answered.
    Requests,
    /// Event streams being relayed to clients.
    Streams,
}

/// One connection's share (zero or one) of a gauge, given back when the
/// connection ends however it ends.
pub struct Share<'a> {
    metrics: &'a LocalMetrics,
    gauge: Gauge,
    counted: bool,
}

impl<'a> Share<'a> {
    pub fn new(metrics: &'a LocalMetrics, gauge: Gauge) -> Share<'a> {
        Share {
            metrics,
            gauge,
            counted: false,
        }
    }

    pub fn start(&mut self) {
        if !self.counted {
            self.counted = true;
            shift(self.metrics.gauge(self.gauge), 1);
        }
    }

    pub fn end(&mut self) {
        if self.counted {
            self.counted = false;
            shift(self.metrics.gauge(self.gauge), -1);
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.end();
    }
}
