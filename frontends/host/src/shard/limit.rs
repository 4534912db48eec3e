//! One key's spending limit, exact and lock-free across cores: what the
//! key spent in its current window (daily, weekly, monthly or all time)
//! and what its requests in flight hold, in one 128-bit atomic word,
//! updated by compare-and-swap like [`super::SharedGcra`].
//!
//! The limit itself is not in the word: it is read from the key's record
//! in the published table at each use, so a change of limit through the
//! API applies from the next request on without touching the word. The
//! window is in the word, so the first use in a new window starts its
//! spending at zero in the same swap that reserves (what is held stays
//! held).
//!
//! Layout: `[window: 20 bits][spent: 54][held: 54]`. 54 bits of micro-USD
//! are over 18 billion USD, far past any key's limit; a window is
//! `(kind << 18) | (first day of the window, in days since 1970)`, good
//! until the year 2687.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use portable_atomic::AtomicU128;

use super::Settlement;

const AMOUNT_BITS: u32 = 54;
const AMOUNT_MASK: u128 = (1 << AMOUNT_BITS) - 1;
/// The largest amount the word holds; larger sums saturate here.
pub const MAX_AMOUNT: u64 = (1 << AMOUNT_BITS) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word {
    window: u32,
    spent: u64,
    held: u64,
}

impl Word {
    fn unpack(bits: u128) -> Word {
        Word {
            window: (bits >> (2 * AMOUNT_BITS)) as u32,
            spent: ((bits >> AMOUNT_BITS) & AMOUNT_MASK) as u64,
            held: (bits & AMOUNT_MASK) as u64,
        }
    }

    fn pack(self) -> u128 {
        (u128::from(self.window) << (2 * AMOUNT_BITS))
            | (u128::from(self.spent.min(MAX_AMOUNT)) << AMOUNT_BITS)
            | u128::from(self.held.min(MAX_AMOUNT))
    }

    /// The word as of `window`: a new window starts with nothing spent.
    fn in_window(mut self, window: u32) -> Word {
        if self.window != window {
            self.window = window;
            self.spent = 0;
        }
        self
    }

    /// What the limit leaves for new reservations.
    fn room(self, limit: u64) -> u64 {
        limit.saturating_sub(self.spent.saturating_add(self.held))
    }
}

/// A key's spending in its current window plus its reservations in flight.
#[derive(Debug, Default)]
pub struct LimitLine {
    word: AtomicU128,
}

impl LimitLine {
    /// A line that has `spent` in `window` and holds nothing.
    pub fn new(window: u32, spent: u64) -> LimitLine {
        let line = LimitLine::default();
        line.set_spent(window, spent);
        line
    }

    /// Applies `f` to the word in one compare-and-swap; `f` returning
    /// `None` leaves the word as it was. Returns what `f` computed.
    fn update<T>(&self, mut f: impl FnMut(Word) -> Option<(Word, T)>) -> Option<T> {
        let mut seen = self.word.load(Ordering::Acquire);
        loop {
            let (next, out) = f(Word::unpack(seen))?;
            match self.word.compare_exchange_weak(
                seen,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(out),
                Err(now) => seen = now,
            }
        }
    }

    /// Sets what was spent in `window` (loaded from the store), keeping
    /// what is held.
    pub fn set_spent(&self, window: u32, spent: u64) {
        self.update(|w| {
            Some((
                Word {
                    window,
                    spent,
                    held: w.held,
                },
                (),
            ))
        });
    }

    /// Raises what was spent in `window` to at least `spent` (read from a
    /// store other gateways also write to), keeping what is held. A line
    /// already past it keeps its own count: that one includes this
    /// gateway's calls the store has not received yet.
    pub fn raise_spent(&self, window: u32, spent: u64) {
        self.update(|w| {
            let w = w.in_window(window);
            (spent > w.spent).then_some((Word { spent, ..w }, ()))
        });
    }

    /// Spent in `window` (0 when the line is still in an older one).
    pub fn spent(&self, window: u32) -> u64 {
        let w = Word::unpack(self.word.load(Ordering::Acquire));
        if w.window == window {
            w.spent
        } else {
            0
        }
    }

    /// Sets `max` aside in `window` if spent + held + `max` stays within
    /// `limit`; `None` (nothing taken) otherwise.
    pub fn try_reserve(self: &Arc<Self>, limit: u64, window: u32, max: u64) -> Option<LimitHold> {
        self.update(|w| {
            let mut w = w.in_window(window);
            if max > w.room(limit) {
                return None;
            }
            w.held += max;
            Some((w, ()))
        })?;
        Some(LimitHold {
            line: self.clone(),
            held: max,
        })
    }

    /// Charges `actual` with no reservation: as much as the limit leaves,
    /// never past it.
    pub fn charge(&self, limit: u64, window: u32, actual: u64) -> Settlement {
        self.charge_from(0, limit, window, actual)
    }

    /// Moves `from_held` (part of a reservation) to spent, and takes the
    /// rest of `actual` from the room the limit leaves.
    fn charge_from(&self, from_held: u64, limit: u64, window: u32, actual: u64) -> Settlement {
        let extra = actual - from_held;
        self.update(|w| {
            let mut w = w.in_window(window);
            w.held = w.held.saturating_sub(from_held);
            let taken = extra.min(w.room(limit).saturating_sub(from_held));
            w.spent = w.spent.saturating_add(from_held + taken);
            Some((
                w,
                Settlement {
                    charged: from_held + taken,
                    uncollected: extra - taken,
                },
            ))
        })
        .unwrap_or(Settlement {
            charged: 0,
            uncollected: actual,
        })
    }

