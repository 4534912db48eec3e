//! Rate-limit math: GCRA (generic cell rate algorithm) with injected time.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT): when
//! the bucket would be empty again if no more requests came. A request of
//! cost `c` moves the TAT forward by `c` emission intervals `T = period /
//! limit`, and is admitted when the new TAT is at most `burst * T` ahead of
//! now. A denied request leaves the state untouched.
//!
//! Arithmetic is exact and integer-only: time is counted internally in ticks
//! of `1 / limit` milliseconds, so `T` is exactly `period_ms` ticks and
//! "3 per 1000 ms" carries no rounding error however long it runs. The state
//! stores the TAT as whole milliseconds plus a fraction in those ticks.
//! Intermediates are `u128` and cannot overflow; reported values that do
//! not fit their field saturate, and a request whose TAT would not fit the
//! state is denied, so no saturation ever grants capacity.
//!
//! Times are Unix milliseconds supplied by the caller, because
//! `X-RateLimit-Reset` is a Unix timestamp. A clock that steps backwards
//! never grants extra capacity: the TAT does not move back with it.

use std::fmt;

/// A rate: `limit` requests per `period_ms`, of which up to `burst` may be
/// admitted at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    limit: u32,
    period_ms: u64,
    burst: u32,
}

/// Why a [`Quota`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    ZeroLimit,
    ZeroPeriod,
    ZeroBurst,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroLimit => "rate limit must allow at least one request",
            QuotaError::ZeroPeriod => "rate limit period must be at least 1 ms",
            QuotaError::ZeroBurst => "rate limit burst must be at least 1",
        })
    }
}

impl std::error::Error for QuotaError {}

impl Quota {
    /// `limit` requests per `period_ms`, admitting at most `burst` at once.
    pub fn new(limit: u32, period_ms: u64, burst: u32) -> Result<Quota, QuotaError> {
        if limit == 0 {
            return Err(QuotaError::ZeroLimit);
        }
        if period_ms == 0 {
            return Err(QuotaError::ZeroPeriod);
        }
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        Ok(Quota {
            limit,
            period_ms,
            burst,
        })
    }

    /// Requests per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period, in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Requests admitted at once from a full bucket.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether a request of `cost` can ever be admitted (`cost <= burst`); a
    /// caller may reject a larger one outright instead of asking to retry.
    pub fn admits_cost(&self, cost: u32) -> bool {
        cost <= self.burst
    }

    fn ticks_per_ms(&self) -> u128 {
        u128::from(self.limit)
    }

    /// The emission interval `T`, in ticks.
    fn interval(&self) -> u128 {
        u128::from(self.period_ms)
    }
}

/// Per-key GCRA state. `Default` is a full bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcraState {
    /// Theoretical arrival time, whole Unix milliseconds (rounded down).
    pub tat_ms: u64,
    /// The TAT's sub-millisecond part, in units of `1 / limit` ms of the
    /// quota it was computed with (always `< limit`). Checking the state
    /// against a quota with a different limit is allowed: the fraction is
    /// clamped, an error under one millisecond.
    pub tat_frac: u32,
}

impl GcraState {
    /// The whole state as one `u128` (`tat_ms` in bits 32..96, `tat_frac`
    /// in bits 0..32), so a host can keep it in a single atomic word and
    /// update it with one compare-and-swap. Lossless: see [`Self::from_bits`].
    pub const fn to_bits(self) -> u128 {
        ((self.tat_ms as u128) << 32) | self.tat_frac as u128
    }

    /// The inverse of [`Self::to_bits`]. Bits above 96 (never set by
    /// `to_bits`) are ignored.
    pub const fn from_bits(bits: u128) -> GcraState {
        GcraState {
            tat_ms: (bits >> 32) as u64,
            tat_frac: bits as u32,
        }
    }

    fn tat_ticks(&self, q: &Quota) -> u128 {
        let frac = u128::from(self.tat_frac).min(q.ticks_per_ms() - 1);
        u128::from(self.tat_ms) * q.ticks_per_ms() + frac
    }

