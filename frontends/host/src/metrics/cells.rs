//! The counters, gauges and histograms of one serving thread, as atomics
//! only that thread writes: an update is a relaxed load and store (no
//! read-modify-write, no lock, no cache line shared with another writer);
//! a scrape reads every thread's cells and sums them. A scrape may see one
//! thread's request half-counted (its counter moved, its histogram not
//! yet): each value is exact on its own, and the next scrape catches up.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::sparse::Published;
use super::{RequestKey, UsageCells, UsageKey};

/// Histogram bucket bounds in microseconds, from 100 µs (the gateway's
/// own added latency) to two minutes (a long streamed answer).
pub const BOUNDS_US: [u64; 19] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];

/// The upstream failure causes (`AttemptFailure::cause`), in label order.
pub const CAUSES: [&str; 10] = [
    "connect_timeout",
    "connect_refused",
    "dns",
    "tls",
    "connect_error",
    "status_429",
    "status_5xx",
    "status_4xx",
    "timeout",
    "broken_response",
];

/// Adds `n` to a counter only this thread writes.
#[inline]
pub fn bump(cell: &AtomicU64, n: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Moves a gauge only this thread writes.
#[inline]
pub fn shift(cell: &AtomicI64, by: i64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

pub fn read(cell: &AtomicU64) -> u64 {
    cell.load(Ordering::Relaxed)
}

/// Per-bucket counts (not cumulative: the scrape sums them) and the sum.
#[derive(Default)]
pub struct Histogram {
    /// `BOUNDS_US.len()` buckets, then the one above the last bound.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        // The first bound at or above the value: Prometheus' `le`.
        let i = BOUNDS_US.partition_point(|&bound| bound < us);
        if let Some(bucket) = self.buckets.get(i) {
            bump(bucket, 1);
        }
        bump(&self.sum_us, us);
    }

    /// Adds this histogram's counts into `into` (per bucket) and its sum.
    pub fn add_to(&self, into: &mut [u64; BOUNDS_US.len() + 1], sum_us: &mut u64) {
        for (total, bucket) in into.iter_mut().zip(&self.buckets) {
            *total += read(bucket);
        }
        *sum_us += read(&self.sum_us);
    }
}

/// What one thread keeps per provider (index 0: no provider, the
/// gateway's own answers).
#[derive(Default)]
pub struct ProviderCells {
    /// Whole request, first byte in to last byte out.
    pub latency: Histogram,
    /// From the first upstream connect to the last upstream release.
    pub upstream: Histogram,
    /// Time to the answer's first bytes.
    pub ttft: Histogram,
    /// Whole request less its upstream time.
    pub added: Histogram,
    pub attempts: AtomicU64,
    pub failures: [AtomicU64; CAUSES.len()],
    /// Connections in this thread's pool.
    pub pool_idle: AtomicI64,
    /// Connections serving a request.
    pub pool_busy: AtomicI64,
}

/// One thread's cells that have no label, or a label known at start-up.
pub struct ThreadCells {
    /// Requests by route, dialect, provider, model and status.
    pub requests: Published<RequestKey, AtomicU64>,
    /// Tokens and cost by provider and model.
    pub usage: Published<UsageKey, UsageCells>,
    pub providers: Box<[ProviderCells]>,
    pub fallbacks: AtomicU64,
    pub rate_limited: AtomicU64,
    pub insufficient_credit: AtomicU64,
    pub in_flight: AtomicI64,
    pub streams: AtomicI64,
    pub connections: AtomicI64,
}

impl ThreadCells {
    pub fn new(providers: usize) -> ThreadCells {
        ThreadCells {
            requests: Published::default(),
            usage: Published::default(),
            providers: (0..=providers).map(|_| ProviderCells::default()).collect(),
            fallbacks: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            insufficient_credit: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            streams: AtomicI64::new(0),
            connections: AtomicI64::new(0),
        }
    }

    /// The cells of provider `index` (`None`: no provider).
    pub fn provider(&self, index: Option<usize>) -> &ProviderCells {
        let i = index.map_or(0, |i| i + 1);
        // Out of range cannot happen (indexes come from the gateway the
        // cells were sized by); fall back to the no-provider slot.
        self.providers.get(i).unwrap_or(&self.providers[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_lands_in_the_first_bucket_at_or_above_it() {
        let h = Histogram::default();
        for us in [0, 100, 101, 250, 120_000_000, 120_000_001] {
            h.observe_us(us);
        }
        let (mut counts, mut sum) = ([0; BOUNDS_US.len() + 1], 0);
        h.add_to(&mut counts, &mut sum);
        assert_eq!(counts[0], 2, "0 and 100 are <= 100");
        assert_eq!(counts[1], 2, "101 and 250 are <= 250");
        assert_eq!(counts[BOUNDS_US.len() - 1], 1);
        assert_eq!(counts[BOUNDS_US.len()], 1, "over the last bound");
        assert_eq!(sum, 100 + 101 + 250 + 120_000_000 + 120_000_001);
    }
}
