//! GCRA rate limiting: exact values for the documented cases, and the
//! properties that matter (never more than the rate allows; Retry-After is
//! truthful).

use arouter_core::ratelimit::{
    check, header_values, headers, Decision, GcraState, Quota, QuotaError,
};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000; // a whole second, in Unix ms

fn quota(limit: u32, period_ms: u64, burst: u32) -> Quota {
    Quota::new(limit, period_ms, burst).unwrap()
}

#[test]
fn quota_rejects_zeroes() {
    assert_eq!(Quota::new(0, 1000, 1), Err(QuotaError::ZeroLimit));
    assert_eq!(Quota::new(1, 0, 1), Err(QuotaError::ZeroPeriod));
    assert_eq!(Quota::new(1, 1000, 0), Err(QuotaError::ZeroBurst));
    let q = quota(10, 60_000, 5);
    assert_eq!((q.limit(), q.period_ms(), q.burst()), (10, 60_000, 5));
}

#[test]
fn burst_is_admitted_then_denied() {
    let q = quota(10, 10_000, 3); // one per second, three at once
    let mut s = GcraState::default();
    let remaining: Vec<u32> = (0..3)
        .map(|_| {
            let d = check(&q, &mut s, T0, 1);
            assert!(d.allowed);
            assert_eq!(d.retry_after_s, None);
            d.remaining
        })
        .collect();
    assert_eq!(remaining, [2, 1, 0]);
    let before = s;
    let d = check(&q, &mut s, T0, 1);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_unix_s: T0 / 1000 + 3,
            retry_after_s: Some(1),
        }
    );
    assert_eq!(s, before, "a denied request leaves the state alone");
}

#[test]
fn refills_one_per_interval() {
    let q = quota(10, 10_000, 3);
    let mut s = GcraState::default();
    for _ in 0..3 {
        assert!(check(&q, &mut s, T0, 1).allowed);
    }
    assert!(!check(&q, &mut s, T0 + 999, 1).allowed);
    let d = check(&q, &mut s, T0 + 1000, 1);
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
    assert!(!check(&q, &mut s, T0 + 1000, 1).allowed);
    // After the whole burst has drained back, three fit again.
    let d = check(&q, &mut s, T0 + 4000, 0);
    assert_eq!(d.remaining, 3);
    assert_eq!(d.reset_unix_s, T0 / 1000 + 4);
}

#[test]
fn fresh_state_reports_full_bucket() {
    let q = quota(100, 60_000, 20);
    let d = check(&q, &mut GcraState::default(), T0 + 1, 0);
    assert!(d.allowed);
    assert_eq!(d.remaining, 20);
    // Already full: reset is now, rounded up to the next second.
    assert_eq!(d.reset_unix_s, T0 / 1000 + 1);
    let d = check(&q, &mut GcraState::default(), T0, 0);
    assert_eq!(d.reset_unix_s, T0 / 1000);
}

#[test]
fn reset_and_retry_after_round_up() {
    let q = quota(1, 2500, 1); // one per 2.5 s
    let mut s = GcraState::default();
    let d = check(&q, &mut s, T0, 1);
    assert!(d.allowed);
    assert_eq!(d.reset_unix_s, T0 / 1000 + 3); // 2.5 s → 3
    let d = check(&q, &mut s, T0 + 100, 1);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_s, Some(3)); // 2.4 s → 3
    let d = check(&q, &mut s, T0 + 2499, 1);
    assert_eq!(d.retry_after_s, Some(1)); // 1 ms → at least 1
    assert!(check(&q, &mut s, T0 + 2500, 1).allowed);
}

#[test]
fn fractional_interval_is_exact() {
    // 3 per 1000 ms, burst 3: T = 333⅓ ms. Under saturation the TAT stays
    // ahead of now, so the thirds accumulate exactly instead of drifting.
    let q = quota(3, 1000, 3);
    let mut s = GcraState::default();
    let mut admitted = Vec::new();
    for ms in 0..=3000u64 {
        while check(&q, &mut s, T0 + ms, 1).allowed {
            admitted.push(ms);
        }
    }
    assert_eq!(
        admitted,
        [0, 0, 0, 334, 667, 1000, 1334, 1667, 2000, 2334, 2667, 3000]
    );
}