    fn give_back(&self, held: u64) {
        self.update(|mut w| {
            w.held = w.held.saturating_sub(held);
            Some((w, ()))
        });
    }
}

/// Credit set aside on a key's line for one request. Charge it with what
/// the request's calls cost; dropping it gives back what is left.
#[must_use = "a hold dropped at once gives its credit straight back"]
#[derive(Debug)]
pub struct LimitHold {
    line: Arc<LimitLine>,
    held: u64,
}

impl LimitHold {
    pub fn amount(&self) -> u64 {
        self.held
    }

    /// Charges `actual`: from what this hold still has first, then from
    /// what the limit leaves, never past it. The hold keeps the rest for
    /// further charges of the same request.
    pub fn charge(&mut self, limit: u64, window: u32, actual: u64) -> Settlement {
        let from_held = actual.min(self.held);
        self.held -= from_held;
        self.line.charge_from(from_held, limit, window, actual)
    }
}

impl Drop for LimitHold {
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
    fn raising_what_was_spent_keeps_the_held_part_and_never_lowers() {
        let line = Arc::new(LimitLine::new(7, 100));
        let hold = line.try_reserve(1_000, 7, 50).expect("room");
        line.raise_spent(7, 300);
        assert_eq!(line.spent(7), 300);
        line.raise_spent(7, 200);
        assert_eq!(
            line.spent(7),
            300,
            "a lower figure is this gateway's unstored calls"
        );
        // 300 spent + 50 held: 650 left of 1,000.
        assert!(line.try_reserve(1_000, 7, 651).is_none());
        assert!(line.try_reserve(1_000, 7, 650).is_some());
        drop(hold);
        // A new window starts from the store's figure.
        line.raise_spent(8, 40);
        assert_eq!(line.spent(8), 40);
    }

    const W: u32 = 7;

    #[test]
    fn reserve_charge_release_and_a_new_window() {
        let line = Arc::new(LimitLine::new(W, 100));
        assert!(line.try_reserve(1_000, W, 901).is_none());
        let mut a = line.try_reserve(1_000, W, 600).unwrap();
        assert!(line.try_reserve(1_000, W, 301).is_none());
        let b = line.try_reserve(1_000, W, 300).unwrap();
        assert_eq!(
            a.charge(1_000, W, 250),
            Settlement {
                charged: 250,
                uncollected: 0
            }
        );
        assert_eq!(line.spent(W), 350);
        // A second charge of the same request: the rest of the hold, then
        // the room left (none: b holds it).
        assert_eq!(
            a.charge(1_000, W, 400),
            Settlement {
                charged: 350,
                uncollected: 50
            }
        );
        drop(a);
        drop(b);
        assert_eq!(line.spent(W), 700);
        assert!(line.try_reserve(1_000, W, 300).is_some());
        assert!(line.try_reserve(1_000, W, 301).is_none());
        // The next window starts from nothing, whatever was spent before.
        let c = line.try_reserve(1_000, W + 1, 1_000).unwrap();
        assert_eq!(line.spent(W), 0);
        assert_eq!(line.spent(W + 1), 0);
        drop(c);
        // A lower limit applies at once.
        assert!(line.try_reserve(10, W + 1, 11).is_none());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Reserve(u64),
        Charge(usize, u64),
        Drop(usize),
        Direct(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..400).prop_map(Op::Reserve),
            (any::<usize>(), 0u64..600).prop_map(|(i, a)| Op::Charge(i, a)),
            any::<usize>().prop_map(Op::Drop),
            (0u64..200).prop_map(Op::Direct),
        ]
    }

    proptest! {
        /// spent + held never passes the limit, spent is what charges
        /// report as charged, and charged + uncollected is the cost.
        #[test]
        fn matches_the_model(limit in 0u64..2_000, ops in proptest::collection::vec(op(), 0..60)) {
            let line = Arc::new(LimitLine::new(W, 0));
            let mut open: Vec<LimitHold> = Vec::new();
            let mut charged = 0u64;
            for op in ops {
                match op {
                    Op::Reserve(max) => {
                        if let Some(h) = line.try_reserve(limit, W, max) {
                            open.push(h);
                        }
                    }
                    Op::Charge(i, actual) if !open.is_empty() => {
                        let n = open.len();
                        let s = open[i % n].charge(limit, W, actual);
                        prop_assert_eq!(s.charged + s.uncollected, actual);
                        charged += s.charged;
                    }
                    Op::Drop(i) if !open.is_empty() => drop(open.swap_remove(i % open.len())),
                    Op::Direct(actual) => {
                        let s = line.charge(limit, W, actual);
                        prop_assert_eq!(s.charged + s.uncollected, actual);
                        charged += s.charged;
                    }
                    _ => {}
                }
                let held: u64 = open.iter().map(LimitHold::amount).sum();
                prop_assert_eq!(line.spent(W), charged);
                prop_assert!(charged + held <= limit);
            }
        }
    }

    #[test]
    fn many_threads_never_pass_the_limit_and_charge_exactly_once() {
        const LIMIT: u64 = 200_000;
        let line = Arc::new(LimitLine::new(W, 0));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let line = line.clone();
                std::thread::spawn(move || {
                    let mut charged = 0u64;
                    let mut x = t * 7919 + 1;
                    for _ in 0..20_000u64 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let max = (x >> 33) % 90 + 1;
                        if let Some(mut h) = line.try_reserve(LIMIT, W, max) {
                            charged += h.charge(LIMIT, W, (x >> 40) % (max + 1)).charged;
                        }
                    }
                    charged
                })
            })
            .collect();
        let charged: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(line.spent(W), charged);
        assert!(charged <= LIMIT && charged > LIMIT / 2, "{charged}");
    }
}
