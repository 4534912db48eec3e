//! Exact, lock-free credit in integer micro-USD, for the accounts work: a
//! request reserves the most it can cost before it runs, and settles the
//! actual cost when it ends (or releases the reservation if it never ran).
//! The account balance of a prepaid gateway is one such line
//! ([`crate::ledger`]); it follows the sharing rule in [`crate::shard`]
//! (one atomic word, shared by `Arc`).
//!
//! The word holds what is *available*: the balance less every outstanding
//! reservation. So "never below zero" is one compare-and-swap that refuses
//! to subtract more than is there, whatever the other cores do, and a
//! [`Reservation`] is consumed by value when settled: it cannot be settled
//! twice, and one that is dropped unsettled gives its amount back.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A balance that requests on any core reserve against.
#[derive(Debug, Default)]
pub struct CreditLine {
    /// Balance minus outstanding reservations, micro-USD.
    available: AtomicU64,
}

/// A deposit would take the balance past `u64::MAX` micro-USD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditOverflow;

impl fmt::Display for CreditOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the balance would exceed the largest amount that can be held")
    }
}

impl std::error::Error for CreditOverflow {}

impl CreditLine {
    pub fn new(balance_micros: u64) -> CreditLine {
        CreditLine {
            available: AtomicU64::new(balance_micros),
        }
    }

    /// What new reservations may still take.
    pub fn available(&self) -> u64 {
        self.available.load(Ordering::Acquire)
    }

    /// Adds to the balance; returns what is available after.
    pub fn deposit(&self, micros: u64) -> Result<u64, CreditOverflow> {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                a.checked_add(micros)
            })
            .map(|before| before + micros)
            .map_err(|_| CreditOverflow)
    }

    /// Sets aside `max_micros` for one request, or `None` when less than
    /// that is available (nothing is taken then).
    pub fn try_reserve(self: &Arc<Self>, max_micros: u64) -> Option<Reservation> {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                a.checked_sub(max_micros)
            })
            .ok()?;
        Some(Reservation {
            line: self.clone(),
            held: max_micros,
        })
    }

    /// Charges `micros` with no reservation: as much as is available,
    /// never below zero.
    pub fn charge(&self, micros: u64) -> Settlement {
        let taken = self.take_up_to(micros);
        Settlement {
            charged: taken,
            uncollected: micros - taken,
        }
    }

    /// Takes up to `micros` out of the line for good (a lease given back
    /// to the store it came from); returns what was taken.
    pub fn withdraw(&self, micros: u64) -> u64 {
        self.take_up_to(micros)
    }

    /// Takes up to `micros` of what is available; returns what was taken.
    fn take_up_to(&self, micros: u64) -> u64 {
        let before = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                Some(a - a.min(micros))
            })
            .unwrap_or_else(|a| a);
        before.min(micros)
    }

    fn give_back(&self, micros: u64) {
        // Cannot overflow: `micros` was taken from this word and deposits
        // are checked, unless deposits filled it to `u64::MAX` while this
        // was out; then the excess over ~18 trillion USD is dropped.
        let _ = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                Some(a.saturating_add(micros))
            });
    }
}

/// Credit set aside for one request. Settle it with the actual cost, or
/// drop it (or [`Reservation::release`] it) to give it all back.
#[must_use = "a reservation dropped at once gives its credit straight back"]
#[derive(Debug)]
pub struct Reservation {
    line: Arc<CreditLine>,
    held: u64,
}

/// What a settlement charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// Taken from the balance for this request.
    pub charged: u64,
    /// The part of the actual cost above the reservation that the balance
    /// could not cover (it stays at zero instead); the caller records it.
    pub uncollected: u64,
}

impl Reservation {
    /// The amount set aside.
    pub fn amount(&self) -> u64 {
        self.held
    }

    /// Charges `actual_micros`: what was reserved beyond it goes back; a
    /// cost above the reservation takes the rest from what is available,
    /// never below zero.
    pub fn settle(mut self, actual_micros: u64) -> Settlement {
        let held = std::mem::take(&mut self.held);
        if actual_micros <= held {
            self.line.give_back(held - actual_micros);
            return Settlement {
                charged: actual_micros,
                uncollected: 0,
            };
        }
        let extra = actual_micros - held;
        let taken = self.line.take_up_to(extra);
        Settlement {
            charged: held + taken,
            uncollected: extra - taken,
        }
    }