#[test]
fn high_rates_do_not_lose_precision() {
    // 3000 per second: 3 per millisecond with no burst beyond that.
    let q = quota(3000, 1000, 3);
    let mut s = GcraState::default();
    let mut admitted = 0;
    for ms in 0..1000u64 {
        for _ in 0..10 {
            admitted += u32::from(check(&q, &mut s, T0 + ms, 1).allowed);
        }
    }
    assert_eq!(admitted, 3000);
}

#[test]
fn cost_above_one() {
    let q = quota(10, 10_000, 5);
    let mut s = GcraState::default();
    let d = check(&q, &mut s, T0, 3);
    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
    let d = check(&q, &mut s, T0, 3);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 2);
    // One more unit drains in 1 s.
    assert_eq!(d.retry_after_s, Some(1));
    assert!(check(&q, &mut s, T0 + 1000, 3).allowed);
}

#[test]
fn cost_above_burst_is_always_denied() {
    let q = quota(10, 1000, 4);
    assert!(!q.admits_cost(5));
    let mut s = GcraState::default();
    for now in [T0, T0 + 1_000_000, u64::MAX] {
        let d = check(&q, &mut s, now, 5);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_s, None, "no wait would help");
    }
    assert_eq!(s, GcraState::default());
    assert!(check(&q, &mut s, T0, 4).allowed);
}

#[test]
fn clock_going_backwards_grants_nothing_extra() {
    let q = quota(1, 1000, 2);
    let mut s = GcraState::default();
    assert!(check(&q, &mut s, T0, 1).allowed);
    assert!(check(&q, &mut s, T0, 1).allowed);
    let d = check(&q, &mut s, T0 - 60_000, 1);
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after_s, Some(61));
    assert!(!check(&q, &mut s, 0, 1).allowed);
    assert!(!check(&q, &mut s, T0 + 999, 1).allowed);
    assert!(check(&q, &mut s, T0 + 1000, 1).allowed);
}

#[test]
fn extreme_values_never_panic_or_over_admit() {
    for (limit, period, burst) in [
        (u32::MAX, u64::MAX, u32::MAX),
        (1, u64::MAX, u32::MAX),
        (u32::MAX, 1, 1),
        (1, 1, u32::MAX),
    ] {
        let q = quota(limit, period, burst);
        for now in [0, T0, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut s = GcraState::default();
            let mut units = 0u64;
            for cost in [u32::MAX, 1, 0, u32::MAX, 1] {
                let d = check(&q, &mut s, now, cost);
                if d.allowed {
                    units += u64::from(cost);
                }
                assert!(d.retry_after_s.is_none_or(|r| r >= 1));
            }
            assert!(units <= u64::from(burst), "{q:?} at {now}: {units}");
        }
    }
    // A corrupt or foreign state is clamped, not trusted blindly.
    let q = quota(3, 1000, 1);
    let mut s = GcraState {
        tat_ms: u64::MAX,
        tat_frac: u32::MAX,
    };
    let d = check(&q, &mut s, 0, 1);
    assert!(!d.allowed);
    assert_eq!(d.reset_unix_s, u64::MAX / 1000 + 1);
}

#[test]
fn header_values_and_strings() {
    let q = quota(60, 60_000, 1);
    let mut s = GcraState::default();
    let ok = check(&q, &mut s, T0, 1);
    let names: Vec<_> = header_values(&ok).collect();
    assert_eq!(
        names,
        [
            ("X-RateLimit-Limit", 60),
            ("X-RateLimit-Remaining", 0),
            ("X-RateLimit-Reset", T0 / 1000 + 1),
        ]
    );
    let denied = check(&q, &mut s, T0 + 10, 1);
    let strings: Vec<_> = headers(&denied).collect();
    assert_eq!(strings[3], ("Retry-After", "1".to_owned()));
    assert_eq!(strings.len(), 4);
}