    /// `ticks` must fit: `check` only stores a TAT it has verified fits.
    fn set_tat_ticks(&mut self, q: &Quota, ticks: u128) {
        let per_ms = q.ticks_per_ms();
        self.tat_ms = u64::try_from(ticks / per_ms).unwrap_or(u64::MAX);
        // The remainder is below `limit`, a u32.
        self.tat_frac = u32::try_from(ticks % per_ms).unwrap_or(0);
    }
}

/// The outcome of one [`check`], with the values of the rate-limit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per period (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests of cost 1 that would be admitted right now, after this one
    /// (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Unix seconds (rounded up) at which the bucket is full again
    /// (`X-RateLimit-Reset`).
    pub reset_unix_s: u64,
    /// When denied: seconds (rounded up, at least 1) after which this same
    /// request would be admitted if nothing else happened (`Retry-After`).
    /// `None` when allowed, and when no wait would help: the cost exceeds the
    /// burst (see [`Quota::admits_cost`]), or the times are too close to the
    /// end of `u64` milliseconds to be represented.
    pub retry_after_s: Option<u64>,
}

/// Admits or denies a request of `cost` at `now_unix_ms`, updating `state`
/// only when admitted. A cost of 0 is a pure query of the current values.
pub fn check(quota: &Quota, state: &mut GcraState, now_unix_ms: u64, cost: u32) -> Decision {
    let per_ms = quota.ticks_per_ms();
    let t = quota.interval();
    let now = u128::from(now_unix_ms) * per_ms;
    let tat = state.tat_ticks(quota);
    let capacity = u128::from(quota.burst) * t;
    let new_tat = tat.max(now) + u128::from(cost) * t;
    // A TAT past the end of u64 milliseconds cannot be stored; clamping it
    // would hand out capacity, so such a request is denied (only absurd
    // clocks or quotas get here).
    let storable = new_tat / per_ms <= u128::from(u64::MAX);
    let allowed = storable && new_tat - now <= capacity;

    let (tat_after, retry_after_s) = if allowed {
        state.set_tat_ticks(quota, new_tat);
        (new_tat, None)
    } else if cost > quota.burst || !storable {
        // Waiting cannot help: the new TAT only grows with time.
        (tat, None)
    } else {
        // Admitted once `new_tat - at <= capacity`; `tat > now` here because
        // `cost <= burst` was denied.
        let admit_at = tat + u128::from(cost) * t - capacity;
        let wait = admit_at.saturating_sub(now);
        (tat, Some(ceil_div(wait, per_ms * 1000).max(1)))
    };

    let backlog = tat_after.saturating_sub(now);
    let remaining = capacity.saturating_sub(backlog) / t;
    Decision {
        allowed,
        limit: quota.limit,
        remaining: sat_u32(remaining),
        reset_unix_s: sat_u64(ceil_div(tat_after.max(now), per_ms * 1000)),
        retry_after_s: retry_after_s.map(sat_u64),
    }
}

/// The rate-limit response headers as numbers, so the caller can format
/// them without allocating. `Retry-After` is present only when denied.
pub fn header_values(d: &Decision) -> impl Iterator<Item = (&'static str, u64)> {
    [
        Some(("X-RateLimit-Limit", u64::from(d.limit))),
        Some(("X-RateLimit-Remaining", u64::from(d.remaining))),
        Some(("X-RateLimit-Reset", d.reset_unix_s)),
        d.retry_after_s
            .filter(|_| !d.allowed)
            .map(|s| ("Retry-After", s)),
    ]
    .into_iter()
    .flatten()
}

/// [`header_values`] with the values formatted.
pub fn headers(d: &Decision) -> impl Iterator<Item = (&'static str, String)> {
    header_values(d).map(|(name, v)| (name, v.to_string()))
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

fn sat_u32(v: u128) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn sat_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}