    /// Charges `actual_micros` and keeps the reservation open for further
    /// charges of the same request: from what it still holds first, then
    /// from what is available, never below zero.
    pub fn charge(&mut self, actual_micros: u64) -> Settlement {
        let from_held = actual_micros.min(self.held);
        self.held -= from_held;
        let extra = actual_micros - from_held;
        let taken = self.line.take_up_to(extra);
        Settlement {
            charged: from_held + taken,
            uncollected: extra - taken,
        }
    }

    /// Gives the whole amount back (the request never ran).
    pub fn release(self) {}
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held > 0 {
            self.line.give_back(self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserve_settle_release() {
        let line = Arc::new(CreditLine::new(1_000));
        let a = line.try_reserve(600).unwrap();
        assert_eq!(line.available(), 400);
        assert!(line.try_reserve(401).is_none());
        assert_eq!(line.available(), 400, "a refused reservation takes nothing");
        let b = line.try_reserve(400).unwrap();
        assert_eq!(line.available(), 0);
        assert_eq!(
            a.settle(250),
            Settlement {
                charged: 250,
                uncollected: 0
            }
        );
        assert_eq!(line.available(), 350);
        b.release();
        assert_eq!(line.available(), 750);
        // Above the reservation: the rest comes from what is left, down to
        // zero and no further.
        let c = line.try_reserve(100).unwrap();
        assert_eq!(
            c.settle(1_000),
            Settlement {
                charged: 750,
                uncollected: 250
            }
        );
        assert_eq!(line.available(), 0);
        assert_eq!(line.deposit(5), Ok(5));
        assert_eq!(line.deposit(u64::MAX), Err(CreditOverflow));
        drop(line.try_reserve(5).unwrap());
        assert_eq!(line.available(), 5);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Reserve(u64),
        Settle(usize, u64),
        Drop(usize),
        Deposit(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..500).prop_map(Op::Reserve),
            (any::<usize>(), 0u64..800).prop_map(|(i, a)| Op::Settle(i, a)),
            any::<usize>().prop_map(Op::Drop),
            (0u64..300).prop_map(Op::Deposit),
        ]
    }

    proptest! {
        /// Against a plain model: available = deposits - charged - held,
        /// never negative, and what a settlement reports is what left.
        #[test]
        fn matches_the_model(start in 0u64..2_000, ops in proptest::collection::vec(op(), 0..60)) {
            let line = Arc::new(CreditLine::new(start));
            let mut open: Vec<Reservation> = Vec::new();
            let (mut deposited, mut charged) = (start, 0u64);
            for op in ops {
                match op {
                    Op::Reserve(max) => {
                        let before = line.available();
                        match line.try_reserve(max) {
                            Some(r) => open.push(r),
                            None => prop_assert!(before < max),
                        }
                    }
                    Op::Settle(i, actual) if !open.is_empty() => {
                        let r = open.swap_remove(i % open.len());
                        let (held, before) = (r.amount(), line.available());
                        let s = r.settle(actual);
                        prop_assert_eq!(s.charged + s.uncollected, actual);
                        prop_assert_eq!(s.uncollected, actual.saturating_sub(held + before));
                        charged += s.charged;
                    }
                    Op::Drop(i) if !open.is_empty() => drop(open.swap_remove(i % open.len())),
                    Op::Deposit(d) => {
                        line.deposit(d).unwrap();
                        deposited += d;
                    }
                    _ => {}
                }
                let held: u64 = open.iter().map(Reservation::amount).sum();
                prop_assert_eq!(line.available() + held + charged, deposited);
            }
        }
    }

    #[test]
    fn many_threads_never_overdraw_and_charge_exactly_once() {
        const START: u64 = 200_000;
        let line = Arc::new(CreditLine::new(START));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let line = line.clone();
                std::thread::spawn(move || {
                    let mut charged = 0u64;
                    let mut held = Vec::new();
                    // A cheap deterministic spread of amounts per thread.
                    let mut x = t * 7919 + 1;
                    for i in 0..20_000u64 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let max = (x >> 33) % 90 + 1;
                        if let Some(r) = line.try_reserve(max) {
                            held.push(r);
                        }
                        if held.len() > 3 || i % 5 == 0 {
                            if let Some(r) = held.pop() {
                                if i % 7 == 0 {
                                    r.release();
                                } else {
                                    let actual = (x >> 40) % (r.amount() + 10);
                                    charged += r.settle(actual).charged;
                                }
                            }
                        }
                    }
                    charged
                })
            })
            .collect();
        let charged: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        // Every reservation has been settled or dropped by now.
        assert_eq!(START - line.available(), charged);
        assert!(charged > 0);
    }
}