/// Admitted requests (time, cost) for a sequence of (delta, cost) steps.
fn run(q: &Quota, start: u64, steps: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let mut s = GcraState::default();
    let mut now = start;
    let mut admitted = Vec::new();
    for &(delta, cost) in steps {
        now += delta;
        let d = check(q, &mut s, now, cost);
        if d.allowed {
            admitted.push((now, cost));
        }
        assert!(d.remaining <= q.burst());
    }
    admitted
}

fn quota_strategy() -> impl Strategy<Value = Quota> {
    (1u32..50, 1u64..20_000, 1u32..8).prop_map(|(l, p, b)| quota(l, p, b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_window_admits_at_most_burst_plus_rate(
        q in quota_strategy(),
        start in 0u64..1u64 << 42,
        steps in proptest::collection::vec((0u64..800, 1u32..4), 1..150),
    ) {
        let admitted = run(&q, start, &steps);
        // Every window worth checking starts and ends at an admission.
        for (i, &(t, _)) in admitted.iter().enumerate() {
            let mut units = 0u128;
            for &(u, c) in &admitted[i..] {
                units += u128::from(c);
                let w = u128::from(u - t);
                let bound = u128::from(q.burst())
                    + (u128::from(q.limit()) * w).div_ceil(u128::from(q.period_ms()));
                prop_assert!(units <= bound, "window [{}, {}]: {} > {}", t, u, units, bound);
            }
        }
    }

    #[test]
    fn retry_after_is_truthful(
        q in quota_strategy(),
        start in 0u64..1u64 << 42,
        steps in proptest::collection::vec((0u64..500, 1u32..4), 1..60),
        cost in 1u32..8,
    ) {
        let mut s = GcraState::default();
        let mut now = start;
        for &(delta, c) in &steps {
            now += delta;
            let _ = check(&q, &mut s, now, c);
        }
        let cost = cost.min(q.burst());
        let mut probe = s;
        let d = check(&q, &mut probe, now, cost);
        if let Some(r) = d.retry_after_s {
            prop_assert!(!d.allowed);
            prop_assert!(r >= 1);
            let mut later = s;
            prop_assert!(check(&q, &mut later, now + r * 1000, cost).allowed);
            // And it is the smallest whole number of seconds that works.
            if r > 1 {
                let mut earlier = s;
                prop_assert!(!check(&q, &mut earlier, now + (r - 1) * 1000, cost).allowed);
            }
        } else {
            prop_assert!(d.allowed);
        }
    }

    #[test]
    fn remaining_is_what_would_be_admitted(
        q in quota_strategy(),
        steps in proptest::collection::vec((0u64..500, 1u32..4), 0..40),
    ) {
        let mut s = GcraState::default();
        let mut now = T0;
        for &(delta, c) in &steps {
            now += delta;
            let _ = check(&q, &mut s, now, c);
        }
        let d = check(&q, &mut s.clone(), now, 0);
        let mut probe = s;
        let mut n = 0;
        while n <= q.burst() && check(&q, &mut probe, now, 1).allowed {
            n += 1;
        }
        prop_assert_eq!(d.remaining, n);
        // The reset time is when the bucket is full again.
        let mut at_reset = s;
        prop_assert_eq!(check(&q, &mut at_reset, d.reset_unix_s * 1000, 0).remaining, q.burst());
    }
}

proptest! {
    /// The packed form a host keeps in one atomic word (see the host's
    /// `shard::gcra`) is a bijection between states and 96-bit words.
    #[test]
    fn packing_round_trips(tat_ms in any::<u64>(), tat_frac in any::<u32>(), word in any::<u128>()) {
        let state = GcraState { tat_ms, tat_frac };
        prop_assert_eq!(GcraState::from_bits(state.to_bits()), state);
        prop_assert_eq!(state.to_bits() >> 96, 0);
        let word = word & ((1u128 << 96) - 1);
        prop_assert_eq!(GcraState::from_bits(word).to_bits(), word);
    }
}
