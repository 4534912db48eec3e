//! One key's rate-limit bucket shared by every core, exact and lock-free:
//! the core's GCRA state packed in one 128-bit atomic word
//! ([`GcraState::to_bits`]), updated with compare-and-swap.

use std::sync::atomic::Ordering;

use arouter_core::ratelimit::{self, Decision, GcraState, Quota};
use portable_atomic::AtomicU128;

/// A GCRA bucket any thread may check. `Default` is a full bucket.
#[derive(Default)]
pub struct SharedGcra {
    state: AtomicU128,
}

impl SharedGcra {
    /// [`ratelimit::check`] on the shared state. An admitted request is one
    /// successful compare-and-swap from the state its decision was computed
    /// on, so concurrent checks decide exactly as the same checks run one
    /// after another in the order their swaps succeeded. A denial changes
    /// nothing and is decided on the state as it was when read.
    pub fn check(&self, quota: &Quota, now_unix_ms: u64, cost: u32) -> Decision {
        let mut seen = self.state.load(Ordering::Acquire);
        loop {
            let mut state = GcraState::from_bits(seen);
            let decision = ratelimit::check(quota, &mut state, now_unix_ms, cost);
            if !decision.allowed {
                return decision;
            }
            match self.state.compare_exchange_weak(
                seen,
                state.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return decision,
                // Another core admitted a request meanwhile: decide again
                // on its result.
                Err(now_seen) => seen = now_seen,
            }
        }
    }

    /// Whether the word is updated by a hardware compare-and-swap (on
    /// x86_64, a CPU with `cmpxchg16b`, detected at run time; aarch64
    /// always). Where it is not, `portable-atomic` falls back to a small
    /// lock of its own: still exact, no longer lock-free.
    pub fn is_lock_free() -> bool {
        AtomicU128::is_lock_free()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn decides_as_the_core_does_on_one_thread() {
        let quota = Quota::new(3, 1000, 2).unwrap();
        let shared = SharedGcra::default();
        let mut plain = GcraState::default();
        for (i, at) in [0, 0, 0, 100, 333, 334, 400, 2000, 1500, 2001]
            .into_iter()
            .enumerate()
        {
            let cost = (i % 3) as u32;
            assert_eq!(
                shared.check(&quota, T0 + at, cost),
                ratelimit::check(&quota, &mut plain, T0 + at, cost),
                "request {i}"
            );
        }
    }

    #[test]
    fn many_threads_at_one_instant_get_exactly_the_burst() {
        // All at the same millisecond, nothing replenishes: exactly `burst`
        // requests may pass, however the threads interleave.
        let quota = Quota::new(1000, 60_000, 700).unwrap();
        let bucket = Arc::new(SharedGcra::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let bucket = bucket.clone();
                std::thread::spawn(move || {
                    (0..400)
                        .filter(|_| bucket.check(&quota, T0, 1).allowed)
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 700);
        assert!(!bucket.check(&quota, T0, 1).allowed);
    }

    #[test]
    fn many_threads_over_time_never_beat_the_rate() {
        // Each thread walks its own clock forward, so the clocks the swaps
        // see go back and forth; that must never grant extra capacity.
        let quota = Quota::new(10, 1000, 5).unwrap();
        let bucket = Arc::new(SharedGcra::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let bucket = bucket.clone();
                std::thread::spawn(move || {
                    (0..2000u64)
                        .filter(|ms| bucket.check(&quota, T0 + ms, 1).allowed)
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        // Each admission moves the TAT 100 ms on from at least T0, and
        // one is admitted only while the TAT stays within 500 ms of its
        // clock (at most T0 + 1999): at most 25, however they interleave.
        assert!((1..=25).contains(&admitted), "{admitted}");
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_bucket_is_a_hardware_atomic_here() {
        // The claim "no lock on the request path" rests on this.
        assert!(SharedGcra::is_lock_free());
    }
}
